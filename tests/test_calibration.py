"""Engine physics (core.predict), the measurement loader's rules, and calibration recovery."""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rooflax import core as rc
from rooflax.core import parallel, predict
from rooflax.sweeps import calibration as C
from rooflax.sweeps import catalogs
from rooflax.sweeps import efficiency as eff
from rooflax.sweeps import measurements as M


# -- core.predict ------------------------------------------------------------------------------
def _dsv3_trees(batch):
    arch = catalogs.architecture("deepseek-v3")
    hw = catalogs.hardware("h200", chips=8.0, precision="fp8").replace(link_bw=450e9)
    hw = parallel.layout(hw, "ep")
    model = parallel.extended_model(arch, weights="fp8")
    return hw, model, rc.Workload(batch=batch, context=2048.0, prompt=1024.0)


def test_neutral_engine_is_the_bound():
    """Every Engine leaf at its default: the prediction is the roofline t_step."""
    hw, model, wl = _dsv3_trees(jnp.asarray([1.0, 4.0, 64.0, 512.0]))
    np.testing.assert_allclose(predict.step_time(hw, model, wl, predict.Engine()),
                               rc.t_step(hw, model, wl), rtol=1e-12)
    llama = catalogs.model("llama-3.1-70b")  # the seeds' model (no extended leaves)
    h1 = catalogs.hardware("h100-sxm")
    w1 = rc.Workload(batch=jnp.asarray([1.0, 32.0]), context=4096.0)
    np.testing.assert_allclose(predict.step_time(h1, llama, w1, predict.Engine()),
                               rc.t_step(h1, llama, w1), rtol=1e-12)


def test_expected_max_exact_enumeration():
    """Σ(1 − F^r) against enumerating every outcome of 2 ranks × 3 experts."""
    p, m, r = 0.3, 3, 2
    total = 0.0
    for bits in itertools.product([0, 1], repeat=m * r):
        prob = np.prod([p if b else 1 - p for b in bits])
        total += prob * max(sum(bits[i * m:(i + 1) * m]) for i in range(r))
    assert float(predict.expected_max_touched(p, m, r)) == pytest.approx(total, rel=1e-10)
    assert float(predict.expected_max_touched(p, 32.0, 1.0)) == pytest.approx(0.3 * 32, rel=1e-9)


def test_expected_max_monte_carlo_top_k_routing():
    """Top-8 of 256 experts over 8 EP ranks, 4 tokens: brute-force routing within 2%."""
    rng = np.random.default_rng(1)
    E, k, ep, B = 256, 8, 8, 4
    maxima = []
    for _ in range(3000):
        touched = np.zeros(E, bool)
        for _ in range(B):
            touched[rng.choice(E, k, replace=False)] = True
        maxima.append(touched.reshape(ep, -1).sum(1).max())
    p = 1 - (1 - k / E) ** B
    assert float(predict.expected_max_touched(p, E / ep, ep)) == pytest.approx(np.mean(maxima), rel=0.02)


def test_expert_max_slows_small_batches_only():
    hw, model, wl = _dsv3_trees(jnp.asarray([1.0, 4096.0]))
    mean = predict.step_time(hw, model, wl, predict.Engine())
    busiest = predict.step_time(hw, model, wl, predict.Engine(expert_max=1.0))
    ratio = np.asarray(busiest / mean)
    assert ratio[0] > 1.2 and ratio[1] == pytest.approx(1.0, abs=1e-6)


