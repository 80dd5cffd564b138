"""query / sensitivity say which number is the bound; ``query --predicted`` is the calibration."""

from __future__ import annotations

import json
import math

import jax.numpy as jnp
import pytest
import yaml
from typer.testing import CliRunner

from rooflax import core as rc
from rooflax.core import parallel, predict
from rooflax.results.cli import app
from rooflax.sweeps import calibration, catalogs

runner = CliRunner()
POINT = ("-H", "h200", "-n", "8", "-m", "llama-3.1-70b", "-p", "fp8", "-B", "1,64", "-L", "8k")


def _json(*args: str) -> dict:
    r = runner.invoke(app, [*args, "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def _shipped_engine_fp8() -> predict.Engine:
    """The shipped calibration for 8-bit weights, read from calibration.yaml by hand (no prompts)."""
    doc = yaml.safe_load(calibration.shipped_path().read_text())
    v = {k: p["value"] for k, p in doc["parameters"].items()}
    return predict.Engine(t_layer=v["t_layer"], t_moe_layer=v["t_moe_layer"], t_overhead=v["t_overhead"], t_seq=v["t_seq"],
                          weight_bw_eff=v["weight_bw_eff_8"], kv_bw_eff=v["kv_bw_eff"], gemm_eff=v["gemm_eff"],
                          prefill_eff=v["prefill_eff"], attn_eff=v["attn_eff"], per_kernel=1.0,
                          expert_max=doc["fixed"]["expert_max"],
                          kv_capacity_fraction=doc["fixed"]["kv_capacity_fraction"])


def test_query_bound_is_labelled_and_predicted_is_the_calibration():
    bound = _json("query", "latency", "cost_per_mtok", *POINT)
    pred = _json("query", "latency", "cost_per_mtok", "--predicted", *POINT)
    assert bound["reading"] == "bound" and pred["reading"] == "prediction"
    assert "calibrated on measured silicon" in pred["label"]
    hw = catalogs.hardware("h200", chips=8, precision="fp8", price_per_hour=1.74)
    model = parallel.extended_model(catalogs.architecture("llama-3.1-70b"), weights="fp8", kv="bf16")
    for row_b, row_p in zip(bound["rows"], pred["rows"], strict=True):
        wl = rc.Workload(batch=row_p["batch"], context=8192.0)
        want = float(predict.latency(hw, model, wl, _shipped_engine_fp8()))
        assert row_p["latency"] == pytest.approx(want, rel=1e-9)
        tokens_per_s = row_p["batch"] / want
        assert row_p["cost_per_mtok"] == pytest.approx(1e6 * 8 * 1.74 / 3600 / tokens_per_s, rel=1e-9)
        assert row_b["latency"] < row_p["latency"]  # the bound is a bound


def test_query_predicted_refuses_what_the_calibration_does_not_cover():
    r = runner.invoke(app, ["query", "b_star", "--predicted", *POINT])
    assert r.exit_code == 2 and "--predicted" in r.output and "b_star" in r.output


def test_sensitivity_reading_is_the_bound():
    out = _json("sensitivity", "-H", "h200", "-n", "8", "-m", "llama-3.1-70b", "-L", "8k", "-p", "fp8")
    assert out["reading"] == "bound" and math.isfinite(out["values"]["b_star"])
    table = runner.invoke(app, ["sensitivity", "-H", "h200", "-n", "8", "-m", "llama-3.1-70b", "-L", "8k"])
    assert "bound" in table.output


def test_engine_for_is_the_engine_of_a_measured_row():
    """calibration.engine_for (any deployment) and engine_of (measured rows) agree leaf by leaf."""
    from rooflax.sweeps.measurements import Measurement

    cal = calibration.load()
    for weights, mode in (("fp8", "agg"), ("nvfp4", "disagg-decode"), ("bf16", "agg")):
        m = Measurement(row_id="x", hardware="b200", model="deepseek-v3", chips=8, weights=weights,
                        experts=weights, isl=1024, osl=2048, batch=16, mode=mode, value=20.0)
        rows = calibration.rows([m])
        want = calibration.engine_of(jnp.asarray(cal.theta()), rows)
        skip = calibration.prefill_skip_of(catalogs.architecture("deepseek-v3"))
        got = calibration.engine_for(weights, osl=2048.0 if mode == "agg" else math.inf,
                                     prefill_skip=skip)
        for field in predict.Engine.__dataclass_fields__:
            leaf = jnp.ravel(jnp.asarray(getattr(want, field)))[0]
            assert float(getattr(got, field)) == pytest.approx(float(leaf)), field


def test_query_and_sensitivity_predicted_with_an_engine_by_hand():
    """--engine vllm: Llama-3.1-70B's 80 dense layers each take vLLM's own time per layer, read
    from calibration.yaml by hand — TPOT longer by Δt_layer·80 than with the shared values, in
    query and sensitivity alike; the label and the JSON name the engine."""
    doc = yaml.safe_load(calibration.shipped_path().read_text())
    d_layer = (doc["per_engine"]["vllm"]["parameters"]["t_layer"]["value"]
               - doc["parameters"]["t_layer"]["value"])
    shared = _json("query", "latency", "--predicted", *POINT)
    vllm = _json("query", "latency", "--predicted", "--engine", "vllm", *POINT)
    assert vllm["engine"] == "vllm" and "vllm's own time per layer" in vllm["label"]
    assert shared["engine"] is None and "shared by all engines" in shared["label"]
    for a, b in zip(shared["rows"], vllm["rows"], strict=True):
        assert b["latency"] - a["latency"] == pytest.approx(80 * d_layer, rel=1e-6)
    sens = _json("sensitivity", "--predicted", "-B", "64", "--engine", "vllm", "-H", "h200", "-n", "8",
                 "-m", "llama-3.1-70b", "-p", "fp8", "-L", "8k")
    assert sens["inputs"]["engine"] == "vllm"
    assert sens["values"]["latency"] == pytest.approx(vllm["rows"][1]["latency"], rel=1e-9)


@pytest.mark.parametrize("args,words", [
    (("query", "latency", "--engine", "vllm", *POINT), "--engine: expected with --predicted only"),
    (("query", "latency", "--predicted", "--engine", "tgi", *POINT), "expected one of sglang, trtllm, vllm"),
    (("sensitivity", "--engine", "vllm", "-H", "h200", "-n", "8", "-m", "llama-3.1-70b"),
     "--engine: expected with --predicted only"),
])
def test_engine_errors_are_one_line(args, words):
    r = runner.invoke(app, list(args))
    assert r.exit_code == 2 and words in r.output and "Traceback" not in r.output
