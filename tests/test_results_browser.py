"""rooflax.results in a real browser: Debian's chromium driven by Playwright (never a downloaded one).

HTML plots load offline without console errors, show the cube's numbers and redraw when a
widget changes; PNGs are non-blank; the explore app's readouts follow its sliders and agree
with the core. Skipped only when /usr/bin/chromium is absent (`make browser` installs it).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium not installed"),
]

KINDS = ("roofline", "cost", "bstar", "sensitivity", "frontier")


@pytest.fixture(scope="module")
def cube(tmp_path_factory):
    sys.path.insert(0, str(Path(__file__).parent))
    import results_cube

    path = results_cube.write_cube(tmp_path_factory.mktemp("cube") / "c.zarr")
    from rooflax.results.cube import open_cube

    return open_cube(path)


@pytest.fixture(scope="module")
def html(cube, tmp_path_factory):
    from rooflax.results import plots

    out = tmp_path_factory.mktemp("html")
    files = {}
    for kind in KINDS:
        sel = {"model": "deepseek-v3"} if kind in ("roofline", "cost", "frontier") else {}
        files[kind] = plots.save(plots.make(kind, cube, **sel), str(out / f"{kind}.html"))
    return files


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def _open(browser, url):
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
    page.goto(url)
    return page, errors


_STATE = """() => {
  const doc = Bokeh.documents[0];
  const ms = Array.from(doc.all_models);
  const kind = m => m.constructor.__name__;
  const titles = ms.filter(m => kind(m) == 'Title' && m.text).map(m => m.text);
  const columns = [];
  for (const m of ms.filter(m => kind(m) == 'ColumnDataSource')) {
    for (const [k, v] of (m.data instanceof Map ? Array.from(m.data) : Object.entries(m.data))) { columns.push([k, Array.from(v).map(x => typeof x == 'number' ? x : String(x))]); }
  }
  const widgets = ms.filter(m => ['Select', 'CustomSelect', 'Slider', 'DiscreteSlider'].includes(kind(m)))
                    .map(m => [kind(m), m.title, String(m.value)]);
  return {titles, columns, widgets};
}"""


def _wait_bokeh(page):
    page.wait_for_function(
        "() => window.Bokeh && Bokeh.documents.length > 0 && Bokeh.documents[0].roots().length > 0",
        timeout=60000)
    page.wait_for_timeout(500)


def _has_column(state, expected, rel=1e-9):
    expected = np.asarray(expected, dtype=float)
    for _, col in state["columns"]:
        try:
            a = np.asarray(col, dtype=float)
        except ValueError:
            continue
        if a.shape == expected.shape and np.allclose(a, expected, rtol=rel, equal_nan=True):
            return True
    return False


@pytest.mark.parametrize("kind", KINDS)
def test_html_plot_loads_offline_and_shows_data(browser, html, cube, kind):
    page, errors = _open(browser, Path(html[kind]).as_uri())
    try:
        _wait_bokeh(page)
        state = page.evaluate(_STATE)
    finally:
        page.close()
    assert errors == []
    assert state["titles"], "no title drawn"
    first = cube.isel(hardware=0, context=0).sel(model="deepseek-v3")
    if kind == "roofline":
        assert _has_column(state, first["t_compute"].values)
        assert _has_column(state, first["t_memory"].values)
        assert "crossover B_x" in state["titles"][0] or "no crossover" in state["titles"][0]
    elif kind == "cost":
        assert _has_column(state, first["cost_per_mtok"].values)
    elif kind == "frontier":
        assert _has_column(state, 1.0 / first["latency"].values)
    elif kind == "bstar":
        b = cube.sel(model="deepseek-v3")["b_star"].values.reshape(-1)  # (hardware, context)
        col = next(c for k, c in state["columns"] if k == "zvalues")
        got = np.asarray([x for x in col if isinstance(x, float | int)], dtype=float)
        np.testing.assert_allclose(np.sort(got[np.isfinite(got)]), np.sort(b[np.isfinite(b)]),
                                   rtol=1e-9)
    elif kind == "sensitivity":
        vals = [float(cube.isel(hardware=0, model=0, context=0)[f"elasticity__cost_at_b_star__{k}"])
                for k in ("bw", "c_over_bw", "sparsity", "capacity", "price", "context")]
        col = np.asarray(next(c for k, c in state["columns"] if k == "elasticity"), dtype=float)
        vals = np.asarray(vals)
        assert np.isnan(col).sum() == np.isnan(vals).sum()
        np.testing.assert_allclose(np.sort(col[np.isfinite(col)]),
                                   np.sort(vals[np.isfinite(vals)]), rtol=1e-9, atol=1e-12)
    assert state["widgets"], "dimensions not drawn must become widgets"


def test_html_widgets_change_what_is_drawn(browser, html, cube):
    page, errors = _open(browser, Path(html["roofline"]).as_uri())
    try:
        _wait_bokeh(page)
        before = page.evaluate(_STATE)
        page.evaluate("""() => {
          const ms = Array.from(Bokeh.documents[0].all_models);
          const sel = ms.find(m => m.constructor.__name__.endsWith('Select') && m.title == 'hardware');
          sel.value = sel.options[1];
        }""")
        page.wait_for_timeout(1500)
        after = page.evaluate(_STATE)
    finally:
        page.close()
    assert errors == []
    assert before["titles"] != after["titles"]
    assert "h200" in after["titles"][0]
    second = cube.sel(hardware="h200", model="deepseek-v3").isel(context=0)
    assert _has_column(after, second["t_memory"].values)  # h200 has more bandwidth than h100
    assert not _has_column(before, second["t_memory"].values)


@pytest.mark.parametrize("kind", ["roofline"])
def test_png_static_and_not_blank(cube, tmp_path, kind):
    from PIL import Image

    from rooflax.results import plots

    sel = {"model": "deepseek-v3", "context": "32k"} if kind == "roofline" else {}
    path = plots.save(plots.make(kind, cube, **sel), str(tmp_path / f"{kind}.png"))
    assert os.path.getsize(path) > 10_000
    im = Image.open(path).convert("RGB")
    assert im.size[0] >= 600 and im.size[1] >= 350
    a = np.asarray(im)
    colors = len(np.unique(a.reshape(-1, 3), axis=0))
    assert colors > 50, "image looks blank"
    assert (a.std(axis=(0, 1)) > 10).all()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def explore_url():
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "rooflax.results.cli", "explore",
                             "--port", str(port), "--no-show"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(proc.stdout.read()) from None
            time.sleep(0.5)
    yield f"http://127.0.0.1:{port}/"
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_explore_readouts_follow_sliders_and_match_core(browser, explore_url):
    from rooflax import core as rc

    page, errors = _open(browser, explore_url)
    try:
        page.wait_for_selector("#ratio", timeout=60000)
        assert page.inner_text("#ratio") == "3.34e-2"
        assert page.inner_text("#kvshare") == "1.38%"
        hw = rc.Hardware(bw=4.8e12, c_over_bw=1e15 / 4.8e12, capacity=float("inf"))

        def model(b=71680.0):
            return rc.Model(n_total=671e9, sparsity=671 / 37, kv_bytes_per_token=b,
                            bytes_per_weight=1.0)

        bx = float(rc.b_x(hw, model(), rc.Workload(batch=128.0, context=1024.0)))
        assert page.inner_text("#bstar") == f"{bx:,.0f}"
        # move the L slider (its editable box) to 16384 tokens
        box = page.locator("input.bk-input").first
        box.fill("16384")
        box.press("Enter")
        wl = rc.Workload(batch=128.0, context=16384.0)
        share = float(rc.kv_share(hw, model(), wl)) * 100
        page.wait_for_selector(f"text={share:.2f}%", timeout=30000)
        ratio = float(rc.compute_memory_ratio(hw, model(), wl))
        from rooflax.results.explore import sci

        assert page.inner_text("#ratio") == sci(ratio)
        bx2 = float(rc.b_x(hw, model(), wl))
        expect = f"{bx2:,.0f}" if np.isfinite(bx2) else "none"
        assert page.inner_text("#bstar").startswith(expect)
    finally:
        page.close()
    assert errors == []
