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
from jax.typing import ArrayLike

from .quantities import REGIMES  # noqa: F401  (code words: the registry)
from .specs import Hardware, Model, Workload

#: Regime codes returned by :func:`regime`.
WEIGHT_BOUND, KV_BOUND, COMPUTE_BOUND, COMM_BOUND = 0, 1, 2, 3


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


def _attn_kv_read(model: Model, wl: Workload) -> jax.Array:
    """KV bytes of the attention layers one sequence reads per step: b·L_eff + b_local·min(L, W_local)."""
    local = model.kv_bytes_per_token_local * _local_tokens(model, wl)
    return model.kv_bytes_per_token * l_eff(model, wl) + local


def _attn_kv_store(model: Model, wl: Workload) -> jax.Array:
    """KV bytes of the attention layers one sequence keeps: b·L_store + b_local·min(L, W_local)."""
    local = model.kv_bytes_per_token_local * _local_tokens(model, wl)
    return model.kv_bytes_per_token * l_store(model, wl) + local


def kv_read_bytes(model: Model, wl: Workload) -> jax.Array:
    """KV bytes one sequence reads per decode step: b·L_eff + b_local·min(L, W_local) + s.

    ``s`` = ``state_bytes_per_seq``: the constant-size state of linear-attention layers.
    """
    return _attn_kv_read(model, wl) + model.state_bytes_per_seq


def kv_store_bytes(model: Model, wl: Workload) -> jax.Array:
    """KV bytes one sequence keeps in HBM: b·L_store + b_local·min(L, W_local) + s."""
    return _attn_kv_store(model, wl) + model.state_bytes_per_seq


def _safe_div(num: jax.Array, den: jax.Array, where_bad: float = jnp.inf) -> jax.Array:
    """num/den where den > 0, else ``where_bad``; gradients stay finite (double-where)."""
    ok = den > 0
    return jnp.where(ok, num / jnp.where(ok, den, 1.0), where_bad)


# -- extended model: attention compute, speculative decoding, layout ------------------------
def attn_flops(model: Model, wl: Workload) -> jax.Array:
    """Attention FLOPs per generated token of one sequence: a·L_eff + a_local·min(L, W_local)."""
    local = model.attn_flops_per_ctx_token_local * _local_tokens(model, wl)
    return model.attn_flops_per_ctx_token * l_eff(model, wl) + local


def tokens_per_step(wl: Workload) -> jax.Array:
    """Accepted tokens per sequence per step with k drafted tokens: (1−α^(k+1))/(1−α).

    k is continuous; at α → 1 the limit k+1 (second-order Taylor near 1); 1 when k = 0.
    """
    k1 = jnp.asarray(wl.spec_k) + 1.0
    a = jnp.asarray(wl.spec_alpha)
    gap = 1.0 - a
    near = jnp.abs(gap) < 1e-5
    safe_gap = jnp.where(near, 1.0, gap)
    safe_a = jnp.where(near, 0.5, a)
    exact = (1.0 - jnp.power(safe_a, k1)) / safe_gap
    taylor = k1 - 0.5 * k1 * (k1 - 1.0) * gap
    return jnp.where(near, taylor, exact)


def macs_per_seq(model: Model, wl: Workload) -> jax.Array:
    """MACs per sequence per step: (k+1)·(N_active + attn_flops/2) (seeds: N_active)."""
    return (jnp.asarray(wl.spec_k) + 1.0) * (model.n_active + attn_flops(model, wl) / 2.0)


def kv_replicas(hw: Hardware, model: Model) -> jax.Array:
    """Copies of each sequence's KV in the replica: max(1, tp/kv_heads) (MLA under TP: tp)."""
    return jnp.maximum(1.0, hw.tp / model.kv_heads)


