"""Anomaly-detection metrics for time series, chosen to be hard to flatter.

- `auc_pr`: area under the point-wise precision-recall curve (average precision).
- `range_auc_pr` / `vus_pr`: the range-based PR area of Paparrizos et al. (VLDB 2022): labels
  get a soft buffer of `window` rows around each event, recall is weighted by the share
  of events touched ("existence"); VUS-PR averages it over buffer sizes 0..max_window,
  so it does not depend on one arbitrary tolerance.
- `event_metrics`: event-wise precision / recall / F1 with no point-adjust: an event counts
  once, detected when an alarm is on somewhere inside it; a false alarm is a run of alarm
  rows outside the events (and a short clearing grace after each). Also detection delay
  and false alarms per month.
- `point_adjusted_f1`: the common, inflated point-adjusted F1. It is reported only beside a
  random score's value under the same protocol (the harness does this), because random
  scores reach high point-adjusted F1 on long events.
- `false_alarms_at_recall`: false alarms per month at the highest threshold that reaches a
  given event recall (a point on an evaluation curve, not a calibration).
- Sensor-aware forms, for events that name their sensors: `cell_auc_pr` / `cell_vus_pr`
  score every (time, sensor) cell against the cell labels (columns laid end to end, with
  a gap wider than any buffer, so nothing leaks between sensors);
  `attributed_event_metrics` counts an event as detected only when the site alarm is on
  *and* names one of its sensors among the top-ranked, and an alarm row as false when it
  names no sensor of an event under way (a right alarm for the wrong gauge is not a hit).

Guarantees: a NaN score ranks below every finite score and never raises an alarm; metrics
that are undefined (no positives, no events) return NaN rather than a made-up number.
Inputs are never modified.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "EventMetrics",
    "Segment",
    "SensorEvent",
    "attributed_event_metrics",
    "attributed_false_alarms_at_recall",
    "auc_pr",
    "cell_auc_pr",
    "cell_vus_pr",
    "event_metrics",
    "false_alarms_at_recall",
    "point_adjusted_f1",
    "range_auc_pr",
    "segments",
    "top_k_columns",
    "vus_pr",
]

DAYS_PER_MONTH = 365.25 / 12.0


@dataclass(frozen=True)
class Segment:
    """Rows ``start .. stop-1`` of a series."""

    start: int
    stop: int

    def __post_init__(self) -> None:
        if self.stop <= self.start:
            raise ValueError(f"empty segment {self.start}..{self.stop}")


def segments(mask: np.ndarray) -> list[Segment]:
    """Contiguous True runs of a (T,) bool mask."""
    m = np.asarray(mask, dtype=bool)
    edges = np.diff(np.concatenate([[0], m.astype(np.int8), [0]]))
    return [
        Segment(int(a), int(b))
        for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True)
    ]


def _finite_scores(scores: np.ndarray) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    return np.where(np.isfinite(s), s, -np.inf)


def _ap(ranked_tp: np.ndarray, n_pred: np.ndarray, recall: np.ndarray) -> float:
    """Step-wise area sum (R_i - R_{i-1}) * P_i over thresholds in descending order."""
    precision = np.where(n_pred > 0, ranked_tp / np.maximum(n_pred, 1), 1.0)
    r = np.concatenate([[0.0], recall])
    return float(np.sum(np.diff(r) * precision))


def _threshold_ranks(s_sorted: np.ndarray) -> np.ndarray:
    """Indices (into the descending order) of the last element of each tie group."""
    finite = np.isfinite(s_sorted)
    last = np.flatnonzero(np.concatenate([s_sorted[1:] != s_sorted[:-1], [True]]) & finite)
    return last


def auc_pr(scores: np.ndarray, truth: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Average precision of per-time `scores` (T,) against `truth` (T,) bool on `valid` rows."""
    s = _finite_scores(scores)
    y = np.asarray(truth, dtype=bool)
    if valid is not None:
        keep = np.asarray(valid, dtype=bool)
        s, y = s[keep], y[keep]
    if not y.any():
        return float("nan")
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    ranks = _threshold_ranks(s_sorted)
    tp = np.cumsum(y_sorted)[ranks].astype(np.float64)
    return _ap(tp, ranks + 1.0, tp / y.sum())