def test_fixed_time_and_prefill_closed_forms():
    hw, model, wl = _dsv3_trees(1.0)
    base = predict.step_time(hw, model, wl, predict.Engine())
    fixed = predict.step_time(hw, model, wl, predict.Engine(t_layer=1e-5, t_overhead=2e-3))
    assert float(fixed - base) == pytest.approx(61 * 1e-5 + 2e-3, rel=1e-9)
    # per-sequence time: t_seq per running sequence of a scheduler (one per attention-DP rank:
    # B/dp sequences), once per step (not per layer)
    wl2 = wl.replace(batch=jnp.asarray([1.0, 64.0]))
    seq = predict.step_time(hw, model, wl2, predict.Engine(t_seq=1e-5))
    dp = float(hw.dp)
    assert dp == 8.0  # DeepSeek-V3's EP layout on 8 chips: attention DP 8
    np.testing.assert_allclose(seq - predict.step_time(hw, model, wl2, predict.Engine()),
                               [1e-5 / dp, 64e-5 / dp], rtol=1e-9)
    # compute-bound batch: the interleaved prompts add (B/osl)·P·(N_active + a·P/4) MACs
    big = wl.replace(batch=16384.0, context=16.0)
    hw = hw.replace(link_bw=jnp.inf)
    assert float(rc.t_compute(hw, model, big)) > float(rc.t_memory(hw, model, big))
    t0 = predict.step_time(hw, model, big, predict.Engine())
    t1 = predict.step_time(hw, model, big, predict.Engine(osl=1024.0))
    extra = 16384 / 1024 * 1024 * (model.n_active + model.attn_flops_per_ctx_token * 1024 / 4)
    assert float(t1 - t0) == pytest.approx(float(extra / hw.replica_macs), rel=1e-9)
    # the embedding lookup and LM head (prefill_skip weights) are not multiplied per prompt token
    t2 = predict.step_time(hw, model, big, predict.Engine(osl=1024.0, prefill_skip=1e9))
    assert float(t1 - t2) == pytest.approx(16384 / 1024 * 1024 * 1e9 / float(hw.replica_macs),
                                           rel=1e-9)


def test_interleaved_prompts_attend_as_the_prompt_formula_with_decode_flops():
    """One formula for a prompt's attention (core.prefill.prompt_attn_flops): the interleaved
    prompts of DeepSeek-V3.2 at P = 32k read min(x, 2048) MLA tokens per query (top-k) and the
    indexer all x: (B/osl)·(P·N_active + (a·S(P) + a_idx·P²/2)/2) MACs, a at decode's (absorbed)
    value; TTFT's prefill uses the un-absorbed MLA value the Model carries."""
    from rooflax.core import prefill

    model = catalogs.model("deepseek-v3.2", weights="fp8", extended=True)
    P, B, osl = 32768.0, 64.0, 2048.0
    wl = rc.Workload(batch=B, context=P, prompt=P)
    s_capped = 2048.0 ** 2 / 2 + 2048.0 * (P - 2048.0)
    attn = 61 * 128 * 2176 * s_capped + 61 * 2 * 64 * 128 * P * P / 2
    want = B / osl * (P * float(model.n_active) + attn / 2)
    got = float(predict.prefill_macs(model, wl, predict.Engine(osl=osl)))
    assert got == pytest.approx(want, rel=1e-12)
    pre = float(parallel.prefill_attn_flops(catalogs.architecture("deepseek-v3.2")))
    assert pre == 61 * 128 * (2 * (128 + 64) + 2 * 128)
    ttft = float(prefill.prefill_flops(model, wl.replace(prefill_batch=1.0)))
    assert ttft == pytest.approx(2 * P * float(model.n_active) + pre * s_capped
                                 + 61 * 2 * 64 * 128 * P * P / 2, rel=1e-12)


def test_dequantized_weights_add_time_per_layer():
    """Weights in a format the chip cannot multiply (weight-only quantization) add t_dequant_layer
    per decoder layer: 61 layers of DeepSeek-V3; nothing where every format is native."""
    hw, model, wl = _dsv3_trees(jnp.asarray([1.0, 256.0]))
    base = predict.step_time(hw, model, wl, predict.Engine(t_dequant_layer=3e-5))
    deq = predict.step_time(hw, model, wl, predict.Engine(t_dequant_layer=3e-5, dequant=1.0))
    np.testing.assert_allclose(deq - base, [61 * 3e-5] * 2, rtol=1e-9)
    assert float(predict.fixed_time(model, predict.Engine(t_dequant_layer=3e-5))) == 0.0


