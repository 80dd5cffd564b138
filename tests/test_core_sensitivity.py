"""Sensitivities (JAX autodiff) against central finite differences, plus known identities."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads

from rooflax import core as rc
from rooflax.core.sensitivity import KNOBS, SEED_KNOBS

TREES = ("hardware", "model", "workload")


def _perturbed(trees, knob, factor):
    which, field = KNOBS[knob]
    i = TREES.index(which)
    tree = trees[i]
    changed = tree.replace(**{field: getattr(tree, field) * factor})
    return tuple(changed if j == i else t for j, t in enumerate(trees))


# jitted once (scalar shapes), so the finite differences do not run the core op by op
JIT_OUTPUTS = {name: jax.jit(fn) for name, fn in rc.OUTPUTS.items()}


def fd_elasticity(fn, trees, knob, h=1e-6):
    """Central difference of ln y in ln x."""
    up = fn(*_perturbed(trees, knob, np.exp(h)))
    down = fn(*_perturbed(trees, knob, np.exp(-h)))
    return (np.log(float(up)) - np.log(float(down))) / (2 * h)


@st.composite
def feasible_points(draw):
    hw = rc.Hardware(
        bw=draw(st.floats(1e12, 1e13)),
        c_over_bw=draw(st.floats(50.0, 800.0)),
        capacity=draw(st.floats(40e9, 300e9)),
        price=draw(st.floats(1.0, 10.0)) / 3600,
        chips=float(draw(st.sampled_from([1, 8, 16, 72]))),
    )
    m = rc.Model(
        n_total=draw(st.floats(5e9, 8e11)),
        sparsity=draw(st.floats(1.0, 40.0)),
        kv_bytes_per_token=draw(st.floats(1e4, 4e5)),
        bytes_per_weight=draw(st.sampled_from([0.5, 1.0, 2.0])),
    )
    wl = rc.Workload(context=draw(st.floats(256.0, 3e5)),
                     slo=draw(st.sampled_from([np.inf, 0.02, 0.05, 0.2])))
    return hw, m, wl


@pytest.mark.slow  # finite differences at 40 random points (make test-fast skips it)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(feasible_points())
def test_sensitivities_match_finite_differences(p):
    hw, m, wl = p
    s = rc.sensitivities(hw, m, wl, knobs=SEED_KNOBS)
    if int(s["reason"]) != 0:
        assert all(np.isnan(float(v)) for v in s["partial"]["b_star"].values())
        return
    bx, bm, bs = (float(f(hw, m, wl)) for f in (rc.b_x, rc.b_max, rc.b_slo))
    ordered = sorted([bx, bm, bs])
    if ordered[1] < ordered[0] * (1 + 1e-4):  # too close to a kink for a finite difference
        return
    for out, fn in JIT_OUTPUTS.items():
        for knob in ("bw", "c_over_bw", "capacity", "price", "chips", "n_total", "sparsity",
                     "kv_bytes_per_token", "bytes_per_weight", "context", "slo"):
            x = getattr(p[TREES.index(KNOBS[knob][0])], KNOBS[knob][1])
            if not np.isfinite(x):
                assert np.isnan(float(s["elasticity"][out][knob]))
                continue
            if out == "cost_at_b_star" and knob == "price":
                assert float(s["elasticity"][out][knob]) == pytest.approx(1.0, rel=1e-12)
            expected = fd_elasticity(fn, p, knob)
            got = float(s["elasticity"][out][knob])
            assert got == pytest.approx(expected, rel=1e-5, abs=1e-7), (out, knob)
            # the partial is the elasticity scaled back: ∂y/∂x = e·y/x
            partial = float(s["partial"][out][knob])
            y = float(s["value"][out])
            assert partial == pytest.approx(got * y / x, rel=1e-9, abs=1e-300)


def test_check_grads_through_pytrees():
    """jax.test_util.check_grads on the optimum, in log-space (knobs span 1e0..1e12)."""
    hw = rc.Hardware(bw=4.8e12, c_over_bw=206.1, capacity=141e9, price=3.0 / 3600, chips=8.0)
    m = rc.Model.from_counts(n_total=671e9, n_active=37e9, kv_bytes_per_token=70_272.0,
                             bytes_per_weight=1.0)
    # the seeds' knobs (the extended ones default to 0 or inf: no logarithm there)
    names = [k for k in SEED_KNOBS if k != "batch"]

    def rebuild(log_knobs, trees):
        for knob, u in log_knobs.items():
            trees = _perturbed(trees, knob, 1.0)  # copy
            which, field = KNOBS[knob]
            i = TREES.index(which)
            t = trees[i].replace(**{field: jnp.exp(u)})
            trees = tuple(t if j == i else x for j, x in enumerate(trees))
        return trees

    for context in (4096.0, 131072.0):  # crossover-bound, then capacity-bound
        trees = (hw, m, rc.Workload(context=context, slo=1.0))
        logs = {k: jnp.log(jnp.asarray(getattr(trees[TREES.index(KNOBS[k][0])], KNOBS[k][1])))
                for k in names}
        for fn in rc.OUTPUTS.values():
            def f(u, fn=fn, trees=trees):
                return jnp.log(fn(*rebuild(u, trees)))
            check_grads(f, (logs,), order=1, modes=("fwd", "rev"), eps=1e-6, rtol=1e-5)


def test_grad_returns_hardware_of_sensitivities():
    hw = rc.Hardware(bw=4.8e12, c_over_bw=206.1, capacity=141e9, price=3.0 / 3600, chips=8.0)
    m = rc.Model.from_counts(n_total=671e9, n_active=37e9, kv_bytes_per_token=70_272.0,
                             bytes_per_weight=1.0)
    wl = rc.Workload(context=4096.0)
    g = jax.grad(rc.cost_at_b_star)(hw, m, wl)
    assert isinstance(g, rc.Hardware)
    s = rc.sensitivities(hw, m, wl, knobs=SEED_KNOBS)
    assert float(g.bw) == pytest.approx(float(s["partial"]["cost_at_b_star"]["bw"]), rel=1e-12)
    gm = jax.grad(rc.b_star, argnums=1)(hw, m, wl)
    assert isinstance(gm, rc.Model)
    assert float(gm.sparsity) == pytest.approx(float(s["partial"]["b_star"]["sparsity"]), rel=1e-12)


def test_identities_kv_free_crossover():
    """KV-free B_x = c_over_bw · sparsity · w: elasticity +1 in c_over_bw and in sparsity."""
    hw = rc.Hardware(bw=3.35e12, c_over_bw=295.4, capacity=1e15, price=1e-3)
    m = rc.Model(n_total=671e9, sparsity=671 / 37, kv_bytes_per_token=0.0, bytes_per_weight=1.0)
    wl = rc.Workload(context=8192.0)
    for knob in ("c_over_bw", "sparsity", "bytes_per_weight"):
        assert float(rc.elasticity(rc.b_x, hw, m, wl, knob)) == pytest.approx(1.0, rel=1e-12)
    s = rc.sensitivities(hw, m, wl, knobs=SEED_KNOBS)
    assert rc.BINDINGS[int(rc.binding(hw, m, wl))] == "crossover"
    for knob in ("c_over_bw", "sparsity"):
        assert float(s["elasticity"]["b_star"][knob]) == pytest.approx(1.0, rel=1e-12)
    assert float(s["elasticity"]["b_star"]["bw"]) == pytest.approx(0.0, abs=1e-12)


def test_identity_weight_bound_latency_bw():
    hw = rc.Hardware(bw=3.35e12, c_over_bw=295.4, capacity=1e15)
    m = rc.Model(n_total=70e9, sparsity=1.0, kv_bytes_per_token=0.0)
    wl = rc.Workload(batch=1.0, context=1.0)
    assert int(rc.regime(hw, m, wl)) == 0  # weight-bound
    assert float(rc.elasticity(rc.latency, hw, m, wl, "bw")) == pytest.approx(-1.0, rel=1e-12)


def test_nan_with_reason_when_infeasible_or_tied():
    hw = rc.Hardware(bw=4.8e12, c_over_bw=206.1, capacity=141e9, price=1e-3)  # one H200
    m = rc.Model.from_counts(n_total=671e9, n_active=37e9, kv_bytes_per_token=70_272.0,
                             bytes_per_weight=1.0)
    s = rc.sensitivities(hw, m, rc.Workload(context=4096.0), knobs=SEED_KNOBS)
    assert rc.REASONS[int(s["reason"])].startswith("infeasible")
    assert np.isnan(float(s["value"]["b_star"]))
    assert np.isnan(float(s["partial"]["cost_at_b_star"]["bw"]))
    # a tie: choose capacity so that B_max equals B_x exactly
    hw8 = hw.replace(chips=8.0)
    wl = rc.Workload(context=2048.0)
    bx = float(rc.b_x(hw8, m, wl))
    kv = float(rc.kv_store_bytes(m, wl))
    tied = hw8.replace(capacity=(671e9 + bx * kv) / 8.0)
    s = rc.sensitivities(tied, m, wl, knobs=SEED_KNOBS)
    assert rc.REASONS[int(s["reason"])].startswith("tie")
    assert np.isnan(float(s["partial"]["b_star"]["bw"]))
    assert np.isfinite(float(s["value"]["b_star"]))