def _soft_labels(truth: np.ndarray, window: int) -> np.ndarray:
    """Labels with a sqrt ramp of `window` rows on both sides of every event: (T,) -> (T,)."""
    y = np.asarray(truth, dtype=bool)
    soft = y.astype(np.float64)
    if window <= 0 or not y.any():
        return soft
    idx = np.flatnonzero(y)
    t = np.arange(y.size)
    # distance to the nearest positive row
    pos = np.searchsorted(idx, t)
    left = np.where(pos > 0, t - idx[np.maximum(pos - 1, 0)], np.inf)
    right = np.where(pos < idx.size, idx[np.minimum(pos, idx.size - 1)] - t, np.inf)
    d = np.minimum(np.abs(left), np.abs(right))
    ramp = np.sqrt(np.clip(1.0 - d / (window + 1.0), 0.0, 1.0))
    return np.maximum(soft, np.where(d <= window, ramp, 0.0))


def range_auc_pr(
    scores: np.ndarray, truth: np.ndarray, window: int = 0, valid: np.ndarray | None = None
) -> float:
    """Range-based PR area with a soft buffer of `window` rows (Paparrizos et al., 2022).

    For each threshold: precision = sum(soft * pred) / sum(pred); recall =
    min(1, sum(soft * pred) / P) * existence, with P the mean of the hard and soft positive
    mass and existence the share of (buffered) events holding a predicted row.
    """
    s = _finite_scores(scores)
    y = np.asarray(truth, dtype=bool)
    if valid is not None:
        keep = np.asarray(valid, dtype=bool)
        s = np.where(keep, s, -np.inf)
        y = y & keep
    if not y.any():
        return float("nan")
    soft = _soft_labels(y, window)
    if valid is not None:
        soft = np.where(keep, soft, 0.0)
    events = segments(soft > 0)
    best = np.array([s[e.start : e.stop].max() for e in events])  # (E,) best score per event
    order = np.argsort(-s, kind="stable")
    s_sorted = s[order]
    ranks = _threshold_ranks(s_sorted)
    if ranks.size == 0:
        return 0.0
    tp = np.cumsum(soft[order])[ranks]
    p_eff = 0.5 * (y.sum() + soft.sum())
    thr = s_sorted[ranks]  # descending thresholds
    existence = (best[None, :] >= thr[:, None]).mean(axis=1)  # (K,)
    recall = np.minimum(tp / p_eff, 1.0) * existence
    return _ap(tp, ranks + 1.0, np.maximum.accumulate(recall))


def vus_pr(
    scores: np.ndarray,
    truth: np.ndarray,
    max_window: int = 24,
    n_windows: int = 7,
    valid: np.ndarray | None = None,
) -> float:
    """Volume under the range-PR surface: mean `range_auc_pr` over windows 0..max_window."""
    windows = sorted({round(w) for w in np.linspace(0, max_window, n_windows)})
    vals = [range_auc_pr(scores, truth, w, valid) for w in windows]
    return float(np.mean(vals)) if vals and not np.isnan(vals).any() else float("nan")


@dataclass(frozen=True)
class EventMetrics:
    """Event-wise results of one alarm series against labelled events (no point-adjust)."""

    precision: float
    recall: float
    f1: float
    n_events: int
    n_detected: int
    n_alarms: int  # contiguous alarm episodes
    n_false_alarms: int  # alarm runs outside events (see `event_metrics`)
    false_alarms_per_month: float
    mean_delay: float  # grid steps from event start to first alarm, detected events only
    median_delay: float
    delays: tuple[int, ...]
    detected: tuple[bool, ...]  # per event


def _months(n_rows: int, interval: pd.Timedelta) -> float:
    return n_rows * pd.Timedelta(interval).total_seconds() / (86400.0 * DAYS_PER_MONTH)


def _tally(
    on: np.ndarray,
    false_rows: np.ndarray,
    detected: list[bool],
    delays: list[int],
    interval: pd.Timedelta,
) -> EventMetrics:
    """`EventMetrics` from an alarm (T,), its rows that count as false (T,) and the per-event
    detections and delays. Precision = detected / (detected + false alarm runs)."""
    n_false = len(segments(false_rows))
    n_events = len(detected)
    n_det = int(sum(detected))
    precision = n_det / (n_det + n_false) if n_det + n_false else float("nan")
    recall = n_det / n_events if n_events else float("nan")
    if n_events and n_det + n_false and precision + recall > 0:
        f1 = 2 * precision * recall / (precision + recall)
    elif n_events:
        f1 = 0.0
    else:
        f1 = float("nan")
    months = _months(on.size, interval)
    return EventMetrics(
        precision=precision,
        recall=recall,
        f1=f1,
        n_events=n_events,
        n_detected=n_det,
        n_alarms=len(segments(on)),
        n_false_alarms=n_false,
        false_alarms_per_month=n_false / months if months > 0 else float("nan"),
        mean_delay=float(np.mean(delays)) if delays else float("nan"),
        median_delay=float(np.median(delays)) if delays else float("nan"),
        delays=tuple(delays),
        detected=tuple(detected),
    )


