"""Open saved result cubes and select points in them.

``select(ds, {"hardware": "H200", "context": "32k"})``: names match
case-insensitively (and through catalog aliases: ``dgx-h200``, ``dsv3``); numeric
dimensions take the nearest value; a comma list keeps several values. A typo
raises :class:`~rooflax.results.point.UserError` with "did you mean …".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from rooflax.sweeps import units
from rooflax.sweeps.inputs import suggest

from .point import UserError

#: Dimensions whose values are token counts (read with binary suffixes: 32k = 32768).
TOKEN_DIMS = {"context", "l", "window"}
_ALIAS_RESOLVERS = {"hardware": "resolve_hardware", "model": "resolve_model"}


def open_cube(path: str):
    """Open a result cube: ``rooflax.sweeps.store.open_cube`` when present, else plain xarray."""
    import os

    if not os.path.exists(path):
        raise UserError(f"no cube at {path!r}")
    try:
        from rooflax.sweeps.store import open_cube as _open  # type: ignore[import-not-found]
    except ImportError:
        _open = None
    if _open is not None:
        try:
            return _open(path)
        except Exception as e:  # IncompleteCubeError and friends: the user's problem
            if type(e).__name__ in ("IncompleteCubeError",) or isinstance(e, (ValueError, OSError)):
                raise UserError(f"cannot open cube {path!r}: {e}") from None
            raise
    import xarray as xr

    try:
        return xr.open_zarr(path)
    except Exception as e:
        raise UserError(f"cannot open cube {path!r}: {e}") from None


def _match_label(dim: str, labels: list[str], value: str) -> str:
    low = {str(x).lower(): str(x) for x in labels}
    v = value.strip()
    if v.lower() in low:
        return low[v.lower()]
    resolver = _ALIAS_RESOLVERS.get(dim)
    if resolver is not None:
        try:
            from rooflax.sweeps import catalogs

            key = getattr(catalogs, resolver)(v)
            if key.lower() in low:
                return low[key.lower()]
        except (ImportError, ValueError):
            pass
    raise UserError(f"{dim}={value!r} is not in the cube{suggest(v.lower(), low)}; "
                    f"values: {', '.join(map(str, labels))}")


def _parse_numeric(dim: str, text: str) -> list[float]:
    from rooflax.core.quantities import DOMAINS

    one = units.tokens if dim in TOKEN_DIMS else units.number
    if dim in DOMAINS:  # the dim's one domain: --sel context=-1 is an error, not "nearest"
        def one(t, base=one):
            return units.knob(dim, base(t))
    try:
        return units.values(text, one)
    except units.ParseError as e:
        raise UserError(f"--sel {dim}: {e}") from None


def selectors(ds, sel: Mapping[str, Any]) -> dict[str, Any]:
    """Labels to pass to ``ds.sel`` for a user's ``{dim: text}`` (scalars stay scalars)."""
    import numpy as np

    out: dict[str, Any] = {}
    for dim, value in sel.items():
        if dim not in ds.dims:
            raise UserError(f"--sel {dim}: no such dimension{suggest(dim, list(ds.dims))}; "
                            f"dimensions: {', '.join(map(str, ds.dims))}")
        labels = ds[dim].values
        if isinstance(value, (list, tuple)):
            parts = [str(x) for x in value]
        elif isinstance(value, str) and labels.dtype.kind in "OUST":
            parts = [p for p in value.split(",") if p.strip()]
        else:
            parts = None
        if labels.dtype.kind in "OUST":
            chosen = [_match_label(dim, [str(x) for x in labels], p) for p in parts or [str(value)]]
        else:
            nums = ([units.number(x) if not isinstance(x, str) else _parse_numeric(dim, x)[0]
                     for x in value] if isinstance(value, (list, tuple))
                    else (_parse_numeric(dim, value) if isinstance(value, str) else [float(value)]))
            idx = [int(np.nanargmin(np.abs(labels.astype(float) - x))) for x in nums]
            chosen = [labels[i].item() for i in idx]
        scalar = not isinstance(value, (list, tuple)) and len(chosen) == 1 and not (
            isinstance(value, str) and "," in value)
        out[dim] = chosen[0] if scalar else list(dict.fromkeys(chosen))
    return out


