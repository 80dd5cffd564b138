"""``rooflax validate`` on measured-silicon tables and ``rooflax calibrate``.

For every row of a measurement file (aiconfigurator CSV or structured YAML, read by
:mod:`rooflax.sweeps.measurements`): measured TPOT, the roofline **bound** (every efficiency 1,
the stated batch) and the **prediction** (:mod:`rooflax.core.predict` with a calibration: the
shipped one by default), or the reason the row is skipped. The summary gives rows expressed,
median and mean |pred/meas − 1|, median pred/meas, broken down by system, model, engine and batch
bucket, every row measured faster than its bound with the explanation, and the rows whose
configuration the table measured more than once, further apart than any one prediction can be
within :data:`TOLERANCE` of (what differs is not in the table). ``cv`` re-calibrates
without each group (system or model) and predicts it: leave-one-group-out cross-validation.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

#: Batch buckets of the summary (running batch of the replica, sequences).
BUCKETS = (("1", 1, 1), ("2-16", 2, 16), ("17-128", 17, 128), (">128", 129, math.inf))
#: A TTFT above this means requests waited in a queue before their prefill, s.
QUEUE_TTFT_S = 10.0
#: The accuracy asked of a prediction, |pred/meas − 1|: two measurements of one configuration
#: more than (1 + t)/(1 − t) apart cannot both be within it of any single prediction.
TOLERANCE = 0.15


#: Values of ``--per`` (calibrate, validate --cv): each engine's time per layer of its own, or none.
PER = ("engine", "none")


def _per(option: str | None) -> str | None:
    """``--per`` as :func:`rooflax.sweeps.calibration.calibrate` takes it (``none`` → None)."""
    return None if option in (None, "none") else option


def load(paths: list[Path]):
    """(expressible rows stacked, skipped rows) of measurement files; TPOT rows (and output
    tok/s per GPU or per user, read as the TPOT they imply: :func:`measurements.as_tpot`)."""
    from rooflax.sweeps import calibration as C
    from rooflax.sweeps import catalogs
    from rooflax.sweeps import measurements as M

    good, skipped = [], []
    for path in paths:
        for item in M.read(path):
            if isinstance(item, M.Skipped):
                skipped.append({"row_id": item.row_id, "reason": item.reason})
                continue
            item = M.as_tpot(item)
            if item.quantity != "tpot_ms":
                skipped.append({"row_id": item.row_id,
                                "reason": f"quantity {item.quantity}: only tpot_ms is predicted"})
            else:
                try:
                    catalogs.resolve_hardware(item.hardware)
                    catalogs.resolve_model(item.model)
                    good.append(item)
                except catalogs.UnknownNameError as exc:
                    skipped.append({"row_id": item.row_id, "reason": str(exc).split(";")[0]})
    if not good:
        return None, skipped
    r = C.rows(good)
    unfit = C.unfit(r)
    skipped += [{"row_id": r.items[i].row_id, "reason": reason} for i, reason in unfit.items()]
    keep = np.asarray([i not in unfit for i in range(len(r.items))])
    return (C.subset(r, keep) if keep.any() else None), skipped


def bucket(batch: float) -> str:
    """The summary's batch bucket of a running batch."""
    for name, lo, hi in BUCKETS:
        if lo <= round(batch) <= hi:
            return name
    return BUCKETS[0][0]


def _explain_fast(m, running: float, bound_ms: float) -> str:
    """Why a row is measured faster than its bound (or 'unexplained')."""
    reasons = []
    if running < m.batch - 0.5:
        reasons.append(f"queueing: KV capacity holds {running:.0f} of {m.batch:.0f} sequences")
    if m.ttft_ms is not None and m.ttft_ms > QUEUE_TTFT_S * 1e3:
        reasons.append(f"queueing: TTFT {m.ttft_ms / 1e3:.0f} s > {QUEUE_TTFT_S:.0f} s")
    quirks = [r for r in m.rules if r in ("ep-scaled-layout", "ep-scaled-layout-no-id",
                                         "moe-wider-than-attention",
                                         "disagg-batch-from-concurrency",
                                         "concurrency-not-recorded")]
    if quirks:
        reasons.append("layout/batch from loader rule " + ", ".join(quirks))
    return "; ".join(reasons) or "unexplained"


def repeat_spread(items: list) -> np.ndarray:
    """Per row: largest over smallest measured value of the rows with the same inputs
    (:meth:`~rooflax.sweeps.measurements.Measurement.inputs`; 1 for a configuration measured once)."""
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, m in enumerate(items):
        groups[m.inputs()].append(i)
    spread = np.ones(len(items))
    for idx in groups.values():
        values = [items[i].value for i in idx]
        spread[idx] = max(values) / min(values)
    return spread


