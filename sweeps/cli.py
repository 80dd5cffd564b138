"""``rooflax sweep`` (registered on the top-level app by :mod:`rooflax.results.cli`)."""

from __future__ import annotations

import json
import sys

import typer


def _fail(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)
    raise typer.Exit(code=2)


def _reading(ds) -> str:
    """Which number the summary (B*, $/Mtok at B*) shows: the seeds' bound, or the extended model at
    default efficiencies — never the calibrated prediction of ``core.predict``, which a
    ``physics: calibrated`` cube holds for its step-time variables only."""
    physics = json.loads(ds.attrs.get("rooflax_config", "{}")).get("physics", "seeds")
    if physics == "seeds":
        return "reading: the bound (the seeds' roofline at datasheet peaks)"
    if physics == "calibrated":
        return ("reading: the bound (B* has no calibrated closed form; the cube's step-time "
                "variables are the calibrated prediction: attribute reading)")
    return f"reading: physics {physics} (default efficiencies; not the calibrated prediction)"


def summary_table(path: str) -> None:
    """B*, binding and $/Mtok per hardware × model at a few contexts."""
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    from rooflax.core import BINDINGS

    from . import catalogs
    from .store import open_cube

    ds = open_cube(path)
    con = Console()
    need = {"b_star", "binding", "cost_per_mtok_at_b_star"}
    if need <= set(ds.data_vars) and "hardware" in ds.dims and "model" in ds.dims:
        ctx = ds["context"].values
        picks = sorted({int(np.argmin(np.abs(ctx - c))) for c in (8192, 131072, 1048576)})
        sub = ds[list(need)].isel(context=picks)
        for d in [d for d in sub.dims if d not in ("hardware", "model", "context")]:
            sub = sub.isel({d: 0})
        sub = sub.load()
        t = Table(title="B*, binding constraint and $/Mtok at B* (" +
                  ", ".join(f"L={int(ctx[i]):,}" for i in picks) + ")" +
                  f"; price basis: {ds.attrs.get('rooflax_price') or 'not recorded'}; "
                  f"{_reading(ds)}")
        t.add_column("hardware")
        t.add_column("model")
        for i in picks:
            t.add_column(f"L={int(ctx[i]) // 1024}K", justify="right")
        hws, mods = list(sub["hardware"].values), list(sub["model"].values)
        if len(hws) * len(mods) > 24:
            t.caption = f"first 6 of {len(hws)} hardware × first 4 of {len(mods)} models"
            hws, mods = hws[:6], mods[:4]
        for h in hws:
            for m in mods:
                cells = []
                for j in range(len(picks)):
                    p = sub.sel(hardware=h, model=m).isel(context=j)
                    b = float(p["b_star"])
                    code = int(p["binding"])
                    if np.isnan(b):
                        cells.append("infeasible")
                    else:
                        c = float(p["cost_per_mtok_at_b_star"])
                        price = catalogs.NO_PRICE if np.isnan(c) else f"${c:.3g}"
                        cells.append(f"{b:,.0f} ({BINDINGS[code]}) {price}")
                basis = (f" ({sub['price_basis'].sel(hardware=h).item()})"
                         if "price_basis" in sub.coords else "")
                t.add_row(f"{h}{basis}", str(m), *cells)
        con.print(t)
    con.print(f"cube: {path}  dims: " + ", ".join(f"{d}={n}" for d, n in ds.sizes.items()))


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so the run unwinds (lock released) like Ctrl-C."""


def _on_sigterm(signum, frame):
    raise _Terminated()


_ERRNO_CAUSE = {"ENOSPC": "disk full", "EDQUOT": "disk quota exceeded",
                "EROFS": "read-only file system", "EACCES": "permission denied",
                "EPERM": "operation not permitted", "EIO": "I/O error"}


def _resume_cmd(config: str, scheduler: str | None) -> str:
    return f"rooflax sweep {config} --resume" + (f" --scheduler {scheduler}" if scheduler else "")


def _os_cause(e: OSError) -> str:
    import errno
    name = errno.errorcode.get(e.errno or 0, "")
    cause = _ERRNO_CAUSE.get(name, e.strerror or type(e).__name__)
    where = f" at {e.filename}" if e.filename else ""
    return f"{cause} ({name or type(e).__name__}){where}"


def _run_sweep(cfg, config: str, **kw):
    """``run.run`` with every way it can stop turned into one line and an exit code:
    2 for causes the user can fix (store, lock, caps, disk, scheduler), 130/143 for signals."""
    import signal

    from . import run as R
    from .store import StoreError
    sched = kw.get("scheduler")
    resume = _resume_cmd(config, sched)
    old = signal.signal(signal.SIGTERM, _on_sigterm)
    if sched:  # distributed logs its reconnect tracebacks itself; the CLI says it in one line
        import logging

        import distributed  # noqa: F401  (configures its loggers on import)
        for name in [n for n in logging.root.manager.loggerDict if n.startswith("distributed")]:
            logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        return R.run(cfg, **kw)
    except StoreError as e:
        _fail(f"{config}: store: {e}")
    except R.SchedulerError as e:
        _fail(f"{config}: {e}; start or reach it, then: {resume}")
    except OSError as e:
        _fail(f"{config}: store {cfg.store}: {_os_cause(e)}; fix it, then: {resume}")
    except KeyboardInterrupt:
        print(f"error: {config}: interrupted (SIGINT); to finish: {resume}", file=sys.stderr)
        raise typer.Exit(code=130) from None
    except _Terminated:
        print(f"error: {config}: terminated (SIGTERM); to finish: {resume}", file=sys.stderr)
        raise typer.Exit(code=143) from None
    finally:
        signal.signal(signal.SIGTERM, old)


def _print_dry_run(info: dict) -> None:
    print(f"store: {info['store']}")
    print("grid: " + " × ".join(f"{d} {n}" for d, n in info["dims"].items()) +
          f" = {info['points']:,} points")
    print(f"blocks: {info['blocks']:,} of shape {tuple(info['block_shape'])}; "
          f"variables: {info['variables']}")
    print(f"bytes to write (uncompressed): {info['bytes'] / 1e9:.3f} GB")
    if info["over_caps"]:
        print(f"refused as is: {info['over_caps']}")
    if info["estimated_seconds"] is not None:
        print(f"estimated time: {info['estimated_seconds']:.0f} s ({info['workers']} threads; "
              f"measured here: {info['block_seconds']:.2f} s per block after the first)")


def register(app: typer.Typer) -> None:
    """Add the sweep commands to ``app``."""

    @app.command()
    def sweep(
        config: str = typer.Argument(None, help="Sweep config file (YAML)."),
        scheduler: str = typer.Option(None, "--scheduler", envvar="DASK_SCHEDULER_ADDRESS",
                                      help="Dask scheduler address (tcp://host:port)."),
        resume: bool = typer.Option(False, "--resume", help="Finish an interrupted sweep."),
        overwrite: bool = typer.Option(False, "--overwrite",
                                       help="Replace an existing rooflax cube (nothing else)."),
        break_lock: bool = typer.Option(False, "--break-lock",
                                        help="Take over a store whose lock was left by a dead run."),
        max_points: float = typer.Option(None, "--max-points", min=1,
                                         help="Largest grid accepted (default 1e11 points)."),
        max_blocks: float = typer.Option(None, "--max-blocks", min=1,
                                         help="Most blocks accepted (default 1e6)."),
        dry_run: bool = typer.Option(False, "--dry-run",
                                     help="Print the grid size and a measured time estimate."),
        schema: bool = typer.Option(False, "--schema", help="Print the config JSON Schema."),
        quiet: bool = typer.Option(False, "--quiet", help="No summary table."),
    ) -> None:
        """Run a sweep job from CONFIG into a Zarr result cube."""
        import json

        from . import config as C

        if schema:
            print(json.dumps(C.json_schema(), indent=2))
            return
        if config is None:
            _fail("missing CONFIG (a sweep config file)")
        if resume and overwrite:
            _fail("--resume and --overwrite exclude each other")
        try:
            cfg = C.load(config)
        except C.ConfigError as e:
            print(f"error: invalid sweep config\n{e}", file=sys.stderr)
            raise typer.Exit(code=2) from None
        from . import run as R
        if dry_run:
            _print_dry_run(R.dry_run(cfg))
            return
        res = _run_sweep(cfg, config, resume=resume, overwrite=overwrite, scheduler=scheduler,
                         break_lock=break_lock,
                         max_points=None if max_points is None else int(max_points),
                         max_blocks=None if max_blocks is None else int(max_blocks))
        print(f"wrote {res.points:,} points ({res.blocks_run}/{res.blocks_total} blocks) "
              f"in {res.seconds:.1f} s → {res.path}")
        if not quiet:
            summary_table(res.path)
