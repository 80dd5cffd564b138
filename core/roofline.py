"""The decode step (SPEC "The decode step"), written as plainly as the equations.

Rule from the seeds: same resource → sum; different resources → max::

    T_compute = B · N_active / C                     (C = FLOPS/2 of the replica, MAC/s)
    T_memory  = (N_total·w + B·kv_read) / BW         (weights + KV share one memory bus)
    T_step    = max(T_compute, T_memory)

``kv_read`` is the KV bytes one sequence reads per step: ``b·L_eff`` (+ the
local layers of a hybrid model). Every function takes ``(hw, model, wl)``
pytrees whose leaves broadcast, and returns an array of the broadcast shape.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .specs import Hardware, Model, Workload

#: Regime codes returned by :func:`regime`.
REGIMES = ("weight-bound", "kv-bound", "compute-bound")
WEIGHT_BOUND, KV_BOUND, COMPUTE_BOUND = 0, 1, 2


def _safe_sqrt(x: jax.Array) -> jax.Array:
    """√x with a finite gradient at 0 (double-where)."""
    positive = x > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1.0)), 0.0)


def _scaled_sqrt(coeff: jax.Array, x: jax.Array) -> jax.Array:
    """coeff·√x, +inf where coeff is inf (the √L kind switched off), NaN-free gradients."""
    on = jnp.isfinite(coeff)
    return jnp.where(on, jnp.where(on, coeff, 0.0) * _safe_sqrt(x), jnp.inf)


def l_eff(model: Model, wl: Workload) -> jax.Array:
    """Cached tokens read per step by the global layers: min(L, window, top_k, c·√L), tokens."""
    L = jnp.asarray(wl.context)
    cap = jnp.minimum(model.window, model.top_k)
    return jnp.minimum(jnp.minimum(L, cap), _scaled_sqrt(jnp.asarray(model.sqrt_coeff), L))


def l_store(model: Model, wl: Workload) -> jax.Array:
    """Cached tokens kept by the global layers: min(L, window), tokens (top-k and √L keep all)."""
    return jnp.minimum(wl.context, model.window)


def _local_tokens(model: Model, wl: Workload) -> jax.Array:
    return jnp.minimum(wl.context, model.local_window)


def kv_read_bytes(model: Model, wl: Workload) -> jax.Array:
    """KV bytes one sequence reads per decode step: b·L_eff + b_local·min(L, W_local)."""
    local = model.kv_bytes_per_token_local * _local_tokens(model, wl)
    return model.kv_bytes_per_token * l_eff(model, wl) + local


def kv_store_bytes(model: Model, wl: Workload) -> jax.Array:
    """KV bytes one sequence keeps in HBM: b·L_store + b_local·min(L, W_local)."""
    local = model.kv_bytes_per_token_local * _local_tokens(model, wl)
    return model.kv_bytes_per_token * l_store(model, wl) + local


def t_compute(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """T_compute = B·N_active / C, seconds per step."""
    return wl.batch * model.n_active / hw.replica_macs


def t_memory(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """T_memory = (N_total·w + B·kv_read) / BW, seconds per step."""
    return (model.weight_bytes + wl.batch * kv_read_bytes(model, wl)) / hw.replica_bw


def t_step(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """T_step = max(T_compute, T_memory), seconds: one token for each of the B sequences."""
    return jnp.maximum(t_compute(hw, model, wl), t_memory(hw, model, wl))


def latency(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """Per-user latency per output token = T_step, seconds."""
    return t_step(hw, model, wl)


def throughput(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """Output tokens per second of one replica: B / T_step."""
    return wl.batch / t_step(hw, model, wl)


def tokens_per_second_per_user(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """Output tokens per second seen by one user: 1 / T_step."""
    return 1.0 / t_step(hw, model, wl)


def cost_per_token(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """Cost per output token = T_step · p·n / B, $."""
    return t_step(hw, model, wl) * hw.replica_price / wl.batch


def cost_per_mtok(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """Cost per million output tokens, $/Mtok."""
    return 1e6 * cost_per_token(hw, model, wl)


def mfu(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """Model FLOPs utilization: B·2·N_active / (peak FLOPS of the replica · T_step)."""
    peak_macs = hw.c_over_bw * hw.bw * hw.chips
    return wl.batch * model.n_active / (peak_macs * t_step(hw, model, wl))


def kv_share(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """Fraction of memory traffic that is KV: B·kv_read / (N_total·w + B·kv_read)."""
    kv = wl.batch * kv_read_bytes(model, wl)
    return kv / (model.weight_bytes + kv)


def compute_memory_ratio(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """T_compute / T_memory (the seed simulator's "Compute / Memory ratio")."""
    return t_compute(hw, model, wl) / t_memory(hw, model, wl)


def regime(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """0 weight-bound, 1 KV-bound, 2 compute-bound (see :data:`REGIMES`), int8."""
    compute_bound = t_compute(hw, model, wl) >= t_memory(hw, model, wl)
    kv_bound = wl.batch * kv_read_bytes(model, wl) >= model.weight_bytes
    code = jnp.where(compute_bound, COMPUTE_BOUND, jnp.where(kv_bound, KV_BOUND, WEIGHT_BOUND))
    return code.astype(jnp.int8)