def evaluate(r, predicted_s: np.ndarray) -> list[dict[str, Any]]:
    """Per-row records: measured, bound, predicted (ms), ratios, groups, explanations."""
    from rooflax.sweeps import calibration as C

    bound = np.asarray(C.bound_s(r)) * 1e3
    running = C.running_batch(r)
    spread = repeat_spread(r.items)
    out = []
    for i, m in enumerate(r.items):
        meas, pred = m.value, float(predicted_s[i]) * 1e3
        rec = {"row_id": m.row_id, "system": m.hardware, "model": m.model, "engine": m.engine,
               "mode": m.mode, "batch": m.batch, "running_batch": float(running[i]),
               "bucket": bucket(float(running[i])), "measured_ms": meas,
               "bound_ms": float(bound[i]), "predicted_ms": pred, "pred/meas": pred / meas,
               "faster_than_bound": bool(meas < bound[i]), "rules": list(m.rules),
               "repeat_spread": float(spread[i])}
        if rec["faster_than_bound"]:
            rec["explanation"] = _explain_fast(m, float(running[i]), float(bound[i]))
        out.append(rec)
    return out


def _stats(recs: list[dict[str, Any]]) -> dict[str, float]:
    ratio = np.asarray([x["pred/meas"] for x in recs])
    err = np.abs(ratio - 1.0)
    return {"rows": len(recs), "median_abs_err": float(np.median(err)),
            "mean_abs_err": float(np.mean(err)), "median_pred_over_meas": float(np.median(ratio))}


def summary(recs: list[dict[str, Any]], skipped: list[dict[str, Any]]) -> dict[str, Any]:
    """Overall and per-group accuracy, skipped reasons, rows faster than the bound."""
    total = len(recs) + len(skipped)
    out: dict[str, Any] = {"rows": total, "expressed": len(recs),
                           "expressed_fraction": len(recs) / total if total else math.nan,
                           "overall": _stats(recs) if recs else {}}
    for key in ("system", "model", "engine", "bucket"):
        groups: dict[str, list] = defaultdict(list)
        for x in recs:
            groups[x[key]].append(x)
        out[f"by_{key}"] = {k: _stats(v) for k, v in sorted(groups.items())}
    fast = [x for x in recs if x["faster_than_bound"]]
    why: dict[str, int] = defaultdict(int)
    for x in fast:
        why[x["explanation"].split(":")[0] if x["explanation"] != "unexplained" else "unexplained"] += 1
    out["faster_than_bound"] = {"rows": len(fast), "unexplained": why.get("unexplained", 0),
                                "by_explanation": dict(why)}
    out["repeated_inputs"] = _repeated(recs)
    reasons: dict[str, int] = defaultdict(int)
    for s in skipped:
        reasons[s["reason"]] += 1
    out["skipped_reasons"] = dict(reasons)
    return out


def _repeated(recs: list[dict[str, Any]]) -> dict[str, Any]:
    """Rows whose configuration was measured more than (1 + t)/(1 − t) apart, t = :data:`TOLERANCE`,
    and the accuracy on them and on the rest."""
    limit = (1.0 + TOLERANCE) / (1.0 - TOLERANCE)
    rep = [x for x in recs if x["repeat_spread"] > limit]
    rest = [x for x in recs if x["repeat_spread"] <= limit]
    return {"spread_limit": limit, "rows": len(rep), "on_them": _stats(rep) if rep else {},
            "on_the_rest": _stats(rest) if rest else {}}


def cross_validate(r, by: str, *, per: str | None = "engine") -> np.ndarray:
    """Leave-one-group-out predictions, s: each group predicted by a calibration without it."""
    from rooflax.sweeps import calibration as C

    key = {"system": "hardware", "model": "model", "engine": "engine"}[by]
    labels = np.asarray([getattr(m, key) for m in r.items])
    pred = np.full(len(r.items), np.nan)
    for g in sorted(set(labels)):
        train = C.subset(r, labels != g)
        cal = C.calibrate(train, per=per)
        test = C.subset(r, labels == g)
        pred[labels == g] = C.predict_rows(test, cal)
    return pred


def format_summary(s: dict[str, Any], title: str) -> str:
    """The summary as text tables."""
    def line(name, st):
        return (f"  {name:<34} {st['rows']:>5}  {100 * st['median_abs_err']:6.1f}%  "
                f"{100 * st['mean_abs_err']:6.1f}%  {st['median_pred_over_meas']:6.3f}")

    out = [f"{title}: {s['expressed']} of {s['rows']} rows expressed "
           f"({100 * s['expressed_fraction']:.1f}%)",
           f"  {'group':<34} {'rows':>5}  {'med|e|':>7}  {'mean|e|':>7}  {'med p/m':>6}"]
    if s["overall"]:
        out.append(line("overall", s["overall"]))
    for key in ("system", "engine", "bucket", "model"):
        out.append(f" by {key}:")
        out += [line(k, v) for k, v in s[f"by_{key}"].items()]
    f = s["faster_than_bound"]
    out.append(f"measured faster than the bound: {f['rows']} rows "
               f"({f['unexplained']} unexplained) {f['by_explanation']}")
    rep = s["repeated_inputs"]
    if rep["rows"]:
        out.append(f"one configuration measured more than {rep['spread_limit']:.2f}× apart (no "
                   f"prediction is within {TOLERANCE:.0%} of both; the table does not say what "
                   f"differs): {rep['rows']} rows, median |e| "
                   f"{100 * rep['on_them']['median_abs_err']:.1f}% on them, "
                   + (f"{100 * rep['on_the_rest']['median_abs_err']:.1f}% on the rest"
                      if rep["on_the_rest"] else "no other rows"))
    if s["skipped_reasons"]:
        out.append("skipped:")
        out += [f"  {n} × {reason}" for reason, n in s["skipped_reasons"].items()]
    return "\n".join(out)