@pytest.mark.parametrize("chip,precisions,want", [
    ("h100-sxm", ("mxfp4",), 1.0),           # Hopper has no fp4 peak: mxfp4 is dequantized
    ("h200", ("bf16", "nvfp4"), 1.0),        # any component not native dequantizes
    ("b200", ("nvfp4", "mxfp4"), 0.0),       # Blackwell multiplies fp4 natively
    ("a100", ("fp8",), 1.0),                 # Ampere has no fp8 peak
    ("h100-sxm", ("fp8", "bf16"), 0.0),
    ("h100_sxm", ("int8",), 0.0),            # an engine's spelling of the chip resolves
])
def test_dequant_of_reads_the_chips_native_formats(chip, precisions, want):
    assert C.dequant_of(chip, *precisions) == want


def test_weight_only_quantization_dequantizes_even_where_native():
    """Weights narrower than the GEMM's compute precision are dequantized before each GEMM
    (int8 weights in bf16 GEMMs on H100, whose int8 peak is not used; int4 weights in fp8 GEMMs)."""
    assert C.dequant_of("h100-sxm", "int8", compute="bf16") == 1.0
    assert C.dequant_of("b200", "int4", "int4", compute="fp8") == 1.0
    assert C.dequant_of("h100-sxm", "int8", compute="int8") == 0.0   # SmoothQuant: int8 GEMMs
    assert C.dequant_of("b200", "nvfp4", "nvfp4", compute="nvfp4") == 0.0


@pytest.mark.parametrize("gemm,moe,want", [
    ("fp8_block", "fp8_block", ("fp8", "fp8", "fp8")),
    ("bfloat16", "w4a16_mxfp4", ("bf16", "mxfp4", "bf16")),   # gpt-oss as released
    ("int4_wo", "int4_wo", ("int4", "int4", "bf16")),
    ("fp8", "w4afp8", ("fp8", "int4", "fp8")),
    ("sq", "fp8", ("int8", "fp8", "int8")),
    ("float16", "", ("fp16", "fp16", "fp16")),
])
def test_quant_modes_as_the_table_writes_them(gemm, moe, want):
    """aiconfigurator's GEMM/MoE quant modes → (dense weights, experts, GEMM precision)."""
    (row,) = _rows("q,s,trtllm,1,deepseek-ai/DeepSeek-R1,b200_sxm,x,agg,1024,1024," + gemm + ","
                   + moe + ",8,8,1,1,1,8" + ",,,,,,,,,,,,,," + ",100,20")
    m = M.measurement_from_row(row)
    assert (m.weights, m.experts, m.compute) == want


def test_compute_precision_not_stated_is_the_weights():
    """A structured row without ``compute`` multiplies in its weights' precision (not weight-only)."""
    m = M.Measurement(row_id="x", hardware="h200", model="llama-3.1-70b", chips=2, weights="float8_e4m3fn",
                      isl=1024, osl=1024, batch=8, value=20.0)
    assert (m.weights, m.compute) == ("fp8", "fp8") and C.rows([m]).dequant[0] == 0.0


def test_pipeline_parallel_rows_are_skipped_with_the_reason():
    """pp > 1 is not modelled (the stages of one token run in sequence: read as more TP it would be
    predicted pp× too fast at small batch): the row is skipped, naming the column."""
    (agg, disagg) = _rows(
        "p,s,vllm,1,meta-llama/Llama-3.1-70B,h100_sxm,bf16,agg,1024,1024,bfloat16,bfloat16,8,4,2,1,1,1"
        + ",,,,,,,,,,,,,," + ",100,20",
        "d,s,trtllm,1,deepseek-ai/DeepSeek-R1,h200_sxm,fp8,disagg,8192,1024,fp8,fp8,,,,,,,,,,,,,,"
        "16,1,4,2,1,1,8,30,30.6")
    for row, column in ((agg, "pp_size"), (disagg, "decode_pp_size")):
        skip = M.measurement_from_row(row)
        assert isinstance(skip, M.Skipped) and skip.reason.startswith(f"{column}: pipeline")


