"""Consolidation back-analysis: settlement as a superposition of one consolidation curve per
load increment, fitted to the whole record (a classic method; `geojepa.forecast.classic`
holds the others).

Model, with t in days and the load q(t) read from the ``load`` driver (fill height or
applied pressure; linearly interpolated onto a daily grid between its readings, and held at
its last value after the cutoff, since no later lift is known)::

    s(t) = c + sum_d dq_d * (a * U(0.848 (t - d) / t90) + b * log(1 + (t - d) / t90))

``U`` is Terzaghi's average degree of consolidation (`geojepa.soil`), ``dq_d`` the load added
on day ``d``; ``a`` (settlement per unit load at the end of primary consolidation) and ``b``
(secondary compression per unit load and log cycle) are >= 0. Without a load driver the whole
record is one unit load placed at its first reading. For each ``t90`` of a log-spaced grid,
``(c, a, b)`` are fitted by least squares (``a, b >= 0``); the ``t90`` with the least squared
error wins. The band: the residual bootstrap of `CurveForecaster`, refitting the grid on each
resample. `Consolidation.primary_final_` is the fitted curve's settlement when the last
increment's primary consolidation reaches 99 % (``t = last lift + 2.1 t90``, the load held),
secondary compression accrued by then included; NaN when the fit cannot identify it.

Guarantees: exact (to the grid's resolution in ``t90``) on noise-free records of its own form,
multi-stage loads included (tested); the fitted curve never depends on readings after the
cutoff; fewer than `min_points` observed readings fall back to persistence and say so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from geojepa.forecast.base import DEFAULT_LEVEL, FitError, carry_forward
from geojepa.forecast.classic import CurveForecaster
from geojepa.soil import TV90, TV_SWITCH, consolidation_curve

T90_GRID: tuple[float, ...] = tuple(float(x) for x in np.geomspace(2.0, 2000.0, 40).round(3))
"""Candidate times to 90 % consolidation (days), log-spaced."""
U_END_PRIMARY = 0.99
"""The average degree of consolidation taken as the end of primary consolidation (Terzaghi's
U reaches 1 only asymptotically)."""
TV_END_PRIMARY = -4.0 / math.pi**2 * math.log((1.0 - U_END_PRIMARY) * math.pi**2 / 8.0)
"""The time factor at `U_END_PRIMARY` (1.781), from the series' first term."""
LOSSES: tuple[str, ...] = ("squared", "huber")
HUBER_K = 1.345  # Huber's threshold, in robust standard deviations of the residuals
HUBER_PASSES = 6  # reweighting passes per t90


@dataclass(frozen=True)
class ConsolidationParams:
    c: float  # reading before any load (the target's unit)
    a: float  # primary settlement per unit load
    b: float  # secondary compression per unit load and unit of log(1 + t / t90)
    t90: float  # days to 90 % primary consolidation
    days: np.ndarray  # (G,) load-grid days
    dq: np.ndarray  # (G,) load added on each grid day


