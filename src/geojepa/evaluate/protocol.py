"""The honest evaluation protocol (DESIGN §5) for one detector on one site.

1. Split by time: rows ``< train_end`` are the training period, the rest the test period;
   nothing is shuffled across the split.
2. ``detector.fit(frame, train_end)``: the detector sees training rows only.
3. ``detector.score(frame)``; the amber and red thresholds are calibrated from
   ``TrainingScores.from_scores(score, train_end)`` only (a quantile or POT). No label,
   training or test, reaches a threshold or a hyperparameter.
4. TARP alarm levels run over the whole series (so the state is warm at the split); the
   test period is compared with the labels. Point metrics (AUC-PR, VUS-PR) score every
   observed (time, sensor) cell: events name their sensors, and on a site where long
   events on some gauges overlap most of the time a per-time score would be judged on
   "is anything happening somewhere", which a random score passes. Event metrics follow
   the site alarm and the sensors it names (top `top_k`): event-wise P/R/F1 without
   point-adjust, detection delay, false alarms per month, false alarms per month at a
   fixed event recall, attribution (is the top-ranked sensor one of the event's?), and the
   point-adjusted F1 (read only beside the random detector's: the benchmark always runs it).

Events that start in the training period are left out of the test metrics (their rows
are excluded, not counted as normal; an alarm that names a sensor of one still under way
is explained, not a false alarm, and the event is neither detected nor missed). Training
scores, from which the alarm thresholds are calibrated, are computed on the training
period alone (a window-ending score of the last training rows would otherwise read test
rows). Events of `Protocol.ignore_kinds` (dropout: missing
data is found by a completeness check, not by an anomaly score; the observed cells of
those rows hold nothing abnormal) are not events here: their rows count as normal. Sensors with too few
training readings (manual campaigns) are left out of the detector's frame and listed. Per event kind, rows of the other kinds'
events are excluded from the point metrics; precision and false alarms are site-wide.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from geojepa.alarms import TarpPolicy, alarm_levels
from geojepa.detectors import Detector, DetectorScores
from geojepa.errors import InputError
from geojepa.frame import SensorFrame, label_mask
from geojepa.metrics import (
    SensorEvent,
    attributed_event_metrics,
    attributed_false_alarms_at_recall,
    cell_auc_pr,
    cell_vus_pr,
    point_adjusted_f1,
    top_k_columns,
)
from geojepa.thresholds import TrainingScores, calibrate

log = logging.getLogger(__name__)

__all__ = [
    "DetectorResult",
    "GroundTruth",
    "LabelledEvent",
    "Protocol",
    "TimeSplit",
    "calibrate_policy",
    "evaluate_detector",
    "evaluate_scores",
    "ground_truth",
    "select_sensors",
    "sensor_events",
    "time_split",
]

ALL = "all"


# ----------------------------------------------------------------------------- splits, truth


@dataclass(frozen=True)
class TimeSplit:
    """Rows ``< train_end`` train, rows ``train_end .. n_times-1`` test."""

    train_end: int
    n_times: int

    def __post_init__(self) -> None:
        if not 0 < self.train_end < self.n_times:
            raise ValueError(
                f"a split needs training and test rows: train_end={self.train_end}, "
                f"n_times={self.n_times}"
            )


def time_split(
    frame: SensorFrame, train_fraction: float = 0.5, until: pd.Timestamp | str | None = None
) -> TimeSplit:
    """Split at the first grid time at or after `until`, else after `train_fraction` of rows."""
    end = frame.index_of(until) if until is not None else round(frame.n_times * train_fraction)
    return TimeSplit(int(end), frame.n_times)


@dataclass(frozen=True)
class LabelledEvent:
    """One labelled event on the grid: rows ``start .. stop-1``, its kind and sensor columns."""

    start: int
    stop: int
    kind: str
    category: str
    sensors: tuple[str, ...]  # empty: the whole site


@dataclass(frozen=True)
class GroundTruth:
    """The labelled events of a frame, kept apart from everything a detector sees."""

    events: tuple[LabelledEvent, ...]
    n_times: int

    def kinds(self) -> list[str]:
        return sorted({e.kind for e in self.events})

    def test_events(self, split: TimeSplit, kind: str | None = None) -> list[LabelledEvent]:
        return [
            e
            for e in self.events
            if e.start >= split.train_end and (kind is None or e.kind == kind)
        ]

    def mask(self, events: Sequence[LabelledEvent]) -> np.ndarray:
        """Rows covered by `events`: (T,) bool."""
        m = np.zeros(self.n_times, dtype=bool)
        for e in events:
            m[e.start : e.stop] = True
        return m

    def cell_mask(self, events: Sequence[LabelledEvent], sensor_ids: Sequence[str]) -> np.ndarray:
        """Cells covered by `events` on the sensors `sensor_ids`: (T, C) bool."""
        col = {s: i for i, s in enumerate(sensor_ids)}
        m = np.zeros((self.n_times, len(col)), dtype=bool)
        for e in events:
            cols = list(col.values()) if not e.sensors else [col[x] for x in e.sensors if x in col]
            m[e.start : e.stop, cols] = True
        return m


def sensor_events(
    events: Sequence[LabelledEvent], sensor_ids: Sequence[str], offset: int = 0
) -> list[SensorEvent]:
    """`events` as `SensorEvent` on the columns of `sensor_ids`, rows shifted by -offset.

    An event whose sensors are all absent from `sensor_ids` gets no columns: no detector
    that scores these sensors can find it, and it counts as missed.
    """
    col = {s: i for i, s in enumerate(sensor_ids)}
    return [
        SensorEvent(
            e.start - offset,
            e.stop - offset,
            None if not e.sensors else tuple(col[x] for x in e.sensors if x in col),
        )
        for e in events
    ]


def ground_truth(labels: pd.DataFrame, frame: SensorFrame) -> GroundTruth:
    """Events of `labels` on the grid of `frame` (rows from `geojepa.frame.label_mask`)."""
    events = []
    if labels is not None:
        for i in range(len(labels)):
            row = labels.iloc[[i]]
            m = label_mask(row, frame)  # (T, C)
            rows = np.flatnonzero(m.any(axis=1))
            if rows.size == 0:
                continue
            names = [s for s in str(row["sensors"].iloc[0] or "").split(";") if s]
            ids = frame.sensor_ids
            hit = tuple(ids[c] for c in np.flatnonzero(m.any(axis=0))) if names else ()
            events.append(
                LabelledEvent(
                    start=int(rows[0]),
                    stop=int(rows[-1]) + 1,
                    kind=str(row["kind"].iloc[0]),
                    category=str(row["category"].iloc[0]) if "category" in row else "",
                    sensors=hit,
                )
            )
    events.sort(key=lambda e: (e.start, e.stop, e.kind))
    return GroundTruth(tuple(events), frame.n_times)


# ----------------------------------------------------------------------------- protocol


@dataclass(frozen=True)
class Protocol:
    """Settings of the §5 protocol; none of them is tuned on test labels."""

    train_fraction: float = 0.5
    threshold: str = "quantile"  # or "pot"
    amber_level: float = 0.99
    red_level: float = 0.999
    n_on: int = 1
    n_off: int = 1
    tolerance: int = 0  # rows after an event's end still counted as detecting it
    grace: int = 24  # rows an alarm may take to clear after an event before it counts as false
    vus_max_window: int = 24
    fa_recall: float = 0.5  # event recall at which false alarms per month are compared
    min_train_readings: int = 10  # sensors with fewer training readings are left out
    top_k: int = 3  # sensors an alarm names (attribution)
    ignore_kinds: tuple[str, ...] = ("dropout",)  # missing data: a completeness check's job


def select_sensors(
    frame: SensorFrame, train_end: int, min_readings: int
) -> tuple[SensorFrame, tuple[str, ...]]:
    """The frame without sensors that have fewer than `min_readings` training readings.

    Returns the kept frame and the ids left out (the benchmark logs and records them once
    per case; every detector result lists them). Events on a left-out sensor stay
    in the ground truth: every detector misses them alike.
    """
    counts = frame.observed[:train_end].sum(axis=0)  # (C,)
    keep = np.flatnonzero(counts >= min_readings)
    dropped = tuple(frame.sensor_ids[c] for c in np.flatnonzero(counts < min_readings))
    if dropped:
        log.debug(
            "%d sensor(s) with fewer than %d training readings left out: %s",
            len(dropped),
            min_readings,
            ", ".join(dropped),
        )
    if keep.size == 0:
        raise InputError(
            f"no sensor has {min_readings} readings before the split",
            hint="use a later split or a longer record",
        )
    if not dropped:
        return frame, ()
    sub = SensorFrame(
        values=frame.values[:, keep],
        observed=frame.observed[:, keep],
        time=frame.time,
        sensors=frame.sensors.iloc[keep].reset_index(drop=True),
        interval=frame.interval,
        counts=None if frame.counts is None else frame.counts[:, keep],
    )
    return sub, dropped


def calibrate_policy(train: TrainingScores, protocol: Protocol) -> TarpPolicy:
    """Amber and red thresholds from training-period scores only."""
    amber = calibrate(train, protocol.threshold, protocol.amber_level).value
    red = calibrate(train, protocol.threshold, protocol.red_level).value
    return TarpPolicy(amber=amber, red=max(red, amber), n_on=protocol.n_on, n_off=protocol.n_off)


def _attribution(
    scores: DetectorScores, levels: np.ndarray, events: Sequence[LabelledEvent], tol: int
) -> tuple[float, int]:
    """Share of sensor-specific events, with an alarm under way, whose first alarm row ranks
    one of the event's sensors first; and how many events were judged."""
    hits, judged = 0, 0
    for e in events:
        if not e.sensors:
            continue
        on = np.flatnonzero(levels[e.start : e.stop + tol] > 0)
        if on.size == 0:
            continue
        row = scores.sensor_scores[e.start + int(on[0])]
        if np.isnan(row).all():
            continue
        judged += 1
        hits += int(scores.sensor_ids[int(np.nanargmax(row))] in e.sensors)
    return (hits / judged if judged else float("nan")), judged


