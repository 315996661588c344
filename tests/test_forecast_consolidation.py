"""Consolidation back-analysis (`geojepa.forecast.consolidation`) on curves with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from geojepa.forecast.consolidation import TV_END_PRIMARY, Consolidation, ConsolidationParams
from geojepa.forecast.methods import CLASSIC
from geojepa.soil import consolidation_curve


def staged(
    t: np.ndarray, lifts: list[tuple[float, float]], a: float, b: float, t90: float
) -> np.ndarray:
    """Settlement of step lifts (day, load) with the module's own model (c = 3)."""
    s = np.full(t.shape, 3.0)
    for day, dq in lifts:
        s += dq * (
            a * consolidation_curve(t - day, t90, 0.0) + b * np.log1p(np.maximum(t - day, 0) / t90)
        )
    return s


def load_of(t: np.ndarray, lifts: list[tuple[float, float]]) -> np.ndarray:
    return np.array([sum(dq for day, dq in lifts if day <= x) for x in t])


def test_exact_on_a_two_stage_record() -> None:
    t90 = float(np.geomspace(2.0, 2000.0, 40).round(3)[20])  # on the grid
    lifts = [(10.0, 2.0), (90.0, 2.5)]
    t = np.arange(0.0, 140.0)
    y = staged(t, lifts, a=40.0, b=6.0, t90=t90)
    m = Consolidation(load="load", n_boot=0).fit(t, y, {"load": load_of(t, lifts)})
    assert m.fallback_ is None
    p = m.params_
    assert isinstance(p, ConsolidationParams)
    assert p.t90 == pytest.approx(t90)
    assert (p.a, p.b, p.c) == pytest.approx((40.0, 6.0, 3.0), rel=1e-6)
    assert m.t90_ == pytest.approx(t90) and m.t90_identified_
    # the end of primary consolidation: the last lift (day 90) + 2.1 t90, where U = 0.99
    end = 90.0 + TV_END_PRIMARY / 0.848 * t90
    assert m.primary_end_ == pytest.approx(end, rel=1e-6)
    assert m.primary_final_ == pytest.approx(staged(np.array([end]), lifts, 40.0, 6.0, t90)[0])
    # the forecast holds the load: 200 days on, only the two lifts' curves
    tf = np.array([150.0, 200.0, 340.0])
    np.testing.assert_allclose(
        m.predict(tf).prediction, staged(tf, lifts, 40.0, 6.0, t90), rtol=1e-6
    )


def test_cutoff_readings_only_and_noise_tolerance() -> None:
    rng = np.random.default_rng(0)
    t90 = 60.0
    lifts = [(5.0, 1.0), (70.0, 1.0)]
    t = np.arange(0.0, 120.0, 2.0)
    clean = staged(t, lifts, 100.0, 10.0, t90)
    y = clean + rng.normal(0, 1.0, t.size)
    m = Consolidation(load="load", n_boot=50).fit(t, y, {"load": load_of(t, lifts)})
    tf = np.array([150.0, 250.0])
    fc = m.predict(tf)
    truth = staged(tf, lifts, 100.0, 10.0, t90)
    assert np.all(np.abs(fc.prediction - truth) < 0.05 * truth)
    assert np.all(fc.lower <= fc.prediction) and np.all(fc.prediction <= fc.upper)
    # changing readings after the cutoff changes nothing: they are never given
    y2 = y.copy()
    y2[-5:] += 50.0
    m2 = Consolidation(load="load", n_boot=0).fit(t[:-5], y2[:-5], {"load": load_of(t[:-5], lifts)})
    m3 = Consolidation(load="load", n_boot=0).fit(t[:-5], y[:-5], {"load": load_of(t[:-5], lifts)})
    np.testing.assert_allclose(m2.predict(tf).prediction, m3.predict(tf).prediction)


def test_without_a_load_it_is_one_load_at_the_first_reading() -> None:
    t = np.arange(0.0, 100.0)
    y = staged(t, [(0.0, 1.0)], 50.0, 0.0, float(np.geomspace(2.0, 2000.0, 40).round(3)[15]))
    m = Consolidation(n_boot=0).fit(t, y)
    assert m.fallback_ is None
    assert m.predict(np.array([300.0])).prediction[0] > y[-1]


def test_falls_back_and_says_why() -> None:
    t = np.arange(4.0)
    m = Consolidation(n_boot=0).fit(t, t * 2.0)
    assert m.fallback_ is not None and "need 5" in m.fallback_
    flat = Consolidation(load="load", n_boot=0).fit(
        np.arange(10.0), np.arange(10.0), {"load": np.zeros(10)}
    )
    assert flat.fallback_ is not None and "load" in flat.fallback_
    with pytest.raises(ValueError, match="driver 'fill'"):
        Consolidation(load="fill").fit(np.arange(10.0), np.arange(10.0), {"load": np.ones(10)})


def test_registered_as_a_classic_method() -> None:
    assert CLASSIC["consolidation"] is Consolidation


