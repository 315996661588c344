"""The `demo` verb: the whole pipeline on a simulated site, ending in a report."""

from __future__ import annotations

from pathlib import Path

import typer

from geojepa.cli._app import app
from geojepa.errors import UsageError


@app.command("demo")
def demo(
    out: Path = typer.Option(
        Path("demo-out"),
        "--out",
        help="Folder for everything the demo writes; a previous demo's output there is "
        "replaced, any other non-empty folder refused.",
    ),
    scenario: str = typer.Option("embankment", "--scenario", help="slope | embankment | dam."),
    sensors: int = typer.Option(16, "--sensors", min=2, help="Sensors on the simulated site."),
    days: float = typer.Option(180.0, "--days", min=30.0, help="Days simulated."),
    steps: int = typer.Option(200, "--steps", min=1, help="Pretraining steps (tiny preset)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the simulation and training."),
) -> None:
    """Simulate, ingest, pretrain, detect, forecast, export, score at the edge, report."""
    from geojepa.demo import DemoSettings, run_demo

    if scenario not in ("slope", "embankment", "dam"):
        raise UsageError(f"unknown --scenario {scenario!r}", hint="use slope, embankment or dam")
    settings = DemoSettings(scenario=scenario, n_sensors=sensors, days=days, steps=steps, seed=seed)
    summary = run_demo(out, settings)
    typer.echo("\nGeoJEPA demo finished.")
    for line in summary.lines():
        typer.echo("  " + line)