def evaluate_scores(
    scores: DetectorScores,
    frame: SensorFrame,
    truth: GroundTruth,
    split: TimeSplit,
    protocol: Protocol,
    train_score: np.ndarray | None = None,
    lookahead: int = 0,
) -> dict[str, dict[str, float]]:
    """Metrics of already computed scores under the protocol: {kind or "all": {metric: value}}.

    `train_score` (T_train,): the per-time score of the training period scored alone, to
    calibrate the thresholds on (`evaluate_detector` passes it); None: the first rows of
    `scores`, right only for a score that reads no later row.

    Point metrics (AUC-PR, VUS-PR) score every observed (time, sensor) cell of the test
    period against the cell labels. Event metrics follow the site alarm (TARP on the
    per-time score, thresholds from training scores) and its attribution: an event is
    detected when the alarm names one of its sensors among the top `protocol.top_k`.

    `lookahead` (`Detector.lookahead_rows`): rows after t a score of row t may read. Point
    metrics keep each score on the rows it describes; the alarm, its attribution and every
    event metric read each score only from the row where it exists live, `lookahead` rows
    later (`as_emitted`), so a block-scored detector's alarms come when its block completes.
    """
    calib = scores.score if train_score is None else train_score
    train = TrainingScores.from_scores(calib, split.train_end)
    policy = calibrate_policy(train, protocol)
    live = as_emitted(scores, lookahead)  # what a live monitor has at each row
    levels = alarm_levels(live.score, policy)  # (T,) over the whole series
    a = split.train_end
    ids = list(scores.sensor_ids)
    ignored = set(protocol.ignore_kinds)  # not events at all: their cells count as normal
    test_events = [e for e in truth.test_events(split) if e.kind not in ignored]
    early = [e for e in truth.events if e.start < a and e.kind not in ignored]
    excluded = truth.cell_mask(early, ids)[a:]  # (T_test, C) cells of events begun before
    excluded_rows = truth.mask(early)[a:]
    valid = frame.observed[a:] & ~excluded  # (T_test, C)
    cells = truth.cell_mask(test_events, ids)[a:]  # (T_test, C)
    s_cells = scores.sensor_scores[a:]  # (T_test, C): point metrics
    s_test = live.score[a:]  # (T_test,): alarms and events read the live scores
    alarm_test = levels[a:] > 0
    ranked = top_k_columns(live.sensor_scores[a:], protocol.top_k)  # (T_test, k)
    tol, grace = protocol.tolerance, protocol.grace
    sev = sensor_events(test_events, ids, a)
    begun = sensor_events(early, ids, a)  # explain alarms that name them; never scored
    em = attributed_event_metrics(alarm_test, ranked, sev, frame.interval, tol, grace, begun)
    attr, n_attr = _attribution(live, levels, test_events, tol)
    rows_truth = truth.mask(test_events)[a:]
    out: dict[str, dict[str, float]] = {}
    out[ALL] = {
        "auc_pr": cell_auc_pr(s_cells, cells, valid),
        "vus_pr": cell_vus_pr(s_cells, cells, protocol.vus_max_window, valid=valid),
        "event_precision": em.precision,
        "event_recall": em.recall,
        "event_f1": em.f1,
        "delay": em.mean_delay,
        "false_alarms_per_month": em.false_alarms_per_month,
        "fa_per_month_at_recall": attributed_false_alarms_at_recall(
            s_test, ranked, sev, frame.interval, protocol.fa_recall, tol, grace, begun
        ),
        "pa_f1": point_adjusted_f1(alarm_test & ~excluded_rows, rows_truth),
        "attribution_top1": attr,
        "n_events": float(em.n_events),
        "n_attributed": float(n_attr),
        "cell_prevalence": float(cells[valid].mean()) if valid.any() else float("nan"),
        "amber": policy.amber,
        "red": policy.red,
    }
    for kind in truth.kinds():
        evts = [] if kind in ignored else truth.test_events(split, kind)
        if not evts:
            continue
        kcells = truth.cell_mask(evts, ids)[a:]
        kvalid = valid & ~(cells & ~kcells)  # leave out cells of other kinds' events
        km = attributed_event_metrics(
            alarm_test, ranked, sensor_events(evts, ids, a), frame.interval, tol, grace
        )
        out[kind] = {
            "auc_pr": cell_auc_pr(s_cells, kcells, kvalid),
            "vus_pr": cell_vus_pr(s_cells, kcells, protocol.vus_max_window, valid=kvalid),
            "event_recall": km.recall,
            "delay": km.mean_delay,
            "n_events": float(km.n_events),
        }
    return out


