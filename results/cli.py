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
import os
import sys
from typing import Annotated

import typer
from typer.core import TyperGroup

from rooflax.sweeps.cli import register as register_sweep_commands


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _float64_on() -> None:
    """Every command computes in float64 (rooflax.core never flips it on import). JAX reads
    ``JAX_ENABLE_X64`` when it is first imported, so the commands that never import it
    (``--help``, ``--version``, plots of saved cubes) do not pay ≈1 s for it here; a sweep's Dask
    workers inherit it (and each block task turns it on anyway: ``sweeps.compute``)."""
    os.environ["JAX_ENABLE_X64"] = "1"
    if "jax" in sys.modules:  # already imported (e.g. the CLI called from Python): flip it now
        from rooflax.core import enable_x64

        enable_x64()


class GuardedGroup(TyperGroup):
    """The one ``main`` guard of ``rooflax``: usage errors are one line and exit 2; any
    unexpected exception is one line with a hint and exit 1 (the traceback only with
    ``--debug`` or ``ROOFLAX_DEBUG=1``)."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        from typer._click import exceptions as click  # typer's own (vendored) click

        _float64_on()
        args = list(sys.argv[1:] if args is None else args)
        debug = "--debug" in args or bool(os.environ.get("ROOFLAX_DEBUG"))
        try:
            rv = super().main(args, prog_name or "rooflax", complete_var,
                              standalone_mode=False, **extra)
            code = rv if isinstance(rv, int) else 0
        except click.NoArgsIsHelpError as e:
            e.show()
            code = 2
        except click.UsageError as e:
            where = e.ctx.command_path if e.ctx is not None else "rooflax"
            typer.echo(f"error: {_one_line(e.format_message())} (see '{where} -h')", err=True)
            code = 2
        except click.ClickException as e:
            typer.echo(f"error: {_one_line(e.format_message())}", err=True)
            code = e.exit_code
        except (typer.Abort, KeyboardInterrupt):
            typer.echo("aborted", err=True)
            code = 130
        except Exception as e:
            if debug:
                raise
            typer.echo(f"error: unexpected {type(e).__name__}: {_one_line(e)[:300]} (a bug in "
                       "rooflax: rerun with --debug for the traceback and report it)", err=True)
            code = 1
        if standalone_mode:
            sys.exit(code)
        return code


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"rooflax {version('rooflax')}")
        raise typer.Exit()


app = typer.Typer(
    name="rooflax",
    cls=GuardedGroup,
    help="Roofline and cost of LLM inference: sweeps, sensitivities, plots.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of an unexpected "
                                        "error (also ROOFLAX_DEBUG=1).")] = False,
) -> None:
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
    """A rich console that never interprets markup in user strings or units (``[s]``) and fits
    the terminal (``COLUMNS``; 160 columns when writing to a pipe or file)."""
    from rich.console import Console

    piped = not (sys.stderr if stderr else sys.stdout).isatty()
    width = 160 if piped and not os.environ.get("COLUMNS") else None
    return Console(stderr=stderr, highlight=False, soft_wrap=False, markup=False, width=width)


def _user_errors(fn):
    """Print user errors (bad names, values, selections) as one line and exit with code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from rooflax.sweeps.inputs import InputError
        from rooflax.sweeps.units import ParseError

        from .point import UserError

        try:
            return fn(*args, **kwargs)
        except (UserError, ParseError, InputError) as e:
            typer.echo(f"error: {_one_line(e)}", err=True)
            raise typer.Exit(2) from None
        except ValueError as e:
            cat = sys.modules.get("rooflax.sweeps.catalogs")
            if cat is not None and isinstance(e, cat.UnknownNameError):
                typer.echo(f"error: {_one_line(e)}", err=True)
                raise typer.Exit(2) from None
            raise

    return wrapper


def _checked(name: str, many: bool = False):
    """A typer callback checking an option against the one domain of ``name``
    (:data:`rooflax.core.quantities.DOMAINS`); a list/range (``many``) is checked value by value.
    Bad values are usage errors: one line naming the option, exit 2."""

    def callback(value):
        if value is None:
            return value
        from rooflax.sweeps import units

        try:
            if many:
                units.values(value, lambda t: units.knob(name, t))
            else:
                units.knob(name, value)
        except units.ParseError as e:
            raise typer.BadParameter(str(e)) from None
        return value

    return callback


