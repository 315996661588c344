"""The collate function: seeding, padding, coverage of the mask mixture."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import synthetic_frame
from geojepa.codes import sensor_features, sensor_info
from geojepa.errors import InputError
from geojepa.masking import (
    DEFAULT_WEIGHTS,
    MASK_GENERATORS,
    Batch,
    MaskCollator,
    MaskConfig,
    full_batch,
    with_target,
)
from geojepa.windows import Normaliser, Window, WindowDataset, WindowSpec

SPEC = WindowSpec(length=64, stride=16, patch=16, min_observed=0.0)


def _windows(n_sensors: int, count: int, seed: int, missing: float = 0.1) -> list[Window]:
    frame = synthetic_frame(n_sensors, 64 + 16 * count, seed=seed, missing=missing)
    ds = WindowDataset(frame, Normaliser.fit(frame), SPEC)
    return [ds[i] for i in range(count)]


def _sets(row_idx: torch.Tensor, row_pad: torch.Tensor) -> set[int]:
    return set(row_idx[~row_pad].tolist())


def _equal(a: Batch, b: Batch) -> bool:
    names = ["values", "observed", "context", "context_pad", "target", "target_pad", "mask_kind"]
    return all(torch.equal(getattr(a, n), getattr(b, n)) for n in names)


def test_collator_is_a_pure_function_of_seed_step_and_windows() -> None:
    ws = _windows(6, 8, seed=0)
    col = MaskCollator(MaskConfig(), SPEC.patch, seed=3)
    a = col([(17, w) for w in ws])
    b = MaskCollator(MaskConfig(), SPEC.patch, seed=3)([(17, w) for w in ws])
    assert _equal(a, b)
    c = col([(18, w) for w in ws])
    assert not _equal(a, c)
    d = MaskCollator(MaskConfig(), SPEC.patch, seed=4)([(17, w) for w in ws])
    assert not _equal(a, d)


def test_batch_pads_to_the_largest_window_never_truncates() -> None:
    small, large = _windows(3, 2, seed=1), _windows(7, 2, seed=2)
    items = [(0, small[0]), (0, large[0]), (0, small[1]), (0, large[1])]
    batch = MaskCollator(MaskConfig(), SPEC.patch, seed=0)(items)
    p = SPEC.length // SPEC.patch
    assert batch.values.shape == (4, 7, 64)
    assert batch.sensor_pad.sum(1).tolist() == [4, 0, 4, 0]
    assert batch.token_valid.shape == (4, 7 * p)
    for i in range(4):
        ctx = _sets(batch.context[i], batch.context_pad[i])
        tgt = _sets(batch.target[i], batch.target_pad[i])
        valid = set(torch.nonzero(batch.token_valid[i]).flatten().tolist())
        assert ctx | tgt == valid  # every valid token is used: nothing dropped
        assert not ctx & tgt
        assert ctx
        if batch.sensor_pad[i].any():
            assert max(ctx | tgt) < 3 * p  # padding sensors are never tokens
    assert batch.context.shape[1] == int((~batch.context_pad).sum(1).max())
    assert batch.target.shape[1] == int((~batch.target_pad).sum(1).max())


def test_missing_patches_are_never_targets() -> None:
    ws = _windows(5, 16, seed=3, missing=0.0)
    holey = []
    for w in ws:
        obs = w.observed.copy()
        obs[1, 16:48] = False  # two whole patches missing
        obs[3, :] = False  # a dead sensor
        holey.append(Window(np.where(obs, w.values, 0), obs, w.sensor_feats, w.time_feats, w.start))
    for step in range(20):
        batch = MaskCollator(MaskConfig(), SPEC.patch, seed=0)([(step, w) for w in holey])
        p = 4
        banned = {1 * p + 1, 1 * p + 2} | {3 * p + k for k in range(p)}
        for i in range(len(holey)):
            tgt = _sets(batch.target[i], batch.target_pad[i])
            ctx = _sets(batch.context[i], batch.context_pad[i])
            assert not (tgt | ctx) & banned


def test_full_batch_uses_every_valid_token_as_context() -> None:
    ws = _windows(4, 3, seed=4)
    batch = full_batch(ws, SPEC.patch)
    assert batch.target.shape == (3, 0)
    for i in range(3):
        valid = set(torch.nonzero(batch.token_valid[i]).flatten().tolist())
        assert _sets(batch.context[i], batch.context_pad[i]) == valid


def test_with_target_hides_exactly_the_requested_tokens() -> None:
    ws = _windows(4, 2, seed=5)
    base = full_batch(ws, SPEC.patch)
    want = torch.zeros_like(base.token_valid)
    want[:, [0, 5, 9]] = True
    b = with_target(base, want, 2)
    for i in range(2):
        tgt = _sets(b.target[i], b.target_pad[i])
        assert tgt == {k for k in (0, 5, 9) if base.token_valid[i, k]}
        assert not tgt & _sets(b.context[i], b.context_pad[i])
    assert b.mask_kind.tolist() == [2, 2]


def test_mask_config_validation_and_roundtrip() -> None:
    with pytest.raises(InputError, match="unknown mask generator"):
        MaskConfig(weights={"temporal": 1.0, "checkerboard": 1.0})
    with pytest.raises(InputError):
        MaskConfig(weights={"temporal": 0.0})
    with pytest.raises(InputError, match="unknown mask setting"):
        MaskConfig.from_dict({"tube_ration": [0.1, 0.2]})
    cfg = MaskConfig(weights={"tube": 2.0, "future": 1.0}, tube_ratio=(0.2, 0.4))
    assert MaskConfig.from_dict(cfg.to_dict()) == cfg
    assert set(DEFAULT_WEIGHTS) == set(MASK_GENERATORS)


@pytest.mark.parametrize(("n_sensors", "n_patches"), [(8, 8), (16, 32), (3, 4)])
def test_mask_coverage_is_about_uniform(n_sensors: int, n_patches: int) -> None:
    """Over 10 000 draws of the default mixture, every (sensor, patch) cell is a target
    within 0.5x-2x of the mean rate (Future alone over-covers the tail; the mix balances)."""
    frame = synthetic_frame(n_sensors, 4, seed=n_sensors)
    info = sensor_info(sensor_features(frame.sensors))
    col = MaskCollator(MaskConfig(), 16, seed=0)
    valid = np.ones((n_sensors, n_patches), dtype=bool)
    hits = np.zeros((n_sensors, n_patches))
    draws = 10_000
    for i in range(draws):
        target, _ = col.draw(np.random.default_rng([0, i]), valid, info)
        hits += target
    rate = hits / draws
    ratio = rate / rate.mean()
    assert 0.05 < rate.mean() < 0.6
    assert ratio.min() >= 0.5, ratio.round(2)
    assert ratio.max() <= 2.0, ratio.round(2)
