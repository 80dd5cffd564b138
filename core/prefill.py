"""Prefill: time to first token, input-token cost, and the output/input price ratio.

A prefill step processes ``prefill_batch`` prompts of ``prompt`` tokens each (Workload
leaves ``prefill_batch`` = Bp, ``prompt`` = P; T = Bp·P tokens)::

    FLOPs      = T·2·N_active + Bp·(a·S(P) + a_local·S_local(P))
    T_compute  = FLOPs / FLOPS                                 (compute-bound at any real P)
    T_memory   = (weights read once + Bp·kv_store(P)·kv_replicas) / BW   (read weights, write KV)
    T_comm     = messages·latency + T·comm_bytes_per_token / link
    T_prefill  = the seeds' rule over the three (see :func:`rooflax.core.roofline.combine`)

``S(P) = ∫₀ᴾ L_eff(x) dx`` is the causal attention's cached tokens summed over the prompt
(P²/2 dense; with a window W: W·P − W²/2; √L sparse: ∫ c√x). ``a`` is the attention
FLOPs per query per cached token: the Model leaf ``attn_flops_prefill_per_ctx_token`` where set
(MLA prefill runs un-absorbed, ≈5.0 MFLOP for DeepSeek-V3 instead of the 17.0 MFLOP of absorbed
decode — :func:`rooflax.core.parallel.prefill_attn_flops`), else ``attn_flops_per_ctx_token``,
unless ``attn_flops`` is given.

Every function takes the ``(hw, model, wl)`` pytrees of the decode step and broadcasts.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from . import optimum as opt
from . import roofline as rl
from .specs import Hardware, Model, Workload


def _finite(x: jax.Array, fill: float = 0.0) -> tuple[jax.Array, jax.Array]:
    on = jnp.isfinite(x)
    return on, jnp.where(on, x, fill)


def _integral_min_x_sqrt(P: jax.Array, c: jax.Array) -> jax.Array:
    """G(P) = ∫₀ᴾ min(x, c√x) dx (c = inf: P²/2)."""
    c_on, c_ = _finite(c, 1.0)
    c2 = c_ * c_
    beyond = c_on & (P > c2)
    Ps = jnp.where(beyond, P, c2)
    tail = c2 * c2 / 2.0 + 2.0 * c_ / 3.0 * (Ps ** 1.5 - c2 * c_)
    return jnp.where(beyond, tail, P * P / 2.0)


def summed_context(model: Model, prompt: ArrayLike) -> jax.Array:
    """S(P) = ∫₀ᴾ min(x, window, top_k, c√x) dx: cached tokens read, summed over a causal prompt."""
    P = jnp.asarray(prompt)
    cap = jnp.minimum(model.window, model.top_k)
    c = jnp.asarray(model.sqrt_coeff)
    cap_on, cap_ = _finite(cap, 1.0)
    c_on, c_ = _finite(c, 1.0)
    # where min(x, c√x) reaches the cap
    xc = jnp.where(c_on & (cap_ > c_ * c_), jnp.square(cap_ / c_), cap_)
    clipped = cap_on & (P > xc)
    head = _integral_min_x_sqrt(jnp.where(clipped, xc, P), c)
    return head + jnp.where(clipped, cap_ * (P - xc), 0.0)


def summed_local_context(model: Model, prompt: ArrayLike) -> jax.Array:
    """∫₀ᴾ min(x, W_local) dx for the local layers of a hybrid model."""
    P = jnp.asarray(prompt)
    on, W = _finite(jnp.asarray(model.local_window), 1.0)
    clipped = on & (P > W)
    return jnp.where(clipped, W * W / 2.0 + W * (P - W), P * P / 2.0)


def _prefill_tokens(wl: Workload) -> jax.Array:
    return wl.prefill_batch * wl.prompt


def _as_prefill(wl: Workload) -> Workload:
    """The workload seen by the layout helpers: T tokens in flight, no drafting."""
    return wl.replace(batch=_prefill_tokens(wl), spec_k=jnp.zeros_like(jnp.asarray(wl.spec_k)))


def prefill_attn_per_ctx_token(model: Model) -> jax.Array:
    """a: prefill attention FLOPs per query per cached token of the global layers — the Model's
    prefill value where it has one (MLA, un-absorbed), else decode's."""
    a_pre = jnp.asarray(model.attn_flops_prefill_per_ctx_token)
    return jnp.where(a_pre > 0, a_pre, model.attn_flops_per_ctx_token)


def prompt_attn_flops(model: Model, prompt: ArrayLike, attn_flops: ArrayLike | None = None) -> jax.Array:
    """Attention FLOPs of one causal prompt: a·S(P) + a_local·S_local(P) (``attn_flops``: a
    given a, else :func:`prefill_attn_per_ctx_token`)."""
    a = prefill_attn_per_ctx_token(model) if attn_flops is None else attn_flops
    return (a * summed_context(model, prompt)
            + model.attn_flops_per_ctx_token_local * summed_local_context(model, prompt))


