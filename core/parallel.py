"""Multi-chip replicas: layouts, and the extended model of an architecture (pure arithmetic).

A replica of n chips (``Hardware.chips``) is laid out by three leaves of :class:`Hardware`:

* ``dp`` — data-parallel attention groups; attention and dense layers are tensor-parallel
  over tp = n/dp chips inside a group. Each group holds a copy of the non-expert weights
  (weights stored and read: (1−f_e)·dp copies), and each sequence's KV lives in one group,
  replicated max(1, tp/kv_heads) times (MLA has one latent "head": replicated tp times).
* ``expert_replicas`` — copies of each routed expert; EP degree ep = n/expert_replicas
  (redundant experts: 288 slots for 256 experts → 1.125).
* ``moe_ep`` — 1: routed experts are expert-parallel (all-to-all dispatch + combine per MoE
  layer); 0: tensor-parallel inside the attention group (an all-reduce per MoE layer).

Communication (:func:`rooflax.core.roofline.t_comm`) is its own resource, on
``link_bw·link_eff`` per chip, with ``link_latency`` per collective; the seeds' rule combines it
(``overlap``). The defaults (dp = 1, expert_replicas = 1, free link) are the seeds' "one big chip".

The model leaves the layout needs (hidden size, layers, top-k, the routed-expert fraction of
the weights, KV heads, attention FLOPs) come from an :class:`~rooflax.core.arch.Architecture`
via :func:`extended_model`.
"""

from __future__ import annotations

from typing import Any

from jax.typing import ArrayLike

from .arch import Architecture, model_from_architecture
from .specs import Hardware, Model

#: Layout names accepted by :func:`layout`.
LAYOUTS = ("one-chip", "tp", "ep", "tp-ep")


def decode_attn_flops(arch: Architecture) -> tuple[float, float]:
    """(global, second stream) decode attention FLOPs per generated token per cached token.

    GQA/MHA: 4·heads·head_dim per layer (QKᵀ and AV, 2 FLOPs per MAC). MLA, absorbed (decode
    kernels attend in the latent space): 2·heads·(kv_lora + rope) + 2·heads·kv_lora per layer —
    DeepSeek-V3: 61·128·2176 = 16 990 208. The second stream: the sliding-window layers, or a
    DSA indexer scoring each cached token, 2·index_heads·index_head_dim per layer.
    """
    if arch.is_mla:
        per_layer = 2 * arch.num_heads * (arch.kv_lora_rank + arch.qk_rope_head_dim) \
            + 2 * arch.num_heads * arch.kv_lora_rank
    else:
        per_layer = 4 * arch.num_heads * arch.head_dim
    if arch.is_sparse:
        index = 2 * arch.index_n_heads * arch.index_head_dim
        return float(arch.global_layers * per_layer), float(arch.global_layers * index)
    return float(arch.global_layers * per_layer), float(arch.local_layers * per_layer)


def prefill_attn_flops(arch: Architecture) -> float:
    """Prefill attention FLOPs per query per cached token (global layers).

    MLA prefill runs un-absorbed: 2·heads·(qk_nope + rope) + 2·heads·v_head per layer
    (DeepSeek-V3: 61·128·640 = 4 997 120); other attention as in decode.
    """
    if arch.is_mla:
        per_layer = 2 * arch.num_heads * (arch.qk_nope_head_dim + arch.qk_rope_head_dim) \
            + 2 * arch.num_heads * arch.v_head_dim
        return float(arch.global_layers * per_layer)
    return decode_attn_flops(arch)[0]


def model_extension(arch: Architecture) -> dict[str, float]:
    """The extended-model leaves of :class:`Model` for an architecture."""
    glob, local = decode_attn_flops(arch)
    has_local = (arch.local_layers > 0 and arch.sliding_window > 0) or arch.is_sparse
    return {
        "attn_flops_per_ctx_token": glob,
        "attn_flops_per_ctx_token_local": local if has_local else 0.0,
        "attn_flops_prefill_per_ctx_token": prefill_attn_flops(arch) if arch.is_mla else 0.0,
        "expert_fraction": arch.routed_expert_params_total() / arch.n_total(),
        "expert_activation": (arch.experts_per_token / arch.num_experts) if arch.is_moe else 1.0,
        "kv_heads": 1.0 if arch.is_mla else float(arch.num_kv_heads),
        "hidden": float(arch.hidden_size),
        "layers": float(arch.num_layers),
        "moe_layers": float(arch.moe_layers),
        "experts_per_token": float(arch.experts_per_token),
    }


def extended_model(arch: Architecture, weights: str = "bf16", kv: str = "bf16", *,
                   attention: bool = True, include_input_embedding: bool = True,
                   **leaves: ArrayLike) -> Model:
    """:func:`~rooflax.core.arch.model_from_architecture` plus the extended leaves.

    ``attention=False`` keeps the seeds' decode step (no attention FLOPs); ``leaves``
    override any leaf (e.g. ``dispatch_bytes=1.0`` for fp8 dispatch).
    """
    base = model_from_architecture(arch, weights=weights, kv=kv,
                                   include_input_embedding=include_input_embedding)
    ext: dict[str, Any] = model_extension(arch)
    if not attention:
        ext["attn_flops_per_ctx_token"] = 0.0
        ext["attn_flops_per_ctx_token_local"] = 0.0
        ext["attn_flops_prefill_per_ctx_token"] = 0.0
    ext.update(leaves)
    return base.replace(**ext)


def layout(hw: Hardware, kind: str = "ep", *, tp: float | None = None,
           expert_slots: float | None = None, num_experts: float | None = None) -> Hardware:
    """``hw`` laid out over its ``chips``.

    * ``"one-chip"`` — the seeds' base model (no replication; communication still counted if
      the model has hidden/layers and the link is finite: tp = n all-reduces).
    * ``"tp"`` — attention, dense and experts tensor-parallel over all n chips (dp = 1, moe_ep = 0).
    * ``"ep"`` — DP attention (dp = n, tp = 1) + expert parallel over n chips (DeepSeek / SGLang
      wide-EP, TRT-LLM "attention DP8, MoE EP8").
    * ``"tp-ep"`` — attention TP over ``tp`` chips (dp = n/tp) + EP over n chips.

    ``expert_slots``/``num_experts`` give redundant experts (expert_replicas = slots/experts).
    """
    n = hw.chips
    replicas = 1.0 if not expert_slots else float(expert_slots) / float(num_experts)
    if kind == "one-chip":
        return hw.replace(dp=1.0, expert_replicas=1.0, moe_ep=1.0)
    if kind == "tp":
        return hw.replace(dp=1.0, expert_replicas=1.0, moe_ep=0.0)
    if kind == "ep":
        return hw.replace(dp=n, expert_replicas=replicas, moe_ep=1.0)
    if kind == "tp-ep":
        t = n if tp is None else tp
        return hw.replace(dp=n / t, expert_replicas=replicas, moe_ep=1.0)
    raise ValueError(f"unknown layout {kind!r}; expected one of: {', '.join(LAYOUTS)}")
