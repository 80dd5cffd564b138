"""Sensitivities of the optimum: partial derivatives and elasticities, by JAX autodiff.

The canonical knobs (SPEC "Sensitivity") are leaves of the three pytrees; each
output (B*, cost/latency/throughput at B*) is differentiated through the same
closed forms that compute it. Because every output element depends on exactly
one element of each (broadcast) leaf, one forward-mode JVP with a tangent of
ones on a knob gives the elementwise partial ∂y/∂x over the whole grid.

Where a derivative does not exist the partial is NaN and ``reason`` says why
(codes in :data:`REASONS`): an infeasible point, or a tie between two binding
constraints (a kink of B*). Elasticities ∂ln y/∂ln x are also NaN where the knob
is 0 or infinite (e.g. ``slo = inf``: no target).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp

from . import optimum as opt
from . import predict
from . import quantities as Q
from .specs import Hardware, Model, Workload

#: knob name → (which pytree, field), from the registry (:mod:`rooflax.core.quantities`).
#: ∂/∂bw holds c_over_bw fixed; ∂/∂sparsity holds n_total fixed. Extended-model knobs have
#: neutral defaults: 0 or inf partials/elasticities are NaN where x is 0/inf.
KNOBS: dict[str, tuple[str, str]] = {k: (Q.KNOBS[k].tree, Q.KNOBS[k].field) for k in Q.SENSITIVITY_KNOBS}

#: The knobs of the seeds' model (SPEC "Sensitivity").
SEED_KNOBS = Q.SEED_KNOBS

#: The outputs whose sensitivities are reported, each a function of (hw, model, wl).
OUTPUTS: dict[str, Callable[[Hardware, Model, Workload], jax.Array]] = {
    name: getattr(opt, name) for name in Q.SENSITIVITY_OUTPUTS}

#: Further outputs one may ask :func:`sensitivities` for (not in the default set).
EXTRA_OUTPUTS: dict[str, Callable[[Hardware, Model, Workload], jax.Array]] = {
    "cost_floor": opt.cost_floor,
    "b_x": opt.b_x,
}

#: Reason codes of :func:`sensitivities`.
REASONS = Q.REASONS
OK, INFEASIBLE, TIE = 0, 1, 2

DEFAULT_KNOBS = tuple(KNOBS)


def _candidates(hw: Hardware, model: Model, wl: Workload) -> tuple[jax.Array, ...]:
    """(B_x, B_max, B_slo), sequences: evaluated once for the binding code and the reason."""
    return opt.b_x(hw, model, wl), opt.b_max(hw, model, wl), opt.b_slo(hw, model, wl)


def _tie_of(a: jax.Array, b: jax.Array, c: jax.Array) -> jax.Array:
    """True where the two smallest of (B_x, B_max, B_slo) coincide (a kink of B*)."""
    lowest = jnp.minimum(jnp.minimum(a, b), c)
    second = jnp.maximum(jnp.minimum(a, b), jnp.minimum(jnp.maximum(a, b), c))  # the median
    rtol = 64 * jnp.finfo(lowest.dtype).eps
    return jnp.isfinite(lowest) & (jnp.abs(second - lowest) <= rtol * jnp.abs(lowest))


def _tie(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """True where the two smallest of (B_x, B_max, B_slo) coincide (a kink of B*)."""
    return _tie_of(*_candidates(hw, model, wl))


def _reason_of(binding: jax.Array, tie: jax.Array) -> jax.Array:
    infeasible = binding == opt.INFEASIBLE
    return jnp.where(infeasible, INFEASIBLE, jnp.where(tie, TIE, OK)).astype(jnp.uint8)


def reason(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """Per-point reason code (uint8) for NaN partials; 0 where all partials exist."""
    cand = _candidates(hw, model, wl)
    return _reason_of(opt._code(*cand), _tie_of(*cand))


def _tangent(trees: tuple[Hardware, Model, Workload], knob: str):
    which, field = KNOBS[knob]
    index = ("hardware", "model", "workload").index(which)
    zeros = jax.tree.map(jnp.zeros_like, trees)
    leaf = getattr(trees[index], field)
    one = zeros[index].replace(**{field: jnp.ones_like(leaf)})
    return tuple(one if i == index else z for i, z in enumerate(zeros))


def _knob(trees: tuple[Hardware, Model, Workload], knob: str) -> jax.Array:
    which, field = KNOBS[knob]
    return getattr(trees[("hardware", "model", "workload").index(which)], field)


def _with_knobs(trees, values: Mapping[str, jax.Array]):
    """``trees`` with the leaves named by ``values`` (knob → array) replaced."""
    changes: list[dict[str, jax.Array]] = [{}, {}, {}]
    for knob, v in values.items():
        which, field = KNOBS[knob]
        changes[("hardware", "model", "workload").index(which)][field] = v
    return tuple(t.replace(**c) if c else t for t, c in zip(trees, changes, strict=True))


def _as_float(tree, dtype):
    def conv(x):
        x = jnp.asarray(x)
        if dtype is not None:
            return x.astype(dtype)
        return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.float64)

    return jax.tree.map(conv, tree)


@functools.partial(jax.jit, static_argnames=("outputs", "knobs"))
def sensitivities(
    hw: Hardware,
    model: Model,
    wl: Workload,
    outputs: Sequence[str] = tuple(OUTPUTS),
    knobs: Sequence[str] = DEFAULT_KNOBS,
) -> dict[str, Mapping]:
    """Values, partials and elasticities of ``outputs`` with respect to ``knobs``.

    Returns ``{"value": {out: y}, "partial": {out: {knob: ∂y/∂x}},
    "elasticity": {out: {knob: ∂ln y/∂ln x}}, "reason": codes, "binding": codes of
    :data:`rooflax.core.optimum.BINDINGS`}``, every array of
    the broadcast shape of the inputs. Units of a partial are the output's unit
    per the knob's SI unit (e.g. $/token per (bytes/s) for cost and bw).
    """
    trees = _as_float((hw, model, wl), None)
    outputs, knobs = tuple(outputs), tuple(knobs)

    def f(h, m, w):
        shared = opt.at_b_star(h, m, w)  # the optimum once for every output evaluated at it
        return {name: shared[name] if name in shared else EXTRA_OUTPUTS[name](h, m, w)
                for name in outputs}

    cand = _candidates(*trees)
    binding = opt._code(*cand)
    code = _reason_of(binding, _tie_of(*cand))
    values, dys = _jvp_knobs(f, trees, knobs)
    partial, elasticity = _elasticities(values, dys, trees, knobs, code != OK)
    return {"value": values, "partial": partial, "elasticity": elasticity, "reason": code,
            "binding": binding}


def _jvp_knobs(f: Callable, trees, knobs: tuple[str, ...]):
    """(f(*trees), tangents): ``tangents[o][i]`` is ∂f_o/∂knobs[i], elementwise.

    Differentiates with respect to the requested knobs only (every other leaf is a constant,
    so carries no tangent), with one JVP vmapped over one-hot tangents: a single trace of the
    derivative however many knobs; the JVP's primal output is the values (evaluated once).
    """
    if not knobs:
        return f(*trees), {}
    primal = {k: _knob(trees, k) for k in knobs}

    def g(kv):
        return f(*_with_knobs(trees, kv))

    tangents = {k: jnp.stack([jnp.ones_like(v) if j == i else jnp.zeros_like(v)
                              for j in range(len(knobs))])
                for i, (k, v) in enumerate(primal.items())}
    return jax.vmap(lambda t: jax.jvp(g, (primal,), (t,)), out_axes=(None, 0))(tangents)


def _elasticities(values, dys, trees, knobs: tuple[str, ...], bad: jax.Array):
    """({o: {knob: ∂y/∂x}}, {o: {knob: ∂ln y/∂ln x}}): NaN where ``bad``; elasticities also
    NaN where the knob is 0 or infinite."""
    partial: dict[str, dict[str, jax.Array]] = {o: {} for o in values}
    elasticity: dict[str, dict[str, jax.Array]] = {o: {} for o in values}
    for i, knob in enumerate(knobs):
        x = _knob(trees, knob)
        x_ok = jnp.isfinite(x) & (x != 0)
        for o in values:
            d = jnp.where(bad, jnp.nan, dys[o][i])
            partial[o][knob] = d
            elasticity[o][knob] = jnp.where(x_ok, d * x / values[o], jnp.nan)
    return partial, elasticity


#: The prediction's outputs whose sensitivities :func:`predicted_sensitivities` reports.
PREDICTED_OUTPUTS = ("latency", "tokens_per_second_per_user", "throughput", "cost_per_token")


@functools.partial(jax.jit, static_argnames=("outputs", "knobs"))
def predicted_sensitivities(
    hw: Hardware,
    model: Model,
    wl: Workload,
    eng: predict.Engine,
    outputs: Sequence[str] = PREDICTED_OUTPUTS,
    knobs: Sequence[str] = DEFAULT_KNOBS,
) -> dict[str, Mapping]:
    """Values, partials and elasticities of the calibrated prediction at the workload's batch.

    Outputs are :func:`rooflax.core.predict.outputs` (TPOT, tokens/s per user, tokens/s of the
    replica, $ per output token) at B = ``wl.batch`` — the prediction has no closed-form optimum,
    so the batch is given. Partials are NaN where there is no step (weights that do not fit). Same keys as
    :func:`sensitivities` less ``reason`` and ``binding``; units from the registry.
    """
    trees = _as_float((hw, model, wl), None)
    outputs, knobs = tuple(outputs), tuple(knobs)

    def f(h, m, w):
        out = predict.outputs(h, m, w, eng)
        return {o: out[o] for o in outputs}

    values, dys = _jvp_knobs(f, trees, knobs)
    bad = ~(predict.fits(*trees[:2]) & jnp.isfinite(predict.step_time(*trees, eng)))  # no step
    partial, elasticity = _elasticities(values, dys, trees, knobs, bad)
    return {"value": values, "partial": partial, "elasticity": elasticity}


def elasticity(
    fn: Callable[[Hardware, Model, Workload], jax.Array],
    hw: Hardware,
    model: Model,
    wl: Workload,
    knob: str,
) -> jax.Array:
    """Elasticity ∂ln fn/∂ln knob of any rooflax function, elementwise (forward mode)."""
    trees = _as_float((hw, model, wl), None)
    which, field = KNOBS[knob]
    x = getattr(trees[("hardware", "model", "workload").index(which)], field)
    y, dy = jax.jvp(fn, trees, _tangent(trees, knob))
    return dy * x / y
