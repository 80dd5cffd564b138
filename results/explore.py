"""``rooflax explore``: seed 000's T_compute / T_memory simulator as a Panel app.

Sliders for L, b, BW, N_active, N_total, C, w and the batch; the two lines and
their crossover B* move live; readouts "Compute / Memory ratio" and "KV share"
at the chosen batch, as in the seed (its defaults give 3.34e-2 and 1.38 % at
B = 128). A picker loads any catalog hardware (replica of ``chips`` chips at a
precision) and model; with both loaded, the **predicted** decode step (the calibrated
:mod:`rooflax.core.predict`, as ``query --predicted``) is drawn beside the bound's two lines at
the sliders' L and B. Every number comes from :mod:`rooflax.core`.
"""

from __future__ import annotations

import math

import numpy as np

#: The seed's defaults: N_active = 37e9, C = 1e15 MAC/s, N_total = 671e9 at 1 byte,
#: BW = 4.8e12 B/s, L = 1024, b = 71 680 B/token, B = 128.
SEED_DEFAULTS = {"L": 1024.0, "b": 71680.0, "BW": 4.8e12, "N_active": 37e9, "N_total": 671e9,
                 "C": 1e15, "w": 1.0, "batch": 128}


def sci(x: float) -> str:
    """The seed's number style: 3.34e-2 (three significant digits, unpadded exponent)."""
    if not math.isfinite(x):
        return "∞" if x > 0 else "n/a"
    if x == 0:
        return "0"
    e = int(math.floor(math.log10(abs(x))))
    m = x / 10**e
    if round(m, 2) >= 10:
        m, e = m / 10, e + 1
    return f"{m:.2f}e{e}"


def numbers(L: float, b: float, BW: float, N_active: float, N_total: float, C: float, w: float,
            batch: float) -> dict[str, float]:
    """Everything the app shows, from core functions (seed units: MAC/s, B/s, bytes)."""
    from rooflax import core as rc

    hw = rc.Hardware(bw=BW, c_over_bw=C / BW, capacity=math.inf)
    model = rc.Model(n_total=N_total, sparsity=N_total / N_active, kv_bytes_per_token=b,
                     bytes_per_weight=w)
    wl = rc.Workload(batch=float(batch), context=L)
    bx = float(rc.b_x(hw, model, wl))
    return {
        "t_compute": float(rc.t_compute(hw, model, wl)),
        "t_memory": float(rc.t_memory(hw, model, wl)),
        "ratio": float(rc.compute_memory_ratio(hw, model, wl)),
        "kv_share": float(rc.kv_share(hw, model, wl)),
        "b_x": bx,
        "b_x_kv_free": float(rc.b_x_kv_free(hw, model)),
        "latency_floor": float(rc.latency_floor(hw, model)),
        "regime": rc.REGIMES[int(rc.regime(hw, model, wl))],
    }


def curves(L, b, BW, N_active, N_total, C, w, bmax: float, n: int = 200):
    """T_compute and T_memory over batch 0 … bmax (core functions on a batch vector)."""
    from rooflax import core as rc

    B = np.linspace(0.0, bmax, n)
    hw = rc.Hardware(bw=BW, c_over_bw=C / BW, capacity=math.inf)
    model = rc.Model(n_total=N_total, sparsity=N_total / N_active, kv_bytes_per_token=b,
                     bytes_per_weight=w)
    wl = rc.Workload(batch=B, context=L)
    return B, np.asarray(rc.t_compute(hw, model, wl)), np.asarray(rc.t_memory(hw, model, wl))


def prediction_trees(hardware: str, chips: int, precision: str, model: str, weights: str,
                     engine: str | None = None):
    """(hw, model, Engine) of the calibrated prediction of a catalog pick: the same trees as
    ``rooflax query --predicted [--engine]`` (layout ep for MoE / tp for dense, the replica's
    link, the extended model, the shipped calibration; ``engine``: its own time per layer)."""
    from .point import build_point, predicted_trees

    pt = build_point(hardware, model, chips=float(chips), precision=precision, weights=weights,
                     batch=1.0, context=1024.0)
    return predicted_trees(pt, engine)


def predicted_step(trees, L: float, B) -> np.ndarray:
    """The prediction's decode step over batches ``B`` at context ``L``, s (NaN where the
    weights do not fit the replica)."""
    from rooflax import core as rc

    from .point import evaluate_predicted

    hw, model, eng = trees
    wl = rc.Workload(batch=np.asarray(B, dtype=float), context=float(L))
    return np.asarray(evaluate_predicted("t_step", hw, model, wl, eng), dtype=float)