def select(ds, sel: Mapping[str, Any]):
    """``ds.sel`` with the matching rules above."""
    return ds.sel(selectors(ds, sel))


def point_report(ds, sel: Mapping[str, Any], *, path: str, knobs=None) -> dict[str, Any]:
    """The sensitivity report (see :mod:`rooflax.results.report`) of one point of a cube."""
    import numpy as np

    from rooflax.core.specs import SECONDS_PER_HOUR

    from . import report
    from .point import DEFAULT_KNOBS

    sub = select(ds, sel)
    if "batch" in sub.dims:
        sub = sub.isel(batch=0)  # sensitivity variables have no batch dimension
    left = {d: n for d, n in sub.sizes.items() if n > 1}
    if left:
        raise UserError("the selection is not one point; add --sel for: "
                        + ", ".join(f"{d} ({n} values)" for d, n in left.items()))
    sub = sub.squeeze(drop=False)

    def val(name: str) -> float:
        if name not in sub:
            return float("nan")
        return float(np.asarray(sub[name].values).reshape(-1)[0])

    outputs = report.OUTPUTS
    have = {name.split("__")[2] for name in sub.data_vars if name.startswith("elasticity__")}
    if not have:
        raise UserError("this cube holds no sensitivities (variables elasticity__*); "
                        "re-run its sweep with sensitivities on, or query the catalog point")
    # asked-for knobs the cube lacks are reported as "not stored in this cube"
    knobs = list(knobs) if knobs else [k for k in DEFAULT_KNOBS if k in have] or sorted(have)
    coords = {}
    for name, c in sub.coords.items():
        v = np.asarray(c.values).reshape(-1)
        if v.size == 1:
            x = v[0].item() if hasattr(v[0], "item") else v[0]
            coords[name] = x if isinstance(x, (str, int, float)) else str(x)
    params = {}
    for k, c in (("bw", "bw"), ("c_over_bw", "c_over_bw"), ("capacity", "capacity"),
                 ("chips", "chips"), ("n_total", "n_total"), ("sparsity", "sparsity"),
                 ("kv_bytes_per_token", "kv_bytes_per_token"),
                 ("bytes_per_weight", "bytes_per_weight"), ("context", "context"),
                 ("slo", "slo")):
        if c in coords and isinstance(coords[c], (int, float)):
            params[k] = float(coords[c])
    if "price_per_hour" in coords:
        params["price"] = float(coords["price_per_hour"]) / SECONDS_PER_HOUR
    params.setdefault("chips", 1.0)
    params.setdefault("context", 0.0)
    for k in ("bw", "c_over_bw", "capacity", "n_total", "sparsity", "kv_bytes_per_token",
              "bytes_per_weight", "price"):
        params.setdefault(k, float("nan"))
    inputs = {**coords, "hardware": coords.get("hardware", coords.get("hardware_name")),
              "model": coords.get("model")}
    missing = {(o, k) for o in outputs for k in knobs if f"elasticity__{o}__{k}" not in sub}
    binding = val("binding")
    return report.from_values(
        source=f"cube:{path}",
        inputs=inputs,
        parameters=params,
        binding=None if math.isnan(binding) else int(binding),
        missing=missing,
        reason=int(val("sensitivity_reason")) if "sensitivity_reason" in sub else 0,
        values={**{o: val(o) for o in outputs},
                "cost_per_mtok_at_b_star": val("cost_per_mtok_at_b_star")},
        partial={o: {k: val(f"partial__{o}__{k}") for k in knobs} for o in outputs},
        elasticity={o: {k: val(f"elasticity__{o}__{k}") for k in knobs} for o in outputs},
    )