def test_carry_forward_holds_the_last_known_load() -> None:
    from geojepa.forecast.base import carry_forward

    out = carry_forward(np.array([np.nan, 1.0, np.nan, np.nan, 3.0, np.nan]))
    np.testing.assert_array_equal(out[1:], [1.0, 1.0, 1.0, 3.0, 3.0])
    assert np.isnan(out[0]) and carry_forward(np.array([])).size == 0


def test_a_record_too_short_for_its_t90_says_so() -> None:
    t = np.arange(0.0, 30.0)
    y = staged(t, [(0.0, 1.0)], 500.0, 0.0, 5000.0)  # 90 % after 5000 days; 30 days seen
    m = Consolidation(n_boot=0).fit(t, y)
    assert m.fallback_ is None and not m.t90_identified_
    # the same curve seen to 2000 days (past its square-root part) pins t90 down
    t = np.arange(0.0, 2000.0, 5.0)
    m = Consolidation(n_boot=0).fit(t, staged(t, [(0.0, 1.0)], 500.0, 0.0, 578.853))
    assert m.t90_identified_ and m.t90_ == pytest.approx(578.853, rel=0.05)


def test_huber_loss_resists_faulty_readings() -> None:
    # records of the model's own form (lifts ramped over the two days the fitter assumes
    # between readings two days apart; t90 on the grid), noise and three spikes, 8 seeds
    lifts = [(5.0, 1.0), (70.0, 1.0)]
    ramp = [(5.0, 0.5), (6.0, 0.5), (69.0, 0.5), (70.0, 0.5)]
    t = np.arange(0.0, 120.0, 2.0)
    tf = np.array([200.0])
    clean = staged(t, ramp, 100.0, 10.0, 57.885)
    truth = staged(tf, ramp, 100.0, 10.0, 57.885)[0]
    drv = {"load": load_of(t, lifts)}
    errors: dict[str, list[float]] = {"squared": [], "huber": []}
    for seed in range(8):
        y = clean + np.random.default_rng(seed).normal(0, 1.0, t.size)
        y[[10, 25, 40]] += np.array([150.0, -120.0, 200.0])  # spikes
        for loss, errs in errors.items():
            m = Consolidation(load="load", n_boot=0, loss=loss).fit(t, y, drv)
            errs.append(abs(m.predict(tf).prediction[0] - truth))
    plain, huber = np.median(errors["squared"]), np.median(errors["huber"])
    assert huber < 0.5 * plain
    assert huber < 0.03 * truth
    with pytest.raises(ValueError, match="unknown loss"):
        Consolidation(loss="l1")


def test_end_of_primary_is_the_settlement_the_curve_reaches_on_the_readings_scale() -> None:
    """Mostly creep (b large, a small), the case where ``c + a * load`` was a tenth of the
    readings: the value is the curve's, secondary compression accrued by then included."""
    t90 = float(np.geomspace(2.0, 2000.0, 40).round(3)[14])  # 23.9 days, on the grid
    lifts = [(0.0, 1.6), (20.0, 1.2), (35.0, 0.5)]
    t = np.arange(0.0, 400.0)  # daily: the fitter's daily load steps are the lifts
    y = staged(t, lifts, a=7.0, b=33.0, t90=t90)
    m = Consolidation(load="load", n_boot=0).fit(t, y, {"load": load_of(t, lifts)})
    assert m.t90_identified_ and m.t90_ == pytest.approx(t90)
    end = 35.0 + TV_END_PRIMARY / 0.848 * t90
    assert m.primary_end_ == pytest.approx(end, rel=1e-6)
    expected = staged(np.array([end]), lifts, 7.0, 33.0, t90)[0]
    assert m.primary_final_ == pytest.approx(expected, rel=1e-6)
    assert y[0] < m.primary_final_ < y[-1]  # a reading the record passes through
    # every lift's primary consolidation at least 99 % complete there
    only_primary = staged(np.array([end]), lifts, 7.0, 0.0, t90)[0] - 3.0
    assert 0.99 * 7.0 * 3.3 <= only_primary < 7.0 * 3.3


def test_no_end_of_primary_when_the_fit_cannot_identify_it() -> None:
    t = np.arange(0.0, 300.0, 3.0)
    lifts = [(0.0, 1.0)]
    creep = staged(t, lifts, a=0.0, b=50.0, t90=69.102)  # secondary compression only
    m = Consolidation(load="load", n_boot=0).fit(t, creep, {"load": load_of(t, lifts)})
    assert m.fallback_ is None and m.params_.a == 0.0
    assert np.isnan(m.primary_final_) and np.isnan(m.primary_end_)
    # t90 not pinned down (the record sees only the square-root part): its end is a guess
    t = np.arange(0.0, 30.0)
    slow = Consolidation(n_boot=0).fit(t, staged(t, [(0.0, 1.0)], 500.0, 0.0, 5000.0))
    assert not slow.t90_identified_ and np.isnan(slow.primary_final_)
