"""``rooflax estimate``: one deployment, checked against core directly and against hand arithmetic."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
from pathlib import Path

import pytest
import yaml

from rooflax import core as rc
from rooflax.core import parallel, predict
from rooflax.results import estimate as E
from rooflax.sweeps import calibration, catalogs
from rooflax.sweeps import efficiency as eff

BIN = Path(__file__).resolve().parents[1] / ".venv" / "bin"
DEP = E.Deployment("h200", "deepseek-v3", chips=8, layout="ep", precision="fp8",
                   isl=8192, osl=1024, concurrency=256)


@pytest.fixture(scope="module")
def est():
    return E.estimate(DEP)


def _peak_trees():
    arch = catalogs.architecture("deepseek-v3")
    model = parallel.extended_model(arch, weights="fp8", kv="bf16")
    hw = eff.hardware("h200", precision="fp8", chips=8, peak=True)
    return arch, model, parallel.layout(hw.replace(link_eff=1.0), "ep")


def _shipped_engine(osl: float) -> predict.Engine:
    """The shipped calibration's Engine for fp8 weights, read from calibration.yaml by hand."""
    doc = yaml.safe_load(calibration.shipped_path().read_text())
    v = {k: p["value"] for k, p in doc["parameters"].items()}
    return predict.Engine(t_layer=v["t_layer"], t_moe_layer=v["t_moe_layer"], t_overhead=v["t_overhead"], t_seq=v["t_seq"],
                          weight_bw_eff=v["weight_bw_eff_8"], kv_bw_eff=v["kv_bw_eff"], gemm_eff=v["gemm_eff"],
                          prefill_eff=v["prefill_eff"], attn_eff=v["attn_eff"], per_kernel=1.0,
                          # prompts skip DeepSeek-V3's embedding lookup and LM head (vocab 129280,
                          # hidden 7168, untied: config_671B.json) but for the last token
                          prefill_skip=2 * 129280 * 7168,
                          expert_max=doc["fixed"]["expert_max"], osl=osl,
                          kv_capacity_fraction=doc["fixed"]["kv_capacity_fraction"])


def test_bound_tpot_and_ttft_against_core(est):
    arch, model, hw = _peak_trees()
    wl = rc.Workload(batch=256.0, context=8192 + 512.0)
    assert est["bound"]["tpot_s"] == pytest.approx(float(rc.latency(hw, model, wl)), rel=1e-9)
    pwl = rc.Workload(prompt=8192.0, prefill_batch=1.0)
    ttft = rc.prefill.ttft(hw, model, pwl, parallel.prefill_attn_flops(arch))
    assert est["bound"]["ttft_s"] == pytest.approx(float(ttft), rel=1e-9)
    assert est["bound"]["tpot_s"] <= est["prediction"]["tpot_s"]  # the bound is a bound
    assert "calibrated on measured silicon" in est["labels"]["prediction"]
    cal = est["calibration"]
    assert set(cal["fitted"]) | set(cal["not_fitted"]) == {k for k, *_ in E.ROWS} and "ttft_s" in cal["not_fitted"]


def test_predicted_tpot_is_the_shipped_calibration(est):
    _, model, hw = _peak_trees()
    wl = rc.Workload(batch=256.0, context=8192 + 512.0, prompt=8192.0)
    want = float(predict.latency(hw, model, wl, _shipped_engine(1024.0)))
    assert est["prediction"]["tpot_s"] == pytest.approx(want, rel=1e-9)
    assert est["prediction"]["tok_s_per_user"] == pytest.approx(1.0 / want, rel=1e-9)
    # a decode pool of a disaggregated deployment interleaves no prompts
    dis = E.estimate(dataclasses.replace(DEP, prefill=E.PrefillPool()))
    nopre = float(predict.latency(hw, model, wl, _shipped_engine(math.inf)))
    assert dis["prediction"]["tpot_s"] == pytest.approx(nopre, rel=1e-9) and nopre < want


def test_neutral_engine_prediction_is_the_bound(est, monkeypatch):
    monkeypatch.setattr(E, "engine", lambda dep: predict.Engine())
    neutral = E.estimate(DEP)
    for key, *_ in E.ROWS:
        assert neutral["prediction"][key] == pytest.approx(est["bound"][key], rel=1e-9), key


def test_memory_breakdown_by_hand(est):
    arch = catalogs.architecture("deepseek-v3")
    routed = arch.routed_expert_params_total()
    dense = arch.n_total() - routed
    # ep over 8 chips: dense weights on every chip (attention-DP 8), routed experts split 8 ways; fp8
    weights = dense * 1.0 + routed * 1.0 / 8
    kv_token = 61 * (512 + 64) * 2  # MLA latent + rope key per layer, bf16
    kv = 256 * kv_token * (8192 + 1024) / 8  # tp 1: one copy; sequences spread over 8 chips
    mem = est["memory_per_gpu"]
    assert mem["weights_b"] == pytest.approx(weights, rel=1e-9)
    assert mem["kv_b"] == pytest.approx(kv, rel=1e-9)
    assert mem["headroom_b"] == pytest.approx(141e9 - weights - kv, rel=1e-9)
    assert mem["max_concurrency"] == math.floor((141e9 - weights) * 8 / (kv_token * 9216))


