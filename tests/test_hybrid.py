"""Linear-attention (Gated DeltaNet) hybrids: counts from module shapes, the per-sequence state in
the decode step and the closed forms, each against an independent statement in plain Python.
Also the other catalog models the reference table lacks (GLM-5, MiniMax-M2.5), counted the same way."""

from __future__ import annotations

import math

import numpy as np
import pytest
from bruteforce import BATCH_GRID, STEP

from rooflax import core as rc
from rooflax.sweeps import catalogs


def _qwen35_tensors(experts_used: int) -> list[tuple[int, ...]]:
    """Qwen3.5-397B-A17B's language-model tensors by Hugging Face module, as shapes.

    60 layers, every 4th full attention; d 4096, vocab 248320; full attention: 32 q heads with an
    output gate, 2 KV heads of 256, q/k norms; Gated DeltaNet: 16 key / 64 value heads of 128,
    conv kernel 4; MoE: 512 experts of 1024 (``experts_used`` counted), one gated shared expert.
    """
    d, v = 4096, 248320
    key_dim, value_dim = 16 * 128, 64 * 128
    full = [(32 * 256 * 2, d), (2 * 256, d), (2 * 256, d), (d, 32 * 256), (256,), (256,)]
    linear = [(2 * key_dim + 2 * value_dim, d), (2 * 64, d), (2 * key_dim + value_dim, 1, 4),
              (64,), (64,), (128,), (d, value_dim)]
    moe = [(512, d)] + [(1024, d), (1024, d), (d, 1024)] * (experts_used + 1) + [(1, d)]
    norms = [(d,), (d,)]
    shapes: list[tuple[int, ...]] = [(v, d), (v, d), (d,)]  # embed, lm_head, final norm
    for i in range(60):
        shapes += (full if i % 4 == 3 else linear) + moe + norms
    return shapes


def _count(shapes) -> int:
    return sum(math.prod(s) for s in shapes)


def test_qwen35_counts_from_module_shapes():
    arch = catalogs.architecture("qwen3.5-397b-a17b")
    assert arch.n_total() == _count(_qwen35_tensors(512))
    assert arch.n_active() == _count(_qwen35_tensors(10))
    assert arch.n_active(include_input_embedding=False) == _count(_qwen35_tensors(10)) - 248320 * 4096


def _glm5_tensors(experts_used: int) -> list[tuple[int, ...]]:
    """GLM-5 (DeepSeek-V3 module names): MLA q_a/q_b/kv_a/kv_b/o with their norms, the DSA
    indexer (wq_b 2048 → 32·128, wk, k_norm weight and bias, weights_proj → 32 heads), 3 dense FFN
    layers of 12288, then 256 routed (+ ``experts_used``) + 1 shared expert of 2048, router + bias."""
    d, v, h = 6144, 154880, 64
    indexer = [(32 * 128, 2048), (128, d), (128,), (128,), (32, d)]
    attn = [(2048, d), (2048,), (h * (192 + 64), 2048), (512 + 64, d), (512,),
            (h * (192 + 256), 512), (d, h * 256)] + indexer
    dense = [(12288, d), (12288, d), (d, 12288)]
    moe = [(256, d), (256,)] + [(2048, d), (2048, d), (d, 2048)] * (experts_used + 1)
    shapes: list[tuple[int, ...]] = [(v, d), (v, d), (d,)]
    for i in range(78):
        shapes += attn + (dense if i < 3 else moe) + [(d,), (d,)]
    return shapes


def _minimax_tensors(experts_used: int) -> list[tuple[int, ...]]:
    """MiniMax-M2: GQA 48/8 × 128 with per-layer q/k norms (over all heads), 256 experts of 1536,
    router with a per-expert bias, no shared expert."""
    d, v = 3072, 200064
    attn = [(48 * 128, d), (8 * 128, d), (8 * 128, d), (d, 48 * 128), (48 * 128,), (8 * 128,)]
    moe = [(256, d), (256,)] + [(1536, d), (1536, d), (d, 1536)] * experts_used
    shapes: list[tuple[int, ...]] = [(v, d), (v, d), (d,)]
    for _ in range(62):
        shapes += attn + moe + [(d,), (d,)]
    return shapes


@pytest.mark.parametrize("key,tensors", [("glm-5", _glm5_tensors), ("minimax-m2.5", _minimax_tensors)])
def test_other_new_models_counted_from_module_shapes(key, tensors):
    arch = catalogs.architecture(key)
    used = arch.experts_per_token
    assert arch.n_total() == _count(tensors(arch.num_experts))
    assert arch.n_active() == _count(tensors(used))


