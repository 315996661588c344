"""Follow a growing logger file and keep the last window of a regular grid in memory.

Three pieces, each usable alone:

- `LineFollower` reads a file that another process appends to and yields batches of
  COMPLETE lines. A last line without its newline is held back until the newline arrives
  (a logger may be half-way through writing it); only when the file is read once
  (``follow=False``) is such a line taken as the file's true last line.
- `StreamParser` turns batches of lines of a long table (``timestamp,sensor_id,value,...``,
  what `geojepa readings` writes), a wide CSV (one time column, one column per sensor) or a
  Campbell TOA5 file into `ReadingsChunk` arrays over a FIXED list of sensors.
- `GridRing` accumulates readings into grid cells (the cell of time t is
  ``floor(t / interval)``, the same rule as `geojepa.frame.to_frame`) and keeps only the
  last `length` cells: memory is O(length x sensors) however long the stream runs.

Guarantees: no line is misread because it was incomplete; a file that is truncated or
replaced (a logger's rotation, a new logger program) is read again from its start with its
own header (its columns may be new or in a new order; a file truncated in place and
appended to without one keeps the header it had); nothing is dropped silently —
unknown sensor columns, missing/non-finite values, late readings (for a cell already
closed) and unparseable lines are counted in `StreamStats` and logged, and the sensors
of the model without a good reading so far are listed there (`absent_sensors`); a line
longer than `max_line_bytes` raises `InputError` instead of growing memory without bound. With
`max_ahead`, a time further ahead of this machine's clock than that (a logger whose clock
jumped) is a counted bad line (`stats.future` too): applied, it would close every grid cell
up to it, and every true reading after it would arrive late.
"""

from __future__ import annotations

import csv
import io
import itertools
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from geojepa.errors import InputError
from geojepa.frame import SensorFrame
from geojepa.timeformats import NUMERIC_OFFSET, naive_format

log = logging.getLogger(__name__)

MISSING_TEXT = frozenset({"", "nan", "na", "n/a", "null", "none", "-9999", "#n/a"})
NON_FINITE_TEXT = frozenset({"inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"})
TIME_NAMES = ("timestamp", "time", "datetime", "date_time", "date", "ts")
TOA5_SKIP_COLUMNS = frozenset({"RECORD", "RN"})
_OFFSET_RE = rf"(?:[Zz]|{NUMERIC_OFFSET})$"
NAT_NS = np.iinfo(np.int64).min  # NaT as int64 nanoseconds


# ------------------------------------------------------------------------------ lines
@dataclass(frozen=True)
class LineBatch:
    """Complete lines read in one go; `first_line` is the 1-based line number of lines[0]."""

    first_line: int
    lines: tuple[str, ...]


