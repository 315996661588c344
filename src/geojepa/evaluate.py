"""The honest evaluation protocol (DESIGN §5) and the benchmark harness for every detector.

Protocol, for one site and one detector:

1. Split by time: rows ``< train_end`` are the training period, the rest the test period;
   nothing is shuffled across the split.
2. ``detector.fit(frame, train_end)``: the detector sees training rows only.
3. ``detector.score(frame)``; the amber and red thresholds are calibrated from
   ``TrainingScores.from_scores(score, train_end)`` only (a quantile or POT). No label,
   training or test, reaches a threshold or a hyperparameter.
4. TARP alarm levels run over the whole series (so the state is warm at the split); the
   test rows are compared with the labels: AUC-PR, VUS-PR, event-wise P/R/F1 without
   point-adjust, detection delay, false alarms per month, false alarms per month at a
   fixed event recall, attribution (is the top-ranked sensor one of the event's?), and the
   point-adjusted F1 only beside the random detector's (the harness always runs it).

Events that start in the training period are left out of the test metrics (their test
rows are excluded, not counted as normal). Per event kind, rows of the other kinds'
events are excluded from the point metrics; precision and false alarms are site-wide.

`run_benchmark` repeats this over cases (scenario x intensity x seed) and detectors by
registry name; `summarise` gives mean and std over seeds; `write_benchmark` writes
``benchmark.json`` and ``benchmark.md`` atomically.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from geojepa.alarms import TarpPolicy, alarm_levels
from geojepa.atomic import write_text
from geojepa.detectors import Detector, DetectorScores, make_detector
from geojepa.frame import SensorFrame, label_mask, to_frame
from geojepa.metrics import (
    Segment,
    auc_pr,
    event_metrics,
    false_alarms_at_recall,
    point_adjusted_f1,
    vus_pr,
)
from geojepa.progress import Progress
from geojepa.site import Site
from geojepa.thresholds import TrainingScores, calibrate

log = logging.getLogger(__name__)

__all__ = [
    "BenchmarkResult",
    "Case",
    "GroundTruth",
    "LabelledEvent",
    "Protocol",
    "TimeSplit",
    "calibrate_policy",
    "evaluate_detector",
    "evaluate_scores",
    "ground_truth",
    "markdown_table",
    "run_benchmark",
    "summarise",
    "time_split",
    "write_benchmark",
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
    columns: tuple[int, ...]  # empty: the whole site


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
        m = np.zeros(self.n_times, dtype=bool)
        for e in events:
            m[e.start : e.stop] = True
        return m


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
            cols = tuple(int(c) for c in np.flatnonzero(m.any(axis=0))) if names else ()
            events.append(
                LabelledEvent(
                    start=int(rows[0]),
                    stop=int(rows[-1]) + 1,
                    kind=str(row["kind"].iloc[0]),
                    category=str(row["category"].iloc[0]) if "category" in row else "",
                    columns=cols,
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


def calibrate_policy(train: TrainingScores, protocol: Protocol) -> TarpPolicy:
    """Amber and red thresholds from training-period scores only."""
    amber = calibrate(train, protocol.threshold, protocol.amber_level).value
    red = calibrate(train, protocol.threshold, protocol.red_level).value
    return TarpPolicy(amber=amber, red=max(red, amber), n_on=protocol.n_on, n_off=protocol.n_off)


def _attribution(
    scores: DetectorScores, levels: np.ndarray, events: Sequence[LabelledEvent], tol: int
) -> tuple[float, int]:
    """Share of detected, sensor-specific events whose first alarm row ranks one of the
    event's sensors first; and how many events were judged."""
    hits, judged = 0, 0
    for e in events:
        if not e.columns:
            continue
        on = np.flatnonzero(levels[e.start : e.stop + tol] > 0)
        if on.size == 0:
            continue
        row = scores.sensor_scores[e.start + int(on[0])]
        if np.isnan(row).all():
            continue
        judged += 1
        hits += int(int(np.nanargmax(row)) in e.columns)
    return (hits / judged if judged else float("nan")), judged