def test_qwen35_kv_and_state_bytes():
    arch = catalogs.architecture("qwen3.5-397b-a17b")
    assert arch.kv_bytes_per_token("bf16") == 15 * 2 * 2 * 256 * 2  # layers · (K,V) · heads · dim · B
    recurrent = 64 * 128 * 128 * 2  # value heads · d_k · d_v · bf16
    conv = (2 * 16 * 128 + 64 * 128) * 3 * 2  # conv channels · (kernel − 1) · bf16
    assert arch.state_bytes_per_seq("bf16") == 45 * (recurrent + conv)
    m = catalogs.model("qwen3.5-397b-a17b", kv="fp8", extended=True)
    assert m.state_bytes_per_seq == 45 * (64 * 128 * 128 + (2 * 16 * 128 + 64 * 128) * 3)
    assert m.attn_flops_per_ctx_token == 15 * 4 * 32 * 256  # only the full-attention layers


def test_state_defaults_are_neutral():
    assert rc.Model(n_total=1e9, sparsity=1.0, kv_bytes_per_token=1e5).state_bytes_per_seq == 0.0
    assert catalogs.model("llama-3.1-8b").state_bytes_per_seq == 0.0


# -- the decode step: the state is read every step, kept once per sequence, never replicated --
HW = rc.Hardware(bw=4.8e12, c_over_bw=206.0, capacity=141e9, price=3.0 / 3600, chips=8.0)
N, SP, B_TOK, S = 80e9, 20.0, 24_576.0, 60e6  # parameters, sparsity, KV B/token, state B/seq
M = rc.Model(n_total=N, sparsity=SP, kv_bytes_per_token=B_TOK, kv_heads=2.0,
             state_bytes_per_seq=S)


def test_t_memory_counts_the_state_once_under_tp():
    """TP 8 over 2 KV heads replicates KV 4×; the state (sharded by heads) is counted once."""
    wl = rc.Workload(batch=32.0, context=8192.0)
    expected = (N * 2.0 + 32 * (4 * B_TOK * 8192 + S)) / (4.8e12 * 8)
    assert float(rc.t_memory(HW, M, wl)) == pytest.approx(expected, rel=1e-12)
    assert float(rc.kv_read_bytes(M, wl)) == B_TOK * 8192 + S


@pytest.mark.parametrize("context", [0.0, 1024.0, 65536.0])
def test_b_max_with_state_brute_force(context):
    wl = rc.Workload(context=context)
    fits = N * 2.0 + BATCH_GRID * (4 * B_TOK * context + S) <= 141e9 * 8
    expected = BATCH_GRID[np.nonzero(fits)[0][-1]]
    assert float(rc.b_max(HW, M, wl)) == pytest.approx(expected, rel=2 * STEP)


@pytest.mark.parametrize("context", [0.0, 4096.0, 32768.0])
def test_b_x_with_state_brute_force(context):
    wl = rc.Workload(context=context)
    c, bw = 206.0 * 4.8e12 * 8, 4.8e12 * 8
    t_c = BATCH_GRID * (N / SP) / c
    t_m = (N * 2.0 + BATCH_GRID * (4 * B_TOK * context + S)) / bw
    crossed = np.nonzero(t_c >= t_m)[0]
    bx = float(rc.b_x(HW, M, wl))
    if crossed.size == 0:
        assert bx > BATCH_GRID[-1]
    else:
        assert bx == pytest.approx(BATCH_GRID[crossed[0]], rel=2 * STEP)


def test_l_crit_and_l_bal_subtract_the_state():
    one = HW.replace(chips=1.0)
    m = M.replace(kv_heads=np.inf)
    wl = rc.Workload(batch=16.0)
    # weights read = B·(b·L + s)  ⇒  L = (N·w/B − s)/b
    assert float(rc.l_crit(one, m, wl)) == pytest.approx((N * 2.0 / 16 - S) / B_TOK, rel=1e-12)
    # KV slope = compute slope: (b·L + s)/BW = N_active/C  ⇒  L = (BW·N_active/C − s)/b
    small = m.replace(state_bytes_per_seq=5e6)
    assert float(rc.l_bal(one, small)) == pytest.approx((N / SP / 206.0 - 5e6) / B_TOK, rel=1e-12)
    assert float(rc.l_bal(one, m)) == 0.0  # s = 60 MB > BW·N_active/C ≈ 19 MB: KV slope wins at once
    # a state alone above the weights' share: KV-bound from L = 0
    assert float(rc.l_crit(one, m.replace(state_bytes_per_seq=N * 2.0), wl)) == 0.0


def test_cost_floor_includes_the_state_slope():
    """B → ∞ on a KV-bound point: cost per token → (b·L·r + s)/BW · p·n."""
    wl = rc.Workload(context=131072.0)
    slope = (4 * B_TOK * 131072 + S) / (4.8e12 * 8)
    assert slope > (N / SP) / (206.0 * 4.8e12 * 8)  # KV-bound at this context
    assert float(rc.cost_floor(HW, M, wl)) == pytest.approx(slope * 3.0 / 3600 * 8, rel=1e-12)
