"""`read_file`: one entry point for every logger format, with format detection.

Formats: ``wide`` (time column + one column per sensor, optional unit row), ``long``
(timestamp, sensor_id, value[, quality]), ``toa5`` (Campbell), ``tabbed`` (headerless rows
with a column map), ``pbo`` (GNSS positions). ``auto`` looks at the file: a first line
starting with ``TOA5`` is TOA5, ``PBO Station Position Time Series`` is PBO, a column map
given means tabbed, a header naming time, sensor and value columns is long; anything else
is wide.

Guarantees: the result is a `ReadResult` or an `InputError`/`UsageError` (exit status 2 on
the command line) naming file, line and what to do; an option that does not apply to the
chosen format is refused rather than ignored (``rename`` applies to wide files only); a
separator must be one character; a header line that is data (a headerless file read
without ``--column-map``) is refused at line 1 with the options that read it; a sensors
table, when given, supplies kind, unit and position and a unit contradicting the file is a
units mismatch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import pandas as pd

from geojepa.errors import InputError, UsageError
from geojepa.io.long import looks_long, read_long
from geojepa.io.pbo import is_pbo, read_pbo
from geojepa.io.result import ReadResult
from geojepa.io.sensors import apply_sensor_table, read_sensors_table
from geojepa.io.tabbed import ColumnMap, load_column_map, read_tabbed
from geojepa.io.textfile import normalise_sep, sniff_delimiter, split_line
from geojepa.io.toa5 import is_toa5, read_toa5
from geojepa.io.wide import read_wide

FORMATS: tuple[str, ...] = ("auto", "wide", "long", "toa5", "tabbed", "pbo")


def detect_format(path: str | Path, *, encoding: str | None = None, sep: str | None = None) -> str:
    """The format `read_file(fmt="auto")` would use for `path` (reads its first 64 KiB).

    Files no reader could take (missing, empty, binary) are refused later by the reader
    with the precise reason; here they simply count as wide.
    """
    p = Path(path)
    try:
        with p.open("rb") as fh:
            start = fh.read(1 << 16)
    except OSError:
        return "wide"
    text = start.decode(encoding or "utf-8", errors="replace")
    lines = [ln.rstrip("\r") for ln in text.split("\n")[:-1] or [text]]
    first = next((ln for ln in lines if ln.strip()), "")
    if is_toa5(first):
        return "toa5"
    if is_pbo(first):
        return "pbo"
    try:
        delim = sniff_delimiter(p, lines[:30], sep=sep)
    except InputError:  # undecidable here; the wide reader reports it with its own words
        return "wide"
    if looks_long([c.strip() for c in split_line(first, delim)]):
        return "long"
    return "wide"


def read_file(
    path: str | Path,
    fmt: str = "auto",
    *,
    sep: str | None = None,
    time_col: str | int | None = None,
    tz: str | None = "UTC",
    label_cols: Sequence[str] = (),
    encoding: str | None = None,
    time_format: str | None = None,
    missing_values: Sequence[str] = (),
    column_map: ColumnMap | str | Path | None = None,
    sensors: pd.DataFrame | str | Path | None = None,
    clock_repeat: bool = False,
    duplicate_times: str = "error",
    source: str | None = None,
    rename: Mapping[str, str] | None = None,
) -> ReadResult:
    """Read one logger file into a `ReadResult` (see the module docstring).

    `rename` maps column names of a wide file to the sensor ids to store them under.
    """
    p = Path(path)
    sep = normalise_sep(sep)
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}", hint="use one of " + ", ".join(FORMATS))
    if duplicate_times not in ("error", "keep_first"):
        raise UsageError(f"duplicate_times={duplicate_times!r}", hint="use error or keep_first")
    if fmt == "auto":
        fmt = "tabbed" if column_map is not None else detect_format(p, encoding=encoding, sep=sep)
    _refuse(
        fmt,
        label_cols=bool(label_cols),
        column_map=column_map is not None,
        sep=sep is not None,
        time_col=time_col is not None,
        rename=bool(rename),
    )
    if fmt == "wide":
        result = read_wide(
            p, sep=sep, time_col=time_col, tz=tz, label_cols=label_cols, encoding=encoding,
            time_format=time_format, missing_values=missing_values, source=source,
            clock_repeat=clock_repeat, duplicate_times=duplicate_times,
            rename=dict(rename) if rename else None,
        )  # fmt: skip
    elif fmt == "long":
        result = read_long(
            p, sep=sep, time_col=None if time_col is None else str(time_col), tz=tz,
            encoding=encoding, time_format=time_format, missing_values=missing_values,
            source=source,
        )  # fmt: skip
    elif fmt == "toa5":
        result = read_toa5(
            p, tz=tz, label_cols=label_cols, encoding=encoding, missing_values=missing_values,
            source=source, clock_repeat=clock_repeat, duplicate_times=duplicate_times,
        )  # fmt: skip
    elif fmt == "tabbed":
        if column_map is None:
            raise UsageError(
                "a headerless (tabbed) file needs a column map", hint="pass --column-map FILE"
            )
        cmap = column_map if isinstance(column_map, ColumnMap) else load_column_map(column_map)
        result = read_tabbed(
            p, cmap, sep=sep, tz=tz, time_format=time_format, encoding=encoding,
            missing_values=missing_values, clock_repeat=clock_repeat,
            duplicate_times=duplicate_times, source=source,
        )  # fmt: skip
    else:
        result = read_pbo(p, source=source)
    if sensors is not None:
        table = sensors if isinstance(sensors, pd.DataFrame) else read_sensors_table(sensors)
        name = "the sensors table" if isinstance(sensors, pd.DataFrame) else str(sensors)
        result = replace(
            result,
            sensors=apply_sensor_table(result.sensors, table, file=p, table_name=name),
        )
    return result


def parse_rename(items: Sequence[str]) -> dict[str, str]:
    """``COLUMN=ID`` texts (the ``--rename`` option) -> {column: sensor id}."""
    out: dict[str, str] = {}
    for item in items:
        col, eq, new = item.partition("=")
        col, new = col.strip(), new.strip()
        if not eq or not col or not new:
            raise UsageError(
                f"--rename {item!r}: write COLUMN=ID",
                hint="e.g. --rename head=head_germany stores the column 'head' as that sensor",
            )
        if col in out and out[col] != new:
            raise UsageError(f"--rename names the column {col!r} twice")
        out[col] = new
    return out


def _refuse(fmt: str, **given: bool) -> None:
    allowed = {
        "wide": {"label_cols", "sep", "time_col", "rename"},
        "long": {"sep", "time_col"},
        "toa5": {"label_cols"},
        "tabbed": {"column_map", "sep"},
        "pbo": set(),
    }[fmt]
    flags = {"label_cols": "--label-col", "column_map": "--column-map", "sep": "--sep",
             "time_col": "--time-col", "rename": "--rename"}  # fmt: skip
    for key, is_given in given.items():
        if is_given and key not in allowed:
            raise UsageError(
                f"{flags[key]} does not apply to {fmt} files",
                hint="drop the option, or choose the format with --format",
            )
