"""Tracks: one target sensor and the sensors read beside it, on a regular grid.

A learned forecaster reads more than the target's own readings: the encoder sees a
multi-sensor window (the target plus drivers such as the fill height or rain, or a whole
site). A `Track` is that view: a `SensorFrame` (T, C), the target's column, and the map
between grid rows and the forecasting clock of `geojepa.forecast.base` (days since an
origin): row ``r`` stands for time ``t0 + r * step``.

Builders:

- `series_track`: a `Series` (target + drivers) with a sensors table describing them; each
  reading at time t goes to row ``ceil((t - t0) / step)``, so every value in a row was read
  at or before that row's time (several readings in one row are averaged);
- `frame_track`: a column of an existing frame (a whole site on its grid), rows at
  ``t0 + r * step`` as the caller states.

Guarantees: `Track.cut(t)` keeps only rows whose time is at or before ``t`` (copies), so a
forecaster that cuts its track at the end of its history cannot read later rows;
`value_at` interpolates the target linearly between observed rows only (never past the
last one: NaN there), and is used for training targets, never as model input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from geojepa.forecast.base import as_history
from geojepa.forecast.evaluate import Series
from geojepa.frame import SensorFrame

EPS = 1e-9
NOMINAL_ORIGIN = pd.Timestamp("2000-01-01", tz="UTC")


@dataclass(frozen=True)
class Track:
    """A target column of a regular-grid frame, on the forecasting clock.

    frame (T, C); target: column index; row r is at time ``t0 + r * step`` days.
    """

    name: str
    frame: SensorFrame
    target: int
    t0: float
    step: float

    def __post_init__(self) -> None:
        if not 0 <= self.target < self.frame.n_sensors:
            raise ValueError(f"target column {self.target} outside 0..{self.frame.n_sensors - 1}")
        if not self.step > 0:
            raise ValueError(f"track step must be positive, got {self.step}")

    @property
    def n_rows(self) -> int:
        return self.frame.n_times

    def times(self) -> np.ndarray:
        """(T,) days of every row."""
        return self.t0 + self.step * np.arange(self.n_rows, dtype=np.float64)

    def row_of(self, t: float) -> int:
        """The last row at or before time `t` (-1 when none)."""
        return int(np.floor((t - self.t0) / self.step + EPS))

    def cut(self, t: float) -> Track:
        """The track up to and including time `t` (rows after it removed; copies)."""
        stop = max(0, min(self.row_of(t) + 1, self.n_rows))
        f = self.frame
        frame = SensorFrame(
            values=f.values[:stop].copy(),
            observed=f.observed[:stop].copy(),
            time=f.time[:stop].copy(),
            sensors=f.sensors,
            interval=f.interval,
            counts=None if f.counts is None else f.counts[:stop].copy(),
        )
        return Track(self.name, frame, self.target, self.t0, self.step)

    def target_values(self) -> np.ndarray:
        """(T,) float64 target values, NaN where not observed."""
        col = self.frame.values[:, self.target].astype(np.float64)
        return np.where(self.frame.observed[:, self.target], col, np.nan)

    def last_observed(self) -> tuple[np.ndarray, np.ndarray]:
        """Per row: the last observed target value at or before it (T,) and its row (T,)
        (NaN and -1 before the first observation)."""
        y = self.target_values()
        idx = np.where(np.isfinite(y), np.arange(y.size), -1)
        idx = np.maximum.accumulate(idx) if idx.size else idx
        vals = np.where(idx >= 0, y[np.clip(idx, 0, None)], np.nan) if y.size else y
        return vals, idx

    def value_at(self, t: np.ndarray) -> np.ndarray:
        """Target at times `t` (days), linear between observed rows; NaN outside them."""
        y = self.target_values()
        ok = np.isfinite(y)
        tt = self.times()[ok]
        out = np.full(np.shape(t), np.nan)
        if tt.size == 0:
            return out
        t = np.asarray(t, dtype=np.float64)
        inside = (t >= tt[0] - EPS) & (t <= tt[-1] + EPS)
        out[inside] = np.interp(t[inside], tt, y[ok])
        return out


def _times_of(origin: pd.Timestamp, days: np.ndarray) -> np.ndarray:
    stamps = origin + pd.to_timedelta(days, unit="D")
    return pd.DatetimeIndex(stamps).tz_convert("UTC").tz_localize(None).to_numpy("datetime64[ns]")


def series_track(
    series: Series,
    sensors: pd.DataFrame,
    step: float = 1.0,
    t0: float | None = None,
    origin: pd.Timestamp | None = None,
) -> Track:
    """A `Series` on a regular grid of `step` days starting at `t0` (default: its first time).

    `sensors` is a sensors table (columns of `geojepa.site.empty_sensors`) whose first row
    describes the target and whose other rows are the series' drivers, by ``id``; drivers
    not in the table are not read. Row r holds the mean of readings with
    ``t0 + (r-1)*step < t <= t0 + r*step`` (the first row: ``t <= t0``).
    """
    t, y, drivers = as_history(series.t, series.y, series.drivers)
    if t.size == 0:
        raise ValueError(f"series {series.name!r} is empty")
    ids = [str(s) for s in sensors["id"]]
    missing = [d for d in ids[1:] if d not in drivers]
    if missing:
        raise ValueError(f"series {series.name!r} has no driver(s) {missing}")
    start = float(t[0]) if t0 is None else float(t0)
    if np.any(t < start - EPS):
        raise ValueError("t0 is after the series' first time")
    rows = np.ceil((t - start) / step - EPS).astype(np.int64)  # (T,)
    rows = np.maximum(rows, 0)
    n = int(rows[-1]) + 1
    cols = [y, *(drivers[d] for d in ids[1:])]
    c = len(cols)
    sums = np.zeros((n, c))
    counts = np.zeros((n, c), dtype=np.int32)
    for j, v in enumerate(cols):
        ok = np.isfinite(v)
        np.add.at(sums[:, j], rows[ok], v[ok])
        np.add.at(counts[:, j], rows[ok], 1)
    observed = counts > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(observed, sums / np.maximum(counts, 1), np.nan).astype(np.float32)
    base = origin if origin is not None else (series.origin or NOMINAL_ORIGIN)
    time = _times_of(base, start + step * np.arange(n, dtype=np.float64))
    frame = SensorFrame(
        values=values,
        observed=observed,
        time=time,
        sensors=sensors.reset_index(drop=True),
        interval=pd.Timedelta(step, unit="D"),
        counts=counts,
    )
    return Track(series.name, frame, 0, start, float(step))


def frame_track(frame: SensorFrame, target: str, t0: float, name: str | None = None) -> Track:
    """Column `target` of `frame`; row r at ``t0 + r * interval`` days."""
    step = frame.interval / pd.Timedelta("1D")
    return Track(name or target, frame, frame.column(target), float(t0), float(step))
