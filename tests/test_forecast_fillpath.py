"""Fill futures from analogs (`geojepa.forecast.fillpath`) and the back-analysis they drive
(`geojepa.forecast.consolidation.ConsolidationFill`), on schedules with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from geojepa.forecast.consolidation import Consolidation, ConsolidationFill
from geojepa.forecast.fillpath import FillPath, PlannedFill, daily_load, fill_state
from test_forecast_consolidation import load_of, staged


def ramps(n: int, lifts: list[tuple[int, int, float]]) -> np.ndarray:
    """A daily load of `n` days: each lift (start day, ramp days, height) rises linearly."""
    q = np.zeros(n)
    for start, days, h in lifts:
        rise = np.clip((np.arange(n) - start + 1) / days, 0.0, 1.0) * h
        q += rise
    return q


def test_fill_state_reads_lifts_waits_and_the_lift_in_progress() -> None:
    q = ramps(120, [(10, 5, 2.0), (45, 5, 2.0)])  # rises on days 10-14 and 45-49
    s = fill_state(q[:31])  # day 30: waiting after the first lift
    assert (s.in_lift, s.lifts, s.rate) == (False, 1, 0.0)
    assert s.since == pytest.approx(16.0)  # days 15..30
    assert s.height == pytest.approx(2.0) and np.isnan(s.wait)
    s = fill_state(q[:48])  # day 47: third day of the second lift
    assert (s.in_lift, s.lifts) == (True, 2)
    assert s.since == pytest.approx(3.0) and s.rate == pytest.approx(0.4)
    assert s.height == pytest.approx(2.0) and s.wait == pytest.approx(30.0)
    assert fill_state(np.zeros(20)).lifts == 0


def test_daily_load_interpolates_and_skips_missing_readings() -> None:
    t = np.array([0.0, 2.0, 3.0, 6.0])
    q = np.array([0.0, 2.0, np.nan, 5.0])
    days, load = daily_load(t, q)
    np.testing.assert_array_equal(days, np.arange(7.0))
    np.testing.assert_allclose(load, [0.0, 1.0, 2.0, 2.75, 3.5, 4.25, 5.0])


def test_analogs_of_a_repeated_schedule_give_its_actual_future() -> None:
    lifts = [(10, 5, 2.0), (60, 5, 2.0), (110, 5, 2.0), (160, 5, 2.0)]
    q = ramps(400, lifts)
    t = np.arange(400.0)
    fp = FillPath(k=5, horizon=90).fit([(t, q)] * 3)
    assert fp.n_candidates_ > 0
    for cut in (40, 62, 100):  # waiting, in a lift, waiting before the third
        a = fp.analogs(t[: cut + 1], q[: cut + 1], 60)  # (A, 60)
        assert a.shape == (5, 60)
        want = np.diff(q)[cut : cut + 60]
        np.testing.assert_allclose(np.median(a, axis=0), want, atol=1e-12)
    # before the first lift there is nothing to forecast from
    assert fp.analogs(t[:5], q[:5], 30).shape == (0, 30)


def test_analogs_come_only_from_the_fitted_records() -> None:
    q = ramps(300, [(10, 5, 2.0), (60, 5, 2.0)])
    t = np.arange(300.0)
    fp = FillPath(k=3, horizon=90).fit([(t, q)])
    other = ramps(300, [(10, 5, 2.0), (60, 5, 2.0), (100, 5, 2.0)])
    # the history's own future (a third lift on day 100) is not among the analogs
    a = fp.analogs(t[:71], other[:71], 90)
    assert np.all(a.sum(axis=1) == pytest.approx(0.0))


class _Known:
    """Futures provider that knows the plan: the increments of `q` after the cutoff."""

    def __init__(self, t: np.ndarray, q: np.ndarray) -> None:
        self.t, self.q = t, q

    def analogs(self, t: np.ndarray, load: np.ndarray, days: int) -> np.ndarray:
        i = int(np.flatnonzero(self.t == np.floor(t[-1]))[0])
        inc = np.diff(self.q)[i : i + days]
        out = np.zeros((1, days))
        out[0, : inc.size] = inc
        return out


class _Nothing:
    def analogs(self, t: np.ndarray, load: np.ndarray, days: int) -> np.ndarray:
        return np.zeros((0, days))


def test_the_actual_future_fill_gives_the_exact_forecast() -> None:
    t90 = float(np.geomspace(2.0, 2000.0, 40).round(3)[20])
    lifts = [(10.0, 2.0), (150.0, 2.5)]  # the second lift comes after the cutoff
    t_all = np.arange(0.0, 400.0)
    q_all = load_of(t_all, lifts)
    t = t_all[:141]  # cutoff on day 140
    y = staged(t, lifts, a=40.0, b=6.0, t90=t90)
    tf = np.array([145.0, 200.0, 340.0])
    truth = staged(tf, lifts, 40.0, 6.0, t90)
    m = ConsolidationFill(_Known(t_all, q_all), days=240, n_boot=0)
    m.fit(t, y, {"load": q_all[:141]})
    np.testing.assert_allclose(m.predict(tf).prediction, truth, rtol=1e-6)
    held = Consolidation(load="load", n_boot=0).fit(t, y, {"load": q_all[:141]})
    # holding the load misses the second lift's settlement
    assert np.all(held.predict(tf[1:]).prediction < truth[1:] - 10.0)


def test_with_no_future_known_it_is_the_classic_back_analysis() -> None:
    t90 = float(np.geomspace(2.0, 2000.0, 40).round(3)[15])
    lifts = [(10.0, 2.0), (60.0, 1.0)]
    t = np.arange(0.0, 120.0)
    y = staged(t, lifts, a=30.0, b=4.0, t90=t90)
    y = y + np.random.default_rng(0).normal(0.0, 0.5, t.size)
    drivers = {"load": load_of(t, lifts)}
    tf = np.array([130.0, 180.0])
    a = ConsolidationFill(_Nothing(), n_boot=20).fit(t, y, drivers).predict(tf)
    b = Consolidation(load="load", n_boot=20).fit(t, y, drivers).predict(tf)
    np.testing.assert_allclose(a.prediction, b.prediction)
    np.testing.assert_allclose(a.lower, b.lower)
    with pytest.raises(ValueError, match="stat"):
        ConsolidationFill(_Nothing(), stat="mode")


def test_a_planned_fill_ramps_from_the_last_load_and_is_then_held() -> None:
    plan = PlannedFill(np.array([15.0, 20.0]), np.array([5.0, 5.0]))
    t = np.arange(0.0, 11.0)  # history to day 10, load 3 (read on day 9, missing on day 10)
    q = np.full(t.size, 3.0)
    q[-1] = np.nan
    a = plan.analogs(t, q, 12)  # (1, 12): days 11..22
    assert a.shape == (1, 12)
    level = 3.0 + np.cumsum(a[0])
    np.testing.assert_allclose(level[:4], [3.4, 3.8, 4.2, 4.6])  # from day 10, where 3 m is held
    np.testing.assert_allclose(level[4:], 5.0)  # reached on day 15 and held
    with pytest.raises(ValueError, match="after the history"):
        plan.analogs(np.arange(0.0, 16.0), np.full(16, 3.0), 5)
    with pytest.raises(ValueError, match="increase"):
        PlannedFill(np.array([2.0, 1.0]), np.array([1.0, 2.0]))


def test_the_plan_ramps_from_the_last_readings_time_and_keeps_the_fit_options() -> None:
    plan = PlannedFill(np.array([15.0]), np.array([5.0]))
    t = np.array([0.0, 5.0, 10.5])  # the last reading half-way through day 10
    a = plan.analogs(t, np.full(3, 3.0), 6)  # days 11..16
    level = 3.0 + np.cumsum(a[0])
    np.testing.assert_allclose(
        level, [3.0 + 2.0 * (d - 10.5) / 4.5 for d in (11, 12, 13, 14)] + [5.0, 5.0]
    )
    m = ConsolidationFill(_Nothing(), loss="huber", min_points=7, t90_grid=(5.0, 50.0))
    assert (m.loss, m.min_points, m.t90_grid) == ("huber", 7, (5.0, 50.0))
