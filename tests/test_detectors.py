"""The detector contract, run over every registered detector, and each baseline's behaviour."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from geojepa.detectors import (
    Catch22Detector,
    DetectorScores,
    EmbeddingDensity,
    RandomDetector,
    RateOfChange,
    RobustZ,
    TriggerLevels,
    WindowIsolationForest,
    available_detectors,
    make_detector,
    register_detector,
)
from geojepa.errors import InputError
from geojepa.evaluate import ground_truth
from geojepa.frame import SensorFrame, to_frame
from geojepa.metrics import auc_pr
from test_detectors_synth import make_site

BASELINES = (
    "trigger",
    "rate_of_change",
    "robust_z",
    "iforest_raw",
    "catch22_iforest",
    "catch22_knn",
    "random",
)


def _small(name: str, seed: int = 0):  # type: ignore[no-untyped-def]
    """The registered detector, made cheaper for contract tests where it has windows."""
    det = make_detector(name, seed)
    if "window" in det.get_params() and name.startswith("catch22"):
        det.set_params(window=24, n_estimators=50)
    return det


@pytest.fixture(scope="module")
def frame() -> SensorFrame:
    return to_frame(make_site(3, n_sensors=3, days=20))


def test_registry_lists_every_baseline() -> None:
    assert set(BASELINES) <= set(available_detectors())
    with pytest.raises(InputError, match="unknown detector"):
        make_detector("no-such-detector")


@pytest.mark.parametrize("name", BASELINES)
def test_contract(name: str, frame: SensorFrame) -> None:
    train_end = frame.n_times // 2
    det = _small(name)
    assert det.fit(frame, train_end) is det
    scores = det.score(frame)
    assert isinstance(scores, DetectorScores)
    assert scores.score.shape == (frame.n_times,)
    assert scores.sensor_scores.shape == (frame.n_times, frame.n_sensors)
    assert scores.sensor_ids == tuple(frame.sensor_ids)
    # NaN only where nothing is observed, and the per-time score is the row's maximum
    assert not np.isnan(scores.sensor_scores[frame.observed]).any()
    scores.check_nan(frame)
    np.testing.assert_allclose(scores.score, np.nanmax(scores.sensor_scores, axis=1))
    # fitted attributes end in "_", constructor arguments are stored unchanged
    fitted = [k for k in vars(det) if k.endswith("_") and not k.startswith("_")]
    assert fitted
    assert clone(det).get_params() == det.get_params()


@pytest.mark.parametrize("name", BASELINES)
def test_causal_and_fit_sees_training_rows_only(name: str, frame: SensorFrame) -> None:
    train_end = frame.n_times // 2
    det = _small(name).fit(frame, train_end)
    full = det.score(frame)
    # causal: a prefix of the frame gives the prefix of the scores
    cut = frame.n_times * 3 // 4
    prefix = det.score(frame.slice_time(0, cut))
    np.testing.assert_allclose(prefix.sensor_scores, full.sensor_scores[:cut], equal_nan=True)
    # fit uses rows < train_end only: wrecking later rows changes nothing fitted
    wrecked_values = frame.values.copy()
    wrecked_values[train_end:] = 1e6
    wrecked = SensorFrame(
        wrecked_values, frame.observed, frame.time, frame.sensors, frame.interval, frame.counts
    )
    det2 = _small(name).fit(wrecked, train_end)
    np.testing.assert_allclose(det2.score(frame).sensor_scores, full.sensor_scores, equal_nan=True)


def test_unfitted_or_mismatched_frames_are_refused(frame: SensorFrame) -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        RobustZ().score(frame)
    det = RobustZ().fit(frame, 100)
    other = SensorFrame(
        frame.values[:, :2],
        frame.observed[:, :2],
        frame.time,
        frame.sensors.iloc[:2],
        frame.interval,
    )
    with pytest.raises(ValueError, match="sensors differ"):
        det.score(other)
    with pytest.raises(ValueError, match="train_end"):
        RobustZ().fit(frame, 0)


def test_sensor_without_training_readings_is_an_input_error(frame: SensorFrame) -> None:
    observed = frame.observed.copy()
    observed[:200, 1] = False
    values = np.where(observed, frame.values, np.nan).astype(np.float32)
    late = SensorFrame(values, observed, frame.time, frame.sensors, frame.interval)
    with pytest.raises(InputError, match="'S1' has 0 readings before the end"):
        TriggerLevels().fit(late, 200)


def _frame_with(values: np.ndarray) -> SensorFrame:
    t, c = values.shape
    return SensorFrame(
        values.astype(np.float32),
        np.isfinite(values),
        pd.date_range("2024-01-01", periods=t, freq="h").to_numpy(),
        pd.DataFrame({"id": [f"S{i}" for i in range(c)]}),
        pd.Timedelta("1h"),
    )


def test_trigger_levels_are_training_percentiles() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 1))
    x[700, 0] = 10.0
    fr = _frame_with(x)
    det = TriggerLevels(lower_pct=1, upper_pct=99).fit(fr, 500)
    lo, hi = np.percentile(x[:500, 0], [1, 99])
    assert det.lower_[0] == pytest.approx(lo) and det.upper_[0] == pytest.approx(hi)
    s = det.score(fr).sensor_scores[:, 0]
    assert s[700] == pytest.approx((10.0 - hi) / (hi - lo), rel=1e-5)
    assert (s[:500] > 0).mean() == pytest.approx(0.02, abs=0.005)  # outside [p1, p99]


def test_rate_of_change_sees_a_jump_but_not_a_level() -> None:
    x = (
        np.concatenate([np.zeros(300), np.full(300, 5.0)])[:, None]
        + np.sin(np.arange(600) / 5)[:, None]
    )
    fr = _frame_with(x)
    s = RateOfChange(lags=(1,)).fit(fr, 200).score(fr).sensor_scores[:, 0]
    assert int(np.argmax(s)) == 300
    assert s[310:].max() < s[300] / 2


def test_robust_z_global_and_rolling() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(800, 1))
    x[600, 0] = 8.0
    fr = _frame_with(x)
    g = RobustZ(window=None).fit(fr, 400).score(fr).sensor_scores[:, 0]
    r = RobustZ(window=24).fit(fr, 400).score(fr).sensor_scores[:, 0]
    assert int(np.argmax(g)) == 600 and int(np.argmax(r)) == 600
    assert g[600] == pytest.approx(8.0 / 1.0, rel=0.15)  # MAD of N(0,1) * 1.4826 ~ 1


def test_random_detector_is_seeded_and_uniform(frame: SensorFrame) -> None:
    a = RandomDetector(seed=1).fit(frame, 100).score(frame)
    b = RandomDetector(seed=1).fit(frame, 100).score(frame)
    c = RandomDetector(seed=2).fit(frame, 100).score(frame)
    np.testing.assert_array_equal(a.sensor_scores, b.sensor_scores)
    assert not np.allclose(np.nan_to_num(a.sensor_scores), np.nan_to_num(c.sensor_scores))
    vals = a.sensor_scores[frame.observed]
    assert 0.0 <= vals.min() and vals.max() < 1.0 and abs(vals.mean() - 0.5) < 0.02


@pytest.mark.parametrize(
    ("name", "kinds", "floor"),
    [
        ("robust_z", ("spike",), 0.5),
        ("rate_of_change", ("spike",), 0.3),  # a spike is two jumps: up, then down
        ("trigger", ("step",), 0.3),
        ("iforest_raw", ("drift", "step"), 0.2),
        ("catch22_knn", ("noise", "stuck"), 0.2),
    ],
)
def test_baselines_beat_random_where_they_should(
    name: str, kinds: tuple[str, ...], floor: float
) -> None:
    """Quality floors on the synthetic site: each baseline on the events it is built for."""
    site = make_site(5, n_sensors=3, days=60, intensity=2.0, kinds=kinds, events_per_kind=2)
    fr = to_frame(site)
    truth = ground_truth(site.labels, fr)
    mask = truth.mask(truth.events)
    a = fr.n_times // 2
    det = _small(name).fit(fr, a)
    rnd = RandomDetector(seed=0).fit(fr, a)
    ap = auc_pr(det.score(fr).score[a:], mask[a:])
    ap_random = auc_pr(rnd.score(fr).score[a:], mask[a:])
    assert ap > max(floor, ap_random + 0.2), (ap, ap_random)


def test_attribution_points_at_the_faulty_sensor() -> None:
    site = make_site(9, n_sensors=5, days=30, intensity=3.0, kinds=("spike",), events_per_kind=4)
    fr = to_frame(site)
    truth = ground_truth(site.labels, fr)
    scores = RobustZ().fit(fr, fr.n_times // 2).score(fr)
    frame_ids = fr.sensor_ids
    hits = [
        frame_ids[int(np.nanargmax(scores.sensor_scores[e.start]))] in e.sensors
        for e in truth.events
    ]
    assert np.mean(hits) >= 0.75


def test_window_detectors_accept_hop() -> None:
    fr = to_frame(make_site(2, n_sensors=2, days=12))
    for det in (WindowIsolationForest(window=12, hop=4), Catch22Detector(window=12, hop=4)):
        s = det.fit(fr, 120).score(fr)
        s.check_nan(fr)
        # constant over each hop block: the window ending at the block's first row
        blk = s.sensor_scores[120:124, 0]
        assert np.allclose(blk, blk[0])


def test_plugin_registration() -> None:
    register_detector("test-plugin", lambda seed: RobustZ(window=seed + 1))
    det = make_detector("test-plugin", 5)
    assert isinstance(det, RobustZ) and det.window == 6


# ----------------------------------------------------------------------------- EmbeddingDensity


@pytest.mark.parametrize("method", ["knn", "mahalanobis", "iforest"])
def test_embedding_density_ranks_outliers_high(method: str) -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(size=(500, 8))  # (N, D)
    query = np.concatenate([rng.normal(size=(50, 8)), rng.normal(size=(10, 8)) + 4.0])
    dens = EmbeddingDensity(method=method, seed=1).fit(z)
    assert dens.fit(z) is dens
    s = dens.score(query)
    assert s.shape == (60,)
    assert s[50:].min() > np.quantile(s[:50], 0.9)


def test_knn_scores_training_rows_leave_one_out() -> None:
    rng = np.random.default_rng(2)
    z = rng.normal(size=(200, 4))
    dens = EmbeddingDensity(method="knn", n_neighbors=3).fit(z)
    s_train = dens.score(z)
    # reference: mean distance to the 3 nearest *other* rows
    d = np.sqrt(((z[:, None, :] - z[None, :, :]) ** 2).sum(-1)) / 1.0
    zs = (z - z.mean(0)) / z.std(0)
    d = np.sqrt(((zs[:, None, :] - zs[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    expected = np.sort(d, axis=1)[:, :3].mean(axis=1)
    np.testing.assert_allclose(s_train, expected, rtol=1e-6)
    # fresh draws from the same law score like training rows (no in-sample optimism)
    s_new = dens.score(rng.normal(size=(200, 4)))
    assert abs(np.median(s_new) / np.median(s_train) - 1.0) < 0.15


@pytest.mark.parametrize("method", ["mahalanobis", "iforest"])
def test_training_rows_are_scored_out_of_sample(method: str) -> None:
    rng = np.random.default_rng(3)
    mix = rng.normal(size=(16, 64))  # rows of low effective rank, as embeddings are

    def draw(n: int) -> np.ndarray:
        return rng.normal(size=(n, 16)) @ mix + 0.05 * rng.normal(size=(n, 64))

    train, fresh = draw(80), draw(2000)  # fewer training rows than dimensions
    dens = EmbeddingDensity(method=method, seed=1).fit(train)
    plain = EmbeddingDensity(method=method, seed=1, folds=0).fit(train)
    # new rows: the model fitted on every training row, as before
    np.testing.assert_allclose(dens.score(fresh), plain.score(fresh), rtol=1e-12)
    held = dens.score(train)
    # a training row recomputed with float noise is still the training row
    noisy = train + 1e-9 * rng.normal(size=train.shape)
    np.testing.assert_allclose(dens.score(noisy), held, rtol=1e-12)
    if method == "mahalanobis":  # the first block of five by a model fitted without it
        from sklearn.covariance import LedoitWolf

        z = (train - dens.mean_) / dens.std_
        ref = np.sqrt(LedoitWolf().fit(z[16:]).mahalanobis(z[:16]))
        np.testing.assert_allclose(held[:16], ref, rtol=1e-8)
    # in sample, a q99 of training scores is exceeded by far more than 1 % of new rows
    # (measured: Mahalanobis 0.22, IsolationForest 0.043); out of sample, by about 1 %
    # (0.016, 0.024)
    new = dens.score(fresh)
    in_sample = (new > np.quantile(plain.score(train), 0.99)).mean()
    out_of_sample = (new > np.quantile(held, 0.99)).mean()
    assert out_of_sample < in_sample
    if method == "mahalanobis":
        assert in_sample > 0.1 and out_of_sample < 0.06


def test_embedding_density_refuses_bad_input() -> None:
    z = np.random.default_rng(0).normal(size=(20, 3))
    bad = z.copy()
    bad[4, 1] = np.nan
    with pytest.raises(ValueError, match="row 4"):
        EmbeddingDensity().fit(bad)
    with pytest.raises(ValueError, match="method"):
        EmbeddingDensity(method="nope").fit(z)
    with pytest.raises(RuntimeError, match="not fitted"):
        EmbeddingDensity().score(z)
    with pytest.raises(ValueError, match="columns"):
        EmbeddingDensity().fit(z).score(z[:, :2])


def test_window_cache_gives_the_same_scores(frame: SensorFrame) -> None:
    det = Catch22Detector(window=24, method="knn").fit(frame, 150)
    cached = det.score(frame).sensor_scores
    del det._train_cache  # force every window to be recomputed
    fresh = det.score(frame).sensor_scores
    np.testing.assert_allclose(cached, fresh, rtol=1e-9, equal_nan=True)


@pytest.mark.parametrize("name", BASELINES)
def test_pyod_scoring_contract(name: str, frame: SensorFrame) -> None:
    train_end = frame.n_times // 2
    det = _small(name).fit(frame, train_end)
    with pytest.raises(RuntimeError, match="fit_threshold"):
        det.predict(frame)
    np.testing.assert_array_equal(det.decision_function(frame), det.score(frame).score)
    assert det.fit_threshold(frame, train_end, "quantile", 0.9) is det
    # training scores only: wrecking later rows changes neither the scores nor the threshold
    wrecked = frame.values.copy()
    wrecked[train_end:] = 1e6
    other = _small(name).fit(frame, train_end)
    wrecked_frame = SensorFrame(
        wrecked, frame.observed, frame.time, frame.sensors, frame.interval, frame.counts
    )
    other.fit_threshold(wrecked_frame, train_end, "quantile", 0.9)
    assert other.threshold_ == det.threshold_
    assert det.decision_scores_.shape == (train_end,)
    finite = det.decision_scores_[np.isfinite(det.decision_scores_)]
    assert det.threshold_ == pytest.approx(np.quantile(finite, 0.9))
    np.testing.assert_array_equal(
        det.labels_, (np.nan_to_num(det.decision_scores_, nan=-np.inf) > det.threshold_)
    )
    assert det.labels_.mean() <= 0.1 + 1e-9  # contamination 1 - level at most
    pred = det.predict(frame)
    assert pred.shape == (frame.n_times,) and set(np.unique(pred)) <= {0, 1}
    np.testing.assert_array_equal(pred[:train_end], det.labels_)


def test_rate_of_change_is_a_rate_across_a_gap() -> None:
    """A change measured across missing rows is divided by the rows it spans: a steady
    trend resumed after a dropout is no jump, a step hidden in the dropout still is."""
    rng = np.random.default_rng(2)
    t = np.arange(1000, dtype=np.float64)
    trend = 0.05 * t + rng.normal(scale=0.01, size=1000)
    step = trend + np.where(t >= 660, 30.0, 0.0)  # the step happens inside the gap
    x = np.stack([trend, step], axis=1)
    x[600:720] = np.nan  # a 120-row dropout on both sensors
    fr = _frame_with(x)
    s = RateOfChange().fit(fr, 400).score(fr).sensor_scores
    usual = float(np.nanmax(s[400:600, 0]))
    assert s[720, 0] < 3.0 * usual  # the trend went on at its usual rate
    assert s[720, 1] > 5.0 * usual  # 30 over 121 rows is 5x the trend's rate


def test_rate_of_change_without_gaps_is_unchanged() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 1)).cumsum(axis=0)
    fr = _frame_with(x)
    det = RateOfChange(lags=(1, 24)).fit(fr, 150)
    s = det._raw(fr)[:, 0]  # before the training-scale normalisation
    d1 = np.abs(np.diff(x[:, 0], prepend=x[0, 0])) / det.lag_scale_[0, 0]
    d24 = np.zeros(300)
    d24[24:] = np.abs(x[24:, 0] - x[:-24, 0]) / det.lag_scale_[1, 0]
    np.testing.assert_allclose(s, np.fmax(d1, d24), rtol=1e-5)
