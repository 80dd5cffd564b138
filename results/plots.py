"""Figures of saved result cubes: Bokeh figures whose data is embedded once and sliced in the browser.

Each kind draws some dimensions of the cube (batch; hardware as one line each; hardware ×
context as a heatmap); every other dimension becomes a ``Select`` widget. The HTML file
holds each needed cube variable once, as a flat typed array; one ``CustomJS`` callback cuts
the slice a widget state asks for (:data:`_SLICE_JS`) — no pre-rendered frame per state, so
a file builds in seconds for any cube ``make sweep`` writes. Derived arrays (feasible part of
a curve, the Pareto envelope, a tornado's order, the title of every panel) are computed here
with numpy over the whole cube, vectorized.

* :func:`roofline` — T_compute and T_memory against batch, regimes shaded, B_x, B_max, B*;
* :func:`cost` — $/Mtok against batch, one line per hardware, B* marked, past-capacity dotted;
* :func:`bstar` — B* over hardware × context (or bw × c_over_bw);
* :func:`sensitivity` — elasticities of one output, tornado-style;
* :func:`frontier` — the Pareto envelope of $/Mtok against tokens/s per user across hardware
  and batch, B* stars, the SLO region shaded.

Every figure is the *bound* (the seeds' roofline) unless the cube says otherwise. :func:`save`
writes ``.html`` (inline resources, works offline) or ``.png`` (figure only, no toolbar, no
widgets; the title names the panel). Bokeh is imported here only, never by the point commands.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from bokeh.models import (
    ColorBar,
    ColumnDataSource,
    CustomJS,
    CustomJSTicker,
    CustomJSTickFormatter,
    Legend,
    LegendItem,
    LinearColorMapper,
    LogColorMapper,
    Range1d,
    Select,
    Span,
    Title,
)
from bokeh.plotting import figure

from .cube import TOKEN_DIMS, select
from .point import UserError

KINDS = ("roofline", "cost", "bstar", "sensitivity", "frontier")
_REGIONS = (("weight-bound", "#4c78a8"), ("KV-bound", "#f58518"), ("compute-bound", "#54a24b"),
            ("comm-bound", "#b279a2"))
_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
            "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#843c39", "#7b4173",
            "#3182bd", "#e6550d")
_W, _H = 760, 440  # the plot frame (px); legends and colour bars sit outside it
#: Log-axis ticks at 1·10^k, then 1/2/5, then 1/2/3/5/7, then every digit — the first with
#: at least five in view (Bokeh's LogTicker goes linear, or bare, over one or two decades).
_LOG_TICKS_JS = """
  const a = Math.min(cb_data.start, cb_data.end), b = Math.max(cb_data.start, cb_data.end);
  if (!(a > 0) || !(b > a)) return [];
  let best = [];
  for (const ms of [[1], [1, 2, 5], [1, 2, 3, 5, 7], [1, 1.5, 2, 3, 4, 5, 6, 7, 8, 9]]) {
    const t = [];
    for (let e = Math.floor(Math.log10(a)); e <= Math.ceil(Math.log10(b)); e++)
      for (const m of ms) { const v = m * 10 ** e; if (v >= a && v <= b) t.push(v); }
    best = t;
    if (t.length >= 5) break;
  }
  const k = Math.ceil(best.length / 12);
  return best.filter((_, i) => i % k == 0);"""
_TICKS_JS = """
  const a = Math.abs(tick);
  if (a === 0) return '0';
  if (a >= 1e-3 && a < 1e7) return Number(tick.toPrecision(3)).toLocaleString('en-US');
  return Number(tick.toPrecision(3)).toExponential().replace('e+', 'e');"""


# --------------------------------------------------------------------------- the embedded panel
@dataclass
class Panel:
    """A figure plus the arrays and slicing rules that the widgets apply in the browser.

    ``arrays[name] = (dims, values)``; ``targets`` are ``(source, {column: array name}, vary)``:
    the source's columns are the arrays cut at the widgets' indices (and ``fix``), running over
    the dims in ``vary`` (row-major). ``texts`` are ``(model, attribute, array name)`` set from
    string arrays over the widget dims.
    """

    fig: Any
    free: list[str]
    options: dict[str, list[str]]
    sizes: dict[str, int]
    arrays: dict[str, tuple[tuple[str, ...], np.ndarray]] = field(default_factory=dict)
    targets: list[tuple[Any, dict[str, str], tuple[str, ...], dict[str, int]]] = field(
        default_factory=list)
    texts: list[tuple[Any, str, str]] = field(default_factory=list)
    note: Any = None

    def add(self, name: str, dims: Sequence[str], values) -> str:
        self.arrays[name] = (tuple(dims), np.asarray(values))
        return name

    def source(self, cols: dict[str, str], vary: Sequence[str] = (), fix: dict | None = None,
               static: dict | None = None) -> ColumnDataSource:
        """A ColumnDataSource holding the current slice of ``cols`` (plus constant columns)."""
        fix = dict(fix or {})
        data = {c: _pick(*self.arrays[a], tuple(vary), fix, self.sizes) for c, a in cols.items()}
        src = ColumnDataSource({**(static or {}), **data})
        self.targets.append((src, cols, tuple(vary), fix))
        return src

    def text(self, model, attr: str, name: str) -> None:
        dims, vals = self.arrays[name]
        setattr(model, attr, str(_pick(dims, vals, (), {}, self.sizes)[0]))
        self.texts.append((model, attr, name))


def _pick(dims, values, vary, fix, sizes, idx=None) -> np.ndarray:
    """``values`` (over ``dims``) at ``fix``/widget index 0 (or ``idx``), running over ``vary``."""
    idx = idx or {}
    key = tuple(slice(None) if d in vary else fix.get(d, idx.get(d, 0)) for d in dims)
    sub = np.asarray(np.asarray(values)[key])
    kept = [d for d in dims if d in vary]
    sub = np.transpose(sub, [kept.index(d) for d in vary if d in kept]) if kept else sub
    shape = [sizes[d] for d in vary]
    return np.broadcast_to(sub.reshape([sizes[d] if d in kept else 1 for d in vary]),
                           shape).reshape(-1)


_SLICE_JS = """
const idx = {};
for (const [d, w] of Object.entries(widgets)) idx[d] = Math.max(0, w.options.indexOf(w.value));
function pick(name, vary, fix) {
  const [dims, a] = arrays[name];
  const st = new Array(dims.length); let s = 1;
  for (let i = dims.length - 1; i >= 0; i--) { st[i] = s; s *= sizes[dims[i]]; }
  const n = vary.map(d => sizes[d]);
  const total = n.reduce((x, y) => x * y, 1);
  const out = (typeof a[0] === 'string') ? new Array(total) : new Float64Array(total);
  const cur = {};
  for (let k = 0; k < total; k++) {
    let r = k;
    for (let j = vary.length - 1; j >= 0; j--) { cur[vary[j]] = r % n[j]; r = Math.floor(r / n[j]); }
    let off = 0;
    for (let i = 0; i < dims.length; i++) {
      const d = dims[i];
      off += st[i] * (vary.includes(d) ? cur[d] : (d in fix ? fix[d] : (idx[d] || 0)));
    }
    out[k] = a[off];
  }
  return out;
}
for (const [src, cols, vary, fix] of targets) {
  const data = Object.assign({}, src.data);
  for (const [c, name] of Object.entries(cols)) data[c] = pick(name, vary, fix);
  src.data = data;
}
for (const [model, attr, name] of texts) model[attr] = pick(name, [], {})[0];
"""


def _js_array(values: np.ndarray):
    """A flat array Bokeh sends as binary (numbers) or a list of str (labels)."""
    a = np.ascontiguousarray(values).reshape(-1)
    if a.dtype.kind not in "biuf":
        return [str(x) for x in a]
    if a.dtype.kind == "b" or (a.dtype.kind in "iu" and a.dtype.itemsize > 4):
        return a.astype(np.float64)
    return a


def _widgets(p: Panel) -> dict[str, Select]:
    ws = {d: Select(title=d, value=p.options[d][0], options=p.options[d], width=220)
          for d in p.free}
    arrays = {k: [list(dims), _js_array(v)] for k, (dims, v) in p.arrays.items()}
    targets = [[src, cols, list(vary), fix] for src, cols, vary, fix in p.targets]
    texts = [[m, a, n] for m, a, n in p.texts]
    cb = CustomJS(args=dict(widgets=ws, arrays=arrays, sizes=p.sizes, targets=targets,
                            texts=texts), code=_SLICE_JS)
    for w in ws.values():
        w.js_on_change("value", cb)
    return ws


# --------------------------------------------------------------------------- cube → panel
def _fmt_value(dim: str, v: Any) -> str:
    v = v.item() if hasattr(v, "item") else v
    if isinstance(v, float | int) and not isinstance(v, bool):
        if dim in TOKEN_DIMS:
            for unit, f in (("M", 1024.0**2), ("k", 1024.0)):
                if v >= f and v % f == 0:
                    return f"{v / f:g}{unit}"
            return f"{v:,.0f}"
        return f"{v:,.6g}"
    return str(v)


def _layout(ds, variables: Sequence[str], drawn: Sequence[str], kind: str) -> dict:
    """Load ``variables``; name the widget dims (``free``) and the scalar selections (``fixed``)."""
    sub = ds[list(variables)]
    single = [d for d in sub.dims if d not in drawn and sub.sizes[d] == 1]
    sub = sub.isel({d: 0 for d in single}).load()
    free = [d for d in sub.dims if d not in drawn]
    fixed = {n: sub[n].values for n in ("precision", "chips", "slo", "context", "model",
                                        "hardware") if n in sub.coords and sub[n].ndim == 0}
    return {"sub": sub, "free": free, "fixed": fixed,
            "options": {d: [_fmt_value(d, v) for v in sub[d].values] for d in free},
            "sizes": {d: int(n) for d, n in sub.sizes.items()}}


def _panel(lay: dict, fig) -> Panel:
    return Panel(fig, lay["free"], lay["options"], lay["sizes"])


def _titles(lay: dict, p: Panel, head: str) -> None:
    """The figure's title ``head`` and, under it, which panel is shown (``dim=value, …``): a
    string array over the widget dims. Two short lines, so neither is cut off."""
    p.fig.title.text = head
    fixed = ", ".join(f"{k}={_fmt_value(k, v)}" for k, v in lay["fixed"].items())

    def one(ix):
        key = ", ".join(f"{d}={p.options[d][i]}" for d, i in zip(p.free, ix, strict=True))
        return ", ".join(x for x in (key, fixed) if x)

    p.add("panel", p.free, _strings([p.sizes[d] for d in p.free], one))
    t = Title(text="", text_font_size="11pt", text_font_style="bold", text_color="#333333")
    p.fig.add_layout(t, "above")
    p.text(t, "text", "panel")


def _vals(sub, name: str, dims: Sequence[str]) -> np.ndarray:
    """``sub[name]`` transposed to ``dims`` (missing dims broadcast), as float32/64."""
    da = sub[name]
    extra = [d for d in dims if d not in da.dims]
    da = da.expand_dims({d: sub.sizes[d] for d in extra}) if extra else da
    return np.asarray(da.transpose(*dims).values, dtype=np.result_type(da.dtype, np.float32))


def _dims(sub, names: Sequence[str]) -> tuple[str, ...]:
    """The union of the dims of ``names``, in the cube's order."""
    have = {d for n in names for d in sub[n].dims}
    return tuple(d for d in sub.dims if d in have)


