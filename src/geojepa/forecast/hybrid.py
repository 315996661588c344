"""Classic base forecasts for hybrid heads: a learned correction of a classic forecast.

A hybrid forecaster predicts ``level + base(h) + correction(h)``: `base` is a classic
method's forecast change at horizon h from the target's last observed value, computed on
the track's rows up to the origin only; the head learns the correction (the residual of
the classic forecast, in local-scale units) and also reads the base as a feature. A head
shrunk to zero returns the classic forecast itself, so the hybrid degrades to a method
engineers already trust rather than to persistence.

`linear_changes` is the base used here: the least-squares line through the last `k`
observed target rows at or before each origin (the `LinearTrend` classic method on the
track's daily grid), extrapolated to ``origin time + h``, minus the last observed value.
Fewer than 3 observed rows: change 0 (persistence, as `LinearTrend` falls back).

Guarantees: the base at an origin row reads the target column at rows up to that row and
nothing later (a cut track gives the same base at the same origin); output is finite.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from geojepa.forecast.tracks import Track

BASES: tuple[str, ...] = ("linear",)
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


def base_changes(
    base: str, track: Track, rows: np.ndarray, horizons: Sequence[float]
) -> np.ndarray:
    """(N, K) base forecast changes of method `base` (one of `BASES`)."""
    if base == "linear":
        return linear_changes(track, rows, horizons)
    raise ValueError(f"unknown base forecast {base!r}; use one of {list(BASES)}")


__all__ = ["BASES", "LINEAR_K", "base_changes", "linear_changes"]
