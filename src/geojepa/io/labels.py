"""Labelled events from a file (``start,end,kind[,sensors][,category]``), e.g. the
simulator's ``events.csv``.

Guarantees: times follow the same rules as readings (ISO 8601, offsets exact, naive times in
`tz`); an event ending before it starts, an empty start or a sensor list naming a sensor the
site lacks raises `InputError` with the file and line; ``sensors`` is ``;``-separated
(empty = every sensor). Rows come back in the site's labels schema with ``source`` set.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from geojepa.errors import InputError
from geojepa.io.smalltable import read_small_table
from geojepa.io.times import parse_times
from geojepa.site import _coerce_labels, empty_labels


def read_labels_file(
    path: str | Path, *, tz: str | None = "UTC", source: str | None = None
) -> pd.DataFrame:
    """Read an events file into the site's labels schema."""
    p = Path(path)
    df, lines = read_small_table(
        p, ("start", "end"), "the events file", "start,end,kind,sensors,category"
    )
    if df.empty:
        return empty_labels()
    start = parse_times(df["start"].to_numpy(), file=p, lines=lines, column="start", tz=tz).utc
    end = parse_times(df["end"].to_numpy(), file=p, lines=lines, column="end", tz=tz).utc
    bad = np.flatnonzero(end < start)
    if len(bad):
        i = int(bad[0])
        raise InputError("the event ends before it starts", file=p, line=lines[i], column="end")
    out = pd.DataFrame(
        {
            "start": pd.DatetimeIndex(start, tz="UTC"),
            "end": pd.DatetimeIndex(end, tz="UTC"),
            "kind": df["kind"].str.strip() if "kind" in df else "event",
            "sensors": df["sensors"].str.strip() if "sensors" in df else "",
            "category": df["category"].str.strip() if "category" in df else "",
            "source": source or p.name,
        }
    )
    return _coerce_labels(out)


def check_label_sensors(labels: pd.DataFrame, known: Iterable[str], *, file: str | Path) -> None:
    """Raise `InputError` if an event names a sensor not in `known`."""
    have = set(map(str, known))
    for i, text in enumerate(labels["sensors"].astype(str)):
        for sid in (s.strip() for s in text.split(";")):
            if sid and sid not in have:
                raise InputError(
                    f"the event names sensor {sid!r}, which the site does not have",
                    file=file,
                    line=i + 2,
                    column="sensors",
                    hint="ingest that sensor's file first, or fix the sensor id",
                )
