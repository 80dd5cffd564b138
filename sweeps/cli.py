"""``rooflax sweep`` (registered on the top-level app by :mod:`rooflax.results.cli`)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the sweep commands to ``app``."""

    @app.command()
    def sweep(config: str = typer.Argument(..., help="Sweep config file (YAML).")) -> None:
        """Run a sweep job from CONFIG into a Zarr result cube."""
        raise typer.Exit(code=1)
