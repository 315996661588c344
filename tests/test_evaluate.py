"""The §5 protocol: time splits, ground truth, the harness, summaries and written tables."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from conftest import shared_data
from geojepa.detectors import RobustZ, make_detector
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
from geojepa.frame import SensorFrame, label_mask, to_frame
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
        assert e.stop > e.start and len(e.sensors) == 1
        rebuilt[e.start : e.stop, [frame.column(s) for s in e.sensors]] = True
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


# ----------------------------------------------------------------------------- command line


def _exit_code(args: list[str]) -> int:
    from geojepa.cli import main

    with pytest.raises(SystemExit) as info:
        main(args)
    return int(info.value.code or 0)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--detectors", "robust_z,nope"], "unknown detector 'nope'"),
        (["--seeds", "0,x"], "--seeds: 'x' is not an integer"),
        (["--scenarios", "moon"], "unknown scenario 'moon'"),
        (["--source", "mars"], "unknown --source"),
        (["--threshold", "magic"], "unknown --threshold"),
    ],
)
def test_benchmark_cli_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    assert _exit_code(["benchmark", "--out", str(tmp_path / "b"), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_benchmark_cli_simulated_quick(tmp_path: Path) -> None:
    simulate = pytest.importorskip("geojepa.simulate")
    if not hasattr(simulate, "simulate_site"):
        pytest.skip("the simulator has no simulate_site yet")
    out = tmp_path / "b"
    args = ["benchmark", "--out", str(out), "--quick", "--scenarios", "slope"]
    assert _exit_code([*args, "--detectors", "robust_z,trigger"]) == 0
    doc = json.loads((out / "benchmark.json").read_text(encoding="utf-8"))
    assert doc["detectors"] == ["robust_z", "trigger", "random"]
    assert {r["scenario"] for r in doc["rows"]} == {"slope"}


@pytest.mark.realdata
def test_benchmark_cli_on_gw_challenge_with_injected_faults(tmp_path: Path) -> None:
    root = shared_data("gw-challenge")
    pytest.importorskip("geojepa.simulate.events")
    out = tmp_path / "gw"
    args = ["benchmark", "--out", str(out), "--source", "gw-challenge", "--data-root", str(root)]
    assert _exit_code([*args, "--quick", "--detectors", "robust_z,rate_of_change"]) == 0
    doc = json.loads((out / "benchmark.json").read_text(encoding="utf-8"))
    wells = {r["scenario"] for r in doc["rows"]}
    assert wells == {"Germany", "Netherlands", "Sweden_1", "Sweden_2", "USA"}
    overall = [r for r in doc["summary"] if r["kind"] == "all"]
    assert all(r["n_events_mean"] == 8 for r in overall)  # 2 each of spike, step, drift, stuck


@pytest.mark.realdata
def test_obvious_faults_in_real_heads_are_found() -> None:
    """A floor on real data: strong injected faults (intensity 5) in a real well."""
    root = shared_data("gw-challenge")
    pytest.importorskip("geojepa.simulate.events")
    from geojepa.evaluate.sites import gw_builder

    site = gw_builder(root)(Case("Germany", 5.0, 0))
    frame = to_frame(site)
    truth = ground_truth(site.labels, frame)
    split = time_split(frame)
    assert len(truth.test_events(split)) == 8 == len(truth.events)
    res = evaluate_detector(make_detector("rate_of_change"), frame, truth, split, Protocol())
    rnd = evaluate_detector(make_detector("random"), frame, truth, split, Protocol())
    assert res.metrics["all"]["auc_pr"] > rnd.metrics["all"]["auc_pr"]
    assert res.metrics["spike"]["event_recall"] == 1.0


def test_runs_split_over_processes_merge_into_one(tmp_path: Path, bench: object) -> None:
    from dataclasses import replace

    from geojepa.errors import InputError
    from geojepa.evaluate.benchmark import merge_benchmarks

    rows = bench.rows  # type: ignore[attr-defined]
    a = replace(bench, rows=[r for r in rows if r["seed"] == 0])  # type: ignore[type-var]
    b = replace(bench, rows=[r for r in rows if r["seed"] == 1])  # type: ignore[type-var]
    write_benchmark(tmp_path / "a", a)
    write_benchmark(tmp_path / "b", b)
    merged = merge_benchmarks([tmp_path / "a", tmp_path / "b" / "benchmark.json"])
    assert len(merged.rows) == len(rows) and merged.detectors == bench.detectors  # type: ignore[attr-defined]
    whole, joined = summarise(rows), summarise(merged.rows)
    assert _pick(joined, 3.0, "robust_z")["auc_pr_mean"] == pytest.approx(
        _pick(whole, 3.0, "robust_z")["auc_pr_mean"]
    )
    # runs of other detectors on the same cases: each has the random score, kept once
    c = replace(bench, rows=[r for r in rows if r["detector"] in ("robust_z", "random")])  # type: ignore[type-var]
    d = replace(bench, rows=[r for r in rows if r["detector"] in ("trigger", "random")])  # type: ignore[type-var]
    write_benchmark(tmp_path / "c", c)
    write_benchmark(tmp_path / "d", d)
    both = merge_benchmarks([tmp_path / "c", tmp_path / "d"])
    assert len(both.rows) == len(rows)
    # the same row with another result is refused
    changed = [dict(r) for r in d.rows]  # type: ignore[attr-defined]
    for r in changed:
        if r["detector"] == "random":
            r["auc_pr"] = 0.999
    write_benchmark(tmp_path / "e", replace(d, rows=changed))  # type: ignore[type-var]
    with pytest.raises(InputError, match="other results"):
        merge_benchmarks([tmp_path / "c", tmp_path / "e"])
    other = replace(b, protocol=replace(b.protocol, threshold="pot"))  # type: ignore[attr-defined]
    write_benchmark(tmp_path / "f", other)
    with pytest.raises(InputError, match="another protocol"):
        merge_benchmarks([tmp_path / "a", tmp_path / "f"])


def _one_gauge(t: int) -> SensorFrame:
    """An hourly frame of one gauge 'a', every reading observed (the scores carry the test)."""
    import pandas as pd

    time = pd.date_range("2024-01-01", periods=t, freq="1h").to_numpy("datetime64[ns]")
    ids = pd.DataFrame({"id": ["a"]})
    return SensorFrame(
        np.zeros((t, 1), np.float32), np.ones((t, 1), bool), time, ids, pd.Timedelta("1h")
    )


def test_an_alarm_on_an_event_begun_in_training_is_not_a_false_alarm() -> None:
    """An event that starts before the split is left out of the test metrics: its rows are
    not normal, so an alarm naming its sensor is explained (not a false alarm), and it is
    neither detected nor missed."""

    from geojepa.detectors import DetectorScores
    from geojepa.evaluate.protocol import GroundTruth, LabelledEvent, Protocol, evaluate_scores

    t = 200
    frame = _one_gauge(t)
    early = LabelledEvent(90, 150, "step", "", ("a",))
    late = LabelledEvent(170, 180, "step", "", ("a",))
    split = TimeSplit(100, t)
    s = np.random.default_rng(0).random(t) * 0.5
    s[90:150] = 10.0  # the score flags the early event throughout, into the test period,
    s[100:150] = 11.0  # above the training scores' top (alarms need a score above it)
    s[170:180] = 11.0  # and the test event
    scores = DetectorScores(s, s[:, None], ("a",))
    m = evaluate_scores(scores, frame, GroundTruth((early, late), t), split, Protocol(grace=0))
    assert m["all"]["n_events"] == 1.0
    assert m["all"]["event_precision"] == 1.0 and m["all"]["event_recall"] == 1.0
    assert m["all"]["false_alarms_per_month"] == 0.0
    assert m["all"]["fa_per_month_at_recall"] == 0.0
    # the same alarm with no event under way there is a false alarm
    alone = evaluate_scores(scores, frame, GroundTruth((late,), t), split, Protocol(grace=0))
    assert alone["all"]["false_alarms_per_month"] > 0.0


def test_thresholds_come_from_the_training_period_scored_alone() -> None:
    """A window-ending score of the last training rows reads the rows up to the end of its
    stride: scored with the whole frame, test rows would move the training scores and so
    the alarm thresholds. Changing test rows only leaves the thresholds unchanged."""
    import pandas as pd

    from geojepa.detectors.base import SensorwiseDetector
    from geojepa.energy import EnergySpec, frame_energy
    from geojepa.evaluate.protocol import GroundTruth, Protocol, evaluate_detector
    from geojepa.frame import SensorFrame
    from geojepa.windows import Normaliser, WindowSpec

    class Mean:  # an engine: a token's representation is its patch mean, predictions 0
        def __init__(self) -> None:
            self.kinds = {"tube": 0, "future": 1}

        def target_repr(self, inp):  # type: ignore[no-untyped-def]
            b, c, n = inp.values.shape
            return inp.values.reshape(b, c * (n // 16), 16).mean(-1, keepdims=True)

        def predict(self, inp, ctx, cpad, tgt, tpad, kind):  # type: ignore[no-untyped-def]
            return np.zeros((*tgt.shape, 1), np.float32)

    class WindowEnding(SensorwiseDetector):
        def _fit_train(self, train):  # type: ignore[no-untyped-def]
            self.norm_ = Normaliser.fit(train)
            return self._raw(train)

        def _raw(self, frame):  # type: ignore[no-untyped-def]
            spec = WindowSpec(length=128, stride=32, patch=16)
            return frame_energy(Mean(), frame, self.norm_, spec, EnergySpec())

    t, c = 2880, 2
    values = np.random.default_rng(0).normal(size=(t, c)).astype(np.float32)
    time = pd.date_range("2022-01-01", periods=t, freq="1h").to_numpy("datetime64[ns]")
    split, truth = TimeSplit(1440, t), GroundTruth((), t)
    ids = pd.DataFrame({"id": ["a", "b"]})

    def thresholds(v: np.ndarray) -> tuple[float, float]:
        frame = SensorFrame(v, np.ones((t, c), bool), time, ids, pd.Timedelta("1h"))
        m = evaluate_detector(WindowEnding(), frame, truth, split, Protocol()).metrics["all"]
        return m["amber"], m["red"]

    changed = values.copy()
    changed[1440:1444, 0] += 30.0  # test rows only
    assert thresholds(values) == thresholds(changed)


def test_a_block_scored_detector_alarms_when_its_block_completes() -> None:
    """A score that reads up to L rows ahead (`Detector.lookahead_rows`) reaches the alarm
    L rows later, as a live monitor has it: the delay counts from the event's onset to the
    end of the block that first shows it; the point metrics keep the score on its rows."""

    from geojepa.detectors import DetectorScores
    from geojepa.evaluate.protocol import GroundTruth, LabelledEvent, Protocol, evaluate_scores

    t = 400
    frame = _one_gauge(t)
    event = LabelledEvent(290, 330, "step", "", ("a",))
    s = np.random.default_rng(0).random(t) * 0.5
    s[288:336] = 10.0  # blocks of 16 rows: the block 288..303 holds the onset
    scores = DetectorScores(s, s[:, None], ("a",))
    split, truth, proto = TimeSplit(200, t), GroundTruth((event,), t), Protocol(grace=0)
    causal = evaluate_scores(scores, frame, truth, split, proto)["all"]
    block = evaluate_scores(scores, frame, truth, split, proto, lookahead=15)["all"]
    assert causal["delay"] == 0.0  # the score already at the onset row
    assert block["delay"] == 13.0  # the block 288..303 exists live at row 303; onset 290
    assert block["event_recall"] == 1.0
    assert block["auc_pr"] == causal["auc_pr"]  # point metrics: the score on its own rows


def test_a_one_seed_summary_shows_no_spread() -> None:
    # before: one seed printed "0.412 ± 0.000", a spread never measured
    row = {
        "scenario": "slope",
        "intensity": 1.0,
        "seed": 0,
        "detector": "trigger",
        "kind": "all",
        "auc_pr": 0.412,
    }
    one = markdown_table(summarise([row]))
    assert "0.412" in one and "± 0.000" not in one
    two = markdown_table(summarise([row, {**row, "seed": 1, "auc_pr": 0.512}]))
    assert "0.462 ± 0.071" in two
