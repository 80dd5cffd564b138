"""Malformed sweep configs: exit code 2, file/line/field/expected/found, no traceback, no store."""

from __future__ import annotations

import copy
import json
import os

import pytest
import yaml
from typer.testing import CliRunner

from rooflax.results.cli import app
from rooflax.sweeps import config as C
from rooflax.sweeps import units

BASE = {
    "axes": {
        "hardware": ["h100-sxm", "b200"],
        "model": ["llama-3.1-8b", "deepseek-v3"],
        "batch": {"log": [1, 1024], "num": 8},
        "context": [1024, "32k"],
        "chips": 8,
    },
    "outputs": {"values": ["t_step", "b_star", "binding", "cost_per_mtok_at_b_star"]},
}


def _set(d, path, value):
    d = copy.deepcopy(d)
    node = d
    for p in path[:-1]:
        node = node[p]
    if value is _DEL:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return d


_DEL = object()

# (name, mutation(path, value) | raw text, strings the message must contain)
CASES = [
    ("typo-top", ("axis", BASE["axes"]), ["unknown field 'axis'", "did you mean 'axes'"]),
    ("typo-axis", ("axes", "contxt", [1]), ["unknown field 'contxt'", "did you mean 'context'"]),
    ("unknown-hw", ("axes", "hardware", ["h100-sxn"]), ["axes.hardware[0]", "did you mean"]),
    ("unknown-model", ("axes", "model", ["llama-3.1-8"]), ["axes.model[0]", "did you mean"]),
    ("empty-hw", ("axes", "hardware", []), ["axes.hardware", "at least 1"]),
    ("empty-batch", ("axes", "batch", []), ["axes.batch", "at least 1"]),
    ("batch-wrong-type", ("axes", "batch", "lots"), ["axes.batch", "expected a batch ≥ 1 sequence", "'lots'"]),
    ("negative-bw", ("axes", "hardware", {"bw": {"log": [-1, 3], "num": 4}, "c_over_bw": [300],
                                          "capacity": "80 GB"}), ["axes.hardware.bw", "> 0"]),
    ("zero-bw-inline", ("axes", "hardware", [{"name": "x", "bw": 0, "flops": "1 PFLOPS",
                                              "capacity": "80 GB"}]), ["bw", "> 0", "found 0"]),
    ("bw-in-bytes", ("axes", "hardware", [{"name": "x", "bw": "3 GB", "flops": "1 PFLOPS",
                                           "capacity": "80 GB"}]), ["bw", "expected a bandwidth", "'3 GB'"]),
    ("capacity-in-bw", ("axes", "hardware", [{"name": "x", "bw": "3 TB/s", "flops": "1 PFLOPS",
                                              "capacity": "80 GB/s"}]), ["capacity", "expected a size in bytes"]),
    ("flops-and-balance", ("axes", "hardware", [{"name": "x", "bw": "3 TB/s", "flops": "1 PFLOPS",
                                                 "c_over_bw": 300, "capacity": "80 GB"}]),
     ["exactly one of 'flops' or 'c_over_bw'"]),
    ("price-units", ("axes", "hardware", [{"name": "x", "bw": "3 TB/s", "flops": "1 PFLOPS",
                                           "capacity": "80 GB", "price_per_hour": "2 GB"}]),
     ["price_per_hour", "expected a price per hour"]),
    ("context-units", ("axes", "context", ["3 TB/s"]), ["axes.context", "expected a number of tokens"]),
    ("range-both", ("axes", "context", {"lin": [1, 2], "log": [1, 2], "num": 3}), ["exactly one of 'lin' or 'log'"]),
    ("range-num-zero", ("axes", "context", {"log": [1, 2], "num": 0}), ["axes.context.num", "greater than or equal to 1"]),
    ("log-range-zero", ("axes", "context", {"log": [0, 1000], "num": 3}), ["log range bounds > 0"]),
    ("bad-precision", ("axes", "precision", "fp9"), ["axes.precision", "did you mean"]),
    ("bad-output", ("outputs", "values", ["t_stepp"]), ["outputs.values[0]", "did you mean 't_step'"]),
    ("bad-knob", ("outputs", "sensitivities", {"knobs": ["bandwidth"]}), ["outputs.sensitivities.knobs[0]", "expected one of knobs"]),
    ("bad-dtype", ("dtype", "float16"), ["dtype", "float16"]),
    ("missing-batch", ("axes", "batch", _DEL), ["axes.batch", "missing required field"]),
    ("bad-chunks-dim", ("chunks", {"contxt": 4}), ["chunks.contxt", "did you mean 'context'"]),
    ("zero-chunks", ("chunks", {"context": 0}), ["chunks.context", "greater than or equal to 1"]),
    ("dup-hw", ("axes", "hardware", ["h100-sxm", "h100-sxm"]), ["distinct hardware names"]),
    ("neg-batch", ("axes", "batch", [-4, 8]), ["axes.batch[0]", "found -4"]),
    ("sparsity-model-missing", ("axes", "model", {"sparsity": [1, 2]}), ["axes.model.n_total", "missing"]),
    ("n-active-gt-total", ("axes", "model", [{"name": "m", "n_total": 1e9, "n_active": 2e9,
                                              "kv_bytes_per_token": 1000}]), ["n_active ≤ n_total"]),
    ("yaml-syntax", "axes: [hardware: {", ["valid YAML"]),
    ("not-mapping", "- 1\n- 2\n", ["expected a mapping"]),
    ("unwritable-store", ("store", "/proc/rooflax-nope/cube.zarr"), ["store", "expected a writable location"]),
]


