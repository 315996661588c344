"""The `report` verb: one self-contained HTML page from a run folder and a site folder."""

from __future__ import annotations

from pathlib import Path

import typer

from geojepa.cli._app import app
from geojepa.errors import UsageError


def _forecast_arg(text: str) -> tuple[str | None, Path]:
    """``PATH`` or ``SENSOR=PATH``."""
    if "=" in text and not Path(text).exists():
        sensor, _, path = text.partition("=")
        if not sensor or not path:
            raise UsageError(f"cannot read --forecast {text!r}", hint="write PATH or SENSOR=PATH")
        return sensor, Path(path)
    return None, Path(text)


@app.command("report")
def report(
    run: Path = typer.Argument(
        ..., help="Run folder (config.yaml, metrics.jsonl, scores.csv ...)."
    ),
    site: Path | None = typer.Option(
        None, "--site", help="Site folder; default: the site named in the run's config."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="HTML file to write; default: RUN/report.html."
    ),
    scores: Path | None = typer.Option(
        None, "--scores", help="Scores CSV from `geojepa detect` (default: RUN/scores.csv)."
    ),
    forecast: list[str] = typer.Option(
        [],
        "--forecast",
        help="Forecast CSV, as PATH or SENSOR=PATH; repeat for several "
        "(default: RUN/forecast*.csv and RUN/forecasts/*.csv).",
    ),
    benchmark: Path | None = typer.Option(
        None, "--benchmark", help="Benchmark table, .md or .json (default: RUN/benchmark.*)."
    ),
    embeddings: Path | None = typer.Option(
        None, "--embeddings", help="Embeddings from `geojepa embed` (default: RUN/embeddings.*)."
    ),
    max_sensors: int = typer.Option(
        60, "--max-sensors", min=1, help="Most sensors drawn as time series."
    ),
) -> None:
    """Write an HTML report: sensors, alarms and attribution, series, forecasts, benchmark,
    training curves and embeddings — each section from whatever the run folder holds."""
    from geojepa.report import build_report

    forecasts: dict[str, Path] | list[Path] | None = None
    if forecast:
        parsed = [_forecast_arg(f) for f in forecast]
        if all(s is not None for s, _ in parsed):
            forecasts = {str(s): p for s, p in parsed}
        elif any(s is not None for s, _ in parsed):
            raise UsageError(
                "mix of --forecast PATH and SENSOR=PATH", hint="use one form for every file"
            )
        else:
            forecasts = [p for _, p in parsed]
    target = out if out is not None else run / "report.html"
    written = build_report(
        run,
        site,
        target,
        scores=scores,
        forecasts=forecasts,
        benchmark=benchmark,
        embeddings=embeddings,
        max_series_sensors=max_sensors,
    )
    typer.echo(f"report: {written} ({written.stat().st_size / 1e6:.1f} MB)")
