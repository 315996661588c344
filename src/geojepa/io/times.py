"""Timestamps from logger files: parse, place in a time zone, convert to UTC, check order.

`parse_times` turns the text of a time column into UTC instants. Times with an offset
(``Z``, ``+01:00``) are exact; naive times are read in `tz` (default UTC). In a zone with
daylight saving the repeated autumn hour is resolved in file order (first pass = summer time)
and flagged ``dst_repeat``; a time inside the spring gap is moved forward and flagged
``clock``. `resolve_clock_repeat` handles a logger whose clock was set back by hand (a
repeated stretch of at most one hour, off the calendar's transition date).

Guarantees:

- the result has one UTC instant (datetime64[ns]) and one flag per input row, in input order;
- every row that cannot be read raises `InputError` naming file, line and column, with an
  example of a format that works; nothing is silently dropped or shifted without a flag;
- a file mixing times with and without an offset is refused (the naive ones are ambiguous);
- formats are detected once on a sample and applied to all rows (fast); month/day order of
  slash dates is decided by the data (a field > 12) or, failing that, by which order keeps
  the times increasing (every month-first format has its day-first twin in the list).
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from geojepa.errors import InputError, UsageError
from geojepa.io.csvcore import Lines
from geojepa.site import Quality
from geojepa.timeformats import (
    NAIVE_FORMATS,
    NUMERIC_OFFSET,
    as_ns,
    most_regular,
    parse_naive,
    reads_every,
)

_OFFSET_RE = re.compile(rf"(?:[Zz]|{NUMERIC_OFFSET}|\sUTC|\sGMT|UTC|GMT)$")
EXAMPLE = "ISO 8601 like 2024-03-31T14:15:00 or 2024-03-31 14:15:00+01:00"


@dataclass(frozen=True)
class ParsedTimes:
    """UTC instants and a flag per row (`Quality` values; ``ok`` where nothing happened)."""

    utc: np.ndarray  # (N,) datetime64[ns], UTC
    flags: np.ndarray  # (N,) object: Quality values
    fmt: str  # the format used ("ISO8601", a strptime pattern, or "offset")
    had_offset: bool


def check_tz(tz: str | None) -> str:
    """Return a valid IANA zone name (or a fixed ``Etc/GMT+8`` style one); raise UsageError."""
    name = (tz or "UTC").strip()
    if name.upper() in ("UTC", "Z", "GMT"):
        return "UTC"
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as err:
        raise UsageError(
            f"unknown time zone {name!r}",
            hint="use an IANA name such as Europe/Oslo, America/Los_Angeles or UTC",
        ) from err
    return name


def parse_times(
    text: Sequence[str] | np.ndarray | pd.Series,
    *,
    file: str | Path,
    lines: Lines,
    column: str | int,
    tz: str | None = "UTC",
    fmt: str | None = None,
    clock_repeat: bool = False,
) -> ParsedTimes:
    """Parse the time column `text`; `lines[i]` is the file line of row i (for messages).

    `fmt` forces a strptime pattern (or "ISO8601"). `clock_repeat` resolves manual clock
    set-backs of at most an hour in order (see `resolve_clock_repeat`).
    """
    raw = np.asarray(text, dtype=object)
    codes, uniques = pd.factorize(pd.Series(raw, dtype="object"), use_na_sentinel=True)
    return parse_times_factorized(
        np.asarray(uniques, dtype=object),
        codes,
        file=file,
        lines=lines,
        column=column,
        tz=tz,
        fmt=fmt,
        clock_repeat=clock_repeat,
    )


def parse_times_factorized(
    uniques: np.ndarray,
    codes: np.ndarray,
    *,
    file: str | Path,
    lines: Lines,
    column: str | int,
    tz: str | None = "UTC",
    fmt: str | None = None,
    clock_repeat: bool = False,
    groups: np.ndarray | None = None,
) -> ParsedTimes:
    """`parse_times` on distinct texts `uniques` (U,) and row codes (N,) into them (-1 = null).

    `groups` (N,) ints, optional: rows of different groups (the sensors of a long file) are
    separate series, each going through a repeated autumn hour in its own file order.
    """
    zone = check_tz(tz)
    n = len(codes)
    raw = _RowText(uniques, codes)
    if n == 0:
        return ParsedTimes(
            np.array([], dtype="datetime64[ns]"), np.array([], dtype=object), "ISO8601", False
        )
    if (codes < 0).any():
        i = int(np.flatnonzero(codes < 0)[0])
        _bad(file, lines[i], column, "", "the timestamp is empty")
    arr = pc.utf8_trim_whitespace(pa.array(uniques, type=pa.string(), from_pandas=True))
    ustr = pd.Series(arr.to_numpy(zero_copy_only=False), dtype="object")
    empty = np.asarray(pc.equal(arr, "").to_numpy(zero_copy_only=False), dtype=bool)
    if empty.any():
        i = int(np.flatnonzero(np.isin(codes, np.flatnonzero(empty)))[0])
        _bad(file, lines[i], column, "", "the timestamp is empty")
    all_z = bool(pc.all(pc.ends_with(arr, "Z")).as_py())  # the common UTC export: no regex
    has_off = (
        np.ones(len(arr), dtype=bool)
        if all_z
        else np.asarray(
            pc.match_substring_regex(arr, _OFFSET_RE.pattern).to_numpy(zero_copy_only=False),
            dtype=bool,
        )
    )
    flags = np.full(n, Quality.OK.value, dtype=object)
    if has_off.any():
        if not has_off.all():
            i_with = int(np.flatnonzero(np.isin(codes, np.flatnonzero(has_off)))[0])
            i_without = int(np.flatnonzero(np.isin(codes, np.flatnonzero(~has_off)))[0])
            second = max(i_with, i_without)
            raise InputError(
                "mixed time offsets: line "
                f"{lines[i_with]} gives an offset ({raw[i_with]!r}), line {lines[i_without]} "
                f"does not ({raw[i_without]!r})",
                file=file,
                line=int(lines[second]),
                column=column,
                hint="give every timestamp an offset, or none and pass --tz for the logger's zone",
            )
        cleaned = (
            ustr
            if all_z  # nothing ends in UTC/GMT
            else pd.Series(
                pc.replace_substring_regex(arr, r"\s?(UTC|GMT)$", "Z").to_numpy(
                    zero_copy_only=False
                ),
                dtype="object",
            )
        )
        parsed = pd.Series(
            pd.to_datetime(cleaned, format=fmt or "ISO8601", utc=True, errors="coerce")
        )
        _raise_first_nat(parsed, codes, raw, lines, file, column, fmt or "ISO8601")
        utc_u = as_ns(parsed.dt.tz_convert("UTC").dt.tz_localize(None))
        return ParsedTimes(utc_u[codes], flags, fmt or "ISO8601", True)
    used = fmt or _detect_format(ustr, codes, raw, lines, file, column)
    parsed = parse_naive(ustr, used)
    _raise_first_nat(parsed, codes, raw, lines, file, column, used)
    return from_naive(
        as_ns(parsed)[codes], zone, clock_repeat=clock_repeat, fmt=used, groups=groups
    )


def from_naive(
    naive: np.ndarray,
    tz: str | None,
    *,
    clock_repeat: bool = False,
    fmt: str = "",
    groups: np.ndarray | None = None,
) -> ParsedTimes:
    """Naive local times (N,) -> `ParsedTimes` in UTC (see `localize`, `resolve_clock_repeat`)."""
    zone = check_tz(tz)
    flags = np.full(len(naive), Quality.OK.value, dtype=object)
    if clock_repeat:
        naive, rep = resolve_clock_repeat(naive)
        flags[rep] = Quality.DST_REPEAT.value
    utc, f2 = localize(naive, zone, groups=groups)
    flags = np.where(f2 != Quality.OK.value, f2, flags)
    return ParsedTimes(utc, flags, fmt, False)


class _RowText:
    """Row i's original text, from distinct texts and codes (no N-long object array)."""

    def __init__(self, uniques: np.ndarray, codes: np.ndarray) -> None:
        self.uniques = uniques
        self.codes = codes

    def __getitem__(self, i: int) -> str:
        c = int(self.codes[int(i)])
        return "" if c < 0 else str(self.uniques[c])


