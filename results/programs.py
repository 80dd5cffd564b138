"""Traced programs of the CLI's single-point answers, cached on disk between runs.

``rooflax sensitivity``/``query``/``estimate`` evaluate a core function at one point: tracing it
(:func:`rooflax.core.interpret.trace`, ≈0.3–0.6 s here) costs more than evaluating it in NumPy
(milliseconds). The trace depends only on the function, its static arguments, the structure and
dtypes of its inputs and the code, so it is kept in ``$ROOFLAX_CACHE_DIR`` (default
``~/.cache/rooflax``) under a key of all of these — a changed source file, jax or NumPy version
is a new key. ``ROOFLAX_NO_CACHE=1`` turns it off; an unreadable entry is traced again.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any


def cache_root() -> Path | None:
    """``$ROOFLAX_CACHE_DIR``, else ``$XDG_CACHE_HOME/rooflax`` or ``~/.cache/rooflax``; None if off."""
    if os.environ.get("ROOFLAX_NO_CACHE"):
        return None
    base = os.environ.get("ROOFLAX_CACHE_DIR")
    if base:
        return Path(base)
    return Path(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")) / "rooflax"


@functools.cache
def _source_digest() -> str:
    """SHA-256 of every module of the package (core, sweeps, results) and the library versions."""
    import jax
    import numpy as np

    import rooflax.core

    root = Path(rooflax.core.__file__).resolve().parent.parent
    h = hashlib.sha256(f"{jax.__version__} {np.__version__}".encode())
    for path in sorted(p for d in ("core", "sweeps", "results") for p in (root / d).glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _key(name: str, static: Any, args: tuple) -> str:
    import jax
    import numpy as np

    leaves, tree = jax.tree.flatten(args)
    avals = [(np.shape(x), str(np.asarray(x).dtype)) for x in leaves]
    text = repr((name, static, str(tree), avals, _source_digest()))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _load(path: Path) -> Any:
    try:
        with path.open("rb") as f:
            return pickle.load(f)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError):
        return None


def _store(path: Path, program: Any) -> None:
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("wb") as f:
            pickle.dump(program, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)  # atomic: a concurrent reader sees the old entry or the new one
    except (OSError, pickle.PicklingError, TypeError):
        tmp.unlink(missing_ok=True)


def evaluate(name: str, fn: Callable[..., Any], *args: Any, static: Any = ()) -> Any:
    """``fn(*args)`` in NumPy through a traced program, taken from the disk cache when there.

    ``name`` and ``static`` must determine ``fn`` (e.g. the outputs and knobs a closure holds).
    """
    from rooflax.core import interpret

    root = cache_root()
    path = None if root is None else root / "programs" / f"{_key(name, static, args)}.pkl"
    program = None if path is None else _load(path)
    if not isinstance(program, interpret.Program):
        program = interpret.trace(fn, *args)
        if path is not None and program.portable:
            _store(path, program)
    return interpret.run(program, *args)