def event_metrics(
    alarm: np.ndarray,
    events: Sequence[Segment],
    interval: pd.Timedelta,
    tolerance: int = 0,
    grace: int = 0,
) -> EventMetrics:
    """Event-wise precision/recall/F1, delay and false alarms per month.

    alarm (T,) bool. An event is detected when the alarm is on in rows
    ``start .. stop - 1 + tolerance``; its delay is the first such row minus ``start``.
    A false alarm is a contiguous run of alarm rows outside every event's rows
    ``start .. stop - 1 + max(tolerance, grace)`` (`grace`: rows an alarm may take to clear
    after an event). An alarm that starts before an event therefore counts a false alarm
    for its early part, and an alarm that never clears counts one per gap between events:
    a permanent alarm cannot look precise. Precision = detected / (detected + false alarms).
    """
    on = np.asarray(alarm, dtype=bool)
    t = on.size
    allowed = np.zeros(t, dtype=bool)
    delays: list[int] = []
    detected: list[bool] = []
    for ev in events:
        a, b = max(ev.start, 0), min(ev.stop + tolerance, t)
        allowed[a : min(ev.stop + max(tolerance, grace), t)] = True
        hit = np.flatnonzero(on[a:b])
        detected.append(bool(hit.size))
        if hit.size:
            delays.append(int(hit[0]))
    return _tally(on, on & ~allowed, detected, delays, interval)


def point_adjusted_f1(pred: np.ndarray, truth: np.ndarray) -> float:
    """Point-adjusted F1: every row of an event counts as found if any of its rows is.

    Inflated by construction; report it only beside a random score's.
    """
    p = np.asarray(pred, dtype=bool).copy()
    y = np.asarray(truth, dtype=bool)
    if not y.any():
        return float("nan")
    for seg in segments(y):
        if p[seg.start : seg.stop].any():
            p[seg.start : seg.stop] = True
    tp = float((p & y).sum())
    if tp == 0:
        return 0.0
    precision = tp / p.sum()
    recall = tp / y.sum()
    return 2 * precision * recall / (precision + recall)


def false_alarms_at_recall(
    scores: np.ndarray,
    events: Sequence[Segment],
    interval: pd.Timedelta,
    recall: float,
    tolerance: int = 0,
    grace: int = 0,
) -> float:
    """False alarms per month at the highest threshold whose event recall is >= `recall`.

    The alarm at a threshold is simply ``score >= threshold``; recall changes only at each
    event's best score, so the threshold is the k-th best of those (k = ceil(recall * E)).
    An evaluation curve read at one recall (it looks at the labels), never a way to choose
    an operating threshold. NaN when there are no events or too few can be reached.
    """
    s = _finite_scores(scores)
    if not events:
        return float("nan")
    t = s.size
    best = np.sort(
        [s[max(e.start, 0) : min(e.stop + tolerance, t)].max(initial=-np.inf) for e in events]
    )[::-1]
    k = max(int(np.ceil(recall * len(events) - 1e-9)), 1)
    thr = best[k - 1]
    if not np.isfinite(thr):
        return float("nan")
    return event_metrics(s >= thr, events, interval, tolerance, grace).false_alarms_per_month


# ----------------------------------------------------------------------------- sensor-aware


@dataclass(frozen=True)
class SensorEvent:
    """Rows ``start .. stop-1`` on sensor columns `columns` (None: every sensor; (): none of
    the scored sensors, so no detector can find it)."""

    start: int
    stop: int
    columns: tuple[int, ...] | None

    def __post_init__(self) -> None:
        if self.stop <= self.start:
            raise ValueError(f"empty event {self.start}..{self.stop}")


def _flatten(x: np.ndarray, pad: int, fill: float | bool) -> np.ndarray:
    """Columns of (T, C) laid end to end with `pad` rows of `fill` after each: -> (C*(T+pad),)."""
    t, c = x.shape
    out = np.full((c, t + pad), fill, dtype=x.dtype)
    out[:, :t] = x.T
    return out.reshape(-1)


