"""``rooflax sweep`` (registered on the top-level app by :mod:`rooflax.results.cli`)."""

from __future__ import annotations

import sys

import typer


def _fail(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)
    raise typer.Exit(code=2)


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
                  f"; price basis: {ds.attrs.get('rooflax_price') or 'not recorded'}")
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


def register(app: typer.Typer) -> None:
    """Add the sweep commands to ``app``."""

    @app.command()
    def sweep(
        config: str = typer.Argument(None, help="Sweep config file (YAML)."),
        scheduler: str = typer.Option(None, "--scheduler", envvar="DASK_SCHEDULER_ADDRESS",
                                      help="Dask scheduler address (tcp://host:port)."),
        resume: bool = typer.Option(False, "--resume", help="Finish an interrupted sweep."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing store."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Print the grid size and exit."),
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
        from .store import StoreError
        if dry_run:
            info = R.dry_run(cfg)
            print(f"store: {info['store']}")
            print("grid: " + " × ".join(f"{d} {n}" for d, n in info["dims"].items()) +
                  f" = {info['points']:,} points")
            print(f"blocks: {info['blocks']} of shape {tuple(info['block_shape'])}; "
                  f"variables: {info['variables']}")
            print(f"bytes to write (uncompressed): {info['bytes'] / 1e9:.3f} GB")
            print(f"estimated time: {info['estimated_seconds']:.0f} s")
            return
        try:
            res = R.run(cfg, resume=resume, overwrite=overwrite, scheduler=scheduler)
        except StoreError as e:
            print(f"error: {config}: store: {e}", file=sys.stderr)
            raise typer.Exit(code=2) from None
        print(f"wrote {res.points:,} points ({res.blocks_run}/{res.blocks_total} blocks) "
              f"in {res.seconds:.1f} s → {res.path}")
        if not quiet:
            summary_table(res.path)
