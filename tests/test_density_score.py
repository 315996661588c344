"""The embedding-density score (`geojepa.density_score`): the Mahalanobis distance of the
benchmark's density detector, computed with numpy alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from geojepa.density_score import DensityModel, window_ends
from geojepa.detectors.density import EmbeddingDensity


def test_numpy_scores_equal_the_detectors_mahalanobis(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    train = rng.normal(size=(60, 2, 6)) @ rng.normal(size=(6, 6))  # (W, C, D) correlated
    train[5, 1] = np.nan  # a window without a reading of sensor 1
    model = DensityModel.fit(train)
    test = rng.normal(size=(9, 2, 6)) * 2.0
    got = model.score(test)  # (9, 2)
    for c in range(2):
        x = train[:, c]
        ref = EmbeddingDensity("mahalanobis").fit(x[np.isfinite(x).all(axis=1)])
        np.testing.assert_allclose(got[:, c], ref.score(test[:, c]), rtol=1e-8)
    model.save(tmp_path / "d.npz")
    again = DensityModel.load(tmp_path / "d.npz")
    np.testing.assert_array_equal(again.score(test), got)


def test_unfitted_sensors_and_missing_patches_score_nan() -> None:
    rng = np.random.default_rng(1)
    train = rng.normal(size=(20, 2, 4))
    train[2:, 1] = np.nan  # sensor 1: two training embeddings only
    model = DensityModel.fit(train)
    assert model.fitted.tolist() == [True, False]
    test = rng.normal(size=(3, 2, 4))
    test[0, 0] = np.nan
    s = model.score(test)
    assert np.isnan(s[0, 0]) and np.isfinite(s[1:, 0]).all() and np.isnan(s[:, 1]).all()
    # far from the training cloud scores higher than near it
    near = model.score(np.zeros((1, 2, 4)))[0, 0]
    far = model.score(np.full((1, 2, 4), 8.0))[0, 0]
    assert far > near


def test_window_ends_cover_the_frame() -> None:
    np.testing.assert_array_equal(window_ends(10, 4), [4, 8, 10])
    np.testing.assert_array_equal(window_ends(8, 4), [4, 8])
    assert window_ends(0, 4).size == 0


def test_held_out_scores_calibrate_thresholds_that_new_data_respects() -> None:
    from geojepa.density_score import held_out_scores

    rng = np.random.default_rng(3)
    mix = rng.normal(size=(16, 64))  # embeddings of low effective rank, as trained ones are

    def draw(n: int) -> np.ndarray:
        return (rng.normal(size=(n, 16)) @ mix + 0.05 * rng.normal(size=(n, 64)))[:, None, :]

    train = draw(80)  # fewer windows than dimensions
    fresh = draw(4000)  # new normal windows
    model = DensityModel.fit(train)
    new = model.score(fresh)[:, 0]
    in_sample = np.quantile(model.score(train)[:, 0], 0.99)
    held = held_out_scores(train, folds=5)[:, 0]
    assert np.isfinite(held).all()
    out_of_sample = np.quantile(held, 0.99)
    # scored by the model fitted on them, training windows look closer than new data:
    # a q99 set on them is exceeded by far more than 1 % of new normal windows
    assert (new > in_sample).mean() > 0.1  # measured: 0.22
    assert (new > out_of_sample).mean() < 0.05  # measured: 0.016
