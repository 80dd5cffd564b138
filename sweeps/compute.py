"""Evaluate one block of a :class:`~rooflax.sweeps.grid.Plan` with the jitted core.

A block's inputs are the plan's pytrees with each leaf cut to the block (``jax.tree.map``);
the kernel hands them to the core as they are. All requested outputs come from ONE jitted
function per block shape; edge blocks are padded (edge values repeated) to the block shape, so a
sweep compiles once.
"""

from __future__ import annotations

import functools

import jax
import numpy as np

from .grid import Plan


def _block_leaf(a: np.ndarray, plan: Plan, sl: dict[str, slice]) -> np.ndarray:
    """One leaf cut to a block and padded (edge values repeated) to the block shape along the
    dims it varies along; float64 (the kernel casts values to ``plan.dtype``)."""
    pad = []
    for i, d in enumerate(plan.dims):
        if a.shape[i] == 1:
            pad.append((0, 0))
            continue
        a = a[(slice(None),) * i + (sl[d],)]
        pad.append((0, plan.chunks[d] - a.shape[i]))
    return np.pad(a, pad, mode="edge") if any(p[1] for p in pad) else a


def block_inputs(plan: Plan, index: tuple[int, ...]) -> tuple[dict, dict[str, slice]]:
    """The parameter pytrees of one block (``plan.trees`` with every leaf cut to the block)."""
    sl = plan.block_slices(index)
    trees = jax.tree.map(lambda a: _block_leaf(np.asarray(a, dtype=np.float64), plan, sl), plan.trees)
    return trees, sl


def _sensitivity_outputs(sens, params, nob, bax, vd) -> dict:
    """Derivatives computed in float64 whatever the storage dtype (float32 AD through the
    optimum gave +inf where float64 gives 1.84-4.42, issue 12), then cast for storage; where
    the cast cannot hold a finite float64 value: NaN with reason ``rooflax.core.quantities.STORAGE_REASON``."""
    import jax.numpy as jnp

    from rooflax.core.sensitivity import REASONS, sensitivities

    of, knobs, kinds = sens
    hw, m, wl = params
    r = sensitivities(hw, m, wl, outputs=of, knobs=knobs)
    reason = jnp.asarray(r["reason"])
    out, lost = {}, jnp.zeros(reason.shape, bool)
    for kind in kinds:
        for o in of:
            for k in knobs:
                name = f"{kind}__{o}__{k}"
                y = r[kind][o][k]
                s = y.astype(vd[name])
                bad = jnp.isfinite(y) & (~jnp.isfinite(s) | ((s == 0) & (y != 0)))
                lost = lost | jnp.broadcast_to(bad, jnp.broadcast_shapes(bad.shape, lost.shape))
                out[name] = jnp.where(bad, jnp.nan, s).astype(vd[name])
    reason = jnp.where(lost & (reason == 0), len(REASONS), reason)
    for name, y in list(out.items()) + [("sensitivity_reason", reason)]:
        out[name] = jnp.squeeze(jnp.broadcast_to(y, nob), bax).astype(vd[name])
    return out


@functools.lru_cache(maxsize=16)
def _kernel(dims: tuple[str, ...], values: tuple[str, ...], sens, dtype: str, var_dims: tuple):
    """The jitted block function: a block's ``plan.trees`` (float64 leaves) → variable → array.

    Values are computed in ``dtype`` (the trees cast leaf by leaf), sensitivities in float64.
    """
    import jax.numpy as jnp

    from rooflax.core import optimum as opt
    from rooflax.core import predict
    from rooflax.core import roofline as rl

    from .config import BATCH_OUTPUTS, OPTIMUM_OUTPUTS

    bax = dims.index("batch")
    cax = dims.index("context")
    vd = dict(var_dims)

    def f(trees64):
        trees = jax.tree.map(lambda v: v.astype(dtype), trees64)
        hw, m, wl = trees["hw"], trees["m"], trees["wl"]
        full = jnp.broadcast_shapes(*(jnp.shape(x) for x in jax.tree.leaves(trees)))
        nob = tuple(1 if i == bax else n for i, n in enumerate(full))
        nobc = tuple(1 if i in (bax, cax) else n for i, n in enumerate(nob))
        # physics: calibrated — the prediction (core.predict) for the quantities it covers
        predicted = predict.outputs(hw, m, wl, trees["eng"]) if "eng" in trees else {}
        out = {}
        for name in values:
            if name in predicted:
                out[name] = jnp.broadcast_to(predicted[name], full)
            elif name in BATCH_OUTPUTS:
                fn = getattr(rl, name, None) or getattr(opt, name)
                out[name] = jnp.broadcast_to(fn(hw, m, wl), full)
            elif name in OPTIMUM_OUTPUTS:
                y = getattr(opt, name)(hw, m, wl.replace(batch=jnp.ones((), dtype=dtype)))
                out[name] = jnp.squeeze(jnp.broadcast_to(y, nob), bax)
            else:
                y = getattr(opt, name)(hw, m)
                out[name] = jnp.squeeze(jnp.broadcast_to(y, nobc), (bax, cax))
        res = {k: v.astype(vd[k]) for k, v in out.items()}
        if sens is not None:
            p64 = (trees64["hw"], trees64["m"], trees64["wl"].replace(batch=jnp.ones((), jnp.float64)))
            res.update(_sensitivity_outputs(sens, p64, nob, bax, vd))
        return res

    return jax.jit(f)


def kernel_for(plan: Plan):
    var_dims = tuple((k, v.dtype) for k, v in plan.variables.items())
    return _kernel(tuple(plan.dims), plan.values, plan.sens, plan.dtype, var_dims)


def compute_block(plan: Plan, index: tuple[int, ...]) -> tuple[dict[str, np.ndarray], dict[str, slice]]:
    """(variable → numpy array cut to the block's true extent, block slices).

    Turns float64 on (:func:`rooflax.core.enable_x64`) in the process that runs the block: a Dask
    worker is a process of its own, and sensitivities are always computed in float64."""
    from rooflax.core import enable_x64

    enable_x64()
    trees, sl = block_inputs(plan, index)
    res = kernel_for(plan)(trees)
    out = {}
    for name, arr in res.items():
        a = np.asarray(arr)
        dims = plan.variables[name].dims
        cut = tuple(slice(0, sl[d].stop - sl[d].start) for d in dims)
        out[name] = a[cut]
    return out, sl
