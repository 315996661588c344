"""What every reader returns, and the helpers that build it.

A reader turns one file into a `ReadResult`: readings in the site's long schema
(timestamp UTC, sensor_id, value, quality, source), a sensors table, a labels table, the
count of every quality flag, and the warnings a user should see.

Guarantees:

- `readings` is sorted by (sensor_id, timestamp) with no repeated (sensor_id, timestamp);
  `sensor_id`, `quality` and `source` are categoricals of str (cheap for millions of rows);
- every sensor in `readings` has a row in `sensors`; kinds are canonical (`normalise_kind`);
- a cell that is empty or ``NAN`` is kept as a NaN reading flagged ``missing``; ``INF`` is
  kept as NaN flagged ``non_finite``; nothing a file holds is dropped without being counted
  in `quality` or `warnings`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from geojepa.errors import InputError
from geojepa.io.csvcore import Lines
from geojepa.site import (
    LABEL_COLUMNS,
    Quality,
    empty_labels,
    empty_readings,
    empty_sensors,
)

QUALITY_ORDER: tuple[str, ...] = tuple(q.value for q in Quality)
_Q_CODE = {q: i for i, q in enumerate(QUALITY_ORDER)}
QUALITY_DTYPE = pd.CategoricalDtype(categories=pd.Index(QUALITY_ORDER, dtype="str"))
_UTC_NS = pd.DatetimeTZDtype("ns", "UTC")


@dataclass(frozen=True)
class ReadResult:
    """One file, read. See the module docstring for what each table guarantees."""

    readings: pd.DataFrame
    sensors: pd.DataFrame
    labels: pd.DataFrame = field(default_factory=empty_labels)
    quality: Mapping[str, int] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    source: str = ""
    path: Path | None = None
    fmt: str = ""
    n_rows: int = 0  # data rows (or records) read from the file
    # file line of the row that holds (sensor id, UTC time), where the reader knows it
    line_of: LineOf | None = field(default=None, repr=False, compare=False)

    @property
    def n_readings(self) -> int:
        return len(self.readings)

    @property
    def span(self) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        if self.readings.empty:
            return None
        ts = self.readings["timestamp"]
        return ts.min(), ts.max()


class LineOf(Protocol):
    """(sensor id, UTC time) -> 1-based line of the file row that holds it, or None."""

    def __call__(self, sensor: str, time: pd.Timestamp) -> int | None: ...


def _ns(time: pd.Timestamp) -> int:
    t = pd.Timestamp(time)
    return int((t.tz_convert("UTC") if t.tzinfo else t).as_unit("ns").value)


class TimeRowLines:
    """Line finder of files with one row per time (wide, TOA5, tabbed): any sensor's
    reading at a time lies on that time's row."""

    def __init__(self, times: np.ndarray, lines: Lines) -> None:
        self.t_ns = np.asarray(times, dtype="datetime64[ns]").astype(np.int64)  # (T,) sorted
        self.lines = lines

    def __call__(self, sensor: str, time: pd.Timestamp) -> int | None:
        v = _ns(time)
        i = int(np.searchsorted(self.t_ns, v))
        if i < len(self.t_ns) and self.t_ns[i] == v:
            return int(self.lines[i])
        return None


class KeyRowLines:
    """Line finder of files with one row per reading (long): rows sorted by sensor, time."""

    def __init__(
        self, ids: Sequence[str], sid: np.ndarray, t_ns: np.ndarray, rows: np.ndarray, lines: Lines
    ) -> None:
        self.ids = {str(s): k for k, s in enumerate(ids)}
        self.sid, self.t_ns, self.rows, self.lines = sid, t_ns, rows, lines

    def __call__(self, sensor: str, time: pd.Timestamp) -> int | None:
        k = self.ids.get(str(sensor))
        if k is None:
            return None
        lo = int(np.searchsorted(self.sid, k, side="left"))
        hi = int(np.searchsorted(self.sid, k, side="right"))
        v = _ns(time)
        j = lo + int(np.searchsorted(self.t_ns[lo:hi], v))
        if j < hi and self.t_ns[j] == v:
            return int(self.lines[int(self.rows[j])])
        return None


def quality_codes(values: np.ndarray, time_flags: np.ndarray | None = None) -> np.ndarray:
    """Quality codes (same shape as `values`) for readings: missing, non-finite, time flag, ok.

    `time_flags` holds a `Quality` value (or its int8 code) per row of `values` (first axis).
    """
    codes = np.full(values.shape, _Q_CODE[Quality.OK.value], dtype=np.int8)
    if time_flags is not None:
        tf = time_flags if time_flags.dtype == np.int8 else flag_codes(time_flags)
        if (tf != _Q_CODE[Quality.OK.value]).any():
            codes[...] = tf.reshape((-1,) + (1,) * (values.ndim - 1))
    bad = np.flatnonzero(~np.isfinite(values.reshape(-1)))  # one pass; few cells usually
    if len(bad):
        flat = codes.reshape(-1)
        v = values.reshape(-1)[bad]
        flat[bad] = np.where(
            np.isnan(v), _Q_CODE[Quality.MISSING.value], _Q_CODE[Quality.NON_FINITE.value]
        )
    return codes


