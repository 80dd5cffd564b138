"""core.interpret (a traced function evaluated in NumPy) against JAX itself, and the CLI's
on-disk program cache (results.programs): same numbers, no trace when cached, new key on change."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rooflax import core as rc
from rooflax.core import interpret
from rooflax.results import programs
from rooflax.results.point import QUANTITIES, build_point, predicted_trees


def _same(a, b, atol=None):
    """Equal to rounding, NaN and ±inf in the same places. ``atol`` (elementwise) is the value's
    natural scale times 1e-10 where an exact 0 comes out as ulps of cancellation; by default the
    array's largest value sets it."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert a.shape == b.shape
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_array_equal(np.isposinf(a), np.isposinf(b))
    ok = np.isfinite(b)
    atol = np.broadcast_to(1e-10 * np.max(np.abs(b[ok]), initial=0.0) if atol is None else atol, b.shape)
    assert np.all(np.abs(a[ok] - b[ok]) <= 1e-10 * np.abs(b[ok]) + atol[ok]), (a, b)


POINTS = [  # a feasible MoE point, a dense model that does not fit one chip, an SLO-bound point
    dict(hardware="h200", model="deepseek-v3", chips=8, precision="fp8", context=32768.0),
    dict(hardware="h100-sxm", model="llama-3.1-70b", context=8192.0),
    dict(hardware="b200", model="qwen3-235b-a22b", chips=4, precision="fp8", context=1024.0,
         slo=0.02),
]


def _grid(pt):
    """The point's workload along batch × context (broadcast leaves)."""
    batch = jnp.asarray([1.0, 7.0, 64.0, 1000.0, 1e5])[:, None]
    context = jnp.asarray([0.0, 1024.0, 131072.0])[None, :]
    return pt.wl.replace(batch=batch, context=context)


@pytest.mark.parametrize("where", POINTS, ids=lambda d: f"{d['hardware']}-{d['model']}")
def test_every_quantity_matches_jax_on_a_grid(where):
    pt = build_point(**where)
    wl = _grid(pt)
    for q in QUANTITIES.values():
        with jax.disable_jit():
            ref = q(pt.hw, pt.model, wl)
        _same(interpret.evaluate(q, pt.hw, pt.model, wl), ref)


@pytest.mark.parametrize("where", POINTS, ids=lambda d: f"{d['hardware']}-{d['model']}")
def test_sensitivities_match_jax(where):
    """Values, partials (a vmapped JVP), elasticities and codes: every leaf equal to JAX's."""
    pt = build_point(**where)
    wl = _grid(pt)
    ours = interpret.evaluate(lambda h, m, w: rc.sensitivities(h, m, w), pt.hw, pt.model, wl)
    with jax.disable_jit():  # op by op, in the trace's order (XLA's fusions leave 1e-23 for an exact 0)
        ref = rc.sensitivities(pt.hw, pt.model, wl)
    assert jax.tree.structure(ours) == jax.tree.structure(ref)
    for key in ("value", "reason", "binding"):
        for a, b in zip(jax.tree.leaves(ours[key]), jax.tree.leaves(ref[key]), strict=True):
            _same(a, b)
    trees = {"hardware": pt.hw, "model": pt.model, "workload": wl}
    for o, by_knob in ref["partial"].items():
        y = np.abs(np.asarray(ref["value"][o], dtype=float))
        for k in by_knob:
            x = np.abs(np.asarray(getattr(trees[rc.KNOBS[k][0]], rc.KNOBS[k][1]), dtype=float))
            # ∂y/∂x is of order y/x (y per unit of the knob where x is 0 or inf)
            natural = np.where((x > 0) & np.isfinite(x), y / np.where(x > 0, x, 1.0), y)
            natural = np.nan_to_num(natural)
            if np.broadcast_shapes(natural.shape, np.shape(by_knob[k])) != np.shape(by_knob[k]):
                natural = np.max(natural)  # a batch-reduced output against a per-batch knob
            _same(ours["partial"][o][k], by_knob[k], atol=1e-7 * natural)  # exact 0s: ulps of bigger terms
            _same(ours["elasticity"][o][k], ref["elasticity"][o][k], atol=1e-10)  # dimensionless


def test_prediction_and_estimate_match_jax():
    """The calibrated step (expected-max experts: lgamma, cumsum, iota) and estimate's numbers."""
    from rooflax.core import predict
    from rooflax.results import estimate as E

    pt = build_point("h200", "deepseek-v3", chips=8, precision="fp8", context=8192.0)
    hw, model, eng = predicted_trees(pt)
    wl = _grid(pt)
    _same(interpret.evaluate(predict.step_time, hw, model, wl, eng), predict.step_time(hw, model, wl, eng))
    args = (hw, model, 256.0, 8192.0, 1024.0, 700.0)
    for side in (None, eng):
        ours, ref = interpret.evaluate(E.numbers, *args, side), jax.jit(E.numbers)(*args, side)
        assert set(ours) == set(ref)
        for k in ref:
            _same(ours[k], ref[k])