def prediction_readout(pred: dict | None, t: float, batch: float, bound_step: float) -> str:
    """The readout of the predicted step ``t`` (s) at the sliders' B (or why there is none)."""
    if pred is None:
        return ("<b>Predicted step:</b> <span id='predstep'>n/a</span> — load a catalog hardware "
                "and model (the calibration needs their layers, experts and chip)")
    if not math.isfinite(t):
        return (f"<b>Predicted step</b> ({pred['label']}): <span id='predstep'>n/a</span> — does "
                "not fit: the weights exceed the replica's HBM (add chips or narrow the weights)")
    return (f"<b>Predicted step</b> (calibrated on measured silicon; {pred['label']}) at "
            f"B = {batch:,.0f}: <span id='predstep'>{sci(t)}</span> s vs the bound "
            f"max(T_compute, T_memory) = {sci(bound_step)} s — the prediction follows L and B; "
            "the other sliders move the bound only")


#: Slider units → SI (TB/s, B params, P MAC/s); the others are shown in SI.
SLIDER_SCALE = {"L": 1.0, "b": 1.0, "BW": 1e12, "N_active": 1e9, "N_total": 1e9, "C": 1e15,
                "w": 1.0, "batch": 1.0}
#: The seed's inputs of :func:`numbers` / :func:`curves` other than the batch.
SEED_INPUTS = ("L", "b", "BW", "N_active", "N_total", "C", "w")
SEED = "(seed defaults)"
#: The engine choice whose prediction uses the time per layer shared by all engines.
SHARED = "shared (all engines)"


def _sliders() -> dict:
    """One slider per seed input and the batch, at the seed's defaults."""
    import panel as pn

    d, W = SEED_DEFAULTS, pn.widgets
    return {
        "L": W.EditableFloatSlider(label="L — context (tokens)", start=0, end=262144, step=256,
                                   value=d["L"], format="0,0"),
        "b": W.EditableFloatSlider(label="b — KV bytes per token", start=0, end=400000, step=256,
                                   value=d["b"], format="0,0"),
        "BW": W.EditableFloatSlider(label="BW — memory bandwidth (TB/s)", start=0.1, end=100,
                                    step=0.1, value=d["BW"] / 1e12),
        "N_active": W.EditableFloatSlider(label="N_active — active params (B)", start=0.5,
                                          end=1000, step=0.5, value=d["N_active"] / 1e9),
        "N_total": W.EditableFloatSlider(label="N_total — total params (B)", start=0.5, end=2000,
                                         step=0.5, value=d["N_total"] / 1e9),
        "C": W.EditableFloatSlider(label="C — MAC/s (P = 1e15)", start=0.01, end=50, step=0.01,
                                   value=d["C"] / 1e15),
        "w": W.EditableFloatSlider(label="w — bytes per weight", start=0.25, end=4, step=0.125,
                                   value=d["w"]),
        "batch": W.EditableIntSlider(label="B — batch", start=1, end=20000, step=1,
                                     value=d["batch"]),
    }


def _picker() -> dict:
    """The catalog picker: hardware × chips at a precision, model with its weights, the engine
    whose calibrated time per layer the prediction uses, a button."""
    import panel as pn

    from rooflax.sweeps import calibration, catalogs

    W = pn.widgets
    return {
        "hardware": W.Select(label="hardware", options=[SEED] + catalogs.hardware_names()),
        "chips": W.IntInput(label="chips", value=1, start=1, end=4096),
        "precision": W.Select(label="precision", options=["bf16", "fp8", "fp4", "int8"],
                              value="fp8"),
        "model": W.Select(label="model", options=[SEED] + catalogs.model_names()),
        "weights": W.Select(label="weights", options=["fp8", "bf16", "fp4", "native"],
                            value="fp8"),
        "engine": W.Select(label="engine (prediction)", options=[SHARED] + calibration.engines()),
        "load": W.Button(label="Load from catalog", color="primary"),
        "status": pn.pane.HTML("", css_classes=["rooflax-status"]),
    }