class Consolidation(CurveForecaster):
    """Back-analysis by superposition of consolidation curves (see the module docstring).

    `load` names the driver holding the applied load; None: one unit load at the first
    reading. `t90_grid`: candidate times to 90 % consolidation (days). `loss`: "squared"
    (least squares) or "huber" (reweighted so that spikes, steps and other faulty readings
    weigh less: Huber weights at 1.345 robust standard deviations of the residuals).
    """

    name = "consolidation"

    def __init__(
        self,
        load: str | None = None,
        min_points: int = 5,
        t90_grid: tuple[float, ...] = T90_GRID,
        loss: str = "squared",
        *,
        n_boot: int = 100,
        level: float = DEFAULT_LEVEL,
        random_state: int | np.random.Generator | None = 0,
    ) -> None:
        super().__init__(n_boot=n_boot, level=level, random_state=random_state)
        self.load = load
        self.min_points = min_points
        self.t90_grid = t90_grid
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; use one of {list(LOSSES)}")
        self.loss = loss

    # ------------------------------------------------------------------ the load history
    def _window(self, t: np.ndarray, y: np.ndarray, drivers: dict[str, np.ndarray]) -> int:
        if self.load is None:
            q = np.ones_like(t)
        elif self.load not in drivers:
            raise ValueError(
                f"{self.name}: driver {self.load!r} (the load) not given; have {sorted(drivers)}"
            )
        else:
            q = carry_forward(drivers[self.load])
        known = np.isfinite(q)
        self.load_days_, self.load_dq_ = _load_increments(t[known], q[known])
        self.design_cache_: dict[tuple[int, float, float], list[np.ndarray]] = {}
        return 0

    def _columns(self, t: np.ndarray) -> list[np.ndarray]:
        """Per t90 of the grid: the (n, 2) responses to the load history at times t."""
        key = (t.size, float(t[0]), float(t[-1]))
        if key not in self.design_cache_:
            lag = t[:, None] - self.load_days_[None, :]  # (n, G) days since each increment
            self.design_cache_[key] = [
                load_responses(lag, self.load_dq_, t90) for t90 in self.t90_grid
            ]
        return self.design_cache_[key]

    # ------------------------------------------------------------------ the curve
    def _fit_params(self, t: np.ndarray, y: np.ndarray) -> ConsolidationParams:
        if t.size < self.min_points:
            raise FitError(f"{t.size} observed readings, need {self.min_points}")
        if not np.any(self.load_dq_ != 0.0):
            raise FitError("the load never changes: nothing to back-analyse")
        self.fit_end_ = float(t[-1])
        best = fit_grid(self._columns(t), y, self.t90_grid, self.loss)
        if best is None:
            raise FitError("no t90 of the grid gives a fit")
        c, a, b, t90 = best
        return ConsolidationParams(c, a, b, t90, self.load_days_, self.load_dq_)

    @property
    def t90_(self) -> float:
        """The fitted time to 90 % primary consolidation, days (NaN after a fallback)."""
        if self.fallback_ is not None:
            return float("nan")
        p = self.params_
        assert isinstance(p, ConsolidationParams)
        return p.t90

    @property
    def t90_identified_(self) -> bool:
        """False when the record does not pin t90 down, so the forecast leans on the grid:
        the fitted t90 sits at an end of the grid (consolidation too slow or too fast for
        the record's span), or every reading falls in the early, square-root part of the
        curve of the fitted t90 (there ``a U`` depends on ``a / sqrt(t90)`` alone, and every
        longer t90 fits as well)."""
        t90 = self.t90_
        if not (np.isfinite(t90) and min(self.t90_grid) < t90 < max(self.t90_grid)):
            return False
        loaded = self.load_days_[self.load_dq_ != 0.0]
        elapsed = self.fit_end_ - float(loaded.min()) if loaded.size else 0.0
        return bool(elapsed > TV_SWITCH / TV90 * t90)

    @property
    def primary_end_(self) -> float:
        """When primary consolidation under the last known load ends, days on the record's
        time axis: the last load increment's day plus the time its primary consolidation
        takes to reach `U_END_PRIMARY` (``TV_END_PRIMARY / 0.848 * t90``, about 2.1 t90).
        NaN when the model cannot place it (see `primary_final_`)."""
        if not self._primary_identified():
            return float("nan")
        p = self.params_
        assert isinstance(p, ConsolidationParams)
        loaded = p.days[p.dq != 0.0]
        return float(loaded.max()) + TV_END_PRIMARY / TV90 * p.t90

    @property
    def primary_final_(self) -> float:
        """The settlement the fitted model reaches at the end of primary consolidation under
        the last known load (at `primary_end_`, with the load held), on the readings' scale:
        ``c`` plus every increment's primary part (at least `U_END_PRIMARY` complete) plus the
        secondary compression accrued by then; secondary compression goes on after it.

        NaN when the model cannot identify it: after a fallback, when the fit has no primary
        part (``a = 0``: all the settlement is read as secondary compression), or when the
        record does not pin t90 down (`t90_identified_`), since the time of the end of primary
        consolidation is then the search grid's guess."""
        if not self._primary_identified():
            return float("nan")
        p = self.params_
        assert isinstance(p, ConsolidationParams)
        return float(Consolidation._curve(self, p, np.array([self.primary_end_]))[0])

    def _primary_identified(self) -> bool:
        if self.fallback_ is not None:
            return False
        p = self.params_
        assert isinstance(p, ConsolidationParams)
        return p.a > 0.0 and self.t90_identified_

    def _curve(self, params: object, t: np.ndarray) -> np.ndarray:
        p = params
        assert isinstance(p, ConsolidationParams)
        lag = np.asarray(t, dtype=np.float64)[:, None] - p.days[None, :]  # (H, G)
        return p.c + load_responses(lag, p.dq, p.t90) @ np.array([p.a, p.b])