def test_unknown_quant_mode_skips_the_row_naming_the_column():
    (row,) = _rows("q,s,trtllm,1,deepseek-ai/DeepSeek-R1,b200_sxm,x,agg,1024,1024,fp8,q3_k_m,8,8,1,1,"
                   "1,8" + ",,,,,,,,,,,,,," + ",100,20")
    skip = M.measurement_from_row(row)
    assert isinstance(skip, M.Skipped)
    assert skip.reason.startswith("moe_quant_mode:") and "'q3_k_m'" in skip.reason


def test_weight_only_row_predicts_the_dequantization_time():
    """Llama-3.1-70B int8_wo on H100 (a chip with an int8 peak): computed at the bf16 peak, and
    predicted slower than the same row without dequantization by vLLM's t_dequant_layer × 80
    layers (calibration.yaml)."""
    (row,) = _rows("w,s,vllm,1,meta-llama/Llama-3.1-70B,h100_sxm,x,agg,1024,1024,int8_wo,int8_wo,8,2,"
                   "1,1,1,1" + ",,,,,,,,,,,,,," + ",100,20")
    r = C.rows([M.measurement_from_row(row)])
    assert r.dequant[0] == 1.0
    assert float(r.hw.c_over_bw[0]) == float(catalogs.hardware("h100-sxm", precision="bf16").c_over_bw)
    cal = C.load()
    native = dataclasses.replace(r, dequant=np.zeros(1))
    extra = C.predict_rows(r, cal)[0] - C.predict_rows(native, cal)[0]
    assert extra == pytest.approx(80 * cal.per_engine["vllm"].values["t_dequant_layer"], rel=1e-9)


def test_weights_formats_compute_at_their_peak():
    """nvfp4/mxfp4 weights compute at the chip's fp4 peak where it has one (B200: 9 000 dense
    TFLOPS, hardware.yaml), else bf16 (H100) — one rule for sweeps, the CLI and calibration."""
    assert catalogs.compute_precision("b200", "nvfp4") == "fp4"
    assert catalogs.compute_precision("h100-sxm", "mxfp4") == "bf16"
    assert catalogs.peak_flops("b200", "nvfp4") == catalogs.peak_flops("b200", "fp4") == 9000e12


def test_prefill_skip_is_embedding_and_lm_head():
    """Llama-3.1-8B (HF config: vocab 128256, hidden 4096, untied): 2·V·d weights skipped."""
    arch = catalogs.architecture("llama-3.1-8b")
    assert C.prefill_skip_of(arch) == 2 * 128256 * 4096


def test_per_kernel_sum_closed_form():
    """Dense GQA, a batch where the GEMMs are compute-bound and attention is KV-bound: kernels in
    sequence take T_gemm_compute + T_kv instead of the seeds' max over the whole step."""
    model = parallel.extended_model(catalogs.architecture("llama-3.1-8b"))
    hw = catalogs.hardware("h100-sxm")
    wl = rc.Workload(batch=2048.0, context=8192.0)
    gemm = 2048 * float(model.n_active) / float(hw.replica_macs)
    kv_bytes = 2048 * float(rc.kv_read_bytes(model, wl))
    attn_c = 2048 * float(rc.attn_flops(model, wl)) / 2 / float(hw.replica_macs)
    weights = float(model.weight_bytes) / float(hw.replica_bw)
    assert gemm > weights and kv_bytes / float(hw.replica_bw) > attn_c
    expected = gemm + kv_bytes / float(hw.replica_bw)
    got = predict.step_time(hw, model, wl, predict.Engine(per_kernel=1.0))
    assert float(got) == pytest.approx(expected, rel=1e-9)
    assert float(rc.t_step(hw, model, wl)) < expected