def test_rules_match_lax_primitives():
    """The NumPy rules the tests above may not reach, one primitive each, against lax."""
    x = jnp.asarray([[-2.5, -0.5, 0.0], [0.5, 1.5, 2.5]])
    y = jnp.asarray([[3.0, -2.0, 0.5], [2.0, 0.0, -1.0]])
    fns = [lambda: jnp.round(x), lambda: jax.lax.round(x, jax.lax.RoundingMethod.TO_NEAREST_EVEN),
           lambda: jnp.cumsum(x, axis=1), lambda: jax.lax.cumsum(x, axis=0, reverse=True),
           lambda: jnp.cumprod(x, axis=1), lambda: jax.lax.cummax(x, axis=1),
           lambda: jnp.sum(x, axis=0), lambda: jnp.max(x), lambda: jnp.min(x, axis=1),
           lambda: jnp.prod(y), lambda: jnp.concatenate([x, y]), lambda: x.T, lambda: x.reshape(3, 2),
           lambda: jnp.fmod(x, y), lambda: jax.lax.rem(jnp.asarray([7, -7]), jnp.asarray([2, 2])),
           lambda: jax.lax.div(jnp.asarray([7, -7]), jnp.asarray([2, 2])),
           lambda: jax.lax.lgamma(jnp.abs(y) + 0.5), lambda: jnp.exp(x), lambda: jnp.log1p(jnp.abs(x)),
           lambda: jnp.tanh(x), lambda: jax.nn.sigmoid(x), lambda: jnp.sign(x), lambda: jnp.floor(x),
           lambda: jnp.ceil(x), lambda: jnp.arange(6).reshape(2, 3), lambda: jax.lax.rsqrt(jnp.abs(x) + 1),
           lambda: x[:, 1:], lambda: jnp.where(x > 0, x, y), lambda: jnp.square(x),
           lambda: jnp.logical_xor(x > 0, y > 0), lambda: ~(x > 0), lambda: jnp.any(x > 2),
           lambda: jnp.all(x > -3, axis=0), lambda: jnp.stack([x, y], axis=1)]
    for fn in fns:
        _same(interpret.evaluate(fn), fn())


def test_unknown_primitive_falls_back_to_jax():
    prog = interpret.trace(lambda a: jax.lax.erf_inv(a) * 2.0, jnp.asarray([0.1, 0.5]))
    assert not prog.portable  # erf_inv has no NumPy rule: JAX computes it
    _same(interpret.run(prog, jnp.asarray([0.1, 0.5])), 2.0 * jax.lax.erf_inv(jnp.asarray([0.1, 0.5])))


def test_program_cache_skips_the_trace(tmp_path, monkeypatch):
    monkeypatch.setenv("ROOFLAX_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("ROOFLAX_NO_CACHE", raising=False)
    pt = build_point("h200", "deepseek-v3", chips=8, precision="fp8", context=32768.0)
    first = programs.evaluate("test:b_star", rc.b_star, pt.hw, pt.model, pt.wl)
    assert len(list((tmp_path / "programs").glob("*.pkl"))) == 1

    def no_trace(*a, **k):
        raise AssertionError("traced although cached")

    monkeypatch.setattr(interpret, "trace", no_trace)
    _same(programs.evaluate("test:b_star", rc.b_star, pt.hw, pt.model, pt.wl), first)
    other = pt.wl.replace(batch=jnp.asarray([1.0, 2.0]))  # another shape: another key, traced
    with pytest.raises(AssertionError, match="traced"):
        programs.evaluate("test:b_star", rc.b_star, pt.hw, pt.model, other)
    with pytest.raises(AssertionError, match="traced"):  # another static part: another key
        programs.evaluate("test:b_star", rc.b_star, pt.hw, pt.model, pt.wl, static=("x",))


def test_program_cache_survives_a_corrupt_entry_and_can_be_off(tmp_path, monkeypatch):
    monkeypatch.setenv("ROOFLAX_CACHE_DIR", str(tmp_path))
    pt = build_point("h100-sxm", "llama-3.1-8b")
    ref = np.asarray(rc.b_max(pt.hw, pt.model, pt.wl))
    programs.evaluate("test:b_max", rc.b_max, pt.hw, pt.model, pt.wl)
    (entry,) = (tmp_path / "programs").glob("*.pkl")
    entry.write_bytes(b"not a pickle")
    _same(programs.evaluate("test:b_max", rc.b_max, pt.hw, pt.model, pt.wl), ref)
    monkeypatch.setenv("ROOFLAX_NO_CACHE", "1")
    monkeypatch.setenv("ROOFLAX_CACHE_DIR", str(tmp_path / "off"))
    _same(programs.evaluate("test:b_max", rc.b_max, pt.hw, pt.model, pt.wl), ref)
    assert not (tmp_path / "off").exists()
