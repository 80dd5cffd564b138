"""Seeded fuzz of every door: malformed sweep configs, command lines and observation files.

Each run generates 236 cases (90 configs, 86 command lines, 60 observation files) (a fixed seed, so a failure reproduces; ROOFLAX_FUZZ_SEED picks
another) from a valid base by 1–3 mutations drawn from pools of values *outside* each field's
domain, plus raw-text corruptions. Every case must exit 2 with an ``error:`` line (configs:
followed only by ``FILE:LINE: field: …`` lines), no traceback, and nothing written. All
in-process (CliRunner) so the whole test stays fast.
"""

from __future__ import annotations

import copy
import os
import random
import textwrap

import yaml
from typer.testing import CliRunner

from rooflax.results.cli import app

SEED = int(os.environ.get("ROOFLAX_FUZZ_SEED", "13"))
runner = CliRunner()

BASE_CONFIG = {
    "axes": {"hardware": ["h100-sxm"], "model": ["llama-3.1-8b"], "batch": [1, 8],
             "context": ["1k", "8k"], "chips": 1},
    "outputs": {"values": ["t_step", "b_star"]},
}
NAN_ETC = ["nan", True, None, "10**10**10", "1e999", "x" * 300]
CONFIG_BAD = {
    ("axes", "batch"): [-1, 0, 0.5, [0], [0.5], {"log": [0, 8], "num": 4}, {"lin": [1, 8]},
                        {"log": [1, 8], "num": True}, [], "lots"],
    ("axes", "context"): [-5, ["-1k"], "3 TB/s", {"log": [1, 8]}, [], [[1]]],
    ("axes", "chips"): [0, -8, 0.3, [2.5], "inf", []],
    ("axes", "hardware"): [[], ["nope"], ["h100-sxm", "H100-SXM"], [{"name": "x"}], 5,
                           [{"name": "x", "bw": "3 GB", "flops": "1 PFLOPS", "capacity": "80 GB"}]],
    ("axes", "model"): [[], ["nope"], [{"name": "m", "architecture": {}}],
                        [{"name": "m", "architecture": {"num_layers": -32}}],
                        [{"name": "m", "n_total": -1, "sparsity": 1, "kv_bytes_per_token": 1}],
                        {"sparsity": [0.5], "n_total": 1e9, "kv_bytes_per_token": 1}],
    ("axes", "bw_eff"): [0, 1.5, -1], ("axes", "flops_eff"): [0, 2], ("axes", "link_eff"): [3],
    ("axes", "spec_alpha"): [1.5, -0.1], ("axes", "spec_k"): [2.5, -1],
    ("axes", "overlap"): [7, -1], ("axes", "slo"): [-5, "-5ms", "3 GB", 0],
    ("axes", "precision"): ["fp9", 3, [], [""]],
    ("axis",): [{}], ("dtype",): ["float16"], ("physics",): ["x"], ("layout",): ["zz"],
    ("outputs",): [["nope"], {"values": []}], ("chunks",): [{"zz": 1}, {"context": 0}],
    ("store",): [[1], "s" * 300 + "/c.zarr"],
}
RAW = [
    "axes: {}\nstore: a.zarr\naxes: {}\n", "axes: [1, 2\n", "axes: !!binary aGVsbG8=\n",
    "axes: !!python/object:os.system x\n", "axes: {}\x00\n", "a: " + "[" * 500 + "]" * 500,
    "a: &a [" + ",".join(["x"] * 50) + "]\nb: [" + ",".join(["*a"] * 99) + "]\n" * 1,
    "", "42\n", "- a\n", "\tfoo: 1\n",
]


def _mutate(rng: random.Random, base: dict, pools: dict) -> dict:
    d = copy.deepcopy(base)
    for path in rng.sample(sorted(pools, key=str), rng.randint(1, 3)):
        node = d
        for p in path[:-1]:
            node = node.setdefault(p, {}) if isinstance(node, dict) else {}
        if not isinstance(node, dict):
            continue  # an earlier mutation replaced the parent: already malformed
        value = rng.choice(pools[path] + (NAN_ETC if rng.random() < 0.2 else []))
        node[path[-1]] = copy.deepcopy(value)
    return d