def test_kv_capacity_limits_running_batch():
    hw, model, wl = _dsv3_trees(1e6)
    eng = predict.Engine(kv_capacity_fraction=0.9)
    f = float(model.expert_fraction)  # DP attention: 8 copies of the dense part, 1 of the experts
    free = 0.9 * 8 * float(hw.capacity) - float(model.weight_bytes) * ((1 - f) * 8 + f)
    per_seq = float(rc.kv_store_bytes(model, wl))  # MLA, tp = 1: one KV copy
    assert float(predict.running_batch(hw, model, wl, eng)) == pytest.approx(free / per_seq, rel=1e-9)
    assert float(predict.running_batch(hw, model, wl.replace(batch=3.0), eng)) == 3.0


def test_engine_leaves_differentiable_finite_difference():
    hw, model, wl = _dsv3_trees(32.0)

    def f(t_layer):
        return predict.step_time(hw, model, wl, predict.Engine(t_layer=t_layer, expert_max=1.0,
                                                                osl=1024.0, weight_bw_eff=0.8))

    g = jax.grad(f)(1e-5)
    assert float(g) == pytest.approx(61.0, rel=1e-9)


# -- the loader's rules ----------------------------------------------------------------------
HEADER = ("id,silicon_data_source,backend,backend_version,model_path,system,precision,mode,isl,osl,"
          "gemm_quant_mode,moe_quant_mode,batch_size,tp_size,pp_size,attention_dp_size,moe_tp_size,"
          "moe_ep_size,prefill_batch_size,prefill_num_workers,prefill_tp_size,prefill_pp_size,"
          "prefill_attention_dp_size,prefill_moe_tp_size,prefill_moe_ep_size,decode_batch_size,"
          "decode_num_workers,decode_tp_size,decode_pp_size,decode_attention_dp_size,"
          "decode_moe_tp_size,decode_moe_ep_size,silicon_ttft_ms,silicon_tpot_ms")


def _rows(*lines):
    return list(csv.DictReader(io.StringIO(HEADER + "\n" + "\n".join(lines))))


def test_streaming_efficiency_follows_the_experts_of_an_moe():
    """A measured row and a deployment pick the weight-streaming efficiency by the same format:
    an MoE's experts (gpt-oss as released: bf16 dense, mxfp4 experts → the 4-bit value)."""
    m = M.Measurement(row_id="x", hardware="h200", model="gpt-oss-120b", chips=1, tp=1, weights="bf16",
                      experts="mxfp4", kv="bf16", compute="bf16", batch=8, concurrency=8, isl=1024,
                      osl=1024, quantity="tpot_ms", value=5.0)
    (cls,) = C.rows([m]).weight_class
    assert C.NAMES[cls] == "weight_bw_eff_4"
    arch = catalogs.architecture("gpt-oss-120b")
    eng = C.deployment_engine("h200", arch, "native")
    assert float(eng.weight_bw_eff) == C.load().values["weight_bw_eff_4"]


def test_rule_gpu_count_from_id_ep_scaled():
    (row,) = _rows("x_gpt_oss_120b_h200_sxm_trtllm_fp4_agg_8192x1024_c16_tp4_ep4_9,s,trtllm,1,"
                   "openai/gpt-oss-120b,h200_sxm,fp4,agg,8192,1024,nvfp4,nvfp4,16,16,1,1,4,4"
                   + ",,,,,,,,,,,,,," + ",250,8.3")
    m = M.measurement_from_row(row)
    assert (m.chips, m.tp, m.attention_dp, m.moe_tp, m.moe_ep) == (4, 4, 1, 1, 4)
    assert {"gpus-from-id", "ep-scaled-layout"} <= set(m.rules)


