"""The classic detectors GeoJEPA is measured against, all under the `Detector` contract.

- `TriggerLevels`: fixed trigger levels per sensor from training percentiles (what sites use
  today); the score is the distance beyond the nearer level in units of the band width, so
  0 is exactly a level and negative is inside the band.
- `RateOfChange`: the change over one or more lags, in units of the training change; a
  change across a gap is divided by the rows it spans (a rate).
- `RobustZ`: distance from the median of the preceding window (or of the whole training
  period) in units of the training MAD.
- `WindowIsolationForest`: IsolationForest on each sensor's raw (standardised) windows.
- `Catch22Detector`: catch22 + simple window statistics, then IsolationForest or kNN.
- `RandomDetector`: a uniform random score, the floor every metric is read against.

Guarantees: every detector is causal (the score at row t uses rows <= t only, so scoring a
prefix of a frame gives the prefix of the scores); per-sensor scores are NaN exactly
where the sensor is unobserved for the point detectors, and never NaN where it is
observed; fitting uses training rows only (enforced by `SensorwiseDetector`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from geojepa.detectors.base import SensorwiseDetector, register_detector
from geojepa.detectors.density import EmbeddingDensity
from geojepa.features import SensorWindows, causal_windows, window_features
from geojepa.frame import SensorFrame

__all__ = [
    "Catch22Detector",
    "RandomDetector",
    "RateOfChange",
    "RobustZ",
    "TriggerLevels",
    "WindowIsolationForest",
]

_MAD_TO_STD = 1.4826


def _positive(x: float, fallback: float = 1.0) -> float:
    return x if np.isfinite(x) and x > 1e-12 else fallback


def _train_values(train: SensorFrame, c: int) -> np.ndarray:
    return train.values[train.observed[:, c], c].astype(np.float64)


class TriggerLevels(SensorwiseDetector):
    """Fixed trigger levels: the training `lower_pct` and `upper_pct` percentiles per sensor.

    Score of a cell = max(v - upper, lower - v) / (upper - lower): above 0 beyond a level.
    """

    normalise = False

    def __init__(self, lower_pct: float = 0.5, upper_pct: float = 99.5) -> None:
        self.lower_pct = lower_pct
        self.upper_pct = upper_pct

    def _fit_train(self, train: SensorFrame) -> np.ndarray | None:
        lo = np.zeros(train.n_sensors)
        hi = np.zeros(train.n_sensors)
        for c in range(train.n_sensors):
            v = _train_values(train, c)
            lo[c], hi[c] = np.percentile(v, [self.lower_pct, self.upper_pct])
        self.lower_, self.upper_ = lo, hi
        self.band_ = np.array(
            [_positive(h - lo_, _positive(abs(h) * 1e-3)) for lo_, h in zip(lo, hi, strict=True)]
        )
        return None

    def _raw(self, frame: SensorFrame) -> np.ndarray:
        v = frame.values.astype(np.float64)  # (T, C), NaN where unobserved
        return np.maximum(v - self.upper_, self.lower_ - v) / self.band_


def _ffill(values: np.ndarray) -> np.ndarray:
    """Forward-fill NaN down each column (causal). (T, C) -> (T, C)."""
    return pd.DataFrame(values).ffill().to_numpy(dtype=np.float64)


class RateOfChange(SensorwiseDetector):
    """Rate-of-change alarms: |v(t) - v(t - lag)| over each lag, in units of its training q90.

    The value lag steps back is the last observation at or before that row; where there is
    none yet, the change is taken as 0 (nothing to compare with). A change is a rate: when
    that observation lies more than lag rows back (a gap), the change is scaled by
    lag / (rows it spans), so a trend resumed after a dropout is not a jump.
    """

    def __init__(self, lags: tuple[int, ...] = (1, 24)) -> None:
        self.lags = lags

    def _changes(self, frame: SensorFrame) -> list[np.ndarray]:
        v = np.where(frame.observed, frame.values, np.nan).astype(np.float64)  # (T, C)
        past = _ffill(v)
        rows = np.arange(v.shape[0], dtype=np.float64)[:, None]  # (T, 1)
        past_row = _ffill(np.where(frame.observed, rows, np.nan))  # (T, C) last observed row
        out = []
        for lag in self.lags:
            ref = np.full_like(past, np.nan)
            ref_row = np.full_like(past, np.nan)
            if lag < past.shape[0]:
                ref[lag:] = past[:-lag]
                ref_row[lag:] = past_row[:-lag]
            span = np.fmax(rows - ref_row, float(lag))  # (T, C) rows the change spans, >= lag
            d = np.abs(v - ref) * (float(lag) / span)
            d[frame.observed & np.isnan(d)] = 0.0
            out.append(d)  # (T, C)
        return out

    def _fit_train(self, train: SensorFrame) -> np.ndarray | None:
        if not self.lags or min(self.lags) < 1:
            raise ValueError(f"lags must be positive integers, got {self.lags}")
        scales = []
        for d in self._changes(train):
            s = np.array(
                [
                    _positive(float(np.nanquantile(col, 0.9)) if np.isfinite(col).any() else 1.0)
                    for col in d.T
                ]
            )
            scales.append(s)
        self.lag_scale_ = np.stack(scales)  # (L, C)
        return None

    def _raw(self, frame: SensorFrame) -> np.ndarray:
        parts = [d / self.lag_scale_[i] for i, d in enumerate(self._changes(frame))]
        return np.fmax.reduce(parts) if len(parts) > 1 else parts[0]


class RobustZ(SensorwiseDetector):
    """Robust z-score |v - median| / (1.4826 MAD).

    With ``window`` (rows), the median is that of the observations in the preceding
    `window` rows (causal, the current row excluded) and the MAD is that of the training
    residuals; with ``window=None`` both come from the whole training period.
    """

    normalise = False

    def __init__(self, window: int | None = 48) -> None:
        self.window = window

    def _centre(self, frame: SensorFrame) -> np.ndarray:
        v = np.where(frame.observed, frame.values, np.nan).astype(np.float64)
        if self.window is None:
            return np.broadcast_to(self.median_, v.shape)
        med = (
            pd.DataFrame(v)
            .rolling(int(self.window), min_periods=1)
            .median()
            .shift(1)
            .to_numpy(dtype=np.float64)
        )  # (T, C), median of rows t-W .. t-1
        return np.where(np.isnan(med), v, med)  # no past yet: residual 0

    def _fit_train(self, train: SensorFrame) -> np.ndarray | None:
        if self.window is not None and self.window < 1:
            raise ValueError(f"window must be >= 1 or None, got {self.window}")
        self.median_ = np.array(
            [float(np.median(_train_values(train, c))) for c in range(train.n_sensors)]
        )
        resid = np.where(train.observed, train.values, np.nan) - self._centre(train)
        mad = []
        for c in range(train.n_sensors):
            r = resid[:, c][np.isfinite(resid[:, c])]
            m = float(np.median(np.abs(r - np.median(r)))) if r.size else 1.0
            fallback = _positive(float(np.mean(np.abs(r))) if r.size else 1.0)
            mad.append(_MAD_TO_STD * _positive(m, fallback / _MAD_TO_STD))
        self.mad_ = np.array(mad)
        return None

    def _raw(self, frame: SensorFrame) -> np.ndarray:
        v = np.where(frame.observed, frame.values, np.nan).astype(np.float64)
        return np.abs(v - self._centre(frame)) / self.mad_


class _WindowDensityDetector(SensorwiseDetector):
    """Shared machinery: per-sensor causal windows -> features -> `EmbeddingDensity`.

    The window score at row e is spread over rows e .. e+hop-1 (causal). A row whose window
    has no observation but whose own cell is observed (possible only with hop > 1) gets the
    sensor's median training score: no evidence either way.
    """

    def __init__(
        self,
        window: int = 24,
        hop: int = 1,
        method: str = "iforest",
        n_neighbors: int = 5,
        n_estimators: int = 100,
        seed: int = 0,
    ) -> None:
        self.window = window
        self.hop = hop
        self.method = method
        self.n_neighbors = n_neighbors
        self.n_estimators = n_estimators
        self.seed = seed

    def _features(self, win: SensorWindows) -> np.ndarray:
        raise NotImplementedError

    def _windows(self, frame: SensorFrame, c: int) -> SensorWindows:
        x = (frame.values[:, c].astype(np.float64) - self.loc_[c]) / self.spread_[c]
        return causal_windows(x, frame.observed[:, c], self.window, self.hop)

    def _window_scores(self, c: int, win: SensorWindows) -> np.ndarray:
        """Score of each window of sensor c: (K,), NaN where the window has no observation."""
        k_scores = np.full(win.ends.shape[0], np.nan)  # (K,)
        if win.valid.any():
            rows = self._features(_take(win, win.valid))  # (K_valid, F)
            rows = np.where(np.isnan(rows), self.fill_[c][None, :], rows)
            k_scores[win.valid] = self.models_[c].score(rows)
        return k_scores

    def _spread_rows(self, frame: SensorFrame, c: int, k_scores: np.ndarray) -> np.ndarray:
        """Window scores (K,) -> row scores (T,): window e covers rows e .. e+hop-1 (causal)."""
        col = k_scores[np.arange(frame.n_times) // self.hop]
        col[np.isnan(col) & frame.observed[:, c]] = self.median_score_[c]
        return col

    def _fit_train(self, train: SensorFrame) -> np.ndarray:
        self.loc_ = np.zeros(train.n_sensors)
        self.spread_ = np.ones(train.n_sensors)
        self.fill_: list[np.ndarray] = []
        self.models_: list[EmbeddingDensity] = []
        self.median_score_ = np.zeros(train.n_sensors)
        raw = np.full((train.n_times, train.n_sensors), np.nan)  # (T_train, C)
        cached = []
        for c in range(train.n_sensors):
            v = _train_values(train, c)
            self.loc_[c] = float(v.mean())
            self.spread_[c] = _positive(float(v.std()))
            win = self._windows(train, c)
            rows = self._features(_take(win, win.valid))  # (K_valid, F)
            with np.errstate(all="ignore"):
                fill = np.nanmedian(np.where(np.isnan(rows).all(axis=0), 0.0, rows), axis=0)
            self.fill_.append(np.where(np.isfinite(fill), fill, 0.0))
            rows = np.where(np.isnan(rows), self.fill_[c][None, :], rows)
            model = EmbeddingDensity(
                method=self.method,
                n_neighbors=self.n_neighbors,
                n_estimators=self.n_estimators,
                seed=self.seed + 7919 * c,
            ).fit(rows)
            self.models_.append(model)
            k_scores = np.full(win.ends.shape[0], np.nan)
            k_scores[win.valid] = model.score(rows)
            self.median_score_[c] = float(np.nanmedian(k_scores))
            raw[:, c] = self._spread_rows(train, c, k_scores)
            cached.append(k_scores)
        # window scores of the training rows: scoring a frame that begins with exactly these
        # rows reuses them (windows are causal, so they cannot differ)
        self._train_cache = (train.values.copy(), train.observed.copy(), cached)
        return raw

    def _cached_prefix(self, frame: SensorFrame) -> list[np.ndarray] | None:
        cache = getattr(self, "_train_cache", None)
        if cache is None:
            return None
        values, observed, k_scores = cache
        n = values.shape[0]
        if frame.n_times < n or not np.array_equal(frame.observed[:n], observed):
            return None
        if not np.array_equal(frame.values[:n], values, equal_nan=True):
            return None
        return list(k_scores)

    def _raw(self, frame: SensorFrame) -> np.ndarray:
        out = np.full((frame.n_times, frame.n_sensors), np.nan)  # (T, C)
        prefix = self._cached_prefix(frame)
        for c in range(frame.n_sensors):
            win = self._windows(frame, c)
            if prefix is None:
                k_scores = self._window_scores(c, win)
            else:
                k0 = prefix[c].shape[0]  # windows ending inside the training rows
                rest = self._window_scores(c, _take(win, np.arange(k0, win.ends.shape[0])))
                k_scores = np.concatenate([prefix[c], rest])
            out[:, c] = self._spread_rows(frame, c, k_scores)
        return out


def _take(win: SensorWindows, index: np.ndarray) -> SensorWindows:
    """The windows selected by `index` (bool mask or integer positions)."""
    return SensorWindows(
        ends=win.ends[index],
        data=win.data[index],
        valid=win.valid[index],
        observed_fraction=win.observed_fraction[index],
    )


class WindowIsolationForest(_WindowDensityDetector):
    """IsolationForest on each sensor's raw windows (standardised by its training mean/std)."""

    def __init__(
        self, window: int = 24, hop: int = 1, n_estimators: int = 100, seed: int = 0
    ) -> None:
        super().__init__(
            window=window, hop=hop, method="iforest", n_estimators=n_estimators, seed=seed
        )

    def _features(self, win: SensorWindows) -> np.ndarray:
        return np.concatenate([win.data, win.observed_fraction[:, None]], axis=1)  # (K, W+1)