def _configs(rng: random.Random, n: int):
    for i in range(n):
        if i % 7 == 0:
            yield f"raw{i}", RAW[(i // 7) % len(RAW)].encode()
        elif i % 11 == 0:
            yield f"utf8-{i}", b"axes:\n  hardware: [h100-sxm]\nname: \xff\xfe\n"
        else:
            yield f"mut{i}", yaml.safe_dump(_mutate(rng, BASE_CONFIG, CONFIG_BAD)).encode()


def test_fuzz_configs(tmp_path):
    rng = random.Random(SEED)
    cases = list(_configs(rng, 90))
    for name, content in cases:
        d = tmp_path / name
        d.mkdir()
        f = d / "c.yaml"
        if b"store" not in content:
            content = f"store: {d / 'c.zarr'}\n".encode() + content if not content.startswith(
                b"store") else content
        f.write_bytes(content)
        r = runner.invoke(app, ["sweep", str(f), "--dry-run"])
        out = r.output
        assert r.exit_code == 2, (name, content[:300], out)
        lines = out.strip().splitlines()
        assert lines[0].startswith("error:") and "Traceback" not in out, (name, out)
        assert all(ln.startswith(str(f)) for ln in lines[1:]), (name, out)
        assert len(out) < 4000, (name, len(out))
        assert sorted(p.name for p in d.iterdir()) == ["c.yaml"], name  # nothing written
    assert len(cases) >= 90


Q = ["query", "cost_per_mtok", "-H", "h100-sxm", "-m", "llama-3.1-8b"]
S = ["sensitivity", "-H", "h100-sxm", "-m", "llama-3.1-8b"]
CLI_BAD = {
    "-B": ["-4", "0", "nan", "1..0", "abc", "1..1e12/200000000", "5:1:0", "0.5"],
    "-L": ["-5", "nan", "3 TB/s", "10**10**10", "1e999", "-1k"],
    "-n": ["0", "-8", "2.5", "nan", "inf", "1e400"],
    "--slo": ["-5ms", "0", "3 GB", "abc", "nan"],
    "--price-per-hour": ["-3", "nan", "abc", "inf"],
    "--set": ["bw=-1", "zz=1", "bw", "chips=0.5", "bw_eff=2", "spec_alpha=1.5", "sparsity=0.5",
              "capacity=0", "context=-1", "slo=-1"],
    "--scale": ["bw=0", "bw=-1", "bw=nan", "sparsity=0.001", "chips=0.5", "x=2"],
    "-H": ["nope", "h100-sxmm"], "-m": ["nope", "llama-3.1-8"], "-p": ["fp9", ""],
    "--zzz": ["1"],
}
ONLY = {"-B": "query", "--knob": "sensitivity"}


def _invocations(rng: random.Random, n: int):
    for _ in range(n):
        base = list(rng.choice([Q, S]))
        opt = rng.choice(sorted(CLI_BAD))
        if ONLY.get(opt, base[0]) != base[0]:
            base = list(Q if base[0] == "sensitivity" else S)
        if base[0] == "sensitivity" and opt == "-n" and rng.random() < 0.5:
            base[1:1] = []  # also through the float option type
        argv = base + [opt, rng.choice(CLI_BAD[opt])]
        if rng.random() < 0.3:
            extra = rng.choice(sorted(set(CLI_BAD) - {"--zzz", opt}))
            argv += [extra, rng.choice(CLI_BAD[extra])]
        yield argv
    yield ["query", "nope"]
    yield ["sensitivity", "-H", "h100-sxm", "-m", "llama-3.1-8b", "--knob", "zz"]
    yield ["explore", "--port", "99999"]
    yield ["explore", "--port", "-1"]
    yield ["catalog", "gpus"]
    yield ["plot", "missing.zarr", "cost", "-o", "/no/such/dir/x.png"]


def test_fuzz_command_lines(tmp_path, monkeypatch):
    rng = random.Random(SEED + 1)
    cases = list(_invocations(rng, 80))
    monkeypatch.chdir(tmp_path)
    for argv in cases:
        r = runner.invoke(app, argv)
        assert r.exit_code == 2, (argv, r.output)
        lines = r.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), (argv, r.output)
        assert len(lines[0]) < 1000, argv
    assert os.listdir(tmp_path) == []  # nothing written
    assert len(cases) >= 80


BASE_OBS = yaml.safe_load(textwrap.dedent("""\
    scenarios: {s: {hardware: h100-sxm, model: llama-3.1-8b, chips: 1, knobs: {context: 4k}}}
    unknowns: {u: {knob: batch, bounds: [1, 100]}}
    observations: [{quantity: t_step, value: 0.01, sigma: 0.001}]
    """))
OBS_BAD = {
    ("scenarios", "s", "hardware"): ["nope", 5, {"bw": -1, "flops": 1e15}],
    ("scenarios", "s", "chips"): [0, -1, "x"],
    ("scenarios", "s", "price_per_hour"): [-3],
    ("scenarios", "s", "knobs"): [{"context": -5}, {"nope": 1}, {"slo": "-5ms"},
                                  {"context": "3 TB/s"}, {"bw_eff": 2}],
    ("unknowns", "u", "bounds"): [[0, 100], [5, 1], "x", [-1, 10]],
    ("unknowns", "u", "knob"): ["nope", 3],
    ("observations",): [[], [{"quantity": "nope", "value": 1, "sigma": 1}],
                        [{"quantity": "t_step", "value": 1, "sigma": -1}],
                        [{"quantity": "t_step", "value": 1}],
                        [{"quantity": "t_step", "value": 1, "sigma": 1, "at": "nope"}],
                        [{"quantity": "t_step", "range": [2, 1]}]],
    ("titel",): ["x"], ("scenarios",): [{}, [], "s"], ("unknowns",): [{}],
}


def test_fuzz_observation_files(tmp_path):
    rng = random.Random(SEED + 2)
    n = 0
    for i in range(60):
        f = tmp_path / f"o{i}.yaml"
        if i % 6 == 0:
            f.write_bytes(RAW[(i // 6) % len(RAW)].encode())
        else:
            f.write_text(yaml.safe_dump(_mutate(rng, BASE_OBS, OBS_BAD)))
        r = runner.invoke(app, ["fit", str(f), "--json"])
        assert r.exit_code == 2, (f.read_text(errors="replace")[:300], r.output)
        lines = r.output.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in r.output, r.output
        assert str(f) in lines[0], r.output
        n += 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"o{i}.yaml" for i in range(60))
    assert n == 60

