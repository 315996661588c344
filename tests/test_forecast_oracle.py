"""The forecast bounds on simulated embankments (`geojepa.forecast.oracle`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geojepa.forecast.oracle import (
    RAMP_DAYS,
    WAIT_DAYS,
    EmbankmentTruth,
    OracleForecaster,
    daily_means,
)
from geojepa.simulate import simulate_site


@pytest.fixture(scope="module")
def truth() -> EmbankmentTruth:
    # 5 lifts, scale < 1: seed 1 of the forecasting benchmark's embankments
    return EmbankmentTruth.from_simulated(simulate_site("embankment", 16, 365, "1h", 1))


def test_rebuilt_settlement_matches_the_simulator(truth: EmbankmentTruth) -> None:
    for plate in truth.kernels:
        if plate in truth.event_plates:
            continue
        sig = truth.signal[plate].to_numpy()
        err = np.abs(truth.rebuild(plate) - sig).max()
        # recorded parameters are rounded (t90 to 1e-3 day, mm/kPa to 1e-4): < 0.2 % of the range
        assert err < 2e-3 * np.abs(sig).max(), (plate, err)
    assert set(truth.kernels) - truth.event_plates  # at least one plate was checked


def test_futures_keep_the_past_and_respect_the_generator(truth: EmbankmentTruth) -> None:
    rng = np.random.default_rng(0)
    sd = truth.steps_day
    i = 1
    last = truth.stages[i].top + round(10 * sd)  # ten days into the second lift's wait
    fills = truth.fill_futures(last, "bayes", 200, rng)
    assert fills.shape == (200, truth.n)
    np.testing.assert_array_equal(
        fills[:, : last + 1], np.repeat(truth.fill[None, : last + 1], 200, 0)
    )
    # no future lifts before the cutoff; the next one starts within the wait's range
    starts = np.argmax(fills[:, last + 1 :] > truth.stages[i].height + 1e-9, axis=1) + last + 1
    wait_days = (starts - truth.stages[i].top) / sd / truth.scale
    assert np.all(wait_days >= WAIT_DAYS[0] - 0.1) and np.all(wait_days <= WAIT_DAYS[1] + 0.1)
    assert np.all(starts > last)
    assert np.ptp(starts) > 10 * sd  # the futures do differ
    # the fill only rises, by a design stage height each lift
    assert np.all(np.diff(fills, axis=1) >= -1e-12)
    rise = fills[:, -1] - truth.stages[i].height
    lifts_left = len(truth.stages) - i - 1
    assert np.all(rise >= 0.8 * truth.stage_height * lifts_left - 1e-9)
    assert np.all(rise <= 1.2 * truth.stage_height * lifts_left + 1e-9)
    assert RAMP_DAYS[0] < RAMP_DAYS[1]


def test_plan_is_the_noise_free_signal_and_no_lift_freezes_the_fill(truth: EmbankmentTruth) -> None:
    plate = next(p for p in truth.kernels if p not in truth.event_plates)
    cutoff = 80.0
    days = np.array([cutoff + 7, cutoff + 30, cutoff + 90])
    sig = daily_means(truth.signal[plate].to_numpy(), truth.steps_day)
    plan = OracleForecaster(truth, "plan")
    plan.bind(f"site/{plate}", pd.Timestamp("2022-01-02", tz="UTC"))
    fc = plan.fit(np.array([cutoff - 1, cutoff]), np.zeros(2)).predict(days)
    np.testing.assert_allclose(fc.prediction, sig[days.astype(int)])
    frozen = OracleForecaster(truth, "no_lift")
    frozen.bind(f"site/{plate}", pd.Timestamp("2022-01-02", tz="UTC"))
    fz = frozen.fit(np.array([cutoff]), np.zeros(1)).predict(days)
    # a lift comes after day 80 on this site: freezing the fill forecasts less settlement
    last = round((cutoff + 1) * truth.steps_day) - 1
    assert any(s.start > last for s in truth.stages)
    assert fz.prediction[-1] < fc.prediction[-1]
    bayes = OracleForecaster(truth, "bayes", draws=100)
    bayes.bind(f"site/{plate}", pd.Timestamp("2022-01-02", tz="UTC"))
    fb = bayes.fit(np.array([cutoff]), np.zeros(1)).predict(days)
    assert np.all(fb.lower <= fb.prediction) and np.all(fb.prediction <= fb.upper)
    assert fb.upper[-1] > fb.lower[-1]  # lift timing is uncertain at 90 days


def test_oracle_refuses_unknown_series(truth: EmbankmentTruth) -> None:
    o = OracleForecaster(truth)
    with pytest.raises(ValueError, match="no settlement plate"):
        o.bind("site/PZ01", pd.Timestamp("2022-01-02", tz="UTC"))
    with pytest.raises(ValueError, match="bind"):
        OracleForecaster(truth).fit(np.array([1.0]), np.zeros(1))


def test_not_an_embankment_is_refused() -> None:
    with pytest.raises(ValueError, match="not a simulated embankment"):
        EmbankmentTruth.from_simulated(simulate_site("slope", 8, 30, "6h", 0))


def test_the_actual_next_lift_looks_like_a_draw_of_the_futures() -> None:
    """Calibration: over many sites and cutoffs, the rank of the actual next lift's start
    among the drawn futures' (its PIT) is uniform when the sampler conditions correctly."""
    from scipy import stats

    pits = []
    for seed in range(300, 320):
        tr = EmbankmentTruth.from_simulated(simulate_site("embankment", 6, 365, "1h", seed))
        rng = np.random.default_rng(seed)
        for c in range(60, 300, 20):
            last = (c + 1) * 24 - 1
            i = tr.current_stage(last)
            if i < 0 or i == len(tr.stages) - 1 or last < tr.stages[i].top:
                continue  # no lift to come, or the lift in progress is given
            fills = tr.fill_futures(last, "bayes", 300, rng)
            above = fills[:, last + 1 :] > tr.stages[i].height + 1e-9
            starts = np.argmax(above, axis=1) + last + 1
            actual = tr.stages[i + 1].start
            pits.append(np.mean(starts < actual) + 0.5 * np.mean(starts == actual))
    assert len(pits) > 100
    assert stats.kstest(pits, "uniform").pvalue > 0.01