def test_rule_ep_scaled_without_id_and_dense():
    (moe, dense) = _rows(
        "dsr1_b200_trtllm_fp4_agg_1024x8192_c256_cfg191,s,trtllm,1,deepseek-ai/DeepSeek-R1,"
        "b200_sxm,fp4,agg,1024,8192,nvfp4,nvfp4,4,1,1,64,8,8" + ",,,,,,,,,,,,,," + ",906,21.4",
        "llama_h100_sxm_trtllm_agg_1024x128_c8_tp2_epnone_4,s,trtllm,1,meta-llama/Llama-3.1-8B-Instruct,"
        "h100_sxm,,agg,1024,128,,,8,2,1,,1,1" + ",,,,,,,,,,,,,," + ",100,5.0")
    a, b = M.measurement_from_row(moe), M.measurement_from_row(dense)
    assert (a.chips, a.attention_dp, a.moe_ep, a.batch) == (8, 8, 8, 256)
    assert "ep-scaled-layout-no-id" in a.rules
    assert (b.chips, b.tp, b.weights, b.batch) == (2, 2, "bf16", 8)
    assert {"dense-ignores-moe", "precision-missing"} <= set(b.rules)


def test_rule_disagg_batch_and_skip_reason():
    rows = _rows(
        "r1,model=DeepSeek-R1; silicon_concurrency=288,trtllm,1,deepseek-ai/DeepSeek-R1,h200_sxm,fp8,"
        "disagg,1024,1024,fp8,fp8,,,,,,,,,8,1,1,1,8,,,8,1,1,1,8,1691,25.2",
        "r2,s,trtllm,1,deepseek-ai/DeepSeek-R1,h200_sxm,fp8,disagg,8192,1024,fp8,fp8,,,,,,,,,,,,,,"
        "16,1,1,1,8,1,8,30,30.6",
        "r3,s,vllm,1,acme/NoSuchModel,h100_sxm,fp8,agg,1024,128,fp8,fp8,8,1,1,1,1,1,,,,,,,,,,,,,,,1,2")
    a, b, c = (M.measurement_from_row(r) for r in rows)
    assert a.mode == "disagg-decode" and (a.chips, a.batch) == (8, 288)
    assert "disagg-batch-from-concurrency" in a.rules
    assert "disagg-mtp-assumed" in a.rules and (a.spec_k, a.spec_alpha) == (1.0, 0.85)
    assert (b.chips, b.attention_dp, b.batch) == (8, 8, 128)
    assert "disagg-mtp-assumed" not in b.rules and b.spec_k == 0.0  # decode batch stated: no MTP
    assert isinstance(c, M.Skipped) and "acme/NoSuchModel" in c.reason


def test_assumed_mtp_divides_the_step_by_accepted_tokens():
    """Rule disagg-mtp-assumed: the row's TPOT is its step (2 tokens verified per sequence) over
    1 + α accepted tokens (k = 1: (1 − α²)/(1 − α)), the step from the same row without MTP but
    its batch doubled in compute and expert touches — checked at batch 1 where weights dominate."""
    (row,) = _rows("r1,model=DeepSeek-R1; silicon_concurrency=1,trtllm,1,deepseek-ai/DeepSeek-R1,"
                   "h200_sxm,fp8,disagg,1024,1024,fp8,fp8,,,,,,,,,8,1,1,1,8,,,8,1,1,1,8,1691,25.2")
    m = M.measurement_from_row(row)
    r = C.rows([m])
    theta = jnp.asarray(C.load().theta())
    step = predict.step_time(r.hw, r.model, r.wl, C.engine_of(theta, r))
    np.testing.assert_allclose(C.predicted_s(theta, r), step / (1.0 + M.SPEC_ALPHA), rtol=1e-12)
    off = C.rows([m.model_copy(update={"spec_k": 0.0, "spec_alpha": 0.0})])
    assert float(C.predicted_s(theta, r)[0]) < float(C.predicted_s(theta, off)[0])