def _figure():
    """(the T_compute / T_memory figure, its data sources ``src``/``pt``/``now``, B*'s line)."""
    from bokeh.models import ColumnDataSource, Span
    from bokeh.plotting import figure

    srcs = {"src": ColumnDataSource({"B": [], "tc": [], "tm": []}),
            "pred": ColumnDataSource({"B": [], "tp": []}),
            "pt": ColumnDataSource({"x": [], "y": []}),
            "now": ColumnDataSource({"x": [], "y": []})}
    fig = figure(height=430, width=760, title="T_compute / T_memory vs batch",
                 x_axis_label="batch B (sequences)", y_axis_label="time per step (s)",
                 tools="pan,wheel_zoom,box_zoom,reset,hover,save")
    fig.line("B", "tc", source=srcs["src"], color="#d62728", line_width=3, legend_label="T_compute")
    fig.line("B", "tm", source=srcs["src"], color="#1f77b4", line_width=3, legend_label="T_memory")
    fig.line("B", "tp", source=srcs["pred"], color="#2ca02c", line_width=3, line_dash="dashed",
             legend_label="predicted step (calibrated)")
    fig.scatter("x", "y", source=srcs["pt"], size=12, color="black", marker="diamond",
                legend_label="crossover B*")
    fig.scatter("x", "y", source=srcs["now"], size=9, color="#9467bd", legend_label="current B")
    vline = Span(location=0, dimension="height", line_dash="dashed", line_color="black")
    fig.add_layout(vline)
    fig.legend.location = "top_left"
    return fig, srcs, vline


def readouts(nb: dict, args: dict, batch: float) -> dict[str, str]:
    """The four HTML readouts (ratio, KV share, crossover, detail) of :func:`numbers` ``nb``
    at the seed inputs ``args`` (SI) and ``batch``."""
    bx = nb["b_x"]
    return {
        "ratio": f"<b>Compute / Memory ratio:</b> <span id='ratio'>{sci(nb['ratio'])}</span>",
        "share": f"<b>KV share:</b> <span id='kvshare'>{nb['kv_share'] * 100:.2f}%</span>",
        "cross": ("<b>Crossover B*:</b> <span id='bstar'>"
                  + (f"{bx:,.0f}" if math.isfinite(bx) else "none (KV slope ≥ compute slope)")
                  + f"</span> · KV-free sweet spot (C/BW)·(N_total·w/N_active) = "
                  f"{nb['b_x_kv_free']:,.0f}"),
        "detail": (f"At B = {batch:,.0f}: T_compute = {sci(nb['t_compute'])} s, "
                   f"T_memory = {sci(nb['t_memory'])} s ({nb['regime']}); "
                   f"C/BW = {args['C'] / args['BW']:,.1f} MAC/B; latency floor "
                   f"N_total·w/BW = {sci(nb['latency_floor'])} s"),
    }


def _updater(sl: dict, srcs: dict, vline, panes: dict, state: dict):
    """The callback redrawing curves, crossover and readouts from the sliders (and the loaded
    catalog pick's prediction, ``state["pred"]``)."""

    def value(k):
        return float(sl[k].value) * SLIDER_SCALE[k]

    def update(*_):
        args = {k: value(k) for k in SEED_INPUTS}
        nb = numbers(batch=value("batch"), **args)
        bx = nb["b_x"]
        bmax = max(2.0 * value("batch"), 2.0 * bx if math.isfinite(bx) else 0.0, 16.0)
        B, tc, tm = curves(bmax=bmax, **args)
        srcs["src"].data = {"B": B, "tc": tc, "tm": tm}
        if math.isfinite(bx) and bx > 0:
            srcs["pt"].data = {"x": [bx], "y": [bx * args["N_active"] / args["C"]]}
            vline.location = bx
            vline.visible = True
        else:
            srcs["pt"].data = {"x": [], "y": []}
            vline.visible = False
        bound_step = max(nb["t_compute"], nb["t_memory"])
        srcs["now"].data = {"x": [value("batch")], "y": [bound_step]}
        for k, html in readouts(nb, args, value("batch")).items():
            panes[k].object = html
        pred, t = state.get("pred"), math.nan
        if pred:  # one evaluation: the curve's batches and the slider's
            tp = predicted_step(pred["trees"], args["L"], np.append(B, value("batch")))
            t, tp = float(tp[-1]), tp[:-1]
        srcs["pred"].data = {"B": B, "tp": tp} if pred else {"B": [], "tp": []}
        panes["pred"].object = prediction_readout(pred, t, value("batch"), bound_step)

    return update