def _knob_values(items: list[str] | None, how: str) -> dict[str, float]:
    """``--set KNOB=VALUE`` (checked against the knob's domain) or ``--scale KNOB=FACTOR``
    (a finite factor > 0; the scaled value is checked when the point is built)."""
    from rooflax.core import KNOBS
    from rooflax.sweeps import units
    from rooflax.sweeps.inputs import suggest

    from .point import UserError

    out = {}
    for item in items or []:
        k, v = units.key_value(item)
        if k not in KNOBS:
            raise UserError(f"--{how} {k}: unknown knob{suggest(k, list(KNOBS))}; "
                            f"knobs: {', '.join(KNOBS)}")
        try:
            out[k] = units.knob(k, v) if how == "set" else units.parse(v, "number")
        except units.ParseError as e:
            raise UserError(f"--{how} {k}: {e}") from None
    return out


def _hw(text: str | None) -> dict | None:
    """``--hw bw=…,flops=…,hbm=…,price=…`` as SI numbers (see results.estimate.parse_hw)."""
    if not text:
        return None
    from .estimate import parse_hw

    return parse_hw(text)


def _kv(items: list[str] | None, parse_value=None) -> dict:
    from rooflax.sweeps import units

    out = {}
    for item in items or []:
        k, v = units.key_value(item)
        out[k] = parse_value(v) if parse_value else v
    return out


def _slo(text: str | None) -> float:
    from rooflax.sweeps import units

    return math.inf if text is None else units.seconds(text)


