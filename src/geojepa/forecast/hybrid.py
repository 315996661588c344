"""Classic base forecasts for hybrid heads: a learned correction of a classic forecast.

A hybrid forecaster predicts ``level + base(h) + correction(h)``: `base` is a classic
method's forecast change at horizon h from the target's last observed value, computed on
the track's rows up to the origin only; the head learns the correction (the residual of
the classic forecast, in local-scale units) and also reads the base as a feature. A head
shrunk to zero returns the classic forecast itself, so the hybrid degrades to a method
engineers already trust rather than to persistence.

Bases:

- ``linear`` (`linear_changes`): the least-squares line through the last `k` observed
  target rows at or before each origin (the `LinearTrend` classic method on the track's
  daily grid), extrapolated to ``origin time + h``, minus the last observed value. Fewer
  than 3 observed rows: change 0 (persistence, as `LinearTrend` falls back).
- ``consolidation`` (`consolidation_changes`): the back-analysis of
  `geojepa.forecast.consolidation` on the track's rows up to each origin, the load read
  from the track's ``load`` sensor (the first one; none: one unit load at the first
  observed reading), held after the origin. Fewer than `min_points` observed rows, or no
  load change yet: change 0.

Guarantees: the base at an origin row reads the target column at rows up to that row and
nothing later (a cut track gives the same base at the same origin); output is finite.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from geojepa.forecast.base import carry_forward
from geojepa.forecast.consolidation import T90_GRID, fit_grid, load_responses
from geojepa.forecast.tracks import Track

BASES: tuple[str, ...] = ("linear", "consolidation")
LINEAR_K = 10
"""Observed rows the linear base fits (the `LinearTrend` default)."""


def linear_changes(
    track: Track, rows: np.ndarray, horizons: Sequence[float], k: int = LINEAR_K
) -> np.ndarray:
    """(N, K) change of the linear-trend forecast at ``time(row) + h`` from the last
    observed value at or before each row."""
    hs = np.asarray(horizons, dtype=np.float64)  # (K,)
    rows = np.asarray(rows, dtype=np.int64)  # (N,)
    y = track.target_values()  # (T,)
    t = track.times()  # (T,)
    obs = np.flatnonzero(np.isfinite(y))  # (M,) observed rows, increasing
    out = np.zeros((rows.size, hs.size))
    # number of observed rows at or before each origin
    upto = np.searchsorted(obs, rows, side="right")  # (N,)
    for i, (r, n) in enumerate(zip(rows, upto, strict=True)):
        if n < 3:
            continue
        idx = obs[max(0, n - k) : n]  # (k',)
        tt, yy = t[idx], y[idx]
        tm = tt.mean()
        sxx = float(((tt - tm) ** 2).sum())
        if sxx <= 0.0:
            continue
        slope = float((tt - tm) @ (yy - yy.mean())) / sxx
        intercept = float(yy.mean()) - slope * tm
        pred = intercept + slope * (t[r] + hs)  # (K,)
        out[i] = pred - yy[-1]
    return out


def track_load(track: Track) -> np.ndarray:
    """(T,) the track's load (its first ``load`` sensor, carried forward; NaN before its
    first reading), or ones from the first observed target row when it has none."""
    kinds = track.frame.sensors["kind"].to_numpy()
    cols = np.flatnonzero(kinds == "load")
    if cols.size == 0:
        y = track.target_values()
        q = np.where(np.cumsum(np.isfinite(y)) > 0, 1.0, np.nan)
        return q
    j = int(cols[0])
    return carry_forward(np.where(track.frame.observed[:, j], track.frame.values[:, j], np.nan))


def consolidation_changes(
    track: Track,
    rows: np.ndarray,
    horizons: Sequence[float],
    min_points: int = 5,
    t90_grid: Sequence[float] = T90_GRID,
    loss: str = "squared",
) -> np.ndarray:
    """(N, K) change of the consolidation back-analysis forecast at ``time(row) + h`` from
    the last observed value at or before each row (rows up to the origin only)."""
    hs = np.asarray(horizons, dtype=np.float64)  # (K,)
    rows = np.asarray(rows, dtype=np.int64)  # (N,)
    y = track.target_values()  # (T,)
    t = track.times()  # (T,)
    q = track_load(track)  # (T,)
    dq = np.diff(np.nan_to_num(q, nan=0.0), prepend=0.0)  # (T,) load added on each row
    inc = np.flatnonzero(dq != 0.0)  # (G,) rows with a load increment
    obs = np.flatnonzero(np.isfinite(y))  # (M,)
    out = np.zeros((rows.size, hs.size))
    if inc.size == 0 or obs.size == 0:
        return out
    # responses of every observed row to every increment (increments after a row add 0)
    lag = t[obs][:, None] - t[inc][None, :]  # (M, G)
    design = [load_responses(lag, dq[inc], t90) for t90 in t90_grid]  # each (M, 2)
    upto = np.searchsorted(obs, rows, side="right")  # (N,) observed rows at or before
    known = np.searchsorted(inc, rows, side="right")  # (N,) increments at or before
    for i, (r, n, g) in enumerate(zip(rows, upto, known, strict=True)):
        if n < min_points or g == 0:
            continue
        yy = y[obs[:n]]
        best = fit_grid([x[:n] for x in design], yy, tuple(t90_grid), loss)
        if best is None:
            continue
        c, a, b, t90 = best
        lag_f = (t[r] + hs)[:, None] - t[inc[:g]][None, :]  # (K, g) the load held
        pred = c + load_responses(lag_f, dq[inc[:g]], t90) @ np.array([a, b])  # (K,)
        out[i] = pred - yy[-1]
    return out


def base_changes(
    base: str, track: Track, rows: np.ndarray, horizons: Sequence[float]
) -> np.ndarray:
    """(N, K) base forecast changes of method `base` (one of `BASES`)."""
    if base == "linear":
        return linear_changes(track, rows, horizons)
    if base == "consolidation":
        return consolidation_changes(track, rows, horizons)
    raise ValueError(f"unknown base forecast {base!r}; use one of {list(BASES)}")


__all__ = [
    "BASES",
    "LINEAR_K",
    "base_changes",
    "consolidation_changes",
    "linear_changes",
    "track_load",
]
