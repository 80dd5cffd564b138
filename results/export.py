"""A saved cube as one tidy long table (CSV or Parquet) for users who live in pandas.

One row per point and variable: the cube's dimensions as columns (a variable without a
dimension has an empty cell there: ``NaN`` in numbers, ``""`` in labels), then ``variable``,
``value`` and ``units``. The units and long names of every column and variable, and the
cube's attributes (rooflax version, sweep config), go to a sidecar ``FILE.units.json``. NaN
(no price, does not fit) stays NaN: ``NaN`` in CSV, a float NaN in Parquet. Files are written
to a temporary name and renamed, so nothing is half-written.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

from .point import UserError

FORMATS = (".csv", ".parquet")


def table(ds, variables: Sequence[str] | None = None):
    """The long table (``pandas.DataFrame``) of ``variables`` (default: every data variable)."""
    import pandas as pd

    names = list(variables) if variables else list(ds.data_vars)
    missing = [v for v in names if v not in ds.data_vars]
    if missing:
        raise UserError(f"--var: {', '.join(missing)} not in the cube; variables: "
                        f"{', '.join(ds.data_vars)}")
    dims = [d for d in ds.attrs.get("rooflax_dims", []) if d in ds.dims]
    dims += [d for d in ds.dims if d not in dims]
    parts = []
    for v in names:
        da = ds[v]
        frame = da.drop_vars([c for c in da.coords if c not in da.dims]).to_dataframe(
            name="value").reset_index() if da.dims else pd.DataFrame({"value": [da.values.item()]})
        frame["value"] = frame["value"].astype("float64")
        frame.insert(len(frame.columns) - 1, "variable", v)
        frame["units"] = str(da.attrs.get("units", ""))
        parts.append(frame)
    out = pd.concat(parts, ignore_index=True, sort=False)
    for d in dims:
        if d not in out:
            out[d] = float("nan")
        elif out[d].dtype.kind in "OUT" or str(out[d].dtype).startswith("string"):
            out[d] = out[d].astype(object).where(out[d].notna(), "").astype(str)
    return out[[*dims, "variable", "value", "units"]]


def sidecar(ds, names: Sequence[str]) -> dict:
    """Units and long names of the table's columns and variables, and the cube's attributes."""
    def meta(x):
        return {"units": str(x.attrs.get("units", "")), "long_name": str(x.attrs.get("long_name", ""))}

    return {
        "columns": {**{d: meta(ds[d]) for d in ds.dims},
                    "variable": {"units": "", "long_name": "name of the cube variable"},
                    "value": {"units": "see units", "long_name": "the variable's value"},
                    "units": {"units": "", "long_name": "units of value"}},
        "variables": {v: meta(ds[v]) for v in names},
        "attrs": {k: (v if isinstance(v, str | int | float | bool | list) else str(v))
                  for k, v in ds.attrs.items()},
    }


def write(ds, path: str, variables: Sequence[str] | None = None) -> str:
    """Write the long table to ``path`` (``.csv`` or ``.parquet``) and its ``.units.json``."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in FORMATS:
        raise UserError(f"output {path!r}: use a .csv or .parquet file name")
    if ext == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise UserError("parquet export needs pyarrow (pip install 'rooflax[parquet]'); "
                            "write .csv instead") from None
    df = table(ds, variables)
    side = sidecar(ds, list(df["variable"].unique()))
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        if ext == ".csv":
            df.to_csv(tmp, index=False, na_rep="NaN")
        else:
            df.to_parquet(tmp, index=False)
        with open(tmp + ".json", "w", encoding="utf-8") as fh:
            json.dump(side, fh, indent=1)
        os.replace(tmp, path)
        os.replace(tmp + ".json", os.path.splitext(path)[0] + ".units.json")
    finally:
        for t in (tmp, tmp + ".json"):
            if os.path.exists(t):
                os.remove(t)
    return path