class Catch22Detector(_WindowDensityDetector):
    """catch22 + simple statistics of each sensor's windows, scored by `method` (iforest/knn)."""

    def __init__(
        self,
        window: int = 48,
        hop: int = 1,
        method: str = "iforest",
        n_neighbors: int = 5,
        n_estimators: int = 100,
        seed: int = 0,
    ) -> None:
        super().__init__(
            window=window,
            hop=hop,
            method=method,
            n_neighbors=n_neighbors,
            n_estimators=n_estimators,
            seed=seed,
        )

    def _features(self, win: SensorWindows) -> np.ndarray:
        return window_features(win, catch22=True)


class RandomDetector(SensorwiseDetector):
    """Uniform random per-sensor scores (NaN where unobserved); per-time = row maximum.

    Row t's draws depend only on the seed and t, so a prefix of a frame gets the prefix of
    the scores.
    """

    normalise = False

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def _fit_train(self, train: SensorFrame) -> np.ndarray | None:
        self.n_sensors_ = train.n_sensors
        return None

    def _raw(self, frame: SensorFrame) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        u = rng.random(frame.n_times * frame.n_sensors).reshape(frame.n_times, frame.n_sensors)
        return np.where(frame.observed, u, np.nan)


def _register() -> None:
    register_detector("trigger", lambda seed: TriggerLevels())
    register_detector("rate_of_change", lambda seed: RateOfChange())
    register_detector("robust_z", lambda seed: RobustZ())
    register_detector("iforest_raw", lambda seed: WindowIsolationForest(seed=seed))
    register_detector("catch22_iforest", lambda seed: Catch22Detector(method="iforest", seed=seed))
    register_detector("catch22_knn", lambda seed: Catch22Detector(method="knn", seed=seed))
    register_detector("random", lambda seed: RandomDetector(seed=seed))


_register()
