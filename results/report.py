"""The sensitivity report: one point's optimum, partials and elasticities, as a dict and as rich tables.

The dict is what ``rooflax sensitivity --json`` prints. Its keys are stable
(schema ``rooflax.sensitivity/1``)::

    schema        "rooflax.sensitivity/1"
    reading       "bound": every number is the seeds' roofline (not the calibrated prediction)
    source        "catalog" or "cube:<path>"
    inputs        hardware, model, chips, precision, weights, kv_precision,
                  price_per_hour ($/h per chip), context (tokens), slo (s or null),
                  set / scale (knob overrides) — for a cube: the selected coordinates
    parameters    every canonical knob's value in SI units (bw B/s, c_over_bw MAC/B,
                  capacity B, price $/s per chip, chips, n_total, sparsity,
                  kv_bytes_per_token B/token, bytes_per_weight B, context tokens,
                  batch, slo s)
    binding       "crossover" | "capacity" | "slo" | "infeasible"
    reason        "ok" or why partials are NaN (core REASONS)
    values        b_star (sequences), cost_at_b_star ($/token), cost_per_mtok_at_b_star
                  ($/Mtok), latency_at_b_star (s), throughput_at_b_star (tokens/s per replica)
    units         unit of each value, of each output and of each knob
    partial       {output: {knob: ∂output/∂knob}} in output unit per knob SI unit
    elasticity    {output: {knob: ∂ln output/∂ln knob}} (unit-free)
    sentences     {output: {knob: "+1 % bandwidth → −0.62 % cost per token"}}

Non-finite numbers (NaN, ±inf) are written as ``null``.
"""

from __future__ import annotations

import math
from typing import Any

from rooflax.sweeps.units import si

SCHEMA = "rooflax.sensitivity/1"


def __getattr__(name: str) -> Any:
    """``OUTPUTS``: the outputs of a report, the registry's sensitivity outputs — read on use, as
    every registry name here (importing :mod:`rooflax.core.quantities` imports jax)."""
    if name == "OUTPUTS":
        from rooflax.core.quantities import SENSITIVITY_OUTPUTS

        return SENSITIVITY_OUTPUTS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _f(x: Any) -> float:
    return float(x) + 0.0  # + 0.0 turns an exact −0.0 derivative into 0.0 for display and JSON


NOT_STORED = "not stored in this cube"


def sentence(output: str, knob: str, e: float, reason: str = "ok", stored: bool = True) -> str:
    """"+1 % bandwidth → −0.62 % cost per token" (or why it is undefined, or not stored)."""
    from rooflax.core import quantities as Q

    kw = Q.KNOBS[knob].sentence if knob in Q.KNOBS else knob
    ow = Q.QUANTITIES[output].sentence if output in Q.QUANTITIES else output
    if not stored:
        return f"{kw} → {ow}: {NOT_STORED}"
    if e is None or math.isnan(e):
        why = reason if reason != "ok" else "the knob is 0 or infinite"
        return f"{kw} → {ow}: not defined ({why})"
    if abs(e) < 1e-9:  # exact zeros and rounding noise of exactly cancelling terms
        return f"+1 % {kw} → no change in {ow}"
    sign = "+" if e > 0 else "−"
    return f"+1 % {kw} → {sign}{abs(e):.3g} % {ow}"


def from_values(
    *,
    source: str,
    inputs: dict[str, Any],
    parameters: dict[str, float],
    binding: int | None,
    reason: int | str,
    values: dict[str, float],
    partial: dict[str, dict[str, float]],
    elasticity: dict[str, dict[str, float]],
    missing: set[tuple[str, str]] = frozenset(),
) -> dict[str, Any]:
    """Assemble the report dict (floats; NaN kept until :func:`to_json`). ``binding`` None and
    the (output, knob) pairs in ``missing``: not stored in the cube the values come from."""
    from rooflax.core import quantities as Q

    reason_text = (reason if isinstance(reason, str) else
                   Q.REASONS[int(reason)] if 0 <= int(reason) < len(Q.REASONS) else str(reason))
    values = dict(values)
    mtok = values.get("cost_per_mtok_at_b_star", math.nan)
    if math.isnan(values["cost_at_b_star"]) and not math.isnan(mtok):
        values["cost_at_b_star"] = mtok / 1e6  # a cube may hold only the $/Mtok variable
    values["cost_per_mtok_at_b_star"] = 1e6 * values["cost_at_b_star"]
    units = {
        "values": {o: Q.units_of(o) for o in (*Q.SENSITIVITY_OUTPUTS, "cost_per_mtok_at_b_star")},
        "knobs": {k: Q.units_of(k) for k in parameters},
        "partial": {o: {k: Q.sensitivity_attrs("partial", o, k)["units"] for k in partial[o]}
                    for o in partial},
    }
    sentences = {o: {k: sentence(o, k, elasticity[o][k], reason_text, (o, k) not in missing)
                     for k in elasticity[o]} for o in elasticity}
    return {
        "schema": SCHEMA,
        "reading": "bound",
        "source": source,
        "inputs": inputs,
        "parameters": parameters,
        "binding": NOT_STORED if binding is None else Q.BINDINGS[int(binding)],
        "reason": reason_text,
        "values": values,
        "units": units,
        "partial": partial,
        "elasticity": elasticity,
        "sentences": sentences,
    }


