"""Response-only scoring: forcing sensors are context, never alarm sources.

`ResponseOnly` wraps any detector. The inner detector fits and scores the whole frame, so a
forcing sensor (rain gauge, thermometer, barometer, load: `FORCING_KINDS`) still informs
the scores of the others wherever the inner detector reads across sensors (the JEPA reads
every sensor of a window). Its own cells get no score (NaN; ``DetectorScores.scored``
marks the response sensors). So a forcing sensor never ranks in an attribution, never
raises the site alarm and is never named for an alarm: the per-time score is the row
maximum over the response sensors (`geojepa.energy.scored_row_max`), and a time when no
response sensor has a score has none (NaN: no alarm level), whatever the forcing sensors
read. The training-period median score of each forcing sensor (``median_``) only marks
which sensors are context, as the edge calibration's ``context_score`` does.

Guarantees: response sensors' scores are the inner detector's, unchanged; nothing about a
forcing sensor's test-period readings reaches its own score; a frame without a response
sensor is refused (nothing would be scored). `water_level` is not a forcing kind: it may be
a reservoir (a driver) or a well (a response), and is scored.

Registered names: ``geojepa_response``, the energy as ``geojepa detect``, the edge scorer
and ``watch`` score it (in the default list; `geojepa.export.context_scores` gives their
calibration the same rule), and ``<name>_response`` for the embedding density and three
baselines, opt-in (a study's variant, run when named).
"""

from __future__ import annotations

import logging
from typing import Self

import numpy as np

from geojepa.detectors.base import (
    Detector,
    DetectorScores,
    check_train_end,
    make_detector,
    register_detector,
)
from geojepa.energy import scored_row_max, with_context
from geojepa.errors import InputError
from geojepa.frame import SensorFrame

log = logging.getLogger(__name__)

FORCING_KINDS: tuple[str, ...] = ("rain_gauge", "thermometer", "barometer", "load")
"""Sensor kinds that drive the ground's response rather than show it."""


def forcing_mask(frame: SensorFrame) -> np.ndarray:
    """(C,) bool: which of `frame`'s sensors are of a forcing kind."""
    if "kind" not in frame.sensors.columns:
        return np.zeros(frame.n_sensors, dtype=bool)
    kinds = frame.sensors["kind"].astype(str).to_numpy()
    return np.isin(kinds, FORCING_KINDS)


def resting_scores(train: np.ndarray, observed: np.ndarray, forcing: np.ndarray) -> np.ndarray:
    """(C,) each forcing sensor's median training score over observed cells (an observed
    cell without a score counts 0; no observed cell: 0), NaN for the sensors that are
    scored: the finite entries mark the context sensors (their cells get no score). train (T_train, C) per-sensor
    scores, observed (T_train, C), forcing (C,) bool."""
    out = np.full(train.shape[1], np.nan)
    for c in np.flatnonzero(forcing):
        col = train[observed[:, c], c]
        col = np.where(np.isnan(col), 0.0, col)
        out[c] = float(np.median(col)) if col.size else 0.0
    return out


class ResponseOnly(Detector):
    """`inner`'s scores on response sensors; forcing sensors are context, without a score."""

    def __init__(self, inner: Detector) -> None:
        self.inner = inner

    def fit(self, frame: SensorFrame, train_end: int) -> Self:
        end = check_train_end(frame, train_end)
        self.forcing_ = forcing_mask(frame)  # (C,)
        if self.forcing_.all():
            raise InputError(
                "every sensor of the site is a forcing sensor "
                f"({', '.join(FORCING_KINDS)}); nothing would be scored",
                hint="score with the plain detector, or add the response sensors",
            )
        self.inner.fit(frame, end)
        train = self.inner.score(frame.slice_time(0, end)).sensor_scores  # (T_train, C)
        # (C,) each forcing sensor's resting score, NaN for the scored (response) sensors
        self.median_ = resting_scores(train, frame.observed[:end], self.forcing_)
        log.debug("response-only: %d forcing sensor(s) as context", int(self.forcing_.sum()))
        return self

    def lookahead_rows(self) -> int:
        return self.inner.lookahead_rows()

    def score(self, frame: SensorFrame) -> DetectorScores:
        if not hasattr(self, "forcing_"):
            raise RuntimeError("ResponseOnly is not fitted: call fit first")
        out = self.inner.score(frame)
        sensor = with_context(out.sensor_scores, self.median_)  # (T, C), NaN: forcing
        per_time = scored_row_max(sensor, ~self.forcing_)  # (T,): over the response sensors
        return DetectorScores(per_time, sensor, out.sensor_ids, scored=~self.forcing_)


class _Factory:
    """``seed -> ResponseOnly(make_detector(inner, seed))`` under a picklable name."""

    def __init__(self, inner: str) -> None:
        self.inner = inner

    def __call__(self, seed: int) -> ResponseOnly:
        return ResponseOnly(make_detector(self.inner, seed))


register_detector("geojepa_response", _Factory("geojepa"))  # the path of `geojepa detect`
for _inner in (
    "geojepa_density",
    "geojepa_density_knn",
    "geojepa_energy_density",
    "geojepa_density_iforest",
    "trigger",
    "iforest_raw",
    "catch22_knn",
    "reconstruction",
    "geojepa_missing_flag",
    "geojepa_density_missing_flag",
):
    register_detector(f"{_inner}_response", _Factory(_inner), opt_in=True)

__all__ = ["FORCING_KINDS", "ResponseOnly", "forcing_mask", "resting_scores"]
