"""rooflax.results.plots without a browser, on the cube `rooflax sweep` wrote (conftest.sweep_cube).

The arrays each figure embeds are checked against the cube read with plain xarray, the
Pareto envelope against brute force; the in-browser slicing is checked in test_results_browser.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from rooflax.results import plots
from rooflax.results.cube import open_cube
from rooflax.results.point import UserError


@pytest.fixture(scope="module")
def cube(sweep_cube):
    return open_cube(sweep_cube)


@pytest.fixture(scope="module")
def raw(sweep_cube):
    return xr.open_zarr(sweep_cube).load()


def _columns(p):
    return [src.data for src, *_ in p.targets]


def _brute_envelope(speed, cost):
    """Indices of points that no other point beats (faster and no dearer, or as fast and cheaper;
    of identical points, the first)."""
    keep = []
    for i in range(len(speed)):
        beaten = any((speed[j] > speed[i] and cost[j] <= cost[i]) or
                     (speed[j] == speed[i] and cost[j] < cost[i]) or
                     (j < i and speed[j] == speed[i] and cost[j] == cost[i])
                     for j in range(len(speed)))
        if not beaten:
            keep.append(i)
    return set(keep)


def test_envelope_matches_brute_force():
    rng = np.random.default_rng(3)
    for _ in range(20):
        n = int(rng.integers(1, 40))
        speed = np.round(rng.lognormal(size=n), 1)  # rounded: ties in speed happen
        cost = np.round(rng.lognormal(size=n), 1)
        ok = rng.random(n) > 0.2
        on, xs, ys = plots._envelope(speed, cost, ok)
        idx = np.flatnonzero(ok)
        want = {int(idx[i]) for i in _brute_envelope(speed[ok], cost[ok])}
        assert set(np.flatnonzero(on)) == want
        assert sorted(zip(xs[np.isfinite(xs)], ys[np.isfinite(ys)], strict=True)) == sorted(
            (speed[i], cost[i]) for i in want)
        assert np.all(np.diff(xs[np.isfinite(xs)]) <= 0)  # falling speed, NaN only at the end


def test_roofline_first_panel_is_the_cube(cube, raw):
    p = plots.make("roofline", cube)
    assert p.free == ["hardware", "model", "context"]
    first = raw.isel(hardware=0, model=0, context=0)
    cols = _columns(p)
    line = next(c for c in cols if "tc" in c)
    np.testing.assert_array_equal(line["tc"], first["t_compute"].values)
    np.testing.assert_array_equal(line["tm"], first["t_memory"].values)
    np.testing.assert_array_equal(line["B"], raw["batch"].values)
    titles = [getattr(m, "text", "") for m in p.fig.above]
    assert p.fig.title.text == "Roofline (bound)"
    assert "hardware=a100, model=deepseek-v3, context=1k" in titles
    # a100 × 8 cannot hold deepseek-v3 (B_max < 1): said, not drawn as a crossover
    assert float(first["b_max"]) < 1
    assert any("does not fit" in t for t in titles)


def test_cost_draws_only_batches_that_fit(cube, raw):
    p = plots.make("cost", cube, model="deepseek-v3", context="32k")
    assert p.free == []
    pt = raw.sel(model="deepseek-v3", context=32768.0)
    B = raw["batch"].values
    lines = [c for c in _columns(p) if "past" in c]
    assert [c["hardware"][0] for c in lines] == ["a100", "h100-sxm", "h200"]
    for h, c in zip(pt["hardware"].values, lines, strict=True):
        cost, bmax = pt.sel(hardware=h)["cost_per_mtok"].values, float(pt.sel(hardware=h)["b_max"])
        np.testing.assert_array_equal(c["cost"], np.where(B <= bmax, cost, np.nan))
        np.testing.assert_array_equal(c["past"], np.where(B > bmax, cost, np.nan))
    notes = [m.text for m in p.fig.above if hasattr(m, "text")]
    assert any("does not fit: a100, h100-sxm" in t for t in notes)


def test_frontier_is_the_envelope_across_hardware(cube, raw):
    p = plots.make("frontier", cube, slo=0.05, model="deepseek-v3", context="1k")
    pt = raw.sel(model="deepseek-v3", context=1024.0)
    B = raw["batch"].values[None, :]
    speed = 1.0 / pt["latency"].values
    cost = pt["cost_per_mtok"].values
    ok = (B <= pt["b_max"].values[:, None]) & (cost > 0)
    want = _brute_envelope(speed[ok], cost[ok])
    env = next(c for c in _columns(p) if set(c) == {"x", "y"} and len(c["x"]) > 3)
    got = {(x, y) for x, y in zip(env["x"], env["y"], strict=True) if np.isfinite(x)}
    assert got == {(speed[ok][i], cost[ok][i]) for i in want}
    assert len(got) >= 2
    slo = next(c for c in _columns(p) if "x1" in c)
    assert slo["x1"][0] == pytest.approx(20.0)  # 50 ms per token = 20 tokens/s


def test_bstar_and_sensitivity_embed_the_cube(cube, raw):
    p = plots.make("bstar", cube)
    grid = next(c for c in _columns(p) if "label" in c)
    b = raw.isel(model=0)["b_star"].transpose("hardware", "context").values.reshape(-1)
    np.testing.assert_array_equal(grid["b"], np.where(b > 0, b, np.nan))
    assert grid["label"][0] == "does not fit"  # a100 × deepseek-v3
    p = plots.make("sensitivity", cube, hardware="h200", model="llama-3.1-70b", context="8k")
    bars = next(c for c in _columns(p) if "rank" in c)
    pt = raw.sel(hardware="h200", model="llama-3.1-70b", context=8192.0)
    knobs = ("bw", "c_over_bw", "capacity", "context", "price", "sparsity")
    e = np.array([float(pt[f"elasticity__cost_at_b_star__{k}"]) for k in knobs])
    np.testing.assert_array_equal(bars["e"], e)
    assert sorted(bars["rank"]) == list(range(len(knobs)))
    by_rank = np.abs(e)[np.argsort(bars["rank"])]  # bottom to top: largest magnitude on top
    assert np.all(np.diff(by_rank) >= 0) and by_rank[-1] > 0


def test_plot_errors_are_one_line(cube):
    with pytest.raises(UserError, match="did you mean 'frontier'"):
        plots.make("fronteir", cube)
    with pytest.raises(UserError, match="lacks t_compute"):
        plots.make("roofline", cube[["regime", "b_star"]])
    with pytest.raises(UserError, match=r"\.html or \.png"):
        plots.save(plots.make("bstar", cube), "x.svg")


def test_explore_readouts_at_the_seed_defaults():
    """The simulator's readouts without a browser: the seed's 3.34e-2 and 1.38 % at B = 128;
    the crossover B* = N_total·w / (BW·N_active/C − L·b) = 671e9 / (1.776e8 − 7.340e7) = 6 440;
    the KV-free sweet spot (C/BW)·(N_total·w/N_active) = (1e15/4.8e12)·(671/37) = 3 778."""
    from rooflax.results import explore as E

    d = E.SEED_DEFAULTS
    args = {k: d[k] for k in E.SEED_INPUTS}
    html = E.readouts(E.numbers(batch=d["batch"], **args), args, d["batch"])
    assert "<span id='ratio'>3.34e-2</span>" in html["ratio"]
    assert "<span id='kvshare'>1.38%</span>" in html["share"]
    assert "<span id='bstar'>6,440</span>" in html["cross"] and "= 3,778" in html["cross"]
    assert html["detail"].startswith("At B = 128: ") and "C/BW = 208.3 MAC/B" in html["detail"]
