"""Closed forms of the optimum (SPEC "Derived quantities").

* crossover batch  ``B_x   = N_total·w / (BW·N_active/C − kv_read)``  (+inf: no crossover)
* capacity batch   ``B_max = (M·n − N_total·w) / kv_store``
* SLO batch        ``B_slo``: the largest B with T_step(B) ≤ SLO
* optimal batch    ``B* = min(B_x, B_max, B_slo)`` and the binding constraint

A replica must hold at least one sequence: where ``B_max < 1`` or ``B_slo < 1``
the point is *infeasible* and B* (with everything evaluated at it) is NaN.

Everything evaluated *at* B* uses T_memory, never ``max()``: B* ≤ B_x, so the
step there is memory-bound (or exactly balanced), and the derivatives of the
optimum flow through one smooth closed form per binding constraint.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from . import roofline as rl
from .specs import Hardware, Model, Workload

#: Binding-constraint codes returned by :func:`binding`.
BINDINGS = ("crossover", "capacity", "slo", "infeasible")
CROSSOVER, CAPACITY, SLO, INFEASIBLE = 0, 1, 2, 3


def _safe_div(num: jax.Array, den: jax.Array, where_bad: float = jnp.inf) -> jax.Array:
    """num/den where den > 0, else ``where_bad``; gradients stay finite (double-where)."""
    ok = den > 0
    return jnp.where(ok, num / jnp.where(ok, den, 1.0), where_bad)


def compute_slope(hw: Hardware, model: Model) -> jax.Array:
    """dT_compute/dB = N_active / C, s per sequence."""
    return model.n_active / hw.replica_macs


def kv_slope(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """dT_memory/dB = kv_read / BW, s per sequence."""
    return rl.kv_read_bytes(model, wl) / hw.replica_bw


def b_x(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """Crossover batch where T_compute = T_memory; +inf when the KV slope ≥ the compute slope."""
    den = hw.replica_bw * model.n_active / hw.replica_macs - rl.kv_read_bytes(model, wl)
    return _safe_div(model.weight_bytes, den)


def b_x_kv_free(hw: Hardware, model: Model) -> jax.Array:
    """Crossover batch with KV neglected: (C/BW)·(N_total·w/N_active) — "300 × inverse sparsity"."""
    balance = hw.replica_macs / hw.replica_bw
    return balance * model.sparsity * model.bytes_per_weight


def b_max(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """Capacity batch (M·n − N_total·w)/kv_store; ≤ 0 when the weights alone do not fit."""
    free = hw.replica_capacity - model.weight_bytes
    kv = rl.kv_store_bytes(model, wl)
    return jnp.where(kv > 0, _safe_div(free, kv), jnp.where(free >= 0, jnp.inf, -jnp.inf))


def _b_slo_memory(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """Largest B with T_memory(B) ≤ SLO: (SLO·BW − N_total·w)/kv_read."""
    finite = jnp.isfinite(wl.slo)  # no target: +inf, with NaN-free reverse-mode gradients
    head = jnp.where(finite, wl.slo, 0.0) * hw.replica_bw - model.weight_bytes
    kv = rl.kv_read_bytes(model, wl)
    value = jnp.where(kv > 0, _safe_div(head, kv), jnp.where(head >= 0, jnp.inf, -jnp.inf))
    return jnp.where(finite, value, jnp.inf)


def b_slo(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """Largest B with T_step(B) ≤ SLO (both lines rise with B); +inf without an SLO."""
    by_compute = wl.slo / compute_slope(hw, model)
    return jnp.minimum(by_compute, _b_slo_memory(hw, model, wl))


def binding(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """Which constraint sets B*: 0 crossover, 1 capacity, 2 slo, 3 infeasible (int8).

    Ties go to the earlier code (crossover, then capacity, then slo).
    """
    bx, bm, bs = b_x(hw, model, wl), b_max(hw, model, wl), b_slo(hw, model, wl)
    code = jnp.where(bx <= jnp.minimum(bm, bs), CROSSOVER, jnp.where(bm <= bs, CAPACITY, SLO))
    infeasible = (bm < 1.0) | (bs < 1.0)
    return jnp.where(infeasible, INFEASIBLE, code).astype(jnp.int8)


def _optimum(hw: Hardware, model: Model, wl: Workload) -> tuple[jax.Array, jax.Array]:
    """(B*, infeasible): B* selected by the binding constraint, 1.0 where infeasible.

    The value is *selected* rather than taken with ``min``, so its derivative is
    the binding closed form's own (no 0.5/0.5 tie split); infeasible points get a
    harmless 1.0 so that masking them keeps reverse-mode gradients NaN-free.
    """
    code = binding(hw, model, wl)
    bx = b_x(hw, model, wl)
    bm = b_max(hw, model, wl)
    bs = _b_slo_memory(hw, model, wl)
    value = jnp.where(code == CROSSOVER, bx, jnp.where(code == CAPACITY, bm, bs))
    infeasible = code == INFEASIBLE
    return jnp.where(infeasible, 1.0, value), infeasible


def b_star(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """Optimal batch B* = min(B_x, B_max, B_slo); NaN where infeasible."""
    b, infeasible = _optimum(hw, model, wl)
    return jnp.where(infeasible, jnp.nan, b)


def _at(wl: Workload, batch: jax.Array) -> Workload:
    return wl.replace(batch=batch)


def latency_at_b_star(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """Per-token latency at B*: T_memory(B*) (B* ≤ B_x, so memory-bound or balanced), s."""
    b, infeasible = _optimum(hw, model, wl)
    return jnp.where(infeasible, jnp.nan, rl.t_memory(hw, model, _at(wl, b)))


def throughput_at_b_star(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """Output tokens/s of a replica at B*."""
    b, infeasible = _optimum(hw, model, wl)
    return jnp.where(infeasible, jnp.nan, b / rl.t_memory(hw, model, _at(wl, b)))


def cost_at_b_star(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """Cost per output token at B*, $."""
    b, infeasible = _optimum(hw, model, wl)
    cost = rl.t_memory(hw, model, _at(wl, b)) * hw.replica_price / b
    return jnp.where(infeasible, jnp.nan, cost)


def cost_per_mtok_at_b_star(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """Cost per million output tokens at B*, $/Mtok."""
    return 1e6 * cost_at_b_star(hw, model, wl)


def latency_floor(hw: Hardware, model: Model) -> jax.Array:
    """N_total·w / BW: no batch and no budget buys a step faster than reading the weights, s."""
    return model.weight_bytes / hw.replica_bw


def cost_floor(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """Cost per token as B → ∞: max(N_active/C, kv_read/BW)·p·n, $."""
    return jnp.maximum(compute_slope(hw, model), kv_slope(hw, model, wl)) * hw.replica_price


def _context_for_kv_read(model: Model, per_seq_bytes: jax.Array) -> jax.Array:
    """Smallest context L whose kv_read(L) reaches ``per_seq_bytes`` (+inf if never).

    The local (sliding-window) layers of a hybrid model are taken at their full
    window, which holds whenever the answer exceeds that window (every catalog
    model: windows are 128–1024 tokens).
    """
    local_finite = jnp.isfinite(model.local_window)
    local_bytes = jnp.where(
        local_finite,
        model.kv_bytes_per_token_local * jnp.where(local_finite, model.local_window, 0.0),
        0.0,
    )
    b_global = model.kv_bytes_per_token + jnp.where(local_finite, 0.0, model.kv_bytes_per_token_local)
    tokens = jnp.maximum(_safe_div(per_seq_bytes - local_bytes, b_global), 0.0)  # L_eff needed
    cap = jnp.minimum(model.window, model.top_k)
    c = jnp.asarray(model.sqrt_coeff)
    c_on = jnp.isfinite(c)
    by_sqrt = jnp.where(c_on, jnp.square(tokens / jnp.where(c_on, c, 1.0)), 0.0)
    return jnp.where(tokens > cap, jnp.inf, jnp.maximum(tokens, by_sqrt))


def l_crit(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """Critical context where KV traffic equals weight traffic at batch B: N_total·w/(B·b), tokens.

    The weight-bound → KV-bound flip behind long-context price tiers.
    """
    del hw  # bytes against bytes: the hardware cancels
    return _context_for_kv_read(model, model.weight_bytes / wl.batch)


def l_bal(hw: Hardware, model: Model) -> jax.Array:
    """Balanced context where the KV slope equals the compute slope: BW·N_active/(C·b), tokens."""
    return _context_for_kv_read(model, hw.replica_bw * model.n_active / hw.replica_macs)


def cost_ratio_b1(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """Cost per token at B = 1 over cost at B* ("a thousand times worse" unbatched)."""
    return rl.cost_per_token(hw, model, _at(wl, jnp.ones_like(wl.batch))) / cost_at_b_star(
        hw, model, wl
    )