def prefill_flops(model: Model, wl: Workload, attn_flops: ArrayLike | None = None) -> jax.Array:
    """FLOPs of one prefill step: Bp·(P·2·N_active + a·S(P) + a_local·S_local(P))."""
    attn = prompt_attn_flops(model, wl.prompt, attn_flops)
    return wl.prefill_batch * (wl.prompt * 2.0 * model.n_active + attn)


def t_prefill_compute(hw: Hardware, model: Model, wl: Workload,
                      attn_flops: ArrayLike | None = None) -> jax.Array:
    """Prefill FLOPs / FLOPS of the replica (derated by flops_eff), s."""
    return prefill_flops(model, wl, attn_flops) / (2.0 * hw.replica_macs)


def t_prefill_memory(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """(weights read once per prefill step + the prompts' KV written) / BW, s."""
    pw = _as_prefill(wl)
    kv = wl.prefill_batch * rl.kv_store_bytes(model, wl.replace(context=wl.prompt))
    return (rl.weight_read_bytes(hw, model, pw) + kv * rl.kv_replicas(hw, model)) / hw.replica_bw


def t_prefill_comm(hw: Hardware, model: Model, wl: Workload) -> jax.Array:
    """Collectives of one prefill step over T = Bp·P tokens, s."""
    return rl.t_comm(hw, model, _as_prefill(wl))


def t_prefill(hw: Hardware, model: Model, wl: Workload,
              attn_flops: ArrayLike | None = None) -> jax.Array:
    """Time of one prefill step (Bp prompts of P tokens), s."""
    return rl.combine(t_prefill_compute(hw, model, wl, attn_flops), t_prefill_memory(hw, model, wl),
                      t_prefill_comm(hw, model, wl), hw.overlap)


def ttft(hw: Hardware, model: Model, wl: Workload, attn_flops: ArrayLike | None = None) -> jax.Array:
    """Time to first token: the prefill step that holds the prompt, s (no queueing)."""
    return t_prefill(hw, model, wl, attn_flops)


def input_throughput(hw: Hardware, model: Model, wl: Workload,
                     attn_flops: ArrayLike | None = None) -> jax.Array:
    """Prompt tokens per second of one replica: Bp·P / T_prefill."""
    return _prefill_tokens(wl) / t_prefill(hw, model, wl, attn_flops)


def input_throughput_per_chip(hw: Hardware, model: Model, wl: Workload,
                              attn_flops: ArrayLike | None = None) -> jax.Array:
    """Prompt tokens per second per chip: Bp·P / (T_prefill·n), tokens/s."""
    return input_throughput(hw, model, wl, attn_flops) / hw.chips


def cost_per_input_token(hw: Hardware, model: Model, wl: Workload,
                         attn_flops: ArrayLike | None = None) -> jax.Array:
    """Cost per prompt token: T_prefill·p·n / (Bp·P), $."""
    return t_prefill(hw, model, wl, attn_flops) * hw.replica_price / _prefill_tokens(wl)


def cost_per_minput(hw: Hardware, model: Model, wl: Workload,
                    attn_flops: ArrayLike | None = None) -> jax.Array:
    """$ per million input tokens."""
    return 1e6 * cost_per_input_token(hw, model, wl, attn_flops)


def prefill_mfu(hw: Hardware, model: Model, wl: Workload,
                attn_flops: ArrayLike | None = None) -> jax.Array:
    """Prefill FLOPs / (peak FLOPS of the replica · T_prefill)."""
    peak = 2.0 * hw.c_over_bw * hw.bw * hw.chips
    return prefill_flops(model, wl, attn_flops) / (peak * t_prefill(hw, model, wl, attn_flops))


def output_input_price_ratio(hw: Hardware, model: Model, wl: Workload,
                             attn_flops: ArrayLike | None = None) -> jax.Array:
    """Cost of an output token at the decode optimum B* over the cost of an input token.

    Why output tokens cost several times more: a decode step amortizes the weights over B*
    sequences and reads each one's KV, a prefill step amortizes them over Bp·P tokens.
    """
    return opt.cost_at_b_star(hw, model, wl) / cost_per_input_token(hw, model, wl, attn_flops)


def prefill_batch_compute_bound(hw: Hardware, model: Model, wl: Workload,
                                attn_flops: ArrayLike | None = None) -> jax.Array:
    """Prompts per prefill step at which compute reaches the weight read (T_c = weights/BW)."""
    per_prompt = t_prefill_compute(hw, model, wl.replace(prefill_batch=1.0), attn_flops)
    weights = rl.weight_read_bytes(hw, model) / hw.replica_bw
    return weights / per_prompt