def evaluate_scores(
    scores: DetectorScores,
    frame: SensorFrame,
    truth: GroundTruth,
    split: TimeSplit,
    protocol: Protocol,
) -> dict[str, dict[str, float]]:
    """Metrics of already computed scores under the protocol: {kind or "all": {metric: value}}."""
    train = TrainingScores.from_scores(scores.score, split.train_end)
    policy = calibrate_policy(train, protocol)
    levels = alarm_levels(scores.score, policy)  # (T,) over the whole series
    a = split.train_end
    s_test = scores.score[a:]
    alarm_test = levels[a:] > 0
    test_events = truth.test_events(split)
    excluded = np.zeros(truth.n_times, dtype=bool)  # events begun before the split
    for e in truth.events:
        if e.start < a:
            excluded[e.start : e.stop] = True
    excluded = excluded[a:]
    tol = protocol.tolerance

    def segs(evts: Sequence[LabelledEvent]) -> list[Segment]:
        return [Segment(e.start - a, min(e.stop, truth.n_times) - a) for e in evts]

    out: dict[str, dict[str, float]] = {}
    all_mask = truth.mask(test_events)[a:]
    em = event_metrics(alarm_test, segs(test_events), frame.interval, tol, protocol.grace)
    attr, n_attr = _attribution(scores, levels, test_events, tol)
    out[ALL] = {
        "auc_pr": auc_pr(s_test, all_mask, ~excluded),
        "vus_pr": vus_pr(s_test, all_mask, protocol.vus_max_window, valid=~excluded),
        "event_precision": em.precision,
        "event_recall": em.recall,
        "event_f1": em.f1,
        "delay": em.mean_delay,
        "false_alarms_per_month": em.false_alarms_per_month,
        "fa_per_month_at_recall": false_alarms_at_recall(
            np.where(excluded, np.nan, s_test),
            segs(test_events),
            frame.interval,
            protocol.fa_recall,
            tolerance=tol,
            grace=protocol.grace,
        ),
        "pa_f1": point_adjusted_f1(alarm_test & ~excluded, all_mask),
        "attribution_top1": attr,
        "n_events": float(em.n_events),
        "n_attributed": float(n_attr),
        "amber": policy.amber,
        "red": policy.red,
    }
    for kind in truth.kinds():
        evts = truth.test_events(split, kind)
        if not evts:
            continue
        kmask = truth.mask(evts)[a:]
        valid = ~excluded & ~(all_mask & ~kmask)  # leave out rows of other kinds' events
        km = event_metrics(alarm_test, segs(evts), frame.interval, tol, protocol.grace)
        out[kind] = {
            "auc_pr": auc_pr(s_test, kmask, valid),
            "vus_pr": vus_pr(s_test, kmask, protocol.vus_max_window, valid=valid),
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


def evaluate_detector(
    detector: Detector,
    frame: SensorFrame,
    truth: GroundTruth,
    split: TimeSplit,
    protocol: Protocol,
) -> DetectorResult:
    """Fit on the training period, score, calibrate on training scores, measure on the test."""
    t0 = time.perf_counter()
    detector.fit(frame, split.train_end)
    t1 = time.perf_counter()
    scores = detector.score(frame)
    t2 = time.perf_counter()
    scores.check_nan(frame)
    metrics = evaluate_scores(scores, frame, truth, split, protocol)
    params = {k: _jsonable(v) for k, v in detector.get_params(deep=False).items()}
    return DetectorResult(metrics, params, t1 - t0, t2 - t1)


def _jsonable(v: Any) -> Any:
    if isinstance(v, (bool, int, float, str)) or v is None:
        return v
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return repr(v)


# ----------------------------------------------------------------------------- benchmark


@dataclass(frozen=True)
class Case:
    """One benchmark site: a scenario at an event intensity, drawn with a seed."""

    scenario: str
    intensity: float
    seed: int


SiteBuilder = Callable[[Case], Site]


@dataclass(frozen=True)
class BenchmarkResult:
    """Per-run rows (one per case x detector x kind) and the protocol that made them."""

    rows: list[dict[str, Any]]
    protocol: Protocol
    detectors: list[str]
    meta: dict[str, Any] = field(default_factory=dict)


def run_benchmark(
    cases: Sequence[Case],
    detectors: Sequence[str],
    build_site: SiteBuilder,
    protocol: Protocol | None = None,
    progress: bool = True,
) -> BenchmarkResult:
    """Every detector (by registry name) on every case; the random detector is always added."""
    proto = protocol or Protocol()
    names = list(dict.fromkeys([*detectors, "random"]))
    rows: list[dict[str, Any]] = []
    with Progress("benchmark", len(cases) * len(names), enabled=progress) as bar:
        for case in cases:
            site = build_site(case)
            frame = to_frame(site)
            truth = ground_truth(site.labels, frame)
            split = time_split(frame, proto.train_fraction)
            for name in names:
                res = evaluate_detector(make_detector(name, case.seed), frame, truth, split, proto)
                for kind, metrics in res.metrics.items():
                    rows.append(
                        {
                            "scenario": case.scenario,
                            "intensity": case.intensity,
                            "seed": case.seed,
                            "detector": name,
                            "kind": kind,
                            "fit_seconds": res.fit_seconds,
                            "score_seconds": res.score_seconds,
                            **metrics,
                        }
                    )
                bar.advance(postfix=f"{case.scenario} i={case.intensity} s={case.seed} {name}")
    return BenchmarkResult(rows, proto, names)


GROUP_KEYS = ("scenario", "intensity", "detector", "kind")
SUMMARY_METRICS = (
    "auc_pr",
    "vus_pr",
    "event_precision",
    "event_recall",
    "event_f1",
    "delay",
    "false_alarms_per_month",
    "fa_per_month_at_recall",
    "pa_f1",
    "attribution_top1",
    "n_events",
)


def summarise(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean, std and count over seeds for each (scenario, intensity, detector, kind).

    Adds ``pa_f1_random_mean`` beside every ``pa_f1_mean``: the random detector's value in
    the same group, so the point-adjusted F1 is never read alone. NaN values (undefined in
    a seed) are left out of that metric's mean and counted in ``<metric>_n``.
    """
    df = pd.DataFrame(list(rows))
    if df.empty:
        return []
    out = []
    for key, g in df.groupby(list(GROUP_KEYS), sort=True):
        rec: dict[str, Any] = dict(zip(GROUP_KEYS, key, strict=True))
        rec["seeds"] = len(g)
        for m in SUMMARY_METRICS:
            if m not in g:
                continue
            v = pd.to_numeric(g[m], errors="coerce").to_numpy(dtype=np.float64)
            v = v[np.isfinite(v)]
            rec[f"{m}_mean"] = float(v.mean()) if v.size else float("nan")
            rec[f"{m}_std"] = (
                float(v.std(ddof=1)) if v.size > 1 else (0.0 if v.size else float("nan"))
            )
            rec[f"{m}_n"] = int(v.size)
        out.append(rec)
    rand = {
        (r["scenario"], r["intensity"], r["kind"]): r.get("pa_f1_mean", float("nan"))
        for r in out
        if r["detector"] == "random"
    }
    for r in out:
        r["pa_f1_random_mean"] = rand.get((r["scenario"], r["intensity"], r["kind"]), float("nan"))
    return out


def _pm(rec: dict[str, Any], metric: str, digits: int = 3) -> str:
    m, s = rec.get(f"{metric}_mean", float("nan")), rec.get(f"{metric}_std", float("nan"))
    if m is None or not math.isfinite(m):
        return "–"
    return f"{m:.{digits}f} ± {s:.{digits}f}" if math.isfinite(s) else f"{m:.{digits}f}"


def markdown_table(summary: Sequence[dict[str, Any]], kind: str = ALL) -> str:
    """A Markdown table of the summary rows of one kind ("all" = every event kind)."""
    head = (
        "| scenario | intensity | detector | AUC-PR | VUS-PR | event P | event R | event F1 "
        "| delay (steps) | false alarms / month | FA / month at R | PA-F1 (random) |"
    )
    lines = [head, "|" + "---|" * 12]
    for r in summary:
        if r["kind"] != kind:
            continue
        pa = _pm(r, "pa_f1", 2)
        rnd = r.get("pa_f1_random_mean", float("nan"))
        pa += f" ({rnd:.2f})" if isinstance(rnd, float) and math.isfinite(rnd) else ""
        lines.append(
            f"| {r['scenario']} | {r['intensity']:g} | {r['detector']} | {_pm(r, 'auc_pr')} "
            f"| {_pm(r, 'vus_pr')} | {_pm(r, 'event_precision', 2)} | {_pm(r, 'event_recall', 2)} "
            f"| {_pm(r, 'event_f1', 2)} | {_pm(r, 'delay', 1)} "
            f"| {_pm(r, 'false_alarms_per_month', 1)} | {_pm(r, 'fa_per_month_at_recall', 1)} "
            f"| {pa} |"
        )
    return "\n".join(lines) + "\n"


def kind_table(summary: Sequence[dict[str, Any]], metric: str = "auc_pr") -> str:
    """Mean `metric` per event kind (rows) and detector (columns), over scenarios and intensities."""
    df = pd.DataFrame([r for r in summary if r["kind"] != ALL])
    if df.empty or f"{metric}_mean" not in df:
        return ""
    piv = df.pivot_table(index="kind", columns="detector", values=f"{metric}_mean", aggfunc="mean")
    cols = list(piv.columns)
    lines = ["| kind | " + " | ".join(cols) + " |", "|" + "---|" * (len(cols) + 1)]
    for kind, row in piv.iterrows():
        cells = [f"{row[c]:.3f}" if math.isfinite(row[c]) else "–" for c in cols]
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_clean(x) for x in v]
    if isinstance(v, np.generic):
        return _clean(v.item())
    return v


def write_benchmark(out: str | Path, result: BenchmarkResult, title: str = "Benchmark") -> None:
    """Write ``benchmark.json`` and ``benchmark.md`` into `out`; each file appears whole or not at all."""
    summary = summarise(result.rows)
    doc = {
        "protocol": asdict(result.protocol),
        "detectors": result.detectors,
        "meta": result.meta,
        "summary": summary,
        "rows": result.rows,
    }
    md = [
        f"# {title}",
        "",
        "Mean ± std over seeds. Splits by time (train before, test after); thresholds from "
        f"training-period scores only ({result.protocol.threshold}, amber "
        f"{result.protocol.amber_level}, red {result.protocol.red_level}). Event metrics "
        "without point-adjust; PA-F1 shown only beside the random score's (in brackets). "
        f"FA / month at R: fewest false alarms per month reaching event recall "
        f"{result.protocol.fa_recall} over all thresholds (an evaluation curve).",
        "",
        "## All event kinds",
        "",
        markdown_table(summary, ALL),
        "## AUC-PR per event kind (mean over scenarios, intensities and seeds)",
        "",
        kind_table(summary, "auc_pr"),
        "## Event recall per event kind",
        "",
        kind_table(summary, "event_recall"),
    ]
    target = Path(out)
    target.mkdir(parents=True, exist_ok=True)
    write_text(target / "benchmark.json", json.dumps(_clean(doc), indent=1, allow_nan=False) + "\n")
    write_text(target / "benchmark.md", "\n".join(md))
