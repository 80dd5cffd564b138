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
    pytest.mark.slow,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium not installed"),
]

KINDS = ("roofline", "cost", "bstar", "sensitivity", "frontier")


@pytest.fixture(scope="module")
def cube(sweep_cube):
    from rooflax.results.cube import open_cube

    return open_cube(sweep_cube)


@pytest.fixture(scope="module")
def html(cube, tmp_path_factory):
    from rooflax.results import plots

    out = tmp_path_factory.mktemp("html")
    return {kind: plots.save(plots.make(kind, cube), str(out / f"{kind}.html")) for kind in KINDS}


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
  const columns = [], sources = [];
  for (const m of ms.filter(m => kind(m) == 'ColumnDataSource')) {
    const src = {};
    for (const [k, v] of (m.data instanceof Map ? Array.from(m.data) : Object.entries(m.data))) {
      src[k] = Array.from(v).map(x => typeof x == 'number' ? x : String(x));
      columns.push([k, src[k]]);
    }
    sources.push(src);
  }
  const widgets = ms.filter(m => ['Select', 'CustomSelect', 'Slider', 'DiscreteSlider'].includes(kind(m)))
                    .map(m => [kind(m), m.title, String(m.value)]);
  return {titles, columns, sources, widgets};
}"""

_SELECT = """([title, value]) => {
  const ms = Array.from(Bokeh.documents[0].all_models);
  const sel = ms.find(m => m.constructor.__name__.endsWith('Select') && m.title == title);
  sel.value = value;
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


def _fits(pt, name):
    """``pt[name]`` where the batch fits in memory (B ≤ B_max), NaN past it."""
    return np.where(pt["batch"].values <= float(pt["b_max"]), pt[name].values, np.nan)


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
    first = cube.isel(model=0, context=0)  # deepseek-v3 at 1k: the first panel
    if kind == "roofline":
        assert _has_column(state, first.isel(hardware=0)["t_compute"].values)
        assert "hardware=a100, model=deepseek-v3, context=1k" in state["titles"]
        assert any("does not fit" in t for t in state["titles"])
    elif kind == "cost":
        assert _has_column(state, _fits(first.sel(hardware="h200"), "cost_per_mtok"))
        assert any("does not fit: a100, h100-sxm" in t for t in state["titles"])
    elif kind == "frontier":
        assert _has_column(state, 1.0 / _fits(first.sel(hardware="h200"), "latency"))
    elif kind == "bstar":
        b = cube.isel(model=0)["b_star"].transpose("hardware", "context").values.reshape(-1)
        assert _has_column(state, np.where(b > 0, b, np.nan))
    elif kind == "sensitivity":
        pt = cube.isel(hardware=0, model=0, context=0)
        vals = [float(pt[f"elasticity__cost_at_b_star__{k}"])
                for k in ("bw", "c_over_bw", "capacity", "context", "price", "sparsity")]
        assert _has_column(state, vals)
    assert state["widgets"], "dimensions not drawn must become widgets"


def test_html_widgets_change_what_is_drawn(browser, html, cube):
    page, errors = _open(browser, Path(html["roofline"]).as_uri())
    try:
        _wait_bokeh(page)
        before = page.evaluate(_STATE)
        page.evaluate(_SELECT, ["hardware", "h200"])
        page.evaluate(_SELECT, ["context", "32k"])
        page.wait_for_timeout(1000)
        after = page.evaluate(_STATE)
    finally:
        page.close()
    assert errors == []
    assert before["titles"] != after["titles"]
    assert "hardware=h200, model=deepseek-v3, context=32k" in after["titles"]
    second = cube.sel(hardware="h200", model="deepseek-v3", context=32768.0)
    assert _has_column(after, second["t_memory"].values)  # h200 has more bandwidth than a100
    assert not _has_column(before, second["t_memory"].values)
    assert _has_column(after, [float(second["b_max"])])
    assert any(f"B_max = {float(second['b_max']):,.0f}" in t for t in after["titles"])


def test_html_frontier_envelope_follows_the_widgets(browser, html, cube):
    """The envelope the browser cuts for another panel is the brute-force envelope there."""
    page, errors = _open(browser, Path(html["frontier"]).as_uri())
    try:
        _wait_bokeh(page)
        page.evaluate(_SELECT, ["model", "llama-3.1-70b"])
        page.evaluate(_SELECT, ["context", "8k"])
        page.wait_for_timeout(1000)
        state = page.evaluate(_STATE)
    finally:
        page.close()
    assert errors == []
    pt = cube.sel(model="llama-3.1-70b", context=8192.0).load()
    speed = 1.0 / pt["latency"].values
    cost = pt["cost_per_mtok"].values
    ok = (pt["batch"].values[None, :] <= pt["b_max"].values[:, None]) & (cost > 0)
    s, c = speed[ok], cost[ok]
    env = {(x, y) for x, y in zip(s, c, strict=True)
           if not np.any(((s > x) & (c <= y)) | ((s == x) & (c < y)))}
    line = [src for src in state["sources"] if set(src) == {"x", "y"} and len(src["x"]) > 1]
    assert len(line) == 1  # the envelope: one line across every hardware
    got = {(round(a, 6), round(b, 9)) for a, b in zip(line[0]["x"], line[0]["y"], strict=True)
           if isinstance(a, float | int) and np.isfinite(a)}
    assert got == {(round(a, 6), round(b, 9)) for a, b in env}
    assert len(got) >= 2
    assert "model=llama-3.1-70b, context=8k" in state["titles"]


@pytest.mark.parametrize("kind", ["roofline", "frontier"])
def test_png_static_and_not_blank(cube, tmp_path, kind):
    from PIL import Image

    from rooflax.results import plots

    sel = {"model": "deepseek-v3", "context": "32k"}
    if kind == "roofline":
        sel["hardware"] = "h200"
    p = plots.make(kind, cube, **sel)
    path = plots.save(p, str(tmp_path / f"{kind}.png"))
    assert p.fig.toolbar_location is None
    titles = [getattr(m, "text", "") for m in p.fig.above]
    assert any("model=deepseek-v3" in t for t in titles)  # the picture says which panel it is
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


def _predicted_llama70b_on_one_h200(context: float, batch: float) -> float:
    """core.predict by hand: Llama-3.1-70B fp8 on one H200 (the picker's defaults: 1 chip, fp8)."""
    from rooflax.core import parallel, predict
    from rooflax.core.specs import Workload
    from rooflax.sweeps import calibration, catalogs
    from rooflax.sweeps import efficiency as eff

    arch = catalogs.architecture("llama-3.1-70b")
    hw = catalogs.hardware("h200", chips=1.0, precision="fp8")
    hw = parallel.layout(hw.replace(link_bw=eff.replica_link_bw("h200", 1.0)), "tp")
    model = parallel.extended_model(arch, weights="fp8", kv="bf16")
    eng = calibration.engine_for("fp8", prefill_skip=calibration.prefill_skip_of(arch))
    return float(predict.step_time(hw, model, Workload(batch=batch, context=context), eng))


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
        # load a catalog pick: the calibrated prediction is read out at the sliders' L and B
        assert page.inner_text("#predstep") == "n/a"
        page.locator("select").nth(0).select_option("h200")
        page.locator("select").nth(2).select_option("llama-3.1-70b")
        from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

        # BokehJS sends a widget's new value as a document patch and a click as an event; the
        # button loads what the server holds, so click until the server says it loaded the pick
        for _ in range(3):
            page.get_by_role("button", name="Load from catalog").click()
            try:
                page.wait_for_selector(".rooflax-status:has-text('llama-3.1-70b')", timeout=20000)
                break
            except PlaywrightTimeoutError:
                continue
        want = _predicted_llama70b_on_one_h200(context=16384.0, batch=128.0)
        page.wait_for_selector(f"#predstep:text('{sci(want)}')", timeout=60000)
    finally:
        page.close()
    assert errors == []
