"""All Zarr I/O of a sweep: the cube template, region writes per block, completion markers.

Layout of a cube (one Zarr v3 store):

* the xarray dataset at the root (dims, coordinates, data variables, attrs), written first as
  a template with ``to_zarr(compute=False)`` — metadata and coordinates, no data chunks;
* one Zarr chunk per block and variable: blocks are written as regions straight into the
  arrays (each block owns whole chunks, so concurrent writers never share a chunk);
* ``_rooflax/done``: a uint8 array over the block grid (one chunk per element), set to 1
  after a block's variables are written — ``--resume`` computes only the zeros;
* root attr ``rooflax_complete`` turns True (and metadata is consolidated) only once every
  block is done. :func:`open_cube` refuses an incomplete cube unless asked.

Strings (hardware / model labels, names, sources) are stored as variable-length UTF-8
(Zarr v3 ``string``), which plain ``xarray.open_zarr`` reads without rooflax.

Compressor, measured on a real cube block (default config: 24 hardware × 14 models × 64
batch × 32 context, float32, t_step/throughput/cost/kv_share...), this 2-core machine:
see ``COMPRESSION_MEASUREMENT`` below (benchmarks/bench_sweep.py --compressors repeats it).
"""

from __future__ import annotations

import datetime as _dt
import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .grid import Plan

COMPRESSION_MEASUREMENT = """
benchmarks/bench_sweep.py --compressors: one real 4M-point block of the 1e8 benchmark cube
(t_step, throughput, cost_per_mtok, kv_share, b_star, binding, cost/Mtok at B*, 3 elasticities;
float32), written through zarr 3.1 on this 2-core machine:
  blosc lz4 + shuffle, clevel 5 : 0.61 GB/s, ratio  6.6x
  zstd level 0 (Zarr default)   : 0.60 GB/s, ratio 16.0x
Same speed here (the write path, not the codec, dominates), zstd stores 2.4x less: zstd.
"""

_OPEN: dict[str, dict[str, Any]] = {}


class IncompleteCubeError(RuntimeError):
    """The cube's sweep did not finish: some blocks were never written."""


class StoreError(RuntimeError):
    """A store that cannot be used for this sweep (exists, other config, not a cube...)."""


def compressors():
    import zarr.codecs as zc
    return [zc.ZstdCodec(level=0)]


def _dask_empty(shape, chunks, dtype):
    import dask.array as da
    return da.empty(shape, chunks=chunks, dtype=dtype)


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


def remove(path: str | Path) -> None:
    p = Path(path)
    if p.is_dir():
        shutil.rmtree(p)
    _OPEN.pop(str(p.absolute()), None)


def write_template(plan: Plan, path: str | Path, version: str) -> None:
    """Write metadata, coordinates and the block markers (no data)."""
    import xarray as xr
    import zarr

    dims = plan.dims
    coords: dict[str, Any] = {}
    for d in dims:
        c = plan.coords[d]
        attrs = {"units": {"batch": "sequences", "context": "tokens", "bw": "B/s",
                           "c_over_bw": "MAC/B", "sparsity": "1", "chips": "chips", "slo": "s"}.get(d, "1"),
                 "long_name": d}
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
        attrs = dict(v.attrs)
        data_vars[name] = xr.Variable(v.dims, _dask_empty(shape, chunks, v.dtype), attrs)
        enc: dict[str, Any] = {"chunks": chunks, "compressors": compressors()}
        if np.dtype(v.dtype).kind == "f":
            enc["fill_value"] = np.nan
        else:
            enc["fill_value"] = 0
            enc["_FillValue"] = None
        encoding[name] = enc
    ds = xr.Dataset(data_vars, coords=coords, attrs={
        "rooflax_config": plan.config_json,
        "rooflax_version": version,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "rooflax_complete": False,
        "rooflax_dims": list(dims),
        "rooflax_chunks": json.dumps(plan.chunks),
        "rooflax_block_grid": list(plan.block_grid),
        "rooflax_price": plan.price,
    })
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.to_zarr(str(path), mode="w", compute=False, zarr_format=3, consolidated=False,
                   encoding=encoding)
        g = zarr.open_group(str(path), mode="a", zarr_format=3)
        sub = g.require_group("_rooflax")
        sub.create_array("done", shape=plan.block_grid, chunks=(1,) * len(plan.block_grid),
                         dtype="uint8", fill_value=0, compressors=None, overwrite=True)


def _arrays(path: str | Path) -> dict[str, Any]:
    import zarr
    key = str(Path(path).absolute())
    if key not in _OPEN:
        g = zarr.open_group(key, mode="r+", zarr_format=3)
        _OPEN[key] = {"group": g, "arrays": {}, "done": g["_rooflax/done"]}
    return _OPEN[key]


def write_block(path: str | Path, plan: Plan, index: tuple[int, ...],
                values: dict[str, np.ndarray], sl: dict[str, slice]) -> None:
    """Write one block's variables into their regions, then mark the block done."""
    h = _arrays(path)
    for name, arr in values.items():
        a = h["arrays"].get(name)
        if a is None:
            a = h["arrays"][name] = h["group"][name]
        region = tuple(sl[d] for d in plan.variables[name].dims)
        a[region] = arr
    h["done"][tuple(slice(i, i + 1) for i in index)] = np.ones((1,) * len(index), np.uint8)


def done_mask(path: str | Path) -> np.ndarray:
    import zarr
    g = zarr.open_group(str(path), mode="r", zarr_format=3)
    return np.asarray(g["_rooflax/done"][...]).astype(bool)


def mark_complete(path: str | Path) -> None:
    import zarr
    g = zarr.open_group(str(path), mode="r+", zarr_format=3)
    if not done_mask(path).all():
        raise IncompleteCubeError(f"{path}: cannot mark complete, blocks missing")
    g.attrs["rooflax_complete"] = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        zarr.consolidate_metadata(str(path), zarr_format=3)
    _OPEN.pop(str(Path(path).absolute()), None)


def missing_blocks(path: str | Path) -> list[tuple[int, ...]]:
    mask = done_mask(path)
    return [tuple(int(i) for i in ix) for ix in np.argwhere(~mask)]


def open_cube(path: str | Path, *, allow_incomplete: bool = False):
    """Open a result cube as an ``xarray.Dataset``.

    Raises :class:`IncompleteCubeError` (naming the missing blocks) when the sweep that
    writes it has not finished, unless ``allow_incomplete=True``.
    """
    import xarray as xr
    attrs = read_attrs(path)
    if attrs is None or "rooflax_config" not in attrs:
        raise FileNotFoundError(f"{path}: not a rooflax cube (no Zarr group with rooflax attrs)")
    if not attrs.get("rooflax_complete", False):
        if not allow_incomplete:
            miss = missing_blocks(path)
            shown = ", ".join(str(m) for m in miss[:10]) + (" ..." if len(miss) > 10 else "")
            raise IncompleteCubeError(
                f"{path}: incomplete cube, {len(miss)} block(s) not written: {shown}; "
                f"re-run the sweep with --resume")
        return xr.open_zarr(str(path), consolidated=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return xr.open_zarr(str(path), consolidated=True)
