"""The detector contract every anomaly scorer follows, and the registry the harness uses.

A detector is fitted on the training period of a `SensorFrame` and then scores any frame
of the same sensors:

- ``fit(frame, train_end) -> self`` may use rows ``< train_end`` only. `SensorwiseDetector`
  enforces this by handing its subclasses a frame cut at ``train_end``; they never see a
  later row.
- ``score(frame) -> DetectorScores``: a per-time score (T,) and a per-sensor score (T, C),
  higher = more anomalous (PyOD's convention). NaN is allowed only where nothing is
  observed: a per-sensor cell may be NaN only where that cell is unobserved, a per-time
  value only where the whole row is unobserved.

Detectors follow scikit-learn's estimator contract: the constructor stores its arguments
unchanged, ``fit`` returns ``self``, fitted attributes end in ``_``; ``get_params`` comes
from `sklearn.base.BaseEstimator`, so a benchmark can record every setting.

The registry maps a name to a factory ``seed -> Detector``; the benchmark builds detectors
by name, so a new detector (the JEPA's energy, a reconstruction baseline) joins the same
harness with one `register_detector` call in its own module, listed in `PLUGIN_MODULES`.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
from sklearn.base import BaseEstimator

from geojepa.energy import row_max
from geojepa.errors import InputError
from geojepa.frame import SensorFrame

log = logging.getLogger(__name__)

__all__ = [
    "PLUGIN_MODULES",
    "Detector",
    "DetectorScores",
    "SensorwiseDetector",
    "available_detectors",
    "check_train_end",
    "make_detector",
    "register_detector",
]


@dataclass(frozen=True)
class DetectorScores:
    """Scores of one frame: ``score`` (T,) and ``sensor_scores`` (T, C), higher = more
    anomalous. ``scored`` (C,) bool marks the sensors that are scored (None: all); the
    others are context (read as input, NaN scores: `geojepa.detectors.response`)."""

    score: np.ndarray  # (T,) float64
    sensor_scores: np.ndarray  # (T, C) float64
    sensor_ids: tuple[str, ...]
    scored: np.ndarray | None = None  # (C,) bool

    def __post_init__(self) -> None:
        score = np.asarray(self.score, dtype=np.float64)
        sensor = np.asarray(self.sensor_scores, dtype=np.float64)
        if score.ndim != 1 or sensor.ndim != 2 or sensor.shape[0] != score.shape[0]:
            raise ValueError(
                f"DetectorScores needs score (T,) and sensor_scores (T, C); "
                f"got {score.shape} and {sensor.shape}"
            )
        if sensor.shape[1] != len(self.sensor_ids):
            raise ValueError(
                f"sensor_scores has {sensor.shape[1]} columns for {len(self.sensor_ids)} sensors"
            )
        object.__setattr__(self, "score", score)
        object.__setattr__(self, "sensor_scores", sensor)
        object.__setattr__(self, "sensor_ids", tuple(str(s) for s in self.sensor_ids))
        if self.scored is not None:
            scored = np.asarray(self.scored, dtype=bool)
            if scored.shape != (sensor.shape[1],):
                raise ValueError(f"scored has shape {scored.shape} for {sensor.shape[1]} sensors")
            object.__setattr__(self, "scored", scored)

    @property
    def n_times(self) -> int:
        return int(self.score.shape[0])

    def slice(self, start: int, stop: int) -> DetectorScores:
        return DetectorScores(
            self.score[start:stop], self.sensor_scores[start:stop], self.sensor_ids, self.scored
        )

    def check_nan(self, frame: SensorFrame) -> None:
        """Raise ValueError if a scored sensor's score is NaN where it is observed, or a
        time's score is NaN where a scored sensor is observed."""
        observed = frame.observed if self.scored is None else frame.observed & self.scored
        bad_cells = np.isnan(self.sensor_scores) & observed
        bad_rows = np.isnan(self.score) & observed.any(axis=1)
        if bad_cells.any() or bad_rows.any():
            t = int(np.flatnonzero(bad_rows | bad_cells.any(axis=1))[0])
            raise ValueError(f"NaN score at row {t}, where a sensor is observed")


def check_train_end(frame: SensorFrame, train_end: int) -> int:
    """Validate ``train_end`` against the frame and return it as an int."""
    end = int(train_end)
    if not 0 < end <= frame.n_times:
        raise ValueError(f"train_end must be in 1..{frame.n_times}, got {train_end}")
    return end


