"""Observation files: bad files give one clear error (file, line, field, expected, found; exit 2);
the worked examples load; `rooflax fit` runs end to end (JSON)."""

import json
import textwrap
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from rooflax.results.fit import register
from rooflax.sweeps.observations import ObservationFileError, load, loads

ROOT = Path(__file__).resolve().parents[1]

GOOD = textwrap.dedent("""\
    title: t
    scenarios:
      s:
        hardware: h100-sxm
        precision: fp8
        chips: 8
        model: deepseek-v3
        weights: fp8
        knobs: {context: 4000}
    unknowns:
      seqs:
        knob: batch_per_chip
        bounds: [1, 1000]
    observations:
      - name: user
        quantity: tokens_per_s_per_user
        value: 20
        sigma: 1
    """)


def _err(text: str) -> ObservationFileError:
    with pytest.raises(ObservationFileError) as info:
        loads(text, "obs.yaml")
    e = info.value
    assert e.exit_code == 2
    assert str(e).startswith("obs.yaml:")
    assert "expected" in str(e) and "found" in str(e)
    return e


def test_good_file_builds():
    loaded = loads(GOOD, "obs.yaml")
    assert [u.name for u in loaded.problem.unknowns] == ["seqs"]
    assert loaded.problem.scenarios["s"].bind == {"batch_per_chip": "seqs"}
    assert loaded.unknown_knobs == {"seqs": "batch_per_chip"}


def test_yaml_syntax_error_has_line():
    e = _err(GOOD.replace("sigma: 1", "sigma: [1"))
    assert e.line is not None and "valid YAML" in e.expected


def test_wrong_type_names_field_line_and_value():
    e = _err(GOOD.replace("sigma: 1", "sigma: lots"))
    assert e.field == "observations[0].sigma"
    assert e.line == GOOD.splitlines().index("    sigma: 1") + 1
    assert e.expected == "a number" and "'lots'" in e.found


def test_negative_sigma():
    e = _err(GOOD.replace("sigma: 1", "sigma: -1"))
    assert e.field == "observations[0].sigma" and "> 0" in e.expected and "-1" in e.found


def test_unknown_quantity_suggests():
    e = _err(GOOD.replace("tokens_per_s_per_user", "tokens_per_sec_per_user"))
    assert e.field == "observations[0].quantity"
    assert "did you mean 'tokens_per_s_per_user'" in e.found
    assert e.line == 16


def test_unknown_scenario_reference():
    e = _err(GOOD.replace("    value: 20", "    at: decode\n    value: 20"))
    assert e.field == "observations[0].at" and "one of: s" in e.expected and "'decode'" in e.found


def test_unknown_knob_in_unknowns():
    e = _err(GOOD.replace("knob: batch_per_chip", "knob: batch_per_gpu"))
    assert e.field == "unknowns.seqs.knob" and "batch_per_chip" in e.found  # the suggestion


def test_reversed_bounds():
    e = _err(GOOD.replace("bounds: [1, 1000]", "bounds: [1000, 1]"))
    assert e.field == "unknowns.seqs.bounds" and "lower < upper" in e.expected


def test_missing_sigma():
    e = _err(GOOD.replace("    sigma: 1\n", ""))
    assert e.field == "observations[0]" and "sigma" in e.expected


def test_extra_field_lists_allowed():
    e = _err(GOOD.replace("    sigma: 1\n", "    sigma: 1\n    sigmaa: 2\n"))
    assert e.field == "observations[0].sigmaa" and "rel_sigma" in e.expected and "unknown field" in e.found


def test_unknown_hardware_name():
    e = _err(GOOD.replace("hardware: h100-sxm", "hardware: h1000"))
    assert e.field == "scenarios.s.hardware" and "unknown hardware name" in e.found


def test_knob_fixed_and_unknown():
    e = _err(GOOD.replace("knobs: {context: 4000}", "knobs: {context: 4000, batch_per_chip: 4}"))
    assert e.field == "unknowns.seqs.knob" and "does not fix" in e.expected


def test_missing_file():
    with pytest.raises(ObservationFileError, match="no such file"):
        load("/nonexistent/obs.yaml")


@pytest.mark.parametrize("name", ["fit-deepseek-production.yaml", "fit-long-context-tier.yaml"])
def test_worked_examples_load(name):
    loaded = load(ROOT / "configs" / name)
    assert loaded.problem.observations and loaded.problem.derived


def _app():
    app = typer.Typer(add_completion=False)

    @app.callback()
    def _root() -> None:
        """rooflax"""

    register(app)
    return app


def test_cli_bad_file_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("sigma: 1", "sigma: lots"))
    res = CliRunner().invoke(_app(), ["fit", str(bad)])
    assert res.exit_code == 2
    assert f"{bad}:18: observations[0].sigma: expected a number; found 'lots'" in res.output


@pytest.mark.slow  # a full fit of a worked example (make test-fast skips it)
def test_cli_deepseek_json():
    res = CliRunner().invoke(_app(), ["fit", str(ROOT / "configs/fit-deepseek-production.yaml"),
                                      "--json", "--no-profile", "--starts", "2"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["schema"] == "rooflax.fit/1" and doc["rank"] == 3
    u = {x["name"]: x for x in doc["unknowns"]}
    assert u["seqs_per_gpu"]["estimate"] == pytest.approx(1850 / 21, rel=1e-6)
    d = {x["name"]: x for x in doc["derived"]}
    assert d["decode $/M output tokens ($2/GPU-h)"]["value"] == pytest.approx(2 / 3600 / 1850 * 1e6, rel=1e-6)
    assert d["fleet GPU-hours per decode GPU-hour"]["value"] == pytest.approx(0.5183 / 0.3003, rel=1e-3)
