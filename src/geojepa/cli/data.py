"""Data verbs: ``ingest``, ``info``, ``readings`` (DESIGN §6).

Thin layers over `geojepa.io.ingest`, `geojepa.io.summary` and `geojepa.io.export`: parse
options, call the library, print what happened. Bad input raises `InputError` (exit 2 with
one message naming file and line); outputs appear whole or not at all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from geojepa.cli._app import app


@app.command("ingest")
def ingest_cmd(
    out: Annotated[Path, typer.Option("--out", help="site folder to build or extend")],
    files: Annotated[list[Path] | None, typer.Argument(help="logger files to read")] = None,
    fmt: Annotated[str, typer.Option("--format", help="auto|wide|long|toa5|tabbed|pbo")] = "auto",
    sensors: Annotated[
        Path | None, typer.Option("--sensors", help="sensors.csv: id,kind,unit,x,y,z,group")
    ] = None,
    sep: Annotated[
        str | None, typer.Option("--sep", help="column separator: one character (tab: --sep tab)")
    ] = None,
    time_col: Annotated[str | None, typer.Option("--time-col", help="time column")] = None,
    tz: Annotated[str, typer.Option("--tz", help="zone of naive times (IANA)")] = "UTC",
    label_col: Annotated[
        list[str] | None, typer.Option("--label-col", help="0/1 column that is a label")
    ] = None,
    encoding: Annotated[str | None, typer.Option("--encoding", help="e.g. latin-1")] = None,
    time_format: Annotated[
        str | None, typer.Option("--time-format", help="strptime pattern, e.g. %d/%m/%Y %H:%M")
    ] = None,
    missing_value: Annotated[
        list[str] | None,
        typer.Option(
            "--missing-value",
            help="extra text meaning missing (a number also matches however written: -9999 blanks -9999.0)",
        ),
    ] = None,
    column_map: Annotated[
        Path | None, typer.Option("--column-map", help="column map of headerless files")
    ] = None,
    calibration: Annotated[
        Path | None, typer.Option("--calibration", help="vibrating-wire calibration table")
    ] = None,
    on_conflict: Annotated[
        str,
        typer.Option(
            "--on-conflict",
            help="readings that contradict stored ones (same sensor and time, other value): "
            "error (default: refuse the ingest, change nothing) | keep (keep the stored "
            "values, add the other readings, report the conflicts)",
        ),
    ] = "error",
    rename: Annotated[
        list[str] | None,
        typer.Option(
            "--rename",
            help="COLUMN=ID: store a wide file's column under another sensor id (repeatable; "
            "e.g. a second instrument whose columns have the site's names)",
        ),
    ] = None,
    duplicate_times: Annotated[
        str, typer.Option("--duplicate-times", help="error | keep_first")
    ] = "error",
    clock_repeat: Annotated[
        bool, typer.Option("--clock-repeat", help="resolve a manual 1-hour clock set-back")
    ] = False,
    labels: Annotated[
        Path | None, typer.Option("--labels", help="events file: start,end,kind,sensors")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="site name")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Build or extend a site folder from logger files.

    Refused (exit 2, the site unchanged): readings contradicting stored ones (unless
    --on-conflict keep), a file the site holds read again with other options, a
    sensors-table id naming no sensor, a header line that is data (use --format tabbed
    --column-map for headerless files). See docs/bad-input.md.
    """
    from geojepa.io import ingest
    from geojepa.io.reader import parse_rename

    renames = parse_rename(rename or [])
    report = ingest(
        files or [],
        out,
        fmt=fmt,
        sensors=sensors,
        sep=sep,
        time_col=time_col,
        tz=tz,
        label_cols=label_col or (),
        encoding=encoding,
        time_format=time_format,
        missing_values=missing_value or (),
        column_map=column_map,
        calibration=calibration,
        clock_repeat=clock_repeat,
        duplicate_times=duplicate_times,
        on_conflict=on_conflict,
        rename=renames or None,
        name=name,
        labels=labels,
    )
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        for line in report.lines():
            typer.echo(line)


@app.command("info")
def info_cmd(
    site: Annotated[Path, typer.Argument(help="site folder")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Describe a site: sensors, readings, span, grid, missing data, flags, labels."""
    from geojepa.io.summary import render_summary, site_summary
    from geojepa.site import Site

    summary = site_summary(Site.load(site))
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
    else:
        typer.echo(render_summary(summary))


@app.command("readings")
def readings_cmd(
    site: Annotated[Path, typer.Argument(help="site folder")],
    out: Annotated[Path, typer.Option("--out", help="CSV file to write")],
) -> None:
    """Write the stored long table: timestamp,sensor_id,value,quality,source (UTC)."""
    from geojepa.io.export import write_readings_csv
    from geojepa.site import Site

    n = write_readings_csv(Site.load(site), out)
    typer.echo(f"wrote {n} readings to {out}")