def test_costs_energy_and_price(est):
    p = est["prediction"]
    price = 1.74  # h200 tco-neocloud, prices.yaml
    assert est["price"]["basis"] == "tco-neocloud" and est["price"]["usd_per_chip_hour"] == price
    assert p["usd_per_m_output"] == pytest.approx(1e6 * 8 * price / 3600 / p["tok_s_per_replica"])
    assert p["energy_per_output_token_j"] == pytest.approx(8 * 1730.0 / p["tok_s_per_replica"])
    assert est["power"]["energy_share_of_cost"] == pytest.approx(1.73 * 0.08 / price)
    assert p["tok_s_per_gpu"] * 8 == pytest.approx(p["tok_s_per_replica"])
    assert p["tok_s_per_user"] * 256 == pytest.approx(p["tok_s_per_replica"])


def test_custom_hardware_and_unpriced():
    spec = E.parse_hw("bw=10TB/s,flops=5PFLOPS,hbm=288GB,price=8$/h")
    assert spec == {"bw": 10e12, "flops": 5e15, "hbm": 288e9, "price": 8.0}
    est = E.estimate(E.Deployment("h200", "llama-3.1-70b", chips=4, concurrency=32, hw_custom=spec))
    assert "modified" in est["deployment"]["hardware"]
    assert est["memory_per_gpu"]["capacity_b"] == 288e9 and est["price"]["basis"] == "custom"
    gaudi = E.estimate(E.Deployment("gaudi3", "llama-3.1-70b", chips=4, precision="bf16", concurrency=8))
    assert gaudi["price"]["basis"] == catalogs.NO_PRICE
    assert math.isnan(gaudi["prediction"]["usd_per_m_output"])
    for bad in ("bw=3GB", "speed=3", "bw"):
        with pytest.raises(E.EstimateError, match="--hw"):
            E.parse_hw(bad)


def test_engine_time_per_layer_by_hand(est):
    """--engine trtllm: the prediction with trtllm's own time per layer, read from
    calibration.yaml by hand — TPOT longer by Δt_layer·61 + Δt_moe_layer·58 (DeepSeek-V3's layers
    and MoE layers; no drafting, so TPOT = step) than with the shared values."""
    doc = yaml.safe_load(calibration.shipped_path().read_text())
    own = doc["per_engine"]["trtllm"]["parameters"]
    d_layer = own["t_layer"]["value"] - doc["parameters"]["t_layer"]["value"]
    d_moe = own["t_moe_layer"]["value"] - doc["parameters"]["t_moe_layer"]["value"]
    trt = E.estimate(dataclasses.replace(DEP, engine="trtllm"))
    assert trt["calibration"]["engine"] == "trtllm" and est["calibration"]["engine"] == "shared"
    assert trt["prediction"]["tpot_s"] - est["prediction"]["tpot_s"] == pytest.approx(
        61 * d_layer + 58 * d_moe, rel=1e-6)
    assert trt["bound"]["tpot_s"] == est["bound"]["tpot_s"]  # the bound has no engine


