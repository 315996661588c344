"""TARP alarm levels: persistence, hysteresis, NaN handling, attribution, numpy+pandas only."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import geojepa.alarms as alarms_module
from geojepa.alarms import (
    AlarmTracker,
    Level,
    TarpPolicy,
    alarm_episodes,
    alarm_levels,
    alarm_table,
    attribute,
)


def test_single_exceedances_do_not_raise_with_n_on() -> None:
    s = np.array([0, 5, 0, 5, 0, 5, 5, 5, 0, 0], dtype=float)
    levels = alarm_levels(s, TarpPolicy(amber=1.0, red=10.0, n_on=3, n_off=2))
    np.testing.assert_array_equal(levels, [0, 0, 0, 0, 0, 0, 0, 1, 1, 0])


def test_hysteresis_band_keeps_the_alarm_until_the_score_clears() -> None:
    s = np.array([0, 2, 1.5, 1.5, 0.9, 0.4, 0.4, 0], dtype=float)
    policy = TarpPolicy(amber=1.0, red=10.0, n_on=1, n_off=2, amber_clear=0.5)
    np.testing.assert_array_equal(alarm_levels(s, policy), [0, 1, 1, 1, 1, 1, 0, 0])
    plain = TarpPolicy(amber=1.0, red=10.0, n_on=1, n_off=1)
    np.testing.assert_array_equal(alarm_levels(s, plain), [0, 1, 1, 1, 0, 0, 0, 0])


def test_red_implies_amber_and_falls_back_to_amber() -> None:
    s = np.array([0, 3, 12, 12, 3, 3, 0], dtype=float)
    levels = alarm_levels(s, TarpPolicy(amber=2.0, red=10.0))
    np.testing.assert_array_equal(levels, [0, 1, 2, 2, 1, 1, 0])
    jump = alarm_levels(np.array([0, 12, 0.0]), TarpPolicy(amber=2.0, red=10.0))
    np.testing.assert_array_equal(jump, [0, 2, 0])


def test_nan_breaks_runs_and_holds_the_level() -> None:
    policy = TarpPolicy(amber=1.0, red=10.0, n_on=2, n_off=2)
    s = np.array([5, np.nan, 5, 0, 5, 5, np.nan, np.nan, 0, 0])
    np.testing.assert_array_equal(alarm_levels(s, policy), [0, 0, 0, 0, 0, 1, 1, 1, 1, 0])


def test_streaming_equals_batch_and_reports_changes() -> None:
    rng = np.random.default_rng(0)
    s = rng.normal(size=500).cumsum() / 5
    s[rng.random(500) < 0.05] = np.nan
    sensors = rng.normal(size=(500, 4))
    policy = TarpPolicy(amber=0.5, red=2.0, n_on=2, n_off=3, amber_clear=0.2, red_clear=1.5)
    tracker = AlarmTracker(policy, ["A", "B", "C", "D"], top_k=2)
    steps = [tracker.step(s[t], sensors[t]) for t in range(500)]
    batch = alarm_levels(s, policy)
    np.testing.assert_array_equal([int(x.level) for x in steps], batch)
    changes = sum(x.changed for x in steps)
    assert changes == int((np.diff(np.concatenate([[0], batch])) != 0).sum())
    for t, x in enumerate(steps):
        if x.level != Level.GREEN:
            assert x.sensors == attribute(sensors[t], ["A", "B", "C", "D"], 2)
        else:
            assert x.sensors == ()
    assert {0, 1, 2} <= set(batch.tolist())


def test_attribution_ranks_sensors_nan_last() -> None:
    s = np.array([0.5, np.nan, 2.0, 0.5, 1.0])
    ids = ["a", "b", "c", "d", "e"]
    assert attribute(s, ids, None) == ("c", "e", "a", "d")
    assert attribute(s, ids, 2) == ("c", "e")
    with pytest.raises(ValueError):
        attribute(s, ids[:3])


def test_episodes_attributed_at_onset() -> None:
    levels = np.array([0, 1, 1, 2, 1, 0, 0, 1, 1], dtype=np.int8)
    sensor = np.zeros((9, 3))
    sensor[1] = [0.1, 0.9, 0.5]
    sensor[7] = [0.8, 0.1, 0.2]
    times = pd.date_range("2024-01-01", periods=9, freq="h", tz="UTC")
    eps = alarm_episodes(levels, sensor, ["x", "y", "z"], times, top_k=2)
    assert [(e.start, e.stop, e.peak) for e in eps] == [(1, 5, Level.RED), (7, 9, Level.AMBER)]
    assert eps[0].sensors == ("y", "z") and eps[1].sensors == ("x", "z")
    assert eps[0].start_time == times[1] and eps[0].stop_time == times[5]
    assert eps[1].stop_time is None  # still on at the end
    table = alarm_table(eps)
    assert list(table["level"]) == ["red", "amber"]
    assert list(table["sensors"]) == ["y;z", "x;z"]


def test_policy_validation() -> None:
    with pytest.raises(ValueError, match="red"):
        TarpPolicy(amber=2.0, red=1.0)
    with pytest.raises(ValueError, match="n_on"):
        TarpPolicy(amber=1.0, red=2.0, n_on=0)
    with pytest.raises(ValueError, match="amber_clear"):
        TarpPolicy(amber=1.0, red=2.0, amber_clear=1.5)
    with pytest.raises(ValueError, match="finite"):
        TarpPolicy(amber=float("nan"), red=2.0)


def test_alarms_imports_only_numpy_and_pandas() -> None:
    """The edge scorer reuses this module verbatim where only numpy and pandas exist."""
    path = Path(alarms_module.__file__)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            roots.add(node.module.split(".")[0])
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    assert roots - stdlib <= {"numpy", "pandas"}, roots - stdlib
    code = (
        "import sys\n"
        "for m in ('torch', 'sklearn', 'scipy', 'onnxruntime'):\n"
        "    sys.modules[m] = None\n"
        "import geojepa.alarms as a\n"
        "print(a.alarm_levels([0.0, 2.0], a.TarpPolicy(1.0, 3.0)).tolist())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[0, 1]"


def test_nan_breaks_a_run_toward_clearing() -> None:
    """n_off consecutive times below the clear value: a gap (NaN) between them restarts
    the count, as it does for n_on exceedances, so an alarm never clears across a gap."""
    policy = TarpPolicy(amber=1.0, red=10.0, n_on=1, n_off=3)
    s = np.array([5, 0, np.nan, 0, 0, 0, 0])
    np.testing.assert_array_equal(alarm_levels(s, policy), [1, 1, 1, 1, 1, 0, 0])


def test_a_score_equal_to_the_threshold_raises_nothing_as_predict() -> None:
    # Training scores tied at zero (most of them) calibrate amber = red = 0; with ">=" every
    # later zero raised red. Alarms and `Detector.predict` now agree: strictly above.
    from geojepa.detectors.base import _exceeds
    from geojepa.thresholds import TrainingScores, quantile_threshold

    train = np.zeros(500)
    train[:3] = 1.0
    th = quantile_threshold(TrainingScores.from_scores(train, 500), 0.99).value
    assert th == 0.0
    test = np.array([0.0, 0.0, 0.0, 0.5, 0.5, 0.0, 0.0])
    policy = TarpPolicy(amber=th, red=th, n_on=2, n_off=2)
    levels = alarm_levels(test, policy)
    assert levels.tolist() == [0, 0, 0, 0, 2, 2, 0]
    assert _exceeds(test, th).tolist() == [0, 0, 0, 1, 1, 0, 0]