@pytest.fixture(scope="module")
def runner():
    return CliRunner()


@pytest.mark.parametrize("name,mut,expect", CASES, ids=[c[0] for c in CASES])
def test_bad_config(tmp_path, monkeypatch, runner, name, mut, expect):
    monkeypatch.chdir(tmp_path)
    cfg_file = tmp_path / f"{name}.yaml"
    if isinstance(mut, str):
        cfg_file.write_text(mut)
    else:
        data = _set(BASE, mut[:-1], mut[-1])
        if "store" not in data:
            data["store"] = str(tmp_path / "cube.zarr")
        cfg_file.write_text(yaml.safe_dump(data, sort_keys=False))
    r = runner.invoke(app, ["sweep", str(cfg_file)])
    out = r.output
    assert r.exit_code == 2, out
    assert "Traceback" not in out
    assert str(cfg_file) in out
    for s in expect:
        assert s in out, f"{s!r} not in:\n{out}"
    if not isinstance(mut, str) and mut[0] != "store":
        assert ":" + "" in out and any(ch.isdigit() for ch in out.split(str(cfg_file))[1][:4]), out
    assert not (tmp_path / "cube.zarr").exists()
    assert not (tmp_path / "out").exists()


def test_line_numbers(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("axes:\n  hardware: [h100-sxm]\n  model: [llama-3.1-8b]\n  batch: [1, 2]\n"
                 "  context: [1k]\n  chips: 8\noutputs: [t_step, b_sta]\n")
    with pytest.raises(C.ConfigError) as e:
        C.load(f)
    assert f"{f}:7: outputs[1]" in str(e.value)
    assert "did you mean 'b_star'" in str(e.value)


def test_store_of_other_config_and_existing(tmp_path, monkeypatch, runner):
    monkeypatch.chdir(tmp_path)
    base = copy.deepcopy(BASE)
    base["store"] = str(tmp_path / "cube.zarr")
    a = tmp_path / "a.yaml"
    a.write_text(yaml.safe_dump(base))
    assert runner.invoke(app, ["sweep", str(a), "--quiet"]).exit_code == 0
    # same store, no flag
    r = runner.invoke(app, ["sweep", str(a)])
    assert r.exit_code == 2 and "--resume" in r.output and "Traceback" not in r.output
    # another config into the same store
    base["axes"]["context"] = [2048]
    b = tmp_path / "b.yaml"
    b.write_text(yaml.safe_dump(base))
    r = runner.invoke(app, ["sweep", str(b), "--resume"])
    assert r.exit_code == 2 and "another config" in r.output and "Traceback" not in r.output
    # a non-cube directory
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.txt").write_text("x")
    base["store"] = str(tmp_path / "junk")
    c = tmp_path / "c.yaml"
    c.write_text(yaml.safe_dump(base))
    r = runner.invoke(app, ["sweep", str(c), "--overwrite"])
    assert r.exit_code == 2 and "not a Zarr store" in r.output
    assert (tmp_path / "junk" / "x.txt").exists()


def test_units():
    assert units.parse("3.35 TB/s", "bandwidth") == pytest.approx(3.35e12)
    assert units.parse("80 GB", "bytes") == pytest.approx(80e9)
    assert units.parse("192 GiB", "bytes") == pytest.approx(192 * 2**30)
    assert units.parse("989 TFLOPS", "flops") == pytest.approx(989e12)
    assert units.parse("2.5 $/h", "price") == pytest.approx(2.5)
    assert units.parse("150 $/day", "price") == pytest.approx(150 / 24)
    assert units.parse("128k", "tokens") == 128 * 1024  # k = 1024 for token counts
    assert units.parse("1M", "tokens") == 1024**2
    assert units.parse("50 ms", "time") == pytest.approx(0.05)
    with pytest.raises(ValueError, match="expected a bandwidth"):
        units.parse("3 GB", "bandwidth")


def test_schema_file_is_current():
    path = os.path.join(os.path.dirname(C.__file__), "schema", "sweep.schema.json")
    with open(path) as f:
        assert json.load(f) == json.loads(json.dumps(C.json_schema()))


def test_shipped_configs_load():
    root = os.path.join(os.path.dirname(__file__), "..", "configs")
    for name in ("default.yaml", "long-context.yaml", "future-hardware.yaml"):
        cfg = C.load(os.path.join(root, name))
        assert cfg.store.startswith("out/")