HardwareOpt = Annotated[str, typer.Option("--hardware", "-H", help="Catalog hardware (case-insensitive; aliases ok). See `rooflax catalog hardware`.")]
ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Catalog model (case-insensitive). See `rooflax catalog models`.")]
ChipsOpt = Annotated[float | None, typer.Option("--chips", "-n", callback=_checked("chips"), help="Chips per replica (default: the catalog entry's).")]
PrecisionOpt = Annotated[str, typer.Option("--precision", "-p", help="Compute precision (peak FLOPS): bf16, fp8, fp4, int8.")]
WeightsOpt = Annotated[str | None, typer.Option("--weights", help="Weight precision (default: --precision; 'native' = the checkpoint's).")]
KvOpt = Annotated[str, typer.Option("--kv-precision", help="KV-cache precision.")]
PriceOpt = Annotated[str | None, typer.Option("--price", "--price-per-hour", help="Price basis: tco-neocloud | tco-hyperscaler | rental-3yr | market-low | market-high (several joined by commas: the first the chip has), or $/h per chip such as 8$/h. Default: tco-neocloud,market-low. A chip without a price: NaN, 'no price'.")]
HwOpt = Annotated[str | None, typer.Option("--hw", help="Modify the chip: bw=10TB/s,flops=5PFLOPS,hbm=288GB,price=8$/h (any subset; units accepted). The title says 'modified'.")]
SloOpt = Annotated[str | None, typer.Option("--slo", callback=_checked("slo"), help="Per-token latency target, e.g. 50ms (default: none).")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="Set a knob, KNOB=VALUE in SI units (e.g. bw=8e12, sparsity=1). Repeatable.")]
ScaleOpt = Annotated[list[str] | None, typer.Option("--scale", help="Multiply a knob, KNOB=FACTOR (e.g. bw=10 with c_over_bw=0.1: 10x bandwidth at the same C). Repeatable.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
EngineOpt = Annotated[str | None, typer.Option("--engine", help="Serving engine whose calibrated time per layer the prediction uses (trtllm, sglang, vllm); default: the values shared by all engines.")]
HfConfigOpt = Annotated[str | None, typer.Option("--hf-config", help="A Hugging Face config.json to use as the model (or give its path to -m).")]
CatalogOpt = Annotated[str | None, typer.Option("--catalog", help="A user model catalog (YAML, the schema of models.yaml) merged over the packaged one; also $ROOFLAX_CATALOG.")]


def _user_models(model: str | None, hf_config: str | None, catalog: str | None) -> str | None:
    """--catalog / --hf-config / -m path/to/config.json → catalog names (comma list kept)."""
    from rooflax.sweeps import catalogs, hf

    from .point import UserError

    try:
        if catalog is not None:
            catalogs.use_user_catalog(catalog)
        if hf_config is not None:
            return hf.register(hf_config)
        if model is None:
            return None
        names = [m.strip() for m in model.split(",")]
        return ",".join(hf.register(m) if m.endswith(".json") and os.path.isfile(m) else m
                        for m in names)
    except (hf.HFConfigError, catalogs.UserCatalogError) as e:
        raise UserError(str(e)) from None


# --------------------------------------------------------------------------- sensitivity
@app.command()
@_user_errors
def sensitivity(
    cube: Annotated[str | None, typer.Argument(help="A saved result cube (Zarr); omit to compute from the catalog.")] = None,
    hardware: Annotated[str | None, typer.Option("--hardware", "-H", help="Catalog hardware (case-insensitive).")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Catalog model (case-insensitive).")] = None,
    context: Annotated[str, typer.Option("--context", "-L", callback=_checked("context"), help="Context length, tokens (32k = 32768).")] = "0",
    chips: ChipsOpt = None,
    precision: PrecisionOpt = "bf16",
    weights: WeightsOpt = None,
    kv_precision: KvOpt = "bf16",
    price_per_hour: PriceOpt = None,
    slo: SloOpt = None,
    knob: Annotated[list[str] | None, typer.Option("--knob", "-k", help="Knobs to differentiate by (repeatable; default bw, c_over_bw, sparsity, capacity, price, context; 'all' for every knob).")] = None,
    set_: SetOpt = None,
    hw: HwOpt = None,
    scale: ScaleOpt = None,
    sel: Annotated[list[str] | None, typer.Option("--sel", help="With CUBE: DIM=VALUE, repeatable (names case-insensitive, numbers nearest).")] = None,
    hf_config: HfConfigOpt = None,
    catalog: CatalogOpt = None,
    predicted: Annotated[bool, typer.Option("--predicted", help="The calibrated prediction at --batch (TPOT, tokens/s, $/token) instead of the bound at B*.")] = False,
    batch: Annotated[str | None, typer.Option("--batch", "-B", callback=_checked("batch"), help="With --predicted: the concurrency (sequences) the prediction is taken at.")] = None,
    engine: EngineOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """How B*, cost, latency and throughput at B* move with each knob (autodiff); with
    --predicted -B N, how the calibrated prediction at batch N moves.

    Prints B*, the binding constraint, $/Mtok, latency and throughput at B*,
    then for each output and knob the partial derivative, the elasticity and a
    sentence ("+1 % bandwidth → −0.62 % cost per token").

    \b
    Examples:
      rooflax sensitivity -H h200 --chips 8 -m deepseek-v3 --context 32k --precision fp8
      rooflax sensitivity out/cube.zarr --sel hardware=h200 --sel model=deepseek-v3 --sel context=32768
      rooflax sensitivity -H h200 -n 8 -m path/to/config.json -L 32k
      rooflax sensitivity --predicted -B 64 -H h200 -n 8 -m deepseek-v3 -L 8k -p fp8
      rooflax sensitivity --predicted -B 64 --engine sglang -H h200 -n 8 -m deepseek-v3 -L 8k -p fp8

    \b
    --json keys (schema "rooflax.sensitivity/1"; non-finite numbers are null):
      schema, reading ("bound": the seeds' roofline), source ("catalog" | "cube:PATH"),
      inputs {hardware, model, chips, precision, weights, kv_precision,
              price_per_hour, context, slo, set, scale},
      parameters {bw, c_over_bw, capacity, price, chips, n_total, sparsity,
                  kv_bytes_per_token, bytes_per_weight, context, batch, slo}  (SI),
      binding ("crossover"|"capacity"|"slo"|"infeasible"), reason,
      values {b_star, cost_at_b_star, cost_per_mtok_at_b_star,
              latency_at_b_star, throughput_at_b_star},
      units, partial {OUTPUT: {KNOB: dy/dx}}, elasticity {OUTPUT: {KNOB: dlny/dlnx}},
      sentences {OUTPUT: {KNOB: text}}.
      With --predicted: reading "prediction", label, inputs.batch, inputs.engine, running_batch,
      binding null,
      values {latency, tokens_per_second_per_user, throughput, cost_per_token, cost_per_mtok}.
    """
    from . import report

    knobs = _sensitivity_knobs(knob)
    _check_prediction_options(predicted, batch, cube, engine)
    if cube is not None:
        rep = _sensitivity_of_cube(cube, _kv(sel), hardware, model, context, knobs)
    else:
        rep = _sensitivity_of_point(
            hardware, _user_models(model, hf_config, catalog), knobs, context=context,
            chips=chips, precision=precision, weights=weights, kv_precision=kv_precision,
            price=price_per_hour, slo=slo, set_=set_, scale=scale, hw=hw, batch=batch,
            engine=engine)
    if as_json:
        typer.echo(report.to_json(rep))
    else:
        (report.render_prediction if predicted else report.render)(rep, _console())


def _check_prediction_options(predicted: bool, batch: str | None, cube: str | None,
                              engine: str | None = None) -> None:
    """--predicted needs a catalog point and --batch; --batch and --engine mean nothing to the
    bound (at B*)."""
    from .point import UserError

    if predicted and cube is not None:
        raise UserError("--predicted: expected a catalog point (-H/-m); found a cube, which holds "
                        "the bound (the seeds' roofline)")
    if predicted and batch is None:
        raise UserError("--predicted: expected --batch/-B N (the prediction has no closed-form "
                        "optimum: give the concurrency); found none")
    if batch is not None and not predicted:
        raise UserError("--batch: expected with --predicted only (the bound's report is at B*); "
                        "found it alone")
    _check_engine_option(predicted, engine)


def _check_engine_option(predicted: bool, engine: str | None) -> None:
    """--engine picks the prediction's calibrated values: it means nothing to the bound."""
    from .point import UserError

    if engine is not None and not predicted:
        raise UserError("--engine: expected with --predicted only (the bound has no engine)")


def _sensitivity_knobs(knob: list[str] | None) -> list[str] | None:
    """``--knob`` values checked against core's knobs ('all': every knob; none: the default)."""
    from rooflax.core import KNOBS

    from .point import UserError

    if not knob:
        return None
    knobs = list(KNOBS) if "all" in knob else list(knob)
    bad = [k for k in knobs if k not in KNOBS]
    if bad:
        raise UserError(f"unknown knob(s) {', '.join(bad)}; knobs: {', '.join(KNOBS)}")
    return knobs


def _sensitivity_of_cube(cube: str, selection: dict, hardware: str | None, model: str | None,
                         context: str, knobs: list[str] | None):
    """The report of one point of a saved cube: ``--sel``, completed by -H / -m / -L."""
    from .cube import open_cube, point_report

    for name, val in (("hardware", hardware), ("model", model)):
        if val is not None:
            selection.setdefault(name, val)
    if context != "0":
        selection.setdefault("context", context)
    return point_report(open_cube(cube), selection, path=cube, knobs=knobs)


def _sensitivity_of_point(hardware: str | None, model: str | None, knobs: list[str] | None, *,
                          context: str, chips, precision, weights, kv_precision, price, slo,
                          set_, scale, hw, batch: str | None = None, engine: str | None = None):
    """The report of one catalog point: one traced program evaluated in NumPy (core.interpret),
    the trace cached on disk (results.programs)."""
    from rooflax.sweeps import units

    from . import report
    from .point import UserError, build_point

    if hardware is None or model is None:
        raise UserError("give --hardware and --model (or a CUBE with --sel)")
    pt = build_point(
        hardware, model, chips=chips, precision=precision, weights=weights,
        kv_precision=kv_precision, price=price,
        context=units.tokens(context), slo=_slo(slo),
        set_=_knob_values(set_, "set"), scale=_knob_values(scale, "scale"), hw_custom=_hw(hw),
        batch=1.0 if batch is None else float(units.knob("batch", batch)))
    if batch is not None:
        return report.from_prediction(pt, knobs=knobs, engine=engine)
    return report.from_point(pt, knobs=knobs)


# --------------------------------------------------------------------------- query
@app.command()
@_user_errors
def query(
    quantity: Annotated[list[str], typer.Argument(help="One or more core quantities (e.g. b_star cost_per_mtok_at_b_star t_step); 'list' shows them all.")],
    hardware: Annotated[str, typer.Option("--hardware", "-H", help="Catalog hardware; a comma list sweeps it.")] = "h100-sxm",
    model: Annotated[str, typer.Option("--model", "-m", help="Catalog model; a comma list sweeps it.")] = "deepseek-v3",
    batch: Annotated[str, typer.Option("--batch", "-B", callback=_checked("batch", many=True), help="Batch: a value, a list 1,8,64, a log range 1..8192[/N] or lo:hi:step.")] = "1",
    context: Annotated[str, typer.Option("--context", "-L", callback=_checked("context", many=True), help="Context, tokens (32k = 32768): value, list or range.")] = "0",
    chips: Annotated[str | None, typer.Option("--chips", "-n", callback=_checked("chips", many=True), help="Chips per replica: value or list (default: the catalog's).")] = None,
    precision: PrecisionOpt = "bf16",
    weights: WeightsOpt = None,
    kv_precision: KvOpt = "bf16",
    price_per_hour: PriceOpt = None,
    slo: SloOpt = None,
    set_: SetOpt = None,
    hw: HwOpt = None,
    scale: ScaleOpt = None,
    hf_config: HfConfigOpt = None,
    catalog: CatalogOpt = None,
    predicted: Annotated[bool, typer.Option("--predicted", help="The calibrated prediction (core.predict, sweeps/catalog/calibration.yaml) instead of the bound, for t_step, latency, throughput, tokens_per_second_per_user, cost_per_token, cost_per_mtok.")] = False,
    engine: EngineOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Any core quantity at a point, or along axes given as lists/ranges: the bound (the seeds'
    roofline), or with --predicted the calibrated prediction of the decode step.

    \b
    Examples:
      rooflax query b_star b_x b_max -H h200 -n 8 -m deepseek-v3 -L 32k -p fp8
      rooflax query cost_per_mtok latency -H h100-sxm -n 8 -m llama-3.1-70b -B 1..4096/7
      rooflax query b_star cost_per_mtok_at_b_star -H h200 -n 8 -m path/to/config.json -L 32k
      rooflax query latency cost_per_mtok --predicted -H h200 -n 8 -m llama-3.1-70b -p fp8 -B 1,64 -L 8k
      rooflax query latency --predicted --engine vllm -H h200 -n 8 -m llama-3.1-70b -p fp8 -B 64
      rooflax query list

    --json prints {"reading": "bound"|"prediction", "label", "quantities": {NAME: {"units", "long_name"}},
    "rows": [{axis values…, NAME: value}]} with non-finite numbers as null.
    """
    from rooflax.sweeps import units

    from .point import UserError, enable_compilation_cache

    enable_compilation_cache()
    if quantity == ["list"]:
        _print_quantities()
        return
    _check_quantities(quantity, predicted)
    _check_engine_option(predicted, engine)
    hws = [h for h in hardware.split(",") if h.strip()]
    model = _user_models(model, hf_config, catalog)
    mds = [m for m in model.split(",") if m.strip()]
    axes = {"batch": units.values(batch, units.number),
            "context": units.values(context, units.tokens)}
    chip_list = [None] if chips is None else units.values(chips, units.number)
    point = {"weights": weights, "kv_precision": kv_precision, "price": price_per_hour,
             "slo": _slo(slo), "set_": _knob_values(set_, "set"),
             "scale": _knob_values(scale, "scale"), "hw_custom": _hw(hw)}
    rows = _query_rows(quantity, hws, mds, chip_list, precision, point, axes, predicted, engine)
    if not rows:
        raise UserError("nothing to evaluate")
    if as_json:
        typer.echo(_query_json(rows, quantity, predicted, engine))
        return
    _print_query_table(rows, quantity, predicted, engine)


def _print_quantities() -> None:
    """``rooflax query list``: every quantity with its units and meaning."""
    from rich.table import Table

    from .point import QUANTITIES

    t = Table(title="Quantities (rooflax.core functions)")
    for c in ("name", "units", "meaning"):
        t.add_column(c)
    for q in QUANTITIES.values():
        t.add_row(q.name, q.units, q.long_name)
    _console().print(t)


def _check_quantities(quantity: list[str], predicted: bool) -> None:
    """A :class:`UserError` (with "did you mean") for an unknown quantity, or one that has no
    prediction when ``--predicted``."""
    from .point import QUANTITIES, check_predicted, evaluate

    for q in quantity:
        if q not in QUANTITIES:
            evaluate(q, None, None, None)  # raises UserError with "did you mean"
        if predicted:
            check_predicted(q)


def _query_rows(quantity: list[str], hws: list[str], mds: list[str], chip_list: list,
                precision: str, point: dict, axes: dict, predicted: bool,
                engine: str | None = None) -> list[dict]:
    """One row per hardware × model × chips × batch × context (``axes``: the batch and context
    values); ``point``: the other options of :func:`~rooflax.results.point.build_point`."""
    import itertools

    import jax.numpy as jnp

    from rooflax.sweeps import catalogs

    from .point import (
        UserError,
        build_point,
        evaluate,
        evaluate_predicted,
        feasibility,
        predicted_trees,
    )

    rows = []
    for h, m, n in itertools.product(hws, mds, chip_list):
        # per chip, like configs: fp8 asked of a chip without fp8 peaks computes in bf16
        try:
            compute = catalogs.compute_precision(h, precision)
        except catalogs.UnknownNameError:
            raise
        except ValueError as e:
            raise UserError(f"--precision: {e}") from None
        pt = build_point(h, m, chips=n, precision=compute,
                         **{**point, "weights": point["weights"] or precision})
        B = jnp.asarray(axes["batch"], dtype=jnp.float64)[:, None]
        L = jnp.asarray(axes["context"], dtype=jnp.float64)[None, :]
        wl = pt.wl.replace(batch=B, context=L)
        if predicted:
            p_hw, p_model, eng = predicted_trees(pt, engine)
            vals = {q: evaluate_predicted(q, p_hw, p_model, wl, eng) for q in quantity}
        else:
            vals = {q: evaluate(q, pt.hw, pt.model, wl) for q in quantity}
        rows += _point_rows(pt, compute, axes, vals, feasibility(pt.hw, pt.model, wl))
    return rows


def _point_rows(pt, compute: str, axes: dict, vals: dict, feasible: tuple) -> list[dict]:
    """The rows of one point over its (batch, context) grid: codes as names, and NaN where the
    point is infeasible (but for the limit quantities, which say why)."""
    from rooflax import core as rc

    from .point import LIMIT_QUANTITIES

    ok, why = feasible
    rows = []
    for i, b in enumerate(axes["batch"]):
        for j, ctx in enumerate(axes["context"]):
            row = {"hardware": pt.meta["hardware"], "model": pt.meta["model"],
                   "chips": pt.meta["chips"], "precision": compute,
                   "price_basis": pt.meta["price_basis"], "batch": b, "context": ctx}
            for q in vals:
                row[q] = _at(vals[q], i, j)
                if q in ("binding", "regime") and math.isfinite(row[q]):
                    names = rc.BINDINGS if q == "binding" else rc.REGIMES
                    row[q] = names[int(row[q])]  # names, not codes
                elif not _at(ok, i, j) and q not in LIMIT_QUANTITIES:
                    row[q] = math.nan  # not a physical value: the point is infeasible
            row["feasible"] = bool(_at(ok, i, j))
            row["reason"] = _at(why, i, j) or None
            rows.append(row)
    return rows


def _query_json(rows: list[dict], quantity: list[str], predicted: bool,
                engine: str | None = None) -> str:
    """``--json``: reading, label, units and long names of the quantities, rows (NaN → null)."""
    import json

    from .point import QUANTITIES, READINGS, prediction_label

    def clean(x):
        return None if isinstance(x, float) and not math.isfinite(x) else x

    reading = "prediction" if predicted else "bound"
    out = {"reading": reading, "label": prediction_label(engine) if predicted else READINGS[reading],
           "engine": engine if predicted else None,
           "quantities": {q: {"units": QUANTITIES[q].units,
                              "long_name": QUANTITIES[q].long_name} for q in quantity},
           "rows": [{k: clean(v) for k, v in r.items()} for r in rows]}
    return json.dumps(out, indent=2)


def _print_query_table(rows: list[dict], quantity: list[str], predicted: bool,
                       engine: str | None = None) -> None:
    """The rows as a table of the axes that vary, after one line of those that do not."""
    from rich.table import Table

    from rooflax.sweeps import units
    from rooflax.sweeps.catalogs import NO_PRICE

    from .point import QUANTITIES, READINGS, prediction_label

    axes = ("hardware", "model", "chips", "precision", "price_basis", "batch", "context")
    varying = [k for k in axes if len({r[k] for r in rows}) > 1]
    fixed = {k: rows[0][k] for k in axes if k not in varying}
    t = Table()  # the reading on a line of its own: a title wraps to the table's width
    for k in varying:
        t.add_column(k, justify="right")
    for q in quantity:
        t.add_column(f"{q} [{QUANTITIES[q].units}]", justify="right")
    notes = any(r["reason"] for r in rows)
    if notes:
        t.add_column("note")

    def fmt(q, x, r):
        if isinstance(x, str):
            return x
        if math.isnan(x) and "cost" in q and r["price_basis"] == NO_PRICE and r["feasible"]:
            return NO_PRICE
        return f"{x:.4g}"

    for r in rows:
        t.add_row(*[f"{r[k]:.6g}" if isinstance(r[k], float) else str(r[k]) for k in varying],
                  *[fmt(q, r[q], r) for q in quantity], *([r["reason"] or ""] if notes else []))
    con = _console()
    con.print(prediction_label(engine) if predicted else READINGS["bound"])
    con.print(" · ".join(f"{k}={units.si(v) if isinstance(v, float) else v}"
                         for k, v in fixed.items()))  # a line of its own: tables may be narrow
    con.print(t)


def _at(a, i: int, j: int):
    """Element (i, j) of a (batch, context) array that may have size-1 or missing axes."""
    import numpy as np

    a = np.asarray(a)
    a = a.reshape(a.shape + (1,) * (2 - a.ndim)) if a.ndim < 2 else a
    x = a[min(i, a.shape[0] - 1), min(j, a.shape[1] - 1)]
    return x.item() if hasattr(x, "item") else x


# --------------------------------------------------------------------------- estimate
ElectricityOpt = Annotated[float, typer.Option("--electricity", help="Electricity price, $/kWh, for the energy share of cost.")]


@app.command()
@_user_errors
def estimate(
    hardware: HardwareOpt = "h200",
    model: ModelOpt = "deepseek-v3",
    chips: Annotated[float, typer.Option("--chips", "-n", help="Chips per replica.")] = 8,
    layout: Annotated[str, typer.Option("--layout", help="auto | one-chip | tp | ep | tp-ep (auto: ep for MoE, tp for dense).")] = "auto",
    tp: Annotated[float | None, typer.Option("--tp", help="Attention TP degree for --layout tp-ep (attention-DP = chips/tp).")] = None,
    pp: Annotated[int, typer.Option("--pp", help="Pipeline stages (only 1 is modelled).")] = 1,
    precision: PrecisionOpt = "fp8",
    weights: WeightsOpt = None,
    kv_precision: KvOpt = "bf16",
    dispatch: Annotated[str, typer.Option("--dispatch", help="Precision of the EP all-to-all dispatch (fp8 as DeepSeek).")] = "bf16",
    isl: Annotated[str, typer.Option("--isl", help="Input tokens per request (8k = 8192).")] = "8k",
    osl: Annotated[str, typer.Option("--osl", help="Output tokens per request.")] = "1k",
    concurrency: Annotated[float, typer.Option("--concurrency", "-c", help="Sequences in flight on one replica.")] = 64,
    price: PriceOpt = None,
    electricity: ElectricityOpt = 0.08,
    hw: HwOpt = None,
    prefill_hw: Annotated[str | None, typer.Option("--prefill-hw", help="Disaggregated: prefill pool hardware (default: -H).")] = None,
    prefill_chips: Annotated[float | None, typer.Option("--prefill-chips", help="Disaggregated: chips per prefill replica (giving any --prefill-* option disaggregates).")] = None,
    prefill_layout: Annotated[str, typer.Option("--prefill-layout", help="Disaggregated: prefill layout.")] = "auto",
    prefill_tp: Annotated[float | None, typer.Option("--prefill-tp", help="Disaggregated: prefill attention TP for tp-ep.")] = None,
    prefill_precision: Annotated[str | None, typer.Option("--prefill-precision", help="Disaggregated: prefill precision (default: -p).")] = None,
    prefill_batch: Annotated[float, typer.Option("--prefill-batch", help="Disaggregated: prompts per prefill step.")] = 1,
    engine: EngineOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One deployment: TTFT, TPOT, tokens/s, $/M tokens, energy, memory per GPU — bound and prediction.

    \b
    Example:
      rooflax estimate -H h200 -n 8 --layout ep -m deepseek-v3 -p fp8 --isl 8k --osl 1k --concurrency 256
      rooflax estimate -H h200 -n 16 -m deepseek-v3 --concurrency 512 --prefill-chips 8   (disaggregated)

    --json prints the estimate with "schema": "rooflax.estimate/1" (non-finite numbers as null).
    """
    from rooflax.sweeps import units

    from . import estimate as E
    from .point import enable_compilation_cache

    enable_compilation_cache()
    dep = E.Deployment(hardware=hardware, model=model, chips=chips, layout=layout, tp=tp, pp=pp,
                       precision=precision, weights=weights, kv=kv_precision, dispatch=dispatch,
                       isl=units.tokens(isl), osl=units.tokens(osl), concurrency=concurrency,
                       price=price, electricity=electricity, hw_custom=_hw(hw), engine=engine)
    if prefill_hw or prefill_chips or prefill_precision or prefill_tp or prefill_layout != "auto" \
            or prefill_batch != 1:
        import dataclasses

        dep = dataclasses.replace(dep, prefill=E.PrefillPool(
            hardware=prefill_hw, chips=prefill_chips or chips, layout=prefill_layout, tp=prefill_tp,
            precision=prefill_precision, batch=prefill_batch))
    est = E.estimate(dep)
    if as_json:
        typer.echo(E.to_json(est))
        return
    E.render(est, _console())


# --------------------------------------------------------------------------- frontier
@app.command()
@_user_errors
def frontier(
    model: ModelOpt = "gpt-oss-120b",
    hardware: Annotated[str, typer.Option("--hardware", "-H", help="Catalog hardware, comma-separated.")] = "h100-sxm,h200,b200,mi300x",
    isl: Annotated[str, typer.Option("--isl", help="Input tokens per request (8k = 8192).")] = "1k",
    osl: Annotated[str, typer.Option("--osl", help="Output tokens per request.")] = "1k",
    ttft: Annotated[str | None, typer.Option("--ttft", help="Most time to first token, e.g. 2s.")] = None,
    tpot: Annotated[str | None, typer.Option("--tpot", help="Most time per output token, e.g. 50ms.")] = None,
    min_speed: Annotated[float, typer.Option("--min-speed", help="Fewest output tokens/s per user.")] = 0.0,
    price: PriceOpt = None,
    bound: Annotated[bool, typer.Option("--bound", help="Use the roofline bound instead of the prediction.")] = False,
    hw: HwOpt = None,
    max_concurrency: Annotated[float | None, typer.Option("--max-concurrency", help="Largest batch per replica tried (engines cap it: e.g. 1024); default 131072.")] = None,
    disagg: Annotated[bool, typer.Option("--disagg", help="Disaggregated serving: the cheapest prefill pool meeting --ttft, decode on the grid; $ includes prefill.")] = False,
    output: Annotated[list[str] | None, typer.Option("--output", "-o", help="Plot the frontiers: FILE.html and/or FILE.png (repeatable).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Every deployment (chips 1-72, tp/ep/attention-DP layouts, precisions, batches) per hardware:
    the Pareto frontier of $/M output tokens vs tokens/s per user, and the cheapest meeting the SLO.

    \b
    Example:
      rooflax frontier -m gpt-oss-120b -H h100-sxm,h200,b200,mi300x --min-speed 50 -o frontier.html

    --json prints {"schema": "rooflax.frontier/1", "hardware": {NAME: {"deployments", "seconds",
    "frontier", "best", "estimate"}}} (non-finite numbers as null).
    """
    from rooflax.sweeps import units

    from . import estimate as E
    from . import frontier as F
    from .point import UserError, enable_compilation_cache

    enable_compilation_cache()
    slo = F.Slo(ttft=units.seconds(ttft) if ttft else math.inf,
                tpot=units.seconds(tpot) if tpot else math.inf, min_speed=min_speed)
    base = E.Deployment(hardware="", model=model, isl=units.tokens(isl), osl=units.tokens(osl), price=price,
                        hw_custom=_hw(hw))
    hws = [h.strip() for h in hardware.split(",") if h.strip()]
    if max_concurrency is not None and max_concurrency < 1:
        raise UserError(f"--max-concurrency: expected ≥ 1, found {max_concurrency:g}")
    batches = F.BATCHES if max_concurrency is None else F.np.unique(
        F.np.append(F.BATCHES[F.BATCHES <= max_concurrency], float(max_concurrency)))
    res = F.frontier(hws, model, slo=slo, base=base, peak=bound, disagg=disagg, batches=batches)
    for path in output or []:
        from . import plots

        typer.echo(f"wrote {plots.save(plots.deployments(res), path)}", err=as_json)
    if as_json:
        typer.echo(F.to_json(res))
        return
    F.render(res, _console())


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

    from rooflax.sweeps import catalogs, units

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
        con.print(key, style="bold")
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
            return units.si(float(x)) if abs(x) >= 1e5 else f"{x:.4g}"
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
    slo: SloOpt = None,
) -> None:
    """Plot a saved cube: HTML with widgets for the dimensions not drawn, or a PNG.

    \b
    Examples:
      rooflax plot out/cube.zarr roofline --sel hardware=h200 -o roofline.html
      rooflax plot out/cube.zarr cost --sel model=deepseek-v3 --sel context=32k -o cost.png
      rooflax plot out/cube.zarr frontier --slo 50ms -o frontier.html
    """
    from pathlib import Path

    from . import plots
    from .cube import open_cube
    from .point import UserError

    parent = Path(output).expanduser().absolute().parent
    if not parent.is_dir():
        raise UserError(f"--output {output}: expected a file in an existing directory, "
                        f"found no directory {str(parent)!r}")
    ds = open_cube(cube)
    extra = {"slo": _slo(slo)} if slo is not None and kind.lower() == "frontier" else {}
    obj = plots.make(kind, ds, **extra, **_kv(sel))
    path = plots.save(obj, output)
    typer.echo(f"wrote {path}")


# --------------------------------------------------------------------------- export
@app.command()
@_user_errors
def export(
    cube: Annotated[str, typer.Argument(help="A saved result cube (Zarr).")],
    output: Annotated[str, typer.Option("--output", "-o", help="FILE.csv or FILE.parquet (a long table; units in FILE.units.json).")],
    var: Annotated[list[str] | None, typer.Option("--var", help="Variable to export (repeatable; default: all).")] = None,
    sel: Annotated[list[str] | None, typer.Option("--sel", help="DIM=VALUE or DIM=V1,V2 (repeatable).")] = None,
) -> None:
    """Export a saved cube as a tidy long table: one row per point and variable, NaN kept.

    \b
    Examples:
      rooflax export out/default.zarr -o default.parquet
      rooflax export out/default.zarr --var cost_per_mtok --sel model=dsv3 -o cost.csv
    """
    from . import export as E
    from .cube import open_cube, select

    ds = open_cube(cube)
    path = E.write(select(ds, _kv(sel)) if sel else ds, output, var)
    typer.echo(f"wrote {path}")


# --------------------------------------------------------------------------- explore
@app.command()
@_user_errors
def explore(
    port: Annotated[int, typer.Option(callback=_checked("port"), help="Port on 127.0.0.1 (0: any free port).")] = 5006,
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
