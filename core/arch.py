"""Parameter and KV-cache counts from a transformer's architecture (pure arithmetic).

An :class:`Architecture` holds the raw fields of a model config (Hugging Face
``config.json`` names, shortened); its methods count weights and KV-cache bytes,
and :func:`model_from_architecture` turns it into the :class:`~rooflax.core.specs.Model`
pytree the roofline uses.

Counting conventions (checked against independent derivations in the tests):

* Hybrid linear-attention models (Qwen3-Next, Qwen3.5): ``linear_layers`` layers are Gated
  DeltaNet (fused q/k/v/z and b/a projections, depthwise conv, A_log, dt_bias, gated norm,
  output projection, as in Hugging Face ``Qwen3NextGatedDeltaNet``); they keep no KV but a
  constant-size state per sequence (:meth:`Architecture.state_bytes_per_seq`).
* ``n_total`` counts every weight of the decoder: embeddings (once when tied),
  attention (with MLA low-rank norms, biases, sinks, q/k norms), FFN / experts
  (with biases), routers (with DeepSeek-V3's router bias), RMSNorm weights.
  Multi-token-prediction (MTP) modules and vision encoders are not counted.
* ``n_active`` is ``n_total`` minus the routed experts a token does not use: attention
  of all layers + dense FFN layers + shared experts + top-k routed experts + router +
  norms + LM head, and **the input embedding by default** (``include_input_embedding``;
  the published "active" counts of DeepSeek, Mixtral and Qwen include it; those of
  gpt-oss and Kimi-K2 do not). A tied embedding/LM-head matrix counts once, so
  ``n_active <= n_total`` always.
"""

from __future__ import annotations

import dataclasses

from .specs import Model, precision_bytes