def is_measurement_file(path: Path) -> bool:
    """A CSV, or a YAML whose top level has ``measurements:`` (not the prose validation.yaml)."""
    if path.suffix.lower() == ".csv":
        return True
    if path.suffix.lower() not in (".yaml", ".yml"):
        return False
    with open(path, encoding="utf-8") as fh:
        head = fh.read(4096)
    return any(ln.startswith("measurements:") for ln in head.splitlines())


def validate(paths: list[Path], *, calibration: Path | None = None, cv: str | None = None,
             per: str | None = "engine") -> dict[str, Any]:
    """Rows and summary of measurement files (``cv``: leave-one-group-out by system or model)."""
    from rooflax.sweeps import calibration as C

    r, skipped = load(paths)
    if r is None:
        return {"rows": [], "skipped": skipped, "summary": summary([], skipped)}
    if cv:
        pred = cross_validate(r, cv, per=_per(per))
    else:
        pred = C.predict_rows(r, C.load(calibration))
    recs = evaluate(r, pred)
    return {"rows": recs, "skipped": skipped, "summary": summary(recs, skipped)}


def calibrate(paths: list[Path], output: Path, *, per: str | None = "engine") -> Any:
    """Fit the calibration on measurement files and write it (YAML)."""
    from rooflax.sweeps import calibration as C

    r, _ = load(paths)
    if r is None:
        raise ValueError(f"{', '.join(map(str, paths))}: no expressible TPOT rows to calibrate on")
    cal = C.calibrate(r, per=_per(per))
    C.save(cal, output, source=", ".join(p.name for p in paths))
    return cal


def register(app) -> None:
    """Add ``rooflax calibrate FILE... -o calibration.yaml [--per engine]``."""
    import typer

    @app.command("calibrate")
    def calibrate_cmd(
        files: list[Path] = typer.Argument(..., help="measurement files (.csv aiconfigurator, .yaml structured)"),
        output: Path = typer.Option(..., "-o", "--output", help="calibration YAML to write"),
        per: str = typer.Option("engine", "--per", help="engine: each engine's time per layer of "
                                "its own around the shared value (the default); none: shared values only"),
    ) -> None:
        """Fit the predicted step's physics parameters (LM on the JAX Jacobian) to measured TPOT."""
        _check_inputs(files, per, PER, "--per")
        if output.exists() and output.is_dir():
            typer.echo(f"error: --output {output}: expected a file path, found a directory", err=True)
            raise typer.Exit(2)
        try:
            cal = calibrate(files, output, per=per)
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        from rooflax.sweeps import calibration as C

        for n in C.NAMES:
            unit = C.PARAMETERS[n][0]
            if cal.values[n] < 1e-6 * C.PARAMETERS[n][1]:  # the log-parametrized fit ran to zero
                typer.echo(f"{n:<18} ≈ 0 {unit} (fitted to zero: the data hold no such time; no σ)")
                continue
            typer.echo(f"{n:<18} {cal.values[n]:.4g} ± {cal.sigmas[n]:.2g} {unit}")
        for engine, own in cal.per_engine.items():
            typer.echo(f"{engine}: " + ", ".join(f"{n} {own.values[n]:.4g} ± {own.sigmas[n]:.2g} "
                                                 f"{C.PARAMETERS[n][0]}" for n in C.ENGINE_PARAMETERS)
                       + f" ({own.rows} rows)")
        typer.echo(f"{cal.rows} rows, rms log residual {cal.rms_log:.3f}; wrote {output}")


def _check_inputs(files: list[Path], option: str | None, allowed: tuple[str, ...], name: str) -> None:
    import typer

    for f in files:
        if not f.is_file():
            typer.echo(f"error: no such file: {f}", err=True)
            raise typer.Exit(2)
    if option is not None and option not in allowed:
        typer.echo(f"error: {name}: expected one of {', '.join(allowed)}, found {option!r}", err=True)
        raise typer.Exit(2)


def run_validate(path: Path, *, as_json: bool, cv: str | None, per: str | None,
                 calibration: Path | None) -> None:
    """The ``rooflax validate`` path for measurement files (called by results.validate)."""
    import json

    import typer

    _check_inputs([path], cv, ("system", "model", "engine"), "--cv")
    _check_inputs([], per, PER, "--per")
    if calibration is not None:
        _check_inputs([calibration], None, (), "--calibration")
    try:
        out = validate([path], calibration=calibration, cv=cv, per=per)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps({"schema": "rooflax.validate-silicon/1", "file": str(path),
                               "cv": cv, **out}, indent=1, default=str))
        return
    source = f"calibration {calibration}" if calibration else "shipped calibration"
    title = f"TPOT, predicted ({'cross-validated by ' + cv if cv else source})"
    typer.echo(format_summary(out["summary"], title))
