"""Evaluate one block of a :class:`~rooflax.sweeps.grid.Plan` with the jitted core.

All requested outputs come from ONE jitted function per block shape; edge blocks are padded
(edge values repeated) to the block shape, so a sweep compiles once.
"""

from __future__ import annotations

import functools

import numpy as np

from .grid import HW_FIELDS, MODEL_FIELDS, WL_FIELDS, Plan


def block_inputs(plan: Plan, index: tuple[int, ...]) -> tuple[dict[str, np.ndarray], dict[str, slice]]:
    """The leaves of one block, padded to the block shape and shaped to broadcast over it."""
    sl = plan.block_slices(index)
    ndim = len(plan.dims)
    out = {}
    for key, (ldims, arr) in plan.leaves.items():
        a = np.asarray(arr, dtype=np.float64)
        pad = []
        for d in ldims:
            s = sl[d]
            a = np.take(a, np.arange(s.start, s.stop), axis=len(pad))
            pad.append((0, plan.chunks[d] - (s.stop - s.start)))
        if any(p[1] for p in pad):
            a = np.pad(a, pad, mode="edge")
        shape = [1] * ndim
        for d, n in zip(ldims, a.shape, strict=True):
            shape[plan.dims.index(d)] = n
        out[key] = a.reshape(shape)  # float64: the kernel casts values to plan.dtype
    return out, sl


def _sensitivity_outputs(sens, params, nob, bax, vd) -> dict:
    """Derivatives computed in float64 whatever the storage dtype (float32 AD through the
    optimum gave +inf where float64 gives 1.84-4.42, issue 12), then cast for storage; where
    the cast cannot hold a finite float64 value: NaN with reason ``grid.STORAGE_REASON``."""
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
    import jax
    import jax.numpy as jnp

    from rooflax import core as rc
    from rooflax.core import optimum as opt
    from rooflax.core import roofline as rl

    from .config import BATCH_OUTPUTS, OPTIMUM_OUTPUTS

    bax = dims.index("batch")
    cax = dims.index("context")
    vd = dict(var_dims)

    def f(leaves64):
        leaves = {k: v.astype(dtype) for k, v in leaves64.items()}
        hw = rc.Hardware(**{k: leaves["hw." + k] for k in HW_FIELDS})
        m = rc.Model(**{k: leaves["m." + k] for k in MODEL_FIELDS})
        wl = rc.Workload(**{k: leaves["wl." + k] for k in WL_FIELDS})
        one = jnp.ones((), dtype=dtype)
        wl1 = wl.replace(batch=one)
        full = jnp.broadcast_shapes(*(jnp.shape(x) for x in leaves.values()))
        nob = tuple(1 if i == bax else n for i, n in enumerate(full))
        nobc = tuple(1 if i in (bax, cax) else n for i, n in enumerate(nob))
        out = {}
        for name in values:
            if name in BATCH_OUTPUTS:
                fn = getattr(rl, name, None) or getattr(opt, name)
                out[name] = jnp.broadcast_to(fn(hw, m, wl), full)
            elif name in OPTIMUM_OUTPUTS:
                y = getattr(opt, name)(hw, m, wl1)
                out[name] = jnp.squeeze(jnp.broadcast_to(y, nob), bax)
            else:
                y = getattr(opt, name)(hw, m)
                out[name] = jnp.squeeze(jnp.broadcast_to(y, nobc), (bax, cax))
        res = {k: v.astype(vd[k]) for k, v in out.items()}
        if sens is not None:
            p64 = (rc.Hardware(**{k: leaves64["hw." + k] for k in HW_FIELDS}),
                   rc.Model(**{k: leaves64["m." + k] for k in MODEL_FIELDS}),
                   rc.Workload(**{k: leaves64["wl." + k] for k in WL_FIELDS}).replace(
                       batch=jnp.ones((), jnp.float64)))
            res.update(_sensitivity_outputs(sens, p64, nob, bax, vd))
        return res

    return jax.jit(f)


def kernel_for(plan: Plan):
    var_dims = tuple((k, v.dtype) for k, v in plan.variables.items())
    return _kernel(tuple(plan.dims), plan.values, plan.sens, plan.dtype, var_dims)


def compute_block(plan: Plan, index: tuple[int, ...]) -> tuple[dict[str, np.ndarray], dict[str, slice]]:
    """(variable → numpy array cut to the block's true extent, block slices)."""
    leaves, sl = block_inputs(plan, index)
    res = kernel_for(plan)(leaves)
    out = {}
    for name, arr in res.items():
        a = np.asarray(arr)
        dims = plan.variables[name].dims
        cut = tuple(slice(0, sl[d].stop - sl[d].start) for d in dims)
        out[name] = a[cut]
    return out, sl