def load_responses(lag: np.ndarray, dq: np.ndarray, t90: float) -> np.ndarray:
    """(n, 2): the primary and secondary responses, per unit of ``a`` and ``b``, to load
    increments dq (G,) after lags (n, G) days (an increment adds nothing before its day)."""
    primary = unit_primary(lag, t90) @ dq  # (n,)
    secondary = unit_secondary(lag, t90) @ dq  # (n,)
    return np.column_stack([primary, secondary])


def unit_primary(lag: np.ndarray, t90: float) -> np.ndarray:
    """Primary consolidation of a unit load after `lag` days (any shape; 0 before it)."""
    return consolidation_curve(lag, t90, 0.0)


def unit_secondary(lag: np.ndarray, t90: float) -> np.ndarray:
    """Secondary compression of a unit load, log(1 + lag / t90) (0 before it)."""
    return np.log1p(np.maximum(lag, 0.0) / t90)


def _load_increments(t: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Daily load increments (days (G,), dq (G,)) of a load read at times t: linear between
    readings; the first reading's load is applied on its day."""
    if t.size == 0:
        return np.zeros(0), np.zeros(0)
    days = np.arange(np.floor(t[0]), np.ceil(t[-1]) + 1.0)  # (G,)
    level = np.interp(days, t, q)  # held at the ends
    dq = np.diff(level, prepend=0.0)
    keep = dq != 0.0
    return days[keep], dq[keep]


def nonneg_ls(
    x: np.ndarray, y: np.ndarray, w: np.ndarray | None = None
) -> tuple[float, float, float, float] | None:
    """min sum w (c + x @ [a, b] - y)^2 with a, b >= 0: (weighted sse, c, a, b), or None if
    degenerate. `w` (n,) >= 0, default all 1."""
    sw = np.ones(y.size) if w is None else np.sqrt(np.asarray(w, dtype=np.float64))  # (n,)
    best: tuple[float, float, float, float] | None = None
    for cols in ((0, 1), (0,), (1,)):
        m = np.column_stack([np.ones(y.size), x[:, list(cols)]])  # (n, 1 + k)
        coef, *_ = np.linalg.lstsq(m * sw[:, None], y * sw, rcond=None)
        if np.any(coef[1:] < 0.0) or not np.all(np.isfinite(coef)):
            continue
        sse = float(np.sum(((m @ coef - y) * sw) ** 2))
        ab = np.zeros(2)
        ab[list(cols)] = coef[1:]
        if best is None or sse < best[0]:
            best = (sse, float(coef[0]), float(ab[0]), float(ab[1]))
        if len(cols) == 2:
            break  # the full model is feasible: its subsets cannot fit better
    return best


def _fit_one(x: np.ndarray, y: np.ndarray, loss: str) -> tuple[float, float, float, float] | None:
    """(score, c, a, b) for one t90: least squares, or Huber by reweighting."""
    fit = nonneg_ls(x, y)
    if fit is None or loss == "squared":
        return fit
    for _ in range(HUBER_PASSES):
        r = y - (fit[1] + x @ np.array([fit[2], fit[3]]))  # (n,)
        scale = 1.4826 * float(np.median(np.abs(r - np.median(r))))
        if scale <= 0.0:
            break
        k = HUBER_K * scale
        w = np.where(np.abs(r) <= k, 1.0, k / np.maximum(np.abs(r), 1e-300))
        new = nonneg_ls(x, y, w)
        if new is None:
            break
        fit = new
    return fit


def fit_grid(
    designs: list[np.ndarray], y: np.ndarray, t90_grid: tuple[float, ...], loss: str = "squared"
) -> tuple[float, float, float, float] | None:
    """(c, a, b, t90) at the t90 of the grid with the least (weighted) squared error, or
    None when no t90 gives a fit. `designs[k]`: the (n, 2) primary and secondary responses
    for ``t90_grid[k]``."""
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; use one of {list(LOSSES)}")
    best: tuple[float, float, float, float, float] | None = None
    for t90, x in zip(t90_grid, designs, strict=True):
        fit = _fit_one(x, y, loss)
        if fit is not None and (best is None or fit[0] < best[0]):
            best = (fit[0], fit[1], fit[2], fit[3], float(t90))
    return None if best is None else best[1:]


class FuturePaths(Protocol):
    """Futures of the load after a cutoff: ``analogs(t, load, days)`` -> (A, days) daily
    increments on days 1..days after the last reading (A = 0: none known)."""

    def analogs(self, t: np.ndarray, load: np.ndarray, days: int) -> np.ndarray: ...


class ConsolidationFill(Consolidation):
    """The back-analysis driven by possible futures of the load (e.g. `FillPath`'s analogs
    from other sites' fill records) instead of the load held at its last value.

    The curve is fitted exactly as `Consolidation` fits it (the past load only); the
    forecast adds, at each future time, the `stat` ("median" or "mean") over the futures of
    the fitted response to their load increments. With no future known it is
    `Consolidation`'s forecast."""

    name = "consolidation_fill"

    def __init__(
        self,
        futures: FuturePaths,
        load: str = "load",
        days: int = 120,
        stat: str = "median",
        min_points: int = 5,
        t90_grid: tuple[float, ...] = T90_GRID,
        loss: str = "squared",
        *,
        n_boot: int = 100,
        level: float = DEFAULT_LEVEL,
        random_state: int | np.random.Generator | None = 0,
    ) -> None:
        super().__init__(
            load=load,
            min_points=min_points,
            t90_grid=t90_grid,
            loss=loss,
            n_boot=n_boot,
            level=level,
            random_state=random_state,
        )
        if stat not in ("median", "mean"):
            raise ValueError(f"unknown stat {stat!r}; use 'median' or 'mean'")
        self.futures = futures
        self.days = days
        self.stat = stat

    def _window(self, t: np.ndarray, y: np.ndarray, drivers: dict[str, np.ndarray]) -> int:
        start = super()._window(t, y, drivers)
        self.last_day_ = float(np.floor(t[-1])) if t.size else 0.0
        paths = np.zeros((0, self.days))
        if t.size and self.load is not None:
            paths = np.asarray(self.futures.analogs(t, drivers[self.load], self.days))
        self.paths_ = paths  # (A, days)
        return start

    def _curve(self, params: object, t: np.ndarray) -> np.ndarray:
        held = super()._curve(params, t)  # (n,)
        if self.paths_.shape[0] == 0:
            return held
        p = params
        assert isinstance(p, ConsolidationParams)
        days = self.last_day_ + np.arange(1.0, self.days + 1.0)  # (D,)
        lag = np.asarray(t, dtype=np.float64)[:, None] - days[None, :]  # (n, D)
        # (n, D): the response to a unit increment on each future day
        resp = p.a * unit_primary(lag, p.t90) + p.b * unit_secondary(lag, p.t90)
        extra = self.paths_ @ resp.T  # (A, n)
        return held + (np.median(extra, axis=0) if self.stat == "median" else extra.mean(axis=0))
