"""Classic forecasting methods on curves with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from geojepa.forecast.base import Forecast
from geojepa.forecast.classic import (
    Asaoka,
    Fukuzono,
    Hyperbolic,
    LinearTrend,
    Persistence,
    stage_start,
)
from geojepa.forecast.methods import CLASSIC


def irregular_times(
    rng: np.random.Generator, n: int, lo: float = 1.0, hi: float = 5.0
) -> np.ndarray:
    """Strictly increasing times with irregular steps in [lo, hi] days, starting at 0."""
    return np.concatenate([[0.0], np.cumsum(rng.uniform(lo, hi, n - 1))])


# --------------------------------------------------------------------------- persistence
def test_persistence_is_last_observed_value_and_band_grows_like_sqrt() -> None:
    t = np.array([0.0, 1.0, 2.0, 3.0])
    y = np.array([1.0, 2.0, 4.0, np.nan])  # the last cell is unobserved
    fc = Persistence().fit(t, y).predict(np.array([4.0, 11.0]))
    assert np.all(fc.prediction == 4.0)
    half = fc.upper - fc.prediction
    # band half-widths scale with sqrt(t - t_last) (t_last = 2): sqrt(2) vs sqrt(9)
    assert half[1] / half[0] == pytest.approx(3.0 / np.sqrt(2.0))


def test_persistence_band_matches_a_known_random_walk() -> None:
    rng = np.random.default_rng(1)
    t = irregular_times(rng, 4000)
    sigma = 0.5  # per sqrt(day)
    y = np.concatenate([[0.0], np.cumsum(rng.normal(0, sigma * np.sqrt(np.diff(t))))])
    model = Persistence().fit(t, y)
    assert model.rate_ == pytest.approx(sigma**2, rel=0.1)


# --------------------------------------------------------------------------- linear trend
def test_linear_trend_is_exact_on_a_line_and_uses_only_the_last_k_points() -> None:
    t = np.arange(30, dtype=float)
    y = np.where(t < 20, 5.0 * t, 100.0 + 2.0 * (t - 20))  # a kink at t = 20
    fc = LinearTrend(k=8).fit(t, y).predict(np.array([40.0, 50.0]))
    np.testing.assert_allclose(fc.prediction, [140.0, 160.0])
    np.testing.assert_allclose(fc.upper - fc.lower, 0.0, atol=1e-9)


def test_linear_trend_band_covers_about_its_level_on_noisy_lines() -> None:
    rng = np.random.default_rng(2)
    hits = 0
    trials = 300
    for _ in range(trials):
        t = np.arange(12, dtype=float)
        y = 1.0 + 0.3 * t + rng.normal(0, 1.0, t.size)
        fc = LinearTrend(k=12, level=0.9).fit(t, y).predict(np.array([15.0]))
        truth = 1.0 + 0.3 * 15.0 + rng.normal(0, 1.0)
        hits += int(fc.lower[0] <= truth <= fc.upper[0])
    assert 0.84 <= hits / trials <= 0.96


def test_linear_trend_with_two_points_falls_back_to_persistence() -> None:
    m = LinearTrend().fit(np.array([0.0, 1.0]), np.array([0.0, 1.0]))
    assert m.fallback_ is not None
    assert m.predict(np.array([5.0])).prediction[0] == 1.0


# --------------------------------------------------------------------------- hyperbolic
def test_hyperbolic_recovers_a_b_and_final_settlement_on_irregular_times() -> None:
    rng = np.random.default_rng(3)
    t = irregular_times(rng, 40)
    a, b = 2.0, 0.01  # final settlement 1/b = 100
    s = t / (a + b * t)
    m = Hyperbolic().fit(t, s)
    assert m.fallback_ is None
    assert m.params_.a == pytest.approx(a)
    assert m.params_.b == pytest.approx(b)
    assert m.final_ == pytest.approx(100.0)
    tf = np.array([300.0, 1000.0])
    np.testing.assert_allclose(m.predict(tf).prediction, tf / (a + b * tf))


def test_hyperbolic_fits_from_the_start_of_the_current_load_stage() -> None:
    rng = np.random.default_rng(4)
    t1 = irregular_times(rng, 15)  # first stage: anything
    s1 = 3.0 * np.sqrt(t1)
    t0, s0 = t1[-1] + 2.0, s1[-1] + 5.0  # second stage starts here
    x = irregular_times(rng, 25)
    t2, s2 = t0 + x, s0 + x / (1.5 + 0.02 * x)  # final s0 + 50
    t = np.concatenate([t1, t2])
    s = np.concatenate([s1, s2])
    load = np.concatenate([np.full(t1.size, 1.0), np.full(t2.size, 2.5)])
    m = Hyperbolic(load="fill").fit(t, s, {"fill": load})
    assert m.window_start_ == pytest.approx(t0)
    assert m.final_ == pytest.approx(s0 + 50.0)
    # the whole record mixes two stages and gives another answer
    assert Hyperbolic().fit(t, s).final_ != pytest.approx(s0 + 50.0, rel=1e-3)


def test_hyperbolic_falls_back_when_settlement_accelerates() -> None:
    t = np.arange(1.0, 30.0)
    m = Hyperbolic().fit(t, t**2)  # t/s = 1/t: slope b < 0, no final settlement
    assert m.fallback_ is not None
    assert np.isnan(m.final_)
    assert m.predict(np.array([40.0])).prediction[0] == pytest.approx(29.0**2)


def test_stage_start_is_the_first_reading_after_the_last_change() -> None:
    assert stage_start(np.array([1.0, 1.0, 2.0, 2.0, np.nan, 3.0, 3.0])) == 5
    assert stage_start(np.array([1.0, 1.0, 2.0, 2.0, np.nan, 2.0])) == 2  # NaN carries 2.0
    assert stage_start(np.array([1.0, 1.0, 1.0])) == 0
    assert stage_start(np.array([np.nan, 1.0, 1.0])) == 1  # unknown load is not this stage


def test_stage_start_ignores_gauge_noise_and_waits_for_a_ramp_to_reach_its_top() -> None:
    rng = np.random.default_rng(13)
    ramp = np.concatenate([np.full(10, 2.0), np.linspace(2.0, 5.0, 12), np.full(20, 5.0)])
    noisy = ramp + rng.normal(0, 0.05, ramp.size)  # 1 % noise, below the 5 % tolerance
    top = int(np.flatnonzero(ramp == 5.0)[0])
    assert top - 2 <= stage_start(noisy) <= top  # where the ramp nears its top, not before
    assert top - 2 <= stage_start(noisy, rel_tol=0.0) <= top  # the noise estimate suffices
    assert stage_start(noisy, rel_tol=0.0, noise_k=0.0) > top  # no tolerance: noise is a stage


# --------------------------------------------------------------------------- Asaoka
def test_asaoka_on_equal_steps_recovers_b1_and_final_settlement() -> None:
    tau, s_f, dt = 40.0, 100.0, 5.0
    t = np.arange(0.0, 100.0, dt)
    s = s_f * (1 - np.exp(-t / tau))
    m = Asaoka().fit(t, s)
    assert m.params_.dt == pytest.approx(dt)
    assert m.params_.b1 == pytest.approx(np.exp(-dt / tau))
    assert m.final_ == pytest.approx(s_f)
    tf = np.array([150.0, 400.0])
    np.testing.assert_allclose(m.predict(tf).prediction, s_f * (1 - np.exp(-tf / tau)))


def test_asaoka_resamples_irregular_readings_explicitly() -> None:
    rng = np.random.default_rng(5)
    tau, s_f = 60.0, 80.0
    t = irregular_times(rng, 60, 1.0, 5.0)
    s = s_f * (1 - np.exp(-t / tau))
    m = Asaoka(dt=7.0).fit(t, s)
    assert m.params_.dt == 7.0
    # interpolation between irregular readings bends the curve a little: within 1 %
    assert m.final_ == pytest.approx(s_f, rel=0.01)


def test_asaoka_falls_back_when_settlement_does_not_converge() -> None:
    t = np.arange(0.0, 50.0, 2.0)
    m = Asaoka().fit(t, 0.7 * t)  # s_i = s_{i-1} + c: b1 = 1
    assert m.fallback_ is not None and "b1" in m.fallback_
    assert np.isnan(m.final_)


# --------------------------------------------------------------------------- Fukuzono
def creep_to_failure(t: np.ndarray, t_f: float, b: float) -> np.ndarray:
    """Displacement with 1/v = b (t_f - t) exactly: x = ln(t_f / (t_f - t)) / b."""
    return np.log(t_f / (t_f - t)) / b


def test_fukuzono_recovers_the_time_of_failure() -> None:
    rng = np.random.default_rng(6)
    t_f, b = 100.0, 0.5
    t = np.sort(rng.uniform(0.0, 90.0, 300))
    x = creep_to_failure(t, t_f, b)
    m = Fukuzono().fit(t, x)
    assert m.fallback_ is None
    assert m.time_of_failure_ == pytest.approx(t_f, abs=0.3)
    assert m.failure_lower_ <= m.time_of_failure_ <= m.failure_upper_
    tf = np.array([92.0, 95.0, 98.0])
    np.testing.assert_allclose(m.predict(tf).prediction, creep_to_failure(tf, t_f, b), rtol=0.02)
    assert np.isnan(m.predict(np.array([t_f + 5.0])).prediction[0])  # no displacement after t_f


def test_fukuzono_band_is_finite_and_tight_on_a_clean_acceleration() -> None:
    """The bootstrap resamples velocities out of time order: every draw must still see
    the trend of the inverse velocity (a draw read as flat predicts no failure: inf)."""
    rng = np.random.default_rng(3)
    t = np.arange(0.0, 90.0, 0.5)
    x = creep_to_failure(t, 100.0, 0.1) + rng.normal(0, 0.01, t.size)
    m = Fukuzono(window=14.0, span=3.0).fit(t, x)
    assert m.time_of_failure_ == pytest.approx(100.0, abs=0.5)
    assert np.isfinite(m.failure_upper_)
    assert m.failure_lower_ <= m.time_of_failure_ <= m.failure_upper_
    assert m.failure_upper_ - m.failure_lower_ < 2.0


def test_fukuzono_span_smooths_noisy_velocities() -> None:
    rng = np.random.default_rng(14)
    t_f, b = 100.0, 0.5
    t = np.arange(0.0, 85.0, 1.0 / 24.0)  # hourly readings
    x = creep_to_failure(t, t_f, b) + rng.normal(0, 0.02, t.size)
    raw = Fukuzono(window=30.0, n_boot=50).fit(t, x)
    smooth = Fukuzono(window=30.0, span=2.0, n_boot=50).fit(t, x)
    assert abs(smooth.time_of_failure_ - t_f) < 3.0
    assert not abs(raw.time_of_failure_ - t_f) < 3.0  # hourly differences drown in noise
    tm, _v = smooth.velocity(t[:200], x[:200])
    assert np.all(np.diff(tm) > 0) and tm.size == 200 - 2  # the first two lack 3 readings


def test_fukuzono_keeps_a_failure_time_already_past() -> None:
    t = np.linspace(0.0, 97.0, 400)
    x = 1.0 / (100.0 - t)  # 1/v = (100 - t)^2: convex, so the fitted line hits 0 before t = 97
    m = Fukuzono(window=20.0, n_boot=50).fit(t, x)
    assert m.fallback_ is not None  # no displacement curve from a failure already passed
    assert 90.0 < m.time_of_failure_ < t[-1]
    assert m.failure_lower_ <= m.time_of_failure_ <= m.failure_upper_


def test_fukuzono_on_steady_creep_predicts_no_failure_and_a_straight_line() -> None:
    t = np.arange(0.0, 60.0, 1.5)
    m = Fukuzono().fit(t, 2.0 + 0.1 * t)
    assert m.time_of_failure_ == np.inf
    assert m.predict(np.array([100.0])).prediction[0] == pytest.approx(12.0)


def test_fukuzono_works_on_downward_displacement() -> None:
    t = np.linspace(0.0, 80.0, 200)
    m = Fukuzono().fit(t, -creep_to_failure(t, 100.0, 0.5))
    assert m.time_of_failure_ == pytest.approx(100.0, abs=0.5)


def test_fukuzono_window_uses_only_recent_readings() -> None:
    t = np.linspace(0.0, 95.0, 400)
    x = np.where(t < 50, 0.2 * t, 10.0 + creep_to_failure(t - 50, 60.0, 0.5))
    late = Fukuzono(window=40.0).fit(t, x)
    assert late.time_of_failure_ == pytest.approx(110.0, abs=1.0)


# --------------------------------------------------------------------------- bands and contract
def noisy_settlement(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = irregular_times(rng, 60)
    return t, t / (3.0 + 0.01 * t) + rng.normal(0, 0.5, t.size)


@pytest.mark.parametrize("name", sorted(CLASSIC))
def test_every_method_follows_the_contract(name: str) -> None:
    t, y = noisy_settlement(7)
    model = CLASSIC[name]()
    assert model.fit(t, y) is model
    tf = t[-1] + np.array([1.0, 10.0, 100.0])
    fc = model.predict(tf)
    assert isinstance(fc, Forecast)
    assert fc.prediction.shape == fc.lower.shape == fc.upper.shape == (3,)
    ok = np.isfinite(fc.prediction)
    if name == "fukuzono" and model.fallback_ is None:  # no displacement after failure
        assert np.all(ok == (tf < model.time_of_failure_))
    else:
        assert ok.all()
    assert np.all(fc.lower[ok] <= fc.prediction[ok]) and np.all(fc.prediction[ok] <= fc.upper[ok])
    width = fc.upper - fc.lower
    bounded = np.isfinite(width)  # Fukuzono: no upper end once enough draws have failed
    assert bounded[0] and (bounded.all() or name == "fukuzono")
    assert np.all(width[bounded] > 0)  # noisy data: a real band
    assert model.get_params()  # constructor arguments are stored


@pytest.mark.parametrize("cls", [Hyperbolic, Asaoka, Fukuzono])
def test_bootstrap_bands_are_reproducible_from_the_seed(cls: type) -> None:
    t, y = noisy_settlement(8)
    tf = t[-1] + np.array([30.0])
    a = cls(random_state=np.random.default_rng(11)).fit(t, y).predict(tf)
    b = cls(random_state=np.random.default_rng(11)).fit(t, y).predict(tf)
    c = cls(random_state=np.random.default_rng(12)).fit(t, y).predict(tf)
    band = {k: np.array([f.lower[0], f.upper[0]]) for k, f in zip("abc", (a, b, c), strict=True)}
    assert np.array_equal(band["a"], band["b"], equal_nan=True)
    assert not np.array_equal(band["a"], band["c"], equal_nan=True)


def test_hyperbolic_band_covers_the_truth_on_noisy_settlement() -> None:
    hits = 0
    trials = 40
    for seed in range(trials):
        rng = np.random.default_rng(100 + seed)
        t = irregular_times(rng, 50)
        s = t / (3.0 + 0.01 * t) + rng.normal(0, 0.5, t.size)
        tf = np.array([t[-1] + 20.0])
        fc = Hyperbolic(n_boot=100, random_state=seed).fit(t, s).predict(tf)
        truth = tf[0] / (3.0 + 0.01 * tf[0]) + rng.normal(0, 0.5)
        hits += int(fc.lower[0] <= truth <= fc.upper[0])
    assert hits / trials >= 0.7  # nominal 0.9; the bootstrap is somewhat optimistic


def test_histories_are_validated() -> None:
    with pytest.raises(ValueError, match="increasing"):
        Persistence().fit(np.array([0.0, 2.0, 1.0]), np.array([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="values"):
        Persistence().fit(np.array([0.0, 1.0]), np.array([1.0]))
    with pytest.raises(ValueError, match="observed"):
        Persistence().fit(np.array([0.0, 1.0]), np.array([np.nan, np.nan]))
    with pytest.raises(ValueError, match="load stage"):
        Hyperbolic(load="fill").fit(np.arange(5.0), np.arange(5.0))


# --------------------------------------------------------------------------- anchored bands
def noisy_asaoka_record(seed: int, n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Exponential settlement (Asaoka's own form: tau 60 days, final 100) read every 2-4
    days with 0.5 noise."""
    rng = np.random.default_rng(seed)
    t = irregular_times(rng, n, 2.0, 4.0)
    return t, 100.0 * (1 - np.exp(-t / 60.0)) + rng.normal(0, 0.5, t.size)


