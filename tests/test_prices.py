"""Every chip priced on an explicit basis, never a silent $0: cubes that `rooflax sweep` wrote."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

from rooflax.sweeps import catalogs
from rooflax.sweeps import config as C
from rooflax.sweeps import run as R

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"
DEFAULT_HW = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text())["axes"]["hardware"]


def _config(tmp_path: Path, name: str, **over) -> Path:
    data = {"axes": {"hardware": DEFAULT_HW, "model": ["llama-3.1-70b", "deepseek-v3"],
                     "batch": {"log": [1, 4096], "num": 6}, "context": [8192, 131072], "chips": 8,
                     "precision": {"weights": "fp8", "kv": "bf16", "compute": "auto"}},
            "outputs": ["b_star", "binding", "cost_per_mtok_at_b_star", "cost_per_mtok"],
            "store": str(tmp_path / f"{name}.zarr"), **over}
    f = tmp_path / f"{name}.yaml"
    f.write_text(yaml.safe_dump(data))
    return f


@pytest.mark.slow  # the default config's whole sweep (make test-fast skips it)
def test_idxmin_never_lands_on_an_unpriced_chip(tmp_path):
    cfg = _config(tmp_path, "default")
    out = subprocess.run([str(BIN / "rooflax"), "sweep", str(cfg)], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    ds = xr.open_zarr(tmp_path / "default.zarr")  # plain xarray
    assert ds.attrs["rooflax_price"] == catalogs.DEFAULT_PRICE
    basis = {str(h): str(b) for h, b in zip(ds.hardware.values, ds.price_basis.values, strict=True)}
    unpriced = {h for h, b in basis.items() if b == catalogs.NO_PRICE}
    # the reference prices every chip but these (prices.yaml `missing`: tpu-ironwood, gaudi3)
    assert unpriced == {"tpu-ironwood", "gaudi3"}
    cost = ds["cost_per_mtok_at_b_star"]
    for h in unpriced:
        assert math.isnan(float(ds.price_per_hour.sel(hardware=h)))
        assert np.isnan(cost.sel(hardware=h).values).all()  # never $0
    best = cost.idxmin("hardware").values.ravel()
    assert set(map(str, best[best == best])) and not set(map(str, best)) & unpriced
    # wherever some chip is priced and feasible, idxmin names a priced one with the least cost
    c = cost.values
    for idx in np.ndindex(c.shape[1:]):
        col = c[(slice(None), *idx)]
        if np.isfinite(col).any():
            assert str(ds.hardware.values[np.nanargmin(col)]) == str(best.reshape(c.shape[1:])[idx])
    # the table says which number it shows (a seeds cube holds the bound, not the prediction)
    assert "reading: the bound" in " ".join(out.stdout.split())
    # the table names the basis of each chip and says "no price" only for the unpriced ones
    for line in out.stdout.splitlines():
        if "no price" in line:
            assert any(h in line for h in unpriced), line
    for h, b in basis.items():
        p = catalogs.price(h)
        assert b == p.basis + (" (placeholder)" if p.placeholder else "")
        np.testing.assert_equal(float(ds.price_per_hour.sel(hardware=h)), p.usd_per_hour)


def test_price_basis_in_config(tmp_path):
    res = R.run(C.load(_config(tmp_path, "high", price="market-high")), progress=False)
    ds = xr.open_zarr(res.path)
    assert ds.attrs["rooflax_price"] == "market-high"
    b200 = ds.sel(hardware="b200")
    assert float(b200.price_per_hour) == pytest.approx(6.03)  # prices.yaml market b200 high
    assert math.isnan(float(ds.sel(hardware="a100").price_per_hour)) is False  # catalog quotes
    assert math.isnan(float(ds.sel(hardware="mi355x").price_per_hour))  # no market price
    res = R.run(C.load(_config(tmp_path, "flat", price="5 $/h")), progress=False)
    ds = xr.open_zarr(res.path)
    assert (ds.price_per_hour.values == 5.0).all() and set(ds.price_basis.values) == {"custom"}


def test_price_spec_errors_and_default():
    with pytest.raises(ValueError, match="price basis"):
        C.SweepConfig.model_validate({"axes": {"hardware": ["h200"], "model": ["llama-3.1-8b"],
                                               "batch": [1], "context": [1]}, "price": "tco"})