def test_yaml_round_trip(tmp_path):
    (row,) = _rows("r2,s,sglang,1,deepseek-ai/DeepSeek-R1,h200_sxm,fp8,disagg,8192,1024,fp8,fp8,,,,,,,"
                   ",,,,,,,16,1,1,1,8,1,8,30,30.6")
    m = M.measurement_from_row(row)
    M.write_yaml([m], tmp_path / "m.yaml")
    assert M.read(tmp_path / "m.yaml") == [m]
    bad = m.model_dump() | {"kv": "fp3"}
    (tmp_path / "bad.yaml").write_text(__import__("yaml").safe_dump({"measurements": [bad]}))
    (skip,) = M.read(tmp_path / "bad.yaml")
    assert isinstance(skip, M.Skipped) and "kv" in skip.reason and "fp3" in skip.reason
    (tmp_path / "broken.yaml").write_text("measurements: [\n")
    with pytest.raises(ValueError, match="broken.yaml"):
        M.read(tmp_path / "broken.yaml")


def test_replica_link_scale_out_beyond_one_node():
    """Scale-up link inside one 8-GPU node, the 400 Gb/s NIC for a replica over two nodes."""
    assert eff.replica_link_bw("h100_sxm", 8) == pytest.approx(450e9)
    assert eff.replica_link_bw("h100_sxm", 16) == pytest.approx(50e9)


def test_calibration_file_without_a_parameter_is_neutral_there():
    data = C.load().to_dict()
    del data["parameters"]["t_seq"], data["parameters"]["attn_eff"]
    cal = C.Calibration.from_dict(data)
    assert cal.values["t_seq"] == 0.0 and cal.values["attn_eff"] == 1.0


# -- calibration recovers known parameters ------------------------------------------------------
@pytest.mark.slow  # a calibration refit (make test-fast skips it)
def test_synthetic_table_recovered_within_uncertainty():
    """Rows of the real table's shapes, TPOT generated with known θ — the engines' time per layer
    apart (trtllm ×0.6, sglang ×1.5, vllm ×1 the named t_layer) — and 3% noise: every shared
    parameter and each engine's t_layer and t_moe_layer (and t_dequant_layer where it has
    dequantizing rows) within 3σ of the truth (σ the fit's own),
    and the rows predicted with their engine's values."""
    rng = np.random.default_rng(0)
    rows = [x for x in M.read(M.default_csv()) if isinstance(x, M.Measurement)]
    pick = [rows[i] for i in rng.choice(len(rows), 240, replace=False)]
    r = C.rows(pick)
    named = {"t_layer": 6e-5, "t_overhead": 1.5e-3, "t_moe_layer": 3e-5, "t_seq": 1.5e-5,
             "weight_bw_eff_16": 0.85, "weight_bw_eff_8": 0.75, "weight_bw_eff_4": 0.6,
             "kv_bw_eff": 0.7, "gemm_eff": 0.45, "prefill_eff": 0.6, "attn_eff": 0.3,
             "t_dequant_layer": 4e-5}
    assert set(named) == set(C.NAMES)
    factor = {"trtllm": 0.6, "sglang": 1.5, "vllm": 1.0}
    truth = np.stack([[named[n] for n in C.NAMES]] * len(pick), axis=1)
    truth[C.NAMES.index("t_layer")] *= [factor[m.engine] for m in pick]
    r.measured_s = np.asarray(C.predicted_s(jnp.asarray(truth), r)) * np.exp(rng.normal(0, 0.03, len(pick)))
    engines = sorted(factor)
    assert sorted({m.engine for m in pick}) == engines
    cal = C.fit(r, robust=None, rounds=1, iterations=60, engines=engines)
    assert sorted(cal.per_engine) == engines
    for name in C.NAMES:
        if name in C.ENGINE_PARAMETERS:  # the shared value is the engines' centre, not a truth
            continue
        est, sig = cal.values[name], cal.sigmas[name]
        assert math.isfinite(sig) and sig > 0
        assert abs(est - named[name]) <= 3 * sig + 1e-12, (name, est, sig, named[name])
    dequantizing = {m.engine for m, d in zip(pick, r.dequant, strict=True) if d}
    assert dequantizing  # gpt-oss on Hopper
    for e in engines:
        own = cal.per_engine[e]
        checks = [("t_layer", named["t_layer"] * factor[e]), ("t_moe_layer", named["t_moe_layer"])]
        for name, want in checks + [("t_dequant_layer", named["t_dequant_layer"])] * (e in dequantizing):
            est, sig = own.values[name], own.sigmas[name]
            assert 0 < sig and abs(est - want) <= 3 * sig, (e, name, est, sig, want)
    pred = C.predict_rows(r, cal)
    assert np.median(np.abs(np.log(pred / r.measured_s))) < 0.03


