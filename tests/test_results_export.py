"""`rooflax export`: the cube `rooflax sweep` wrote as a long CSV / Parquet table, NaN kept."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from typer.testing import CliRunner

from rooflax.results.cli import app


@pytest.fixture(scope="module")
def raw(sweep_cube):
    return xr.open_zarr(sweep_cube).load()


def _export(cube, path, *args):
    r = CliRunner().invoke(app, ["export", cube, "-o", str(path), *args])
    assert r.exit_code == 0, r.output
    return path


@pytest.mark.parametrize("ext", [".csv", ".parquet"])
def test_export_long_table_round_trips(sweep_cube, raw, tmp_path, ext):
    if ext == ".parquet":
        pytest.importorskip("pyarrow")
    path = _export(sweep_cube, tmp_path / f"t{ext}", "--var", "cost_per_mtok", "--var", "b_star")
    df = pd.read_csv(path) if ext == ".csv" else pd.read_parquet(path)
    assert list(df.columns) == ["hardware", "model", "batch", "context", "variable", "value",
                                "units"]
    cost = df[df["variable"] == "cost_per_mtok"]
    assert len(cost) == raw["cost_per_mtok"].size
    assert set(cost["units"]) == {raw["cost_per_mtok"].attrs["units"]}
    for _, r in cost.sample(25, random_state=0).iterrows():
        want = raw["cost_per_mtok"].sel(hardware=r["hardware"], model=r["model"],
                                        batch=r["batch"], context=r["context"])
        assert r["value"] == float(want)  # exact: floats written at full precision
    bstar = df[df["variable"] == "b_star"]
    assert len(bstar) == raw["b_star"].size and bstar["batch"].isna().all()
    a100 = bstar[(bstar["hardware"] == "a100") & (bstar["model"] == "deepseek-v3")]
    assert len(a100) == 3 and a100["value"].isna().all()  # does not fit: NaN, not 0 or ""
    assert np.isnan(raw["b_star"].sel(hardware="a100", model="deepseek-v3").values).all()
    side = json.loads((tmp_path / "t.units.json").read_text())
    assert side["variables"]["b_star"]["units"] == raw["b_star"].attrs["units"]
    assert side["columns"]["context"]["units"] == raw["context"].attrs.get("units", "")
    assert side["attrs"]["rooflax_complete"] is True


def test_export_bad_output_is_one_line_and_writes_nothing(sweep_cube, tmp_path):
    r = CliRunner().invoke(app, ["export", sweep_cube, "-o", str(tmp_path / "t.xlsx")])
    assert r.exit_code == 2 and "use a .csv or .parquet" in r.output
    assert "Traceback" not in r.output
    r = CliRunner().invoke(app, ["export", sweep_cube, "-o", str(tmp_path / "t.csv"),
                                 "--var", "b_starr"])
    assert r.exit_code == 2 and "b_starr" in r.output
    assert os.listdir(tmp_path) == []
