"""Properties of the roofline, and jit / vmap / grad over large grids."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rooflax import core as rc

H200 = rc.Hardware(bw=4.8e12, c_over_bw=206.1, capacity=141e9, price=6.35 / 3600, chips=8.0)
DSV3 = rc.Model.from_counts(n_total=671e9, n_active=37e9, kv_bytes_per_token=70_272.0,
                            bytes_per_weight=1.0)
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def hw_model(draw):
    hw = rc.Hardware(bw=draw(st.floats(1e12, 1e13)), c_over_bw=draw(st.floats(30.0, 1000.0)),
                     capacity=draw(st.floats(40e9, 300e9)), price=1e-3,
                     chips=float(draw(st.sampled_from([1, 8, 72]))))
    m = rc.Model(n_total=draw(st.floats(1e9, 5e11)), sparsity=draw(st.floats(1.0, 50.0)),
                 kv_bytes_per_token=draw(st.floats(1e3, 3e5)),
                 bytes_per_weight=draw(st.sampled_from([0.5, 1.0, 2.0])))
    return hw, m


@SETTINGS
@given(hw_model(), st.floats(1.0, 1e6))
def test_cost_falls_below_crossover_and_is_flat_above(p, context):
    hw, m = p
    wl = rc.Workload(batch=jnp.geomspace(1.0, 1e7, 2000), context=context)
    cost = np.asarray(rc.cost_per_token(hw, m, wl))
    bx = float(rc.b_x(hw, m, wl))
    below = np.asarray(wl.batch) < bx
    assert np.all(np.diff(cost[below]) <= 1e-12 * cost[below][:-1])
    above = cost[~below]
    if above.size:
        assert np.allclose(above, above[0], rtol=1e-9)


@SETTINGS
@given(hw_model(), st.floats(1.0, 1e6), st.floats(1.01, 4.0))
def test_b_star_non_decreasing_in_c_over_bw_and_sparsity(p, context, factor):
    hw, m = p
    wl = rc.Workload(context=context)
    base = float(rc.b_star(hw, m, wl))
    if np.isnan(base):
        return
    more_c = float(rc.b_star(hw.replace(c_over_bw=hw.c_over_bw * factor), m, wl))
    sparser = float(rc.b_star(hw, m.replace(sparsity=m.sparsity * factor), wl))
    assert more_c >= base * (1 - 1e-12)
    assert sparser >= base * (1 - 1e-12)


def test_b_star_becomes_capacity_bound_as_context_grows():
    contexts = jnp.geomspace(512.0, 1e7, 60)
    codes = np.asarray(rc.binding(H200, DSV3, rc.Workload(context=contexts)))
    names = [rc.BINDINGS[c] for c in codes]
    assert names[0] == "crossover"
    first_cap = names.index("capacity")
    assert all(n in ("capacity", "infeasible") for n in names[first_cap:])
    assert names[-1] == "infeasible"  # 10M tokens of bf16 MLA cache (703 GB): not one sequence fits
    bm = np.asarray(rc.b_max(H200, DSV3, rc.Workload(context=contexts)))
    assert np.all(np.diff(bm) < 0)


def test_model_larger_than_memory_is_infeasible():
    one_h200 = H200.replace(chips=1.0)  # 141 GB < 671 GB of fp8 weights
    wl = rc.Workload(context=4096.0)
    assert float(rc.b_max(one_h200, DSV3, wl)) < 0
    assert rc.BINDINGS[int(rc.binding(one_h200, DSV3, wl))] == "infeasible"
    assert np.isnan(float(rc.b_star(one_h200, DSV3, wl)))
    assert np.isnan(float(rc.cost_at_b_star(one_h200, DSV3, wl)))


def test_regimes_along_batch():
    wl = rc.Workload(batch=jnp.array([1.0, 100.0, 1e5]), context=jnp.array([1.0, 1e5, 1.0]))
    codes = [rc.REGIMES[c] for c in np.asarray(rc.regime(H200, DSV3, wl))]
    assert codes == ["weight-bound", "kv-bound", "compute-bound"]


def test_attention_kinds_l_eff_and_l_store():
    L = jnp.array([100.0, 10_000.0, 1e6])
    wl = rc.Workload(context=L)
    dense = DSV3
    np.testing.assert_allclose(rc.l_eff(dense, wl), L)
    window = DSV3.replace(window=4096.0)
    np.testing.assert_allclose(rc.l_eff(window, wl), [100.0, 4096.0, 4096.0])
    np.testing.assert_allclose(rc.l_store(window, wl), [100.0, 4096.0, 4096.0])
    topk = DSV3.replace(top_k=2048.0)
    np.testing.assert_allclose(rc.l_eff(topk, wl), [100.0, 2048.0, 2048.0])
    np.testing.assert_allclose(rc.l_store(topk, wl), L)  # top-k still stores every token
    sq = DSV3.replace(sqrt_coeff=8.0)
    np.testing.assert_allclose(rc.l_eff(sq, wl), [80.0, 800.0, 8000.0])
    np.testing.assert_allclose(rc.l_store(sq, wl), L)


def _grid(n_hw=10, n_model=10, n_batch=100, n_context=100, dtype=jnp.float64):
    rng = np.random.default_rng(0)
    hw = rc.Hardware(bw=rng.uniform(1e12, 1e13, (n_hw, 1, 1, 1)),
                     c_over_bw=rng.uniform(100, 600, (n_hw, 1, 1, 1)),
                     capacity=rng.uniform(80e9, 300e9, (n_hw, 1, 1, 1)),
                     price=rng.uniform(1, 10, (n_hw, 1, 1, 1)) / 3600,
                     chips=np.full((n_hw, 1, 1, 1), 8.0))
    m = rc.Model(n_total=rng.uniform(8e9, 7e11, (1, n_model, 1, 1)),
                 sparsity=rng.uniform(1, 30, (1, n_model, 1, 1)),
                 kv_bytes_per_token=rng.uniform(3e4, 3e5, (1, n_model, 1, 1)),
                 bytes_per_weight=np.ones((1, n_model, 1, 1)))
    wl = rc.Workload(batch=rc.along(np.geomspace(1, 65536, n_batch), 2, 4),
                     context=rc.along(np.geomspace(1024, 1e6, n_context), 3, 4))
    return hw.astype(dtype), m.astype(dtype), wl.astype(dtype)


@pytest.mark.slow  # a million-point grid (make test-fast skips it)
def test_jit_vmap_grad_on_a_million_point_grid_in_one_call():
    hw, m, wl = _grid()
    assert hw.shape == (10, 1, 1, 1)

    @jax.jit
    def values(hw, m, wl):
        return rc.cost_per_token(hw, m, wl), rc.regime(hw, m, wl)

    cost, regime = values(hw, m, wl)
    assert cost.shape == (10, 10, 100, 100) and cost.size >= 10**6
    assert np.all(np.isfinite(cost))

    # grad of a scalar reduction over the whole grid gives a Hardware of per-chip sensitivities
    g = jax.jit(jax.grad(lambda h: jnp.sum(rc.t_step(h, m, wl))))(hw)
    assert isinstance(g, rc.Hardware) and g.bw.shape == (10, 1, 1, 1)
    assert np.all(np.asarray(g.bw) < 0)  # more bandwidth never slows a step

    # vmap over the hardware axis equals the broadcast evaluation
    hw_1d = jax.tree.map(lambda x: x.reshape(-1) if x.ndim else x, hw)
    axes = jax.tree.map(lambda x: 0 if x.ndim else None, hw_1d)
    per_hw = jax.vmap(rc.cost_per_token, in_axes=(axes, None, None))(hw_1d, m, wl)
    np.testing.assert_allclose(per_hw[:, 0], cost, rtol=1e-12)

    # sensitivities of the batch-reduced optimum over the 3-D (hw, model, context) grid
    s = rc.sensitivities(hw, m, wl.replace(batch=1.0), knobs=("bw", "c_over_bw", "sparsity"))
    e = np.asarray(s["elasticity"]["b_star"]["c_over_bw"])
    codes = np.asarray(rc.binding(hw, m, wl.replace(batch=1.0)))
    ok = np.asarray(s["reason"]) == 0
    assert e.shape == (10, 10, 1, 100)
    # crossover-bound points grow with the balance; capacity-bound ones do not move
    assert np.all(e[ok & (codes == 0)] > 0)
    np.testing.assert_allclose(e[ok & (codes == 1)], 0.0, atol=1e-12)


def test_jitted_entry_point_does_not_recompile():
    traces = []

    @jax.jit
    def f(hw, m, wl):
        traces.append(1)
        return rc.cost_at_b_star(hw, m, wl)

    hw, m, wl = _grid(3, 3, 1, 7)
    wl = wl.replace(batch=jnp.ones_like(wl.batch))
    f(hw, m, wl)
    hw2 = hw.replace(bw=hw.bw * 1.5)
    f(hw2, m.replace(sparsity=m.sparsity * 2), wl)
    assert len(traces) == 1
    # the packaged sensitivities entry point too
    knobs = ("bw", "sparsity")
    rc.sensitivities(hw, m, wl, knobs=knobs)
    before = rc.sensitivities._cache_size()
    rc.sensitivities(hw2, m, wl, knobs=knobs)
    assert rc.sensitivities._cache_size() == before


@pytest.mark.slow  # make test runs it; make test-fast leaves it out (issue 9)
def test_float32_agrees_with_float64_away_from_boundaries():
    hw, m, wl = _grid(5, 5, 40, 40)
    outs64 = {name: np.asarray(fn(hw, m, wl)) for name, fn in
              [("cost", rc.cost_per_token), ("t_step", rc.t_step), ("mfu", rc.mfu)]}
    f32 = [t.astype(jnp.float32) for t in (hw, m, wl)]
    outs32 = {name: fn(*f32) for name, fn in
              [("cost", rc.cost_per_token), ("t_step", rc.t_step), ("mfu", rc.mfu)]}
    t_c, t_m = np.asarray(rc.t_compute(hw, m, wl)), np.asarray(rc.t_memory(hw, m, wl))
    away = np.abs(t_c / t_m - 1) > 1e-3  # not on the compute/memory boundary
    for name, v32 in outs32.items():
        assert v32.dtype == jnp.float32
        np.testing.assert_allclose(np.asarray(v32)[away], outs64[name][away], rtol=1e-5)
    knobs = ("bw", "c_over_bw", "sparsity")
    s32 = rc.sensitivities(*[t.replace(batch=1.0) if isinstance(t, rc.Workload) else t
                             for t in f32], knobs=knobs)
    s64 = rc.sensitivities(hw, m, wl.replace(batch=1.0), knobs=knobs)
    assert s32["value"]["b_star"].dtype == jnp.float32
    b32, b64 = np.asarray(s32["value"]["b_star"]), np.asarray(s64["value"]["b_star"])
    both = np.isfinite(b64) & (np.asarray(s64["reason"]) == 0)
    np.testing.assert_allclose(b32[both], b64[both], rtol=1e-5)


def test_reverse_mode_grad_over_grid_is_nan_free_where_feasible():
    hw, m, wl = _grid(4, 4, 1, 16)
    wl = wl.replace(batch=jnp.ones_like(wl.batch))
    feasible = np.asarray(rc.binding(hw, m, wl)) != 3

    def total(h):
        c = rc.cost_at_b_star(h, m, wl)
        return jnp.sum(jnp.where(feasible, c, 0.0))

    g = jax.grad(total)(hw)
    for leaf in jax.tree.leaves(g):
        assert np.all(np.isfinite(np.asarray(leaf)))


@pytest.mark.parametrize("fn", [rc.b_star, rc.cost_at_b_star, rc.latency_at_b_star])
def test_outputs_broadcast_to_grid_shape(fn):
    hw, m, wl = _grid(2, 3, 1, 5)
    assert fn(hw, m, wl).shape == (2, 3, 1, 5)


def test_jit_with_constants_equals_plain_evaluation():
    hw, m, wl = _grid(3, 4, 5, 6)
    hw = hw.replace(chips=8.0, flops_eff=0.7)  # 0-d leaves become compile-time constants
    f = rc.jit_with_constants(lambda h, mm, w: (rc.t_step(h, mm, w), rc.b_star(h, mm, w)),
                              hw, m, wl)
    got = f(hw, m, wl)
    np.testing.assert_allclose(got[0], rc.t_step(hw, m, wl), rtol=1e-12)
    np.testing.assert_allclose(got[1], rc.b_star(hw, m, wl), rtol=1e-12)
    hw2 = hw.replace(bw=hw.bw * 2)  # array leaves may change between calls
    np.testing.assert_allclose(f(hw2, m, wl)[0], rc.t_step(hw2, m, wl), rtol=1e-12)