def kv_read_total(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """KV bytes read per sequence per step over the replica: attention KV × kv_replicas + state.

    The linear-attention state is sharded by heads, never replicated (seeds: b·L_eff).
    """
    return _attn_kv_read(model, wl) * kv_replicas(hw, model) + model.state_bytes_per_seq


def kv_store_total(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """KV bytes kept per sequence over the replica: attention KV × kv_replicas + state."""
    return _attn_kv_store(model, wl) * kv_replicas(hw, model) + model.state_bytes_per_seq


def weight_copies(hw: Hardware, model: Model) -> jax.Array:
    """Bytes of weights stored in the replica over N_total·w: (1−f_e)·dp + f_e·expert_replicas."""
    f = model.expert_fraction
    return (1.0 - f) * hw.dp + f * hw.expert_replicas


def weight_store_bytes(hw: Hardware, model: Model) -> jax.Array:
    """Weight bytes held in the replica (all copies), bytes."""
    return model.weight_bytes * weight_copies(hw, model)


def experts_touched(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """Expected fraction of routed-expert copies touched in a step: 1 − (1 − k/E)^(tokens/copies).

    tokens = B·(k_spec+1); each of ``expert_replicas`` copies sees its share. → 1 at large batch.
    """
    tokens = wl.batch * (jnp.asarray(wl.spec_k) + 1.0) / hw.expert_replicas
    miss = jnp.clip(1.0 - model.expert_activation, 0.0, 1.0)
    return 1.0 - jnp.power(miss, tokens)


def weight_read_bytes(hw: Hardware, model: Model, wl: Workload | None = None) -> jax.Array:
    """Weight bytes read per step over all chips.

    Without ``wl`` (the closed forms of :mod:`optimum`): every stored copy is read (experts
    saturated, exact for B·k/E ≫ 1). With ``wl``: routed experts only where touched.
    """
    if wl is None:
        return weight_store_bytes(hw, model)
    f = model.expert_fraction
    touched = jnp.where(f > 0, experts_touched(hw, model, wl), 1.0)
    return model.weight_bytes * ((1.0 - f) * hw.dp + f * hw.expert_replicas * touched)


def comm_messages(hw: Hardware, model: Model) -> jax.Array:
    """Collective operations per step: TP all-reduces + EP dispatch and combine."""
    tp_on = hw.tp > 1.0
    dense_ffn = model.layers - model.moe_layers
    all_reduces = jnp.where(
        tp_on, model.layers + dense_ffn + model.moe_layers * (1.0 - hw.moe_ep), 0.0)
    a2a = jnp.where(hw.ep > 1.0, 2.0 * model.moe_layers * hw.moe_ep, 0.0)
    return all_reduces + a2a


def comm_bytes_per_seq(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """Bytes one chip sends per step per sequence of the replica batch.

    Ring all-reduce of B/dp tokens' activations inside a TP group: 2(tp−1)/tp·(B/dp)·d·a per
    all-reduce; EP: each of the B/n tokens a chip holds goes to min(k, route_limit) destinations,
    (ep−1)/ep of them on other chips, dispatch d·a_dispatch and combine d·a_combine bytes. ×(k_spec+1) tokens.
    """
    tp, ep, n = hw.tp, hw.ep, hw.chips
    dense_ffn = model.layers - model.moe_layers
    n_ar = model.layers + dense_ffn + model.moe_layers * (1.0 - hw.moe_ep)
    ar = n_ar * 2.0 * jnp.maximum(tp - 1.0, 0.0) / tp / hw.dp * model.hidden * model.act_bytes
    copies = jnp.minimum(model.experts_per_token, model.route_limit)
    a2a = (model.moe_layers * hw.moe_ep * copies * jnp.maximum(ep - 1.0, 0.0) / ep / n
           * model.hidden * (model.dispatch_bytes + model.act_bytes))
    return (jnp.asarray(wl.spec_k) + 1.0) * (ar + a2a)


def comm_slope(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """dT_comm/dB, s per sequence (0 on a free link)."""
    per_seq = comm_bytes_per_seq(hw, model, wl)
    finite = jnp.isfinite(hw.link_bw)  # a free link: 0, with NaN-free gradients (0·inf)
    link = jnp.where(finite, hw.link_bw, 1.0) * hw.link_eff
    return jnp.where(finite & (per_seq > 0), _safe_div(per_seq, link, 0.0), 0.0)


def comm_intercept(hw: Hardware, model: Model) -> jax.Array:
    """T_comm at B → 0: messages · link_latency, s."""
    return comm_messages(hw, model) * hw.link_latency


def t_comm(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """T_comm = messages·latency + B·comm_bytes_per_seq/(link_bw·link_eff), seconds per step."""
    return comm_intercept(hw, model) + wl.batch * comm_slope(hw, model, wl)


def combine(t_c: jax.Array, t_m: jax.Array, t_k: jax.Array, overlap: jax.Array) -> jax.Array:
    """The seeds' rule, with communication: overlap·max(T_c, T_m, T_k) + (1−overlap)·(max(T_c, T_m) + T_k)."""
    cm = jnp.maximum(t_c, t_m)
    return overlap * jnp.maximum(cm, t_k) + (1.0 - overlap) * (cm + t_k)


def t_compute(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """T_compute = B·(k+1)·(N_active + attn_flops/2) / C, seconds per step (seeds: B·N_active/C)."""
    return wl.batch * macs_per_seq(model, wl) / hw.replica_macs


def t_memory(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """T_memory = (weights read + B·kv_read·kv_replicas) / BW, seconds per step.

    Seeds: (N_total·w + B·kv_read)/BW. KV is per :func:`kv_read_total`. Routed experts count where touched (see
    :func:`weight_read_bytes`).
    """
    kv = wl.batch * kv_read_total(hw, model, wl)
    return (weight_read_bytes(hw, model, wl) + kv) / hw.replica_bw


def t_step(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """T_step = max(T_compute, T_memory[, T_comm]) (see :func:`combine`), seconds per step."""
    return combine(t_compute(hw, model, wl), t_memory(hw, model, wl), t_comm(hw, model, wl),
                   hw.overlap)


def latency(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """Per-user latency per output token = T_step / τ (τ accepted tokens per step), seconds."""
    return t_step(hw, model, wl) / tokens_per_step(wl)


def throughput(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """Output tokens per second of one replica: B·τ / T_step."""
    return wl.batch * tokens_per_step(wl) / t_step(hw, model, wl)


def throughput_per_chip(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """Output tokens per second per chip: B·τ / (T_step·n), tokens/s."""
    return throughput(hw, model, wl) / hw.chips


def weight_bytes(model: Model) -> jax.Array:
    """Weight bytes of the model: N_total·w, B."""
    return model.weight_bytes


def tokens_per_second_per_user(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """Output tokens per second seen by one user: τ / T_step."""
    return tokens_per_step(wl) / t_step(hw, model, wl)


def cost_per_token(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """Cost per output token = T_step · p·n / (B·τ), $."""
    return t_step(hw, model, wl) * hw.replica_price / (wl.batch * tokens_per_step(wl))


def cost_per_mtok(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """Cost per million output tokens, $/Mtok."""
    return 1e6 * cost_per_token(hw, model, wl)


def energy_per_token(hw: Hardware, model: Model, wl: Workload, power: ArrayLike) -> jax.Array:
    """Energy per output token = power·n·T_step / (B·τ), J (``power``: W per chip)."""
    return power * hw.chips * t_step(hw, model, wl) / (wl.batch * tokens_per_step(wl))


def mfu(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """Model FLOPs utilization: B·(k+1)·(2·N_active + attn) / (peak FLOPS of the replica · T_step).

    Counts the FLOPs executed (drafted tokens verified too); seeds: B·2·N_active/(FLOPS·T_step).
    """
    peak_macs = hw.c_over_bw * hw.bw * hw.chips
    return wl.batch * macs_per_seq(model, wl) / (peak_macs * t_step(hw, model, wl))


def kv_share(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """Fraction of memory traffic that is KV: B·kv_read / (N_total·w + B·kv_read)."""
    kv = wl.batch * kv_read_total(hw, model, wl)
    return kv / (weight_read_bytes(hw, model, wl) + kv)


def compute_memory_ratio(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """T_compute / T_memory (the seed simulator's "Compute / Memory ratio")."""
    return t_compute(hw, model, wl) / t_memory(hw, model, wl)


def regime(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """0 weight-bound, 1 KV-bound, 2 compute-bound, 3 comm-bound (see :data:`REGIMES`), int8."""
    t_c, t_m, t_k = t_compute(hw, model, wl), t_memory(hw, model, wl), t_comm(hw, model, wl)
    compute_bound = t_c >= t_m
    kv_bound = wl.batch * kv_read_total(hw, model, wl) >= weight_read_bytes(hw, model, wl)
    comm_bound = (t_k > jnp.maximum(t_c, t_m)) & (t_k > 0)
    code = jnp.where(comm_bound, COMM_BOUND, jnp.where(
        compute_bound, COMPUTE_BOUND, jnp.where(kv_bound, KV_BOUND, WEIGHT_BOUND)))
    return code.astype(jnp.int8)