def test_asaoka_band_brackets_the_prediction_with_about_its_level_one_step_ahead() -> None:
    """The curve is drawn from the last reading: its band comes from one-step-ahead errors,
    not from residuals of the curve drawn backwards (which put all the spread below)."""
    hits, trials = 0, 60
    for seed in range(trials):
        t, y = noisy_asaoka_record(200 + seed)
        m = Asaoka(n_boot=100, random_state=seed).fit(t[:-1], y[:-1])
        assert m.fallback_ is None
        tf = t[-2] + np.array([t[-1] - t[-2], 30.0, 200.0])
        fc = m.predict(tf)
        assert np.all(fc.lower < fc.prediction) and np.all(fc.prediction < fc.upper)
        hits += int(fc.lower[0] <= y[-1] <= fc.upper[0])
    assert 0.8 <= hits / trials <= 0.98  # nominal 0.9


def test_asaoka_band_widens_with_the_lead_and_keeps_the_point_forecast() -> None:
    t, y = noisy_asaoka_record(7)
    m = Asaoka().fit(t, y)
    lead = t[-1] + np.array([1.0, 3.0, 10.0, 60.0, 400.0])
    fc = m.predict(lead)
    width = fc.upper - fc.lower
    assert width[0] < width[2] < width[3] < width[4]  # parameters matter more farther out
    p = m.params_  # the point forecast is the curve drawn from the last reading
    np.testing.assert_allclose(
        fc.prediction, p.final + (y[-1] - p.final) * p.b1 ** ((lead - t[-1]) / p.dt)
    )
    # one forecast time or many: the band at a lead does not depend on the others
    one = m.predict(lead[2:3])
    assert (one.lower[0], one.upper[0]) == pytest.approx((fc.lower[2], fc.upper[2]))