class Detector(BaseEstimator):
    """Base of every detector: ``fit(frame, train_end) -> self`` and ``score(frame)``.

    PyOD's scoring contract on top, for code written against it: ``decision_function``
    (the per-time score), ``fit_threshold`` (after ``fit``: ``decision_scores_``, the
    training period's scores; ``threshold_``, calibrated on them alone by a quantile or
    POT, `geojepa.thresholds`; ``labels_``, 1 where a training score exceeds it) and
    ``predict`` (1 where a score exceeds ``threshold_``, else 0; rows with nothing observed
    get 0). PyOD's ``contamination`` is ``1 - level`` of the quantile method.
    """

    _THRESHOLD_STATE: ClassVar[tuple[str, ...]] = ("threshold_", "decision_scores_", "labels_")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every subclass's ``fit`` first forgets a threshold calibrated before it: a refit
        detector (another site, another split) never predicts with the old one."""
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("fit")
        if own is None or getattr(own, "_forgets_threshold", False):
            return

        @functools.wraps(own)
        def fit(self: Detector, *args: Any, **kw: Any) -> Any:
            for name in Detector._THRESHOLD_STATE:
                self.__dict__.pop(name, None)
            return own(self, *args, **kw)

        fit._forgets_threshold = True  # type: ignore[attr-defined]
        cls.fit = fit  # type: ignore[method-assign]

    def fit(self, frame: SensorFrame, train_end: int) -> Self:
        """Learn normal behaviour from rows ``< train_end`` of `frame` only (forgetting a
        threshold calibrated before: call ``fit_threshold`` again)."""
        raise NotImplementedError

    def score(self, frame: SensorFrame) -> DetectorScores:
        """Per-time (T,) and per-sensor (T, C) scores of `frame`; higher = more anomalous."""
        raise NotImplementedError

    def lookahead_rows(self) -> int:
        """Rows after t whose readings the score of row t may read (after ``fit``): 0 for a
        score of readings up to t. A detector that scores windows every few rows and gives
        each window's score to the block of rows it ends with reads up to block - 1 rows
        ahead; live, that score exists only once the block is complete (``geojepa-edge
        watch`` emits it then), so the benchmark times its alarms at the block's end."""
        return 0

    def decision_function(self, frame: SensorFrame) -> np.ndarray:
        """PyOD's name for the per-time score (T,): higher = more anomalous."""
        return self.score(frame).score

    def fit_threshold(
        self, frame: SensorFrame, train_end: int, method: str = "quantile", level: float = 0.99
    ) -> Self:
        """Calibrate ``threshold_`` on the scores of rows ``< train_end`` only (call after
        ``fit`` on the same split); sets ``decision_scores_`` and ``labels_`` too."""
        from geojepa.thresholds import TrainingScores, calibrate

        end = check_train_end(frame, train_end)
        head = frame.slice_time(0, end)  # later rows are never scored here
        scores = self.decision_function(head)  # (end,)
        self.threshold_ = calibrate(TrainingScores.from_scores(scores, end), method, level).value
        self.decision_scores_ = scores
        self.labels_ = _exceeds(scores, self.threshold_)
        return self

    def predict(self, frame: SensorFrame) -> np.ndarray:
        """(T,) int: 1 where the per-time score exceeds ``threshold_`` (`fit_threshold`)."""
        if not hasattr(self, "threshold_"):
            raise RuntimeError(f"{type(self).__name__}: call fit_threshold before predict")
        return _exceeds(self.decision_function(frame), self.threshold_)


def _exceeds(scores: np.ndarray, threshold: float) -> np.ndarray:
    """(T,) int: 1 where a score is above `threshold`; NaN (nothing observed) gives 0."""
    with np.errstate(invalid="ignore"):
        return (np.nan_to_num(scores, nan=-np.inf) > threshold).astype(np.int64)


