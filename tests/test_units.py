"""The one parser (rooflax.sweeps.units): token counts are binary (k = 1024, M = 1024²) by every
route — config, command line, observation file — other quantities decimal SI; pint never
evaluates an expression; domains reject nonsense with "expected …, found …"."""

from __future__ import annotations

import json
import math
import textwrap

import pytest
import yaml
from typer.testing import CliRunner

from rooflax.results.cli import app
from rooflax.sweeps import config as C
from rooflax.sweeps import observations as O
from rooflax.sweeps import units


@pytest.mark.parametrize("text, kind, expected", [
    ("32k", "tokens", 32 * 1024), ("128K", "tokens", 128 * 1024), ("1M", "tokens", 1024**2),
    ("1024", "tokens", 1024), ("8k tokens", "tokens", 8192),
    ("4.8T", "number", 4.8e12), ("37B", "number", 37e9), ("1k", "number", 1000.0),
    ("80 GB", "bytes", 80e9), ("192 GiB", "bytes", 192 * 2**30), ("80 B", "bytes", 80.0),
    ("3.35 TB/s", "bandwidth", 3.35e12), ("989 TFLOPS", "flops", 989e12),
    ("2.5 $/h", "price", 2.5), ("150 $/day", "price", 150 / 24), ("50 ms", "time", 0.05),
    ("50ms", "time", 0.05), ("200us", "time", 200e-6),
])
def test_parse_values(text, kind, expected):
    assert units.parse(text, kind) == pytest.approx(expected, rel=1e-12)


def test_token_suffix_is_binary_by_every_route(tmp_path):
    # config route
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"store": str(tmp_path / "c.zarr"), "axes": {
        "hardware": ["h100-sxm"], "model": ["llama-3.1-8b"], "batch": [1], "context": ["32k"]}}))
    assert C.axis_values(C.load(cfg).axes.context) == [32768.0]
    # command-line route
    r = CliRunner().invoke(app, ["query", "l_eff", "-m", "llama-3.1-8b", "-L", "32k", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["rows"][0]["context"] == 32768
    # observation-file route
    text = textwrap.dedent("""\
        scenarios: {s: {hardware: h100-sxm, model: llama-3.1-8b, knobs: {context: 32k}}}
        unknowns: {u: {knob: batch, bounds: [1, 100]}}
        observations: [{quantity: t_step, value: 0.01, sigma: 0.001}]
        """)
    assert O.parse(text).scenarios["s"].knobs["context"] == 32768


def test_power_expression_is_refused_at_once():
    # regression (issue 13): pint evaluated 10**10**10 and hung
    with pytest.raises(units.ParseError, match="not a number with units"):
        units.parse("10**10**10 B/s", "bandwidth")
    with pytest.raises(units.ParseError):
        units.parse("2^1000 B", "bytes")
    with pytest.raises(units.ParseError, match="longer than"):
        units.parse("1" * 500 + " B", "bytes")


def test_wrong_dimension_and_non_finite():
    with pytest.raises(units.ParseError, match="not a bandwidth"):
        units.parse("3 GB", "bandwidth")
    for bad in ("nan", "1e999", True, None, [1]):
        with pytest.raises(units.ParseError):
            units.parse(bad, "number")


@pytest.mark.parametrize("name, value", [
    ("chips", "2.5"), ("chips", "0"), ("chips", "nan"), ("chips", "-8"), ("bw", "-1"),
    ("sparsity", "0.5"), ("bw_eff", "1.5"), ("bw_eff", "0"), ("spec_alpha", "1.5"),
    ("spec_k", "2.5"), ("overlap", "7"), ("slo", "-5ms"), ("context", "-5"), ("batch", "0"),
    ("batch", "0.5"), ("price_per_hour", "-3"), ("port", "99999"),
])
def test_domains_reject(name, value):
    with pytest.raises(units.ParseError, match="expected .*found"):
        units.knob(name, value)


def test_domains_accept():
    assert units.knob("chips", "8") == 8
    assert units.knob("slo", "inf") == math.inf
    assert units.knob("context", "128k") == 131072
    assert units.knob("link_bw", "900 GB/s") == 900e9


def test_cli_values_are_capped():
    # regression (issue 13): query -B 1..1e12/200000000 ran out of memory
    with pytest.raises(units.ParseError, match="at most"):
        units.values("1..1e12/200000000")
    assert units.values("1..8/4") == pytest.approx([1, 2, 4, 8])
    assert units.values("8:32:8") == [8, 16, 24, 32]


def test_precision_aliases_read_as_one_name():
    """Dtype and table spellings of a precision are one name (core.specs.precision_name)."""
    from rooflax.core.specs import precision_bytes, precision_name

    assert precision_name("BFloat16") == "bf16" and precision_name("float16") == "fp16"
    assert precision_bytes("float8_e4m3fn") == 1.0 and precision_bytes("nvfp4") == 4.5 / 8
    with pytest.raises(ValueError, match="expected one of: fp32, bf16"):
        precision_name("q4_k_m")
