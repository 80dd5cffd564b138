"""The one YAML input pipeline (rooflax.sweeps.inputs) and the config/observation domains:
every case of issue 13 that was accepted, crashed, hung or blew up is one short error now."""

from __future__ import annotations

import copy
import textwrap

import pytest
import yaml

from rooflax.sweeps import config as C
from rooflax.sweeps import inputs
from rooflax.sweeps import observations as O

BASE = {"axes": {"hardware": ["h100-sxm"], "model": ["llama-3.1-8b"], "batch": [1, 8],
                 "context": [1024]}}
ARCH = {"hidden_size": 4096, "num_layers": 32, "num_heads": 32, "num_kv_heads": 8,
        "head_dim": 128, "intermediate_size": 14336, "vocab_size": 128256}


def _with(path, value):
    d = copy.deepcopy(BASE)
    node = d
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    return d


def _arch(**kw):
    return _with(("axes", "model"), [{"name": "m", "architecture": {**ARCH, **kw}}])


# (name, config as data or raw text, a string the one error must contain)
CONFIG_CASES = [
    ("duplicate-axes", "axes: {}\nstore: x.zarr\naxes: {}\n", "'axes' again"),
    ("duplicate-store", "store: a.zarr\nstore: b.zarr\naxes: {}\n", "'store' again"),
    ("same-hardware-twice", _with(("axes", "hardware"), ["h100-sxm", "H100-SXM"]), "distinct"),
    ("num-true", _with(("axes", "batch"), {"log": [1, 64], "num": True}), "axes.batch"),
    ("batch-half", _with(("axes", "batch"), [0.5]), "batch ≥ 1"),
    ("chips-fraction", _with(("axes", "chips"), 0.3), "whole number of chips"),
    ("sparsity-below-1", _with(("axes", "model"), {"sparsity": [0.5], "n_total": 1e9,
                                                   "kv_bytes_per_token": 1000}), "sparsity"),
    ("num-layers-negative", _arch(num_layers=-32), "num_layers"),
    ("bw-eff-above-1", _with(("axes", "bw_eff"), 1.5), "(0, 1]"),
    ("bw-eff-zero", _with(("axes", "bw_eff"), 0), "(0, 1]"),
    ("spec-alpha-above-1", _with(("axes", "spec_alpha"), 1.5), "[0, 1]"),
    ("spec-k-fraction", _with(("axes", "spec_k"), 2.5), "whole number"),
    ("overlap-7", _with(("axes", "overlap"), 7), "[0, 1]"),
    ("binary-tag", "axes: !!binary aGVsbG8=\n", "!!binary"),
    ("python-tag", "axes: !!python/object:os.system x\n", "no tags"),
    ("nul", "axes: {}\x00\n", "NUL"),
    ("deep-nesting", "axes: " + "[" * 20000 + "]" * 20000 + "\n", "nesting"),
    ("long-store-name", {**BASE, "store": "s" * 300 + ".zarr"}, "store"),
    ("arch-unknown-field", _arch(wings=2), "'wings'"),
    ("arch-empty", _with(("axes", "model"), [{"name": "m", "architecture": {}}]), "architecture"),
    ("arch-string-field", _arch(num_heads="many"), "num_heads"),
    ("power-expression", _with(("axes", "hardware"), [{"name": "x", "bw": "10**10**10 B/s",
                                                       "flops": "1 PFLOPS", "capacity": "80 GB"}]),
     "not a number with units"),
    ("aliased-list", "a: &a [" + ",".join(["x"] * 60) + "]\nb: &b [" + ",".join(["*a"] * 20)
     + "]\nc: &c [" + ",".join(["*b"] * 20) + "]\naxes: [" + ",".join(["*c"] * 20) + "]\n",
     "aliases expanded"),
]