def from_point(point, *, knobs=None, outputs: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The report of a :class:`~rooflax.results.point.Point` via ``rc.sensitivities``."""
    from rooflax import core as rc

    from . import programs
    from .point import DEFAULT_KNOBS, feasibility

    knobs = tuple(knobs or DEFAULT_KNOBS)
    outputs = tuple(outputs or rc.sensitivity.OUTPUTS)

    def sens(hw, model, wl):
        return rc.sensitivities(hw, model, wl, outputs=outputs, knobs=knobs)

    s = programs.evaluate("sensitivities", sens, point.hw, point.model, point.wl,
                          static=(outputs, knobs))
    reason = int(s["reason"])
    if reason == 1:  # infeasible: say why ("does not fit: needs N chips")
        why = feasibility(point.hw, point.model, point.wl.replace(batch=1.0))[1].item()
        reason = f"infeasible: {why}" if why else reason
    wl = point.wl
    inputs = {**point.meta, "context": _f(wl.context),
              "slo": _f(wl.slo) if math.isfinite(_f(wl.slo)) else None}
    return from_values(
        source="catalog",
        inputs=inputs,
        parameters=point.parameters(),
        binding=int(s["binding"]),
        reason=reason,
        values={o: _f(s["value"][o]) for o in outputs},
        partial={o: {k: _f(s["partial"][o][k]) for k in knobs} for o in outputs},
        elasticity={o: {k: _f(s["elasticity"][o][k]) for k in knobs} for o in outputs},
    )


def _clean(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def to_json(report: dict[str, Any]) -> str:
    """The report as JSON text (non-finite numbers as null)."""
    import json

    return json.dumps(_clean(report), indent=2, ensure_ascii=False)


def _price_words(price: float, inputs: dict[str, Any]) -> str:
    """'price $1.74/h per chip (tco-neocloud)' or 'no price (why)'."""
    from rooflax.core.specs import SECONDS_PER_HOUR
    basis = inputs.get("price_basis")
    if math.isnan(price):
        return f"no price ({inputs.get('price_source', 'unknown')})"
    return f"price ${price * SECONDS_PER_HOUR:.4g}/h per chip" + (f" ({basis})" if basis else "")


def render(report: dict[str, Any], console) -> None:
    """Print the report as rich tables: the optimum, then one row per (output, knob)."""
    from rich.table import Table

    from rooflax.core.quantities import QUANTITIES

    inp, v, p = report["inputs"], report["values"], report["parameters"]
    title = " · ".join(
        str(x) for x in (inp.get("hardware"), f"{si(p['chips'])} chips" if "chips" in p else None,
                         inp.get("model"), f"context {si(p['context'], 'tokens')}",
                         inp.get("precision")) if x)
    t = Table(title=f"Optimum (bound: the seeds' roofline) — {title}", show_header=True)
    for col in ("B*", "binding", "$/Mtok at B*", "latency at B*", "throughput at B*",
                "tokens/s per user"):
        t.add_column(col, justify="right")
    lat = v["latency_at_b_star"]
    t.add_row(
        f"{v['b_star']:.4g}" if math.isfinite(v["b_star"]) else "n/a",
        report["binding"],
        ("no price" if math.isnan(v["cost_per_mtok_at_b_star"]) and math.isnan(p["price"])
         else f"{v['cost_per_mtok_at_b_star']:.4g}"),
        si(lat, "s"),
        si(v["throughput_at_b_star"], QUANTITIES["throughput_at_b_star"].units),
        f"{1 / lat:.4g}" if lat and math.isfinite(lat) and lat > 0 else "n/a",
    )
    console.print(t)
    hw_line = (f"BW {si(p['bw'], 'B/s')} · C/BW {p['c_over_bw']:.4g} MAC/B · "
               f"HBM {si(p['capacity'], 'B')} · {_price_words(p['price'], report['inputs'])} · "
               f"N_total {si(p['n_total'])} · sparsity {p['sparsity']:.4g} · "
               f"b {si(p['kv_bytes_per_token'], 'B/token')} · w {p['bytes_per_weight']:g} B")
    console.print(hw_line, style="dim")
    if report["reason"] != "ok":
        console.print(f"partials undefined: {report['reason']}", style="yellow")
    console.print(_sensitivity_table(report, "Sensitivities of the bound (autodiff)"))


def _sensitivity_table(report: dict[str, Any], title: str):
    """One row per (output, knob): partial, its unit, elasticity and the sentence."""
    from rich.table import Table

    s = Table(title=f"{title}: partial ∂y/∂x and elasticity ∂ln y/∂ln x")
    for col, j in (("output", "left"), ("knob", "left"), ("partial", "right"),
                   ("unit", "left"), ("elasticity", "right"), ("in words", "left")):
        s.add_column(col, justify=j)
    for o, row in report["elasticity"].items():
        for i, (k, e) in enumerate(row.items()):
            d = report["partial"][o][k]
            s.add_row(o if i == 0 else "", k, "n/a" if math.isnan(d) else f"{d:.4g}",
                      report["units"]["partial"][o][k], "n/a" if math.isnan(e) else f"{e:+.4f}",
                      report["sentences"][o][k], end_section=(i == len(row) - 1))
    return s


# --------------------------------------------------------------------------- the prediction
def from_prediction(point, *, knobs=None, engine: str | None = None) -> dict[str, Any]:
    """The report of the calibrated prediction at the point's batch (``reading: prediction``):
    :func:`rooflax.core.sensitivity.predicted_sensitivities` on the point's hardware, the model
    with its layers and experts and the shipped calibration's Engine. Same schema as the bound's
    report; ``binding`` is null (no closed-form optimum: the batch is given), ``running_batch``
    is what the step decodes (the rest queues where the KV does not fit)."""
    import dataclasses

    from rooflax.core import predict
    from rooflax.core import quantities as Q
    from rooflax.core.sensitivity import PREDICTED_OUTPUTS, predicted_sensitivities

    from . import programs
    from .point import DEFAULT_KNOBS, feasibility, predicted_trees, prediction_label

    knobs = tuple(knobs or DEFAULT_KNOBS)
    hw, model, eng = predicted_trees(point, engine)

    def sens(h, m, w, e):
        return predicted_sensitivities(h, m, w, e, knobs=knobs)

    s = programs.evaluate("predicted_sensitivities", sens, hw, model, point.wl, eng, static=knobs)
    running = programs.evaluate("predict.running_batch", predict.running_batch, hw, model, point.wl, eng)
    values = {o: _f(s["value"][o]) for o in PREDICTED_OUTPUTS}
    values["cost_per_mtok"] = 1e6 * values["cost_per_token"]
    why = feasibility(hw, model, point.wl.replace(batch=1.0))[1].item()  # "does not fit: needs N chips"
    reason = ("ok" if math.isfinite(values["latency"]) else
              f"infeasible: {why}" if why else "the predicted step is not finite")
    elasticity = {o: {k: _f(s["elasticity"][o][k]) for k in knobs} for o in PREDICTED_OUTPUTS}
    wl = point.wl
    return {
        "schema": SCHEMA, "reading": "prediction", "label": prediction_label(engine),
        "source": "catalog",
        "inputs": {**point.meta, "engine": engine, "context": _f(wl.context), "batch": _f(wl.batch),
                   "slo": _f(wl.slo) if math.isfinite(_f(wl.slo)) else None},
        "parameters": dataclasses.replace(point, hw=hw, model=model).parameters(),  # as predicted
        "binding": None, "reason": reason, "running_batch": _f(running) if reason == "ok" else math.nan, "values": values,
        "units": {"values": {o: Q.units_of(o) for o in values},
                  "knobs": {k: Q.units_of(k) for k in knobs},
                  "partial": {o: {k: Q.sensitivity_attrs("partial", o, k)["units"] for k in knobs}
                              for o in PREDICTED_OUTPUTS}},
        "partial": {o: {k: _f(s["partial"][o][k]) for k in knobs} for o in PREDICTED_OUTPUTS},
        "elasticity": elasticity,
        "sentences": {o: {k: sentence(o, k, e, reason) for k, e in row.items()}
                      for o, row in elasticity.items()},
    }


def render_prediction(report: dict[str, Any], console) -> None:
    """Print the prediction's report: its numbers at the batch, then the sensitivities."""
    from rich.table import Table

    inp, v, p = report["inputs"], report["values"], report["parameters"]
    title = " · ".join(str(x) for x in (
        inp.get("hardware"), f"{si(p['chips'])} chips", inp.get("model"),
        f"context {si(p['context'], 'tokens')}", inp.get("precision"), f"batch {inp['batch']:g}") if x)
    t = Table(title=f"{report['label']} — {title}")
    for col in ("running batch", "TPOT", "tokens/s per user", "tokens/s per replica", "$/Mtok"):
        t.add_column(col, justify="right")
    def num(x: float) -> str:
        return f"{x:.4g}" if math.isfinite(x) else "n/a"

    ok = math.isfinite(v["latency"])  # else the weights do not fit: no step (reason below)
    t.add_row(num(report["running_batch"]) if ok else "n/a", si(v["latency"], "s"),
              num(v["tokens_per_second_per_user"]), si(v["throughput"], "tokens/s"),
              "no price" if ok and math.isnan(p["price"]) else num(v["cost_per_mtok"]))
    console.print(t)
    console.print(f"{_price_words(p['price'], inp)} · the bound (seeds' roofline): drop --predicted",
                  style="dim")
    if report["reason"] != "ok":
        console.print(f"partials undefined: {report['reason']}", style="yellow")
    console.print(_sensitivity_table(report, "Sensitivities of the prediction (autodiff)"))