@dataclass(frozen=True)
class DetectorResult:
    """Metrics of one detector on one site, with its settings and timings."""

    metrics: dict[str, dict[str, float]]
    params: dict[str, Any]
    fit_seconds: float
    score_seconds: float
    left_out: tuple[str, ...] = ()  # sensors with too few training readings


def as_emitted(scores: DetectorScores, lookahead: int) -> DetectorScores:
    """`scores` as a live monitor has them: each row's score from the row where it can
    first be computed, `lookahead` rows later (rows (T,) and cells (T, C) moved down by
    `lookahead`; the first `lookahead` rows have none yet, NaN)."""
    if lookahead <= 0:
        return scores
    n = min(int(lookahead), scores.n_times)
    score = np.full_like(scores.score, np.nan)
    cells = np.full_like(scores.sensor_scores, np.nan)
    score[n:] = scores.score[: scores.n_times - n]
    cells[n:] = scores.sensor_scores[: scores.n_times - n]
    return DetectorScores(score, cells, scores.sensor_ids)


def evaluate_detector(
    detector: Detector,
    frame: SensorFrame,
    truth: GroundTruth,
    split: TimeSplit,
    protocol: Protocol,
) -> DetectorResult:
    """Fit on the training period, score, calibrate on training scores, measure on the test.

    Sensors with fewer than ``protocol.min_train_readings`` training readings are left out
    of the detector's frame (see `select_sensors`); `truth` is that of the full frame.
    """
    if truth.n_times != frame.n_times:
        raise ValueError(f"truth has {truth.n_times} rows for a frame of {frame.n_times}")
    frame, left_out = select_sensors(frame, split.train_end, protocol.min_train_readings)
    t0 = time.perf_counter()
    detector.fit(frame, split.train_end)
    t1 = time.perf_counter()
    scores = detector.score(frame)
    t2 = time.perf_counter()
    scores.check_nan(frame)
    # thresholds from the training period scored alone, as `Detector.fit_threshold` does:
    # a window-ending score of the last training rows read up to a stride of test rows
    train_score = detector.score(frame.slice_time(0, split.train_end)).score
    metrics = evaluate_scores(
        scores, frame, truth, split, protocol, train_score, detector.lookahead_rows()
    )
    params = {k: _jsonable(v) for k, v in detector.get_params(deep=False).items()}
    return DetectorResult(metrics, params, t1 - t0, t2 - t1, left_out)


def _jsonable(v: Any) -> Any:
    if isinstance(v, (bool, int, float, str)) or v is None:
        return v
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return repr(v)
