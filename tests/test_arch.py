"""Parameter and KV-cache counts of ``rooflax.core.arch`` against independent numbers.

The expected numbers below are copied from the project's reference table
(``params_derived``: an independent derivation from each config; ``kv_cache``),
not from this code's output.
"""

from __future__ import annotations

import dataclasses

import pytest

from rooflax.core.arch import Architecture, model_from_architecture
from rooflax.sweeps import catalogs

# key: (total, active incl. input embedding, active excl. input embedding [matmul incl. LM head]).
REFERENCE_DERIVED = {
    "llama-3.1-8b": (8030261248, 8029995008, 7504658432),
    "llama-3.1-70b": (70553706496, 70552387584, 69501714432),
    "llama-3.1-405b": (405853388800, 405849243648, 403747897344),
    "llama-2-70b": (68976648192, 68975329280, 68713185280),
    "gemma-3-27b": (27009002240, 28416949760, 27007663616),
    "mixtral-8x7b": (46702792704, 12879659008, 12748587008),
    "qwen3-235b-a22b": (235093634560, 22189989376, 21567659520),
    "qwen3-30b-a3b": (30532122624, 3352834048, 3041669120),
    "gpt-oss-120b": (116829156672, 5711772672, 5132639232),
    "gpt-oss-20b": (20914757184, 4187299584, 3608166144),
    "deepseek-v3": (671026419200, 37551415808, 36624736768),
    "kimi-k2": (1026408232448, 32860619264, 31686214144),
    # Kimi-K2.5's text backbone is Kimi-K2's (continual pretraining on Kimi-K2-Base).
    "kimi-k2.5": (1026408232448, 32860619264, 31686214144),
    "deepseek-v2": (235741434880, 21375180800, 20850892800),
    "deepseek-v2-lite": (15706484224, 2661037568, 2451322368),
}

REFERENCE_EXPERT_PARAMS = {
    "mixtral-8x7b": 176160768,
    "qwen3-235b-a22b": 18874368,
    "qwen3-30b-a3b": 4718592,
    "gpt-oss-120b": 24891840,
    "gpt-oss-20b": 24891840,
    "deepseek-v3": 44040192,
    "kimi-k2": 44040192,
    "deepseek-v2": 23592960,
    "deepseek-v2-lite": 8650752,
}

REFERENCE_MLA_ATTENTION = {
    "deepseek-v3": 187107328,
    "kimi-k2": 101124096,
    "deepseek-v2": 149227520,
    "deepseek-v2-lite": 13763072,
}

