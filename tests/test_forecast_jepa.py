"""The JEPA forecaster: tracks, causal features, heads, cutoff enforcement, shapes, fallback.

Behaviour only (tiny models, a few steps): quality is the benchmark's business.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geojepa.checkpoint import LoadedRun
from geojepa.config import preset
from geojepa.forecast.evaluate import Series, forecast_from
from geojepa.forecast.features import N_LEVEL, EncoderFeatures
from geojepa.forecast.heads import MEDIAN_DELTA, MLPHead, RidgeHead
from geojepa.forecast.learned import JepaForecaster, Reducer, SampleBank, origin_rows
from geojepa.forecast.tracks import Track, frame_track, series_track
from geojepa.frame import SensorFrame
from geojepa.site import Sensor, sensors_frame
from geojepa.transfer import random_run
from geojepa.windows import WindowSpec


def tiny_run(seed: int = 0) -> LoadedRun:
    """An untrained tiny JEPA (dim 32, one block, patch 4, windows of 16 steps)."""
    cfg = preset("tiny")
    cfg = replace(
        cfg,
        model=replace(cfg.model, dim=32, depth=1, heads=2, predictor_dim=16, patch=4),
        window=WindowSpec(length=16, stride=4, patch=4),
        train=replace(cfg.train, interval="1D"),
    )
    return random_run(cfg, seed)


def plate(seed: int = 0, n: int = 240, name: str = "P1") -> Series:
    """A settlement record read every 1-3 days under two fill stages (lift at day 100)."""
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.integers(1, 4, n)).astype(float)
    t = t[t < 400]
    x2 = np.clip(t - 100, 0, None)
    y = (
        t / (0.5 + 0.01 * t)
        + np.where(t >= 100, x2 / (0.4 + 0.012 * x2), 0)
        + rng.normal(0, 0.3, t.size)
    )
    fill = np.where(t >= 100, 4.0, 2.0)
    return Series(name, t, y, {"surcharge": fill})


def layout(name: str) -> pd.DataFrame:
    return sensors_frame(
        [Sensor(name, "settlement", "mm", group=name), Sensor("surcharge", "load", "m", group=name)]
    )


def make_factory(feats: EncoderFeatures, head: str = "ridge", **kw: object):  # type: ignore[no-untyped-def]
    def make(training):  # type: ignore[no-untyped-def]
        tracks = [series_track(s, layout(s.name)) for s in training]
        return JepaForecaster(
            feats,
            lambda h: series_track(h, layout(h.name)),
            tracks,
            horizons=(3.0, 10.0, 30.0),
            stride=3.0,
            head=head,
            **kw,  # type: ignore[arg-type]
        )

    return make


# --------------------------------------------------------------------------- tracks
def test_series_track_puts_each_reading_at_or_before_its_row_time() -> None:
    s = Series(
        "A", np.array([0.0, 0.5, 1.0, 3.0]), np.array([1.0, 2.0, 3.0, 4.0]), {"d": np.ones(4)}
    )
    tr = series_track(s, sensors_frame([Sensor("A", "settlement"), Sensor("d", "load")]))
    assert tr.n_rows == 4 and tr.step == 1.0
    # 0.5 and 1.0 share row 1 (time 1.0): averaged; row 2 (time 2) unobserved
    np.testing.assert_allclose(tr.target_values(), [1.0, 2.5, np.nan, 4.0])
    cut = tr.cut(1.9)
    assert cut.n_rows == 2 and tr.n_rows == 4  # a copy
    np.testing.assert_allclose(
        tr.value_at(np.array([1.5, 2.0, 3.0, 3.5])), [2.875, 3.25, 4.0, np.nan]
    )
    with pytest.raises(ValueError, match="no driver"):
        series_track(s, sensors_frame([Sensor("A", "settlement"), Sensor("x", "load")]))


# --------------------------------------------------------------------------- features
def test_features_at_an_origin_ignore_later_rows_and_the_cache_is_exact() -> None:
    feats = EncoderFeatures(tiny_run(), refit_every=8)
    tr = series_track(plate(), layout("P1"))
    rows = np.array([20, 40, 60])
    a = feats.at(tr, rows)
    assert a.x.shape == (3, feats.dim) and feats.dim == 2 * 32 + N_LEVEL
    assert np.all(np.isfinite(a.x)) and a.ok.all()
    # wreck every row after 60: features at rows <= 60 are the same (recomputed or cached)
    f = tr.frame
    values = f.values.copy()
    values[61:] = 1e6
    wrecked = Track(
        tr.name, SensorFrame(values, f.observed, f.time, f.sensors, f.interval), 0, tr.t0, tr.step
    )
    fresh = EncoderFeatures(tiny_run(), refit_every=8)
    for other in (feats, fresh):
        b = other.at(wrecked, rows)
        np.testing.assert_allclose(b.x, a.x, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(b.level, a.level)
    # a changed window is a different input: not served from the cache
    r = 61 + int(np.argmax(tr.frame.observed[61:, 0]))  # the first observed row after 60
    c = feats.at(wrecked, np.array([r]))
    assert not np.allclose(c.x, feats.at(tr, np.array([r])).x)


def test_level_features_need_no_model() -> None:
    feats = EncoderFeatures(None)
    assert feats.dim == N_LEVEL
    tr = series_track(plate(), layout("P1"))
    f = feats.at(tr, origin_rows(tr, 7.0, 64))
    assert f.x.shape[1] == N_LEVEL and np.all(f.scale > 0)


# --------------------------------------------------------------------------- heads
def test_ridge_head_fits_a_linear_map_and_leaves_sparse_horizons_empty() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5))
    y = np.stack([x @ np.arange(5.0), x[:, 0] * 2, np.full(200, np.nan)], axis=1)
    y[:5, 2] = 1.0  # too few samples for horizon 3
    head = RidgeHead(min_samples=8).fit(x + rng.normal(0, 0.01, x.shape), y)
    pred = head.predict(x)
    np.testing.assert_allclose(pred[:, :2], y[:, :2], atol=0.2)
    assert np.isnan(pred[:, 2]).all() and list(head.n_) == [200, 200, 5]
    groups = np.repeat(np.arange(4), 50)
    g = RidgeHead().fit(x, y[:, :1], groups)
    assert g.band_[0, 0] < 0 < g.band_[0, 1]
    far = g.predict(np.full((1, 5), 1e3))  # far outside the training features
    assert far[0, 0] == pytest.approx(np.nanmax(y[:, 0]))  # clipped to the targets' range


def test_mlp_head_is_deterministic_given_its_seed() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(120, 4))
    y = np.sin(x[:, :1]) + 0.1 * x[:, 1:2]
    a = MLPHead(epochs=40, seed=3).fit(x, y)
    b = MLPHead(epochs=40, seed=3).fit(x, y).predict(x[:10])
    c = MLPHead(epochs=40, seed=4).fit(x, y).predict(x[:10])
    np.testing.assert_array_equal(a.predict(x[:10]), b)
    assert not np.array_equal(b, c)
    assert float(np.mean((a.predict(x) - y) ** 2)) < float(np.var(y))  # it learned something


def test_mlp_head_with_a_small_huber_delta_fits_the_median() -> None:
    # uninformative features, skewed two-valued targets: mean 3, median 0; the absolute
    # error is least at the median
    rng = np.random.default_rng(5)
    x = rng.normal(size=(400, 3))
    y = np.where(rng.random((400, 1)) < 0.3, 10.0, 0.0)
    kw = {"epochs": 60, "seed": 0, "weight_decay": 0.0}
    wide = MLPHead(**kw).fit(x, y).predict(x)
    narrow = MLPHead(delta=0.05, **kw).fit(x, y).predict(x)
    assert abs(float(np.median(narrow))) < 1.0 < abs(float(np.median(wide)))
    assert np.mean(np.abs(narrow - y)) < np.mean(np.abs(wide - y))


def test_the_median_head_is_the_mlp_with_the_narrow_huber_delta() -> None:
    feats = EncoderFeatures(None)
    median = make_factory(feats, "median")([])._make_head()
    mlp = make_factory(feats, "mlp")([])._make_head()
    assert isinstance(median, MLPHead) and median.delta == MEDIAN_DELTA < 0.1
    assert isinstance(mlp, MLPHead) and mlp.delta == 1.0


def test_reducer_keeps_level_columns() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(50, 20 + N_LEVEL))
    r = Reducer(20, 4).fit(x)
    z = r.transform(x)
    assert z.shape == (50, 4 + N_LEVEL)
    np.testing.assert_array_equal(z[:, 4:], x[:, 20:])
    assert Reducer(20, None).fit(x).transform(x) is x


# --------------------------------------------------------------------------- the forecaster
@pytest.mark.parametrize("head", ["ridge", "mlp", "median"])
def test_jepa_forecast_ignores_data_after_the_cutoff(head: str) -> None:
    feats = EncoderFeatures(tiny_run())
    make = make_factory(feats, head, head_kwargs={"epochs": 5} if head != "ridge" else None)
    s, others = plate(0), [plate(1, name="P2"), plate(2, name="P3")]
    cutoff = 200.0
    tf = s.t[s.t > cutoff][:12]
    fc, model = forecast_from(make, s, cutoff, tf, others)
    assert model.fallback_ is None and model.n_samples_ > 20  # type: ignore[attr-defined]
    assert fc.prediction.shape == (12,) and np.all(np.isfinite(fc.prediction))
    assert np.all(fc.lower <= fc.prediction) and np.all(fc.prediction <= fc.upper)
    wrecked = Series(
        s.name,
        s.t,
        np.where(s.t > cutoff, -1e6, s.y),
        {"surcharge": np.where(s.t > cutoff, 99.0, s.drivers["surcharge"])},
    )
    fc2, _ = forecast_from(make, wrecked, cutoff, tf, others)
    np.testing.assert_allclose(fc2.prediction, fc.prediction, rtol=1e-9)
    np.testing.assert_allclose(fc2.upper, fc.upper, rtol=1e-9)


def test_context_tracks_are_cut_at_the_cutoff() -> None:
    """`track_of` / `context_of` may hand over whole records of the site: they are cut."""
    feats = EncoderFeatures(tiny_run())
    a, b = plate(0, name="site/A"), plate(5, name="site/B")
    lay = sensors_frame([Sensor("x", "settlement"), Sensor("surcharge", "load")])
    full_a, full_b = series_track(a, lay), series_track(b, lay)

    def model(ta: Track, tb: Track) -> JepaForecaster:
        return JepaForecaster(
            feats, lambda h: ta, context_of=lambda h: [tb], horizons=(3.0, 10.0), stride=3.0
        ).bind("site/A", None)

    cutoff = 180.0
    hist = a.t <= cutoff
    m1 = model(full_a, full_b).fit(a.t[hist], a.y[hist])

    def wreck(tr: Track) -> Track:
        v = tr.frame.values.copy()
        v[tr.row_of(cutoff) + 1 :] = 5e5
        f = tr.frame
        return Track(
            tr.name, SensorFrame(v, f.observed, f.time, f.sensors, f.interval), 0, tr.t0, tr.step
        )

    m2 = model(wreck(full_a), wreck(full_b)).fit(a.t[hist], a.y[hist])
    tf = np.array([185.0, 190.0])
    np.testing.assert_allclose(m1.predict(tf).prediction, m2.predict(tf).prediction)
    assert m1.track_.n_rows == full_a.row_of(float(a.t[hist][-1])) + 1  # cut at the history end


def test_too_short_a_history_falls_back_to_persistence() -> None:
    feats = EncoderFeatures(tiny_run())
    s = plate(0)
    fc, model = forecast_from(make_factory(feats), s, 20.0, np.array([25.0, 30.0]), [])
    assert model.fallback_ is not None  # type: ignore[attr-defined]
    last = s.y[s.t <= 20.0][-1]
    np.testing.assert_allclose(fc.prediction, last)


def test_sample_bank_reuses_only_the_same_track() -> None:
    feats = EncoderFeatures(None)
    bank = SampleBank()
    tr = series_track(plate(), layout("P1"))
    a = bank.get(feats, tr, [3.0], 3.0, 16)
    assert bank.get(feats, tr, [3.0], 3.0, 16) is a
    other = series_track(plate(), layout("P1"))
    assert bank.get(feats, other, [3.0], 3.0, 16) is not a


def test_frame_track_maps_rows_to_days(tmp_path: Path) -> None:
    tr = series_track(plate(), layout("P1"))
    ft = frame_track(tr.frame, "P1", 5.0)
    assert ft.step == 1.0 and ft.times()[0] == 5.0 and ft.row_of(5.99) == 0


def _settlement_frame(n: int = 160, seed: int = 0) -> SensorFrame:
    """A daily frame of one settlement plate ``P1``."""
    rng = np.random.default_rng(seed)
    t = np.arange(n, dtype=float)
    y = t / (0.5 + 0.01 * t) + rng.normal(0, 0.3, n)
    time = pd.date_range("2020-01-01", periods=n, freq="1D").to_numpy("datetime64[ns]")
    sensors = sensors_frame([Sensor("P1", "settlement", "mm", group="g")])
    return SensorFrame(
        y[:, None].astype(np.float32), np.ones((n, 1), bool), time, sensors, pd.Timedelta("1D")
    )


def test_sim_methods_refuse_to_forecast_a_site_of_their_own_pool() -> None:
    """The pool's records are used whole: a pool site must not be the forecast one."""
    from geojepa.forecast.jepa_protocols import SimContext, sim_methods

    ctx = SimContext({"s0": _settlement_frame(), "s1": _settlement_frame(seed=1)})
    feats = EncoderFeatures(None, spec=WindowSpec(length=16, stride=4, patch=4))
    methods = sim_methods({"level": feats}, ctx, ["s0", "s1"], horizons=(7.0,), heads=("ridge",))
    t = np.arange(100, dtype=float)
    y = ctx.track("s0/P1").target_values()[:100]
    with pytest.raises(ValueError, match="pool"):
        methods["level_ridge"]([]).bind("s0/P1", None).fit(t, y)
    # a site outside the pool is forecast as before
    methods = sim_methods({"level": feats}, ctx, ["s1"], horizons=(7.0,), heads=("ridge",))
    pred = methods["level_ridge"]([]).bind("s0/P1", None).fit(t, y).predict(np.array([107.0]))
    assert np.isfinite(pred.prediction).all()


def test_time_of_failure_refuses_training_events_of_an_evaluated_site() -> None:
    """A training event on an evaluated slope would hand its failure time to the head."""
    from geojepa.forecast.jepa_protocols import SimContext, failure_protocol_jepa
    from geojepa.forecast.simulated import CreepCase

    ctx = SimContext({"s0": _settlement_frame()}, kind="settlement")
    s = ctx.track("s0/P1")
    series = Series("s0/P1", s.times(), s.target_values())
    case = CreepCase("s0", "P1", series, onset=60.0, end=120.0, failure=125.0)
    feats = {"level": EncoderFeatures(None, spec=WindowSpec(length=16, stride=4, patch=4))}
    with pytest.raises(ValueError, match="evaluated"):
        failure_protocol_jepa(feats, ctx, [case], [case])