def test_the_rest_of_a_ramp_in_progress_is_calibrated() -> None:
    """At a cutoff inside a lift's ramp, the actual end of the ramp ranks uniformly among
    the drawn futures' ends (the slope is seen; length and height are drawn)."""
    from scipy import stats

    pits = []
    for seed in range(300, 330):
        tr = EmbankmentTruth.from_simulated(simulate_site("embankment", 6, 365, "1h", seed))
        rng = np.random.default_rng(seed)
        for st in tr.stages:
            if st.top - st.start < 48:
                continue
            last = st.start + int(rng.integers(24, st.top - st.start))  # inside the ramp
            fills = tr.fill_futures(last, "bayes", 300, rng)
            ends = np.argmax(np.diff(fills[:, last:], axis=1) <= 1e-12, axis=1) + last
            pits.append(np.mean(ends < st.top) + 0.5 * np.mean(ends == st.top))
            assert np.all(fills[:, : last + 1] == tr.fill[: last + 1])
    assert len(pits) > 80
    assert stats.kstest(pits, "uniform").pvalue > 0.01


class _Steps:
    """Futures provider: one future, the site's actual fill sampled at day boundaries."""

    def __init__(self, truth: EmbankmentTruth, last: int) -> None:
        self.truth, self.last = truth, last

    def analogs(self, t: np.ndarray, load: np.ndarray, days: int) -> np.ndarray:
        sd = self.truth.steps_day
        at = np.minimum(
            self.last + np.round(np.arange(days + 1) * sd).astype(int), self.truth.n - 1
        )
        return np.diff(self.truth.fill[at])[None, :]  # (1, days)


class _NoFuture:
    def analogs(self, t: np.ndarray, load: np.ndarray, days: int) -> np.ndarray:
        return np.zeros((0, days))


def test_analog_bound_follows_the_futures_it_is_given(truth: EmbankmentTruth) -> None:
    plate = next(p for p in truth.kernels if p not in truth.event_plates)
    cutoff = 80.0
    days = np.array([cutoff + 7, cutoff + 30, cutoff + 90])
    t = np.arange(cutoff + 1.0)
    drivers = {"load": np.zeros(t.size)}  # read by the provider only
    origin = pd.Timestamp("2022-01-02", tz="UTC")

    def run(mode: str, futures: object = None) -> np.ndarray:
        o = OracleForecaster(truth, mode, draws=50, futures=futures)  # type: ignore[arg-type]
        o.bind(f"site/{plate}", origin)
        return o.fit(t, np.zeros(t.size), drivers).predict(days).prediction

    last = round((cutoff + 1) * truth.steps_day) - 1
    plan, held = run("plan"), run("no_lift")
    # the actual fill, stepped at day boundaries: within 3 % of the lift's effect
    stepped = run("analog", _Steps(truth, last))
    assert np.all(np.abs(stepped - plan) <= 0.03 * np.abs(plan - held).max() + 1e-9)
    assert abs(plan[-1] - held[-1]) > 1.0  # a lift does come: the check is not empty
    # no future known: the fill is held
    np.testing.assert_allclose(run("analog", _NoFuture()), held)
    with pytest.raises(ValueError, match="futures"):
        OracleForecaster(truth, "analog")