def _detect_format(
    ustr: pd.Series,
    codes: np.ndarray,
    raw: _RowText,
    lines: Lines,
    file: str | Path,
    column: str | int,
) -> str:
    k = len(ustr)
    idx = np.unique(np.concatenate([np.arange(min(k, 64)), np.arange(max(0, k - 64), k)]))
    sample = ustr.iloc[idx]
    ok: list[str] = []
    for f in NAIVE_FORMATS:
        if reads_every(parse_naive(sample, f)):
            ok.append(f)
    if not ok:
        # name the first row no format reads
        for j in idx:
            if all(parse_naive(ustr.iloc[[j]], f).isna().all() for f in NAIVE_FORMATS):
                i = int(np.flatnonzero(codes == j)[0])
                _bad(file, lines[i], column, raw[i], "cannot read the timestamp")
        i = int(np.flatnonzero(codes == idx[0])[0])
        _bad(file, lines[i], column, raw[i], "cannot read the timestamps")
    if len(ok) == 1:
        return ok[0]
    full = {f: parse_naive(ustr, f) for f in ok}
    complete = [f for f in ok if reads_every(full[f])]
    if not complete:
        return ok[0]  # the caller names the first row it cannot read
    if len(complete) == 1:
        return complete[0]
    return most_regular({f: as_ns(full[f])[codes] for f in complete})