def cell_auc_pr(scores: np.ndarray, truth: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Average precision over (time, sensor) cells: scores, truth, valid are (T, C)."""
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(truth, dtype=bool).reshape(-1)
    v = None if valid is None else np.asarray(valid, dtype=bool).reshape(-1)
    return auc_pr(s, y, v)


def cell_vus_pr(
    scores: np.ndarray,
    truth: np.ndarray,
    max_window: int = 24,
    n_windows: int = 7,
    valid: np.ndarray | None = None,
) -> float:
    """VUS-PR over cells: each sensor's column is a series; buffers never cross sensors."""
    pad = max_window + 1
    s = _flatten(np.asarray(scores, dtype=np.float64), pad, np.nan)
    y = _flatten(np.asarray(truth, dtype=bool), pad, False)
    base = np.ones_like(truth, dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    v = _flatten(base, pad, False)
    return vus_pr(s, y, max_window, n_windows, valid=v)


def top_k_columns(sensor_scores: np.ndarray, k: int = 3) -> np.ndarray:
    """Columns of the k highest per-sensor scores in each row: (T, C) -> (T, k), -1 for NaN."""
    s = np.asarray(sensor_scores, dtype=np.float64)
    key = np.where(np.isnan(s), -np.inf, s)
    order = np.argsort(-key, axis=1, kind="stable")[:, :k]  # (T, k)
    picked = np.take_along_axis(s, order, axis=1)
    order[np.isnan(picked)] = -1
    if order.shape[1] < k:
        order = np.concatenate(
            [order, np.full((order.shape[0], k - order.shape[1]), -1, dtype=order.dtype)], axis=1
        )
    return order


def _named(ranked: np.ndarray, columns: tuple[int, ...] | None) -> np.ndarray:
    """Rows whose ranked columns (R, k) include one of `columns`: -> (R,) bool."""
    if columns is None:
        return np.ones(ranked.shape[0], dtype=bool)
    if not columns:
        return np.zeros(ranked.shape[0], dtype=bool)
    return np.asarray(np.isin(ranked, np.asarray(columns)).any(axis=1), dtype=bool)


def attributed_event_metrics(
    alarm: np.ndarray,
    ranked: np.ndarray,
    events: Sequence[SensorEvent],
    interval: pd.Timedelta,
    tolerance: int = 0,
    grace: int = 0,
    also_explained: Sequence[SensorEvent] = (),
) -> EventMetrics:
    """Event-wise metrics of a site alarm (T,) with its ranked sensors (T, k).

    An event is detected at the first row of ``start .. stop-1+tolerance`` where the alarm
    is on and names one of its sensors (a site-wide event: any). An alarm row is explained
    when it names a sensor of an event under way (rows ``start .. stop-1+max(tolerance,
    grace)``); runs of unexplained alarm rows are false alarms. Precision = detected /
    (detected + false alarms). `also_explained`: events that explain alarms the same way
    but are neither detected nor missed (those begun before the test period, which the
    protocol leaves out rather than counting their rows as normal).
    """
    on = np.asarray(alarm, dtype=bool)
    rk = np.asarray(ranked)
    t = on.size
    explained = np.zeros(t, dtype=bool)
    delays: list[int] = []
    detected: list[bool] = []
    for ev in events:
        a, b = max(ev.start, 0), min(ev.stop + tolerance, t)
        hit = np.flatnonzero(on[a:b] & _named(rk[a:b], ev.columns))
        detected.append(bool(hit.size))
        if hit.size:
            delays.append(int(hit[0]))
    for ev in (*events, *also_explained):  # rows under way (with grace) naming its sensors
        a, b2 = max(ev.start, 0), min(ev.stop + max(tolerance, grace), t)
        explained[a:b2] |= _named(rk[a:b2], ev.columns)
    return _tally(on, on & ~explained, detected, delays, interval)


def attributed_false_alarms_at_recall(
    scores: np.ndarray,
    ranked: np.ndarray,
    events: Sequence[SensorEvent],
    interval: pd.Timedelta,
    recall: float,
    tolerance: int = 0,
    grace: int = 0,
    also_explained: Sequence[SensorEvent] = (),
) -> float:
    """False alarms per month of ``scores >= threshold`` (with `ranked` attribution) at the
    highest threshold whose attributed event recall is >= `recall`; NaN if none reaches it.
    `also_explained` as in `attributed_event_metrics`.

    Detection at a threshold needs a row with score >= threshold that names the event's
    sensor, so each event's best such score is where its detection switches on.
    """
    s = _finite_scores(scores)
    rk = np.asarray(ranked)
    if not events:
        return float("nan")
    t = s.size
    best = []
    for ev in events:
        a, b = max(ev.start, 0), min(ev.stop + tolerance, t)
        named = _named(rk[a:b], ev.columns)
        best.append(s[a:b][named].max(initial=-np.inf))
    order = np.sort(np.asarray(best))[::-1]
    k = max(int(np.ceil(recall * len(events) - 1e-9)), 1)
    thr = order[k - 1]
    if not np.isfinite(thr):
        return float("nan")
    m = attributed_event_metrics(s >= thr, rk, events, interval, tolerance, grace, also_explained)
    return m.false_alarms_per_month
