"""Evaluate a core function at a few points in NumPy: one trace, no XLA dispatch per operation.

A single CLI point (``rooflax sensitivity``, ``query``, ``estimate``) is a graph of a few thousand
scalar operations. Compiling it costs seconds and running it op by op costs ≈0.2 ms of XLA
dispatch per operation; tracing it once to a jaxpr and walking the equations with NumPy costs
microseconds per operation. The result equals JAX's to rounding (tests compare the two).
Primitives without a NumPy rule here fall back to JAX itself, so nothing is ever wrong, only slower.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jax.extend import core as jcore


def _broadcast_in_dim(x, *, shape, broadcast_dimensions, **_):
    x = np.asarray(x)
    expanded = [1] * len(shape)
    for src, dst in enumerate(broadcast_dimensions):
        expanded[dst] = x.shape[src]
    return np.broadcast_to(x.reshape(expanded), shape)


def _select_n(which, *cases):
    which = np.asarray(which)
    if which.dtype == np.bool_:
        return np.where(which, cases[1], cases[0]) if len(cases) == 2 else cases[0]
    return np.choose(which.astype(np.int64), np.broadcast_arrays(*cases))


def _div(x, y):
    if np.issubdtype(np.result_type(x, y), np.integer):
        return np.trunc(np.true_divide(x, y)).astype(np.result_type(x, y))
    return np.true_divide(x, y)


def _slice(x, *, start_indices, limit_indices, strides, **_):
    strides = strides or (1,) * len(start_indices)
    return np.asarray(x)[tuple(slice(a, b, s) for a, b, s in zip(start_indices, limit_indices, strides, strict=True))]


def _reduce(fn):
    return lambda x, *, axes, **_: fn(x, axis=tuple(axes))


def _cumulative(fn):
    def rule(x, *, axis, reverse, **_):
        x = np.asarray(x)
        return np.flip(fn(np.flip(x, axis), axis=axis), axis) if reverse else fn(x, axis=axis)

    return rule


def _iota(*, dtype, shape, dimension, **_):
    line = np.arange(shape[dimension], dtype=dtype)
    return np.broadcast_to(line.reshape([-1 if i == dimension else 1 for i in range(len(shape))]), shape)


_lgamma = np.vectorize(math.lgamma, otypes=[np.float64])


def _round(x, *, rounding_method, **_):
    if int(rounding_method) == 1:  # to nearest even
        return np.round(x)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)  # away from zero


def _positional(f):
    return lambda *args, **_: f(*args)


#: primitive name → NumPy rule (positional operands, the equation's params as keywords).
RULES: dict[str, Callable[..., Any]] = {
    **{name: _positional(f) for name, f in {
        "add": np.add, "add_any": np.add, "sub": np.subtract, "mul": np.multiply,
        "neg": np.negative, "max": np.maximum, "min": np.minimum, "abs": np.abs, "sign": np.sign,
        "sqrt": np.sqrt, "rsqrt": lambda x: 1.0 / np.sqrt(x), "exp": np.exp, "log": np.log,
        "log1p": np.log1p, "expm1": np.expm1, "tanh": np.tanh, "floor": np.floor, "ceil": np.ceil,
        "pow": np.power, "is_finite": np.isfinite, "eq": np.equal, "ne": np.not_equal,
        "lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal,
        "and": np.bitwise_and, "or": np.bitwise_or, "xor": np.bitwise_xor, "not": np.invert,
        "rem": np.fmod, "div": _div, "select_n": _select_n, "square": np.square,
        "lgamma": _lgamma,
        "logistic": lambda x: 1.0 / (1.0 + np.exp(-x)), "stop_gradient": lambda x: x,
        "copy": np.copy}.items()},
    "integer_pow": lambda x, *, y, **_: np.power(x, y) if y >= 0 else 1.0 / np.power(x, -y),
    "convert_element_type": lambda x, *, new_dtype, **_: np.asarray(x).astype(new_dtype),
    "broadcast_in_dim": _broadcast_in_dim,
    "squeeze": lambda x, *, dimensions, **_: np.squeeze(x, axis=tuple(dimensions)),
    "reshape": lambda x, *, new_sizes, **_: np.reshape(x, new_sizes),
    "transpose": lambda x, *, permutation, **_: np.transpose(x, permutation),
    "slice": _slice,
    "stack": lambda *xs, axis, **_: np.stack(xs, axis=axis),
    "concatenate": lambda *xs, dimension, **_: np.concatenate(xs, axis=dimension),
    "reduce_sum": _reduce(np.sum), "reduce_max": _reduce(np.max), "reduce_min": _reduce(np.min),
    "reduce_prod": _reduce(np.prod), "reduce_and": _reduce(np.all), "reduce_or": _reduce(np.any),
    "round": _round, "iota": _iota,
    "cumsum": _cumulative(np.cumsum), "cumprod": _cumulative(np.cumprod),
    "cummax": _cumulative(np.maximum.accumulate), "cummin": _cumulative(np.minimum.accumulate),
}

_CALLS = ("pjit", "jit", "closed_call", "core_call", "custom_jvp_call", "custom_vjp_call")


@dataclasses.dataclass(frozen=True)
class Program:
    """A traced function as plain data: equations ``(primitive name, params, input refs, output
    slots, output dtypes)`` over numbered slots; a ref is a slot number or :class:`Const`.
    ``portable`` when every primitive has a NumPy rule (then the program pickles: callers may
    cache it on disk, keyed by what determines the trace)."""

    n_in: int
    n_slots: int
    eqns: tuple
    outs: tuple
    out_tree: Any
    portable: bool


@dataclasses.dataclass(frozen=True)
class Const:
    """A value inlined in the program (a literal or a traced constant)."""

    value: Any


def _sub_jaxpr(eqn):
    for key in ("jaxpr", "call_jaxpr", "fun_jaxpr"):
        sub = eqn.params.get(key)
        if sub is not None:
            return sub if isinstance(sub, jcore.ClosedJaxpr) else jcore.ClosedJaxpr(sub, ())
    return None


def _flatten(jaxpr, consts, ins: list, eqns: list, counter: list) -> list:
    """Append the jaxpr's equations to ``eqns`` (nested calls inlined); its output refs."""
    env: dict[Any, Any] = {v: Const(np.asarray(c)) for v, c in zip(jaxpr.constvars, consts, strict=True)}
    env.update(zip(jaxpr.invars, ins, strict=True))

    def ref(v):
        return Const(np.asarray(v.val)) if isinstance(v, jcore.Literal) else env[v]

    for eqn in jaxpr.eqns:
        args = [ref(v) for v in eqn.invars]
        sub = _sub_jaxpr(eqn) if eqn.primitive.name in _CALLS else None
        if sub is not None:
            outs = _flatten(sub.jaxpr, sub.consts, args, eqns, counter)
        else:
            outs = list(range(counter[0], counter[0] + len(eqn.outvars)))
            counter[0] += len(outs)
            prim = eqn.primitive.name if eqn.primitive.name in RULES else eqn.primitive
            eqns.append((prim, dict(eqn.params), tuple(args), tuple(outs),
                         tuple(v.aval.dtype for v in eqn.outvars), eqn.primitive.multiple_results))
        env.update(zip(eqn.outvars, outs, strict=True))
    return [ref(v) for v in jaxpr.outvars]


