"""All Zarr I/O of a sweep: the cube template, region writes per block, completion markers.

Layout of a cube (one Zarr v3 store):

* the xarray dataset at the root (dims, coordinates, data variables, attrs), written first as
  a template with ``to_zarr(compute=False)`` — metadata and coordinates, no data chunks;
* one Zarr chunk per block and variable: blocks are written as regions straight into the
  arrays (each block owns whole chunks, so concurrent writers never share a chunk);
* ``_rooflax/done``: a uint8 array over the block grid (one chunk per element), set to 1
  after a block's variables are written — ``--resume`` computes only the zeros;
* root attr ``rooflax_complete`` turns True only once every block is done, in an atomic
  rewrite of the root ``zarr.json`` made after metadata is consolidated (so a complete cube is
  always consolidated). :func:`open_cube` refuses an incomplete cube unless asked.

Safety (issue 12):

* One run owns a store: ``<store>.lock`` beside it (O_EXCL; pid, host, run id) is taken before
  anything is written, and the run id (root attr ``rooflax_run_id``) is checked before every
  block write, marker and completion.
* The template and its markers are built aside (``<store>.rooflax-tmp/cube``, the folder
  flagged as rooflax's by a ``.rooflax-partial`` file) and renamed into place; ``--overwrite`` moves the old cube (proven
  by its attrs and contents) to ``<store>.rooflax-old``, renames the new one in, then deletes
  the old. Symlinks are never followed.
* Missing never looks valid: integer variables carry a ``_FillValue`` outside their codes and
  float ones NaN, so plain ``xarray.open_zarr`` shows unwritten cells as missing.
* ``ROOFLAX_FAULT=<stage>`` (template, markers, swap, consolidation, completion) SIGKILLs the
  process at that stage — for the crash tests only.

Strings (hardware / model labels, names, sources) are stored as variable-length UTF-8
(Zarr v3 ``string``), which plain ``xarray.open_zarr`` reads without rooflax.

Compressor, measured on a real cube block (default config: 24 hardware × 14 models × 64
batch × 32 context, float32, t_step/throughput/cost/kv_share...), this 2-core machine:
see ``COMPRESSION_MEASUREMENT`` below (benchmarks/bench_sweep.py --compressors repeats it).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import signal
import socket
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # annotations only: opening a cube needs no jax (grid builds pytrees)
    from .grid import Plan

COMPRESSION_MEASUREMENT = """
benchmarks/bench_sweep.py --compressors: one real 4M-point block of the 1e8 benchmark cube
(t_step, throughput, cost_per_mtok, kv_share, b_star, binding, cost/Mtok at B*, 3 elasticities;
float32), written through zarr 3.1 on this 2-core machine:
  blosc lz4 + shuffle, clevel 5 : 0.61 GB/s, ratio  6.6x
  zstd level 0 (Zarr default)   : 0.60 GB/s, ratio 16.0x
Same speed here (the write path, not the codec, dominates), zstd stores 2.4x less: zstd.
"""

#: Stages at which ``ROOFLAX_FAULT`` kills the process (crash tests), in the order they occur.
FAULT_STAGES = ("template", "markers", "swap", "consolidation", "completion")
_ROOT_ENTRIES = {"zarr.json", "_rooflax"}
_PARTIAL = ".rooflax-partial"


class IncompleteCubeError(RuntimeError):
    """The cube's sweep did not finish: some blocks were never written."""


class StoreError(RuntimeError):
    """A store that cannot be used for this sweep (exists, other config, not a cube...)."""


class LockedError(StoreError):
    """Another run holds the store's lock (or held it and died: a stale lock)."""


def fault(stage: str) -> None:
    """SIGKILL this process when ``ROOFLAX_FAULT`` names ``stage`` (crash tests only)."""
    if os.environ.get("ROOFLAX_FAULT") == stage:
        os.kill(os.getpid(), signal.SIGKILL)


def compressors():
    import zarr.codecs as zc
    return [zc.ZstdCodec(level=0)]


def fill_value(dtype) -> float | int:
    """Fill of never-written cells: NaN for floats, a value outside every code for integers
    (-1 for signed, the dtype's max for unsigned: codes are small non-negative integers)."""
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return np.nan
    return -1 if dt.kind == "i" else int(np.iinfo(dt).max)


def _dask_empty(shape, chunks, dtype):
    import dask.array as da
    return da.empty(shape, chunks=chunks, dtype=dtype)


def sibling(path: str | Path, suffix: str) -> Path:
    """``<store><suffix>`` in the store's directory (lock, aside template, old cube)."""
    p = Path(path)
    return p.with_name(p.name + suffix)


