"""The classic forecasting methods geotechnical engineers trust, under one contract.

- `Persistence`   the last observed value; band of a driftless random walk whose variance per
                  day is estimated from the history's increments.
- `LinearTrend`   ordinary least squares on the last `k` observed points; band from the
                  regression's standard errors (Student t prediction interval).
- `Hyperbolic`    settlement under constant load: ``t'/s' = a + b t'`` with ``t' = t - t0`` and
                  ``s' = s - s0`` measured from the first reading of the current load stage;
                  final settlement ``s0 + 1/b``.
- `Asaoka`        ``s_i = b0 + b1 s_{i-1}`` on **equal** time steps; final settlement
                  ``b0 / (1 - b1)``. Readings are irregular, so the stage's readings are
                  resampled explicitly by linear interpolation onto a grid of step `dt`
                  (never extrapolated) before the regression.
- `Fukuzono`      inverse velocity ``1/v = A + B t`` on an accelerating displacement record:
                  time of failure ``-A/B`` where ``1/v`` reaches zero; the displacement forecast
                  integrates that velocity from the last reading.

The consolidation back-analysis (one Terzaghi curve per load increment, fitted to the whole
record) follows the same contract in `geojepa.forecast.consolidation`; `geojepa.forecast.
methods.CLASSIC` names them all.

Units: t in days; the target in its own unit (the methods never convert it).

Guarantees: every method is exact on curves of its own form without noise (tests check the
known answers). The three curve methods' bands come from moving-block bootstraps seeded by
``random_state`` and drawn in `fit` (or from a seed drawn there), so `predict` is
deterministic: the hyperbola's from its residuals; Asaoka's and Fukuzono's, whose curves are
drawn from the last reading, from their one-step-ahead errors on the fitted window (see
`CurveForecaster`), so the band brackets the prediction on both sides and holds about its
level of the next readings on records of the method's own form. Bands contain the
prediction; an end of the band is NaN where it has none (Fukuzono's upper end once more than
the tail of its bootstrap draws have failed). A method that cannot fit falls back to
`Persistence` and says so in ``fallback_`` (see `geojepa.forecast.base`).
"""

from __future__ import annotations

import logging
import warnings
from abc import abstractmethod
from dataclasses import dataclass, replace
from statistics import NormalDist
from typing import ClassVar, Self

import numpy as np
from scipy import stats

from geojepa.forecast.base import (
    DEFAULT_LEVEL,
    Drivers,
    FitError,
    Forecast,
    Forecaster,
    as_history,
    as_times,
    carry_forward,
    observed,
    rng_of,
)

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- helpers
def _ols(x: np.ndarray, z: np.ndarray) -> tuple[float, float]:
    """Intercept and slope of z on x by least squares (x centred for conditioning)."""
    xm = float(x.mean())
    xc = x - xm
    sxx = float(xc @ xc)
    if sxx <= 0.0:
        raise FitError("all points at one time: no slope")
    slope = float(xc @ (z - z.mean())) / sxx
    return float(z.mean()) - slope * xm, slope


def stage_start(
    load: np.ndarray, rel_tol: float = 0.05, abs_tol: float = 1e-9, noise_k: float = 4.0
) -> int:
    """Index of the first reading of the current load stage.

    The current load is the last known one; the stage starts right after the last reading
    whose load differs from it by more than ``max(abs_tol, rel_tol * |current|, noise_k *
    sigma)``, sigma the gauge noise estimated robustly from the load's first differences
    (MAD; zero for a stepwise record). So a fill raised gradually starts its stage when it
    reaches its current height, and a gauge's noise is not a new stage. NaN loads carry the
    previous value forward (a load stays until changed); loads before the first known one
    count as different.
    """
    filled = carry_forward(load)  # (T,)
    known = np.isfinite(filled)
    if not known.any():
        return 0
    current = float(filled[known][-1])
    d = np.diff(filled[known])
    sigma = float(np.median(np.abs(d - np.median(d)))) / 0.6745 / np.sqrt(2.0) if d.size else 0.0
    tol = max(abs_tol, rel_tol * abs(current), noise_k * sigma)
    off = ~known | (np.abs(filled - current) > tol)
    idx = np.flatnonzero(off)
    return int(idx[-1] + 1) if idx.size else 0


