"""The ``rooflax`` command line.

The top-level Typer app lives here because imports flow results → sweeps → core:
``sweep`` is defined in :mod:`rooflax.sweeps.cli` and mounted below; the
results commands (sensitivity, query, catalog, plot, explore) are added here.
Heavy packages are imported inside each command: ``sensitivity``, ``query``
and ``catalog`` load jax + core + the catalog only (never xarray, dask or the
plotting packages) unless given a cube.
"""

from __future__ import annotations

import functools
import math
import sys
from typing import Annotated

import typer

from rooflax.sweeps.cli import register as register_sweep_commands

app = typer.Typer(
    name="rooflax",
    help="Roofline and cost of LLM inference: sweeps, sensitivities, plots.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Roofline and cost of LLM inference: sweeps, sensitivities, plots."""


register_sweep_commands(app)


def _register_fit(app: typer.Typer) -> None:
    from .fit import register

    register(app)


_register_fit(app)


def _register_validate(app: typer.Typer) -> None:
    from .validate import register

    register(app)


_register_validate(app)


def _register_calibrate(app: typer.Typer) -> None:
    from .silicon import register

    register(app)


_register_calibrate(app)


# --------------------------------------------------------------------------- helpers
def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=False, width=160 if not stderr else None)


def _user_errors(fn):
    """Print user errors (bad names, values, selections) as one line and exit with code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from .parse import ParseError
        from .point import UserError

        try:
            return fn(*args, **kwargs)
        except (UserError, ParseError) as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None
        except ValueError as e:
            if type(e).__name__ == "UnknownNameError":
                typer.echo(f"error: {e}", err=True)
                raise typer.Exit(2) from None
            raise

    return wrapper


def _kv(items: list[str] | None, parse_value=None) -> dict:
    from . import parse

    out = {}
    for item in items or []:
        k, v = parse.key_value(item)
        out[k] = parse_value(v) if parse_value else v
    return out


def _slo(text: str | None) -> float:
    from . import parse

    return math.inf if text is None else parse.seconds(text)


HardwareOpt = Annotated[str, typer.Option("--hardware", "-H", help="Catalog hardware (case-insensitive; aliases ok). See `rooflax catalog hardware`.")]
ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Catalog model (case-insensitive). See `rooflax catalog models`.")]
ChipsOpt = Annotated[float | None, typer.Option("--chips", "-n", help="Chips per replica (default: the catalog entry's).")]
PrecisionOpt = Annotated[str, typer.Option("--precision", "-p", help="Compute precision (peak FLOPS): bf16, fp8, fp4, int8.")]
WeightsOpt = Annotated[str | None, typer.Option("--weights", help="Weight precision (default: --precision; 'native' = the checkpoint's).")]
KvOpt = Annotated[str, typer.Option("--kv-precision", help="KV-cache precision.")]
PriceOpt = Annotated[float | None, typer.Option("--price-per-hour", help="Price per chip, $/h (default: the catalog's).")]
SloOpt = Annotated[str | None, typer.Option("--slo", help="Per-token latency target, e.g. 50ms (default: none).")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="Set a knob, KNOB=VALUE in SI units (e.g. bw=8e12, sparsity=1). Repeatable.")]
ScaleOpt = Annotated[list[str] | None, typer.Option("--scale", help="Multiply a knob, KNOB=FACTOR (e.g. bw=10 with c_over_bw=0.1: 10x bandwidth at the same C). Repeatable.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


# --------------------------------------------------------------------------- sensitivity
@app.command()
@_user_errors
def sensitivity(
    cube: Annotated[str | None, typer.Argument(help="A saved result cube (Zarr); omit to compute from the catalog.")] = None,
    hardware: Annotated[str | None, typer.Option("--hardware", "-H", help="Catalog hardware (case-insensitive).")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Catalog model (case-insensitive).")] = None,
    context: Annotated[str, typer.Option("--context", "-L", help="Context length, tokens (32k = 32768).")] = "0",
    chips: ChipsOpt = None,
    precision: PrecisionOpt = "bf16",
    weights: WeightsOpt = None,
    kv_precision: KvOpt = "bf16",
    price_per_hour: PriceOpt = None,
    slo: SloOpt = None,
    knob: Annotated[list[str] | None, typer.Option("--knob", "-k", help="Knobs to differentiate by (repeatable; default bw, c_over_bw, sparsity, capacity, price, context; 'all' for every knob).")] = None,
    set_: SetOpt = None,
    scale: ScaleOpt = None,
    sel: Annotated[list[str] | None, typer.Option("--sel", help="With CUBE: DIM=VALUE, repeatable (names case-insensitive, numbers nearest).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """How B*, cost, latency and throughput at B* move with each knob (autodiff).

    Prints B*, the binding constraint, $/Mtok, latency and throughput at B*,
    then for each output and knob the partial derivative, the elasticity and a
    sentence ("+1 % bandwidth → −0.62 % cost per token").

    \b
    Examples:
      rooflax sensitivity -H h200 --chips 8 -m deepseek-v3 --context 32k --precision fp8
      rooflax sensitivity out/cube.zarr --sel hardware=h200 --sel model=deepseek-v3 --sel context=32768

    \b
    --json keys (schema "rooflax.sensitivity/1"; non-finite numbers are null):
      schema, source ("catalog" | "cube:PATH"),
      inputs {hardware, model, chips, precision, weights, kv_precision,
              price_per_hour, context, slo, set, scale},
      parameters {bw, c_over_bw, capacity, price, chips, n_total, sparsity,
                  kv_bytes_per_token, bytes_per_weight, context, batch, slo}  (SI),
      binding ("crossover"|"capacity"|"slo"|"infeasible"), reason,
      values {b_star, cost_at_b_star, cost_per_mtok_at_b_star,
              latency_at_b_star, throughput_at_b_star},
      units, partial {OUTPUT: {KNOB: dy/dx}}, elasticity {OUTPUT: {KNOB: dlny/dlnx}},
      sentences {OUTPUT: {KNOB: text}}.
    """
    from rooflax.core import KNOBS

    from . import parse, report
    from .point import UserError

    knobs = None
    if knob:
        knobs = list(KNOBS) if "all" in knob else [k for k in knob]
        bad = [k for k in knobs if k not in KNOBS]
        if bad:
            raise UserError(f"unknown knob(s) {', '.join(bad)}; knobs: {', '.join(KNOBS)}")
    if cube is not None:
        from .cube import open_cube, point_report

        selection = _kv(sel)
        for name, val in (("hardware", hardware), ("model", model)):
            if val is not None:
                selection.setdefault(name, val)
        if context != "0":
            selection.setdefault("context", context)
        rep = point_report(open_cube(cube), selection, path=cube, knobs=knobs)
    else:
        if hardware is None or model is None:
            raise UserError("give --hardware and --model (or a CUBE with --sel)")
        import jax

        from .point import build_point

        pt = build_point(
            hardware, model, chips=chips, precision=precision, weights=weights,
            kv_precision=kv_precision, price_per_hour=price_per_hour,
            context=parse.tokens(context), slo=_slo(slo),
            set_=_kv(set_, parse.number), scale=_kv(scale, parse.number))
        # One point: op-by-op evaluation (≈2 s here) beats compiling the sensitivity graph
        # (≈7 s here the first time), and needs no compilation cache.
        with jax.disable_jit():
            rep = report.from_point(pt, knobs=knobs)
    if as_json:
        typer.echo(report.to_json(rep))
    else:
        report.render(rep, _console())


# --------------------------------------------------------------------------- query
@app.command()
@_user_errors
def query(
    quantity: Annotated[list[str], typer.Argument(help="One or more core quantities (e.g. b_star cost_per_mtok_at_b_star t_step); 'list' shows them all.")],
    hardware: Annotated[str, typer.Option("--hardware", "-H", help="Catalog hardware; a comma list sweeps it.")] = "h100-sxm",
    model: Annotated[str, typer.Option("--model", "-m", help="Catalog model; a comma list sweeps it.")] = "deepseek-v3",
    batch: Annotated[str, typer.Option("--batch", "-B", help="Batch: a value, a list 1,8,64, a log range 1..8192[/N] or lo:hi:step.")] = "1",
    context: Annotated[str, typer.Option("--context", "-L", help="Context, tokens (32k = 32768): value, list or range.")] = "0",
    chips: Annotated[str | None, typer.Option("--chips", "-n", help="Chips per replica: value or list (default: the catalog's).")] = None,
    precision: PrecisionOpt = "bf16",
    weights: WeightsOpt = None,
    kv_precision: KvOpt = "bf16",
    price_per_hour: PriceOpt = None,
    slo: SloOpt = None,
    set_: SetOpt = None,
    scale: ScaleOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Any core quantity at a point, or along axes given as lists/ranges.

    \b
    Examples:
      rooflax query b_star b_x b_max -H h200 -n 8 -m deepseek-v3 -L 32k -p fp8
      rooflax query cost_per_mtok latency -H h100-sxm -n 8 -m llama-3.1-70b -B 1..4096/7
      rooflax query list

    --json prints {"quantities": {NAME: {"units", "long_name"}}, "rows": [{axis values…, NAME: value}]}
    with non-finite numbers as null.
    """
    import itertools

    from . import parse
    from .point import QUANTITIES, UserError, build_point, enable_compilation_cache, evaluate

    enable_compilation_cache()

    if quantity == ["list"]:
        con = _console()
        from rich.table import Table

        t = Table(title="Quantities (rooflax.core functions)")
        for c in ("name", "units", "meaning"):
            t.add_column(c)
        for q in QUANTITIES.values():
            t.add_row(q.name, q.units, q.long_name)
        con.print(t)
        return
    for q in quantity:
        if q not in QUANTITIES:
            evaluate(q, None, None, None)  # raises UserError with "did you mean"
    hws = [h for h in hardware.split(",") if h.strip()]
    mds = [m for m in model.split(",") if m.strip()]
    batches = parse.values(batch, parse.number)
    contexts = parse.values(context, parse.tokens)
    chip_list = [None] if chips is None else parse.values(chips, parse.number)
    set_d, scale_d = _kv(set_, parse.number), _kv(scale, parse.number)
    rows = []
    import jax.numpy as jnp

    for h, m, n in itertools.product(hws, mds, chip_list):
        pt = build_point(h, m, chips=n, precision=precision, weights=weights,
                         kv_precision=kv_precision, price_per_hour=price_per_hour, slo=_slo(slo),
                         set_=set_d, scale=scale_d)
        B = jnp.asarray(batches, dtype=jnp.float64)[:, None]
        L = jnp.asarray(contexts, dtype=jnp.float64)[None, :]
        wl = pt.wl.replace(batch=B, context=L)
        vals = {q: evaluate(q, pt.hw, pt.model, wl) for q in quantity}
        for i, b in enumerate(batches):
            for j, ctx in enumerate(contexts):
                row = {"hardware": pt.meta["hardware"], "model": pt.meta["model"],
                       "chips": pt.meta["chips"], "batch": b, "context": ctx}
                for q in quantity:
                    a = vals[q]
                    a = a.reshape(a.shape + (1,) * (2 - a.ndim)) if a.ndim < 2 else a
                    x = a[min(i, a.shape[0] - 1), min(j, a.shape[1] - 1)].item()
                    row[q] = x
                rows.append(row)
    if not rows:
        raise UserError("nothing to evaluate")
    if as_json:
        import json

        def clean(x):
            return None if isinstance(x, float) and not math.isfinite(x) else x

        out = {"quantities": {q: {"units": QUANTITIES[q].units,
                                  "long_name": QUANTITIES[q].long_name} for q in quantity},
               "rows": [{k: clean(v) for k, v in r.items()} for r in rows]}
        typer.echo(json.dumps(out, indent=2))
        return
    from rich.table import Table

    from rooflax import core as rc

    varying = [k for k in ("hardware", "model", "chips", "batch", "context")
               if len({r[k] for r in rows}) > 1]
    fixed = {k: rows[0][k] for k in ("hardware", "model", "chips", "batch", "context")
             if k not in varying}
    t = Table(title=" · ".join(f"{k}={parse.si(v) if isinstance(v, float) else v}"
                               for k, v in fixed.items()))
    for k in varying:
        t.add_column(k, justify="right")
    for q in quantity:
        t.add_column(f"{q} [{QUANTITIES[q].units}]", justify="right")

    def fmt(q, x):
        if q == "binding" and math.isfinite(x):
            return rc.BINDINGS[int(x)]
        if q == "regime" and math.isfinite(x):
            return rc.REGIMES[int(x)]
        return f"{x:.4g}"

    for r in rows:
        t.add_row(*[f"{r[k]:.6g}" if isinstance(r[k], float) else str(r[k]) for k in varying],
                  *[fmt(q, r[q]) for q in quantity])
    _console().print(t)


