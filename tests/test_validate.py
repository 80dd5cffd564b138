"""rooflax validate: published measurements (structured YAML) against the bound and the prediction."""

import math

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from rooflax import core as rc
from rooflax.core import parallel
from rooflax.results import silicon
from rooflax.results import validate as v
from rooflax.results.cli import app
from rooflax.sweeps import catalogs
from rooflax.sweeps import efficiency as eff
from rooflax.sweeps import measurements as M

OUT = silicon.validate([v.default_path()])  # the published measurements shipped with rooflax


def test_shipped_rows_evaluate_and_stay_above_the_bound():
    rows = OUT["rows"]
    assert len(rows) >= 4
    for r in rows:  # a measured step faster than the peak-efficiency bound is a modelling error
        assert r["measured_ms"] >= r["bound_ms"], r
        assert r["predicted_ms"] >= r["bound_ms"] * (1 - 1e-12)
    assert 0.5 < OUT["summary"]["overall"]["median_pred_over_meas"] < 1.5
    assert all(s["reason"] for s in OUT["skipped"])
    doc = yaml.safe_load(v.default_path().read_text())
    assert all(m["source"] for m in doc["measurements"])  # every number keeps its source
    assert all(x["reason"] and x["id"] for x in doc["not_expressed"])


def test_production_ep144_entry_evaluates():
    prod = [r for r in OUT["rows"] if r["row_id"].startswith("deepseek_prod_decode_h800")]
    assert prod and prod[0]["system"] == "h800"
    # 14,800 tok/s per node = 1850 per GPU at 144 × 1850/21 sequences: TPOT = batch/(tok/s per GPU·chips)
    assert prod[0]["measured_ms"] == pytest.approx(1e3 * (144 * 1850 / 21) / (1850 * 144), rel=1e-4)


def test_throughput_reads_as_the_tpot_it_implies():
    base = dict(row_id="x", hardware="h200", model="llama-3.1-8b", chips=4, isl=1024, osl=1024, batch=64)
    per_gpu = M.as_tpot(M.Measurement(**base, quantity="output_tok_s_per_gpu", value=800.0))
    assert per_gpu.quantity == "tpot_ms" and per_gpu.value == pytest.approx(1e3 * 64 / (800 * 4))
    assert "tpot-from-throughput" in per_gpu.rules and "tpot-from-throughput" in M.RULES
    user = M.as_tpot(M.Measurement(**base, quantity="tok_s_per_user", value=50.0))
    assert user.value == pytest.approx(20.0)


def test_any_structured_file(tmp_path):
    doc = {"measurements": [
        {"row_id": "mine", "source": "me", "hardware": "H200", "model": "DeepSeek-V3", "chips": 8,
         "attention_dp": 8, "moe_ep": 8, "weights": "fp8", "experts": "fp8", "compute": "fp8",
         "isl": 2048, "osl": 2048, "batch": 512, "mode": "disagg-decode",
         "quantity": "output_tok_s_per_gpu", "value": 900},
        {"row_id": "unknown", "hardware": "Z9000", "model": "DeepSeek-V3", "chips": 8, "isl": 1,
         "osl": 1, "batch": 1, "value": 1}],
        "not_expressed": [{"id": "prose", "reason": "no batch stated"}]}
    path = tmp_path / "v.yaml"
    path.write_text(yaml.safe_dump(doc))
    out = silicon.validate([path])
    assert [r["row_id"] for r in out["rows"]] == ["mine"]
    assert out["rows"][0]["measured_ms"] == pytest.approx(1e3 * 512 / (900 * 8))
    assert math.isfinite(out["rows"][0]["bound_ms"])
    why = {s["row_id"]: s["reason"] for s in out["skipped"]}
    assert set(why) == {"unknown", "prose"} and "Z9000" in why["unknown"] and "no batch" in why["prose"]