def _label(name: str, words: str | None = None, *, long: bool = False) -> str:
    """An axis label: ``words`` (default: the name, or with ``long`` the registry's long name)
    and the registry's unit of ``name``."""
    from rooflax.core import quantities as Q

    words = Q.QUANTITIES[name].long_name if long else (words or name)
    unit = Q.units_of(name)
    return f"{words} ({unit})" if unit and unit != "1" else words


def _figure(x_label: str, y_label: str, *, logx=True, logy=True, **kw):
    f = figure(frame_width=_W, frame_height=_H, x_axis_type="log" if logx else "linear",
               y_axis_type="log" if logy else "linear", x_axis_label=x_label,
               y_axis_label=y_label, tools="pan,wheel_zoom,box_zoom,reset,save,hover", **kw)
    for ax, log in ((f.xaxis, logx), (f.yaxis, logy)):
        if log:
            ax.ticker = CustomJSTicker(major_code=_LOG_TICKS_JS)
            ax.formatter = CustomJSTickFormatter(code=_TICKS_JS)
    f.title.text_font_size = "13pt"
    f.add_layout(Legend(items=[], click_policy="hide", label_text_font_size="9pt"), "right")
    return f


def _subtitle(p: Panel, name: str) -> None:
    t = Title(text="", text_font_size="10pt", text_font_style="italic", text_color="#444444")
    p.fig.add_layout(t, "above")
    p.text(t, "text", name)