# --------------------------------------------------------------------------- catalog
@app.command()
@_user_errors
def catalog(
    kind: Annotated[str, typer.Argument(help="hardware or models.")] = "hardware",
    name: Annotated[str | None, typer.Argument(help="One entry to show in full (with sources).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List the hardware or model catalog, or show one entry with its sources.

    \b
    Examples:
      rooflax catalog hardware
      rooflax catalog models deepseek-v3
    """
    import json

    from rooflax.sweeps import catalogs

    from . import parse
    from .point import UserError

    k = kind.lower().rstrip("s")
    if k not in ("hardware", "model"):
        raise UserError(f"catalog {kind!r}: expected 'hardware' or 'models'")
    if name is not None:
        key = catalogs.resolve_hardware(name) if k == "hardware" else catalogs.resolve_model(name)
        entry = catalogs.hardware_entry(key) if k == "hardware" else catalogs.model_entry(key)
        entry = {"key": key, **entry}
        if as_json:
            typer.echo(json.dumps(entry, indent=2, default=str))
            return
        from rich.pretty import Pretty

        con = _console()
        con.print(f"[bold]{key}[/bold]")
        con.print(Pretty(entry, expand_all=True))
        return
    table = catalogs.hardware_table() if k == "hardware" else catalogs.model_table()
    if as_json:
        typer.echo(json.dumps(table, indent=2, default=str))
        return
    from rich.table import Table

    cols = [c for c in table[0] if c not in ("source",)] if table else []
    t = Table(title=f"{k} catalog ({len(table)} entries) — `rooflax catalog {kind} NAME` shows sources")
    for c in cols:
        t.add_column(c, overflow="fold")
    def cell(x):
        if x is None:
            return ""
        if isinstance(x, bool):
            return str(x)
        if isinstance(x, (int, float)):
            return parse.si(float(x)) if abs(x) >= 1e5 else f"{x:.4g}"
        return str(x)

    for row in table:
        t.add_row(*[cell(row.get(c)) for c in cols])
    _console().print(t)


# --------------------------------------------------------------------------- plot
@app.command()
@_user_errors
def plot(
    cube: Annotated[str, typer.Argument(help="A saved result cube (Zarr).")],
    kind: Annotated[str, typer.Argument(help="roofline | cost | bstar | sensitivity | frontier")],
    output: Annotated[str, typer.Option("--output", "-o", help="FILE.html (interactive, offline) or FILE.png (static).")],
    sel: Annotated[list[str] | None, typer.Option("--sel", help="DIM=VALUE or DIM=V1,V2 (repeatable); dims left unselected become widgets.")] = None,
    max_frames: Annotated[int, typer.Option(help="Most widget combinations embedded in an HTML file.")] = 400,
) -> None:
    """Plot a saved cube: HTML with widgets for the dimensions not drawn, or a PNG.

    \b
    Examples:
      rooflax plot out/cube.zarr roofline --sel hardware=h200 -o roofline.html
      rooflax plot out/cube.zarr cost --sel model=deepseek-v3 --sel context=32k -o cost.png
    """
    from . import plots
    from .cube import open_cube

    ds = open_cube(cube)
    obj = plots.make(kind, ds, max_frames=max_frames, **_kv(sel))
    path = plots.save(obj, output)
    typer.echo(f"wrote {path}")


# --------------------------------------------------------------------------- explore
@app.command()
def explore(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: any free port).")] = 5006,
    show: Annotated[bool, typer.Option("--show/--no-show", help="Open a browser tab.")] = True,
) -> None:
    """The seed's T_compute / T_memory simulator as a Panel app on 127.0.0.1."""
    from .explore import serve

    serve(port=port, show=show)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    sys.exit(main())