def test_weights_beyond_the_replicas_memory_are_skipped(tmp_path):
    """DeepSeek-V3 at fp8 (671 GB of weights by the catalog's count) on 8 A100 80GB (640 GB):
    the row cannot have run as stated — skipped, naming both sizes, not predicted at batch 1."""
    run = {"hardware": "a100_sxm", "model": "deepseek-ai/DeepSeek-V3", "weights": "fp8",
           "experts": "fp8", "isl": 1024, "osl": 1024, "batch": 8, "moe_ep": 8, "value": 20.0}
    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump({"measurements": [
        {**run, "row_id": "eight", "chips": 8, "tp": 8},
        {**run, "row_id": "sixteen", "chips": 16, "tp": 16, "moe_ep": 16}]}))
    out = silicon.validate([path])
    assert [r["row_id"] for r in out["rows"]] == ["sixteen"]
    (skip,) = out["skipped"]
    assert skip["row_id"] == "eight"
    assert "671 GB stored exceed the replica's 640 GB of HBM (8 × a100_sxm" in skip["reason"]


def test_one_configuration_measured_twice_apart(tmp_path):
    """Rows equal in every input but source, version and value are one configuration measured
    twice: 7 and 10 ms (1.43× apart > 1.15/0.85) cannot both be within 15% of one prediction and
    are counted; 7 and 8 ms (1.14×) can and are not; another engine is another configuration."""
    run = {"hardware": "h200", "model": "llama-3.1-70b", "chips": 8, "tp": 8, "weights": "fp8",
           "experts": "fp8", "compute": "fp8", "isl": 1024, "osl": 1024, "batch": 16,
           "engine": "vllm"}
    rows = [{**run, "row_id": "a", "value": 7.0, "engine_version": "1"},
            {**run, "row_id": "b", "value": 10.0, "engine_version": "2", "source": "elsewhere"},
            {**run, "row_id": "c", "value": 7.0, "batch": 32},
            {**run, "row_id": "d", "value": 8.0, "batch": 32},
            {**run, "row_id": "e", "value": 20.0, "engine": "sglang"}]
    path = tmp_path / "twice.yaml"
    path.write_text(yaml.safe_dump({"measurements": rows}))
    out = silicon.validate([path])
    spread = {r["row_id"]: r["repeat_spread"] for r in out["rows"]}
    assert spread == pytest.approx({"a": 10 / 7, "b": 10 / 7, "c": 8 / 7, "d": 8 / 7, "e": 1.0})
    rep = out["summary"]["repeated_inputs"]
    assert rep["spread_limit"] == pytest.approx(1.15 / 0.85) and rep["rows"] == 2
    assert rep["on_them"]["rows"] == 2 and rep["on_the_rest"]["rows"] == 3
    text = silicon.format_summary(out["summary"], "TPOT")
    assert "2 rows" in text and "measured more than 1.35× apart" in text


def test_cli_default_and_prose_refused(tmp_path):
    runner = CliRunner()
    r = runner.invoke(app, ["validate"])
    assert r.exit_code == 0 and "expressed" in r.output
    prose = tmp_path / "prose.yaml"
    prose.write_text("validation:\n- id: a\n  hardware: 8x H200\n")
    r = runner.invoke(app, ["validate", str(prose)])
    assert r.exit_code == 2 and "measurements:" in r.output and "Traceback" not in r.output


def test_dsv3_on_an_8xh200_node_ep8_fp8():
    arch = catalogs.architecture("deepseek-v3")
    m = parallel.extended_model(arch, weights="fp8", dispatch_bytes=1.0)
    hw = parallel.layout(eff.hardware("hgx-h200-8", precision="fp8", price_per_hour=3.5), "ep")
    assert float(hw.ep) == 8.0 and float(hw.link_bw) == 450e9
    wl = rc.Workload(context=4096.0)
    s = rc.sensitivities(hw, m, wl)
    assert int(s["reason"]) == 0 and 100 < float(s["value"]["b_star"]) < 1e4
    assert np.isfinite(float(s["elasticity"]["cost_at_b_star"]["flops_eff"]))


def test_efficiency_defaults_have_sources():
    e = eff.efficiency("gb200-nvl72", "fp8")
    assert e["flops_eff"]["value"] == 0.723 and not e["flops_eff"]["assumed"]
    assert e["bw_eff"]["value"] == 0.919 and "GB200" in e["bw_eff"]["source"]
    assert eff.efficiency("h20", "bf16")["flops_eff"]["assumed"]
