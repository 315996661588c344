"""The §5 protocol: time splits, ground truth, the harness, summaries and written tables."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from geojepa.detectors import RobustZ
from geojepa.evaluate import (
    Case,
    Protocol,
    TimeSplit,
    evaluate_detector,
    ground_truth,
    markdown_table,
    run_benchmark,
    summarise,
    time_split,
    write_benchmark,
)
from geojepa.frame import label_mask, to_frame
from geojepa.site import Site
from test_detectors_synth import make_site


def test_ground_truth_matches_label_mask() -> None:
    site = make_site(0, early_event=True)
    frame = to_frame(site)
    truth = ground_truth(site.labels, frame)
    assert len(truth.events) == len(site.labels)
    mask = label_mask(site.labels, frame)
    rebuilt = np.zeros_like(mask)
    for e in truth.events:
        assert e.stop > e.start and len(e.columns) == 1
        rebuilt[e.start : e.stop, list(e.columns)] = True
    np.testing.assert_array_equal(rebuilt, mask)
    assert [e.start for e in truth.events] == sorted(e.start for e in truth.events)


def test_time_split() -> None:
    frame = to_frame(make_site(0, days=10))
    assert time_split(frame, 0.25).train_end == 60
    assert time_split(frame, until="2024-01-03").train_end == 48
    with pytest.raises(ValueError, match="training and test"):
        time_split(frame, 0.0)
    with pytest.raises(ValueError):
        TimeSplit(240, 240)


def test_evaluate_detector_reports_every_metric_per_kind() -> None:
    site = make_site(1, n_sensors=3, days=40, early_event=True)
    frame = to_frame(site)
    truth = ground_truth(site.labels, frame)
    split = time_split(frame, 0.5)
    res = evaluate_detector(RobustZ(), frame, truth, split, Protocol())
    overall = res.metrics["all"]
    n_test = len(truth.test_events(split))
    assert overall["n_events"] == n_test == len(truth.events) - 1  # early event left out
    for key in (
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
    ):
        assert key in overall
    assert 0.0 <= overall["auc_pr"] <= 1.0 and 0.0 <= overall["event_recall"] <= 1.0
    assert overall["red"] >= overall["amber"]
    kinds = {e.kind for e in truth.test_events(split)}
    assert kinds <= set(res.metrics)
    assert sum(res.metrics[k]["n_events"] for k in kinds) == n_test
    assert res.params == {"window": 48}
    assert res.fit_seconds >= 0 and res.score_seconds >= 0


def test_spikes_are_easy_and_drift_is_hard_for_robust_z() -> None:
    site = make_site(2, n_sensors=3, days=60, intensity=2.0, kinds=("spike", "drift"))
    frame = to_frame(site)
    truth = ground_truth(site.labels, frame)
    res = evaluate_detector(RobustZ(), frame, truth, time_split(frame), Protocol())
    assert res.metrics["spike"]["auc_pr"] > 0.5
    assert res.metrics["spike"]["event_recall"] == 1.0
    assert res.metrics["drift"]["auc_pr"] < res.metrics["spike"]["auc_pr"]


def _builder(case: Case) -> Site:
    return make_site(case.seed, n_sensors=3, days=30, intensity=case.intensity)


@pytest.fixture(scope="module")
def bench() -> object:
    cases = [Case("synthetic", i, s) for i in (0.5, 3.0) for s in (0, 1)]
    return run_benchmark(cases, ["robust_z", "trigger"], _builder, Protocol(), progress=False)


def _pick(rows: list[dict], intensity: float, detector: str) -> dict:  # type: ignore[type-arg]
    return next(
        r
        for r in rows
        if (r["intensity"], r["detector"], r["kind"]) == (intensity, detector, "all")
    )


def test_benchmark_rows_and_summary(bench: object) -> None:
    rows = bench.rows  # type: ignore[attr-defined]
    assert bench.detectors == ["robust_z", "trigger", "random"]  # type: ignore[attr-defined]
    assert {r["detector"] for r in rows} == {"robust_z", "trigger", "random"}
    summary = summarise(rows)
    one = _pick(summary, 3.0, "robust_z")
    vals = [
        r["auc_pr"]
        for r in rows
        if (r["intensity"], r["detector"], r["kind"]) == (3.0, "robust_z", "all")
    ]
    assert one["seeds"] == 2
    assert one["auc_pr_mean"] == pytest.approx(np.mean(vals))
    assert one["auc_pr_std"] == pytest.approx(np.std(vals, ddof=1))
    rnd = _pick(summary, 3.0, "random")
    assert one["pa_f1_random_mean"] == rnd["pa_f1_mean"]
    # stronger events are easier, and the detector beats the random score
    weak = _pick(summary, 0.5, "robust_z")
    assert one["auc_pr_mean"] > weak["auc_pr_mean"]
    assert one["auc_pr_mean"] > rnd["auc_pr_mean"] + 0.1


def test_write_benchmark(tmp_path: Path, bench: object) -> None:
    out = tmp_path / "bench"
    write_benchmark(out, bench, title="Synthetic")  # type: ignore[arg-type]
    doc = json.loads((out / "benchmark.json").read_text(encoding="utf-8"))
    assert doc["protocol"]["threshold"] == "quantile"
    assert len(doc["rows"]) == len(bench.rows)  # type: ignore[attr-defined]
    assert all(
        v is None or not isinstance(v, float) or math.isfinite(v) for v in doc["rows"][0].values()
    )
    md = (out / "benchmark.md").read_text(encoding="utf-8")
    assert md.startswith("# Synthetic")
    assert "| synthetic | 3 | robust_z |" in md
    assert "PA-F1 (random)" in md
    table = markdown_table(summarise(bench.rows))  # type: ignore[attr-defined]
    assert len(table.strip().splitlines()) == 2 + 2 * 3  # header, rule, 2 intensities x 3
