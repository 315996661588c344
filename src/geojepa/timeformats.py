"""Naive timestamp formats and how one format is chosen for a file: numpy and pandas only,
so the edge scorer's streaming parser (a gateway may have no pyarrow) reads times exactly as
``geojepa ingest`` does.

Guarantees: `NUMERIC_OFFSET` matches an offset only after a time of day; `NAIVE_FORMATS` lists ISO 8601 first, then slash, dash, dot and compact dates
(month-first before day-first); `parse_naive` reads a date with no time of day under a
format that has one as midnight; `naive_format` picks, among the formats that read every
text, the one whose times increase in file order with the most regular steps (the first
listed on a tie), the rule that tells day-first from month-first slash dates; `time_step`
reads a grid step or refuses it (`InputError` naming the option or key).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from geojepa.errors import InputError

NUMERIC_OFFSET = r"[:T].*[+-]\d{2}:?\d{2}"
"""A numeric UTC offset at the end of a time text: it follows a time of day (a ':' or a 'T'
before it), so the year of a day-first dashed date ("31-03-2024") is no offset of -20:24."""

NAIVE_FORMATS: tuple[str, ...] = (
    "ISO8601",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%y %H:%M:%S",
    "%m/%d/%y %H:%M",
    "%m/%d/%Y",
    "%m/%d/%y",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d/%m/%y %H:%M:%S",
    "%d/%m/%y %H:%M",
    "%d/%m/%Y",
    "%d/%m/%y",
    # 12-hour clocks with AM/PM, as data-logger software exports them (HOBO and others)
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%y %I:%M:%S %p",
    "%m/%d/%y %I:%M %p",
    "%d/%m/%Y %I:%M:%S %p",
    "%d/%m/%Y %I:%M %p",
    "%d/%m/%y %I:%M:%S %p",
    "%d/%m/%y %I:%M %p",
    "%d-%m-%Y %H:%M:%S",
    "%d-%m-%Y %H:%M",
    "%d-%m-%Y",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
    "%Y%m%d%H%M%S",
    "%Y%m%d%H%M",
    "%Y%m%d",
)


def as_ns(values: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """Naive times as datetime64[ns] (N,)."""
    return np.asarray(pd.DatetimeIndex(values).as_unit("ns").to_numpy(dtype="datetime64[ns]"))


def parse_naive(ustr: pd.Series, fmt: str) -> pd.Series:
    """Naive times with `fmt`; texts that do not fit (or carry an offset) become NaT.

    A date with no time of day under a format that has one is read as midnight of that date
    (spreadsheets save ``3/17/2017 00:00`` as ``3/17/2017``).
    """
    parsed = _parse_exact(ustr, fmt)
    date_part, sep, time_part = fmt.partition(" ")
    if sep and ("%H" in time_part or "%I" in time_part):
        bare = parsed.isna() & ~ustr.astype(str).str.contains(":", regex=False)
        if bare.any():
            parsed[bare] = _parse_exact(ustr[bare], date_part)
    return parsed


def _parse_exact(ustr: pd.Series, fmt: str) -> pd.Series:
    """Naive times with exactly `fmt`; texts that do not fit (or carry an offset) are NaT."""
    try:
        return pd.Series(pd.to_datetime(ustr, format=fmt, errors="coerce"), index=ustr.index)
    except (ValueError, OverflowError):
        # some text carries an offset the offset test missed (e.g. "-09"): read one by one,
        # keeping only naive results, so the caller names the first unreadable row
        out = []
        for text in ustr:
            try:
                t = pd.to_datetime(text, format=fmt)
            except (ValueError, OverflowError):
                t = pd.NaT
            out.append(pd.NaT if getattr(t, "tzinfo", None) is not None else t)
        return pd.Series(pd.to_datetime(pd.Series(out, dtype="object")), index=ustr.index)


def reads_every(parsed: pd.Series) -> bool:
    """Whether a format read every text (`parse_naive`'s result) as a plausible date."""
    return (
        bool(len(parsed))
        and bool(parsed.notna().all())
        and bool(parsed.dt.year.between(1900, 2200).all())
    )


def most_regular(candidates: dict[str, np.ndarray]) -> str:
    """Of formats that read every row (times (N,) in file order, per format), the one whose
    times increase in file order with the most regular steps; the first listed on a tie
    (month-first before day-first). Slash dates with every field <= 12 need this."""
    names = list(candidates)
    best: tuple[int, float, int] | None = None
    for k, f in enumerate(names):
        v = candidates[f].astype(np.int64)
        d = np.diff(v)
        if len(v) >= 2 and not (d >= 0).all():
            continue
        score = (len(np.unique(d)), float(np.median(d)) if len(d) else 0.0, k)
        if best is None or score < best:
            best = score
    return names[best[2]] if best is not None else names[0]


def naive_format(texts: Sequence[str]) -> str | None:
    """The format of `NAIVE_FORMATS` (ISO 8601 first) that reads every one of `texts` (rows in
    file order) that any format reads, chosen as a whole file's is (a text no format reads
    is the caller's bad line, not a reason to refuse the others); None when none is read."""
    ustr = pd.Series([str(t).strip() for t in texts], dtype="object")
    full = {f: parse_naive(ustr, f) for f in NAIVE_FORMATS}
    readable = np.logical_or.reduce([got.notna().to_numpy() for got in full.values()])
    complete = {f: as_ns(got[readable]) for f, got in full.items() if reads_every(got[readable])}
    return most_regular(complete) if complete else None


def time_step(value: str | pd.Timedelta, name: str) -> pd.Timedelta:
    """`value` as a positive time step; an `InputError` naming `name` (the option or key it
    came from) when pandas cannot read it or it is not positive."""
    try:
        step = pd.Timedelta(value)
    except (ValueError, TypeError) as err:
        raise InputError(
            f"{name} {value!r} is not a time step",
            hint='write a pandas time step such as "1h", "15min" or "1D"',
        ) from err
    if step is pd.NaT or step <= pd.Timedelta(0):
        raise InputError(f"{name} {value!r} must be a positive time step", hint='e.g. "1h"')
    return step
