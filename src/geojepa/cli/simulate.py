"""Verbs of group simulate (DESIGN §6); each is a thin layer over the library.

``geojepa simulate --scenario {slope,embankment,dam} --sensors N --days D --freq F --seed S
--out DIR [--intensity X] [--no-events] [--overwrite]`` writes logger files
(``DIR/loggers/*.dat`` TOA5 and ``*.csv`` wide CSV), ``sensors.csv``, ``events.csv`` and
``simulation.json``. The folder appears whole or not at all; the same arguments give the
same bytes.
"""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from geojepa.cli._app import app
from geojepa.errors import InputError

log = logging.getLogger(__name__)


@app.command("simulate")
def simulate(
    scenario: str = typer.Option(..., "--scenario", help="slope, embankment or dam."),
    sensors: int = typer.Option(..., "--sensors", help="Number of sensors, drivers included."),
    days: float = typer.Option(..., "--days", help="Days of readings."),
    freq: str = typer.Option("1h", "--freq", help="Logger interval, e.g. 15min, 1h, 1D."),
    seed: int = typer.Option(0, "--seed", help="Seed: the same seed gives the same bytes."),
    out: Path = typer.Option(..., "--out", help="Output folder."),
    intensity: float = typer.Option(
        1.0, "--intensity", help="Event amplitude: 0 labels only, 1 default, 2 obvious."
    ),
    events: bool = typer.Option(True, "--events/--no-events", help="Inject labelled events."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace DIR if it exists and is not empty."
    ),
) -> None:
    """Simulate a monitoring site with labelled events and write its logger files."""
    from geojepa.atomic import atomic_dir
    from geojepa.simulate import simulate_site

    if out.exists() and not out.is_dir():
        raise InputError("exists and is not a folder", file=out, hint="choose another --out")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise InputError(
            "the output folder is not empty",
            file=out,
            hint="choose another --out or pass --overwrite to replace it",
        )
    sim = simulate_site(scenario, sensors, days, freq, seed, intensity=intensity, events=events)
    with atomic_dir(out) as tmp:
        paths = sim.write(tmp)
        tmp.chmod(0o755)  # a data folder, not a private temporary one
    n_readings = len(sim.site.readings)
    log.info(
        "wrote %d files to %s: %d sensors, %d readings, %d labelled events",
        len(paths),
        out,
        len(sim.site.sensors),
        n_readings,
        len(sim.site.labels),
    )
