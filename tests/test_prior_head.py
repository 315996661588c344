"""CorrectedHead: a fitted source head plus a ridge correction that must earn its place."""

from __future__ import annotations

import numpy as np
import pytest

from geojepa.forecast.heads import MLPHead, RidgeHead
from geojepa.forecast.prior import CorrectedHead


def _data(n: int, shift: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    y = np.stack([x[:, 0] * 2.0 + shift, -x[:, 1] + shift], axis=1)
    return x, y + 0.05 * rng.normal(size=y.shape)


def test_few_local_labels_that_agree_with_the_source_rarely_move_it() -> None:
    xs, ys = _data(400, 0.0, 0)
    source = RidgeHead().fit(xs, ys)
    kept, ratio = [], []
    for seed in range(1, 21):  # the local site behaves like the sources
        x, y = _data(4, 0.0, seed)
        head = CorrectedHead(source).fit(x, y)
        kept.append(not head.corrected_.any())
        xt, yt = _data(100, 0.0, 100 + seed)
        ratio.append(np.abs(head.predict(xt) - yt).mean() / np.abs(source.predict(xt) - yt).mean())
        if kept[-1]:
            np.testing.assert_allclose(head.predict(xt), source.predict(xt))
    assert np.mean(kept) >= 0.7  # one standard error: chance gains on 4 labels are refused
    assert np.median(ratio) <= 1.0 + 1e-12


def test_a_consistent_local_offset_is_learned_when_labels_show_it() -> None:
    xs, ys = _data(400, 0.0, 0)
    source = RidgeHead().fit(xs, ys)
    x, y = _data(60, 1.5, 3)  # the new site sits 1.5 above what the sources taught
    head = CorrectedHead(source).fit(x, y, groups=np.arange(60) % 3)
    assert head.corrected_.all()
    xt, yt = _data(200, 1.5, 4)
    err_src = np.abs(source.predict(xt) - yt).mean()
    err = np.abs(head.predict(xt) - yt).mean()
    assert err < 0.3 * err_src
    assert head.range_[0, 1] >= y[:, 0].max()  # the local labels widen the clip range


def test_source_head_is_not_refitted_and_must_be_fitted() -> None:
    xs, ys = _data(200, 0.0, 0)
    source = MLPHead(epochs=5, hidden=8).fit(xs, ys)
    before = source.predict(xs[:5]).copy()
    CorrectedHead(source).fit(*_data(30, 1.0, 5))
    np.testing.assert_array_equal(source.predict(xs[:5]), before)
    with pytest.raises(ValueError, match="fitted"):
        CorrectedHead(RidgeHead())
    with pytest.raises(ValueError, match="horizons"):
        CorrectedHead(source).fit(xs[:10], ys[:10, :1].repeat(3, axis=1))


def test_missing_targets_are_skipped_per_horizon() -> None:
    xs, ys = _data(200, 0.0, 0)
    source = RidgeHead().fit(xs, ys)
    x, y = _data(40, 2.0, 6)
    y[:, 1] = np.nan  # no 2nd-horizon labels: that horizon keeps the source forecast
    head = CorrectedHead(source).fit(x, y)
    assert head.corrected_[0] and not head.corrected_[1]
    np.testing.assert_allclose(head.predict(x)[:, 1], source.predict(x)[:, 1])
