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


def _forecast_args(texts: list[str]) -> list[tuple[str | None, Path]]:
    """Every ``--forecast``, parsed. Several files for one sensor are each drawn (the report
    shows every forecast it is given); one file given twice for one sensor is refused."""
    parsed = [_forecast_arg(t) for t in texts]
    seen: dict[tuple[str | None, Path], str] = {}
    for text, (sensor, path) in zip(texts, parsed, strict=True):
        key = (sensor, path.resolve())
        if key in seen:
            target = f" for sensor {sensor!r}" if sensor is not None else ""
            raise UsageError(
                f"--forecast {seen[key]!r} and --forecast {text!r} give the same file{target}",
                hint="give each forecast file once (several files for one sensor are all drawn)",
            )
        seen[key] = text
    return parsed


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
        help="Forecast CSV, as PATH or SENSOR=PATH; repeat for several, one sensor's too: "
        "each is drawn (default: RUN/forecast*.csv and RUN/forecasts/*.csv).",
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

    forecasts: dict[str, list[Path]] | list[Path] | None = None
    if forecast:
        parsed = _forecast_args(forecast)
        if all(s is not None for s, _ in parsed):
            forecasts = {}
            for s, p in parsed:
                forecasts.setdefault(str(s), []).append(p)
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