def test_cli_json_and_errors():
    from typer.testing import CliRunner

    from rooflax.results.cli import app

    cmd = ["estimate", "-H", "h200", "-n", "8", "--layout", "ep", "-m", "deepseek-v3",
           "-p", "fp8", "--isl", "8k", "--osl", "1k", "--concurrency", "256"]
    out = subprocess.run([str(BIN / "rooflax"), *cmd, "--json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["schema"] == E.SCHEMA and doc["deployment"]["isl"] == 8192
    assert set(doc["bound"]) == set(doc["prediction"]) >= {k for k, *_ in E.ROWS}
    runner = CliRunner()
    for extra, word in ((["--layout", "ring"], "--layout"), (["--hw", "bw=1GB"], "--hw"),
                        (["--pp", "2"], "--pp"), (["--price", "cheap"], "--price"),
                        (["--engine", "tgi"], "--engine")):
        bad = runner.invoke(app, [*cmd, *extra])
        assert bad.exit_code == 2, bad.output
        err = bad.stderr.strip().splitlines()
        assert len(err) == 1 and word in err[0] and "Traceback" not in bad.output, bad.output


def test_disaggregated_pd_balance_by_hand():
    """DeepSeek-V3, prefill 8×H200 ep, decode 8×H200 ep (bound: datasheet peaks, link at 450 GB/s)."""
    arch = catalogs.architecture("deepseek-v3")
    n, flops, bw, link = 8, 1979e12, 4.8e12, 450e9  # H200 fp8 dense peak, HBM, NVLink4 one way
    n_total, n_act, routed = arch.n_total(), arch.n_active(), arch.routed_expert_params_total()
    isl, osl, B = 8192, 1024, 256
    # prefill: compute-bound; MLA prefill attention un-absorbed, 61·128·(2·192 + 2·128) FLOPs per query·key
    t_p = (isl * 2 * n_act + 61 * 128 * 640 * isl**2 / 2) / (n * flops)
    # decode at context isl + osl/2: compute, memory (dense weights on every chip, experts once,
    # touched 1-(1-8/256)^B; latent KV 61·576·2 B/token), EP all-to-all (8 copies, 7/8 off-chip)
    L = isl + osl / 2
    t_c = B * (n_act + 61 * 128 * 2176 * L / 2) / (n * flops / 2)
    touched = 1 - (1 - 8 / 256) ** B
    weights = (n_total - routed) * n + routed * touched
    t_m = (weights + B * 61 * 576 * 2 * L) / (n * bw)
    t_k = B * 58 * 8 * (7 / 8) / n * 7168 * (2 + 2) / link
    t_d = max(t_c, t_m, t_k)
    r_p, r_d = 1 / t_p, B / (t_d * osl)
    dep = E.Deployment("h200", "deepseek-v3", chips=8, layout="ep", precision="fp8", isl=isl, osl=osl,
                       concurrency=B, prefill=E.PrefillPool(chips=8, layout="ep"))
    got = E.estimate(dep)["disaggregated"]["bound"]
    assert got["t_prefill_s"] == pytest.approx(t_p, rel=1e-9)
    assert got["tpot_s"] == pytest.approx(t_d, rel=1e-9)
    assert got["pd_ratio_replicas"] == pytest.approx(r_d / r_p, rel=1e-9)
    per_request = 8 * 1.74 / 3600 * (1 / r_p + 1 / r_d)  # tco-neocloud $/chip-hour
    assert got["usd_per_request"] == pytest.approx(per_request, rel=1e-9)
    assert got["kv_transfer_s"] == pytest.approx(61 * 576 * 2 * isl / 50e9, rel=1e-12)


def test_hw_flag_on_query_points():
    from rooflax.results.point import build_point

    spec = E.parse_hw("bw=10TB/s,flops=5PFLOPS,hbm=288GB,price=8$/h")
    pt = build_point("h200", "llama-3.1-70b", chips=8, hw_custom=spec)
    assert pt.meta["hardware"] == "h200 (modified)" and pt.meta["price_basis"] == "custom"
    assert float(pt.hw.bw) == 10e12 and float(pt.hw.flops) == pytest.approx(5e15)
    assert float(pt.hw.capacity) == 288e9 and float(pt.hw.price_per_hour) == pytest.approx(8.0)
    plain = build_point("h200", "llama-3.1-70b", chips=8, hw_custom={"hbm": 288e9})
    assert float(plain.hw.bw) == 4.8e12 and plain.meta["price_basis"] == "tco-neocloud"


def test_past_capacity_the_bound_has_no_step_and_the_prediction_queues():
    """2000 sequences of 9k tokens do not fit 8×H200 (the memory breakdown says at most ~520): the
    bound prints no decode number (NaN, null in --json), the prediction runs what fits."""
    est = E.estimate(dataclasses.replace(DEP, concurrency=2000))
    assert est["binding"]["bound"].startswith("capacity: 2000 sequences do not fit")
    for key in E.DECODE_KEYS:
        assert math.isnan(est["bound"][key]), key
    assert math.isfinite(est["prediction"]["tpot_s"])
    assert est["prediction"]["running_batch"] < 2000
    assert math.isfinite(est["bound"]["ttft_s"])  # one prompt's prefill still fits


def test_weights_that_do_not_fit_give_no_number_on_either_side():
    """DeepSeek-V3 in bf16 (671e9 · 2 B) on one 80 GB H100: neither the bound nor the prediction
    has a step — every time, speed and cost is null and the binding says how many chips it needs."""
    import json

    from typer.testing import CliRunner

    from rooflax.results.cli import app

    r = CliRunner().invoke(app, ["estimate", "-H", "h100-sxm", "-n", "1", "-m", "deepseek-v3", "-p", "bf16",
                                 "--isl", "1k", "--osl", "1k", "--concurrency", "8", "--json"])
    assert r.exit_code == 0, r.output
    est = json.loads(r.output)
    for side in ("bound", "prediction"):
        for key in ("ttft_s", "tpot_s", "tok_s_per_user", "tok_s_per_gpu", "usd_per_m_input",
                    "usd_per_m_output", "energy_per_output_token_j"):
            assert est[side][key] is None, (side, key)
        assert est["binding"][side] == f"does not fit: the weights need {math.ceil(671e9 * 2 / 80e9)} chips"
