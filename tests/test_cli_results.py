"""CLI of rooflax.results: sensitivity / query / catalog against direct core calls."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from rooflax import core as rc
from rooflax.results.cli import app
from rooflax.sweeps import catalogs

runner = CliRunner()


def _run(*args: str):
    return runner.invoke(app, list(args))


def _json(*args: str):
    r = _run(*args, "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_sensitivity_json_matches_core():
    out = _json("sensitivity", "--hardware", "H200", "--chips", "8", "--model", "DeepSeek-V3",
                "--context", "32k", "--precision", "fp8")
    hw = catalogs.hardware("h200", chips=8, precision="fp8")
    m = catalogs.model("deepseek-v3", weights="fp8", kv="bf16")
    wl = rc.Workload(batch=1.0, context=32768.0)
    assert out["schema"] == "rooflax.sensitivity/1"
    assert set(out) >= {"inputs", "parameters", "binding", "reason", "values", "units", "partial",
                        "elasticity", "sentences"}
    assert out["inputs"]["context"] == 32768.0
    assert out["binding"] == rc.BINDINGS[int(rc.binding(hw, m, wl))]
    v = out["values"]
    assert v["b_star"] == pytest.approx(float(rc.b_star(hw, m, wl)), rel=1e-12)
    assert v["cost_at_b_star"] == pytest.approx(float(rc.cost_at_b_star(hw, m, wl)), rel=1e-12)
    assert v["cost_per_mtok_at_b_star"] == pytest.approx(
        float(rc.cost_per_mtok_at_b_star(hw, m, wl)), rel=1e-12)
    assert v["latency_at_b_star"] == pytest.approx(float(rc.latency_at_b_star(hw, m, wl)), rel=1e-12)
    assert v["throughput_at_b_star"] == pytest.approx(
        float(rc.throughput_at_b_star(hw, m, wl)), rel=1e-12)
    assert set(out["elasticity"]["cost_at_b_star"]) == {
        "bw", "c_over_bw", "sparsity", "capacity", "price", "context"}
    # elasticities against central finite differences of the core's own scalar functions
    for knob, (tree, field) in (("bw", ("hw", "bw")), ("capacity", ("hw", "capacity")),
                                ("context", ("wl", "context"))):
        h = 1e-6
        trees = {"hw": hw, "wl": wl}
        x = float(getattr(trees[tree], field))

        def cost(f, tree=tree, field=field, x=x, trees=trees):
            t = dict(trees)
            t[tree] = t[tree].replace(**{field: x * f})
            return float(rc.cost_at_b_star(t["hw"], m, t["wl"]))

        fd = (math.log(cost(1 + h)) - math.log(cost(1 - h))) / (2 * h)
        assert out["elasticity"]["cost_at_b_star"][knob] == pytest.approx(fd, rel=1e-5, abs=1e-8)
    s = out["sentences"]["cost_at_b_star"]["bw"]
    assert s.startswith("+1 % bandwidth → −1 % cost per token")


def test_sensitivity_table_and_words():
    r = _run("sensitivity", "-H", "h100-sxm", "-n", "8", "-m", "llama-3.1-70b", "-L", "1k")
    assert r.exit_code == 0, r.output
    assert "crossover" in r.stdout and "+1 % bandwidth →" in r.stdout
    assert "$/Mtok at B*" in r.stdout


def test_sensitivity_slo_and_all_knobs():
    out = _json("sensitivity", "-H", "b200", "-n", "8", "-m", "deepseek-v3", "-L", "8k",
                "-p", "fp8", "--slo", "20ms", "--knob", "all")
    hw = catalogs.hardware("b200", chips=8, precision="fp8")
    m = catalogs.model("deepseek-v3", weights="fp8")
    wl = rc.Workload(batch=1.0, context=8192.0, slo=0.02)
    assert out["binding"] == rc.BINDINGS[int(rc.binding(hw, m, wl))]
    assert out["inputs"]["slo"] == pytest.approx(0.02)
    assert set(out["partial"]["b_star"]) == set(rc.KNOBS)


@pytest.mark.parametrize("args", [
    ("sensitivity", "-H", "h2000", "-m", "deepseek-v3"),
    ("sensitivity", "-H", "h200", "-m", "deepsek-v3"),
    ("query", "b_starr", "-H", "h200"),
    ("catalog", "hardware", "mi30"),
])
def test_typos_exit_2_with_suggestion(args):
    r = _run(*args)
    assert r.exit_code == 2
    assert "did you mean" in r.output
    assert "Traceback" not in r.output


def test_query_point_and_axis_against_core():
    out = _json("query", "b_star", "cost_per_mtok", "-H", "h100-sxm", "-n", "8",
                "-m", "llama-3.1-70b", "-B", "1,64,4096", "-L", "1k")
    hw = catalogs.hardware("h100-sxm", chips=8)
    m = catalogs.model("llama-3.1-70b")
    assert [r["batch"] for r in out["rows"]] == [1, 64, 4096]
    for r in out["rows"]:
        wl = rc.Workload(batch=r["batch"], context=1024.0)
        assert r["feasible"] == (r["batch"] <= float(rc.b_max(hw, m, wl)))
        if not r["feasible"]:  # past capacity: no number, the reason instead
            assert r["cost_per_mtok"] is None and r["reason"].startswith("past capacity")
            continue
        assert r["cost_per_mtok"] == pytest.approx(float(rc.cost_per_mtok(hw, m, wl)), rel=1e-12)
        assert r["b_star"] == pytest.approx(float(rc.b_star(hw, m, wl)), rel=1e-12)
    assert out["quantities"]["cost_per_mtok"]["units"] == "$/Mtok"


def test_query_scale_is_hypothetical_hardware():
    point = ("-H", "h200", "-n", "8", "-p", "fp8", "-m", "deepseek-v3")  # fits
    base = _json("query", "b_x_kv_free", *point)["rows"][0]
    fast = _json("query", "b_x_kv_free", *point, "--scale", "bw=10", "--scale",
                 "c_over_bw=0.1")["rows"][0]
    assert fast["b_x_kv_free"] == pytest.approx(base["b_x_kv_free"] / 10)


def test_catalog_list_and_show():
    hw = _json("catalog", "hardware")
    assert {r["name"] for r in hw} == set(catalogs.hardware_names())
    md = _json("catalog", "models")
    assert "deepseek-v3" in {r["name"] for r in md}
    one = _json("catalog", "models", "DSV3")
    assert one["key"] == "deepseek-v3" and one["source"]
    r = _run("catalog", "hardware", "h200")
    assert r.exit_code == 0 and "source" in r.stdout


def test_sensitivity_from_cube_matches_point(sweep_cube):
    path = sweep_cube
    a = _json("sensitivity", path, "--sel", "hardware=H200", "--sel", "model=dsv3",
              "--sel", "context=32k")
    b = _json("sensitivity", "-H", "h200", "-n", "8", "-m", "deepseek-v3", "-L", "32768",
              "-p", "fp8")
    assert a["source"].startswith("cube:") and a["binding"] == b["binding"]
    for o in a["values"]:
        assert a["values"][o] == pytest.approx(b["values"][o], rel=1e-9)
    for o in a["elasticity"]:
        for k in a["elasticity"][o]:
            x, y = a["elasticity"][o][k], b["elasticity"][o][k]
            assert (x is None and y is None) or x == pytest.approx(y, rel=1e-9, abs=1e-12)
    r = _run("sensitivity", path, "--sel", "hardware=h200", "--sel", "model=dsv3")
    assert r.exit_code == 2 and "context (3 values)" in r.output


def test_point_commands_never_import_plotting_or_xarray():
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from rooflax.results.cli import app\n"
        "r = CliRunner().invoke(app, ['sensitivity', '-H', 'h200', '-n', '8', '-m', 'dsv3', '-L', '1k', '--json'])\n"
        "assert r.exit_code == 0, r.output\n"
        "r = CliRunner().invoke(app, ['query', 'b_star', '-H', 'h200', '-m', 'dsv3'])\n"
        "assert r.exit_code == 0, r.output\n"
        "r = CliRunner().invoke(app, ['catalog', 'models'])\n"
        "assert r.exit_code == 0, r.output\n"
        "bad = [m for m in ('xarray', 'dask', 'hvplot', 'holoviews', 'bokeh', 'panel', 'zarr') if m in sys.modules]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