@pytest.mark.parametrize("name, content, expect", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_bad_config_is_one_short_error(tmp_path, name, content, expect):
    f = tmp_path / "c.yaml"
    if isinstance(content, str):
        f.write_text(content)
    else:
        f.write_text(yaml.safe_dump({"store": str(tmp_path / "c.zarr"), **content}
                                    if "store" not in content else content))
    with pytest.raises(C.ConfigError) as e:
        C.load(f)
    msg = str(e.value)
    assert expect in msg, msg
    assert len(msg) < 2000 and str(f) in msg
    assert not (tmp_path / "c.zarr").exists()


def test_invalid_utf8_and_size_caps(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_bytes(b"axes: {}\nname: \xff\xfe\n")
    with pytest.raises(C.ConfigError, match=r"c.yaml:2: .*UTF-8.*0xff"):
        C.load(f)
    f.write_bytes(b"# " + b"x" * (inputs.MAX_BYTES + 10))
    with pytest.raises(C.ConfigError, match="at most"):
        C.load(f)
    with pytest.raises(C.ConfigError, match="a directory"):
        C.load(tmp_path)


def test_empty_scalar_and_list_files(tmp_path):
    f = tmp_path / "c.yaml"
    for text, found in (("", "an empty file"), ("42\n", "int 42"), ("- a\n", "list")):
        f.write_text(text)
        with pytest.raises(C.ConfigError, match=found):
            C.load(f)


OBS = textwrap.dedent("""\
    scenarios: {s: {hardware: h100-sxm, model: llama-3.1-8b, knobs: {context: 4k}}}
    unknowns: {u: {knob: batch, bounds: [1, 100]}}
    observations: [{quantity: t_step, value: 0.01, sigma: 0.001}]
    """)


@pytest.mark.parametrize("text, expect", [
    (OBS + "scenarios: {}\n", "'scenarios' again"),
    ("a: " + "[" * 20000 + "]" * 20000, "nesting"),
    ("a: !!python/name:os.system x\n", "no tags"),
    (OBS.replace("4k", "-5"), "context ≥ 0"),
    (OBS.replace("4k", "10**10**10"), "context"),
    ("", "an empty file"),
    ("[1, 2]", "[1, 2]"),
])
def test_bad_observation_file(text, expect):
    with pytest.raises(O.ObservationFileError) as e:
        O.loads(text, "obs.yaml")
    assert expect in str(e.value) and str(e.value).startswith("obs.yaml")
    assert isinstance(e.value, inputs.InputError) and "\n" not in str(e.value)


def test_observation_file_invalid_utf8(tmp_path):
    f = tmp_path / "o.yaml"
    f.write_bytes(b"title: \xc3\x28\n")
    with pytest.raises(O.ObservationFileError, match="UTF-8"):
        O.load(f)


def test_one_did_you_mean():
    assert inputs.suggest("axis", ["axes", "store"]) == " (did you mean 'axes'?)"
    assert inputs.suggest("zzz", ["axes"]) == ""
    assert inputs.suggest("h-200", {"h200": "H200"}) == " (did you mean 'H200'?)"


# --------------------------------------------------------------------------- one translation
def test_schema_issues_locate_and_word_each_kind_of_pydantic_error():
    """inputs.schema_issues on a small schema: lines and fields counted by hand in the text."""
    from pydantic import BaseModel, ConfigDict, Field, ValidationError

    class Inner(BaseModel):
        model_config = ConfigDict(extra="forbid")
        sigma: float = Field(gt=0.5)
        n: int

    class Outer(BaseModel):
        model_config = ConfigDict(extra="forbid")
        items: list[Inner] = Field(min_length=1)
        name: str

    text = "items:\n  - sigma: -1\n    n: 2\n  - sigmaa: 1\n    n: x\n"
    data, root = inputs.load_yaml(text, "t.yaml")
    with pytest.raises(ValidationError) as e:
        Outer.model_validate(data)
    got = inputs.schema_issues(e.value, data, root, lambda loc: ["sigma", "n"])
    assert [(i.line, i.field, i.message) for i in got] == [
        (2, "items[0].sigma", "expected a number > 0.5; found -1"),
        (4, "items[1].sigma", "expected this required field; found nothing (missing required field)"),
        (5, "items[1].n", "expected an integer; found 'x'"),
        (4, "items[1].sigmaa", "expected one of the known fields (sigma, n); found unknown field "
                               "'sigmaa' (did you mean 'sigma'?)"),
        (1, "name", "expected this required field; found nothing (missing required field)"),
    ]


def test_config_and_observation_files_word_an_unknown_field_alike(tmp_path):
    """The two YAML inputs share the translation: same words for the same mistake."""
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump({**BASE, "stor": str(tmp_path / "c.zarr")}))
    with pytest.raises(C.ConfigError) as ce:
        C.load(f)
    with pytest.raises(O.ObservationFileError) as oe:
        O.loads(OBS + "titel: x\n", "obs.yaml")
    for msg, name, near in ((str(ce.value), "stor", "store"), (str(oe.value), "titel", "title")):
        assert f": {name}: expected one of the known fields (" in msg, msg
        assert f"; found unknown field {name!r} (did you mean {near!r}" in msg, msg