def flag_codes(flags: np.ndarray) -> np.ndarray:
    """Quality values (N,) -> int8 codes (N,) (vectorised over the few distinct values)."""
    uniq, inv = np.unique(np.asarray(flags, dtype=object).astype(str), return_inverse=True)
    table = np.array([_Q_CODE[str(u)] for u in uniq], dtype=np.int8)
    return table[inv]


def code_of(flag: Quality | str) -> int:
    return _Q_CODE[str(flag.value if isinstance(flag, Quality) else flag)]


def long_from_columns(
    times: np.ndarray,
    columns: Sequence[np.ndarray] | np.ndarray,
    ids: Sequence[str],
    source: str,
    *,
    time_flags: np.ndarray | None = None,
    codes: Sequence[np.ndarray] | None = None,
) -> pd.DataFrame:
    """Long readings from a wide block: times (T,) UTC, C value columns (T,) each, ids (C,).

    Times must be strictly increasing. Rows come out sensor-major in sorted id order, so the
    table is already sorted by (sensor_id, timestamp) without a sort of T*C rows. `columns`
    may be one (C, T) array: when its ids are already sorted its memory becomes the value
    column without a copy (the caller must not change it afterwards). `codes` (per column,
    (T,) int8) overrides the quality worked out from values and `time_flags`.
    """
    t = len(times)
    c = len(columns)
    if len(set(ids)) != c:
        dup = next(i for i in ids if list(ids).count(i) > 1)
        raise InputError(f"sensor id {dup!r} appears twice in one file", hint="rename one column")
    order = sorted(range(c), key=lambda i: str(ids[i]))
    ids_sorted = [str(ids[i]) for i in order]
    if (
        isinstance(columns, np.ndarray)
        and columns.ndim == 2
        and columns.flags.c_contiguous
        and order == list(range(c))
    ):
        flat_vals = columns.reshape(-1)  # (C*T,) view, already sensor-major in sorted order
    else:
        flat_vals = np.concatenate([columns[i] for i in order]) if c else np.zeros(0)  # (C*T,)
    if codes is not None:
        q = np.concatenate([codes[i] for i in order]).astype(np.int8) if c else np.zeros(0, np.int8)
    else:
        tf = None if time_flags is None else flag_codes(time_flags)
        if tf is not None and not (tf != _Q_CODE[Quality.OK.value]).any():
            tf = None  # all rows ok: skip broadcasting T*C flags
        q = quality_codes(flat_vals, None if tf is None else np.tile(tf, c))
    if (q == _Q_CODE[Quality.NON_FINITE.value]).any():
        flat_vals = np.where(np.isinf(flat_vals), np.nan, flat_vals)
    ts = pd.DatetimeIndex(np.tile(times.astype("datetime64[ns]"), c), dtype=_UTC_NS)
    return pd.DataFrame(
        {
            "timestamp": ts,
            "sensor_id": pd.Categorical.from_codes(
                np.repeat(np.arange(c, dtype=_code_dtype(c)), t),
                dtype=pd.CategoricalDtype(pd.Index(ids_sorted, dtype="str")),
                validate=False,  # codes 0..c-1 by construction
            ),
            "value": flat_vals.astype(np.float64, copy=False),
            "quality": pd.Categorical.from_codes(q, dtype=QUALITY_DTYPE),
            "source": pd.Categorical.from_codes(
                np.zeros(t * c, dtype=np.int8),
                dtype=pd.CategoricalDtype(pd.Index([source], dtype="str")),
                validate=False,
            ),
        },
        copy=False,
    )


def _code_dtype(n: int) -> type[np.signedinteger]:
    """The int type pandas keeps for the codes of `n` categories (no later conversion)."""
    if n < 2**7:
        return np.int8
    if n < 2**15:
        return np.int16
    return np.int32


def present_ids(readings: pd.DataFrame) -> set[str]:
    """The sensor ids that have readings (for categoricals: found from the codes' runs)."""
    sid = readings["sensor_id"]
    if isinstance(sid.dtype, pd.CategoricalDtype):
        cats = sid.cat.categories
        return {str(cats[k]) for k in used_codes(sid.cat.codes.to_numpy())}
    return set(map(str, sid.unique()))


def used_codes(codes: np.ndarray) -> np.ndarray:
    """The distinct non-negative values of `codes` (N,), sorted.

    Reads one value per run of equal neighbours, so a table sorted by sensor costs one
    comparison pass (no N-long int64 copy); any order gives the right answer.
    """
    if len(codes) == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(codes[1:] != codes[:-1]) + 1
    runs = np.concatenate((codes[:1], codes[starts]))
    u = np.unique(runs)
    return u[u >= 0]


