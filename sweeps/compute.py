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
        out[key] = a.reshape(shape).astype(plan.dtype)
    return out, sl


@functools.lru_cache(maxsize=16)
def _kernel(dims: tuple[str, ...], values: tuple[str, ...], sens, dtype: str, var_dims: tuple):
    import jax
    import jax.numpy as jnp

    from rooflax import core as rc
    from rooflax.core import optimum as opt
    from rooflax.core import roofline as rl
    from rooflax.core.sensitivity import sensitivities

    from .config import BATCH_OUTPUTS, OPTIMUM_OUTPUTS

    bax = dims.index("batch")
    cax = dims.index("context")
    vd = dict(var_dims)

    def f(leaves):
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
        if sens is not None:
            of, knobs, kinds = sens
            r = sensitivities(hw, m, wl1, outputs=of, knobs=knobs)
            for kind in kinds:
                for o in of:
                    for k in knobs:
                        y = r[kind][o][k]
                        out[f"{kind}__{o}__{k}"] = jnp.squeeze(jnp.broadcast_to(y, nob), bax)
            out["sensitivity_reason"] = jnp.squeeze(jnp.broadcast_to(r["reason"], nob), bax)
        res = {}
        for k, v in out.items():
            res[k] = v.astype(vd[k])
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