def test_fukuzono_band_brackets_the_prediction_on_noisy_accelerating_creep() -> None:
    hits, trials = 0, 40
    for seed in range(trials):
        rng = np.random.default_rng(300 + seed)
        t = np.arange(0.0, 95.0, 0.5)
        x = creep_to_failure(t, 100.0, 0.1) + rng.normal(0, 0.05, t.size)
        cut = int(np.searchsorted(t, 60.0 + 0.5 * seed))
        m = Fukuzono(window=20.0, span=2.0, n_boot=100, random_state=seed).fit(t[:cut], x[:cut])
        assert m.fallback_ is None
        fc = m.predict(t[cut : cut + 10])
        # both ends on either side of the prediction; near the failure the upper end may
        # be unbounded (NaN: more than 5 % of the draws have failed by then), never clipped
        ok = np.isfinite(fc.prediction) & np.isfinite(fc.upper)
        assert ok[0] and np.all(fc.lower[ok] < fc.prediction[ok])
        assert np.all(fc.prediction[ok] < fc.upper[ok])
        assert np.all(np.isfinite(fc.lower))
        hits += int(fc.lower[0] <= x[cut] <= fc.upper[0])
    assert 0.8 <= hits / trials <= 1.0  # nominal 0.9


def test_fukuzono_band_when_its_line_gives_no_velocity_early_in_the_window() -> None:
    """A decelerating record: the inverse-velocity line is negative at the window's first
    readings, where the curve cannot be drawn from; the band is built from the readings where
    it can, not left at zero width."""
    rng = np.random.default_rng(5)
    t = np.arange(0.0, 300.0, 3.0)
    y = 100.0 * (1.0 - np.exp(-t / 50.0)) + rng.normal(0, 0.3, t.size)
    m = Fukuzono(n_boot=100).fit(t, y)
    assert m.fallback_ is None and m.params_.a + m.params_.b * t[0] < 0
    assert m.boot_params_
    fc = m.predict(t[-1] + np.array([3.0, 30.0]))
    assert np.all(fc.lower < fc.prediction) and np.all(fc.prediction < fc.upper)
