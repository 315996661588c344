"""The forecaster contract every method follows, classic or learned.

A forecaster is conditioned on one history and then asked for values at later times:

    forecast = Method(...).fit(t, y, drivers).predict(t_future)

- ``t`` (T,) float, **days** on any origin, strictly increasing; irregular steps are fine.
- ``y`` (T,) float, the target (settlement, displacement, head); NaN where not observed.
  NaN cells are unobserved, not errors: methods fit on the finite cells only.
- ``drivers`` optional mapping name -> (T,) float on the same times (fill height, rain, ...).
- ``predict(t_future)`` (H,) float days -> `Forecast` with prediction, lower and upper (H,).

Guarantees:

- `fit` stores the history it needs and returns ``self``; constructors only store arguments
  (scikit-learn's contract); fitted attributes end in ``_``.
- A method that cannot fit a history (too few points, a curve that does not converge) does not
  raise: it falls back to persistence, logs why, and says so in ``fallback_`` (None when the
  method itself was used). Its band is then persistence's band.
- Nothing here ever sees data the caller did not pass: the evaluation harness passes a
  history truncated at the cutoff (`geojepa.forecast.evaluate.truncate`).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

import numpy as np

log = logging.getLogger(__name__)

Drivers = Mapping[str, np.ndarray]
"""Named driver series, each (T,) on the history's times."""

DEFAULT_LEVEL = 0.9
"""Default central coverage of the uncertainty band (5 % to 95 %)."""


class FitError(ValueError):
    """A method cannot be fitted to this history (raised inside methods, caught by `fit`)."""


@dataclass(frozen=True)
class Forecast:
    """Predictions at future times with a central band of coverage `level`.

    Shapes: t, prediction, lower, upper all (H,). ``lower <= prediction <= upper`` where finite.
    """

    t: np.ndarray  # (H,) days
    prediction: np.ndarray  # (H,)
    lower: np.ndarray  # (H,)
    upper: np.ndarray  # (H,)
    level: float = DEFAULT_LEVEL
    method: str = ""

    def __post_init__(self) -> None:
        h = self.t.shape
        for name in ("prediction", "lower", "upper"):
            arr = getattr(self, name)
            if arr.shape != h:
                raise ValueError(f"Forecast.{name} has shape {arr.shape}, expected {h}")


def as_history(
    t: np.ndarray, y: np.ndarray, drivers: Drivers | None = None
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Validate and copy one history: float64 arrays, t finite and strictly increasing."""
    t = np.array(t, dtype=np.float64).reshape(-1)  # (T,)
    y = np.array(y, dtype=np.float64).reshape(-1)  # (T,)
    if t.shape != y.shape:
        raise ValueError(f"t has {t.size} values but y has {y.size}")
    if not np.all(np.isfinite(t)):
        raise ValueError("t must be finite")
    if t.size > 1 and not np.all(np.diff(t) > 0):
        raise ValueError("t must be strictly increasing")
    out: dict[str, np.ndarray] = {}
    for name, arr in (drivers or {}).items():
        a = np.array(arr, dtype=np.float64).reshape(-1)
        if a.shape != t.shape:
            raise ValueError(f"driver {name!r} has {a.size} values but t has {t.size}")
        out[name] = a
    return t, y, out


def as_times(t_future: np.ndarray) -> np.ndarray:
    tf = np.array(t_future, dtype=np.float64).reshape(-1)  # (H,)
    if not np.all(np.isfinite(tf)):
        raise ValueError("t_future must be finite")
    return tf


def observed(t: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The finite cells of a history."""
    ok = np.isfinite(y)
    return t[ok], y[ok]


class Forecaster(ABC):
    """Base of every forecaster: ``fit(t, y, drivers) -> self``, ``predict(t_future) -> Forecast``."""

    name: str = "forecaster"

    @abstractmethod
    def fit(self, t: np.ndarray, y: np.ndarray, drivers: Drivers | None = None) -> Self:
        """Condition on one history (days, target, optional drivers); return self."""

    @abstractmethod
    def predict(self, t_future: np.ndarray) -> Forecast:
        """Forecast at `t_future` (H,) days."""

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments (scikit-learn style), for tables and logs."""
        return {k: v for k, v in vars(self).items() if not k.endswith("_")}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def carry_forward(values: np.ndarray) -> np.ndarray:
    """A copy of `values` (T,) as float64 with every NaN replaced by the last finite value
    before it (NaN before the first one): a load stays until changed."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    idx = np.where(np.isfinite(v), np.arange(v.size), -1)
    last = np.maximum.accumulate(idx) if v.size else idx  # (T,) index of the last finite
    return np.where(last >= 0, v[np.clip(last, 0, None)], np.nan)


def rng_of(random_state: int | np.random.Generator | None) -> np.random.Generator:
    """A generator from a seed or a generator (passed in, never global)."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    return np.random.default_rng(random_state)
