"""Figures of saved result cubes, as HoloViews objects (bokeh backend).

Each function takes a cube (``xarray.Dataset``) and selections (``dim=value``
with the rules of :func:`rooflax.results.cube.select`), and returns a HoloViews
object. Dimensions that the figure does not draw become the key dimensions of a
``HoloMap``: widgets in HTML (embedded: they work offline without a server).

* :func:`roofline` — T_compute and T_memory against batch, crossover marked, the
  weight-bound / KV-bound / compute-bound regions shaded (seed 000's picture);
* :func:`cost` — cost per token against batch per hardware, with its floor, B* and
  the B = 1 penalty;
* :func:`bstar` — B* over hardware × context (or bw × c_over_bw);
* :func:`sensitivity` — elasticities of one output, tornado-style;
* :func:`frontier` — cost per token against per-user tokens/s across batch.

:func:`save` writes ``.html`` (inline resources, embedded widgets) or ``.png``
(bokeh's exporter driving Debian's chromium through chromedriver).

holoviews / panel / bokeh are imported here only, never by the point commands.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

import holoviews as hv
import numpy as np

from .cube import select
from .point import UserError

hv.extension("bokeh", logo=False)

KINDS = ("roofline", "cost", "bstar", "sensitivity", "frontier")
_REGION_COLORS = {0: "#4c78a8", 1: "#f58518", 2: "#54a24b"}
_REGION_NAMES = {0: "weight-bound", 1: "KV-bound", 2: "compute-bound"}
_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
            "#7f7f7f", "#bcbd22", "#17becf")


def _dim(name: str, label: str, unit: str | None = None) -> hv.Dimension:
    return hv.Dimension(name, label=label, unit=unit)


def _key_dim(ds, d: str) -> hv.Dimension:
    unit = ds[d].attrs.get("units") if d in ds.coords else None
    if d == "context":
        unit = unit or "tokens"
    return hv.Dimension(d, label=d, unit=unit if unit and unit != "1" else None)


def _need(ds, names: Sequence[str], kind: str) -> None:
    missing = [n for n in names if n not in ds.data_vars]
    if missing:
        raise UserError(f"{kind}: the cube lacks {', '.join(missing)}")


def _frames(ds, variables: Sequence[str], drawn: Sequence[str],
            frame: Callable[[Any, dict], Any], max_frames: int, kind: str):
    """A HoloMap over every dimension of ``variables`` not in ``drawn`` (or one element)."""
    sub = ds[list(variables)]
    free = [d for d in sub.dims if d not in drawn and sub.sizes[d] > 0]
    # drop length-1 dims from the widgets
    fixed = {d: sub[d].values[0] for d in free if sub.sizes[d] == 1}
    sub = sub.isel({d: 0 for d in fixed})
    free = [d for d in free if d not in fixed]
    n = int(np.prod([sub.sizes[d] for d in free])) if free else 1
    if n > max_frames:
        raise UserError(
            f"{kind}: {n} widget combinations over {', '.join(free)} (max {max_frames}); "
            "narrow them with --sel DIM=VALUE")
    sub = sub.load()
    named = [n for n in _TITLE_COORDS if n not in _HW_FIELDS or "hardware" not in sub.coords]
    for name in named:  # selected (scalar) dims name the frame
        if name in sub.coords and sub[name].ndim == 0 and name not in fixed:
            fixed = {name: sub[name].values, **fixed}
    if not free:
        return frame(sub, fixed)
    frames = {}
    for key in itertools.product(*[list(sub[d].values) for d in free]):
        point = dict(zip(free, key, strict=True))
        frames[tuple(_py(k) for k in key)] = frame(sub.sel(point), {**fixed, **point})
    return hv.HoloMap(frames, kdims=[_key_dim(ds, d) for d in free])


_TITLE_COORDS = ("slo", "chips", "precision", "sparsity", "c_over_bw", "bw", "context", "model",
                 "hardware")


_HW_FIELDS = ("sparsity", "c_over_bw", "bw")


def _py(x: Any) -> Any:
    return x.item() if hasattr(x, "item") else x


def _fmt_key(point: dict) -> str:
    def f(v):
        v = _py(v)
        return f"{v:,.6g}" if isinstance(v, float) else str(v)

    return ", ".join(f"{k}={f(v)}" for k, v in point.items())


def _prep(ds, sel: dict):
    return select(ds, sel) if sel else ds


# --------------------------------------------------------------------------- roofline
def roofline(ds, *, max_frames: int = 400, **sel):
    """T_compute and T_memory against batch; crossover B_x marked; the three regimes shaded."""
    ds = _prep(ds, sel)
    names = ["t_compute", "t_memory", "regime", "b_x", "b_star"]
    _need(ds, names[:3], "roofline")
    names = [n for n in names if n in ds.data_vars]
    bdim = _dim("batch", "batch B", "seqs")
    tdim = _dim("time", "time per step", "s")

    def frame(sub, point):
        B = np.asarray(sub["batch"].values, dtype=float)
        tc = np.asarray(sub["t_compute"].values, dtype=float)
        tm = np.asarray(sub["t_memory"].values, dtype=float)
        reg = np.asarray(sub["regime"].values).astype(int)
        lo, hi = B.min(), B.max()
        edges = np.sqrt(B[1:] * B[:-1])
        top = float(max(tc.max(), tm.max())) * 1.6
        bx = float(sub["b_x"]) if "b_x" in sub else math.nan
        parts = []
        start = lo
        for i in range(len(B)):
            last = i == len(B) - 1
            if last or reg[i + 1] != reg[i]:
                end = hi if last else edges[i]
                if not last and {reg[i], reg[i + 1]} >= {2} and math.isfinite(bx) and lo <= bx <= hi:
                    end = bx
                parts.append(hv.VSpan(start, end).opts(
                    color=_REGION_COLORS[reg[i]], alpha=0.12, line_alpha=0))
                parts.append(hv.Text(math.sqrt(start * end), top, _REGION_NAMES[reg[i]]).opts(
                    text_font_size="10pt", text_color=_REGION_COLORS[reg[i]],
                    text_baseline="top"))
                start = end
        el = hv.Curve((B, tc), bdim, tdim, label="T_compute").opts(color="#d62728", line_width=2.5)
        el = el * hv.Curve((B, tm), bdim, tdim, label="T_memory").opts(color="#1f77b4", line_width=2.5)
        el = el * hv.Overlay(parts)
        title = "Roofline: " + _fmt_key(point)
        if math.isfinite(bx) and bx > 0:
            t_at = tc[0] / B[0] * bx
            el = el * hv.VLine(bx).opts(color="black", line_dash="dashed", line_width=1.5)
            el = el * hv.Scatter([(bx, t_at)], bdim, tdim, label="crossover B_x").opts(
                color="black", size=10, marker="diamond")
            title += f" — crossover B_x = {bx:,.0f}"
        else:
            title += " — no crossover (KV-bound at every batch)"
        if "b_star" in sub and math.isfinite(float(sub["b_star"])) and not (
                math.isfinite(bx) and abs(float(sub["b_star"]) - bx) <= 1e-9 * bx):
            bs = float(sub["b_star"])
            el = el * hv.VLine(bs).opts(color="#9467bd", line_dash="dotted", line_width=2)
            title += f", B* = {bs:,.0f}"
        return el.opts(hv.opts.Overlay(title=title, logx=True, logy=True, width=820, height=480,
                                       legend_position="bottom_right", show_grid=True,
                                       xlabel="batch B (seqs)", ylabel="time per step (s)"))

    return _frames(ds, names, ("batch",), frame, max_frames, "roofline")


# --------------------------------------------------------------------------- cost
def cost(ds, *, max_frames: int = 400, **sel):
    """Cost per Mtok against batch per hardware: the hyperbola, its floor, B* and the B=1 penalty."""
    ds = _prep(ds, sel)
    names = ["cost_per_mtok", "cost_floor", "b_star", "cost_per_mtok_at_b_star"]
    _need(ds, names[:1], "cost")
    names = [n for n in names if n in ds.data_vars]
    over = "hardware" if "hardware" in ds.dims else None
    bdim = _dim("batch", "batch B", "seqs")
    cdim = _dim("cost_per_mtok", "cost per output token", "$/Mtok")

    def frame(sub, point):
        keys = list(sub[over].values) if over else [None]
        el = None
        notes = []
        for i, h in enumerate(keys):
            s = sub.sel({over: h}) if over else sub
            color = _PALETTE[i % len(_PALETTE)]
            B = np.asarray(s["batch"].values, dtype=float)
            c = np.asarray(s["cost_per_mtok"].values, dtype=float)
            label = str(h) if h is not None else "cost"
            infeasible = "b_star" in s and not math.isfinite(float(s["b_star"]))
            if infeasible:
                label += " (infeasible: does not fit)"
            part = hv.Curve((B, c), bdim, cdim, label=label).opts(
                color=color, line_width=2.5, line_dash="dotted" if infeasible else "solid")
            if "cost_floor" in s:
                part = part * hv.HLine(1e6 * float(s["cost_floor"])).opts(
                    color=color, line_dash="dashed", line_width=1)
            if "b_star" in s and "cost_per_mtok_at_b_star" in s:
                bs, cs = float(s["b_star"]), float(s["cost_per_mtok_at_b_star"])
                if math.isfinite(bs) and cs > 0:
                    part = part * hv.Scatter([(bs, cs)], bdim, cdim).opts(
                        color=color, size=10, marker="circle")
                    c1 = c[np.argmin(np.abs(B - 1.0))] if B.min() <= 1.0 else math.nan
                    if math.isfinite(c1):
                        notes.append(f"{label}: B=1 costs {c1 / cs:,.0f}× B*")
            el = part if el is None else el * part
        title = "Cost per token: " + _fmt_key(point)
        if notes:
            title += " — " + "; ".join(notes)
        return el.opts(hv.opts.Overlay(title=title, logx=True, logy=True, width=820, height=480,
                                       legend_position="top_right", show_grid=True,
                                       xlabel="batch B (seqs)",
                                       ylabel="cost per output token ($/Mtok)"))

    drawn = ("batch",) + ((over,) if over else ())
    return _frames(ds, names, drawn, frame, max_frames, "cost")


# --------------------------------------------------------------------------- bstar
def bstar(ds, *, max_frames: int = 400, **sel):
    """B* as a heatmap over hardware × context (or bw × c_over_bw for hypothetical hardware)."""
    ds = _prep(ds, sel)
    _need(ds, ["b_star"], "bstar")
    if "hardware" in ds["b_star"].dims and "context" in ds["b_star"].dims:
        x, y = "hardware", "context"
    elif "bw" in ds["b_star"].dims and "c_over_bw" in ds["b_star"].dims:
        x, y = "bw", "c_over_bw"
    else:
        raise UserError("bstar: needs dims hardware × context or bw × c_over_bw; "
                        f"the cube has {', '.join(ds['b_star'].dims)}")
    names = [n for n in ("b_star", "binding") if n in ds.data_vars]
    units = {"context": "tokens", "bw": "B/s", "c_over_bw": "MAC/B"}

    def frame(sub, point):
        xs, ys = sub[x].values, sub[y].values
        rows = []
        for xi in xs:
            for yi in ys:
                p = sub.sel({x: xi, y: yi})
                b = float(p["b_star"])
                rows.append((_py(xi) if x == "hardware" else float(xi),
                             # padded so that the categorical axis (sorted as text) is numeric
                             f"{float(yi):>13,.0f}" if y == "context" else float(yi),
                             b if math.isfinite(b) else np.nan,
                             int(p["binding"]) if "binding" in p else -1))
        from rooflax.core import BINDINGS

        data = {
            x: [r[0] for r in rows], y: [r[1] for r in rows], "b_star": [r[2] for r in rows],
            "binding": [BINDINGS[r[3]] if r[3] >= 0 else "" for r in rows],
        }
        hm = hv.HeatMap(data, [_dim(x, x, units.get(x)), _dim(y, y, units.get(y))],
                        [_dim("b_star", "optimal batch B*", "seqs"), "binding"])
        labels = hv.Labels({x: data[x], y: data[y],
                            "text": [f"{v:,.0f}" if np.isfinite(v) else "infeasible"
                                     for v in data["b_star"]]},
                           [x, y], "text").opts(text_font_size="9pt", text_color="black")
        return (hm.opts(cmap="viridis", logz=True, colorbar=True, tools=["hover"],
                        clipping_colors={"NaN": "#dddddd"}) * labels).opts(
            hv.opts.Overlay(title="Optimal batch B*: " + _fmt_key(point), width=820, height=480))

    return _frames(ds, names, (x, y), frame, max_frames, "bstar")


# --------------------------------------------------------------------------- sensitivity
def sensitivity(ds, *, output: str = "cost_at_b_star", max_frames: int = 400, **sel):
    """Elasticities ∂ln(output)/∂ln(knob) as a tornado, largest magnitude on top."""
    ds = _prep(ds, sel)
    prefix = f"elasticity__{output}__"
    names = sorted(n for n in ds.data_vars if n.startswith(prefix))
    if not names:
        raise UserError(f"sensitivity: the cube has no {prefix}* variables")
    knobs = [n[len(prefix):] for n in names]

    def frame(sub, point):
        vals = [float(sub[n]) for n in names]
        order = sorted(range(len(knobs)), key=lambda i: abs(vals[i]) if math.isfinite(vals[i]) else -1)
        data = {"knob": [knobs[i] for i in order], "elasticity": [vals[i] for i in order],
                "sign": ["+" if vals[i] >= 0 else "−" for i in order]}
        bars = hv.Bars(data, _dim("knob", "knob"),
                       [_dim("elasticity", f"elasticity of {output}", "%/%"), "sign"])
        return bars.opts(invert_axes=True, color="sign", cmap={"+": "#d62728", "−": "#1f77b4"},
                         width=820, height=420, show_grid=True, tools=["hover"],
                         title=f"+1 % knob → % change in {output}: " + _fmt_key(point))

    return _frames(ds, names, (), frame, max_frames, "sensitivity")


# --------------------------------------------------------------------------- frontier
def frontier(ds, *, max_frames: int = 400, **sel):
    """Cost per Mtok against tokens/s per user across batch: what speed costs ("fast mode")."""
    ds = _prep(ds, sel)
    lat = "latency" if "latency" in ds.data_vars else "t_step"
    _need(ds, ["cost_per_mtok", lat], "frontier")
    names = [n for n in ("cost_per_mtok", lat, "b_star", "cost_per_mtok_at_b_star",
                         "latency_at_b_star") if n in ds.data_vars]
    over = "hardware" if "hardware" in ds.dims else None
    sdim = _dim("tps", "speed per user", "tokens/s")
    cdim = _dim("cost_per_mtok", "cost per output token", "$/Mtok")

    def frame(sub, point):
        keys = list(sub[over].values) if over else [None]
        el = None
        for i, h in enumerate(keys):
            s = sub.sel({over: h}) if over else sub
            color = _PALETTE[i % len(_PALETTE)]
            B = np.asarray(s["batch"].values, dtype=float)
            tps = 1.0 / np.asarray(s[lat].values, dtype=float)
            c = np.asarray(s["cost_per_mtok"].values, dtype=float)
            label = str(h) if h is not None else "frontier"
            if "b_star" in s and not math.isfinite(float(s["b_star"])):
                label += " (infeasible: does not fit)"
            data = {"tps": tps, "cost_per_mtok": c, "batch": B}
            part = hv.Curve(data, sdim, [cdim, "batch"], label=label).opts(
                color=color, line_width=2.5, tools=["hover"])
            part = part * hv.Scatter(data, sdim, [cdim, "batch"]).opts(color=color, size=5,
                                                                        tools=["hover"])
            if "latency_at_b_star" in s and math.isfinite(float(s["latency_at_b_star"])):
                part = part * hv.Scatter(
                    [(1.0 / float(s["latency_at_b_star"]), float(s["cost_per_mtok_at_b_star"]))],
                    sdim, cdim).opts(color=color, size=12, marker="star")
            el = part if el is None else el * part
        return el.opts(hv.opts.Overlay(
            title="Price of speed (stars: B*): " + _fmt_key(point), logx=True, logy=True,
            width=820, height=480, legend_position="top_left", show_grid=True,
            xlabel="speed per user (tokens/s)", ylabel="cost per output token ($/Mtok)"))

    drawn = ("batch",) + ((over,) if over else ())
    return _frames(ds, names, drawn, frame, max_frames, "frontier")


_MAKERS = {"roofline": roofline, "cost": cost, "bstar": bstar, "sensitivity": sensitivity,
           "frontier": frontier}


def make(kind: str, ds, **kwargs):
    """The figure ``kind`` (one of :data:`KINDS`) of ``ds``."""
    fn = _MAKERS.get(kind.lower())
    if fn is None:
        from rooflax.sweeps.inputs import suggest

        raise UserError(f"unknown plot kind {kind!r}{suggest(kind.lower(), KINDS)}; "
                        f"kinds: {', '.join(KINDS)}")
    return fn(ds, **kwargs)


# --------------------------------------------------------------------------- saving
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def _webdriver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--no-first-run", "--hide-scrollbars", "--force-device-scale-factor=1"):
        opts.add_argument(a)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


_CDN_SHEET = re.compile(
    r'\{"type":"object","name":"ImportedStyleSheet","id":"([^"]+)",'
    r'"attributes":\{"url":"https://cdn\.holoviz\.org/panel/[^/"]+/dist/([^"?]+)(?:\?[^"]*)?"\}\}')


def _inline_panel_stylesheets(path: str) -> None:
    """Make a saved HTML file self-contained: Panel writes its widget stylesheets as links to
    cdn.holoviz.org even with inline resources; replace each with the CSS of the installed
    Panel (an ``InlineStyleSheet``), so the file renders offline without failed requests."""
    import json
    from pathlib import Path

    import panel

    dist = Path(panel.__file__).parent / "dist"
    text = Path(path).read_text(encoding="utf-8")

    def sub(m: re.Match) -> str:
        f = dist / m.group(2)
        if not f.is_file():
            return m.group(0)
        css = json.dumps(f.read_text(encoding="utf-8"))[1:-1].replace("</", "<\\/")
        head = '{"type":"object","name":"InlineStyleSheet","id":"' + m.group(1)
        return head + '","attributes":{"css":"' + css + '"}}'

    text = _CDN_SHEET.sub(sub, text)
    # the favicon links too: an empty data URI instead of a request to the CDN
    text = re.sub(r'href="https://cdn\.holoviz\.org/[^"]*\.(?:ico|png|svg)"', 'href="data:,"', text)
    Path(path).write_text(text, encoding="utf-8")


def save(obj, path: str) -> str:
    """Write ``obj`` to ``path``: ``.html`` interactive and offline, or ``.png`` static."""
    import os

    ext = os.path.splitext(path)[1].lower()
    if ext == ".html":
        import panel as pn
        from bokeh.resources import INLINE

        pane = pn.panel(obj, widget_location="right_top")
        pane.save(path, embed=True, resources=INLINE, max_states=10000, progress=False,
                  title=os.path.basename(path))
        _inline_panel_stylesheets(path)
        return path
    if ext == ".png":
        import os.path as op

        if not (op.exists(CHROMIUM) and op.exists(CHROMEDRIVER)):
            raise UserError("PNG export needs Debian's chromium and chromium-driver "
                            "(apt-get install chromium chromium-driver); write .html instead")
        from bokeh.io.export import export_png

        if isinstance(obj, hv.HoloMap):  # a static picture shows one frame: the first
            key = obj.keys()[0]
            el = obj[key]
            obj = el
        model = hv.render(obj, backend="bokeh")
        driver = _webdriver()
        try:
            export_png(model, filename=path, webdriver=driver, timeout=60)
        finally:
            driver.quit()
        return path
    raise UserError(f"output {path!r}: use a .html or .png file name")
