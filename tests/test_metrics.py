"""Metrics: checked against scikit-learn, hand-worked examples and the random-score floor."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score

from geojepa.metrics import (
    Segment,
    SensorEvent,
    attributed_event_metrics,
    attributed_false_alarms_at_recall,
    auc_pr,
    cell_auc_pr,
    cell_vus_pr,
    event_metrics,
    false_alarms_at_recall,
    point_adjusted_f1,
    range_auc_pr,
    segments,
    top_k_columns,
    vus_pr,
)

HOUR = pd.Timedelta("1h")


def test_segments() -> None:
    m = np.array([0, 1, 1, 0, 0, 1, 0, 1], dtype=bool)
    assert segments(m) == [Segment(1, 3), Segment(5, 6), Segment(7, 8)]
    assert segments(np.zeros(4, dtype=bool)) == []
    with pytest.raises(ValueError):
        Segment(3, 3)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_pr_matches_sklearn_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.random(400) < 0.1
    s = np.round(rng.normal(size=400) + 1.5 * y, 1)  # rounding makes ties
    assert auc_pr(s, y) == pytest.approx(average_precision_score(y, s), abs=1e-12)


def test_auc_pr_edge_cases() -> None:
    y = np.zeros(50, dtype=bool)
    y[10:15] = True
    assert auc_pr(y.astype(float), y) == pytest.approx(1.0)
    assert np.isnan(auc_pr(np.ones(50), np.zeros(50, dtype=bool)))
    s = np.where(y, 1.0, 0.0)
    s[10] = np.nan  # NaN ranks last, it is never dropped
    assert auc_pr(s, y) < 1.0
    valid = np.ones(50, dtype=bool)
    valid[10] = False
    assert auc_pr(s, y, valid) == pytest.approx(1.0)


def test_random_scores_give_prevalence() -> None:
    rng = np.random.default_rng(0)
    y = np.zeros(20000, dtype=bool)
    for a in rng.choice(19900, 40, replace=False):
        y[a : a + 20] = True
    ap = auc_pr(rng.random(20000), y)
    assert ap == pytest.approx(y.mean(), abs=0.02)
    assert vus_pr(rng.random(20000), y, 20) < 0.2


def test_range_auc_pr_rewards_near_misses_only_with_a_buffer() -> None:
    y = np.zeros(300, dtype=bool)
    y[100:110] = True
    y[200:210] = True
    late = np.zeros(300)
    late[110] = 1.0  # one row after each event ends
    late[210] = 1.0
    assert range_auc_pr(late, y, 0) < 0.1  # only the all-rows threshold finds them
    assert range_auc_pr(late, y, 5) > 2 * range_auc_pr(late, y, 0)
    shifted = np.roll(y, 3).astype(float)  # right length, 3 rows late
    assert range_auc_pr(shifted, y, 0) == pytest.approx(0.7 * 0.7 + 0.3 * y.mean(), abs=0.03)
    assert range_auc_pr(shifted, y, 5) > range_auc_pr(shifted, y, 0) + 0.1
    perfect = y.astype(float)
    assert range_auc_pr(perfect, y, 0) == pytest.approx(1.0)
    assert vus_pr(perfect, y, 10) > 0.75  # the buffer mass is never fully recalled
    assert vus_pr(perfect, y, 10) > vus_pr(np.roll(perfect, 3), y, 10)
    # one event of two found: existence halves recall
    half = np.zeros(300)
    half[100:110] = 1.0
    assert range_auc_pr(half, y, 0) == pytest.approx(0.5 * 0.5 + 0.5 * (0.5 * 0.0), abs=0.3)
    assert range_auc_pr(half, y, 0) < range_auc_pr(perfect, y, 0)


def test_event_metrics_by_hand() -> None:
    t = 24 * 61  # 61 days of hours = 2.004 months
    alarm = np.zeros(t, dtype=bool)
    events = [Segment(100, 110), Segment(300, 301), Segment(500, 520)]
    alarm[104:115] = True  # detects event 1 with delay 4, lingers 5 rows after it
    alarm[298:302] = True  # raised 2 rows early (a false alarm), covers event 2 (delay 0)
    alarm[700:705] = True  # false alarm
    alarm[900] = True  # false alarm
    m = event_metrics(alarm, events, HOUR, grace=5)
    assert (m.n_events, m.n_detected, m.n_alarms, m.n_false_alarms) == (3, 2, 4, 3)
    assert m.recall == pytest.approx(2 / 3)
    assert m.precision == pytest.approx(2 / 5)
    assert m.f1 == pytest.approx(2 * 0.4 * (2 / 3) / (0.4 + 2 / 3))
    assert m.delays == (4, 0) and m.mean_delay == pytest.approx(2.0)
    assert m.detected == (True, True, False)
    months = t / (24 * 365.25 / 12)
    assert m.false_alarms_per_month == pytest.approx(3 / months)
    # without the grace the lingering rows after event 1 are one more false alarm
    assert event_metrics(alarm, events, HOUR).n_false_alarms == 5
    # tolerance: an alarm just after an event's end counts only when allowed
    late = np.zeros(t, dtype=bool)
    late[111:113] = True
    assert event_metrics(late, events[:1], HOUR).recall == 0.0
    assert event_metrics(late, events[:1], HOUR, tolerance=2).recall == 1.0


def test_a_permanent_alarm_is_not_precise() -> None:
    events = [Segment(100, 110), Segment(300, 310), Segment(500, 510)]
    m = event_metrics(np.ones(700, dtype=bool), events, HOUR, grace=10)
    assert m.recall == 1.0
    assert m.n_false_alarms == 4 and m.precision == pytest.approx(3 / 7)


def test_event_metrics_without_alarms_or_events() -> None:
    m = event_metrics(np.zeros(100, dtype=bool), [Segment(10, 20)], HOUR)
    assert m.recall == 0.0 and m.f1 == 0.0 and np.isnan(m.precision)
    m2 = event_metrics(np.ones(100, dtype=bool), [], HOUR)
    assert np.isnan(m2.recall) and m2.n_false_alarms == 1 and m2.precision == 0.0


def test_point_adjust_inflates_random_alarms() -> None:
    """Why PA-F1 is only shown beside a random score: sparse random alarms score highly."""
    rng = np.random.default_rng(0)
    y = np.zeros(10000, dtype=bool)
    for a in range(500, 10000, 1000):
        y[a : a + 300] = True  # long events
    pred = rng.random(10000) < 0.02
    pa = point_adjusted_f1(pred, y)
    tp = (pred & y).sum()
    plain = 2 * tp / (pred.sum() + y.sum())
    assert pa > 0.6 and plain < 0.1
    assert point_adjusted_f1(np.zeros(10, dtype=bool), np.ones(10, dtype=bool)) == 0.0


def test_false_alarms_at_recall() -> None:
    t = 24 * 30
    s = np.zeros(t)
    events = [Segment(100, 110), Segment(400, 410)]
    s[105] = 5.0  # event 1 found at a high threshold
    s[405] = 2.0  # event 2 only at a lower one
    s[600] = 3.0  # a false alarm between the two
    months = t / (24 * 365.25 / 12)
    assert false_alarms_at_recall(s, events, HOUR, 0.5) == pytest.approx(0.0)
    assert false_alarms_at_recall(s, events, HOUR, 1.0) == pytest.approx(1 / months)
    assert np.isnan(false_alarms_at_recall(s, [], HOUR, 0.5))


# ----------------------------------------------------------------------------- sensor-aware


def test_top_k_columns() -> None:
    s = np.array([[0.1, 0.9, 0.5], [np.nan, 0.2, np.nan], [np.nan, np.nan, np.nan]])
    np.testing.assert_array_equal(top_k_columns(s, 2), [[1, 2], [1, -1], [-1, -1]])
    np.testing.assert_array_equal(top_k_columns(s[:, :1], 2), [[0, -1], [-1, -1], [-1, -1]])


def test_cell_metrics_do_not_mix_sensors() -> None:
    rng = np.random.default_rng(0)
    truth = np.zeros((200, 3), dtype=bool)
    truth[50:60, 1] = True
    right = rng.random((200, 3)) * 0.5
    right[50:60, 1] = 1.0
    wrong = right.copy()
    wrong[50:60, 1] = 0.0
    wrong[50:60, 2] = 1.0  # right time, wrong gauge
    assert cell_auc_pr(right, truth) == pytest.approx(1.0)
    assert cell_auc_pr(wrong, truth) < 0.1
    # the per-time view cannot tell them apart
    assert auc_pr(wrong.max(axis=1), truth.any(axis=1)) == pytest.approx(1.0)
    # buffers stay inside a sensor's own column: the wrong gauge gets nothing from them
    assert cell_vus_pr(wrong, truth, 10) < 0.1 < cell_vus_pr(right, truth, 10)
    valid = np.ones_like(truth)
    valid[:, 2] = False
    assert cell_auc_pr(wrong, truth, valid) > cell_auc_pr(wrong, truth)


def test_attributed_event_metrics_need_the_right_gauge() -> None:
    t = 24 * 30
    alarm = np.zeros(t, dtype=bool)
    ranked = np.full((t, 2), -1)
    events = [
        SensorEvent(100, 110, (0,)),
        SensorEvent(300, 310, (1,)),
        SensorEvent(500, 510, None),  # site-wide: any named gauge will do
        SensorEvent(600, 610, ()),  # on a sensor nobody scores: always missed
    ]
    alarm[103:106] = True
    ranked[103:106] = [2, 0]  # names sensor 0 second: detected, delay 3
    alarm[300:305] = True
    ranked[300:305] = [2, 3]  # alarm during event 2, wrong gauges: missed and false
    alarm[505] = True
    ranked[505] = [3, -1]
    alarm[650:652] = True  # nothing under way: false
    ranked[650:652] = [1, 0]
    m = attributed_event_metrics(alarm, ranked, events, HOUR)
    assert m.detected == (True, False, True, False)
    assert m.delays == (3, 5)
    assert m.n_false_alarms == 2
    assert m.precision == pytest.approx(2 / 4) and m.recall == pytest.approx(2 / 4)
    months = t / (24 * 365.25 / 12)
    assert m.false_alarms_per_month == pytest.approx(2 / months)


def test_attributed_false_alarms_at_recall() -> None:
    t = 24 * 30
    s = np.zeros(t)
    ranked = np.zeros((t, 1), dtype=int)  # every row names sensor 0
    events = [SensorEvent(100, 110, (0,)), SensorEvent(400, 410, (1,))]
    s[105] = 5.0  # recall 0.5 needs threshold 5
    s[600] = 3.0  # below it: no alarm
    s[405] = 9.0  # above it, but names sensor 0 during sensor 1's event: the one false alarm
    assert attributed_false_alarms_at_recall(s, ranked, events, HOUR, 0.5) == pytest.approx(
        1 / (t / (24 * 365.25 / 12))
    )
    assert np.isnan(attributed_false_alarms_at_recall(s, ranked, events, HOUR, 1.0))