def _block_resample(resid: np.ndarray, rng: np.random.Generator, block: int) -> np.ndarray:
    """Moving-block resample of residuals (keeps short-range correlation)."""
    n = resid.size
    block = max(1, min(block, n))
    n_blocks = -(-n // block)
    starts = rng.integers(0, n - block + 1, size=n_blocks)
    idx = (starts[:, None] + np.arange(block)[None, :]).reshape(-1)[:n]  # (n,)
    return resid[idx]


def _z(level: float) -> float:
    return NormalDist().inv_cdf(0.5 + level / 2.0)


# --------------------------------------------------------------------------- persistence
class Persistence(Forecaster):
    """The last observed value, with a driftless random-walk band.

    Band: variance per day ``mean(dy^2 / dt)`` over the last `window` increments (all when
    None); half-width ``z * sqrt(rate * (t - t_last))``.
    """

    name = "persistence"

    def __init__(self, window: int | None = None, level: float = DEFAULT_LEVEL) -> None:
        self.window = window
        self.level = level

    def fit(self, t: np.ndarray, y: np.ndarray, drivers: Drivers | None = None) -> Self:
        t, y, _ = as_history(t, y, drivers)
        to, yo = observed(t, y)
        if to.size == 0:
            raise ValueError("persistence needs at least one observed value")
        self.t_last_ = float(to[-1])
        self.y_last_ = float(yo[-1])
        dy, dt = np.diff(yo), np.diff(to)
        if self.window is not None:
            dy, dt = dy[-self.window :], dt[-self.window :]
        self.rate_ = float(np.mean(dy**2 / dt)) if dy.size else 0.0
        self.fallback_: str | None = None
        return self

    def predict(self, t_future: np.ndarray) -> Forecast:
        tf = as_times(t_future)
        pred = np.full(tf.shape, self.y_last_)
        half = _z(self.level) * np.sqrt(self.rate_ * np.clip(tf - self.t_last_, 0.0, None))
        return Forecast(tf, pred, pred - half, pred + half, self.level, self.name)


# --------------------------------------------------------------------------- linear trend
class LinearTrend(Forecaster):
    """Least-squares line through the last `k` observed points, extrapolated.

    Band: the OLS prediction interval ``t_{n-2} * s * sqrt(1 + 1/n + (t - mean)^2 / Sxx)``.
    Fewer than 3 observed points: falls back to persistence.
    """

    name = "linear"

    def __init__(self, k: int = 10, level: float = DEFAULT_LEVEL) -> None:
        self.k = k
        self.level = level

    def fit(self, t: np.ndarray, y: np.ndarray, drivers: Drivers | None = None) -> Self:
        t, y, _ = as_history(t, y, drivers)
        to, yo = observed(t, y)
        self.fallback_: str | None = None
        self._persist = Persistence(level=self.level).fit(t, y)
        to, yo = to[-self.k :], yo[-self.k :]
        if to.size < 3:
            self.fallback_ = f"linear trend needs 3 observed points, has {to.size}"
            log.info("%s; using persistence", self.fallback_)
            return self
        self.intercept_, self.slope_ = _ols(to, yo)
        resid = yo - (self.intercept_ + self.slope_ * to)
        n = to.size
        self.n_ = n
        self.t_mean_ = float(to.mean())
        self.sxx_ = float(((to - self.t_mean_) ** 2).sum())
        self.s_ = float(np.sqrt((resid @ resid) / (n - 2)))
        return self

    def predict(self, t_future: np.ndarray) -> Forecast:
        if self.fallback_ is not None:
            return replace(self._persist.predict(t_future), method=self.name)
        tf = as_times(t_future)
        pred = self.intercept_ + self.slope_ * tf
        q = float(stats.t.ppf(0.5 + self.level / 2.0, self.n_ - 2))
        se = self.s_ * np.sqrt(1.0 + 1.0 / self.n_ + (tf - self.t_mean_) ** 2 / self.sxx_)
        return Forecast(tf, pred, pred - q * se, pred + q * se, self.level, self.name)


# --------------------------------------------------------------------------- curve methods
@dataclass(frozen=True)
class HyperbolicParams:
    t0: float
    s0: float
    a: float
    b: float


@dataclass(frozen=True)
class AsaokaParams:
    b0: float
    b1: float
    dt: float
    t_ref: float
    s_ref: float

    @property
    def final(self) -> float:
        return self.b0 / (1.0 - self.b1)


@dataclass(frozen=True)
class FukuzonoParams:
    a: float  # intercept of 1/v on t (days / unit)
    b: float  # slope of 1/v on t (1 / unit); < 0 when accelerating
    t_ref: float
    x_ref: float
    sign: float

    @property
    def time_of_failure(self) -> float:
        return -self.a / self.b if self.b < 0 else float("inf")


class CurveForecaster(Forecaster):
    """A parametric curve fitted to a window of the history, with a bootstrap band.

    Subclasses choose the window (`_window`), fit parameters (`_fit_params`, raising
    `FitError` when they cannot) and evaluate the curve (`_curve`).

    The band of a curve fitted through the window (``anchored = False``: hyperbolic, the
    consolidation back-analysis): refit on ``fitted + block-resampled residuals`` `n_boot`
    times, add one resampled residual as observation noise, take the central `level`
    quantiles.

    The band of a curve drawn from the last reading (``anchored = True``: Asaoka, Fukuzono;
    they define `_reanchor` and `_memory`): its in-sample residuals say how far the curve
    drawn back from the last reading strays, not how it forecasts, so the band comes from
    the curve's **one-step-ahead errors** on the window instead, each reading forecast from
    the one before it with the fitted parameters. Centred and block-resampled, they (a)
    rebuild the window recursively from its first reading, ``n_boot`` times, for refits that
    carry the parameters' uncertainty, and (b) drive the future away from each refitted curve
    (drawn from the last reading): one error per median reading spacing, a carried-over
    deviation shrunk by `_memory` at each step (Asaoka's ``b1``; 1 for Fukuzono, whose
    velocity does not depend on the displacement). Within the first step the deviation grows
    like the square root of the lead. The central `level` quantiles of the paths make the
    band; it brackets the prediction (one-step errors of both signs) and holds about `level`
    of the next readings of a record of the curve's own form.

    Bands are clipped to contain the prediction. Every random draw is made from
    `random_state` (in `fit`, or from a seed drawn there), so `predict` is deterministic.
    """

    name = "curve"
    anchored: ClassVar[bool] = False
    """True for a curve drawn from the last reading (see the class docstring)."""
    max_band_steps: ClassVar[int] = 2000
    """Most steps an anchored band simulates; farther leads take longer steps."""

    def __init__(
        self,
        *,
        n_boot: int = 200,
        level: float = DEFAULT_LEVEL,
        random_state: int | np.random.Generator | None = 0,
    ) -> None:
        self.n_boot = n_boot
        self.level = level
        self.random_state = random_state

    @abstractmethod
    def _window(self, t: np.ndarray, y: np.ndarray, drivers: dict[str, np.ndarray]) -> int:
        """Index of the first history point the curve is fitted on."""

    @abstractmethod
    def _fit_params(self, t: np.ndarray, y: np.ndarray) -> object:
        """Fit on observed (t, y) of the window; raise FitError when impossible."""

    @abstractmethod
    def _curve(self, params: object, t: np.ndarray) -> np.ndarray:
        """The fitted curve at times t (NaN where undefined)."""

    def _reanchor(self, params: object, t_ref: float, y_ref: float) -> object:
        """Anchored curves: the same parameters drawn from the reading ``(t_ref, y_ref)``."""
        raise NotImplementedError(f"{type(self).__name__} is not an anchored curve")

    def _memory(self, params: object, step: float) -> float:
        """Anchored curves: how much of a change of the anchor reading is left `step` days
        later (the derivative of the curve's value there with respect to the anchor)."""
        return 1.0

    def _beyond(self, params: object) -> float:
        """Anchored curves: what a bootstrap draw's value is where its curve is undefined
        (NaN: left out of the band; Fukuzono: infinite movement after its failure)."""
        return float("nan")

    def fit(self, t: np.ndarray, y: np.ndarray, drivers: Drivers | None = None) -> Self:
        t, y, drv = as_history(t, y, drivers)
        self._persist = Persistence(level=self.level).fit(t, y)
        self.fallback_: str | None = None
        start = self._window(t, y, drv)
        tw, yw = observed(t[start:], y[start:])
        self.window_start_ = float(t[start]) if t.size else float("nan")
        self.n_fit_ = int(tw.size)
        self.boot_params_: list[object] = []
        self.boot_failed_ = 0
        try:
            self.params_ = self._fit_params(tw, yw)
        except FitError as err:
            self.fallback_ = str(err)
            log.info("%s: %s; using persistence", self.name, err)
            return self
        rng = rng_of(self.random_state)
        if self.anchored:
            self._fit_anchored_band(tw, yw, rng)
            return self
        fitted = self._curve(self.params_, tw)
        ok = np.isfinite(fitted)  # a curve may be undefined at early window times
        tw, fitted = tw[ok], fitted[ok]
        resid = yw[ok] - fitted
        self.resid_ = resid
        block = max(1, round(resid.size ** (1.0 / 3.0)))
        boot: list[object] = []
        failed = 0
        for _ in range(self.n_boot if resid.size >= 2 else 0):
            y_star = fitted + _block_resample(resid, rng, block)
            try:
                boot.append(self._fit_params(tw, y_star))
            except FitError:
                failed += 1
        self.boot_params_ = boot
        self.boot_failed_ = failed
        self._noise = (
            resid[rng.integers(0, resid.size, size=len(boot))] if resid.size else np.zeros(0)
        )
        return self

    def _fit_anchored_band(self, tw: np.ndarray, yw: np.ndarray, rng: np.random.Generator) -> None:
        """One-step-ahead errors and the recursive bootstrap of an anchored curve."""
        p = self.params_
        self.t_anchor_ = float(tw[-1])
        steps = np.diff(tw)  # (n-1,)
        one_step = np.array(
            [
                self._curve(self._reanchor(p, float(tw[k]), float(yw[k])), tw[k + 1 : k + 2])[0]
                for k in range(tw.size - 1)
            ]
        )  # (n-1,) each reading forecast from the one before it
        err = yw[1:] - one_step
        ok = np.isfinite(err)  # a curve may be undefined from early window readings
        self.resid_ = err[ok]  # one-step-ahead errors
        self.band_step_ = float(np.median(steps)) if steps.size else 0.0
        self._innov = err[ok] - float(err[ok].mean()) if ok.any() else np.zeros(0)
        self._band_seed = int(rng.integers(0, 2**63 - 1))
        if self._innov.size < 2 or self.n_boot <= 0:
            return
        # the window rebuilt: the readings as they are up to k0, where the curve is defined
        # from every reading on, then curve + carried one-step errors
        bad = np.flatnonzero(~ok)
        k0 = int(bad[-1]) + 1 if bad.size else 0
        base = self._curve(self._reanchor(p, float(tw[k0]), float(yw[k0])), tw[k0:])
        if not np.all(np.isfinite(base)):
            return
        mem = np.array([self._memory(p, float(s)) for s in steps[k0:]])  # (n-1-k0,)
        innov = self._innov_paths(rng, self.n_boot, mem.size)  # (B, n-1-k0)
        dev = np.zeros((self.n_boot, base.size))
        for k in range(mem.size):
            dev[:, k + 1] = mem[k] * dev[:, k] + innov[:, k]
        boot: list[object] = []
        failed = 0
        for rebuilt in base[None, :] + dev:
            y_star = np.concatenate([yw[:k0], rebuilt])
            try:
                boot.append(self._reanchor(self._fit_params(tw, y_star), tw[-1], yw[-1]))
            except FitError:
                failed += 1
        self.boot_params_ = boot
        self.boot_failed_ = failed

    def _innov_paths(self, rng: np.random.Generator, n_paths: int, n_steps: int) -> np.ndarray:
        """(n_paths, n_steps) moving-block resamples of the centred one-step errors, drawn one
        block at a time, so a longer path starts with the same steps as a shorter one."""
        e = self._innov
        block = max(1, min(round(e.size ** (1.0 / 3.0)), e.size))
        n_blocks = -(-n_steps // block)
        out = np.empty((n_paths, n_blocks * block))
        for i in range(n_blocks):
            starts = rng.integers(0, e.size - block + 1, size=n_paths)  # (n_paths,)
            out[:, i * block : (i + 1) * block] = e[starts[:, None] + np.arange(block)[None, :]]
        return out[:, :n_steps]

    def _anchored_deviation(self, lead: np.ndarray) -> np.ndarray:
        """(B, H) deviations of the future readings from each bootstrap curve at `lead` days
        after the last reading (0 at and before it)."""
        boot = self.boot_params_
        lmax = float(np.max(lead, initial=0.0))
        out = np.zeros((len(boot), lead.size))
        if lmax <= 0.0 or self.band_step_ <= 0.0:
            return out
        step = self.band_step_
        n_steps = int(np.ceil(lmax / step - 1e-9))
        scale = 1.0
        if n_steps > self.max_band_steps:  # coarser steps, errors of a random walk's size
            n_steps = self.max_band_steps
            scale = float(np.sqrt(lmax / n_steps / step))
            step = lmax / n_steps
        mem = np.array([self._memory(p, step) for p in boot])  # (B,)
        innov = scale * self._innov_paths(
            np.random.default_rng(self._band_seed), len(boot), n_steps
        )
        dev = np.zeros((len(boot), n_steps + 1))  # (B, J+1) on leads 0, step, 2 step, ...
        for j in range(n_steps):
            dev[:, j + 1] = mem * dev[:, j] + innov[:, j]
        pos = np.clip(lead / step, 0.0, float(n_steps))  # (H,)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, n_steps)
        frac = pos - lo
        out = dev[:, lo] + frac * (dev[:, hi] - dev[:, lo])
        first = lo == 0  # within the first step: grows like sqrt(lead)
        out[:, first] = np.sqrt(frac[first]) * dev[:, 1][:, None]
        return out

    def predict(self, t_future: np.ndarray) -> Forecast:
        if self.fallback_ is not None:
            return replace(self._persist.predict(t_future), method=self.name)
        tf = as_times(t_future)
        pred = self._curve(self.params_, tf)
        if not self.boot_params_:
            return Forecast(tf, pred, pred.copy(), pred.copy(), self.level, self.name)
        sims = np.stack([self._curve(p, tf) for p in self.boot_params_])  # (B, H)
        if self.anchored:
            beyond = np.array([self._beyond(p) for p in self.boot_params_])  # (B,)
            sims = sims + self._anchored_deviation(tf - self.t_anchor_)
            sims = np.where(np.isnan(sims), beyond[:, None], sims)
        else:
            sims = sims + self._noise[:, None]
        tail = (1.0 - self.level) / 2.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column stays NaN
            lo = np.nanquantile(sims, tail, axis=0)
            hi = np.nanquantile(sims, 1.0 - tail, axis=0)
        if self.anchored:  # an end among draws gone beyond the curve's reach: no end (NaN)
            lo = np.where(np.isfinite(lo), np.fmin(lo, pred), np.nan)
            hi = np.where(np.isfinite(hi), np.fmax(hi, pred), np.nan)
        else:
            lo = np.fmin(lo, pred)
            hi = np.fmax(hi, pred)
        return Forecast(tf, pred, lo, hi, self.level, self.name)


def _load_stage(
    method: str, load: str | None, drivers: dict[str, np.ndarray], rel_tol: float
) -> int:
    if load is None:
        return 0
    if load not in drivers:
        raise ValueError(
            f"{method}: driver {load!r} (the load stage) not given; have {sorted(drivers)}"
        )
    return stage_start(drivers[load], rel_tol=rel_tol)


class Hyperbolic(CurveForecaster):
    """Hyperbolic settlement from the first reading of the current load stage.

    ``(t - t0) / (s - s0) = a + b (t - t0)``, so ``s = s0 + (t - t0) / (a + b (t - t0))`` and
    the final settlement is ``s0 + 1/b``. `load` names the driver holding the applied load
    (fill height): the stage starts where it last reached its current level, within
    `stage_tol` of it (see `stage_start`); None uses the whole history.
    Points with ``s - s0 <= 0`` cannot enter ``t'/s'`` and are left out of the fit.
    """

    name = "hyperbolic"

    def __init__(
        self,
        load: str | None = None,
        min_points: int = 4,
        stage_tol: float = 0.05,
        *,
        n_boot: int = 200,
        level: float = DEFAULT_LEVEL,
        random_state: int | np.random.Generator | None = 0,
    ) -> None:
        super().__init__(n_boot=n_boot, level=level, random_state=random_state)
        self.load = load
        self.min_points = min_points
        self.stage_tol = stage_tol

    def _window(self, t: np.ndarray, y: np.ndarray, drivers: dict[str, np.ndarray]) -> int:
        return _load_stage(self.name, self.load, drivers, self.stage_tol)

    def _fit_params(self, t: np.ndarray, y: np.ndarray) -> HyperbolicParams:
        if t.size < self.min_points:
            raise FitError(f"{t.size} readings in the current stage, need {self.min_points}")
        t0, s0 = float(t[0]), float(y[0])
        x, s = t[1:] - t0, y[1:] - s0
        ok = s > 0
        if ok.sum() < self.min_points - 1:
            raise FitError("too few readings with settlement above the stage start")
        a, b = _ols(x[ok], x[ok] / s[ok])
        if b <= 0:
            raise FitError(f"slope b = {b:.3g} <= 0: no finite final settlement")
        if a + b * float(x[-1]) <= 0:
            raise FitError("hyperbola has a pole inside the fitted stage")
        return HyperbolicParams(t0, s0, a, b)

    def _curve(self, params: object, t: np.ndarray) -> np.ndarray:
        p = params
        assert isinstance(p, HyperbolicParams)
        x = np.clip(t - p.t0, 0.0, None)
        den = p.a + p.b * x
        with np.errstate(divide="ignore", invalid="ignore"):
            out = p.s0 + np.where(x > 0, x / den, 0.0)
        return np.where((x > 0) & (den <= 0), np.nan, out)

    @property
    def final_(self) -> float:
        """Final settlement ``s0 + 1/b`` (NaN after a fallback)."""
        if self.fallback_ is not None:
            return float("nan")
        p = self.params_
        assert isinstance(p, HyperbolicParams)
        return p.s0 + 1.0 / p.b


class Asaoka(CurveForecaster):
    """Asaoka's method on the current load stage, after explicit resampling to steps of `dt`.

    The stage's observed readings are linearly interpolated onto ``t0, t0 + dt, ...`` (up to
    the last reading, never beyond); ``s_i = b0 + b1 s_{i-1}`` is fitted by least squares;
    ``0 < b1 < 1`` is required (else the settlement does not converge: fallback). Forecast from
    the last reading ``(t_n, s_n)``: ``s(t) = s_f + (s_n - s_f) b1^((t - t_n)/dt)`` with
    ``s_f = b0/(1 - b1)``. `dt` None: the median spacing of the stage's readings.

    Band: from the one-step-ahead errors of that forecast on the stage's readings (each
    forecast from the one before it), carried forward with memory ``b1`` per step of `dt`,
    and refits on stages rebuilt from them (`CurveForecaster`); the point forecast is the
    fitted curve's.
    """

    name = "asaoka"
    anchored = True

    def __init__(
        self,
        dt: float | None = None,
        load: str | None = None,
        min_steps: int = 4,
        stage_tol: float = 0.05,
        *,
        n_boot: int = 200,
        level: float = DEFAULT_LEVEL,
        random_state: int | np.random.Generator | None = 0,
    ) -> None:
        super().__init__(n_boot=n_boot, level=level, random_state=random_state)
        self.dt = dt
        self.load = load
        self.min_steps = min_steps
        self.stage_tol = stage_tol

    def _window(self, t: np.ndarray, y: np.ndarray, drivers: dict[str, np.ndarray]) -> int:
        return _load_stage(self.name, self.load, drivers, self.stage_tol)

    def _fit_params(self, t: np.ndarray, y: np.ndarray) -> AsaokaParams:
        if t.size < 2:
            raise FitError(f"{t.size} readings in the current stage, need at least 2")
        dt = float(self.dt) if self.dt is not None else float(np.median(np.diff(t)))
        if dt <= 0:
            raise FitError("resampling step dt must be positive")
        grid = t[0] + dt * np.arange(int(np.floor((t[-1] - t[0]) / dt + 1e-9)) + 1)  # (G,)
        if grid.size < self.min_steps:
            raise FitError(f"stage spans {grid.size} steps of {dt:g} days, need {self.min_steps}")
        s = np.interp(grid, t, y)  # (G,) explicit linear resampling
        b0, b1 = _ols(s[:-1], s[1:])
        if not 0.0 < b1 < 1.0:
            raise FitError(f"Asaoka slope b1 = {b1:.4g} outside (0, 1): not converging")
        return AsaokaParams(b0, b1, dt, float(t[-1]), float(y[-1]))

    def _curve(self, params: object, t: np.ndarray) -> np.ndarray:
        p = params
        assert isinstance(p, AsaokaParams)
        return p.final + (p.s_ref - p.final) * p.b1 ** ((t - p.t_ref) / p.dt)

    def _reanchor(self, params: object, t_ref: float, y_ref: float) -> AsaokaParams:
        assert isinstance(params, AsaokaParams)
        return replace(params, t_ref=float(t_ref), s_ref=float(y_ref))

    def _memory(self, params: object, step: float) -> float:
        assert isinstance(params, AsaokaParams)
        return float(params.b1 ** (step / params.dt))

    @property
    def final_(self) -> float:
        """Final settlement ``b0 / (1 - b1)`` (NaN after a fallback)."""
        if self.fallback_ is not None:
            return float("nan")
        p = self.params_
        assert isinstance(p, AsaokaParams)
        return p.final


class Fukuzono(CurveForecaster):
    """Fukuzono's inverse-velocity method: time of failure and a displacement forecast.

    Velocity ``v``: with `span` (days), the least-squares slope of the readings in
    ``(t - span, t]`` (at least 3), placed at their mean time, smoothing noisy records; else
    finite differences over `lag` readings at mid-times. Velocities ``<= 0`` (in the direction
    of net movement) are left out; ``1/v = A + B t`` by least squares over the readings of the
    last `window` days (all when None). ``B < 0`` means accelerating, failure at
    ``t_f = -A/B`` (possibly already past); otherwise ``t_f = inf``.

    `fit` sets ``time_of_failure_`` and its band ``failure_lower_``, ``failure_upper_`` (a
    pairs bootstrap of the inverse-velocity points); NaN when fewer than ``min_points - 1``
    velocities. Displacement forecast: ``x(t) = x_n + sign * ln((A + B t)/(A + B t_n)) / B``
    from the last reading, NaN at and after ``t_f``; when ``t_f`` is already past it falls back
    to persistence (``fallback_`` says so) while ``time_of_failure_`` keeps the estimate.

    Displacement band: from the one-step-ahead errors of that forecast on the window's
    readings, accumulated (a velocity does not depend on the displacement), and refits on
    windows rebuilt from them (`CurveForecaster`). A draw that has failed by a time counts as
    moved beyond any value, so the upper end (lower, for downward movement) is NaN where more
    than ``(1 - level) / 2`` of the draws have failed: the band has no end there.
    """

    name = "fukuzono"
    anchored = True

    def __init__(
        self,
        window: float | None = None,
        lag: int = 1,
        span: float | None = None,
        min_points: int = 4,
        *,
        n_boot: int = 200,
        level: float = DEFAULT_LEVEL,
        random_state: int | np.random.Generator | None = 0,
    ) -> None:
        super().__init__(n_boot=n_boot, level=level, random_state=random_state)
        self.window = window
        self.lag = lag
        self.span = span
        self.min_points = min_points

    def _window(self, t: np.ndarray, y: np.ndarray, drivers: dict[str, np.ndarray]) -> int:
        if self.window is None or t.size == 0:
            return 0
        return int(np.searchsorted(t, t[-1] - self.window, side="left"))

    def velocity(self, t: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Times (M,) and velocities (M,) in the direction of net movement."""
        sign = 1.0 if y.size and y[-1] >= y[0] else -1.0
        if self.span is None:
            lag = max(1, self.lag)
            if t.size <= lag:
                return np.zeros(0), np.zeros(0)
            v = sign * (y[lag:] - y[:-lag]) / (t[lag:] - t[:-lag])  # (T - lag,)
            return 0.5 * (t[lag:] + t[:-lag]), v
        tc = t - (t.mean() if t.size else 0.0)
        zero = np.zeros(1)
        c1 = np.concatenate([zero, np.cumsum(np.ones_like(tc))])  # (T+1,)
        ct = np.concatenate([zero, np.cumsum(tc)])
        cy = np.concatenate([zero, np.cumsum(y)])
        ctt = np.concatenate([zero, np.cumsum(tc * tc)])
        cty = np.concatenate([zero, np.cumsum(tc * y)])
        lo = np.searchsorted(t, t - self.span, side="right")  # (T,) first index in window
        hi = np.arange(1, t.size + 1)
        n = c1[hi] - c1[lo]
        st, sy = ct[hi] - ct[lo], cy[hi] - cy[lo]
        stt, sty = ctt[hi] - ctt[lo], cty[hi] - cty[lo]
        den = n * stt - st * st
        ok = (n >= 3) & (den > 1e-12 * np.maximum(n * stt, 1e-300))
        with np.errstate(divide="ignore", invalid="ignore"):
            v = sign * (n * sty - st * sy) / den
            tm = st / n + (t.mean() if t.size else 0.0)
        return tm[ok], v[ok]

    def inverse_velocity(self, t: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Times (M,) and inverse velocities (M,) of the positive velocities."""
        tm, v = self.velocity(t, y)
        ok = v > 0
        return tm[ok], 1.0 / v[ok]

    def _line(self, tm: np.ndarray, iv: np.ndarray) -> tuple[float, float]:
        if tm.size < self.min_points - 1:
            raise FitError(f"{tm.size} positive velocities, need {self.min_points - 1}")
        a, b = _ols(tm, iv)
        span = float(np.ptp(tm))  # resampled (bootstrap) times are not in order
        if abs(b) * span <= 1e-9 * abs(a + b * float(tm.mean())):
            b = 0.0  # flat inverse velocity to rounding error: steady creep, no failure
        return a, b

    def _fit_params(self, t: np.ndarray, y: np.ndarray) -> FukuzonoParams:
        a, b = self._line(*self.inverse_velocity(t, y))
        t_ref = float(t[-1])
        if a + b * t_ref <= 0:
            raise FitError("inverse velocity already reached zero before the last reading")
        sign = 1.0 if y[-1] >= y[0] else -1.0
        return FukuzonoParams(a, b, t_ref, float(y[-1]), sign)

    def _curve(self, params: object, t: np.ndarray) -> np.ndarray:
        p = params
        assert isinstance(p, FukuzonoParams)
        den0 = p.a + p.b * p.t_ref
        u = p.b * (t - p.t_ref) / den0
        with np.errstate(divide="ignore", invalid="ignore"):
            small = np.abs(u) < 1e-12
            factor = np.where(small, 1.0, np.log1p(u) / np.where(small, 1.0, u))
            out = p.x_ref + p.sign * factor * (t - p.t_ref) / den0
        # NaN after the failure, and from an anchor where 1/v <= 0 (no forward velocity)
        return np.where((u > -1.0) & (den0 > 0), out, np.nan)

    def _reanchor(self, params: object, t_ref: float, y_ref: float) -> FukuzonoParams:
        assert isinstance(params, FukuzonoParams)
        return replace(params, t_ref=float(t_ref), x_ref=float(y_ref))

    def _beyond(self, params: object) -> float:
        assert isinstance(params, FukuzonoParams)
        return params.sign * float("inf")  # failed: moved farther than any finite value

    def fit(self, t: np.ndarray, y: np.ndarray, drivers: Drivers | None = None) -> Self:
        super().fit(t, y, drivers)
        t, y, drv = as_history(t, y, drivers)
        start = self._window(t, y, drv)
        tm, iv = self.inverse_velocity(*observed(t[start:], y[start:]))
        nan = float("nan")
        self.time_of_failure_ = self.failure_lower_ = self.failure_upper_ = nan
        try:
            a, b = self._line(tm, iv)
        except FitError:
            return self
        tf = -a / b if b < 0 else float("inf")
        self.time_of_failure_ = tf
        rng = rng_of(self.random_state)
        tfs = []
        for _ in range(self.n_boot):
            k = rng.integers(0, tm.size, size=tm.size)
            try:
                ab = self._line(tm[k], iv[k])
            except FitError:
                continue
            tfs.append(-ab[0] / ab[1] if ab[1] < 0 else float("inf"))
        if tfs:
            tail = (1.0 - self.level) / 2.0
            arr = np.array(tfs)
            self.failure_lower_ = float(min(np.quantile(arr, tail, method="inverted_cdf"), tf))
            self.failure_upper_ = float(max(np.quantile(arr, 1 - tail, method="inverted_cdf"), tf))
        else:
            self.failure_lower_ = self.failure_upper_ = tf
        return self
