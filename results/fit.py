"""``rooflax fit OBSERVATIONS.yaml``: deduce serving knobs from prices and measurements.

Wire it into the top-level app with ``register(app)`` (see :mod:`rooflax.results.cli`).
The file format is documented in :mod:`rooflax.sweeps.observations`; the fitting
engine is :mod:`rooflax.core.fit`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer

SCHEMA = "rooflax.fit/1"


def _num(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def _fmt(x: float | None, digits: int = 4) -> str:
    if x is None:
        return "—"
    if isinstance(x, float) and math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if x == 0:
        return "0"
    a = abs(x)
    if 1e-3 <= a < 1e6:
        text = f"{x:.{digits}g}"
        return text
    return f"{x:.{digits - 1}e}"


def _pm(value: float, sigma: float) -> str:
    if not math.isfinite(sigma):
        return f"{_fmt(value)}  (not identifiable)"
    return f"{_fmt(value)} ± {_fmt(sigma, 2)}"


def result_dict(loaded, result, dropped: list[str] | None = None) -> dict[str, Any]:
    """The JSON document (schema ``rooflax.fit/1``); non-finite numbers are null."""
    from rooflax.core import fit as F

    spec = loaded.spec
    derived = {d.name: d for d in result.derived}
    comparisons = []
    for c in spec.compare:
        d = derived[c.derived]
        stated = list(c.stated) if isinstance(c.stated, tuple) else c.stated
        mid = sum(c.stated) / 2 if isinstance(c.stated, tuple) else c.stated
        comparisons.append({
            "name": c.name, "derived": c.derived, "deduced": _num(d.value),
            "deduced_sigma": _num(d.sigma), "stated": stated,
            "ratio_deduced_over_stated": _num(d.value / mid) if mid and d.identifiable else None,
            "unit": c.unit, "source": c.source, "note": c.note,
        })
    return {
        "schema": SCHEMA,
        "file": loaded.path,
        "title": spec.title,
        "dropped_observations": dropped or [],
        "chi2": _num(result.chi2),
        "dof": result.dof,
        "rank": result.rank,
        "n_unknowns": len(result.unknowns),
        "condition": _num(result.condition),
        "singular_values": [_num(s) for s in result.singular_values],
        "unconstrained_directions": result.unconstrained,
        "starts": result.starts,
        "starts_agreeing": result.starts_agreeing,
        "other_minima": result.other_minima,
        "unknowns": [{
            "name": u.name,
            "knob": loaded.unknown_knobs[u.name],
            "unit": F.quantity_unit(loaded.unknown_knobs[u.name]),
            "estimate": _num(u.estimate),
            "sigma": _num(u.sigma),
            "interval_68": [_num(u.interval[0]), _num(u.interval[1])],
            "interval_kind": u.interval_kind,
            "status": u.status,
            "asymmetric": u.asymmetric,
            "at_bound": u.at_bound,
        } for u in result.unknowns],
        "observations": [{
            "name": o.name, "observed": _num(o.observed), "sigma": _num(o.sigma),
            "predicted": _num(o.predicted), "pull": _num(o.pull),
        } for o in result.observations],
        "derived": [{
            "name": d.name, "value": _num(d.value), "sigma": _num(d.sigma),
            "identifiable": d.identifiable, "unit": d.unit,
        } for d in result.derived],
        "comparisons": comparisons,
        "warnings": result.warnings,
    }


def render(doc: dict[str, Any], console) -> None:
    from rich.table import Table

    title = doc["title"] or doc["file"]
    console.print(f"[bold]{title}[/bold]  ({doc['file']})")
    if doc["dropped_observations"]:
        console.print(f"dropped observations: {', '.join(doc['dropped_observations'])}")
    chi2 = doc["chi2"]
    dof = doc["dof"]
    dof_text = (f"{dof} degree(s) of freedom" if dof >= 0
                else f"{-dof} more unknown(s) than observations and priors")
    cond = _fmt(doc["condition"], 3) if doc["condition"] is not None else "∞"
    console.print(
        f"χ² = {_fmt(chi2, 3)} for {dof_text}; data Jacobian rank "
        f"{doc['rank']} of {doc['n_unknowns']} (condition {cond}); "
        f"{doc['starts_agreeing']} of {doc['starts']} starts reached the best minimum")

    t = Table(title="unknowns (68 % intervals)", title_justify="left")
    for col in ("unknown", "knob", "estimate ± 1σ", "68 % interval", "status"):
        t.add_column(col)
    for u in doc["unknowns"]:
        est = u["estimate"]
        sigma = u["sigma"]
        cell = _pm(est, sigma if sigma is not None else math.inf) if est is not None else "—"
        lo, hi = u["interval_68"]
        interval = "—" if u["status"] == "not identifiable" else f"[{_fmt(lo)}, {_fmt(hi)}] {u['interval_kind']}"
        flags = [u["status"]]
        if u["asymmetric"]:
            flags.append("asymmetric")
        if u["at_bound"]:
            flags.append(f"at {u['at_bound']} bound")
        unit = f" {u['unit']}" if u["unit"] and u["unit"] != "1" else ""
        t.add_row(u["name"], u["knob"], cell + unit, interval, ", ".join(flags))
    console.print(t)

    t = Table(title="observations", title_justify="left")
    for col in ("observation", "observed ± 1σ", "fitted", "pull (σ)"):
        t.add_column(col)
    for o in doc["observations"]:
        t.add_row(o["name"], _pm(o["observed"], o["sigma"]), _fmt(o["predicted"]),
                  f"{o['pull']:+.2f}" if o["pull"] is not None else "—")
    console.print(t)

    if doc["derived"]:
        t = Table(title="deduced at the fit", title_justify="left")
        for col in ("quantity", "value ± 1σ", "unit"):
            t.add_column(col)
        for d in doc["derived"]:
            sigma = d["sigma"] if d["sigma"] is not None else math.inf
            t.add_row(d["name"], _pm(d["value"], sigma) if d["value"] is not None else "—", d["unit"])
        console.print(t)

    if doc["comparisons"]:
        t = Table(title="deduced vs stated", title_justify="left")
        for col in ("figure", "deduced", "stated", "deduced/stated", "note"):
            t.add_column(col)
        for c in doc["comparisons"]:
            stated = c["stated"]
            st = f"{_fmt(stated[0])}–{_fmt(stated[1])}" if isinstance(stated, list) else _fmt(stated)
            dd = _pm(c["deduced"], c["deduced_sigma"] if c["deduced_sigma"] is not None else math.inf)
            ratio = _fmt(c["ratio_deduced_over_stated"], 3)
            t.add_row(c["name"], f"{dd} {c['unit']}".strip(), f"{st} {c['unit']}".strip(), ratio, c["note"])
        console.print(t)

    for pl in doc["unconstrained_directions"]:
        law = " · ".join(f"{n}^{e:+.2f}" for n, e in pl.items())
        console.print(f"[yellow]not identifiable:[/yellow] the data do not constrain {law}")
    for w in doc["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {w}")


def run_fit(path: str | Path, *, starts: int | None = None, seed: int | None = None,
            profile: bool | None = None, drop: list[str] | None = None):
    """Load, fit, and return ``(loaded, result, dropped)`` (Python API behind the command)."""
    import dataclasses

    from rooflax.core import fit as F
    from rooflax.sweeps.observations import ObservationFileError, load

    loaded = load(path)
    problem = loaded.problem
    dropped: list[str] = []
    if drop:
        names = [o.name for o in problem.observations]
        for d in drop:
            if d not in names:
                raise ObservationFileError(str(path), None, "--drop",
                                           f"an observation name, one of: {', '.join(map(repr, names))}", repr(d))
        keep = tuple(o for o in problem.observations if o.name not in drop)
        if not keep:
            raise ObservationFileError(str(path), None, "--drop", "at least one observation left", "none")
        problem = dataclasses.replace(problem, observations=keep)
        loaded = dataclasses.replace(loaded, problem=problem)
        dropped = list(drop)
    fs = loaded.spec.fit
    result = F.fit(
        problem,
        starts=fs.starts if starts is None else starts,
        seed=fs.seed if seed is None else seed,
        profile=fs.profile if profile is None else profile,
        iterations=fs.iterations,
    )
    return loaded, result, dropped


def register(app: typer.Typer) -> None:
    """Add the ``fit`` command to the top-level app."""

    @app.command("fit")
    def fit_command(
        observations: Annotated[str, typer.Argument(help="Observation file (YAML); see configs/fit-*.yaml.")],
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON (schema rooflax.fit/1) instead of tables.")] = False,
        starts: Annotated[int | None, typer.Option("--starts", min=1, max=256, help="Random starts (default: the file's fit.starts, else 8).")] = None,
        seed: Annotated[int | None, typer.Option("--seed", help="Seed of the random starts (default: the file's).")] = None,
        no_profile: Annotated[bool, typer.Option("--no-profile", help="Skip the profile-χ² scans (linearized intervals only).")] = False,
        drop: Annotated[list[str] | None, typer.Option("--drop", help="Leave out an observation by name (repeatable): what can still be deduced?")] = None,
    ) -> None:
        """Deduce unknown knobs (batch, context, KV bytes, efficiency, price…) from observations.

        Observations are quantities the roofline predicts (tokens/s per user or per
        chip, $/M output tokens, price ratios, the tier context l_crit, …) with
        1-σ uncertainties; unknowns are knobs with bounds or priors. The fit is a
        multi-start Levenberg–Marquardt least squares on the JAX Jacobian; it
        reports each estimate with a 68 % interval (profile χ² where asymmetric),
        and says which unknowns the data cannot identify instead of guessing.

        \b
        Examples:
          rooflax fit configs/fit-deepseek-production.yaml
          rooflax fit configs/fit-long-context-tier.yaml --json
          rooflax fit configs/fit-long-context-tier.yaml --drop "runs near the balance batch"

        \b
        --json keys (schema "rooflax.fit/1"; non-finite numbers are null):
          schema, file, title, dropped_observations, chi2, dof, rank, n_unknowns,
          condition, singular_values, unconstrained_directions [{UNKNOWN: exponent}],
          starts, starts_agreeing, other_minima,
          unknowns [{name, knob, unit, estimate, sigma, interval_68, interval_kind,
                     status ("identified"|"prior only"|"not identifiable"), asymmetric, at_bound}],
          observations [{name, observed, sigma, predicted, pull}],
          derived [{name, value, sigma, identifiable, unit}],
          comparisons [{name, derived, deduced, deduced_sigma, stated,
                        ratio_deduced_over_stated, unit, source, note}],
          warnings.
        """
        from rich.console import Console

        from rooflax.sweeps.observations import ObservationFileError

        try:
            loaded, result, dropped = run_fit(observations, starts=starts, seed=seed,
                                              profile=False if no_profile else None, drop=drop)
        except ObservationFileError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(e.exit_code) from None
        doc = result_dict(loaded, result, dropped)
        if as_json:
            typer.echo(json.dumps(doc, indent=2, ensure_ascii=False))
        else:
            render(doc, Console(highlight=False, soft_wrap=False, width=160))