def as_categorical_readings(df: pd.DataFrame) -> pd.DataFrame:
    """A long readings table with sensor_id/quality/source as categoricals, sorted, unique keys."""
    if df.empty:
        return empty_readings()
    out = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(df["timestamp"], utc=True).astype("datetime64[ns, UTC]"),
            "sensor_id": _cat(df["sensor_id"]),
            "value": pd.to_numeric(df["value"]).astype("float64"),
            "quality": df["quality"]
            if isinstance(df["quality"].dtype, pd.CategoricalDtype)
            and list(df["quality"].cat.categories) == list(QUALITY_DTYPE.categories)
            else df["quality"].astype("str").astype(QUALITY_DTYPE),
            "source": _cat(df["source"]),
        }
    )
    return out.sort_values(["sensor_id", "timestamp"], kind="stable", ignore_index=True)


def _cat(s: pd.Series) -> pd.Series:
    if isinstance(s.dtype, pd.CategoricalDtype):
        cats = s.cat.categories
        return s.cat.reorder_categories(sorted(cats)) if not cats.is_monotonic_increasing else s
    values = s.astype("str")
    return values.astype(pd.CategoricalDtype(pd.Index(sorted(values.unique()), dtype="str")))


def count_quality(readings: pd.DataFrame) -> dict[str, int]:
    """Counts of every flag present (``ok`` included), in `Quality` order."""
    if readings.empty:
        return {}
    q = readings["quality"]
    if isinstance(q.dtype, pd.CategoricalDtype):
        codes = q.cat.codes.to_numpy()
        other = codes != 0  # most readings carry the first flag (ok): count the rest only
        counts = np.bincount(codes[other], minlength=len(q.cat.categories))
        counts[0] = len(codes) - int(np.count_nonzero(other))
        got = {str(k): int(v) for k, v in zip(q.cat.categories, counts, strict=True) if v}
    else:
        got = {str(k): int(v) for k, v in q.value_counts().items()}
    return {k: got[k] for k in QUALITY_ORDER if k in got} | {
        k: v for k, v in got.items() if k not in QUALITY_ORDER
    }


def labels_from_columns(
    times: np.ndarray,
    columns: Mapping[str, np.ndarray],
    *,
    file: Path,
    lines: Lines,
    source: str,
) -> pd.DataFrame:
    """Label rows from 0/1 columns: each run of 1 becomes (start, end, kind=column name).

    `columns` maps a column name to its raw text or numbers (T,); anything but 0/1 raises.
    """
    rows: list[dict[str, object]] = []
    for name, raw in columns.items():
        v = _label_values(raw, name, file=file, lines=lines)
        if not v.any():
            continue
        edges = np.diff(np.concatenate(([0], v.astype(np.int8), [0])))
        starts = np.flatnonzero(edges == 1)
        ends = np.flatnonzero(edges == -1) - 1
        for a, b in zip(starts, ends, strict=True):
            rows.append(
                {
                    "start": pd.Timestamp(times[a]).tz_localize("UTC"),
                    "end": pd.Timestamp(times[b]).tz_localize("UTC"),
                    "kind": name,
                    "sensors": "",
                    "category": "",
                    "source": source,
                }
            )
    if not rows:
        return empty_labels()
    return pd.DataFrame(rows, columns=list(LABEL_COLUMNS))


def _label_values(raw: np.ndarray, name: str, *, file: Path, lines: Lines) -> np.ndarray:
    s = pd.Series(raw, dtype="object").astype(str).str.strip()
    num = pd.to_numeric(s, errors="coerce")
    ok = num.isin([0, 1]).to_numpy()
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        raise InputError(
            f"label column {name!r} holds {s.iloc[i]!r}; labels must be 0 or 1",
            file=file,
            line=int(lines[i]),
            column=name,
            hint="mark event rows with 1 and all others with 0",
        )
    return num.to_numpy(dtype=np.float64) == 1


def sensors_for(
    ids: Sequence[str],
    *,
    units: Mapping[str, str] | None = None,
    kinds: Mapping[str, str] | None = None,
    meta: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """A sensors table for `ids` (kind ``other`` and empty unit unless given)."""
    if not len(ids):
        return empty_sensors()
    units = units or {}
    kinds = kinds or {}
    meta = meta or {}
    df = pd.DataFrame(
        {
            "id": [str(i) for i in ids],
            "kind": [kinds.get(str(i), "other") for i in ids],
            "unit": [units.get(str(i), "") for i in ids],
            "x": np.nan,
            "y": np.nan,
            "z": np.nan,
            "group": "",
            "meta": [meta.get(str(i), "{}") for i in ids],
        }
    )
    return df