def _legend(fig, label: str, *renderers) -> None:
    fig.legend[0].items.append(LegendItem(label=label, renderers=list(renderers)))


def _strings(shape: Sequence[int], fn) -> np.ndarray:
    """An object array of ``fn(index)`` over ``shape``."""
    out = np.empty(shape or [1], dtype=object).reshape(shape)
    for ix in np.ndindex(*shape):
        out[ix] = fn(ix)
    return out


def _flags(sub, name: str, default: Sequence[str] | None = None) -> list[str]:
    """The names of the codes of ``name``: the cube's CF ``flag_meanings`` (no jax import), else
    ``default``, else the core's ``BINDINGS``."""
    got = sub[name].attrs.get("flag_meanings") if name in sub else None
    if got:
        return str(got).split()
    if default is not None:
        return list(default)
    from rooflax.core import BINDINGS

    return list(BINDINGS)


def _need(ds, names: Sequence[str], kind: str) -> None:
    missing = [n for n in names if n not in ds.data_vars]
    if missing:
        raise UserError(f"{kind}: the cube lacks {', '.join(missing)} (add them to the sweep "
                        "config's outputs.values)")


def _prep(ds, sel: dict):
    return select(ds, sel) if sel else ds


def _bands(B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Geometric cell edges around each batch value (log axis)."""
    mid = np.sqrt(B[1:] * B[:-1]) if len(B) > 1 else np.array([])
    r = B[1] / B[0] if len(B) > 1 else 2.0
    lo = np.concatenate([[B[0] / math.sqrt(r)], mid])
    hi = np.concatenate([mid, [B[-1] * math.sqrt(B[-1] / B[-2]) if len(B) > 1 else B[0] * 2]])
    return lo, hi


def _num(x: float, unit: str = "") -> str:
    return "n/a" if not math.isfinite(x) else f"{x:,.0f}{unit}" if abs(x) >= 10 else f"{x:.3g}{unit}"


# --------------------------------------------------------------------------- roofline
def roofline(ds, **sel):
    """T_compute and T_memory against batch; regimes shaded; B_x, B_max and B* marked."""
    ds = _prep(ds, sel)
    _need(ds, ["t_compute", "t_memory", "regime"], "roofline")
    names = [n for n in ("t_compute", "t_memory", "regime", "b_x", "b_max", "b_star", "binding")
             if n in ds.data_vars]
    lay = _layout(ds, names, ("batch",), "roofline")
    sub = lay["sub"]
    f = _figure(_label("batch", "batch B"), _label("t_step", "time per decode step"))
    p = _panel(lay, f)
    for n in names:
        p.add(n, _dims(sub, [n]), _vals(sub, n, _dims(sub, [n])))
    B = np.asarray(sub["batch"].values, dtype=float)
    lo, hi = _bands(B)
    f.x_range = Range1d(lo[0], hi[-1])
    regions = _REGIONS[:max(3, len(_flags(sub, "regime", ())))]
    cmap = LinearColorMapper(palette=[c for _, c in regions], low=0, high=len(regions) - 1,
                             nan_color="white")
    f.vstrip(x0="lo", x1="hi", source=p.source({"regime": "regime"}, ("batch",),
                                                static={"lo": lo, "hi": hi}),
             fill_color={"field": "regime", "transform": cmap}, fill_alpha=0.13, line_alpha=0)
    for label, color in regions:
        _legend(f, label, f.vstrip(x0=[math.nan], x1=[math.nan], fill_color=color, fill_alpha=0.3,
                                   line_alpha=0))
    src = p.source({"tc": "t_compute", "tm": "t_memory"}, ("batch",), static={"B": B})
    rc = f.line("B", "tc", source=src, color="#d62728", line_width=2.5)
    rm = f.line("B", "tm", source=src, color="#1f77b4", line_width=2.5)
    _legend(f, "T_compute", rc)
    _legend(f, "T_memory", rm)
    f.hover.renderers = [rc, rm]
    f.hover.tooltips = [("B", "@B{0,0}"), ("T_compute", "@tc{0.000e0} s"),
                        ("T_memory", "@tm{0.000e0} s")]
    marks = (("b_x", "crossover B_x", dict(line_color="black", line_dash="dashed")),
             ("b_max", "B_max (memory full)", dict(line_color="#555555", line_width=2.5)),
             ("b_star", "B*", dict(line_color="#9467bd", line_dash="dotted", line_width=2.5)))
    if "b_max" in names:
        bm = p.arrays["b_max"]
        p.add("over", bm[0], np.where(bm[1] < lo[0], lo[0], bm[1]))  # B_max < 1: all of it
        over = f.vstrip(x0="x0", x1="x1", source=p.source({"x0": "over"}, static={"x1": [hi[-1]]}),
                        fill_color="#999999", fill_alpha=0.25, hatch_pattern="/",
                        hatch_color="#777777", hatch_alpha=0.4, line_alpha=0)
        _legend(f, "past capacity (does not fit)", over)
    for n, label, style in marks:
        if n in names:
            _legend(f, label, f.vspan(x="x", source=p.source({"x": n}), **style))
    p.add("note", p.free, _roof_notes(sub, p.free))
    _subtitle(p, "note")
    _titles(lay, p, "Roofline (bound)")
    return p


def _roof_notes(sub, free) -> np.ndarray:
    """Per panel: B_x, B_max, B* (and what binds B*), or that nothing fits."""
    BINDINGS = _flags(sub, "binding")
    got = {n: _vals(sub, n, free) for n in ("b_x", "b_max", "b_star", "binding") if n in sub}
    shape = [sub.sizes[d] for d in free]

    def one(ix):
        v = {n: float(a[ix]) for n, a in got.items()}
        if "b_max" in v and not v["b_max"] >= 1:
            return "does not fit: the weights exceed memory at every batch"
        bx = v.get("b_x", math.nan)
        parts = [f"crossover B_x = {_num(bx)}" if math.isfinite(bx) else "no crossover (KV-bound)"]
        if "b_max" in v:
            parts.append(f"B_max = {_num(v['b_max'])}")
        if "b_star" in v:
            k = int(v["binding"]) if math.isfinite(v.get("binding", math.nan)) else -1
            why = f" ({BINDINGS[k]})" if 0 <= k < len(BINDINGS) else ""
            parts.append(f"B* = {_num(v['b_star'])}{why}")
        return " · ".join(parts)

    return _strings(shape, one)


# --------------------------------------------------------------------------- cost
def _over_hardware(ds):
    return ds if "hardware" in ds.dims or "hardware" not in ds.coords else ds.expand_dims("hardware")


def _feasible(sub, name: str, dims: Sequence[str]) -> np.ndarray:
    """Where ``batch`` ≤ B_max and the value is a positive number (a price is known)."""
    v = _vals(sub, name, dims)
    ok = np.isfinite(v) & (v > 0)
    if "b_max" in sub and "batch" in dims:
        B = np.asarray(sub["batch"].values, dtype=float).reshape(
            [sub.sizes["batch"] if d == "batch" else 1 for d in dims])
        ok &= B <= _vals(sub, "b_max", dims)
    return ok


def _unusable(sub, free, ix, ok_any: np.ndarray, priced: np.ndarray) -> str:
    """Names of the hardware that does not fit / has no price, at panel ``ix``."""
    hw = [str(h) for h in sub["hardware"].values]
    fit = [h for h, a, q in zip(hw, ok_any[ix], priced[ix], strict=True) if not a and q]
    unpriced = [h for h, q in zip(hw, priced[ix], strict=True) if not q]
    parts = [f"does not fit: {', '.join(fit)}"] if fit else []
    parts += [f"no price: {', '.join(unpriced)}"] if unpriced else []
    return " · ".join(parts) or "every hardware fits at some batch"


def _fit_note(p: Panel, sub, dims: Sequence[str], ok, priced) -> None:
    """The ``note`` string array: which hardware does not fit / has no price, per panel."""
    rest = [d for d in dims if d != "batch"]
    fits, has_price = (np.moveaxis(a.any(axis=list(dims).index("batch")), rest.index("hardware"),
                                   -1) for a in (ok, priced))
    p.add("note", p.free, _strings([p.sizes[d] for d in p.free],
                                   lambda ix: _unusable(sub, p.free, ix, fits, has_price)))


def cost(ds, **sel):
    """Cost per Mtok against batch, one line per hardware; past capacity dotted; B* marked."""
    ds = _over_hardware(_prep(ds, sel))
    _need(ds, ["cost_per_mtok"], "cost")
    names = [n for n in ("cost_per_mtok", "b_max", "b_star", "cost_per_mtok_at_b_star")
             if n in ds.data_vars]
    lay = _layout(ds, names, ("batch", "hardware"), "cost")
    sub = lay["sub"]
    f = _figure(_label("batch", "batch B"), _label("cost_per_mtok", long=True))
    p = _panel(lay, f)
    dims = _dims(sub, names)
    c = _vals(sub, "cost_per_mtok", dims)
    ok = _feasible(sub, "cost_per_mtok", dims)
    priced = np.isfinite(c) & (c > 0)
    p.add("fit", dims, np.where(ok, c, np.nan))
    p.add("past", dims, np.where(~ok & priced, c, np.nan))
    B = np.asarray(sub["batch"].values, dtype=float)
    star = "b_star" in names and "cost_per_mtok_at_b_star" in names
    if star:
        s = _vals(sub, "cost_per_mtok_at_b_star", _dims(sub, ["b_star"]))
        p.add("b_star", _dims(sub, ["b_star"]), _vals(sub, "b_star", _dims(sub, ["b_star"])))
        p.add("c_star", _dims(sub, ["b_star"]), np.where(s > 0, s, np.nan))
    lines = []
    for i, h in enumerate(sub["hardware"].values):
        color = _PALETTE[i % len(_PALETTE)]
        src = p.source({"cost": "fit", "past": "past"}, ("batch",), {"hardware": i},
                       static={"B": B, "hardware": [str(h)] * len(B)})
        r = [f.line("B", "cost", source=src, color=color, line_width=2.5),
             f.line("B", "past", source=src, color=color, line_width=1.5, line_dash="dotted",
                    alpha=0.6)]
        if star:
            r.append(f.scatter("x", "y", source=p.source({"x": "b_star", "y": "c_star"},
                                                         fix={"hardware": i}),
                               size=11, color=color, line_color="black"))
        lines.append(r[0])
        _legend(f, str(h), *r)
    f.hover.renderers = lines
    f.hover.tooltips = [("hardware", "@hardware"), ("B", "@B{0,0}"), ("cost", "$@cost{0.000a}/Mtok")]
    _fit_note(p, sub, dims, ok, priced)
    _subtitle(p, "note")
    _titles(lay, p, "Cost per output token (bound; ● B*, dotted: past capacity)")
    return p


# --------------------------------------------------------------------------- frontier
def _envelope(speed: np.ndarray, c: np.ndarray, ok: np.ndarray):
    """Pareto envelope over the last axis: points no faster-and-cheaper point beats (of
    identical points, one).

    Returns (on-envelope mask, envelope speeds, envelope costs), the last two sorted by
    falling speed and padded with NaN at the end.
    """
    s = np.where(ok, speed, -np.inf)
    c = np.where(ok, c, np.inf)
    order = np.lexsort((c, -s), axis=-1)  # fastest first; at equal speed, cheapest first
    cs = np.take_along_axis(c, order, -1)
    best = np.minimum.accumulate(cs, axis=-1)
    prev = np.concatenate([np.full(cs.shape[:-1] + (1,), np.inf), best[..., :-1]], axis=-1)
    on_sorted = np.isfinite(cs) & (cs < prev)
    on = np.zeros_like(on_sorted)
    np.put_along_axis(on, order, on_sorted, -1)
    pack = np.argsort(~on_sorted, axis=-1, kind="stable")
    keep = np.take_along_axis(on_sorted, pack, -1)
    xs = np.where(keep, np.take_along_axis(np.take_along_axis(s, order, -1), pack, -1), np.nan)
    ys = np.where(keep, np.take_along_axis(cs, pack, -1), np.nan)
    return on, xs, ys


def _slo_seconds(sub, slo) -> tuple[tuple[str, ...], np.ndarray] | None:
    if slo is not None:
        return (), np.asarray(float(slo))
    if "slo" in sub.coords:
        return tuple(sub["slo"].dims), np.asarray(sub["slo"].values, dtype=float)
    return None


def frontier(ds, *, slo: float | None = None, **sel):
    """$/Mtok against tokens/s per user: the Pareto envelope across hardware and batch.

    ``slo`` (seconds per output token) shades the speeds that miss it. Points past capacity
    and unpriced hardware are not drawn; the subtitle lists them.
    """
    ds = _over_hardware(_prep(ds, sel))
    lat = "latency" if "latency" in ds.data_vars else "t_step"
    _need(ds, ["cost_per_mtok", lat], "frontier")
    names = [n for n in ("cost_per_mtok", lat, "b_max", "latency_at_b_star",
                         "cost_per_mtok_at_b_star") if n in ds.data_vars]
    lay = _layout(ds, names, ("batch", "hardware"), "frontier")
    sub = lay["sub"]
    f = _figure(_label("tokens_per_second_per_user", "speed per user"),
                _label("cost_per_mtok", long=True))
    p = _panel(lay, f)
    dims = _dims(sub, ["cost_per_mtok", lat])
    c, speed = _vals(sub, "cost_per_mtok", dims), 1.0 / _vals(sub, lat, dims)
    ok = _feasible(sub, "cost_per_mtok", dims) & np.isfinite(speed)
    last = [d for d in dims if d not in ("hardware", "batch")] + ["hardware", "batch"]
    perm = [dims.index(d) for d in last]
    flat = [np.transpose(a, perm).reshape(
        [sub.sizes[d] for d in last[:-2]] + [-1]) for a in (speed, c, ok)]
    on, xs, ys = _envelope(*flat)
    on = np.transpose(on.reshape([sub.sizes[d] for d in last]), np.argsort(perm))
    p.sizes["_env"] = xs.shape[-1]
    p.add("env_x", last[:-2] + ["_env"], xs)
    p.add("env_y", last[:-2] + ["_env"], ys)
    p.add("x", dims, np.where(ok, speed, np.nan))
    p.add("y", dims, np.where(ok, c, np.nan))
    p.add("y_env", dims, np.where(on, c, np.nan))
    _slo_region(f, p, sub, slo)
    env = f.line("x", "y", source=p.source({"x": "env_x", "y": "env_y"}, ("_env",)),
                 color="black", line_width=2)
    _legend(f, "Pareto envelope (all hardware)", env)
    _frontier_points(f, p, sub, names)
    _fit_note(p, sub, dims, ok, np.isfinite(c) & (c > 0))
    _subtitle(p, "note")
    _titles(lay, p, "Price of speed (bound; ★ B*, ● on the envelope)")
    return p


def _slo_region(f, p: Panel, sub, slo) -> None:
    got = _slo_seconds(sub, slo)
    if got is None:
        return
    dims, secs = got
    p.add("slo_speed", dims, np.where(secs > 0, 1.0 / secs, np.nan))
    r = f.vstrip(x0="x0", x1="x1", source=p.source({"x1": "slo_speed"}, static={"x0": [1e-12]}),
                 fill_color="#d62728", fill_alpha=0.08, line_alpha=0)
    ms = ", ".join(f"{1e3 * s:g} ms" for s in np.atleast_1d(secs))
    _legend(f, f"misses the SLO (time per token > {ms})", r)


def _frontier_points(f, p: Panel, sub, names) -> None:
    """Per hardware: its feasible points (faint), those on the envelope, its B* star."""
    B = np.asarray(sub["batch"].values, dtype=float)
    star = "latency_at_b_star" in names and "cost_per_mtok_at_b_star" in names
    if star:
        d3 = _dims(sub, ["latency_at_b_star"])
        s = _vals(sub, "cost_per_mtok_at_b_star", d3)
        p.add("sx", d3, 1.0 / _vals(sub, "latency_at_b_star", d3))
        p.add("sy", d3, np.where(s > 0, s, np.nan))
    pts = []
    for i, h in enumerate(sub["hardware"].values):
        color = _PALETTE[i % len(_PALETTE)]
        src = p.source({"x": "x", "y": "y", "y_env": "y_env"}, ("batch",), {"hardware": i},
                       static={"B": B, "hardware": [str(h)] * len(B)})
        r = [f.scatter("x", "y", source=src, color=color, size=5, alpha=0.35),
             f.scatter("x", "y_env", source=src, color=color, size=9)]
        if star:
            r.append(f.scatter("x", "y", source=p.source({"x": "sx", "y": "sy"},
                                                         fix={"hardware": i}),
                               marker="star", size=17, color=color, line_color="black"))
        pts += r[:2]
        _legend(f, str(h), *r)
    f.x_range.renderers = pts
    f.y_range.renderers = pts
    f.hover.renderers = pts
    f.hover.tooltips = [("hardware", "@hardware"), ("B", "@B{0,0}"),
                        ("speed", "@x{0,0.0} tokens/s"), ("cost", "$@y{0.000a}/Mtok")]


# --------------------------------------------------------------------------- bstar
def bstar(ds, **sel):
    """B* as a heatmap over hardware × context (or bw × c_over_bw for hypothetical hardware)."""
    ds = _prep(ds, sel)
    _need(ds, ["b_star"], "bstar")
    dims = ds["b_star"].dims
    if "hardware" in dims and "context" in dims:
        x, y = "hardware", "context"
    elif "bw" in dims and "c_over_bw" in dims:
        x, y = "bw", "c_over_bw"
    else:
        raise UserError("bstar: needs dims hardware × context or bw × c_over_bw; "
                        f"the cube has {', '.join(dims)}")
    names = [n for n in ("b_star", "binding") if n in ds.data_vars]
    lay = _layout(ds, names, (x, y), "bstar")
    sub = lay["sub"]
    xl = [_fmt_value(x, v) for v in sub[x].values]
    yl = [_fmt_value(y, v) for v in sub[y].values]
    f = figure(frame_width=_W, frame_height=_H, x_range=xl, y_range=yl, tools="hover,save",
               x_axis_label=_label(x), y_axis_label=_label(y))
    f.title.text_font_size = "13pt"
    p = _panel(lay, f)
    d = _dims(sub, names)
    b = _vals(sub, "b_star", d)
    p.add("b", d, np.where(b > 0, b, np.nan))
    p.add("label", d, _bstar_labels(sub, d, b))
    fin = b[np.isfinite(b) & (b > 0)]
    mapper = LogColorMapper(palette="Viridis256", nan_color="#dddddd",
                            low=float(fin.min()) if fin.size else 1.0,
                            high=float(fin.max()) if fin.size else 10.0)
    static = {"x": [a for a in xl for _ in yl], "y": yl * len(xl)}
    src = p.source({"b": "b", "label": "label"}, (x, y), static=static)
    f.rect("x", "y", 1, 1, source=src, fill_color={"field": "b", "transform": mapper},
           line_color="white")
    if len(xl) * len(yl) <= 160:  # else the hover says it
        f.text("x", "y", text="label", source=src, text_align="center", text_baseline="middle",
               text_font_size="8pt")
    f.add_layout(ColorBar(color_mapper=mapper, title="B* (sequences)"), "right")
    f.xaxis.major_label_orientation = 0.6
    f.hover.tooltips = [(x, "@x"), (y, "@y"), ("B*", "@label")]
    _titles(lay, p, "Optimal batch B* (bound; grey: does not fit)")
    return p


def _bstar_labels(sub, dims, b: np.ndarray) -> np.ndarray:
    BINDINGS = _flags(sub, "binding")
    code = _vals(sub, "binding", dims).astype(int) if "binding" in sub else np.full(b.shape, -1)
    words = np.array([*BINDINGS, ""], dtype=object)  # index -1: no binding code
    nums = np.vectorize(lambda v: f"{v:,.0f}" if np.isfinite(v) and v > 0 else "does not fit",
                        otypes=[object])(b)
    why = words[np.where((code >= 0) & (code < len(BINDINGS)), code, -1)]
    return np.where(np.isfinite(b) & (b > 0), nums + np.where(why != "", " (" + why + ")", ""),
                    nums)


# --------------------------------------------------------------------------- sensitivity
def sensitivity(ds, *, output: str = "cost_at_b_star", **sel):
    """Elasticities ∂ln(output)/∂ln(knob) as a tornado, largest magnitude on top."""
    ds = _prep(ds, sel)
    prefix = f"elasticity__{output}__"
    names = sorted(n for n in ds.data_vars if n.startswith(prefix))
    if not names:
        raise UserError(f"sensitivity: the cube has no {prefix}* variables")
    knobs = [n[len(prefix):] for n in names]
    lay = _layout(ds, names, (), "sensitivity")
    sub = lay["sub"]
    d = _dims(sub, names)
    e = np.stack([_vals(sub, n, d) for n in names], axis=-1)
    mag = np.where(np.isfinite(e), np.abs(e), -1.0)
    rank = np.argsort(np.argsort(mag, axis=-1, kind="stable"), axis=-1)
    k = len(knobs)
    top = float(np.nanmax(np.abs(e))) if np.isfinite(e).any() else 1.0
    f = figure(frame_width=_W, frame_height=max(200, 50 * k), tools="save", x_range=Range1d(
        -1.35 * top, 1.35 * top), y_range=Range1d(-0.7, k - 0.3),
        x_axis_label=f"elasticity of {output} (% change per +1 % of the knob)")
    f.yaxis.visible = False
    f.title.text_font_size = "13pt"
    p = _panel(lay, f)
    p.sizes["_knob"] = k
    dk = (*d, "_knob")
    p.add("e", dk, e)
    p.add("rank", dk, rank)
    p.add("sign", dk, np.sign(np.nan_to_num(e)))
    p.add("lx", dk, np.where(np.isfinite(e), np.maximum(np.nan_to_num(e), 0.0), 0.0))
    p.add("text", dk, np.vectorize(lambda v, kn: f"{kn}  {v:+.3g}" if np.isfinite(v)
                                   else f"{kn}  n/a", otypes=[object])(e, np.array(knobs)))
    src = p.source({"e": "e", "rank": "rank", "sign": "sign", "lx": "lx", "text": "text"},
                   ("_knob",))
    cmap = LinearColorMapper(palette=["#1f77b4", "#d62728"], low=-1, high=1)
    f.hbar(y="rank", left=0, right="e", height=0.7, source=src,
           fill_color={"field": "sign", "transform": cmap}, line_color=None)
    f.text("lx", "rank", text="text", source=src, x_offset=5, text_baseline="middle",
           text_font_size="10pt")
    f.ray(x=0, y=-1, length=0, angle=math.pi / 2, color="black")
    _titles(lay, p, f"+1 % knob → % change in {output}")
    return p


_MAKERS = {"roofline": roofline, "cost": cost, "bstar": bstar, "sensitivity": sensitivity,
           "frontier": frontier}


#: What the hover of a deployment on ``rooflax frontier``'s plot shows.
_DEPLOYMENT_HOVER = ("chips", "layout", "tp", "precision", "kv", "concurrency", "tok_s_per_user",
                     "usd_per_m_output")


def deployments(res: dict[str, Any]) -> Panel:
    """``rooflax frontier``'s result: per hardware the Pareto frontier of $ per M output tokens
    against output tokens/s per user, the cheapest deployment meeting the SLO starred and the
    SLO's least speed dashed (plain Bokeh: the page stays offline)."""
    f = _figure("output tokens/s per user", "$ per M output tokens")
    f.title.text = (f"{res['model']}: cost vs speed frontier per hardware (isl {res['isl']:g}, "
                    f"osl {res['osl']:g}; {res['side']})")
    f.hover.tooltips = [(k, f"@{k}") for k in _DEPLOYMENT_HOVER]
    for i, (hw, entry) in enumerate(res["hardware"].items()):
        pts = entry["frontier"]
        if not pts:
            continue
        src = ColumnDataSource({k: [p[k] for p in pts] for k in _DEPLOYMENT_HOVER})
        color = _PALETTE[i % len(_PALETTE)]
        step = f.step("tok_s_per_user", "usd_per_m_output", source=src, mode="after", color=color,
                      line_width=2)
        dots = f.scatter("tok_s_per_user", "usd_per_m_output", source=src, color=color, size=6)
        _legend(f, hw, step, dots)
    best = [e["best"] for e in res["hardware"].values() if e["best"]]
    if best:
        src = ColumnDataSource({k: [b[k] for b in best] for k in _DEPLOYMENT_HOVER})
        star = f.scatter("tok_s_per_user", "usd_per_m_output", source=src, marker="star", size=18,
                         color="black")
        _legend(f, "cheapest meeting the SLO", star)
    if res["slo"]["min_speed"] > 0:
        f.add_layout(Span(location=res["slo"]["min_speed"], dimension="height",
                          line_dash="dashed", line_color="grey"))
    return Panel(f, [], {}, {})


def make(kind: str, ds, **kwargs) -> Panel:
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


def save(p: Panel, path: str) -> str:
    """Write ``p`` to ``path``: ``.html`` (widgets, offline) or ``.png`` (the shown panel only)."""
    import os

    ext = os.path.splitext(path)[1].lower()
    if ext == ".html":
        from bokeh.embed import file_html
        from bokeh.layouts import column, row
        from bokeh.resources import INLINE

        ws = _widgets(p)
        layout = row(p.fig, column(*ws.values())) if ws else p.fig
        html = file_html(layout, INLINE, title=os.path.basename(path))
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(html)
        return path
    if ext == ".png":
        if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
            raise UserError("PNG export needs Debian's chromium and chromium-driver "
                            "(apt-get install chromium chromium-driver); write .html instead")
        from bokeh.io.export import export_png

        p.fig.toolbar_location = None
        driver = _webdriver()
        try:
            export_png(p.fig, filename=path, webdriver=driver, timeout=60)
        finally:
            driver.quit()
        return path
    raise UserError(f"output {path!r}: use a .html or .png file name")