def _set_slider(s, k: str, v: float) -> None:
    """Slider ``s`` (input ``k``) to the SI value ``v``, widening its range when needed."""
    x = v / SLIDER_SCALE[k]
    if x > s.end:
        s.end = float(x * 2) if k != "batch" else int(x * 2)
    s.value = type(s.value)(x) if k == "batch" else float(x)


def _load_picked(sl: dict, pk: dict, state: dict) -> list[str]:
    """Set the sliders from the picked catalog hardware and model (the seed's where none is
    picked), and ``state["pred"]`` to their prediction where both are picked; what was loaded,
    in words."""
    from rooflax.sweeps import catalogs

    d, msgs = SEED_DEFAULTS, []
    if pk["hardware"].value != SEED:
        hw = catalogs.hardware(pk["hardware"].value, chips=pk["chips"].value,
                               precision=pk["precision"].value)
        _set_slider(sl["BW"], "BW", float(hw.replica_bw))
        _set_slider(sl["C"], "C", float(hw.replica_macs))
        msgs.append(f"{pk['hardware'].value} × {pk['chips'].value} at {pk['precision'].value}")
    else:
        _set_slider(sl["BW"], "BW", d["BW"])
        _set_slider(sl["C"], "C", d["C"])
    if pk["model"].value != SEED:
        m = catalogs.model(pk["model"].value, weights=pk["weights"].value)
        for k, v in (("N_total", m.n_total), ("N_active", m.n_active),
                     ("b", m.kv_bytes_per_token), ("w", m.bytes_per_weight)):
            _set_slider(sl[k], k, float(v))
        msgs.append(f"{pk['model'].value} ({pk['weights'].value} weights)")
        if float(m.kv_bytes_per_token_local):
            second = ("the sparse-attention indexer's keys" if float(m.top_k) < float("inf")
                      else "sliding-window layers")
            msgs.append(f"{second} not shown: b is the global layers' KV")
    else:
        for k in ("N_total", "N_active", "b", "w"):
            _set_slider(sl[k], k, d[k])
    state["pred"] = None
    if SEED not in (pk["hardware"].value, pk["model"].value):
        engine = None if pk["engine"].value == SHARED else pk["engine"].value
        trees = prediction_trees(pk["hardware"].value, pk["chips"].value, pk["precision"].value,
                                 pk["model"].value, pk["weights"].value, engine)
        state["pred"] = {"trees": trees, "label": f"{pk['hardware'].value} × {pk['chips'].value}, "
                         f"{pk['model'].value}, {engine or 'shared'} engine values"}
    return msgs


def build_app():
    """The Panel layout (a new one per browser session)."""
    import panel as pn

    sl, pk = _sliders(), _picker()
    fig, srcs, vline = _figure()
    panes = {k: pn.pane.HTML("", css_classes=[c]) for k, c in (
        ("ratio", "rooflax-ratio"), ("share", "rooflax-kvshare"), ("cross", "rooflax-bstar"),
        ("detail", "rooflax-detail"), ("pred", "rooflax-pred"))}
    state: dict = {"pred": None}
    update = _updater(sl, srcs, vline, panes, state)

    def do_load(*_):
        try:
            msgs = _load_picked(sl, pk, state)
            pk["status"].object = "loaded " + "; ".join(msgs) if msgs else "seed defaults"
        except ValueError as e:
            pk["status"].object = f"<span style='color:#b00'>{e}</span>"
        update()

    for s in sl.values():
        s.param.watch(update, "value")
    pk["load"].on_click(do_load)
    update()
    intro = pn.pane.Markdown(
        "### T_compute / T_memory batch-size simulator\n"
        "T_compute = B × N_active / C, T_memory = (N_total·w + B × L × b) / BW. "
        "Raising L or b, or lowering BW, steepens T_memory and moves the crossover right.")
    controls = pn.Column(*sl.values(), pn.layout.Divider(), *pk.values(), width=340)
    return pn.Row(controls, pn.Column(intro, *panes.values(), pn.pane.Bokeh(fig)))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(port: int = 5006, show: bool = True) -> None:
    """Serve the app on 127.0.0.1:``port`` until interrupted."""
    import panel as pn

    pn.extension()
    port = port or _free_port()
    print(f"rooflax explore: http://127.0.0.1:{port}/", flush=True)
    pn.serve(build_app, port=port, address="127.0.0.1", show=show,
             websocket_origin=[f"127.0.0.1:{port}", f"localhost:{port}"],
             title="rooflax explore", threaded=False, print_output=False)
