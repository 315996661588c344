"""The benchmark harness: every detector by name on every case, summaries and tables.

`run_benchmark` evaluates each registered detector (the random score always included) on
each case (scenario x intensity x seed, or a real site with injected faults) under one
`Protocol`; `summarise` gives mean and std over seeds; `write_benchmark` writes
``benchmark.json`` (protocol, summary, every row) and ``benchmark.md``.

Guarantees: the same cases, detectors and protocol give the same rows (every random
choice is seeded by the case's seed); the point-adjusted F1 is never summarised without
the random detector's value beside it; each written file appears whole or not at all;
the JSON has no NaN (undefined values are null).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from geojepa.atomic import write_text
from geojepa.detectors import make_detector
from geojepa.evaluate.protocol import (
    ALL,
    Protocol,
    evaluate_detector,
    ground_truth,
    select_sensors,
    time_split,
)
from geojepa.frame import to_frame
from geojepa.progress import Progress
from geojepa.site import Site

log = logging.getLogger(__name__)

__all__ = [
    "BenchmarkResult",
    "Case",
    "SiteBuilder",
    "kind_table",
    "markdown_table",
    "run_benchmark",
    "summarise",
    "write_benchmark",
]


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
            _, left_out = select_sensors(frame, split.train_end, proto.min_train_readings)
            if left_out:
                log.info(
                    "%s i=%g s=%d: %d sensor(s) with fewer than %d training readings left out: %s",
                    case.scenario,
                    case.intensity,
                    case.seed,
                    len(left_out),
                    proto.min_train_readings,
                    ", ".join(left_out),
                )
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
                            "left_out": ";".join(res.left_out),
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
    """ "mean ± std" over seeds; the mean alone when there is no spread to show (one seed)."""
    m, s = rec.get(f"{metric}_mean", float("nan")), rec.get(f"{metric}_std", float("nan"))
    if m is None or not math.isfinite(m):
        return "–"
    one = int(rec.get(f"{metric}_n", 2)) < 2  # a std of one seed would print as ± 0.000
    if s is None or not math.isfinite(s) or one:
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} ± {s:.{digits}f}"


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


def merge_benchmarks(paths: Sequence[str | Path]) -> BenchmarkResult:
    """One result from the ``benchmark.json`` of runs split over processes (other seeds or
    other detectors on the same cases).

    Guarantees: every run used the same protocol (else `InputError` naming the file); a
    (case, detector, kind) row found in two runs is kept once when the two agree on every
    metric (the random score, which every run adds, on the same cases; timings aside) and
    refused otherwise, never averaged; detectors keep their first-seen order; ``meta``
    records the merged files.
    """
    from geojepa.errors import InputError

    rows: list[dict[str, Any]] = []
    detectors: list[str] = []
    seen: dict[tuple[Any, ...], str] = {}
    kept: dict[tuple[Any, ...], dict[str, Any]] = {}
    protocol: dict[str, Any] | None = None
    sources: list[str] = []
    for path in paths:
        p = Path(path)
        f = p / "benchmark.json" if p.is_dir() else p
        doc = json.loads(f.read_text(encoding="utf-8"))
        if protocol is None:
            protocol = doc["protocol"]
        elif doc["protocol"] != protocol:
            raise InputError(
                "this run used another protocol than the first one",
                file=f,
                hint="merge only runs of the same protocol",
            )
        for r in doc["rows"]:
            key = tuple(r.get(k) for k in ("scenario", "intensity", "seed", "detector", "kind"))
            if key in seen:
                if _same_result(kept[key], r):
                    continue  # the same row twice (the random score of both runs)
                raise InputError(
                    f"row {key} is also in {seen[key]}, with other results",
                    file=f,
                    hint="merge runs over different seeds or detectors",
                )
            seen[key] = str(f)
            kept[key] = r
            rows.append({k: (float("nan") if v is None else v) for k, v in r.items()})
        detectors += [d for d in doc["detectors"] if d not in detectors]
        sources.append(str(f))
    if protocol is None:
        raise ValueError("nothing to merge")
    proto = dict(protocol)
    proto["ignore_kinds"] = tuple(proto.get("ignore_kinds", ()))
    return BenchmarkResult(rows, Protocol(**proto), detectors, {"merged": sources})


def _same_result(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two rows agree on everything but timings."""
    keys = {k for k in (*a, *b) if not k.endswith("_seconds")}
    return all(a.get(k) == b.get(k) for k in keys)


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
        f"{result.protocol.amber_level}, red {result.protocol.red_level}). AUC-PR and "
        "VUS-PR over every observed (time, sensor) cell of the test period. Event metrics "
        "without point-adjust, from the site alarm: an event counts as detected only when "
        f"the alarm names one of its sensors among the top {result.protocol.top_k}; alarm "
        "rows naming no sensor of an event under way are false alarms. PA-F1 shown only "
        "beside the random score's (in brackets). FA / month at R: false alarms per month "
        "at the highest threshold reaching event recall "
        f"{result.protocol.fa_recall} (a point of an evaluation curve, not a calibration). "
        f"Dropout events are left to completeness checks (ignored kinds: "
        f"{', '.join(result.protocol.ignore_kinds) or 'none'}); sensors with fewer than "
        f"{result.protocol.min_train_readings} training readings are left out (column "
        "`left_out` of the JSON rows), their events count as missed by every detector.",
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
