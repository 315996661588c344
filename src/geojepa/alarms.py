"""TARP alarm states (green / amber / red) with N-consecutive exceedances, hysteresis and
per-sensor attribution.

A Trigger Action Response Plan raises a level when the score stays at or above that
level's threshold for `n_on` consecutive grid times, and lowers it when the score stays
below the level's clear value (at most the threshold: hysteresis) for `n_off` consecutive
times. Red implies amber. A NaN score (nothing observed) carries no information: it
breaks a run of exceedances and a run toward clearing alike, so the level holds.

Every alarm names its sensors: at any time, the sensors ranked by their per-sensor score
(highest first); an alarm episode is attributed at its onset, the time it was raised.

This module imports only numpy and pandas: the torch-free edge scorer uses it as is.
`AlarmTracker` is the streaming form (constant memory, one step per grid time) and
`alarm_levels` runs the same tracker over a whole series, so both give identical states.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import pandas as pd

__all__ = [
    "Alarm",
    "AlarmTracker",
    "Level",
    "TarpPolicy",
    "alarm_episodes",
    "alarm_levels",
    "alarm_table",
    "attribute",
]


class Level(IntEnum):
    """TARP level. Ordered: GREEN < AMBER < RED."""

    GREEN = 0
    AMBER = 1
    RED = 2

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class TarpPolicy:
    """Thresholds and persistence of the TARP levels.

    amber, red: thresholds (red >= amber); a time counts toward raising a level when its
    score is above the threshold (strictly, as `Detector.predict`: a score equal to a
    threshold calibrated on tied training scores, e.g. many zeros, never floods the site
    with alarms). amber_clear, red_clear: the score must fall to or below these to count
    toward clearing (default: the thresholds themselves, no hysteresis band). n_on / n_off:
    consecutive times needed to raise / to clear.
    """

    amber: float
    red: float
    n_on: int = 1
    n_off: int = 1
    amber_clear: float | None = None
    red_clear: float | None = None

    def __post_init__(self) -> None:
        if not (np.isfinite(self.amber) and np.isfinite(self.red)):
            raise ValueError(f"thresholds must be finite, got amber={self.amber}, red={self.red}")
        if self.red < self.amber:
            raise ValueError(f"red ({self.red}) must be at least amber ({self.amber})")
        if self.n_on < 1 or self.n_off < 1:
            raise ValueError(f"n_on and n_off must be >= 1, got {self.n_on}, {self.n_off}")
        for name, clear, th in (
            ("amber_clear", self.amber_clear, self.amber),
            ("red_clear", self.red_clear, self.red),
        ):
            if clear is not None and clear > th:
                raise ValueError(f"{name} ({clear}) must not exceed its threshold ({th})")

    def thresholds(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """((amber, amber_clear), (red, red_clear))."""
        ac = self.amber if self.amber_clear is None else self.amber_clear
        rc = self.red if self.red_clear is None else self.red_clear
        return (self.amber, ac), (self.red, rc)


@dataclass(frozen=True)
class AlarmStep:
    """The state after one grid time: level, whether it changed, sensors ranked (if given)."""

    level: Level
    changed: bool
    sensors: tuple[str, ...] = ()


class AlarmTracker:
    """Streaming TARP state machine; memory does not grow with the stream."""

    def __init__(self, policy: TarpPolicy, sensor_ids: Sequence[str] = (), top_k: int = 3) -> None:
        self.policy = policy
        self.sensor_ids = tuple(str(s) for s in sensor_ids)
        self.top_k = top_k
        self._levels = policy.thresholds()
        self._active = [False, False]  # amber, red
        self._up = [0, 0]  # consecutive times above the threshold
        self._down = [0, 0]  # consecutive times at or below the clear value
        self.level = Level.GREEN

    def step(self, score: float, sensor_scores: np.ndarray | None = None) -> AlarmStep:
        """Advance one grid time with its per-time score (and optional per-sensor scores (C,))."""
        s = float(score)
        for i, (th, clear) in enumerate(self._levels):
            if np.isnan(s):
                # no information: a run of exceedances or of clear times is broken (each
                # counts consecutive grid times), the level holds
                self._up[i] = 0
                self._down[i] = 0
                continue
            self._up[i] = self._up[i] + 1 if s > th else 0
            self._down[i] = self._down[i] + 1 if s <= clear else 0
            if not self._active[i] and self._up[i] >= self.policy.n_on:
                self._active[i] = True
                self._down[i] = 0
            elif self._active[i] and self._down[i] >= self.policy.n_off:
                self._active[i] = False
        if self._active[1]:
            self._active[0] = True  # red implies amber
        new = Level.RED if self._active[1] else Level.AMBER if self._active[0] else Level.GREEN
        changed = new != self.level
        self.level = new
        ranked: tuple[str, ...] = ()
        if sensor_scores is not None and new != Level.GREEN and self.sensor_ids:
            ranked = attribute(sensor_scores, self.sensor_ids, self.top_k)
        return AlarmStep(new, changed, ranked)


def alarm_levels(scores: np.ndarray, policy: TarpPolicy) -> np.ndarray:
    """TARP level at every time: scores (T,) -> levels (T,) int8 (0 green, 1 amber, 2 red)."""
    tracker = AlarmTracker(policy)
    arr = np.asarray(scores, dtype=np.float64)
    out = np.zeros(arr.shape[0], dtype=np.int8)
    for t, s in enumerate(arr):
        out[t] = int(tracker.step(s).level)
    return out


def attribute(
    sensor_scores: np.ndarray, sensor_ids: Sequence[str], top_k: int | None = 3
) -> tuple[str, ...]:
    """Sensors ranked by score, highest first (NaN last, ties by column order): (C,) -> ids."""
    s = np.asarray(sensor_scores, dtype=np.float64)
    if s.shape != (len(sensor_ids),):
        raise ValueError(f"sensor_scores has shape {s.shape} for {len(sensor_ids)} sensors")
    key = np.where(np.isnan(s), -np.inf, s)
    order = np.argsort(-key, kind="stable")
    order = order[~np.isnan(s[order])]
    if top_k is not None:
        order = order[:top_k]
    return tuple(str(sensor_ids[i]) for i in order)


@dataclass(frozen=True)
class Alarm:
    """One alarm episode: rows ``start .. stop-1`` not green; attributed at its onset."""

    start: int
    stop: int
    peak: Level
    sensors: tuple[str, ...]  # ranked by per-sensor score at `start`
    start_time: pd.Timestamp | None = None
    stop_time: pd.Timestamp | None = None


def alarm_episodes(
    levels: np.ndarray,
    sensor_scores: np.ndarray | None = None,
    sensor_ids: Sequence[str] = (),
    times: pd.DatetimeIndex | None = None,
    top_k: int = 3,
) -> list[Alarm]:
    """Contiguous non-green runs of `levels` (T,), each with its ranked sensors (T, C)."""
    lv = np.asarray(levels)
    on = lv > 0
    edges = np.diff(np.concatenate([[0], on.astype(np.int8), [0]]))
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1)
    out = []
    for a_, b_ in zip(starts, stops, strict=True):
        a, b = int(a_), int(b_)
        ranked: tuple[str, ...] = ()
        if sensor_scores is not None and len(sensor_ids):
            ranked = attribute(sensor_scores[a], sensor_ids, top_k)
        out.append(
            Alarm(
                start=int(a),
                stop=int(b),
                peak=Level(int(lv[a:b].max())),
                sensors=ranked,
                start_time=None if times is None else times[a],
                stop_time=None if times is None or b >= len(times) else times[b],
            )
        )
    return out


def alarm_table(alarms: Sequence[Alarm]) -> pd.DataFrame:
    """Alarms as a table: start, stop (ISO times where known), peak level, sensors (``;``)."""
    return pd.DataFrame(
        {
            "start": [a.start_time if a.start_time is not None else a.start for a in alarms],
            "stop": [a.stop_time if a.stop_time is not None else a.stop for a in alarms],
            "level": [a.peak.label for a in alarms],
            "sensors": [";".join(a.sensors) for a in alarms],
        }
    )