def _robust_scale(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column centre (median) and spread (q99 - median, else max - median, else 1).

    raw (T, C) -> centre (C,), scale (C,). Columns with no finite value get (0, 1).
    """
    centre = np.zeros(raw.shape[1])
    scale = np.ones(raw.shape[1])
    for c in range(raw.shape[1]):
        col = raw[:, c]
        col = col[np.isfinite(col)]
        if col.size == 0:
            continue
        med = float(np.median(col))
        spread = float(np.quantile(col, 0.99)) - med
        if not spread > 1e-12:
            spread = float(col.max()) - med
        if not spread > 1e-12:
            spread = 1.0
        centre[c], scale[c] = med, spread
    return centre, scale


class SensorwiseDetector(Detector):
    """A detector that scores each sensor and takes the per-time score as the row maximum.

    Subclasses implement ``_fit_train(train)`` (``train`` is the frame cut at ``train_end``:
    later rows do not exist for them) and ``_raw(frame) -> (T, C)``. When ``normalise`` is
    true, each sensor's raw score is centred on its training median and divided by its
    training spread (q99 - median), so sensors of different kinds compare on one scale;
    the per-time score is then the largest per-sensor score in the row.
    """

    normalise: ClassVar[bool] = True
    leave_out_unseen: ClassVar[bool] = False
    """True: a sensor with fewer than 2 readings before the end of the training period (a
    gauge installed later) is not scored (NaN column, ``unscored_``, warned about) instead
    of refused; the others are scored as usual. Set where the sensor still has a meaning as
    input (the JEPA reads it in every window), as `geojepa detect`'s calibration does."""

    def _fit_train(self, train: SensorFrame) -> np.ndarray | None:
        """Fit on the training frame; may return its raw scores (T_train, C) to save work."""
        raise NotImplementedError

    def _raw(self, frame: SensorFrame) -> np.ndarray:
        raise NotImplementedError

    def fit(self, frame: SensorFrame, train_end: int) -> Self:
        end = check_train_end(frame, train_end)
        train = frame.slice_time(0, end)
        counts = train.observed.sum(axis=0)  # (C,)
        unseen = counts < 2
        if unseen.any() and (not self.leave_out_unseen or unseen.all()):
            c = int(np.flatnonzero(unseen)[0])
            raise InputError(
                f"sensor {frame.sensor_ids[c]!r} has {int(counts[c])} readings before the end "
                "of the training period; a detector needs at least 2",
                hint="leave the sensor out, or move the split later",
            )
        if unseen.any():
            log.warning(
                "%d sensor(s) have fewer than 2 readings before the end of the training "
                "period (%s): not scored (empty score columns); the others are",
                int(unseen.sum()),
                ", ".join(str(frame.sensor_ids[c]) for c in np.flatnonzero(unseen)[:10]),
            )
        self.unscored_ = unseen
        self.sensor_ids_ = tuple(frame.sensor_ids)
        raw = self._fit_train(train)
        if self.normalise:
            if raw is None:
                raw = self._raw(train)  # (T_train, C)
            self.centre_, self.scale_ = _robust_scale(raw)
        else:
            self.centre_ = np.zeros(frame.n_sensors)
            self.scale_ = np.ones(frame.n_sensors)
        if unseen.any():
            self.centre_ = np.where(unseen, np.nan, self.centre_)  # NaN scores: not scored
        return self

    def score(self, frame: SensorFrame) -> DetectorScores:
        if not hasattr(self, "sensor_ids_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit first")
        if tuple(frame.sensor_ids) != self.sensor_ids_:
            raise ValueError(
                "the frame's sensors differ from those the detector was fitted on: "
                f"{list(frame.sensor_ids)[:5]} vs {list(self.sensor_ids_)[:5]}"
            )
        raw = self._raw(frame)  # (T, C)
        sensor = (raw - self.centre_[None, :]) / self.scale_[None, :]
        per_time = row_max(sensor)
        unscored = getattr(self, "unscored_", None)
        scored = None if unscored is None or not unscored.any() else ~unscored
        return DetectorScores(per_time, sensor, self.sensor_ids_, scored)


def zero_unscored(out: DetectorScores, frame: SensorFrame) -> DetectorScores:
    """`out` with every observed cell that no sweep window could score (no context: a single
    gauge's first patches) at 0, the training median: no evidence either way, never NaN
    where there is a reading. For the detectors scored by the mask sweep."""
    gap = np.isnan(out.sensor_scores) & frame.observed  # (T, C)
    if not gap.any():
        return out
    log.debug("%d observed cells had no scoring window; scored 0", int(gap.sum()))
    sensor = np.where(gap, 0.0, out.sensor_scores)
    return DetectorScores(row_max(sensor), sensor, out.sensor_ids)


# ----------------------------------------------------------------------------- registry

DetectorFactory = Callable[[int], Detector]
_REGISTRY: dict[str, DetectorFactory] = {}
_OPT_IN: set[str] = set()

PLUGIN_MODULES: list[str] = [
    "geojepa.detectors.jepa",
    "geojepa.detectors.reconstruction",
    "geojepa.detectors.response",
]
"""Modules imported (when installed) before the registry is read; each registers its
detectors on import. A JEPA detector module appends its own name here."""


def register_detector(name: str, factory: DetectorFactory, *, opt_in: bool = False) -> None:
    """Make `factory` (``seed -> Detector``) available under `name`. `opt_in`: run only when
    asked for by name (it needs something set up first, or is one study's variant), never
    in a default list."""
    if name in _REGISTRY and _REGISTRY[name] is not factory:
        log.debug("detector %r re-registered", name)
    _REGISTRY[name] = factory
    if opt_in:
        _OPT_IN.add(name)
    else:
        _OPT_IN.discard(name)


def _load_plugins() -> None:
    for module in list(PLUGIN_MODULES):
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module)


def available_detectors(opt_in: bool = True) -> list[str]:
    """Names of the registered detectors, in registration order; without the opt-in ones
    (those run only when named) when `opt_in` is False: a default list."""
    _load_plugins()
    return [n for n in _REGISTRY if opt_in or n not in _OPT_IN]


def make_detector(name: str, seed: int = 0) -> Detector:
    """A fresh, unfitted detector registered under `name`."""
    _load_plugins()
    if name not in _REGISTRY:
        raise InputError(
            f"unknown detector {name!r}",
            hint="choose from " + ", ".join(_REGISTRY),
        )
    return _REGISTRY[name](seed)