def read_attrs(path: str | Path) -> dict[str, Any] | None:
    """Root attrs of an existing Zarr store, or None when ``path`` holds no Zarr group."""
    p = Path(path)
    meta = p / "zarr.json"
    if not meta.is_file():
        return None
    try:
        return json.loads(meta.read_text()).get("attributes", {})
    except (OSError, ValueError):
        return None


def _atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` by temp file + fsync + rename (readers see old or new)."""
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def set_root_attrs(path: str | Path, **attrs: Any) -> None:
    """Update root attrs in ONE atomic rewrite of the root ``zarr.json``."""
    meta = Path(path) / "zarr.json"
    doc = json.loads(meta.read_text())
    doc.setdefault("attributes", {}).update(attrs)
    _atomic_write(meta, json.dumps(doc, indent=2))


def cube_problem(path: str | Path) -> str | None:
    """Why ``path`` is not a rooflax cube that rooflax may replace (None: it is one).

    Proof: a real directory (no symlink) whose root ``zarr.json`` carries rooflax's attrs and
    which holds nothing but Zarr metadata, ``_rooflax`` and array folders (each with a
    ``zarr.json``) — a README, sources or any other file means it is someone else's.
    """
    p = Path(path)
    if p.is_symlink():
        return "is a symbolic link (rooflax never follows one)"
    if not p.is_dir():
        return "is a file, not a cube directory"
    attrs = read_attrs(p)
    if attrs is None:
        return "is not a Zarr store, let alone a rooflax cube (no readable zarr.json)"
    if not {"rooflax_config", "rooflax_dims", "rooflax_version"} <= set(attrs):
        return "is not a rooflax cube (its zarr.json has no rooflax attrs)"
    for e in p.iterdir():
        if e.name in _ROOT_ENTRIES or e.name.startswith("zarr.json."):
            continue
        if e.is_symlink() or not e.is_dir() or not (e / "zarr.json").is_file():
            return f"holds {e.name!r}, which is not part of a rooflax cube"
    return None


def remove_ours(path: str | Path) -> None:
    """Delete a leftover of rooflax's own (aside template or old cube); anything else stays."""
    p = Path(path)
    if p.is_symlink() or not p.exists():
        return
    if p.is_dir() and ((p / _PARTIAL).is_file() or cube_problem(p) is None):
        shutil.rmtree(p)


# --- one run owns a store ----------------------------------------------------------------

def lock_path(path: str | Path) -> Path:
    return sibling(path, ".lock")


def _pid_alive(pid: int) -> bool:
    """True when ``pid`` runs on this host (a zombie counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def read_lock(path: str | Path) -> dict[str, Any] | None:
    """The holder recorded in the store's lock, {} for an empty/garbled one, None for no lock."""
    lp = lock_path(path)
    try:
        text = lp.read_text()
    except FileNotFoundError:
        return None
    try:
        info = json.loads(text)
        return info if isinstance(info, dict) and "pid" in info else {}
    except ValueError:
        return {}


def lock_state(info: dict[str, Any]) -> str:
    """'live' (its pid runs here), 'stale' (dead pid here, or an empty lock), 'foreign'
    (held from another host: cannot be checked)."""
    if not info:
        return "stale"
    if info.get("host") != socket.gethostname():
        return "foreign"
    return "live" if _pid_alive(int(info["pid"])) else "stale"


def _holder(info: dict[str, Any]) -> str:
    if not info:
        return "an empty lock file (a run died while taking it)"
    return (f"run {info.get('run_id')} (pid {info.get('pid')} on {info.get('host')}, "
            f"since {info.get('started')})")


def acquire_lock(path: str | Path, run_id: str, *, break_lock: bool = False,
                 break_stale: bool = False) -> str | None:
    """Take ``<store>.lock`` (O_EXCL) for this run, or raise :class:`LockedError` naming the
    holder. ``break_lock`` removes a stale or foreign lock first, never a live one;
    ``break_stale`` (``--resume``) only a provably stale one (dead pid on this host).
    Returns a line reporting a broken lock, or None."""
    notice = None
    lp = lock_path(path)
    lp.parent.mkdir(parents=True, exist_ok=True)
    info = {"pid": os.getpid(), "host": socket.gethostname(), "run_id": run_id,
            "started": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")}
    for _ in range(3):
        try:
            fd = os.open(lp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            held = read_lock(path)
            if held is None:
                continue
            state = lock_state(held)
            if (break_lock and state != "live") or (break_stale and state == "stale"):
                notice = f"broke the {state} lock of {_holder(held)}"
                lp.unlink(missing_ok=True)
                continue
            if state == "live":
                raise LockedError(f"locked by {_holder(held)}, which is still running; wait for it "
                                  f"or stop it (lock {lp})") from None
            how = ("its pid is dead on this host" if state == "stale" else
                   "it was taken on another host; make sure that run is gone")
            raise LockedError(f"stale lock {lp} left by {_holder(held)}: {how}; rerun with "
                              f"--resume (finish it) or --break-lock to take the store over") from None
        with os.fdopen(fd, "w") as f:
            json.dump(info, f)
            f.flush()
            os.fsync(f.fileno())
        return notice
    raise LockedError(f"could not take lock {lp} (it keeps changing hands)")


def release_lock(path: str | Path, run_id: str) -> None:
    """Remove the lock if this run still holds it."""
    held = read_lock(path)
    if held and held.get("run_id") == run_id:
        lock_path(path).unlink(missing_ok=True)


def check_owner(path: str | Path, run_id: str) -> None:
    """Raise :class:`StoreError` unless the cube at ``path`` still belongs to ``run_id``."""
    attrs = read_attrs(path) or {}
    owner = attrs.get("rooflax_run_id")
    if owner != run_id:
        raise StoreError(f"store {str(path)!r} was taken over by run {owner} (this is run "
                         f"{run_id}); stopping without writing")


# --- template, blocks, completion ----------------------------------------------------------

def write_template(plan: Plan, path: str | Path, version: str, run_id: str) -> None:
    """Write metadata and coordinates (no data) into ``path``."""
    import xarray as xr

    from rooflax.core import quantities as Q  # the sweep has jax loaded already

    dims = plan.dims
    coords: dict[str, Any] = {}
    for d in dims:
        c = plan.coords[d]
        attrs = Q.attrs(d)
        if np.asarray(c).dtype.kind in "UO":  # fixed-width: reads back as <U, which xarray's
            c = np.asarray(c, dtype=str)      # idxmin/idxmax can fill (StringDType cannot)
        coords[d] = xr.Variable((d,), c, attrs)
    for name, (cd, arr, attrs) in plan.extra_coords.items():
        if name in coords:
            continue
        a = np.asarray(arr)
        if a.dtype.kind in "UO":
            a = a.astype(object)
        attrs = {"units": attrs.get("units", "1"), "long_name": attrs.get("long_name", name)}
        coords[name] = xr.Variable(cd, a, attrs)
    data_vars = {}
    encoding = {}
    for name, v in plan.variables.items():
        shape = tuple(len(plan.coords[d]) for d in v.dims)
        chunks = tuple(plan.chunks[d] for d in v.dims)
        data_vars[name] = xr.Variable(v.dims, _dask_empty(shape, chunks, v.dtype), dict(v.attrs))
        fv = fill_value(v.dtype)
        encoding[name] = {"chunks": chunks, "compressors": compressors(), "fill_value": fv}
        if np.dtype(v.dtype).kind != "f":
            encoding[name]["_FillValue"] = fv
    ds = xr.Dataset(data_vars, coords=coords, attrs={
        "rooflax_config": plan.config_json,
        "rooflax_version": version,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "rooflax_complete": False,
        "rooflax_run_id": run_id,
        "rooflax_dims": list(dims),
        "rooflax_chunks": json.dumps(plan.chunks),
        "rooflax_block_grid": list(plan.block_grid),
        "rooflax_price": plan.price,
    })
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.to_zarr(str(path), mode="w", compute=False, zarr_format=3, consolidated=False,
                   encoding=encoding)


def write_markers(plan: Plan, path: str | Path) -> None:
    """(Re)create ``_rooflax/done``: all blocks not written."""
    import zarr
    g = zarr.open_group(str(path), mode="a", zarr_format=3)
    sub = g.require_group("_rooflax")
    sub.create_array("done", shape=plan.block_grid, chunks=(1,) * len(plan.block_grid),
                     dtype="uint8", fill_value=0, compressors=None, overwrite=True)


def create(plan: Plan, path: str | Path, version: str, run_id: str) -> None:
    """Build template + markers aside, then rename into place; an existing cube at ``path``
    (the caller checked :func:`cube_problem`) is moved aside first and deleted after."""
    p = Path(path)
    tmp, old = sibling(p, ".rooflax-tmp"), sibling(p, ".rooflax-old")
    for q in (tmp, old):
        remove_ours(q)
        if q.exists() or q.is_symlink():
            raise StoreError(f"{str(q)!r} is in the way and is not rooflax's; move it away")
    tmp.mkdir(parents=True)
    (tmp / _PARTIAL).touch()  # tmp is ours: a folder with this flag and the new cube in it
    new = tmp / "cube"
    write_template(plan, new, version, run_id)
    fault("template")
    write_markers(plan, new)
    fault("markers")
    if p.is_dir() and any(p.iterdir()):
        os.rename(p, old)
        fault("swap")
        os.rename(new, p)
        shutil.rmtree(old)
    else:
        os.replace(new, p)
    shutil.rmtree(tmp)


def _arrays(plan: Plan, path: str | Path, run_id: str) -> dict[str, Any]:
    """Open arrays of ``path`` for this run, kept in ``plan.handles`` (keyed by run too: a plan
    reused for another run never writes through handles of a cube that run has replaced)."""
    import zarr
    key = f"{Path(path).absolute()}#{run_id}"
    if key not in plan.handles:
        g = zarr.open_group(str(Path(path).absolute()), mode="r+", zarr_format=3,
                            use_consolidated=False)
        plan.handles[key] = {"group": g, "arrays": {}, "done": g["_rooflax/done"]}
    return plan.handles[key]


def write_block(path: str | Path, plan: Plan, index: tuple[int, ...],
                values: dict[str, np.ndarray], sl: dict[str, slice], run_id: str) -> None:
    """Write one block's variables into their regions, then mark the block done — each only
    while the cube still belongs to ``run_id``."""
    check_owner(path, run_id)
    h = _arrays(plan, path, run_id)
    for name, arr in values.items():
        a = h["arrays"].get(name)
        if a is None:
            a = h["arrays"][name] = h["group"][name]
        region = tuple(sl[d] for d in plan.variables[name].dims)
        a[region] = arr
    check_owner(path, run_id)
    h["done"][tuple(slice(i, i + 1) for i in index)] = np.ones((1,) * len(index), np.uint8)


def has_markers(path: str | Path) -> bool:
    return (Path(path) / "_rooflax" / "done" / "zarr.json").is_file()


def done_mask(path: str | Path) -> np.ndarray:
    import zarr
    g = zarr.open_group(str(path), mode="r", zarr_format=3, use_consolidated=False)
    return np.asarray(g["_rooflax/done"][...]).astype(bool)


def is_consolidated(path: str | Path) -> bool:
    try:
        doc = json.loads((Path(path) / "zarr.json").read_text())
    except (OSError, ValueError):
        return False
    return bool(doc.get("consolidated_metadata"))


def is_complete(path: str | Path) -> bool:
    """Complete = flag set AND metadata consolidated (a cube killed in between is not)."""
    return bool((read_attrs(path) or {}).get("rooflax_complete")) and is_consolidated(path)


def mark_complete(path: str | Path, run_id: str) -> None:
    """Consolidate metadata, then set ``rooflax_complete`` in one atomic root rewrite."""
    import zarr
    check_owner(path, run_id)
    if not done_mask(path).all():
        raise IncompleteCubeError(f"{path}: cannot mark complete, blocks missing")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        zarr.consolidate_metadata(str(path), zarr_format=3)
    fault("consolidation")
    check_owner(path, run_id)
    set_root_attrs(path, rooflax_complete=True)
    fault("completion")


def missing_blocks(path: str | Path) -> np.ndarray:
    """Flat (C-order) indices of the blocks not written yet."""
    return np.flatnonzero(~done_mask(path))


def _int_vars(path: Path) -> dict[str, bool]:
    out = {}
    for e in path.iterdir():
        try:
            meta = json.loads((e / "zarr.json").read_text())
        except (OSError, ValueError, NotADirectoryError):
            continue
        dtype = meta.get("data_type")  # a name, or a mapping for parametrized (string) types
        if meta.get("node_type") == "array" and isinstance(dtype, str) \
                and dtype.startswith(("int", "uint")):
            out[e.name] = False
    return out


def open_cube(path: str | Path, *, allow_incomplete: bool = False):
    """Open a result cube as an ``xarray.Dataset``.

    Raises :class:`IncompleteCubeError` (naming the missing blocks) when the sweep that
    writes it has not finished, unless ``allow_incomplete=True`` (never-written cells are
    then NaN). A complete cube keeps its integer codes as integers.
    """
    import xarray as xr
    p = Path(path)
    attrs = read_attrs(p)
    if attrs is None or "rooflax_config" not in attrs:
        raise FileNotFoundError(f"{path}: not a rooflax cube (no Zarr group with rooflax attrs)")
    if not is_complete(p):
        if not allow_incomplete:
            miss = missing_blocks(p) if has_markers(p) else None
            if miss is None:
                raise IncompleteCubeError(f"{path}: incomplete cube (no block markers); re-run "
                                          f"the sweep with --resume")
            if len(miss) == 0:
                raise IncompleteCubeError(f"{path}: every block is written but the cube was not "
                                          f"marked complete; re-run the sweep with --resume")
            grid = tuple(attrs.get("rooflax_block_grid", ()))
            shown = ", ".join(str(tuple(int(i) for i in np.unravel_index(m, grid)))
                              for m in miss[:10]) + (" ..." if len(miss) > 10 else "")
            raise IncompleteCubeError(
                f"{path}: incomplete cube, {len(miss)} block(s) not written: {shown}; "
                f"re-run the sweep with --resume")
        return xr.open_zarr(str(p), consolidated=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return xr.open_zarr(str(p), consolidated=True, mask_and_scale=_int_vars(p) or None)