def _raise_first_nat(
    parsed: pd.Series,
    codes: np.ndarray,
    raw: _RowText,
    lines: Lines,
    file: str | Path,
    column: str | int,
    fmt: str,
) -> None:
    bad_u = np.flatnonzero(pd.isna(parsed).to_numpy())
    if len(bad_u):
        i = int(np.flatnonzero(np.isin(codes, bad_u))[0])
        shown = "like the rows before it" if fmt == "ISO8601" else f"in the format {fmt}"
        _bad(file, lines[i], column, raw[i], f"cannot read the timestamp {shown}")


def _bad(file: str | Path, line: int, column: str | int, value: str, what: str) -> None:
    raise InputError(
        f"{what}" + (f": {value[:60]!r}" if value else ""),
        file=file,
        line=int(line),
        column=column,
        hint=(
            f"write times as {EXAMPLE}, or give the ingest command their pattern with"
            " --time-format (e.g. '%d-%m-%Y %H:%M')"
        ),
    )


def localize(
    naive: np.ndarray, zone: str, *, groups: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Read naive local times (N,) in `zone`; return UTC (N,) datetime64[ns] and flags (N,).

    Repeated (ambiguous) times are resolved in order: along the file, times before the clock
    goes back are summer time, those after are standard time; all are flagged ``dst_repeat``.
    With `groups` (N,) ints (the sensors of a long file) the order is followed within each
    group only: another sensor's reading at the same time is not the clock going back.
    Times in the spring gap are moved forward and flagged ``clock``.
    """
    n = len(naive)
    flags = np.full(n, Quality.OK.value, dtype=object)
    idx = pd.DatetimeIndex(naive)
    if zone == "UTC":
        return naive.astype("datetime64[ns]"), flags
    gap = pd.isna(idx.tz_localize(zone, ambiguous=True, nonexistent="NaT"))
    amb = pd.isna(idx.tz_localize(zone, ambiguous="NaT", nonexistent="shift_forward"))
    amb &= ~gap
    is_dst = np.ones(n, dtype=bool)
    if amb.any():
        pos = np.flatnonzero(amb)
        v = naive[pos].astype(np.int64)
        day = naive[pos].astype("datetime64[D]").astype(np.int64)
        grp = np.zeros(len(pos), dtype=np.int64) if groups is None else np.asarray(groups)[pos]
        _, series = np.unique(np.stack([day, grp.astype(np.int64)]), axis=1, return_inverse=True)
        series = series.reshape(-1)
        back = np.zeros(len(pos), dtype=bool)
        for k in np.unique(series):
            sel = np.flatnonzero(series == k)  # one day of one series, in file order
            run_max = np.maximum.accumulate(v[sel])
            went_back = np.concatenate(([False], v[sel][1:] <= run_max[:-1]))
            back[sel] = np.logical_or.accumulate(went_back)
        is_dst[pos] = ~back
        flags[pos] = Quality.DST_REPEAT.value
    flags[gap] = Quality.CLOCK.value
    local = idx.tz_localize(zone, ambiguous=is_dst, nonexistent="shift_forward")
    utc = local.tz_convert("UTC").tz_localize(None)
    return as_ns(utc), flags


def resolve_clock_repeat(
    naive: np.ndarray, max_step: pd.Timedelta = pd.Timedelta("1h")
) -> tuple[np.ndarray, np.ndarray]:
    """Undo manual clock set-backs (summer to standard time) in a naive series, in order.

    Where the time goes back by at most `max_step` (plus one sampling step), every earlier
    reading is taken to be on the clock's previous offset and moved back by the set-back,
    so the series increases again. The readings inside the repeated stretch (both passes)
    are returned flagged. A time equal to the previous one is a set-back only when one step
    is already `max_step` (hourly data set back an hour); on finer data it is a repeated row,
    left to the readers' duplicate check (nothing moves). Returns (corrected (N,), repeated
    (N,) bool).
    """
    v = naive.astype("datetime64[ns]").astype(np.int64).copy()
    rep = np.zeros(len(v), dtype=bool)
    if len(v) < 3:
        return naive.astype("datetime64[ns]"), rep
    d = np.diff(v)
    step = int(np.median(d[d > 0])) if (d > 0).any() else 0
    limit = int(max_step.value) + step
    jumps = d <= 0 if step >= int(max_step.value) else d < 0
    for j in np.flatnonzero(jumps):
        # the jump between row j and j+1: set back by (v[j] - v[j+1] + step)
        setback = int(v[j] - v[j + 1]) + step
        if setback <= 0 or setback > limit:
            continue
        lo = v[j + 1]
        first = (v[: j + 1] >= lo) & (np.arange(j + 1) >= 0)
        after = np.arange(len(v)) > j
        second = after & (v <= v[j]) & (v >= lo)
        rep[: j + 1] |= first
        rep |= second
        v[: j + 1] -= setback
    return v.astype("datetime64[ns]"), rep


def check_increasing(
    utc: np.ndarray,
    *,
    file: str | Path,
    lines: Lines,
    column: str | int,
    allow_equal: bool = False,
) -> np.ndarray:
    """Raise on the first row whose time is before the row above; return rows equal to it.

    Returns a bool mask (N,) of rows whose time equals the previous row's (duplicates), which
    the caller resolves (identical rows are dropped and counted, differing rows refused).
    """
    if len(utc) < 2:
        return np.zeros(len(utc), dtype=bool)
    v = utc.astype(np.int64)
    d = np.diff(v)
    back = np.flatnonzero(d < 0)
    if len(back):
        j = int(back[0])
        t_prev = pd.Timestamp(utc[j]).isoformat()
        t_now = pd.Timestamp(utc[j + 1]).isoformat()
        raise InputError(
            f"time goes backwards: {t_now}Z is before {t_prev}Z on line {lines[j]}",
            file=file,
            line=int(lines[j + 1]),
            column=column,
            hint="sort the rows by time; if the logger keeps local time with daylight saving, "
            "pass --tz with its zone (e.g. --tz Europe/Oslo)",
        )
    dup = np.concatenate(([False], d == 0))
    return dup