def trace(fn: Callable[..., Any], *args: Any) -> Program:
    """Trace ``fn(*args)`` once (every jitted helper inlined) into a :class:`Program`."""
    with jax.disable_jit():
        closed, shape = jax.make_jaxpr(fn, return_shape=True)(*args)
    n_in = len(closed.jaxpr.invars)
    eqns: list = []
    counter = [n_in]
    outs = _flatten(closed.jaxpr, closed.consts, list(range(n_in)), eqns, counter)
    portable = all(isinstance(e[0], str) for e in eqns)
    return Program(n_in, counter[0], tuple(eqns), tuple(outs), jax.tree.structure(shape), portable)


def _apply(prim, params: dict, args: list, multiple: bool) -> list:
    """One equation: its NumPy rule, or JAX itself where there is none (correct, one dispatch)."""
    if isinstance(prim, str):
        out = RULES[prim](*args, **params)
    else:
        out = jax.tree.map(np.asarray, prim.bind(*map(jax.numpy.asarray, args), **params))
    return list(out) if multiple else [out]


def run(program: Program, *args: Any) -> Any:
    """The program's outputs for pytree ``args`` (the same structure it was traced with), in NumPy."""
    slots: list[Any] = [np.asarray(x) for x in jax.tree.leaves(args)]
    slots.extend([None] * (program.n_slots - len(slots)))

    def read(r):
        return r.value if isinstance(r, Const) else slots[r]

    with np.errstate(all="ignore"):  # inf and NaN are answers here (infeasible, no price)
        for prim, params, ins, outs, dtypes, multiple in program.eqns:
            for o, x, dt in zip(outs, _apply(prim, params, [read(r) for r in ins], multiple), dtypes,
                                strict=True):
                slots[o] = np.asarray(x).astype(dt, copy=False)
    return jax.tree.unflatten(program.out_tree, [read(r) for r in program.outs])


def evaluate(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` for pytree arguments, traced once and evaluated in NumPy (NumPy arrays out)."""
    return run(trace(fn, *args), *args)