# -- the CLI --------------------------------------------------------------------------------------
def _small_csv(tmp_path, n=12):
    lines = M.default_csv().read_text(encoding="utf-8").splitlines()
    path = tmp_path / "few.csv"
    path.write_text("\n".join(lines[: n + 1]) + "\n", encoding="utf-8")
    return path


def test_cli_validate_csv_json_and_bad_options(tmp_path):
    import json

    from typer.testing import CliRunner

    from rooflax.results.cli import app

    runner = CliRunner()
    path = _small_csv(tmp_path)
    res = runner.invoke(app, ["validate", str(path), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["summary"]["expressed"] == 12 and len(out["rows"]) == 12
    for row in out["rows"]:  # bound ≤ prediction: at the stated batch the physics only adds time
        if row["running_batch"] == row["batch"]:
            assert row["bound_ms"] <= row["predicted_ms"] * (1 + 1e-9)
        assert row["pred/meas"] == pytest.approx(row["predicted_ms"] / row["measured_ms"])
    bad = runner.invoke(app, ["validate", str(path), "--cv", "colour"])
    assert bad.exit_code == 2 and "--cv" in bad.output and "Traceback" not in bad.output
    missing = runner.invoke(app, ["calibrate", str(tmp_path / "nope.csv"), "-o", str(tmp_path / "c.yaml")])
    assert missing.exit_code == 2 and not (tmp_path / "c.yaml").exists()


def test_shipped_calibration_is_physical():
    cal = C.load()
    for name in ("weight_bw_eff_16", "weight_bw_eff_8", "weight_bw_eff_4", "kv_bw_eff", "gemm_eff",
                 "prefill_eff", "attn_eff"):
        assert 0 < cal.values[name] <= 1.0, name
    assert set(cal.values) == set(C.NAMES)


@pytest.mark.slow  # the full calibration (≈ 20 s; make test-fast skips it)
def test_calibrate_reproduces_the_shipped_calibration(tmp_path):
    """`rooflax calibrate` on the shared table writes the shipped calibration.yaml's values."""
    from typer.testing import CliRunner

    from rooflax.results.cli import app

    out = tmp_path / "cal.yaml"
    res = CliRunner().invoke(app, ["calibrate", str(M.default_csv()), "-o", str(out)])
    assert res.exit_code == 0, res.output
    got, shipped = C.load(out), C.load()
    # a parameter the fit ran to zero is printed as such, without a meaningless σ
    zero = [n for n in C.NAMES if got.values[n] < 1e-6 * C.PARAMETERS[n][1]]
    assert zero == ["t_overhead"]  # the shipped fit's time per step (calibration.yaml: ~1e-13 s)
    assert all(f"{n:<18} ≈ 0" in res.output for n in zero)
    assert sorted(got.per_engine) == sorted(shipped.per_engine) == ["sglang", "trtllm", "vllm"]
    for mine, ref in [(got, shipped)] + [(got.per_engine[e], shipped.per_engine[e]) for e in got.per_engine]:
        for name in C.NAMES:
            assert mine.values[name] == pytest.approx(ref.values[name], rel=1e-6, abs=1e-12), name
