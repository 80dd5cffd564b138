"""Every door of the CLI: bad values are one line and exit 2 (naming the option), unexpected
errors one line and exit 1 (traceback only with --debug), help never eaten by markup, -h and
--version everywhere. Regression tests for issue 13; all in-process (CliRunner)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from rooflax.results.cli import app

runner = CliRunner()
Q = ["query", "cost_per_mtok", "-H", "h100-sxm", "-m", "llama-3.1-8b"]
S = ["sensitivity", "-H", "h100-sxm", "-m", "llama-3.1-8b"]

# (name, argv, text the one line must contain) — each was exit 0 or a traceback before
BAD = [
    ("query-negative-batch", Q + ["-B", "-4"], "--batch"),
    ("query-zero-batch", Q + ["-B", "0"], "--batch"),
    ("sensitivity-negative-price", S + ["--price-per-hour", "-3"], "--price"),
    ("sensitivity-negative-context", S + ["--context", "-5"], "--context"),
    ("sensitivity-negative-chips", S + ["--chips", "-8"], "--chips"),
    ("sensitivity-nan-chips", S + ["--chips", "nan"], "--chips"),
    ("sensitivity-zero-chips", S + ["--chips", "0"], "--chips"),
    ("query-fractional-chips", Q + ["-n", "2.5"], "--chips"),
    ("query-zero-chips", Q + ["-n", "0"], "--chips"),
    ("set-negative-bw", Q + ["--set", "bw=-1"], "--set bw"),
    ("scale-bw-zero", Q + ["--scale", "bw=0"], "--scale bw"),
    ("scale-sparsity-below-1", Q + ["--scale", "sparsity=0.01"], "--scale sparsity"),
    ("negative-slo", Q + ["--slo", "-5ms"], "--slo"),
    ("port-out-of-range", ["explore", "--port", "99999"], "--port"),
    ("batch-range-too-long", Q + ["-B", "1..1e12/200000000"], "at most"),
    ("unknown-knob", Q + ["--set", "c_over_b=1"], "did you mean 'c_over_bw'"),
    ("power-expression", Q + ["-L", "10**10**10"], "--context"),
    ("unknown-command", ["quer"], "query"),
    ("missing-option-value", Q + ["--chips"], "--chips"),
    ("plot-into-missing-dir", ["plot", "nowhere.zarr", "cost", "-o", "/no/such/dir/x.png"],
     "existing directory"),
]


@pytest.mark.parametrize("name, argv, expect", BAD, ids=[b[0] for b in BAD])
def test_bad_value_is_one_line_exit_2(name, argv, expect):
    r = runner.invoke(app, argv)
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), r.output
    assert expect in lines[0] and "Traceback" not in r.output


def test_unexpected_error_is_one_line_exit_1(monkeypatch):
    from rooflax.results import point

    def boom(*a, **k):
        raise RuntimeError("kaboom\nsecond line")

    monkeypatch.setattr(point, "build_point", boom)
    r = runner.invoke(app, Q)
    assert r.exit_code == 1
    assert r.output.strip().splitlines() == [
        "error: unexpected RuntimeError: kaboom second line (a bug in rooflax: rerun with "
        "--debug for the traceback and report it)"]
    r = runner.invoke(app, ["--debug", *Q])
    assert r.exit_code == 1 and isinstance(r.exception, RuntimeError)


@pytest.mark.parametrize("argv", [["-h"], ["query", "--help"], ["query", "-h"],
                                  ["sensitivity", "-h"], ["sweep", "-h"], ["catalog", "-h"],
                                  ["plot", "-h"], ["explore", "-h"], ["fit", "-h"]])
def test_help_everywhere(argv):
    # regression: `rooflax query --help` crashed on rich markup in the -B help ("[/N]")
    r = runner.invoke(app, argv)
    assert r.exit_code == 0, r.output
    assert r.output.startswith("Usage:")


def test_query_help_keeps_brackets():
    r = runner.invoke(app, ["query", "-h"])
    assert "1..8192[/N]" in " ".join(r.output.split())


def test_version():
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and r.output.startswith("rooflax ")


def test_unit_labels_not_eaten():
    # regression: rich markup ate "[s]", "[sequences]" from query tables
    r = runner.invoke(app, ["query", "t_step", "b_x", "-H", "h100-sxm", "-m", "llama-3.1-8b"])
    assert r.exit_code == 0, r.output
    assert "t_step [s]" in r.output and "b_x [sequences]" in r.output


def test_tables_fit_columns():
    r = runner.invoke(app, ["query", "t_step", "b_x", "-H", "h100-sxm", "-m", "llama-3.1-8b",
                            "-B", "1,8"], env={"COLUMNS": "60"})
    assert r.exit_code == 0, r.output
    assert max(len(line) for line in r.output.splitlines()) <= 60


def test_good_query_json_still_parses():
    r = runner.invoke(app, Q + ["-B", "1,8", "--json"])
    assert r.exit_code == 0, r.output
    assert len(json.loads(r.output)["rows"]) == 2


def test_sensitivity_from_swept_cube_reads_what_it_holds(tmp_path):
    # regression (issue 13): $/Mtok at B* was nan although the cube holds it, and knobs the
    # cube does not hold were "not defined (the knob is 0 or infinite)"
    import yaml

    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({
        "store": str(tmp_path / "c.zarr"),
        "axes": {"hardware": ["h200"], "model": ["llama-3.1-8b"], "batch": [1, 8],
                 "context": ["1k", "8k"], "chips": 1},
        "outputs": {"values": ["b_star", "cost_per_mtok_at_b_star", "latency_at_b_star",
                               "throughput_at_b_star"],
                    "sensitivities": {"of": ["b_star", "cost_at_b_star"], "knobs": ["bw"],
                                      "kind": ["elasticity"]}}}))
    r = runner.invoke(app, ["sweep", str(cfg)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["sensitivity", str(tmp_path / "c.zarr"), "--sel", "context=1k",
                            "-k", "bw", "-k", "sparsity", "--json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    b = json.loads(runner.invoke(app, ["sensitivity", "-H", "h200", "-n", "1", "-m",
                                       "llama-3.1-8b", "-L", "1k", "--json"]).stdout)
    assert rep["values"]["cost_per_mtok_at_b_star"] == pytest.approx(
        b["values"]["cost_per_mtok_at_b_star"], rel=1e-5)
    assert rep["binding"] == "not stored in this cube"
    assert "not stored in this cube" in rep["sentences"]["cost_at_b_star"]["sparsity"]
    assert "not stored" not in rep["sentences"]["cost_at_b_star"]["bw"]
    r = runner.invoke(app, ["sensitivity", str(tmp_path / "c.zarr"), "--sel", "context=-1"])
    assert r.exit_code == 2 and "context ≥ 0" in r.output  # not silently the nearest value


def test_feasibility_in_query():
    # regression (issue 13): $17.39/Mtok printed at B = 64 while B_max is 13
    r = runner.invoke(app, ["query", "cost_per_mtok", "b_max", "binding", "-H", "hgx-h100-8",
                            "-m", "llama-3.1-70b", "-B", "8,64", "-L", "128k", "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)["rows"]
    bmax = rows[0]["b_max"]
    assert 8 < bmax < 64
    assert rows[0]["feasible"] and rows[0]["cost_per_mtok"] > 0
    assert not rows[1]["feasible"] and rows[1]["cost_per_mtok"] is None
    assert rows[1]["reason"].startswith("past capacity")
    assert rows[0]["binding"] == "capacity"  # a name, not a code
    # a model that does not fit: no latency floor, the reason instead
    r = runner.invoke(app, ["query", "latency_floor", "l_crit", "-H", "h100-sxm", "-m",
                            "deepseek-v3", "--json"])
    row = json.loads(r.stdout)["rows"][0]
    weights = 671e9 * 2  # DeepSeek-V3 in bf16 on 80 GB chips
    assert row["latency_floor"] is None and row["l_crit"] is None
    assert row["reason"].startswith("does not fit: needs ") and abs(
        int(row["reason"].split()[-2]) - weights / 80e9) < 1.5


def test_query_precision_falls_back_per_chip():
    # regression (issue 13): -H a100,h100-sxm -p fp8 failed on a100; configs fall back per chip
    r = runner.invoke(app, ["query", "t_step", "-H", "a100,h100-sxm", "-p", "fp8", "-m",
                            "llama-3.1-8b", "--json"])
    assert r.exit_code == 0, r.output
    rows = {x["hardware"]: x for x in json.loads(r.stdout)["rows"]}
    assert rows["a100"]["precision"] == "bf16" and rows["h100-sxm"]["precision"] == "fp8"
