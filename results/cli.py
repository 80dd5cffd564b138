"""The ``rooflax`` command line.

The top-level Typer app lives here because imports flow results → sweeps → core:
``sweep`` is defined in :mod:`rooflax.sweeps.cli` and mounted below; the
results commands (sensitivity, query, catalog, plot, explore) are added here.
Heavy packages (jax, dask, hvplot) are imported inside each command, so
``rooflax --help`` and ``rooflax catalog`` start fast.
"""

from __future__ import annotations

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


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
