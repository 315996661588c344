"""Ridge regression on lagged forcing: the non-JEPA learned baseline for heads and levels.

`LaggedRidge` is a direct multi-horizon model on a **regular** grid. At each origin i of the
history it builds features from data at or before i only:

- the last observed target value and its change over ``change_windows`` days;
- sums of the `sums` drivers (rain, evaporation) over each of ``windows`` days;
- means of the `means` drivers (temperature) over each of ``mean_windows`` days;

and learns, for every horizon h, the change ``y(i + h) - y(i)`` with a ridge on standardised
features whose penalty is chosen by exact leave-one-out error (closed form from one SVD) on
the history alone. Forecasts between
trained horizons interpolate the predicted change linearly (zero change at h = 0); beyond the
largest trained horizon they are refused. Band: the empirical quantiles of the in-sample
residuals per horizon (optimistic, as in-sample residuals are).

Guarantees: fitted only on the history passed to `fit` (targets inside it); drivers are never
read beyond the last history time. Fewer than `min_samples` training origins for some horizon:
falls back to persistence (``fallback_`` says why).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Self

import numpy as np
from threadpoolctl import ThreadpoolController

from geojepa.forecast.base import (
    DEFAULT_LEVEL,
    Drivers,
    Forecast,
    Forecaster,
    as_history,
    as_times,
)
from geojepa.forecast.classic import Persistence

log = logging.getLogger(__name__)


def _ffill(y: np.ndarray) -> np.ndarray:
    """Last finite value at or before each index (NaN before the first)."""
    idx = np.where(np.isfinite(y), np.arange(y.size), -1)
    idx = np.maximum.accumulate(idx)
    out = np.where(idx >= 0, y[np.clip(idx, 0, None)], np.nan)
    return out


def _trailing(x: np.ndarray, w: int, mean: bool) -> np.ndarray:
    """Trailing sum (or mean) over the last `w` steps including the current; NaN counted as 0
    for sums, skipped for means; NaN where the window starts before the record."""
    finite = np.isfinite(x)
    c = np.concatenate([[0.0], np.cumsum(np.where(finite, x, 0.0))])  # (T+1,)
    n = np.concatenate([[0.0], np.cumsum(finite.astype(np.float64))])
    out = np.full(x.size, np.nan)
    if w <= x.size:
        s = c[w:] - c[:-w]  # (T-w+1,)
        if mean:
            cnt = n[w:] - n[:-w]
            with np.errstate(invalid="ignore", divide="ignore"):
                s = np.where(cnt > 0, s / cnt, np.nan)
        out[w - 1 :] = s
    return out


DEFAULT_ALPHAS: tuple[float, ...] = tuple(float(v) for v in np.logspace(-2, 4, 13))


@dataclass(frozen=True)
class RidgeFit:
    """A fitted ridge on standardised features: ``y = intercept + ((x - mean)/scale) @ coef``."""

    mean: np.ndarray  # (F,)
    scale: np.ndarray  # (F,)
    coef: np.ndarray  # (F,)
    intercept: float
    alpha: float
    loo_mse: float
    loo_residuals: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (N,) truth - LOO

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.intercept + ((x - self.mean) / self.scale) @ self.coef  # (N,)


def fit_ridge_loo(x: np.ndarray, y: np.ndarray, alphas: Sequence[float]) -> RidgeFit:
    """Ridge (unpenalised intercept) with the penalty of least leave-one-out squared error.

    x (N, F), y (N,). With Z = U S V^T the standardised features, the hat matrix is
    ``11^T/N + U diag(s^2/(s^2+a)) U^T``, so every LOO residual is ``e_i / (1 - h_ii)``.
    Runs on one BLAS thread: on these thin matrices more threads only spin (measured 30x
    slower on a busy 2-core machine).
    """
    with _blas().limit(limits=1, user_api="blas"):
        return _fit_ridge_loo(x, y, alphas)


_CONTROLLER: list[ThreadpoolController] = []


def _blas() -> ThreadpoolController:
    """One thread-pool controller per process (finding the BLAS libraries costs ~10 ms)."""
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0]


def _fit_ridge_loo(x: np.ndarray, y: np.ndarray, alphas: Sequence[float]) -> RidgeFit:
    n = x.shape[0]
    mean = x.mean(axis=0)  # (F,)
    scale = x.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    z = (x - mean) / scale  # (N, F)
    y_mean = float(y.mean())
    yc = y - y_mean
    u, sv, vt = np.linalg.svd(z, full_matrices=False)  # u (N, R), sv (R,), vt (R, F)
    uty = u.T @ yc  # (R,)
    u2 = u**2  # (N, R)
    best: tuple[float, float, np.ndarray] | None = None
    for a in alphas:
        d = sv**2 / (sv**2 + a)  # (R,)
        resid = yc - u @ (d * uty)  # (N,)
        h = u2 @ d + 1.0 / n  # (N,) hat diagonal
        loo_resid = resid / np.clip(1.0 - h, 1e-12, None)  # (N,)
        loo = float(np.mean(loo_resid**2))
        if best is None or loo < best[1]:
            best = (float(a), loo, loo_resid)
    assert best is not None
    a, loo, loo_resid = best
    coef = vt.T @ (sv / (sv**2 + a) * uty)  # (F,)
    return RidgeFit(mean, scale, coef, y_mean, a, loo, loo_resid)


class LaggedRidge(Forecaster):
    """Direct ridge forecaster of the change in the target from lagged target and forcing."""

    name = "ridge_lagged"

    def __init__(
        self,
        horizons: Sequence[float] = (1.0, 7.0, 30.0),
        sums: Sequence[str] = ("rain", "evaporation"),
        means: Sequence[str] = ("temperature",),
        windows: Sequence[float] = (1, 3, 7, 14, 30, 60, 90, 180),
        mean_windows: Sequence[float] = (7, 30, 90),
        change_windows: Sequence[float] = (7, 30),
        alphas: Sequence[float] = DEFAULT_ALPHAS,
        min_samples: int = 30,
        level: float = DEFAULT_LEVEL,
    ) -> None:
        self.horizons = horizons
        self.sums = sums
        self.means = means
        self.windows = windows
        self.mean_windows = mean_windows
        self.change_windows = change_windows
        self.alphas = alphas
        self.min_samples = min_samples
        self.level = level

    def _features(self, y: np.ndarray, drivers: dict[str, np.ndarray], dt: float) -> np.ndarray:
        """Features (T, F) at every origin, from data at or before it."""
        level = _ffill(y)  # (T,)
        cols = [level]
        for w in self.change_windows:
            k = max(1, round(w / dt))
            prev = np.full(y.size, np.nan)
            prev[k:] = level[:-k]
            cols.append(level - prev)
        for name in self.sums:
            for w in self.windows:
                cols.append(_trailing(drivers[name], max(1, round(w / dt)), mean=False))
        for name in self.means:
            for w in self.mean_windows:
                cols.append(_trailing(drivers[name], max(1, round(w / dt)), mean=True))
        return np.stack(cols, axis=1)  # (T, F)

    def fit(self, t: np.ndarray, y: np.ndarray, drivers: Drivers | None = None) -> Self:
        t, y, drv = as_history(t, y, drivers)
        missing = [d for d in (*self.sums, *self.means) if d not in drv]
        if missing:
            raise ValueError(f"LaggedRidge needs drivers {missing}; have {sorted(drv)}")
        self._persist = Persistence(level=self.level).fit(t, y)
        self.fallback_: str | None = None
        if t.size < 2:
            self.fallback_ = "history shorter than two steps"
            return self
        steps = np.diff(t)
        dt = float(steps[0])
        if not np.allclose(steps, dt, rtol=1e-6, atol=1e-9):
            raise ValueError("LaggedRidge needs a regular time grid (put the series on one)")
        self.dt_ = dt
        feats = self._features(y, drv, dt)  # (T, F)
        level = feats[:, 0]
        self.t_last_ = float(t[-1])
        self.x_last_ = feats[-1]  # (F,)
        self.models_: dict[float, RidgeFit] = {}
        self.resid_q_: dict[float, tuple[float, float]] = {}
        tail = (1.0 - self.level) / 2.0
        for h in sorted(float(v) for v in self.horizons):
            k = max(1, round(h / dt))
            if k >= t.size:
                self.fallback_ = f"history shorter than horizon {h:g}"
                break
            target = y[k:] - level[:-k]  # (T-k,) change from origin i to i+k
            x = feats[:-k]
            ok = np.isfinite(target) & np.all(np.isfinite(x), axis=1)
            if ok.sum() < self.min_samples:
                self.fallback_ = f"{int(ok.sum())} training origins for horizon {h:g}"
                break
            with _blas().limit(limits=1, user_api="blas"):
                model = fit_ridge_loo(x[ok], target[ok], self.alphas)
                resid = target[ok] - model.predict(x[ok])
            self.models_[h] = model
            self.resid_q_[h] = (
                float(np.quantile(resid, tail)),
                float(np.quantile(resid, 1 - tail)),
            )
        if self.fallback_ is None and not np.all(np.isfinite(self.x_last_)):
            self.fallback_ = "features at the last history time are incomplete"
        if self.fallback_ is not None:
            log.info("ridge_lagged: %s; using persistence", self.fallback_)
        return self

    def predict(self, t_future: np.ndarray) -> Forecast:
        if self.fallback_ is not None:
            fc = self._persist.predict(t_future)
            return Forecast(fc.t, fc.prediction, fc.lower, fc.upper, fc.level, self.name)
        tf = as_times(t_future)
        hs = np.array(sorted(self.models_))  # (K,)
        lead = tf - self.t_last_
        if np.any(lead > hs[-1] + 1e-9):
            raise ValueError(f"LaggedRidge was trained up to horizon {hs[-1]:g} days")
        x = self.x_last_[None, :]
        change = np.array([float(self.models_[h].predict(x)[0]) for h in hs])  # (K,)
        q_lo = np.array([self.resid_q_[h][0] for h in hs])
        q_hi = np.array([self.resid_q_[h][1] for h in hs])
        grid = np.concatenate([[0.0], hs])
        base = float(self.x_last_[0])
        pred = base + np.interp(lead, grid, np.concatenate([[0.0], change]))
        lo = pred + np.interp(lead, grid, np.concatenate([[0.0], q_lo]))
        hi = pred + np.interp(lead, grid, np.concatenate([[0.0], q_hi]))
        return Forecast(tf, pred, np.fmin(lo, pred), np.fmax(hi, pred), self.level, self.name)
