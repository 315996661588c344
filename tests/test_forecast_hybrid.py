"""Hybrid heads: a learned correction of a classic base forecast (geojepa.forecast.hybrid)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geojepa.forecast.classic import LinearTrend
from geojepa.forecast.consolidation import Consolidation
from geojepa.forecast.evaluate import Series, forecast_from
from geojepa.forecast.features import EncoderFeatures
from geojepa.forecast.hybrid import base_changes, consolidation_changes, linear_changes
from geojepa.forecast.learned import JepaForecaster, track_samples
from geojepa.forecast.tracks import Track, series_track
from geojepa.site import Sensor, sensors_frame
from geojepa.soil import consolidation_curve


def layout(name: str) -> pd.DataFrame:
    return sensors_frame(
        [Sensor(name, "settlement", "mm", group=name), Sensor("surcharge", "load", "m", group=name)]
    )


def line(name: str, slope: float, n: int = 200, noise: float = 0.0, seed: int = 0) -> Series:
    rng = np.random.default_rng(seed)
    t = np.arange(n, dtype=float)
    y = 3.0 + slope * t + rng.normal(0.0, noise, n) if noise else 3.0 + slope * t
    return Series(name, t, y, {"surcharge": np.full(n, 2.0)})


def track_of(s: Series) -> Track:
    return series_track(s, layout(s.name))


def test_linear_base_matches_the_classic_linear_trend_and_reads_no_later_row() -> None:
    s = line("A", 0.7, noise=0.5, seed=3)
    tr = track_of(s)
    rows = np.array([0, 1, 30, 120])
    hs = [7.0, 30.0]
    b = linear_changes(tr, rows, hs)  # (4, 2)
    assert b.shape == (4, 2)
    np.testing.assert_array_equal(b[:2], 0.0)  # fewer than 3 observed rows: persistence
    for i, r in enumerate(rows[2:], start=2):
        t_r = float(tr.times()[r])
        keep = s.t <= t_r
        m = LinearTrend().fit(s.t[keep], s.y[keep])
        want = m.predict(t_r + np.array(hs)).prediction - s.y[keep][-1]
        np.testing.assert_allclose(b[i], want, rtol=1e-5, atol=1e-5)  # track is float32
    cut = tr.cut(float(tr.times()[120]))
    np.testing.assert_allclose(linear_changes(cut, rows, hs), b)
    with pytest.raises(ValueError, match="unknown base"):
        base_changes("quadratic", tr, rows, hs)


def two_stage_plate(name: str, n: int = 240, noise: float = 0.3, seed: int = 0) -> Series:
    """A plate under two fill lifts (days 10 and 120), with its surcharge record."""
    rng = np.random.default_rng(seed)
    t = np.arange(n, dtype=float)
    q = np.where(t >= 120, 4.0, np.where(t >= 10, 2.0, 0.0))
    y = 5.0 + sum(
        dq
        * (
            30.0 * consolidation_curve(t - day, 70.0, 0.0)
            + 4.0 * np.log1p(np.maximum(t - day, 0) / 70.0)
        )
        for day, dq in ((10.0, 2.0), (120.0, 2.0))
    )
    return Series(name, t, y + rng.normal(0.0, noise, n), {"surcharge": q})


def test_consolidation_base_matches_the_classic_back_analysis_and_reads_no_later_row() -> None:
    s = two_stage_plate("A")
    tr = track_of(s)
    rows = np.array([3, 60, 130, 200])
    hs = [7.0, 30.0, 90.0]
    b = consolidation_changes(tr, rows, hs)  # (4, 3)
    np.testing.assert_array_equal(b[0], 0.0)  # fewer than 5 observed rows: persistence
    for i, r in enumerate(rows[1:], start=1):
        t_r = float(tr.times()[r])
        keep = s.t <= t_r
        m = Consolidation(load="surcharge", n_boot=0).fit(
            s.t[keep], s.y[keep], {"surcharge": s.drivers["surcharge"][keep]}
        )
        want = m.predict(t_r + np.array(hs)).prediction - s.y[keep][-1]
        np.testing.assert_allclose(b[i], want, rtol=1e-3, atol=0.05)  # track is float32
    # at day 60 the second lift is unknown: the base forecasts less than what comes
    assert b[1, 2] < s.y[150] - s.y[60]
    cut = tr.cut(float(tr.times()[130]))
    np.testing.assert_allclose(consolidation_changes(cut, rows[:3], hs), b[:3])
    assert np.array_equal(base_changes("consolidation", tr, rows, hs), b)


def test_hybrid_samples_hold_the_base_residual_and_base_features() -> None:
    feats = EncoderFeatures(None)
    tr = track_of(line("A", 0.5))
    plain = track_samples(feats, tr, [7.0], 7.0, 64)
    hybrid = track_samples(feats, tr, [7.0], 7.0, 64, base="linear")
    assert hybrid.x.shape == (plain.x.shape[0], plain.x.shape[1] + 1)
    assert np.all(np.abs(plain.y) > 0.1)  # a trend: the change is not zero
    np.testing.assert_allclose(hybrid.y, 0.0, atol=1e-6)  # an exact line: no residual


@pytest.mark.parametrize("head", ["ridge", "mlp"])
def test_hybrid_forecast_follows_a_trend_and_ignores_data_after_the_cutoff(head: str) -> None:
    feats = EncoderFeatures(None)
    training = [track_of(line(f"T{i}", 0.2 + 0.3 * i, noise=0.05, seed=i)) for i in range(3)]
    kw = {"epochs": 5} if head == "mlp" else None

    def make(_: object) -> JepaForecaster:
        return JepaForecaster(
            feats,
            track_of,
            training,
            horizons=(7.0, 30.0),
            head=head,
            base="linear",
            head_kwargs=kw,
        )

    s = line("E", 1.1, noise=0.05, seed=9)
    cutoff = 150.0
    tf = np.array([157.0, 180.0])
    fc, model = forecast_from(make, s, cutoff, tf)
    assert model.fallback_ is None  # type: ignore[attr-defined]
    truth = 3.0 + 1.1 * tf
    # the base carries the trend; the head's correction of an exact line is near zero
    np.testing.assert_allclose(fc.prediction, truth, atol=1.5)
    wrecked = Series(s.name, s.t, np.where(s.t > cutoff, -1e6, s.y), s.drivers)
    fc2, _ = forecast_from(make, wrecked, cutoff, tf)
    np.testing.assert_allclose(fc2.prediction, fc.prediction, rtol=1e-9)


def test_fukuzono_features_read_the_history_up_to_the_cutoff_only() -> None:
    from geojepa.forecast.jepa_protocols import fukuzono_features

    t_f, b = 100.0, 0.5
    t = np.arange(0.0, 99.0, 0.5)
    x = np.log(t_f / (t_f - t)) / b  # 1/v = b (t_f - t): failure at day 100
    s = Series("creep", t, x, {})
    f = fukuzono_features(s, 80.0)
    assert f[0] == 1.0 and f[1] == pytest.approx(np.log(20.0), abs=0.05)
    later = Series("creep", t, np.where(t > 80.0, 0.0, x), {})
    np.testing.assert_array_equal(fukuzono_features(later, 80.0), f)
    steady = Series("steady", t, 0.3 * t, {})
    np.testing.assert_array_equal(fukuzono_features(steady, 80.0), [0.0, 0.0])  # no failure
    np.testing.assert_array_equal(fukuzono_features(s, 1.0), [0.0, 0.0])  # too few readings
