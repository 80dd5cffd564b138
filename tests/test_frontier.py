"""``rooflax frontier``: the vectorized choice equals brute force over the same grid."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from rooflax.results import estimate as E
from rooflax.results import frontier as F

BATCHES = np.array([1.0, 16, 128, 1024, 8192])  # five batches keep the brute force under ~25 s
BASE = E.Deployment(hardware="", model="gpt-oss-120b", isl=1024.0, osl=1024.0)


@pytest.fixture(scope="module")
def res():
    return F.frontier(["h200"], "gpt-oss-120b", slo=F.Slo(min_speed=50.0, ttft=2.0), base=BASE,
                      batches=BATCHES)


@pytest.mark.slow  # make test runs it; make test-fast leaves it out (issue 9)
def test_cheapest_equals_brute_force(res):
    best, cost = None, math.inf
    for dep in F.deployments("h200", "gpt-oss-120b", BASE):
        for b in BATCHES:
            e = E.estimate(E.Deployment(**{**dep.__dict__, "concurrency": float(b)}))
            p, m = e["prediction"], e["memory_per_gpu"]
            if m["headroom_b"] >= 0 and p["tok_s_per_user"] >= 50 and p["ttft_s"] <= 2.0 \
                    and p["usd_per_m_output"] < cost:
                best, cost = (dep.chips, dep.layout, dep.tp, dep.precision, dep.kv, float(b)), p["usd_per_m_output"]
    got = res["hardware"]["h200"]["best"]
    assert (got["chips"], got["layout"], got["tp"], got["precision"], got["kv"], got["concurrency"]) == best
    assert got["usd_per_m_output"] == pytest.approx(cost, rel=1e-9)
    assert res["hardware"]["h200"]["estimate"]["prediction"]["usd_per_m_output"] == pytest.approx(cost, rel=1e-9)


def test_frontier_is_pareto_by_brute_force(res):
    front = res["hardware"]["h200"]["frontier"]
    pts = [(p["tok_s_per_user"], p["usd_per_m_output"]) for p in front]
    for s, c in pts:  # nobody on the frontier is dominated by another frontier point
        assert not any(s2 >= s and c2 < c for s2, c2 in pts)
    rng = np.random.default_rng(0)
    speed, cost = rng.lognormal(size=300), rng.lognormal(size=300)
    keep = set(F.pareto(speed, cost).tolist())
    brute = {i for i in range(300) if not any(speed[j] >= speed[i] and cost[j] < cost[i] for j in range(300))}
    assert keep == brute


def test_grid_size_and_layouts():
    deps = F.deployments("h200", "gpt-oss-120b", BASE)
    assert len(deps) * len(F.BATCHES) >= 1e5
    assert F.layouts(8) == [("tp", None), ("ep", None), ("tp-ep", 2), ("tp-ep", 4)]
    assert 72 in F.chip_counts("gb200") and 8 in F.chip_counts("h200")


@pytest.mark.slow  # every deployment of two chips, in a fresh process (make test-fast skips it)
def test_cli_json(tmp_path):
    import json
    import subprocess
    from pathlib import Path

    exe = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "rooflax"
    html = tmp_path / "frontier.html"
    out = subprocess.run([str(exe), "frontier", "-m", "gpt-oss-20b", "-H", "mi300x,gaudi3", "--tpot", "20ms",
                          "--json", "-o", str(html)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert f"wrote {html}" in out.stderr  # the plot as well as the JSON (it used to crash)
    page = html.read_text()
    assert "cost vs speed frontier per hardware" in page
    # offline: no script or stylesheet tag loads a file (hvplot, through panel, added panel's)
    assert not re.findall(r'<(?:script|link)\b[^>]*\b(?:src|href)="[^"]*"', page)
    doc = json.loads(out.stdout)
    assert doc["schema"] == F.SCHEMA and doc["slo"]["tpot"] == pytest.approx(0.02)
    mi = doc["hardware"]["mi300x"]
    assert mi["deployments"] >= 1e5 and mi["best"]["tpot_s"] <= 0.02
    assert doc["hardware"]["gaudi3"]["best"] is None and "no price" in doc["hardware"]["gaudi3"]["why_none"]


def test_disaggregated_frontier_prices_the_pair():
    base = E.Deployment(hardware="", model="deepseek-v3", isl=8192.0, osl=1024.0)
    res = F.frontier(["h200"], "deepseek-v3", slo=F.Slo(ttft=2.0, tpot=0.05), base=base,
                     batches=BATCHES, disagg=True)
    e = res["hardware"]["h200"]
    pair = e["estimate"]["disaggregated"]["prediction"]
    assert e["best"]["usd_per_m_output"] == pytest.approx(pair["usd_per_m_output_all_in"], rel=1e-9)
    assert e["prefill"]["ttft_s"] == pytest.approx(pair["ttft_s"], rel=1e-9) and pair["ttft_s"] <= 2.0
    assert e["best"]["tpot_s"] <= 0.05