class LineFollower:
    """Yield batches of complete lines of `path`, following the file as it grows.

    With ``follow=False`` the file is read once to its end. With ``follow=True`` the reader
    polls every `poll` seconds for new bytes until `stop()` returns True or no byte arrived
    for `idle_timeout` seconds (None: forever). Memory: one read of `read_bytes` plus one
    batch of at most `max_lines` lines plus one partial line. A file that shrinks (truncated or replaced
    by a logger's rotation) is read again from its start; this is logged.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        follow: bool = False,
        poll: float = 0.5,
        idle_timeout: float | None = None,
        stop: Callable[[], bool] | None = None,
        max_lines: int = 20_000,
        max_line_bytes: int = 1 << 20,
        read_bytes: int = 1 << 20,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.path = Path(path)
        self.follow = follow
        self.poll = poll
        self.idle_timeout = idle_timeout
        self.stop = stop
        self.max_lines = max_lines
        self.max_line_bytes = max_line_bytes
        self.read_bytes = read_bytes
        self.sleep = sleep
        self.pending = b""  # bytes of a line whose newline has not arrived yet
        self.lines_read = 0
        self.restarts = 0

    def _open(self) -> io.BufferedReader:
        try:
            return open(self.path, "rb")  # closed in batches()
        except FileNotFoundError as err:
            raise InputError(
                "file not found", file=self.path, hint="check the path or wait for the logger"
            ) from err

    def batches(self) -> Iterator[LineBatch]:
        fh = self._open()
        try:
            ino = os.fstat(fh.fileno()).st_ino
            idle_since = time.monotonic()
            while True:
                data = fh.read(self.read_bytes)
                if data:
                    idle_since = time.monotonic()
                    yield from self._split(data)
                    continue
                # at the end of what is written so far
                if not self.follow:
                    if self.pending:
                        yield self._emit([self.pending])
                        self.pending = b""
                    return
                if self.stop is not None and self.stop():
                    break
                if self.idle_timeout is not None and (
                    time.monotonic() - idle_since >= self.idle_timeout
                ):
                    break
                fh, ino = self._maybe_reopen(fh, ino)
                self.sleep(self.poll)
            if self.pending:
                log.warning(
                    "%s: stopped with an incomplete last line (%d bytes) left unread",
                    self.path,
                    len(self.pending),
                )
        finally:
            fh.close()

    def _maybe_reopen(self, fh: io.BufferedReader, ino: int) -> tuple[io.BufferedReader, int]:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return fh, ino  # being replaced: keep reading the old handle until it is back
        if st.st_ino != ino or st.st_size < fh.tell():
            log.warning("%s was truncated or replaced: reading it again from its start", self.path)
            fh.close()
            self.restarts += 1
            self.pending = b""
            self.lines_read = 0
            fh = self._open()
            return fh, os.fstat(fh.fileno()).st_ino
        return fh, ino

    def _split(self, data: bytes) -> Iterator[LineBatch]:
        parts = (self.pending + data).split(b"\n")
        self.pending = parts.pop()  # b"" when data ended on a newline
        if len(self.pending) > self.max_line_bytes:
            raise InputError(
                f"a line is longer than {self.max_line_bytes} bytes",
                file=self.path,
                line=self.lines_read + len(parts) + 1,
                hint="is this a logger text file? binary files cannot be followed",
            )
        for i in range(0, len(parts), self.max_lines):
            yield self._emit(parts[i : i + self.max_lines])

    def _emit(self, raw: Sequence[bytes]) -> LineBatch:
        first = self.lines_read + 1
        self.lines_read += len(raw)
        return LineBatch(first, tuple(_decode(b) for b in raw))


def _decode(raw: bytes) -> str:
    raw = raw.rstrip(b"\r")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # old loggers write a Latin-1 degree sign


# ------------------------------------------------------------------------------ parsing
@dataclass(frozen=True)
class ReadingsChunk:
    """Readings parsed from a batch of lines, over the fixed sensor list of the parser.

    Shapes: (n,) each. `time_ns` is UTC nanoseconds since the epoch; `column` indexes the
    parser's `sensor_ids`; `good` is False for missing or non-finite values.
    """

    time_ns: np.ndarray  # (n,) int64
    column: np.ndarray  # (n,) int64
    value: np.ndarray  # (n,) float64
    good: np.ndarray  # (n,) bool

    def __len__(self) -> int:
        return int(self.time_ns.shape[0])

    @staticmethod
    def empty() -> ReadingsChunk:
        return ReadingsChunk(
            np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0, bool)
        )


@dataclass
class StreamStats:
    """Counters of everything that did not become a good reading (mutable, reported)."""

    lines: int = 0
    readings: int = 0
    missing: int = 0
    non_finite: int = 0
    bad_lines: int = 0
    late: int = 0
    future: int = 0  # bad lines whose time lies beyond `max_ahead` of the clock
    duplicates: int = 0  # a sensor's reading repeated at the same time (same value): dropped
    conflicts: int = 0  # a sensor's second, different value at the same time: not applied
    unknown_sensors: dict[str, int] = field(default_factory=dict)
    # the model's sensors without a good reading so far (their scores stay empty)
    absent_sensors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "lines": self.lines,
            "readings": self.readings,
            "missing": self.missing,
            "non_finite": self.non_finite,
            "bad_lines": self.bad_lines,
            "late": self.late,
            "future": self.future,
            "duplicates": self.duplicates,
            "conflicts": self.conflicts,
            "unknown_sensors": dict(self.unknown_sensors),
            "absent_sensors": list(self.absent_sensors),
        }


class StreamParser:
    """Parse batches of lines of one file into `ReadingsChunk` over `sensor_ids`.

    The format (``auto`` | ``long`` | ``wide`` | ``toa5``) is decided from the header.
    Naive timestamps are read in `tz` and converted to UTC. With ``strict=True`` a line that
    cannot be parsed raises `InputError` naming file, line and column; otherwise it is
    counted in `stats.bad_lines` and logged (a gateway must outlive one garbled line).
    """

    def __init__(
        self,
        sensor_ids: Sequence[str],
        *,
        file: str | Path,
        fmt: str = "auto",
        tz: str = "UTC",
        sep: str | None = None,
        time_col: str | None = None,
        strict: bool = True,
        max_ahead: pd.Timedelta | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if fmt not in ("auto", "long", "wide", "toa5"):
            raise InputError(f"unknown format {fmt!r}", hint="use auto, long, wide or toa5")
        self.sensor_ids = list(sensor_ids)
        self.col_of = {s: i for i, s in enumerate(self.sensor_ids)}
        self.file = str(file)
        self.fmt = fmt
        self.tz = tz
        self.sep = sep
        self.time_col = time_col
        self.strict = strict
        self.max_ahead = None if max_ahead is None else pd.Timedelta(max_ahead)
        self.clock = clock  # seconds since the epoch (UTC), as time.time
        self._given = (fmt, sep)  # as asked: a new file's header decides them again
        self.stats = StreamStats(absent_sensors=list(self.sensor_ids))
        self._seen = np.zeros(len(self.sensor_ids), dtype=bool)  # (C,) a good reading parsed
        self.header: list[str] | None = None
        self._header_lines: list[str] = []
        self._header_size = 1
        self._prev_utc: int | None = None
        self._aware: bool | None = None  # whether times carry an offset (first data row)
        self._time_fmt: str | None = None  # the naive time format, decided once (not ISO 8601)

    # --- header
    def _restart(self) -> None:
        """Forget the header: the lines that follow are a new file (`LineFollower` read a
        truncated or replaced file again from its start), whose columns may differ."""
        log.info("%s: a new file: reading its header again", self.file)
        self.fmt, self.sep = self._given
        self.header = None
        self._header_lines = []
        self._header_size = 1
        self._aware = None
        self._time_fmt = None

    def _is_header(self, line: str) -> bool:
        """Whether `line`, the first of a re-read file, is a header (not a data row): a TOA5
        file line, a long table's column names, or a line naming a column of the old header,
        a sensor of the model or a time column (a data row holds times and numbers)."""
        text = line.lstrip("\ufeff")
        if text.startswith('"TOA5"') or text.startswith("TOA5,"):
            return True
        names = {c.strip().strip('"') for c in next(csv.reader([text], delimiter=self.sep or ","))}
        lower = {n.lower() for n in names}
        if {"timestamp", "sensor_id", "value"} <= lower:
            return True
        if self.fmt == "long":
            return False
        known = set(self.header or ()) | set(self.sensor_ids)
        return bool(names & known) or bool(lower & set(TIME_NAMES))

    def _take_header(self, batch: LineBatch) -> LineBatch | None:
        """Consume header lines; return what is left of `batch` once the header is complete."""
        lines = list(batch.lines)
        first = batch.first_line
        while lines and self.header is None:
            line = lines.pop(0)
            first += 1
            if not self._header_lines and not line.strip():
                continue
            self._header_lines.append(line)
            if len(self._header_lines) == 1:
                self._decide_format(line)
            if len(self._header_lines) >= self._header_size:
                self._set_header()
        if self.header is None:
            return None
        return LineBatch(first, tuple(lines))

    def _decide_format(self, line: str) -> None:
        text = line.lstrip("\ufeff")
        if self.fmt == "auto":
            if text.startswith('"TOA5"') or text.startswith("TOA5,"):
                self.fmt = "toa5"
            else:
                names = {c.strip().strip('"').lower() for c in self._split(text)}
                self.fmt = "long" if {"timestamp", "sensor_id", "value"} <= names else "wide"
        if self.fmt == "toa5":
            self._header_size = 4  # file info, field names, units, processing
            self.sep = ","

    def _split(self, line: str) -> list[str]:
        if self.sep is None:
            self.sep = "\t" if "\t" in line else (";" if line.count(";") > line.count(",") else ",")
        return next(csv.reader([line], delimiter=self.sep))

    def _set_header(self) -> None:
        names_line = self._header_lines[1] if self.fmt == "toa5" else self._header_lines[0]
        header = [c.strip().lstrip("\ufeff") for c in self._split(names_line)]
        self.header = header
        lower = [h.lower() for h in header]
        if self.fmt == "long":
            for need in ("timestamp", "sensor_id", "value"):
                if need not in lower:
                    raise InputError(
                        f"long table without a {need!r} column",
                        file=self.file,
                        line=1,
                        hint="expected timestamp,sensor_id,value[,quality,source]",
                    )
            self._time_idx = lower.index("timestamp")
            return
        if self.time_col is not None:
            if self.time_col not in header:
                raise InputError(
                    f"no time column {self.time_col!r}",
                    file=self.file,
                    line=2 if self.fmt == "toa5" else 1,
                    hint="columns are " + ", ".join(header[:12]),
                )
            self._time_idx = header.index(self.time_col)
        else:
            hits = [i for i, h in enumerate(lower) if h in TIME_NAMES]
            self._time_idx = hits[0] if hits else 0
        self._value_idx = [
            i for i, h in enumerate(header) if i != self._time_idx and h not in TOA5_SKIP_COLUMNS
        ]
        known = 0
        for i in self._value_idx:
            if header[i] in self.col_of:
                known += 1
            else:
                self.stats.unknown_sensors.setdefault(header[i], 0)  # kept across files
                log.warning(
                    "%s: column %r is not a sensor of the model: ignored", self.file, header[i]
                )
        if known == 0:
            raise InputError(
                "no column of this file names a sensor of the exported model",
                file=self.file,
                line=2 if self.fmt == "toa5" else 1,
                hint="the model knows " + ", ".join(self.sensor_ids[:12]),
            )

    # --- rows
    def parse(self, batch: LineBatch) -> ReadingsChunk:
        """Readings of the complete lines in `batch` (header lines are consumed first).

        A batch that starts at line 1 once the header is read starts a new file (the
        follower re-reads a truncated or rotated file): its header is read again when it
        opens with one; a file truncated in place and appended to keeps the old one."""
        if self.header is not None and batch.first_line == 1:
            top = next((ln for ln in batch.lines if ln.strip()), None)
            if top is not None and self._is_header(top):
                self._restart()
        if self.header is None:
            rest = self._take_header(batch)
            if rest is None or not rest.lines:
                return ReadingsChunk.empty()
            batch = rest
        lines = list(batch.lines)
        if not lines:
            return ReadingsChunk.empty()
        self.stats.lines += len(lines)
        table = self._table(lines, batch.first_line)
        if table is None:
            return ReadingsChunk.empty()
        rows, line_no = table
        chunk = self._long(rows, line_no) if self.fmt == "long" else self._wide(rows, line_no)
        self._note_seen(chunk)
        return chunk

    def _note_seen(self, chunk: ReadingsChunk) -> None:
        """Mark the sensors `chunk` has a good reading of; `stats.absent_sensors` lists the
        others."""
        cols = np.unique(chunk.column[chunk.good])
        if cols.size and not self._seen[cols].all():
            self._seen[cols] = True
            self.stats.absent_sensors = [
                s for s, seen in zip(self.sensor_ids, self._seen, strict=True) if not seen
            ]

    def _table(self, lines: list[str], first: int) -> tuple[list[list[str]], np.ndarray] | None:
        assert self.header is not None
        width = len(self.header)
        rows: list[list[str]] = []
        numbers: list[int] = []
        for k, row in enumerate(csv.reader(lines, delimiter=self.sep or ",")):
            n = first + k
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
            if len(row) != width:
                self._bad(n, None, f"{len(row)} fields where the header has {width}")
                continue
            rows.append(row)
            numbers.append(n)
        if not rows:
            return None
        return rows, np.asarray(numbers, dtype=np.int64)

    def _bad(self, line: int, column: str | None, message: str) -> None:
        if self.strict:
            raise InputError(
                message,
                file=self.file,
                line=line,
                column=column,
                hint="fix or remove the line",
            )
        self.stats.bad_lines += 1
        log.warning("%s:%d: %s: line skipped (counted)", self.file, line, message)

    def _times(self, text: list[str], line_no: np.ndarray, column: str) -> np.ndarray:
        """UTC ns (n,) int64; a time that cannot be read is a bad line (-1 there).

        ISO 8601 is parsed vectorised; anything else falls back to pandas' per-row parser.
        Whether times carry an offset is decided by the first data row; a later row that
        differs is a bad line (a naive time among offset times is ambiguous).
        """
        s = pd.Series(text, dtype=object).astype(str).str.strip()
        aware = s.str.contains(_OFFSET_RE).to_numpy(dtype=bool)
        if self._aware is None:
            self._aware = bool(aware[0])
        out = np.full(len(text), -1, dtype=np.int64)
        same = aware == self._aware
        for i in np.flatnonzero(~same):
            self._bad(
                int(line_no[i]),
                column,
                f"time {text[i]!r} {'lacks' if self._aware else 'has'} an offset, unlike the "
                "file's first time",
            )
        idx = np.flatnonzero(same)
        if idx.size == 0:
            return out
        sub = s.iloc[idx]
        ts = pd.to_datetime(sub, format="ISO8601", errors="coerce", utc=self._aware)
        retry = ts.isna().to_numpy()
        if retry.any() and not self._aware:
            # not ISO 8601: one format for the file, chosen from the first such rows as
            # `geojepa ingest` and `geojepa-edge score` choose it (day- or month-first by
            # the data), never guessed row by row
            if self._time_fmt is None:
                self._time_fmt = naive_format(sub[retry].tolist())
            if self._time_fmt is not None:
                ts[retry] = pd.to_datetime(sub[retry], format=self._time_fmt, errors="coerce")
        elif retry.any():  # offset times not in ISO 8601: the per-row parser
            ts[retry] = pd.to_datetime(sub[retry], format="mixed", errors="coerce", utc=True)
        bad = ts.isna().to_numpy()
        for i in np.flatnonzero(bad):
            self._bad(int(line_no[idx[i]]), column, f"cannot read time {text[idx[i]]!r}")
        ok = idx[~bad]
        good = ts[~bad]
        if self._aware:
            out[ok] = good.dt.tz_localize(None).to_numpy("datetime64[ns]").view(np.int64)
        else:
            local = self._localize(pd.DatetimeIndex(good))
            skipped = local == NAT_NS  # in a daylight-saving gap: a time the clock never showed
            for i in np.flatnonzero(skipped):
                self._bad(
                    int(line_no[ok[i]]),
                    column,
                    f"time {text[ok[i]]!r} does not exist in {self.tz} (a daylight-saving gap)",
                )
            out[ok] = np.where(skipped, -1, local)
        if self.max_ahead is not None:
            self._refuse_future(out, text, line_no, column)
        return out

    def _refuse_future(
        self, out: np.ndarray, text: list[str], line_no: np.ndarray, column: str
    ) -> None:
        """Times beyond clock + max_ahead become bad lines (-1 in `out`, in place)."""
        assert self.max_ahead is not None
        now = pd.Timestamp(int(self.clock() * 1e9), unit="ns", tz="UTC")
        limit = now.value + self.max_ahead.value
        for i in np.flatnonzero(out > limit):
            ahead = pd.Timedelta(int(out[i]) - now.value, unit="ns").round("1s")
            self.stats.future += 1
            self._bad(
                int(line_no[i]),
                column,
                f"time {text[i]!r} is {ahead} ahead of this machine's clock "
                f"({now.isoformat(timespec='seconds')}; more than --max-ahead "
                f"{self.max_ahead}): a logger clock error, or set the clock / --max-ahead",
            )
            out[i] = -1

    def _localize(self, naive: pd.DatetimeIndex) -> np.ndarray:
        """Naive local times -> UTC ns. In a repeated daylight-saving hour, time order decides;
        a time in a daylight-saving gap (it never existed there) is `NAT_NS`."""
        if self.tz.upper() == "UTC":
            return naive.to_numpy("datetime64[ns]").view(np.int64)
        first = naive.tz_localize(self.tz, ambiguous=np.ones(len(naive), bool), nonexistent="NaT")
        second = naive.tz_localize(self.tz, ambiguous=np.zeros(len(naive), bool), nonexistent="NaT")
        a = first.tz_convert("UTC").tz_localize(None).to_numpy("datetime64[ns]").view(np.int64)
        b = second.tz_convert("UTC").tz_localize(None).to_numpy("datetime64[ns]").view(np.int64)
        out = a.copy()
        prev = self._prev_utc
        for i in range(len(out)):
            if out[i] == NAT_NS:
                continue  # no time: it cannot order the next one
            if a[i] != b[i] and prev is not None and a[i] <= prev:
                out[i] = b[i]  # the clock went back: this is the second pass of the hour
            prev = int(out[i])
        self._prev_utc = prev
        return out

    def _values(
        self, text: np.ndarray, line_no: np.ndarray, column: str
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(value float64 (n,), good bool (n,), parsed bool (n,)) from cell texts."""
        low = np.char.lower(np.char.strip(text.astype(str)))
        missing = np.isin(low, list(MISSING_TEXT))
        nonfin = np.isin(low, list(NON_FINITE_TEXT))
        value = pd.to_numeric(pd.Series(low), errors="coerce").to_numpy(np.float64)
        unparsed = np.isnan(value) & ~missing & ~nonfin
        for i in np.flatnonzero(unparsed):
            self._bad(int(line_no[i]), column, f"cannot read number {str(text[i])!r}")
        good = np.isfinite(value) & ~unparsed
        self.stats.missing += int(missing.sum())
        self.stats.non_finite += int((nonfin | (~np.isfinite(value) & ~missing & ~unparsed)).sum())
        return value, good, ~unparsed

    def _long(self, rows: list[list[str]], line_no: np.ndarray) -> ReadingsChunk:
        assert self.header is not None
        lower = [h.lower() for h in self.header]
        arr = np.asarray(rows, dtype=object)
        t = self._times(list(arr[:, self._time_idx]), line_no, "timestamp")
        sid = arr[:, lower.index("sensor_id")].astype(str)
        value, good, parsed = self._values(arr[:, lower.index("value")], line_no, "value")
        if "quality" in lower:
            q = np.char.lower(arr[:, lower.index("quality")].astype(str))
            good &= (q != "missing") & (q != "non_finite")
        col = np.array([self.col_of.get(s, -1) for s in sid], dtype=np.int64)
        for s in np.unique(sid[col < 0]):
            if s not in self.stats.unknown_sensors:
                log.warning("%s: sensor %r is not a sensor of the model: ignored", self.file, s)
            self.stats.unknown_sensors[s] = self.stats.unknown_sensors.get(s, 0) + int(
                (sid == s).sum()
            )
        keep = (col >= 0) & (t >= 0) & parsed
        self.stats.readings += int(keep.sum())
        return ReadingsChunk(t[keep], col[keep], value[keep], good[keep])

    def _wide(self, rows: list[list[str]], line_no: np.ndarray) -> ReadingsChunk:
        assert self.header is not None
        arr = np.asarray(rows, dtype=object)
        t = self._times(list(arr[:, self._time_idx]), line_no, self.header[self._time_idx])
        row_ok = t >= 0
        cols: list[int] = []
        values: list[np.ndarray] = []
        goods: list[np.ndarray] = []
        keeps: list[np.ndarray] = []
        for i in self._value_idx:
            name = self.header[i]
            c = self.col_of.get(name)
            if c is None:
                self.stats.unknown_sensors[name] += int(row_ok.sum())
                continue
            value, good, parsed = self._values(arr[:, i], line_no, name)
            cols.append(c)
            values.append(value)
            goods.append(good)
            keeps.append(row_ok & parsed)
        if not cols:
            return ReadingsChunk.empty()
        # (n, k) -> row-major ravel: readings stay in line order, as they arrived
        keep = np.stack(keeps, axis=1).ravel()
        k = len(cols)
        out = ReadingsChunk(
            np.repeat(t, k)[keep],
            np.tile(np.asarray(cols, np.int64), len(t))[keep],
            np.stack(values, axis=1).ravel()[keep],
            np.stack(goods, axis=1).ravel()[keep],
        )
        self.stats.readings += len(out)
        return out