# key: (global-layer bytes/token bf16, fp8, local-layer bytes/token bf16).
REFERENCE_KV = {
    "llama-3.1-8b": (131072, 65536, 0),
    "llama-3.1-70b": (327680, 163840, 0),
    "llama-3.1-405b": (516096, 258048, 0),
    "llama-2-70b": (327680, 163840, 0),
    "mixtral-8x7b": (131072, 65536, 0),
    "qwen3-235b-a22b": (192512, 96256, 0),
    "qwen3-30b-a3b": (98304, 49152, 0),
    "deepseek-v3": (70272, 35136, 0),
    "kimi-k2": (70272, 35136, 0),
    "deepseek-v2": (69120, 34560, 0),
    "deepseek-v2-lite": (31104, 15552, 0),
    # Hybrids: reference gives the global layers and the all-layer (no-SWA) total.
    "gpt-oss-120b": (36864, 18432, 73728 - 36864),
    "gpt-oss-20b": (24576, 12288, 49152 - 24576),
    "gemma-3-27b": (81920, 81920 // 2, 507904 - 81920),
}


# Models the reference table lacks: the hybrids are counted tensor by tensor, from the Hugging
# Face module shapes, in tests/test_hybrid.py; Qwen3-32B against its published count in
# tests/test_catalog.py; Qwen3-8B and Qwen3-Coder-480B tensor by tensor below; DeepSeek-V3.2 as
# DeepSeek-V3 plus its indexer below.
DERIVED_ELSEWHERE = {"qwen3.5-397b-a17b", "glm-5", "minimax-m2.5", "qwen3-32b", "qwen3-8b",
                     "qwen3-coder-480b-a35b", "deepseek-v3.2"}


def _qwen3_tensors(d, layers, heads, kv_heads, head_dim, vocab, ffn, experts=0, expert_ffn=0):
    """Parameters of a Qwen3 (dense or MoE) checkpoint counted tensor by tensor from its module
    shapes: untied embedding and LM head, q/k/v/o, q/k RMSNorm (head_dim each), two RMSNorms per
    layer, SwiGLU MLP (3 matrices) or router + experts, final norm."""
    attn = d * heads * head_dim + 2 * d * kv_heads * head_dim + heads * head_dim * d + 2 * head_dim
    mlp = 3 * d * ffn if not experts else d * experts + experts * 3 * d * expert_ffn
    return 2 * vocab * d + layers * (attn + mlp + 2 * d) + d


@pytest.mark.parametrize("key,count,kv_bf16", [
    # Qwen3-8B: 36 layers, d 4096, 32/8 heads of 128, FFN 12288, vocab 151936 (config.json)
    ("qwen3-8b", _qwen3_tensors(4096, 36, 32, 8, 128, 151936, 12288), 36 * 2 * 8 * 128 * 2),
    # Qwen3-Coder-480B-A35B: 62 layers, d 6144, 96/8 heads of 128, 160 experts of 2560, top-8
    ("qwen3-coder-480b-a35b", _qwen3_tensors(6144, 62, 96, 8, 128, 151936, 0, 160, 2560),
     62 * 2 * 8 * 128 * 2),
])
def test_qwen3_counted_tensor_by_tensor(key, count, kv_bf16):
    arch = catalogs.architecture(key)
    assert arch.n_total() == count
    assert arch.kv_bytes_per_token("bf16") == kv_bf16


def test_reference_covers_the_catalog():
    assert set(REFERENCE_DERIVED) | DERIVED_ELSEWHERE == set(catalogs.model_names())


@pytest.mark.parametrize("key", sorted(REFERENCE_DERIVED))
def test_n_total_equals_reference_derivation(key):
    arch = catalogs.architecture(key)
    assert arch.n_total() == pytest.approx(REFERENCE_DERIVED[key][0], rel=5e-3)


@pytest.mark.parametrize("key", sorted(REFERENCE_DERIVED))
def test_n_active_equals_reference_derivation(key):
    arch = catalogs.architecture(key)
    _, with_embedding, without_embedding = REFERENCE_DERIVED[key]
    # The reference counts a tied embedding twice (lookup + head); we count it once.
    if not arch.tie_embeddings:
        assert arch.n_active() == pytest.approx(with_embedding, rel=5e-3)
    assert arch.n_active(include_input_embedding=False) == pytest.approx(
        without_embedding, rel=5e-3
    )


@pytest.mark.parametrize("key", sorted(REFERENCE_EXPERT_PARAMS))
def test_expert_params(key):
    assert catalogs.architecture(key).expert_params() == REFERENCE_EXPERT_PARAMS[key]


@pytest.mark.parametrize("key", sorted(REFERENCE_MLA_ATTENTION))
def test_mla_attention_params(key):
    assert catalogs.architecture(key).attention_params() == REFERENCE_MLA_ATTENTION[key]


@pytest.mark.parametrize("key", sorted(REFERENCE_KV))
def test_kv_bytes_per_token_exact(key):
    arch = catalogs.architecture(key)
    bf16, fp8, local_bf16 = REFERENCE_KV[key]
    assert arch.kv_bytes_per_token("bf16") == bf16
    assert arch.kv_bytes_per_token("fp8") == fp8
    assert arch.kv_bytes_per_token_local("bf16") == local_bf16


def test_kv_spec_examples():
    assert catalogs.architecture("deepseek-v3").kv_bytes_per_token("bf16") == 70272
    assert catalogs.architecture("deepseek-v3").kv_bytes_per_token("fp8") == 35136
    assert catalogs.architecture("llama-3.1-70b").kv_bytes_per_token("bf16") == 327680


def test_dense_model_has_no_experts_and_sparsity_one():
    arch = catalogs.architecture("llama-3.1-8b")
    assert arch.expert_params() == 0
    assert arch.n_active() == arch.n_total()
    assert float(model_from_architecture(arch).sparsity) == 1.0


def test_tied_embedding_counted_once():
    arch = catalogs.architecture("gemma-3-27b")
    untied = dataclasses.replace(arch, tie_embeddings=False)
    assert untied.n_total() - arch.n_total() == arch.vocab_size * arch.hidden_size
    assert arch.n_active() == arch.n_total()


def test_small_hand_counted_model():
    arch = Architecture(
        hidden_size=4, num_layers=2, num_heads=2, num_kv_heads=1, head_dim=2,
        intermediate_size=8, vocab_size=10,
    )
    attention = 4 * 4 + 2 * 4 * 2 + 4 * 4  # q, k+v, o
    ffn = 3 * 4 * 8
    norms = (2 * 2 + 1) * 4
    assert arch.n_total() == 2 * (attention + ffn) + 2 * 10 * 4 + norms
    assert arch.kv_bytes_per_token("bf16") == 2 * 2 * 1 * 2 * 2


def test_model_from_architecture_moe():
    arch = catalogs.architecture("deepseek-v3")
    m = model_from_architecture(arch, weights="fp8", kv="fp8")
    assert float(m.n_total) == arch.n_total()
    assert float(m.n_active) == pytest.approx(arch.n_active())
    assert float(m.bytes_per_weight) == 1.0
    assert float(m.kv_bytes_per_token) == 35136
    assert float(m.kv_bytes_per_token_local) == 0.0
    assert all(isinstance(x, float) for x in (m.n_total, m.sparsity, m.kv_bytes_per_token))


def test_gpt_oss_native_precision_is_a_weighted_average():
    arch = catalogs.architecture("gpt-oss-120b")
    experts = arch.routed_expert_params_total()
    expected = (experts * 4.25 / 8 + (arch.n_total() - experts) * 2) / arch.n_total()
    m = model_from_architecture(arch, weights="native")
    assert float(m.bytes_per_weight) == pytest.approx(expected)
    assert 0.53 < float(m.bytes_per_weight) < 0.6
    assert float(m.local_window) == 128
    assert float(m.kv_bytes_per_token_local) == 36864


def test_native_precision_of_dense_checkpoints():
    assert catalogs.architecture("deepseek-v3").bytes_per_weight("native") == 1.0
    assert catalogs.architecture("llama-3.1-70b").bytes_per_weight("native") == 2.0
    assert catalogs.architecture("llama-3.1-70b").bytes_per_weight("fp4") == 0.5


def test_unknown_precision_raises():
    with pytest.raises(ValueError, match="unknown precision"):
        catalogs.architecture("llama-3.1-8b").kv_bytes_per_token("fp3")


# -- DeepSeek sparse attention (DeepSeek-V3.2, GLM-5) ----------------------------------------------
def test_dsv32_is_dsv3_plus_its_indexer():
    """DeepSeek-V3.2 = DeepSeek-V3 + per layer the lightning indexer's wq_b (q_lora 1536 → 64·128),
    wk (7168 → 128), k_norm (LayerNorm: 2·128) and weights_proj (7168 → 64); same MLA cache, plus
    the indexer's fp8 keys with one fp32 scale per 128: 61·(128 + 4) bytes per token."""
    v3, v32 = catalogs.architecture("deepseek-v3"), catalogs.architecture("deepseek-v3.2")
    indexer = 1536 * 64 * 128 + 7168 * 128 + 2 * 128 + 7168 * 64
    assert v32.n_total() - v3.n_total() == 61 * indexer
    assert v32.n_active() - v3.n_active() == 61 * indexer
    assert v32.kv_bytes_per_token("fp8") == v3.kv_bytes_per_token("fp8") == 61 * 576
    assert v32.index_bytes_per_token() == 61 * 132 and v3.index_bytes_per_token() == 0.0


@pytest.mark.parametrize("context", [1000.0, 2048.0, 32768.0])
def test_sparse_attention_reads_top_k_and_the_indexer_reads_all(context):
    """Per sequence per decode step: the MLA cache over min(L, 2048) tokens plus the indexer's keys
    over all L (read); both over all L (kept); FLOPs 61·128·2176 per token attended plus the
    indexer's 2·64·128 per layer per cached token."""
    from rooflax import core as rc

    m = catalogs.model("deepseek-v3.2", kv="bf16", extended=True)
    wl = rc.Workload(batch=1.0, context=context)
    read = 61 * 576 * 2 * min(context, 2048.0) + 61 * 132 * context
    assert float(rc.kv_read_bytes(m, wl)) == pytest.approx(read, rel=1e-12)
    assert float(rc.kv_store_bytes(m, wl)) == pytest.approx((61 * 576 * 2 + 61 * 132) * context,
                                                            rel=1e-12)
    flops = 61 * 128 * 2176 * min(context, 2048.0) + 61 * 2 * 64 * 128 * context
    assert float(rc.roofline.attn_flops(m, wl)) == pytest.approx(flops, rel=1e-12)


def test_sliding_window_and_sparse_attention_together_refused():
    arch = dataclasses.replace(catalogs.architecture("deepseek-v3.2"), sliding_window=128,
                               local_layers=30)
    with pytest.raises(ValueError, match="two second streams"):
        model_from_architecture(arch)
