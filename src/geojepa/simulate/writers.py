"""Logger-style files of a simulated site: Campbell TOA5, wide CSV with a unit row,
sensors.csv and events.csv.

TOA5 (``*.dat``), as Campbell loggers write it, CRLF line ends::

    "TOA5","<station>","CR1000X","<serial>","CR1000X.Std.05.02","CPU:<program>","<sig>","<table>"
    "TIMESTAMP","RECORD","PZ01","PZ02"
    "TS","RN","kPa","kPa"
    "","","Smp","Smp"
    "2022-01-01 00:00:00",0,12.34,"NAN"

Timestamps are UTC; missing values are ``"NAN"``; the fourth line names the process
(``Smp`` sample, ``Avg`` average, ``Tot`` total).

Wide CSV (``*.csv``), LF line ends: a header ``timestamp,<id>...``, a unit row
``unit,<unit>...``, then ``2022-01-01T00:00:00Z,12.34,`` with an empty cell where a
value is missing.

Guarantees: the same table gives the same bytes; each file appears whole or not at all
(written beside the target and renamed); every number is written with exactly the
decimals of its sensor's resolution, so parsing the text gives back the stored values.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from geojepa.atomic import atomic_path


@dataclass(frozen=True)
class LoggerTable:
    """The readings one logger file holds: S shared times, k channels."""

    name: str  # file name, e.g. "LOG01.dat"
    fmt: str  # "toa5" | "wide"
    station: str
    table: str
    times_ns: np.ndarray  # (S,) int64 UTC nanoseconds
    ids: tuple[str, ...]
    units: tuple[str, ...]
    processes: tuple[str, ...]
    decimals: tuple[int, ...]
    values: np.ndarray  # (S, k) float64, NaN where missing


def decimals_of(resolution: float) -> int:
    """Number of decimals needed to write multiples of `resolution` exactly (<= 6)."""
    for k in range(7):
        scaled = resolution * 10**k
        if abs(scaled - round(scaled)) < 1e-9:
            return k
    return 6


def format_values(values: np.ndarray, decimals: int, missing: str) -> list[str]:
    """Fixed-decimal text of (S,) values; NaN becomes `missing`. Negative zero is '0'."""
    fmt = f"{{:.{decimals}f}}".format
    out: list[str] = []
    append = out.append
    for v in values.tolist():
        if v != v:  # NaN
            append(missing)
        else:
            text = fmt(v)
            if text.startswith("-") and float(text) == 0.0:
                text = text[1:]
            append(text)
    return out


def format_column(values: np.ndarray, decimals: int, missing: str) -> pa.Array:
    """`format_values` done in Arrow's compute kernels (same text, much faster).

    Builds sign + integer part + '.' + zero-padded fraction from the integer
    k = rint(v * 10**decimals), so the text is exactly that of `format_values`.
    """
    v = np.asarray(values, dtype=np.float64)
    nan = np.isnan(v)
    k = np.rint(np.where(nan, 0.0, v) * 10.0**decimals).astype(np.int64)
    a = np.abs(k)
    base = 10**decimals
    whole = pc.cast(pa.array(a // base), pa.string())
    if decimals > 0:
        frac = pc.utf8_lpad(pc.cast(pa.array(a % base), pa.string()), decimals, padding="0")
        whole = pc.binary_join_element_wise(whole, frac, ".")
    sign = pa.array(np.where(k < 0, "-", ""))
    text = pc.binary_join_element_wise(sign, whole, "")
    return pc.if_else(pa.array(nan), pa.scalar(missing), text)


def _rows(columns: Sequence[pa.Array], eol: str) -> str:
    """Comma-joined rows of equal-length text columns, each ended by `eol`."""
    if not columns:
        return ""
    joined = pc.binary_join_element_wise(*columns, ",")
    return eol.join(joined.to_pylist()) + eol


def decimal_values(values: np.ndarray, decimals: int) -> np.ndarray:
    """`values` rounded to `decimals`, as the float64 a reader parses from their text.

    k / 10**d with k an integer is the correctly rounded double nearest the decimal
    number, which is what parsing its text gives; formatting it back with `decimals`
    gives the digits of k again. NaN is kept.
    """
    scale = 10.0**decimals
    return np.rint(np.asarray(values, dtype=np.float64) * scale) / scale


def iso_times(times_ns: np.ndarray, toa5: bool) -> list[str]:
    """UTC text of (S,) nanosecond times: TOA5 'YYYY-MM-DD HH:MM:SS', else ISO with 'Z'."""
    secs = np.asarray(times_ns, dtype=np.int64) // 1_000_000_000
    text = np.datetime_as_string(secs.astype("datetime64[s]"), unit="s")
    if toa5:
        return [t.replace("T", " ") for t in text.tolist()]
    return [t + "Z" for t in text.tolist()]


def _serial(station: str, name: str) -> tuple[str, str]:
    h = hashlib.sha256(f"{station}/{name}".encode()).hexdigest()
    return str(1000 + int(h[:6], 16) % 9000), str(int(h[6:10], 16))


def write_toa5(path: Path, t: LoggerTable) -> None:
    """Write `t` as a Campbell TOA5 file at `path` (atomically)."""
    serial, sig = _serial(t.station, t.name)
    program = "CPU:" + t.name.rsplit(".", 1)[0].lower() + ".CR1X"
    head = [
        ["TOA5", t.station, "CR1000X", serial, "CR1000X.Std.05.02", program, sig, t.table],
        ["TIMESTAMP", "RECORD", *t.ids],
        ["TS", "RN", *t.units],
        ["", "", *t.processes],
    ]
    lines = [",".join(f'"{c}"' for c in row) for row in head]
    times = pa.array([f'"{ts}"' for ts in iso_times(t.times_ns, toa5=True)])
    record = pc.cast(pa.array(np.arange(len(t.times_ns), dtype=np.int64)), pa.string())
    cols = [format_column(t.values[:, j], t.decimals[j], '"NAN"') for j in range(len(t.ids))]
    _write_text(path, "\r\n".join(lines) + "\r\n" + _rows([times, record, *cols], "\r\n"))


def write_wide(path: Path, t: LoggerTable) -> None:
    """Write `t` as a wide CSV with a unit row at `path` (atomically)."""
    lines = ["timestamp," + ",".join(t.ids), "unit," + ",".join(t.units)]
    times = pa.array(iso_times(t.times_ns, toa5=False))
    cols = [format_column(t.values[:, j], t.decimals[j], "") for j in range(len(t.ids))]
    _write_text(path, "\n".join(lines) + "\n" + _rows([times, *cols], "\n"))


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)  # an ordinary data file, not a private temporary one


def write_lines(path: Path, lines: Sequence[str], eol: str) -> None:
    """Write `lines` joined by `eol` (and a final `eol`) atomically, mode 0644."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write(eol.join(lines))
            fh.write(eol)
        os.chmod(tmp, 0o644)  # an ordinary data file, not a private temporary one


def write_sensors(path: Path, sensors: pd.DataFrame) -> None:
    """sensors.csv: id,kind,unit,x,y,z,group (z is elevation, m)."""
    lines = ["id,kind,unit,x,y,z,group"]
    cols = [sensors[c].tolist() for c in ("id", "kind", "unit", "x", "y", "z", "group")]
    for sid, kind, unit, x, y, z, group in zip(*cols, strict=True):
        lines.append(f"{sid},{kind},{unit},{x:.2f},{y:.2f},{z:.2f},{group}")
    write_lines(path, lines, "\n")


def write_events(path: Path, labels: pd.DataFrame) -> None:
    """events.csv: start,end,kind,sensors,category (UTC ISO times, sensors ';'-joined)."""
    lines = ["start,end,kind,sensors,category"]
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    starts = pd.DatetimeIndex(labels["start"]).strftime(fmt).tolist()
    ends = pd.DatetimeIndex(labels["end"]).strftime(fmt).tolist()
    rest = [labels[c].astype(str).tolist() for c in ("kind", "sensors", "category")]
    for start, end, kind, sensors, category in zip(starts, ends, *rest, strict=True):
        lines.append(f"{start},{end},{kind},{sensors},{category}")
    write_lines(path, lines, "\n")