# ------------------------------------------------------------------------------ grid
class GridRing:
    """The last `length` cells of a regular grid over `n_sensors` sensors.

    A reading at UTC time t falls in cell ``k = floor(t / interval)`` (cell time k*interval,
    the rule `to_frame` uses); several readings in one cell are averaged. A sensor's reading
    repeated at the same time is applied once: with the same value it is a re-sent line
    (`stats.duplicates`), with another value a conflict (`stats.conflicts`, logged; the first
    value stands, where `geojepa ingest` refuses the file). A cell is CLOSED
    once a reading for a later cell arrives (or `close_through` is called); `add` yields
    the closed cells in order, gaps included. Readings for a closed cell are late: counted
    in `stats.late`, never applied (a score already reported cannot change).
    """

    def __init__(
        self,
        n_sensors: int,
        interval: pd.Timedelta,
        length: int,
        stats: StreamStats | None = None,
    ) -> None:
        if length < 1:
            raise ValueError("length must be >= 1")
        self.n_sensors = n_sensors
        self.interval_ns = int(pd.Timedelta(interval).value)
        self.length = length
        self.stats = stats if stats is not None else StreamStats()
        self.sums = np.zeros((length, n_sensors), np.float64)  # (L, C) ring
        self.counts = np.zeros((length, n_sensors), np.int32)  # (L, C) ring
        self.current: int | None = None  # newest open cell
        self.first: int | None = None  # first cell ever seen
        self.last_ns = np.full(n_sensors, np.iinfo(np.int64).min)  # (C,) newest reading time
        self.last_value = np.zeros(n_sensors)  # (C,) the first value given at that time

    def cell_of(self, time_ns: np.ndarray) -> np.ndarray:
        return np.floor_divide(time_ns, self.interval_ns)

    def add(self, chunk: ReadingsChunk) -> Iterator[int]:
        """Apply readings in arrival order, yielding each cell as it closes (ascending).

        A generator: consume it fully. While it is suspended at cell k, `frame(k)` holds
        that cell's window exactly; advancing clears the ring slot the next cell reuses.
        """
        if len(chunk) == 0:
            return
        chunk = self._drop_repeats(chunk)
        if len(chunk) == 0:  # every reading repeated one already given
            return
        cells = self.cell_of(chunk.time_ns)
        # split the chunk where the running maximum cell increases: readings are applied
        # in order, so a reading is late exactly when an earlier one moved past its cell
        running = np.maximum.accumulate(cells)
        if self.current is not None:
            running = np.maximum(running, self.current)
        rises = np.flatnonzero(np.diff(running) > 0) + 1
        bounds = [0, *rises.tolist(), len(cells)]
        for a, b in itertools.pairwise(bounds):
            top = int(running[a])
            if self.current is None:
                self.current = self.first = top
            elif top > self.current:
                yield from self._advance(top)
            seg = slice(a, b)
            self._apply(cells[seg], chunk.column[seg], chunk.value[seg], chunk.good[seg])

    def _drop_repeats(self, chunk: ReadingsChunk) -> ReadingsChunk:
        """`chunk` without the good readings that repeat a (sensor, time) already given, in
        this chunk or as a sensor's newest reading before it; counted and logged."""
        t, col, val, good = chunk.time_ns, chunk.column, chunk.value, chunk.good
        n = len(chunk)
        order = np.lexsort((np.arange(n), t, col, ~good))  # good first; by sensor, time, arrival
        same = np.zeros(n, dtype=bool)  # (n,) in sorted order: repeats its predecessor
        same[1:] = (col[order][1:] == col[order][:-1]) & (t[order][1:] == t[order][:-1])
        same &= good[order]
        run = np.cumsum(~same) - 1  # (n,) sorted: which run of equal (sensor, time) keys
        first = order[~same][run]  # the arrival index of each run's first reading
        repeat = np.zeros(n, dtype=bool)
        repeat[order] = same
        first_of = np.empty(n, dtype=np.int64)
        first_of[order] = first
        earlier = good & (t == self.last_ns[col])  # the newest reading of an earlier chunk
        repeat |= earlier
        ref = np.where(earlier, self.last_value[col], val[first_of])  # (n,) the value standing
        conflict = repeat & (val != ref)
        n_conf = int(conflict.sum())
        self.stats.duplicates += int((repeat & ~conflict).sum())
        if n_conf:
            self.stats.conflicts += n_conf
            i = int(np.flatnonzero(conflict)[0])
            log.warning(
                "%d reading(s) gave a sensor a second, different value for a time it already "
                "had (first: column %d, value %r against %r): the first value stands (counted)",
                n_conf,
                int(col[i]),
                float(val[i]),
                float(ref[i]),
            )
        keep = ~repeat
        kept = ReadingsChunk(t[keep], col[keep], val[keep], good[keep])
        use = kept.good
        if use.any():  # each sensor's newest time in this chunk (unique now), with its value
            c_u, t_u, v_u = kept.column[use], kept.time_ns[use], kept.value[use]
            newest = np.lexsort((t_u, c_u))  # by sensor, then time: each sensor's last is newest
            last = np.ones(len(newest), dtype=bool)
            last[:-1] = c_u[newest][1:] != c_u[newest][:-1]
            pick = newest[last]
            newer = t_u[pick] > self.last_ns[c_u[pick]]
            self.last_ns[c_u[pick][newer]] = t_u[pick][newer]
            self.last_value[c_u[pick][newer]] = v_u[pick][newer]
        return kept

    def _apply(self, cells: np.ndarray, col: np.ndarray, val: np.ndarray, good: np.ndarray) -> None:
        assert self.current is not None
        late = cells < self.current
        n_late = int(late.sum())
        if n_late:
            self.stats.late += n_late
            log.warning(
                "%d reading(s) arrived for cells already scored: counted as late (watch reads"
                " a file in time order; score a whole file sorted otherwise, e.g. by sensor as"
                " `geojepa readings` writes it, with `geojepa-edge score`)",
                n_late,
            )
        use = ~late & good
        slot = np.mod(cells[use], self.length)
        np.add.at(self.sums, (slot, col[use]), val[use])
        np.add.at(self.counts, (slot, col[use]), 1)

    def _advance(self, top: int) -> Iterator[int]:
        """Close cells current .. top-1 one by one, yielding each before moving past it."""
        assert self.current is not None
        while self.current < top:
            yield self.current
            self.current += 1
            slot = self.current % self.length
            self.sums[slot] = 0.0
            self.counts[slot] = 0

    def close_through(self, cell: int) -> Iterator[int]:
        """Close every open cell up to and including `cell` (end of a finite file)."""
        if self.current is None or cell < self.current:
            return
        yield from self._advance(cell + 1)

    def frame(self, end_cell: int, sensors: pd.DataFrame, interval: pd.Timedelta) -> SensorFrame:
        """The `length` cells ending at `end_cell` (inclusive) as a `SensorFrame`.

        Cells before the first reading, or older than the ring, are unobserved.
        """
        assert self.current is not None and self.first is not None
        if end_cell > self.current or end_cell <= self.current - self.length:
            raise ValueError(f"cell {end_cell} is not in the ring")
        cells = np.arange(end_cell - self.length + 1, end_cell + 1)  # (L,)
        slot = np.mod(cells, self.length)
        inside = (cells >= self.first) & (cells > self.current - self.length)
        counts = np.where(inside[:, None], self.counts[slot], 0)  # (L, C)
        observed = counts > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            values = (self.sums[slot] / counts).astype(np.float32)
        values[~observed] = np.nan
        time = (cells * self.interval_ns).astype("datetime64[ns]")
        return SensorFrame(
            values=values,
            observed=observed,
            time=time,
            sensors=sensors,
            interval=pd.Timedelta(interval),
            counts=counts.astype(np.int32),
        )
