"""rooflax validate: measurements against the roofline bound and the default-efficiency prediction."""

import math

import numpy as np
import yaml

from rooflax import core as rc
from rooflax.core import parallel
from rooflax.results import validate as v
from rooflax.sweeps import catalogs
from rooflax.sweeps import efficiency as eff

ROWS = v.validate()  # the reference file next to the repository


def test_reference_rows_evaluate_and_stay_under_the_bound():
    ok = [r for r in ROWS if r["status"] == "ok"]
    assert len(ok) >= 6
    for r in ok:  # a measurement above the peak-efficiency bound is a modelling error
        assert r["measured/bound"] <= 1.0, r
        assert r["predicted"] <= r["bound"] * (1 + 1e-12)
    lo, hi = v.ratio_band(ROWS)
    assert 0 < lo <= hi < 1.5
    assert all(r["reason"] for r in ROWS if r["status"] == "skipped")


def test_production_ep144_entry_evaluates():
    prod = [r for r in ROWS if r["id"] == "deepseek_prod_decode_h800" and r["status"] == "ok"]
    assert prod and "h800×144 ep" in prod[0]["conditions"]


def test_dsv3_on_an_8xh200_node_ep8_fp8():
    arch = catalogs.architecture("deepseek-v3")
    m = parallel.extended_model(arch, weights="fp8", dispatch_bytes=1.0)
    hw = parallel.layout(eff.hardware("hgx-h200-8", precision="fp8", price_per_hour=3.5), "ep")
    assert float(hw.ep) == 8.0 and float(hw.link_bw) == 450e9
    wl = rc.Workload(context=4096.0)
    s = rc.sensitivities(hw, m, wl)
    assert int(s["reason"]) == 0 and 100 < float(s["value"]["b_star"]) < 1e4
    assert np.isfinite(float(s["elasticity"]["cost_at_b_star"]["flops_eff"]))


def test_any_file_of_the_same_shape(tmp_path):
    doc = {"validation": [
        {"id": "mine", "hardware": "8x H200", "model": "DeepSeek-V3", "precision": "FP8",
         "parallelism": "attention DP8, MoE EP8", "conditions": {"batch_per_gpu": 64, "kv_cache_length": 2048},
         "measured": {"output_tok_s_per_gpu": 900, "something_else": 3}},
        {"id": "unknown", "hardware": "Z9000", "model": "DeepSeek-V3", "measured": {"x": 1}},
    ]}
    path = tmp_path / "v.yaml"
    path.write_text(yaml.safe_dump(doc))
    rows = v.validate(path)
    ok = [r for r in rows if r["status"] == "ok"]
    assert len(ok) == 1 and ok[0]["measured"] == 900 and math.isfinite(ok[0]["bound"])
    assert {r["id"] for r in rows if r["status"] == "skipped"} == {"mine", "unknown"}
    assert "Z9000" in [r for r in rows if r["id"] == "unknown"][0]["reason"]
    assert "band" in v.format_table(rows)


def test_efficiency_defaults_have_sources():
    e = eff.efficiency("gb200-nvl72", "fp8")
    assert e["flops_eff"]["value"] == 0.723 and not e["flops_eff"]["assumed"]
    assert e["bw_eff"]["value"] == 0.919 and "GB200" in e["bw_eff"]["source"]
    assert eff.efficiency("h20", "bf16")["flops_eff"]["assumed"]
