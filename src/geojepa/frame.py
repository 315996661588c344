"""A site on a regular time grid: the array view every model and detector uses.

`SensorFrame` holds values (T, C) float32, an observed mask (T, C) bool and the grid
times (T,) as UTC datetime64[ns]. Cells without a usable reading are NaN in `values`
and False in `observed`: nothing is interpolated. Several readings in one cell are
averaged (their count is kept in `counts`).

Guarantees: the grid is regular (`time[i] = start + i * interval`); column order is
the order of `sensors`; `values[observed]` is finite.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from geojepa.errors import InputError
from geojepa.site import Quality, Site

NICE_INTERVALS: tuple[pd.Timedelta, ...] = tuple(
    pd.Timedelta(s)
    for s in (
        "1s",
        "10s",
        "30s",
        "1min",
        "2min",
        "5min",
        "10min",
        "15min",
        "30min",
        "1h",
        "2h",
        "3h",
        "6h",
        "12h",
        "1D",
        "2D",
        "7D",
        "14D",
        "30D",
    )
)


@dataclass(frozen=True)
class SensorFrame:
    """Regular-grid view of a site. Shapes: values (T, C), observed (T, C), time (T,)."""

    values: np.ndarray  # (T, C) float32, NaN where not observed
    observed: np.ndarray  # (T, C) bool
    time: np.ndarray  # (T,) datetime64[ns], UTC
    sensors: pd.DataFrame  # C rows: id, kind, unit, x, y, z, group, meta
    interval: pd.Timedelta
    counts: np.ndarray | None = None  # (T, C) int32 readings averaged per cell

    def __post_init__(self) -> None:
        t, c = self.values.shape
        if self.observed.shape != (t, c) or self.time.shape != (t,) or len(self.sensors) != c:
            raise ValueError(
                f"inconsistent SensorFrame shapes: values {self.values.shape}, "
                f"observed {self.observed.shape}, time {self.time.shape}, sensors {len(self.sensors)}"
            )

    @property
    def n_times(self) -> int:
        return int(self.values.shape[0])

    @property
    def n_sensors(self) -> int:
        return int(self.values.shape[1])

    @property
    def sensor_ids(self) -> list[str]:
        return [str(s) for s in self.sensors["id"]]

    def times(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(self.time).tz_localize("UTC")

    def column(self, sensor_id: str) -> int:
        ids = self.sensor_ids
        if sensor_id not in ids:
            raise InputError(
                f"no sensor {sensor_id!r} in this site",
                hint="known sensors: " + ", ".join(ids[:20]) + (" ..." if len(ids) > 20 else ""),
            )
        return ids.index(sensor_id)

    def slice_time(self, start: int, stop: int) -> SensorFrame:
        return SensorFrame(
            values=self.values[start:stop],
            observed=self.observed[start:stop],
            time=self.time[start:stop],
            sensors=self.sensors,
            interval=self.interval,
            counts=None if self.counts is None else self.counts[start:stop],
        )

    def index_of(self, when: pd.Timestamp | str) -> int:
        """Index of the first grid time at or after `when`."""
        ts = _utc(when).tz_localize(None).to_datetime64()
        return int(np.searchsorted(self.time, ts, side="left"))

    def missing_fraction(self) -> float:
        return float(1.0 - self.observed.mean()) if self.observed.size else 1.0


def _utc(when: pd.Timestamp | str) -> pd.Timestamp:
    t = pd.Timestamp(when)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def nice_interval(raw: pd.Timedelta) -> pd.Timedelta:
    """Round an interval to the nearest common logger interval (on a log scale)."""
    if raw <= pd.Timedelta(0):
        return NICE_INTERVALS[0]
    secs = np.array([i.total_seconds() for i in NICE_INTERVALS])
    k = int(np.argmin(np.abs(np.log(secs) - np.log(raw.total_seconds()))))
    return NICE_INTERVALS[k]


def infer_interval(readings: pd.DataFrame) -> pd.Timedelta:
    """Grid interval from data: the finest per-sensor median spacing, rounded to a nice value.

    Sensors read more sparsely (manual campaigns, daily GNSS) then appear on the finer grid
    as mostly unobserved cells, which is what they are.
    """
    if readings.empty:
        raise InputError("the site has no readings", hint="ingest logger files first")
    medians = []
    for _, ts in readings.groupby("sensor_id", sort=False, observed=True)["timestamp"]:
        v = ts.to_numpy(dtype="datetime64[ns]").astype(np.int64)
        if len(v) >= 2:
            d = np.diff(v)
            if (d < 0).any():  # a site keeps each sensor's times sorted; other tables may not
                d = np.diff(np.sort(v))
            d = d[d > 0]
            if len(d):
                medians.append(float(np.median(d)))
    if not medians:
        return pd.Timedelta("1D")
    return nice_interval(pd.Timedelta(int(min(medians)), unit="ns"))


def to_frame(
    site: Site,
    interval: pd.Timedelta | str | None = None,
    start: pd.Timestamp | str | None = None,
    end: pd.Timestamp | str | None = None,
    sensor_ids: list[str] | None = None,
) -> SensorFrame:
    """Put `site` on a regular grid of `interval` (inferred when None).

    The grid starts at the first reading's time floored to the interval (or `start`), ends
    at the last reading (or before `end`, exclusive). Readings flagged missing/non-finite
    never make a cell observed.
    """
    readings = site.readings
    sensors = site.sensors
    if sensor_ids is not None:
        sensors = sensors.set_index("id").loc[sensor_ids].reset_index()
        readings = readings[readings["sensor_id"].isin(sensor_ids)]
    if readings.empty:
        raise InputError(f"site {site.name!r} has no readings in range", hint="check --from/--to")
    step = pd.Timedelta(interval) if interval is not None else infer_interval(readings)
    ts = readings["timestamp"]
    t0 = _utc(start) if start is not None else ts.min().floor(step)
    t_last = ts.max()
    if end is not None:
        t_end = _utc(end)
    else:
        t_end = t_last + step
    n_t = max(int(np.ceil((t_end - t0) / step)), 0)
    ids = [str(s) for s in sensors["id"]]
    ns = ts.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]").astype(np.int64)
    t0_ns = t0.tz_localize(None).to_datetime64().astype("datetime64[ns]").astype(np.int64)
    row = (ns - t0_ns) // step.value
    col = pd.Index(ids).get_indexer(pd.Index(readings["sensor_id"])).astype(np.int64)
    val = readings["value"].to_numpy(dtype=np.float64)
    bad_q = readings["quality"].isin([Quality.MISSING.value, Quality.NON_FINITE.value])
    good = np.isfinite(val) & ~bad_q.to_numpy(dtype=bool)
    good &= (row >= 0) & (row < n_t)
    c = len(ids)
    flat = row[good] * c + col[good]
    sums = np.bincount(flat, weights=val[good], minlength=n_t * c)
    counts = np.bincount(flat, minlength=n_t * c).astype(np.int32)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = (sums / counts).astype(np.float32).reshape(n_t, c)
    counts = counts.reshape(n_t, c)
    observed = counts > 0
    values[~observed] = np.nan
    time = pd.date_range(t0.tz_localize(None), periods=n_t, freq=step).to_numpy(
        dtype="datetime64[ns]"
    )
    return SensorFrame(
        values=values,
        observed=observed,
        time=time,
        sensors=sensors.reset_index(drop=True),
        interval=step,
        counts=counts,
    )


def label_mask(site_labels: pd.DataFrame, frame: SensorFrame) -> np.ndarray:
    """Ground-truth mask (T, C) bool: True where a labelled event covers the cell.

    A cell is the interval [time, time + interval), as readings are floored onto it: an
    event covers every cell it overlaps, so one that starts between grid times covers the
    cell it starts in, and one that falls inside a single cell covers that cell. An event
    with an empty ``sensors`` field covers every sensor.
    """
    mask = np.zeros((frame.n_times, frame.n_sensors), dtype=bool)
    if site_labels is None or len(site_labels) == 0 or frame.n_times == 0:
        return mask
    ids = frame.sensor_ids
    col_of = {s: i for i, s in enumerate(ids)}
    times = frame.time
    for _, ev in site_labels.iterrows():
        start = _utc(ev["start"]).tz_localize(None).to_datetime64()
        a = max(int(np.searchsorted(times, start, "right")) - 1, 0)  # the cell holding start
        if start >= times[-1] + np.timedelta64(frame.interval):
            a = frame.n_times  # starts after the last cell: covers none
        b = np.searchsorted(times, _utc(ev["end"]).tz_localize(None).to_datetime64(), "right")
        names = [s for s in str(ev.get("sensors", "") or "").split(";") if s]
        cols = [col_of[s] for s in names if s in col_of] if names else list(range(len(ids)))
        if cols:
            mask[a:b, cols] = True
    return mask
