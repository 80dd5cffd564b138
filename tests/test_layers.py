"""Layers (SPEC "Layout"): imports flow results → sweeps → core, and no import cycle.

Two checks: each layer imported in a fresh interpreter, in dependency order, loads no module of
a higher layer; and the static import graph (top-level and function-level imports, read with
``ast``) of core and sweeps has no cycle — a lazy import inside a function still counts.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = {"core": "rooflax.core", "sweeps": "rooflax.sweeps", "results": "rooflax.results"}


def _modules(folder: str) -> dict[str, Path]:
    pkg = LAYERS[folder]
    return {pkg if f.stem == "__init__" else f"{pkg}.{f.stem}": f
            for f in sorted((ROOT / folder).glob("*.py"))}


def _imports(name: str, path: Path) -> set[str]:
    """Module names ``path`` imports anywhere in its body (relative imports resolved)."""
    pkg = name if path.stem == "__init__" else name.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            out |= {base} | {f"{base}.{a.name}" for a in node.names}
    return out


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (a list of module names), or None (depth-first search)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state and (found := visit(d)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("folder", ["core", "sweeps"])
def test_no_import_cycle(folder):
    mods = _modules(folder)
    pkg = LAYERS[folder]
    # a submodule naming its own package (``from rooflax.core import x``) is not an edge back
    graph = {m: {i for i in _imports(m, f) if i in mods and i not in (m, pkg)} for m, f in mods.items()}
    assert _cycle(graph) is None


@pytest.mark.parametrize("folder", ["core", "sweeps", "results"])
def test_no_module_imports_a_higher_layer_statically(folder):
    higher = list(LAYERS.values())[list(LAYERS).index(folder) + 1:]
    for name, path in _modules(folder).items():
        up = sorted(i for i in _imports(name, path) if any(i.startswith(h) for h in higher))
        assert not up, f"{name} imports {up}"


def test_each_layer_in_a_fresh_interpreter_loads_no_higher_layer():
    for i, folder in enumerate(LAYERS):
        higher = list(LAYERS.values())[i + 1:]
        code = ("import importlib, sys\n"
                f"for m in {sorted(_modules(folder))!r}: importlib.import_module(m)\n"
                f"print(sorted(m for m in sys.modules if m.startswith({tuple(higher)!r})))\n")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        assert out.stdout.strip() == "[]", f"importing {folder} loads {out.stdout.strip()}"




# --------------------------------------------------------------------------- small functions
#: Longest function allowed in core/, sweeps/ and results/ (house rule; issue 9), in lines from
#: ``def`` to the last line of the body, decorators not counted.
MAX_FUNCTION_LINES = 80
#: Files still being split, by whom: remove the entry when its split lands (none now).
NOT_YET: dict[str, str] = {}


def _long_functions(source: str, limit: int) -> list[tuple[str, int, int]]:
    """(name, first line, length) of every function or method of ``source`` over ``limit``."""
    return [(n.name, n.lineno, n.end_lineno - n.lineno + 1) for n in ast.walk(ast.parse(source))
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
            and n.end_lineno - n.lineno + 1 > limit]


def test_long_function_finder_counts_def_to_last_line():
    src = "def f():\n    x = 1\n    return x\n\n\nclass A:\n    async def g(self):\n" \
          + "        y = 0\n" * 5 + "        return y\n"
    assert _long_functions(src, 2) == [("f", 1, 3), ("g", 7, 7)]
    assert _long_functions(src, 7) == []


def test_no_function_over_80_lines():
    long = [f"{f.relative_to(ROOT)}:{line} {name} ({n} lines)"
            for folder in LAYERS for f in sorted((ROOT / folder).rglob("*.py"))
            if str(f.relative_to(ROOT)) not in NOT_YET
            for name, line, n in _long_functions(f.read_text(), MAX_FUNCTION_LINES)]
    assert not long, "split these: " + "; ".join(long)


# --------------------------------------------------------------------------- no global state
def _fresh(code: str, stdin: bytes = b"") -> list[str]:
    """stdout lines of ``code`` run in a fresh interpreter (no conftest: float64 left as JAX
    starts it, as in a user's script or a Dask worker)."""
    env = {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}
    out = subprocess.run([sys.executable, "-c", code], input=stdin, capture_output=True,
                         check=True, env={**env, "JAX_PLATFORMS": "cpu"})
    return out.stdout.decode().strip().splitlines()


def test_importing_rooflax_leaves_float64_off_until_enable_x64():
    out = _fresh("import rooflax.core, rooflax.sweeps.run, rooflax.results.cli, jax\n"
                 "print(jax.config.jax_enable_x64)\n"
                 "rooflax.core.enable_x64(); rooflax.core.enable_x64()\n"
                 "print(jax.config.jax_enable_x64, jax.numpy.ones(2, 'float64').dtype)\n")
    assert out == ["False", "True float64"]


def test_a_block_task_turns_float64_on_in_its_own_process(tmp_path):
    """A Dask worker is a fresh process: the block task itself turns float64 on, and its values
    are this (float64) process's to the last bit (float32 would differ from the 8th digit)."""
    import pickle

    import yaml

    from rooflax.sweeps import compute, grid
    from rooflax.sweeps import config as C

    cfg = {"axes": {"hardware": ["h200"], "model": ["llama-3.1-70b"], "chips": 8,
                    "batch": [1, 3, 77], "context": [1000, 33333]},
           "outputs": {"values": ["t_step"]},
           "store": str(tmp_path / "unused.zarr"), "dtype": "float64"}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    plan = grid.build(C.load(tmp_path / "c.yaml"))
    want = compute.compute_block(plan, plan.block_index(0))[0]["t_step"]
    code = ("import pickle, sys, jax\n"
            "from rooflax.sweeps import compute\n"
            "plan = pickle.loads(sys.stdin.buffer.read())\n"
            "print(jax.config.jax_enable_x64)\n"
            "v = compute.compute_block(plan, plan.block_index(0))[0]['t_step']\n"
            "print(jax.config.jax_enable_x64, v.dtype, repr(v.tolist()))\n")
    out = _fresh(code, pickle.dumps(plan))
    assert out == ["False", f"True float64 {want.tolist()!r}"]


def test_the_cli_computes_in_float64_and_version_imports_no_jax():
    """The CLI's main guard turns float64 on (through JAX_ENABLE_X64, read when a command first
    imports jax): a query in a fresh process equals this float64 process's value to the last
    bit; ``--version`` runs without importing jax at all."""
    import json

    from rooflax import core as rc
    from rooflax.results.point import build_point

    pt = build_point("h200", "llama-3.1-70b", chips=8, context=33333.0)
    want = float(rc.b_star(pt.hw, pt.model, pt.wl))
    out = _fresh("import sys\nfrom rooflax.results.cli import main\n"
                 "sys.argv = ['rooflax', 'query', 'b_star', '-H', 'h200', '-n', '8', '-m',"
                 " 'llama-3.1-70b', '-L', '33333', '--json']\n"
                 "try:\n    main()\nexcept SystemExit:\n    pass\n")
    assert json.loads("\n".join(out))["rows"][0]["b_star"] == want
    out = _fresh("import sys\nfrom rooflax.results.cli import main\nsys.argv = ['rooflax', '--version']\n"
                 "try:\n    main()\nexcept SystemExit:\n    pass\nprint('jax' in sys.modules)\n")
    assert out[-1] == "False"