@dataclasses.dataclass(frozen=True)
class Architecture:
    """Raw architecture fields of a decoder-only transformer (dense, MoE, MLA, hybrid SWA)."""

    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    tie_embeddings: bool = False
    # Mixture of experts (num_experts = 0: dense FFN in every layer).
    num_experts: int = 0
    experts_per_token: int = 0
    shared_experts: int = 0
    moe_intermediate_size: int = 0
    first_dense_layers: int = 0
    router_bias: bool = False
    """A bias per expert on the router (DeepSeek-V3 ``e_score_correction_bias``, gpt-oss)."""
    # Multi-head latent attention (kv_lora_rank = 0: ordinary MHA/GQA).
    q_lora_rank: int = 0
    kv_lora_rank: int = 0
    qk_nope_head_dim: int = 0
    qk_rope_head_dim: int = 0
    v_head_dim: int = 0
    # DeepSeek sparse attention (DSA: DeepSeek-V3.2, GLM-5): a lightning indexer (index_n_heads
    # heads of index_head_dim, its own fp8 key cache) scores every cached token and the attention
    # reads only the index_topk best. index_topk = 0: dense attention.
    index_topk: int = 0
    index_n_heads: int = 0
    index_head_dim: int = 0
    # Sliding windows: ``local_layers`` layers use ``sliding_window``; the rest are global.
    sliding_window: int = 0
    local_layers: int = 0
    # Linear attention (Gated DeltaNet) layers of a hybrid model, Hugging Face names. Which layers:
    # ``layer_types`` ("linear_attention" entries) or else every layer but each
    # ``full_attention_interval``-th; 0 heads: none.
    layer_types: tuple[str, ...] | None = None
    full_attention_interval: int = 0
    linear_num_key_heads: int = 0
    linear_key_head_dim: int = 0
    linear_num_value_heads: int = 0
    linear_value_head_dim: int = 0
    linear_conv_kernel_dim: int = 0
    linear_state_precision: str | None = None
    """Precision of the recurrent state (HF ``mamba_ssm_dtype``); None: the KV precision."""
    attn_output_gate: bool = False
    """Full-attention q projection also yields a per-channel output gate (Qwen3-Next, Qwen3.5)."""
    shared_expert_intermediate_size: int = 0
    """Intermediate size of a shared expert when it differs from ``moe_intermediate_size`` (0: same)."""
    shared_expert_gate: bool = False
    """A sigmoid gate (hidden → 1) on the shared expert's output (Qwen3-Next, Qwen3.5)."""
    # Flags.
    attention_bias: bool = False
    """Biases on the q/k/v/o projections (gpt-oss)."""
    expert_bias: bool = False
    """Biases on the FFN/expert matrices (gpt-oss)."""
    attention_sinks: bool = False
    """A learned sink logit per head per layer (gpt-oss)."""
    qk_norm: bool = False
    """RMSNorm on q and k (head_dim weights each per layer: Qwen3, Gemma-3)."""
    qk_norm_type: str = "per_head"
    """``per_head``: one head_dim norm for q and one for k; ``per_layer`` (MiniMax-M2): norms over
    all q heads (heads·head_dim) and all k heads (kv_heads·head_dim)."""
    ffn_matrices: int = 3
    """Matrices per FFN: 3 for SwiGLU/GeGLU (gate, up, down), 2 for a plain MLP."""
    norms_per_layer: int = 2
    """RMSNorm weight vectors of size hidden_size per layer (Gemma-3 has 4)."""
    native_precision: str = "bf16"
    """Precision of the released checkpoint's weights (``weights="native"``)."""
    native_expert_precision: str | None = None
    """Precision of the routed experts in the checkpoint when it differs (gpt-oss: mxfp4)."""

    def __post_init__(self) -> None:
        if self.layer_types is not None and not isinstance(self.layer_types, tuple):
            object.__setattr__(self, "layer_types", tuple(self.layer_types))

    # -- structure ------------------------------------------------------------------
    @property
    def linear_layers(self) -> int:
        """Layers with linear attention (Gated DeltaNet) instead of softmax attention."""
        if self.linear_num_value_heads <= 0:
            return 0
        if self.layer_types is not None:
            return sum(t == "linear_attention" for t in self.layer_types)
        if self.full_attention_interval > 0:
            return self.num_layers - self.num_layers // self.full_attention_interval
        return 0

    @property
    def is_moe(self) -> bool:
        """Whether the model has routed experts."""
        return self.num_experts > 0

    @property
    def is_mla(self) -> bool:
        """Whether attention is multi-head latent attention."""
        return self.kv_lora_rank > 0

    @property
    def is_sparse(self) -> bool:
        """Whether attention is DeepSeek sparse attention (an indexer picks the tokens read)."""
        return self.index_topk > 0 and self.index_head_dim > 0

    @property
    def moe_layers(self) -> int:
        """Layers whose FFN is a mixture of experts."""
        return self.num_layers - self.first_dense_layers if self.is_moe else 0

    @property
    def dense_layers(self) -> int:
        """Layers with a dense FFN."""
        return self.num_layers - self.moe_layers

    @property
    def global_layers(self) -> int:
        """Layers with full (global) attention: neither sliding-window nor linear."""
        return self.num_layers - self.local_layers - self.linear_layers

    @property
    def attention_layers(self) -> int:
        """Layers with softmax attention (global + sliding-window)."""
        return self.num_layers - self.linear_layers

    # -- parameter counts --------------------------------------------------------------
    def attention_params(self) -> int:
        """Weights of one layer's attention block (projections, biases, norms, sinks)."""
        if self.is_mla:
            return self._mla_params()
        d, h, kv, hd = self.hidden_size, self.num_heads, self.num_kv_heads, self.head_dim
        q_out = h * hd * (2 if self.attn_output_gate else 1)
        n = d * q_out + 2 * d * kv * hd + h * hd * d
        if self.attention_bias:
            n += h * hd + 2 * kv * hd + d
        if self.attention_sinks:
            n += h
        if self.qk_norm:
            n += (h + kv) * hd if self.qk_norm_type == "per_layer" else 2 * hd
        return n

    def _mla_params(self) -> int:
        d, h = self.hidden_size, self.num_heads
        qk_dim = self.qk_nope_head_dim + self.qk_rope_head_dim
        if self.q_lora_rank:
            q = d * self.q_lora_rank + self.q_lora_rank + self.q_lora_rank * h * qk_dim
        else:
            q = d * h * qk_dim
        kv_a = d * (self.kv_lora_rank + self.qk_rope_head_dim) + self.kv_lora_rank
        kv_b = self.kv_lora_rank * h * (self.qk_nope_head_dim + self.v_head_dim)
        out = h * self.v_head_dim * d
        return q + kv_a + kv_b + out + self.indexer_params()

    def indexer_params(self) -> int:
        """Weights of one layer's DSA lightning indexer (0 without): wq_b (q_lora_rank, else
        hidden → heads·head_dim), wk (hidden → head_dim), k_norm (LayerNorm: weight and bias),
        weights_proj (hidden → heads), as in DeepSeek-V3.2's ``Indexer``."""
        if not self.is_sparse:
            return 0
        d, nh, hd = self.hidden_size, self.index_n_heads, self.index_head_dim
        return (self.q_lora_rank or d) * nh * hd + d * hd + 2 * hd + d * nh

    def linear_conv_dim(self) -> int:
        """Channels of the depthwise conv of a Gated DeltaNet layer: 2·key_dim + value_dim."""
        key_dim = self.linear_num_key_heads * self.linear_key_head_dim
        return 2 * key_dim + self.linear_num_value_heads * self.linear_value_head_dim

    def linear_attention_params(self) -> int:
        """Weights of one Gated DeltaNet layer's token mixer.

        in_proj_qkvz d·(2·key_dim + 2·value_dim), in_proj_ba d·2·H_v, conv conv_dim·kernel,
        dt_bias + A_log 2·H_v, gated RMSNorm d_v, out_proj value_dim·d.
        """
        d, hv = self.hidden_size, self.linear_num_value_heads
        value_dim = hv * self.linear_value_head_dim
        conv = self.linear_conv_dim()
        qkvz = d * (conv + value_dim)
        return (qkvz + d * 2 * hv + conv * self.linear_conv_kernel_dim + 2 * hv
                + self.linear_value_head_dim + value_dim * d)

    def ffn_params(self, intermediate: int) -> int:
        """Weights of one FFN (or one expert) of the given intermediate size."""
        n = self.ffn_matrices * self.hidden_size * intermediate
        if self.expert_bias:
            n += (self.ffn_matrices - 1) * intermediate + self.hidden_size
        return n

    def expert_params(self) -> int:
        """Weights of one routed (or shared) expert; 0 for a dense model."""
        return self.ffn_params(self.moe_intermediate_size) if self.is_moe else 0

    def shared_expert_params(self) -> int:
        """Weights of one MoE layer's shared experts (with their output gate)."""
        if not self.is_moe or not self.shared_experts:
            return 0
        size = self.shared_expert_intermediate_size or self.moe_intermediate_size
        gate = self.hidden_size if self.shared_expert_gate else 0
        return self.shared_experts * self.ffn_params(size) + gate

    def router_params(self) -> int:
        """Weights of one MoE layer's router."""
        return self.num_experts * (self.hidden_size + (1 if self.router_bias else 0))

    def embedding_params(self) -> int:
        """Input embedding matrix (vocab × hidden)."""
        return self.vocab_size * self.hidden_size

    def lm_head_params(self) -> int:
        """Output projection; 0 when tied to the input embedding."""
        return 0 if self.tie_embeddings else self.vocab_size * self.hidden_size

    def norm_params(self) -> int:
        """RMSNorm weights of all layers plus the final norm."""
        return (self.num_layers * self.norms_per_layer + 1) * self.hidden_size

    def routed_expert_params_total(self) -> int:
        """Weights of all routed experts of all MoE layers."""
        return self.moe_layers * self.num_experts * self.expert_params()

    def n_total(self) -> int:
        """All decoder weights (embedding once when tied; no MTP module)."""
        moe_layer = self.router_params() + self.shared_expert_params()
        return (
            self.attention_layers * self.attention_params()
            + self.linear_layers * self.linear_attention_params()
            + self.dense_layers * self.ffn_params(self.intermediate_size)
            + self.moe_layers * moe_layer
            + self.routed_expert_params_total()
            + self.embedding_params()
            + self.lm_head_params()
            + self.norm_params()
        )

    def n_active(self, include_input_embedding: bool = True) -> int:
        """Weights used per token: ``n_total`` minus the unused routed experts.

        Counts attention of all layers, dense FFN layers, shared experts, the top-k
        routed experts, routers, norms and the LM head; the input embedding only
        when ``include_input_embedding`` (the default; its lookup costs no FLOPs).
        A tied embedding matrix is counted once (as the LM head) either way.
        """
        unused = self.moe_layers * (self.num_experts - self.experts_per_token)
        n = self.n_total() - unused * self.expert_params()
        if not include_input_embedding and not self.tie_embeddings:
            n -= self.embedding_params()
        return n

    # -- KV cache --------------------------------------------------------------------------
    def kv_elements_per_layer(self) -> int:
        """KV-cache elements per token per layer (MLA: the compressed latent + rope key)."""
        if self.is_mla:
            return self.kv_lora_rank + self.qk_rope_head_dim
        return 2 * self.num_kv_heads * self.head_dim

    def kv_bytes_per_token(self, kv_precision: str = "bf16") -> float:
        """KV bytes per token of context over the global-attention layers."""
        return self.global_layers * self.kv_elements_per_layer() * precision_bytes(kv_precision)

    def kv_bytes_per_token_local(self, kv_precision: str = "bf16") -> float:
        """KV bytes per token of context over the sliding-window layers (0 if none)."""
        return self.local_layers * self.kv_elements_per_layer() * precision_bytes(kv_precision)

    def index_bytes_per_token(self) -> float:
        """Bytes per token of context of the DSA indexer's key cache over the attention layers:
        fp8 keys (head_dim bytes) and one fp32 scale per 128 of them, at any KV precision (0
        without an indexer)."""
        if not self.is_sparse:
            return 0.0
        per_layer = self.index_head_dim + 4 * -(-self.index_head_dim // 128)
        return float(self.global_layers * per_layer)

    def state_bytes_per_seq(self, kv_precision: str = "bf16") -> float:
        """Constant state one sequence keeps over the linear-attention layers, bytes.

        Per layer: recurrent state H_v·d_k·d_v (at ``linear_state_precision``, else the KV
        precision) + conv state conv_dim·(kernel − 1) at the KV precision (vLLM's shapes).
        """
        if not self.linear_layers:
            return 0.0
        state_p = self.linear_state_precision or kv_precision
        recurrent = (self.linear_num_value_heads * self.linear_key_head_dim
                     * self.linear_value_head_dim * precision_bytes(state_p))
        conv = self.linear_conv_dim() * max(self.linear_conv_kernel_dim - 1, 0) \
            * precision_bytes(kv_precision)
        return float(self.linear_layers * (recurrent + conv))

    # -- precision -------------------------------------------------------------------------
    def bytes_per_weight(self, weights: str = "bf16") -> float:
        """Average bytes per weight; ``"native"`` is the checkpoint's (mixed for gpt-oss)."""
        if weights.lower() != "native":
            return precision_bytes(weights)
        base = precision_bytes(self.native_precision)
        if self.native_expert_precision is None:
            return base
        experts = self.routed_expert_params_total()
        total = self.n_total()
        expert_bytes = experts * precision_bytes(self.native_expert_precision)
        return (expert_bytes + (total - experts) * base) / total


def model_from_architecture(
    arch: Architecture,
    weights: str = "bf16",
    kv: str = "bf16",
    *,
    include_input_embedding: bool = True,
) -> Model:
    """The roofline's :class:`Model` of an architecture; leaves are Python floats.

    ``weights``: a precision name or ``"native"`` (the checkpoint's, e.g. fp8 for
    DeepSeek-V3, mxfp4 experts + bf16 rest for gpt-oss: a weighted average).
    ``kv``: the KV-cache precision. Hybrid models get their local layers as
    ``kv_bytes_per_token_local`` over ``local_window`` tokens; linear-attention layers their
    constant state as ``state_bytes_per_seq``. DeepSeek sparse attention reads ``top_k`` =
    ``index_topk`` tokens of the global layers' KV, and its indexer's key cache is the second
    stream (``kv_bytes_per_token_local`` over every token: ``local_window`` = ∞).
    """
    n_total = float(arch.n_total())
    n_active = float(arch.n_active(include_input_embedding))
    local = arch.local_layers > 0 and arch.sliding_window > 0
    if local and arch.is_sparse:
        raise ValueError("an architecture with both sliding-window layers and DeepSeek sparse "
                         "attention has two second streams; rooflax models one")
    second = {"kv_bytes_per_token_local": float(arch.kv_bytes_per_token_local(kv)),
              "local_window": float(arch.sliding_window)} if local else {}
    if arch.is_sparse:  # the indexer's keys: read and kept over every cached token
        second = {"kv_bytes_per_token_local": arch.index_bytes_per_token(),
                  "local_window": float("inf"), "top_k": float(arch.index_topk)}
    return Model(
        n_total=n_total,
        sparsity=n_total / n_active,
        kv_bytes_per_token=float(arch.kv_bytes_per_token(kv)),
        bytes_per_weight=float(arch.bytes_per_weight(weights)),
        state_bytes_per_seq=arch.state_bytes_per_seq(kv),
        **second,
    )
