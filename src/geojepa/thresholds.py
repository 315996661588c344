"""Alarm thresholds calibrated on training-period scores only: an empirical quantile or POT.

POT (peaks over threshold): the scores above a high initial quantile ``u`` are modelled by a
generalised Pareto distribution (shape xi, scale sigma, fitted by probability-weighted
moments), and the threshold is the score exceeded with probability `risk`:

    z = u + sigma / xi * ((risk * n / n_u) ** (-xi) - 1)      (xi != 0)
    z = u - sigma * log(risk * n / n_u)                       (xi == 0)

where n is the number of training scores and n_u of those above u. This extrapolates past
the largest training score, where a plain quantile cannot.

Guarantees (the honest-evaluation rule of the design, enforced by the API):

- every calibration function takes a `TrainingScores` as its only data argument, and
  refuses anything else with a TypeError; its other arguments are plain numbers;
- a `TrainingScores` is built from a score series and the split index and keeps only the
  rows before the split (`TrainingScores.from_scores`); it refuses boolean arrays, so a
  label mask cannot pass for scores;
- NaN training scores (rows with nothing observed) are counted and logged, not used.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger(__name__)

__all__ = [
    "CALIBRATORS",
    "Threshold",
    "TrainingScores",
    "calibrate",
    "fit_gpd",
    "pot_threshold",
    "quantile_threshold",
]


@dataclass(frozen=True)
class TrainingScores:
    """Per-time scores of the training period only: values (N,) finite float64."""

    values: np.ndarray
    n_nan: int = 0

    def __post_init__(self) -> None:
        raw = np.asarray(self.values)
        if raw.dtype == np.bool_:
            raise TypeError("TrainingScores got a boolean array: labels are not scores")
        if raw.ndim != 1:
            raise ValueError(f"training scores must be 1-D, got shape {raw.shape}")
        arr = raw.astype(np.float64)
        if not np.isfinite(arr).all():
            raise ValueError("TrainingScores must be finite; build it with from_scores")
        if arr.size == 0:
            raise ValueError("no finite training scores to calibrate on")
        arr.setflags(write=False)
        object.__setattr__(self, "values", arr)

    @classmethod
    def from_scores(cls, scores: np.ndarray, train_end: int) -> TrainingScores:
        """Rows ``< train_end`` of a per-time score series (T,), NaN rows counted and left out."""
        raw = np.asarray(scores)
        if raw.dtype == np.bool_:
            raise TypeError("TrainingScores got a boolean array: labels are not scores")
        head = raw[: int(train_end)].astype(np.float64)
        finite = np.isfinite(head)
        n_nan = int((~finite).sum())
        if n_nan:
            log.info(
                "%d of %d training scores are NaN (nothing observed) and not used", n_nan, head.size
            )
        return cls(values=head[finite], n_nan=n_nan)

    @property
    def n(self) -> int:
        return int(self.values.size)


@dataclass(frozen=True)
class Threshold:
    """A calibrated threshold: `value`, how it was found, and the fit's parameters."""

    value: float
    method: str
    level: float
    params: dict[str, float] = field(default_factory=dict)


def _require_training(train: object) -> TrainingScores:
    if not isinstance(train, TrainingScores):
        raise TypeError(
            f"thresholds are calibrated on TrainingScores only, got {type(train).__name__}; "
            "build one with TrainingScores.from_scores(scores, train_end)"
        )
    return train


def quantile_threshold(train: TrainingScores, q: float = 0.99) -> Threshold:
    """The empirical `q` quantile of the training scores."""
    tr = _require_training(train)
    if not 0.0 < q < 1.0:
        raise ValueError(f"q must be in (0, 1), got {q}")
    return Threshold(float(np.quantile(tr.values, q)), "quantile", float(q))


def fit_gpd(excess: np.ndarray) -> tuple[float, float]:
    """Shape xi and scale sigma of a generalised Pareto fitted to excesses (>= 0).

    Probability-weighted moments (Hosking & Wallis, 1987), valid for xi < 1; xi is clipped
    to [-0.5, 0.9] where the estimator is stable.
    """
    y = np.sort(np.asarray(excess, dtype=np.float64))
    n = y.size
    if n < 2:
        raise ValueError(f"need at least 2 excesses to fit a GPD, got {n}")
    p = (np.arange(1, n + 1) - 0.35) / n  # plotting positions, ascending
    a0 = float(y.mean())
    a1 = float(np.mean((1.0 - p) * y))
    denom = a0 - 2.0 * a1
    if not a0 > 0 or not denom > 1e-12:
        return 0.0, max(a0, 1e-12)
    k = a0 / denom - 2.0  # Hosking's k = -xi
    sigma = 2.0 * a0 * a1 / denom
    xi = float(np.clip(-k, -0.5, 0.9))
    return xi, max(float(sigma), 1e-12)


def pot_threshold(
    train: TrainingScores, risk: float = 1e-3, init_quantile: float = 0.98, min_peaks: int = 10
) -> Threshold:
    """The score exceeded with probability `risk`, from a GPD fitted to training peaks.

    Falls back to the empirical ``1 - risk`` quantile (logged) when fewer than `min_peaks`
    training scores exceed the initial quantile or when `risk` is not below their share.
    """
    tr = _require_training(train)
    if not 0.0 < risk < 1.0 or not 0.0 < init_quantile < 1.0:
        raise ValueError(f"risk and init_quantile must be in (0, 1), got {risk}, {init_quantile}")
    u = float(np.quantile(tr.values, init_quantile))
    excess = tr.values[tr.values > u] - u
    n, n_u = tr.n, int(excess.size)
    if n_u < min_peaks or risk >= n_u / n:
        log.info("POT: %d peaks over u=%.4g; using the empirical quantile instead", n_u, u)
        q = float(np.quantile(tr.values, 1.0 - risk))
        return Threshold(q, "pot", float(risk), {"u": u, "peaks": float(n_u), "fallback": 1.0})
    xi, sigma = fit_gpd(excess)
    r = risk * n / n_u
    z = u - sigma * math.log(r) if abs(xi) < 1e-6 else u + sigma / xi * (r ** (-xi) - 1.0)
    return Threshold(
        float(z),
        "pot",
        float(risk),
        {"u": u, "xi": xi, "sigma": sigma, "peaks": float(n_u), "fallback": 0.0},
    )


CALIBRATORS = {"quantile": quantile_threshold, "pot": pot_threshold}
"""Calibration functions by name; each takes (TrainingScores, level)."""


def calibrate(train: TrainingScores, method: str = "quantile", level: float = 0.99) -> Threshold:
    """Calibrate by name. `level` is the quantile q for ``quantile`` and ``1 - risk`` for ``pot``."""
    tr = _require_training(train)
    if method == "quantile":
        return quantile_threshold(tr, level)
    if method == "pot":
        return pot_threshold(tr, risk=1.0 - level)
    raise ValueError(f"unknown threshold method {method!r}; use one of {sorted(CALIBRATORS)}")
