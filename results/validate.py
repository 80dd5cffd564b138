"""``rooflax validate [FILE]``: the model against measurements.

Every FILE is a measurement file read by :mod:`rooflax.sweeps.measurements` — an aiconfigurator
CSV or the structured YAML (``measurements: [...]``) — and validated by
:mod:`rooflax.results.silicon`: per row measured, **bound** (the roofline, every efficiency 1) and
**prediction** (:mod:`rooflax.core.predict` with the shipped calibration), or the reason the row
is skipped. Without FILE: the published measurements shipped with rooflax
(``results/data/validation.yaml``), converted once from ``../shared/reference/validation.yaml``
into the structured form, each row with its source; the published numbers the schema cannot
hold are listed there under ``not_expressed`` with their reasons. Nothing parses prose.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def default_path() -> Path:
    """The published measurements shipped as package data (structured measurement YAML)."""
    return Path(str(resources.files("rooflax.results") / "data" / "validation.yaml"))


def register(app) -> None:
    """Add ``rooflax validate [FILE] [--json] [--cv …] [--per …] [--calibration …]`` to a Typer app."""
    import typer

    @app.command("validate")
    def validate_cmd(
        file: Path | None = typer.Argument(None, help="measurement file: aiconfigurator CSV or structured YAML (default: the published measurements shipped with rooflax)"),
        as_json: bool = typer.Option(False, "--json", help="rows as JSON"),
        cv: str | None = typer.Option(None, "--cv", help="leave-one-group-out cross-validation by "
                                      "system, model or engine"),
        per: str = typer.Option("engine", "--per", help="with --cv: engine (each engine's time per "
                                "layer of its own, the default) or none (shared values only)"),
        calibration: Path | None = typer.Option(None, "--calibration", help="calibration YAML "
                                                "(default: the shipped one)"),
    ) -> None:
        """Compare the model with measurements: per row measured, bound, predicted TPOT + summary."""
        from . import silicon

        path = Path(file) if file is not None else default_path()
        if not path.is_file():
            typer.echo(f"error: no such file: {path}", err=True)
            raise typer.Exit(2)
        if not silicon.is_measurement_file(path):
            typer.echo(f"error: {path}: expected an aiconfigurator CSV or a YAML with top-level "
                       "'measurements:' (rooflax.sweeps.measurements), found neither", err=True)
            raise typer.Exit(2)
        silicon.run_validate(path, as_json=as_json, cv=cv, per=per, calibration=calibration)
