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
