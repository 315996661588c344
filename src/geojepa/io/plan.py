"""A construction programme from a file (``timestamp,load``): the planned load after a cutoff.

Each row gives the load (fill height or applied pressure, in the load sensor's unit) the
programme reaches at that time; the load is linear between rows, from the last reading to
the first row, and held after the last row.

Guarantees: times follow the same rules as readings (ISO 8601, offsets exact, naive times
in `tz`); every load is a finite number; times strictly increase; with `after` given, every
time is later than it (a plan is what comes after the cutoff: the readings give the past).
Any violation raises `InputError` with the file, the line and what to do. Nothing is
dropped: blank lines are skipped, every other line becomes a row.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from geojepa.errors import InputError
from geojepa.io.smalltable import read_small_table
from geojepa.io.times import parse_times

HEADER = "timestamp,load"


def read_fill_plan(
    path: str | Path, *, tz: str | None = "UTC", after: pd.Timestamp | None = None
) -> pd.DataFrame:
    """Read a programme file: a frame with ``timestamp`` (UTC) and ``load`` (float)."""
    p = Path(path)
    if not p.is_file():
        raise InputError("no such fill-plan file", file=p, hint=f"write a CSV with {HEADER}")
    df, lines = read_small_table(p, ("timestamp", "load"), "the fill plan", HEADER)
    if df.empty:
        raise InputError("the fill plan has no rows", file=p, hint=f"one row per {HEADER}")
    when = parse_times(
        df["timestamp"].to_numpy(), file=p, lines=lines, column="timestamp", tz=tz
    ).utc
    text = df["load"].str.strip()
    load = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(load))
    if bad.size:
        i = int(bad[0])
        raise InputError(
            f"load {text.iloc[i]!r} is not a finite number",
            file=p,
            line=lines[i],
            column="load",
            hint="give the planned load in the load sensor's unit",
        )
    stamps = pd.DatetimeIndex(when, tz="UTC")
    back = np.flatnonzero(np.diff(stamps.asi8) <= 0)
    if back.size:
        i = int(back[0]) + 1
        raise InputError(
            f"time {stamps[i].isoformat()} does not come after the row before it",
            file=p,
            line=lines[i],
            column="timestamp",
            hint="list the programme in time order, one row per time",
        )
    if after is not None and stamps[0] <= after:
        raise InputError(
            f"time {stamps[0].isoformat()} is not after the cutoff {after.isoformat()}",
            file=p,
            line=lines[0],
            column="timestamp",
            hint="a fill plan gives the load after the cutoff; the readings give the past",
        )
    return pd.DataFrame({"timestamp": stamps, "load": load})


__all__ = ["HEADER", "read_fill_plan"]
