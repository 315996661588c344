"""The JEPA method: EMA, parameter groups, embeddings, SIGReg, and that context matters."""

from __future__ import annotations

import copy
import logging

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import synthetic_frame
from geojepa.errors import InputError
from geojepa.frame import SensorFrame
from geojepa.jepa import JEPA, JEPAConfig, index_of_mask, predict_tokens, sigreg
from geojepa.masking import Batch, MaskCollator, MaskConfig, full_batch
from geojepa.models import gather_tokens, preset
from geojepa.windows import Normaliser, WindowDataset, WindowSpec

SPEC = WindowSpec(length=64, stride=8, patch=16, min_observed=0.0)


@pytest.fixture(autouse=True)
def _one_thread():  # type: ignore[no-untyped-def]
    """Small models on a shared 2-core machine run faster (and steadier) on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _small_model(seed: int = 0, **kw: float) -> JEPA:
    cfg = JEPAConfig(preset("tiny", dim=64, heads=4, predictor_dim=32, depth=2), **kw)
    return JEPA(cfg, seed=seed)


def _batch(n_sensors: int = 5, count: int = 4, seed: int = 0, step: int = 0) -> Batch:
    frame = synthetic_frame(n_sensors, 64 + 8 * count, seed=seed)
    ds = WindowDataset(frame, Normaliser.fit(frame), SPEC)
    return MaskCollator(MaskConfig(), SPEC.patch, seed=seed)([(step, ds[i]) for i in range(count)])


def test_target_encoder_is_a_frozen_copy_moved_only_by_ema() -> None:
    model = _small_model()
    for p, q in zip(model.encoder.parameters(), model.target_encoder.parameters(), strict=True):
        assert torch.equal(p, q) and not q.requires_grad
    batch = _batch()
    out = model(batch)
    out.loss.backward()
    assert all(q.grad is None for q in model.target_encoder.parameters())
    with torch.no_grad():
        for p in model.encoder.parameters():
            p.add_(1.0)
    before = [q.clone() for q in model.target_encoder.parameters()]
    model.update_target(1.0)
    assert all(
        torch.equal(a, b) for a, b in zip(before, model.target_encoder.parameters(), strict=True)
    )
    model.update_target(0.75)
    for a, q in zip(before, model.target_encoder.parameters(), strict=True):
        assert torch.allclose(q, a + 0.25, atol=1e-6)
    model.update_target(0.0)
    for p, q in zip(model.encoder.parameters(), model.target_encoder.parameters(), strict=True):
        assert torch.equal(p, q)
    with pytest.raises(ValueError):
        model.update_target(1.5)


def test_param_groups_cover_trainables_once_without_decay_on_norms_biases_tokens() -> None:
    model = _small_model()
    groups = model.param_groups(0.04)
    decay, no_decay = groups[0]["params"], groups[1]["params"]
    assert groups[0]["apply_decay"] and not groups[1]["apply_decay"]
    assert groups[1]["weight_decay"] == 0.0 and groups[0]["weight_decay"] == 0.04
    ids = [id(p) for p in decay + no_decay]
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert len(ids) == len(set(ids)) == len(trainable)
    assert id(model.predictor.mask_tokens) in {id(p) for p in no_decay}
    names = {id(p): n for n, p in model.named_parameters()}
    for p in decay:
        assert p.ndim >= 2 and "norm" not in names[id(p)]
    assert not any(id(p) in ids for p in model.target_encoder.parameters())


def test_embed_and_pooled_use_target_encoder_and_zero_invalid_tokens() -> None:
    model = _small_model()
    frame = synthetic_frame(4, 200, seed=3, missing=0.0)
    ds = WindowDataset(frame, Normaliser.fit(frame), SPEC)
    w = ds[0]
    obs = w.observed.copy()
    obs[2, :16] = False  # one missing patch
    w = type(w)(w.values * obs, obs, w.sensor_feats, w.time_feats, w.start)
    batch = full_batch([w, ds[1]], SPEC.patch)
    e = model.embed(batch)
    assert e.shape == (2, 4, 4, 64)
    assert (e[0, 2, 0] == 0).all() and (e[0, 2, 1] != 0).any()
    pooled = model.pooled(batch)
    manual = e[0].reshape(16, 64)[batch.token_valid[0]].mean(0)
    assert torch.allclose(pooled[0], manual, atol=1e-5)
    with torch.no_grad():  # embed reads the target encoder, not the context encoder
        for p in model.encoder.parameters():
            p.mul_(0.0)
    assert torch.equal(model.embed(batch), e)


def test_predictor_never_sees_the_target_encoder() -> None:
    model = _small_model()
    batch = _batch()
    pred1 = model(batch).pred
    with torch.no_grad():
        for p in model.target_encoder.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))
    out = model(batch)
    assert torch.equal(pred1, out.pred)  # predictions do not move
    assert not torch.equal(model(batch).target, _small_model()(batch).target)


def test_predict_tokens_keeps_target_order_and_hides_targets() -> None:
    model = _small_model()
    batch = _batch(count=2)
    target = torch.tensor([[7, 2, 11], [0, 19, 3]])
    pad = torch.tensor([[False, False, True], [False, False, False]])
    kind = torch.tensor([1, 4])
    pred, tgt = predict_tokens(model, batch, target, pad, kind)
    assert pred.shape == tgt.shape == (2, 3, 64)
    full = model.target_repr(batch)
    assert torch.allclose(tgt, gather_tokens(full, target))
    # values at hidden tokens cannot influence their own predictions
    b, c, length = batch.values.shape
    vals = batch.values.clone().reshape(b, c * 4, 16)
    vals[0, 7] += 5.0
    vals[1, 19] -= 5.0
    moved = Batch(**{**batch.__dict__, "values": vals.reshape(b, c, length)})
    pred2, _ = predict_tokens(model, moved, target, pad, kind)
    assert torch.allclose(pred[~pad], pred2[~pad], atol=1e-6)


def test_index_of_mask_orders_and_pads() -> None:
    mask = torch.tensor([[False, True, False, True], [False, False, False, False]])
    idx, pad = index_of_mask(mask)
    assert idx.tolist() == [[1, 3], [0, 0]] and pad.tolist() == [[False, False], [True, True]]


def test_sigreg_prefers_isotropic_gaussians_and_is_deterministic() -> None:
    g = torch.Generator().manual_seed(0)
    gauss = torch.randn(512, 32, generator=g)
    collapsed = torch.randn(512, 1, generator=g).expand(512, 32) * 0.01
    s_gauss = sigreg(gauss, 64, 17, torch.Generator().manual_seed(1))
    s_coll = sigreg(collapsed, 64, 17, torch.Generator().manual_seed(1))
    assert float(s_gauss) < 0.01 < float(s_coll)
    assert float(s_gauss) == float(sigreg(gauss, 64, 17, torch.Generator().manual_seed(1)))
    model = _small_model(sigreg_weight=0.5)
    batch = _batch()
    a, b = model(batch), model(batch)
    assert "sigreg" in a.stats and float(a.loss.detach()) == float(b.loss.detach())
    assert float(a.loss.detach()) > a.stats["latent_loss"]


def test_config_validation() -> None:
    with pytest.raises(InputError):
        JEPAConfig(loss="cosine")
    with pytest.raises(InputError):
        JEPAConfig(sigreg_weight=-1.0)
    cfg = JEPAConfig(preset("tiny", fusion="factorised"), sigreg_weight=0.1)
    assert JEPAConfig.from_dict(cfg.to_dict()) == cfg


def _no_context(batch: Batch) -> Batch:
    """The same batch with every context slot padded: the predictor gets mask tokens only."""
    b = batch.context.shape[0]
    return Batch(
        **{
            **batch.__dict__,
            "context": torch.zeros(b, 1, dtype=torch.long),
            "context_pad": torch.ones(b, 1, dtype=torch.bool),
        }
    )


def _loss_of(model: JEPA, batches: list[Batch], blind: bool = False) -> float:
    with torch.no_grad():
        return float(np.mean([float(model(_no_context(b) if blind else b).loss) for b in batches]))


def _factor_frame(n_sensors: int, n_times: int, seed: int) -> SensorFrame:
    """Sensors mixing two slow random latent factors: what a hidden patch holds can be
    inferred from the other sensors and neighbouring times, never from its position
    (no seasonality, no trend, no time-of-day pattern)."""
    rng = np.random.default_rng(seed)
    factors = np.zeros((n_times, 2))
    shocks = rng.normal(size=(n_times, 2))
    for i in range(1, n_times):
        factors[i] = 0.97 * factors[i - 1] + 0.25 * shocks[i]
    loads = rng.normal(size=(n_sensors, 2))
    values = (factors @ loads.T + 0.1 * rng.normal(size=(n_times, n_sensors))).astype(np.float32)
    observed = rng.random(values.shape) >= 0.05
    values[~observed] = np.nan
    kinds = ["piezometer", "settlement", "inclinometer", "rain_gauge", "thermometer", "gnss"]
    sensors = pd.DataFrame(
        {
            "id": [f"F{c}" for c in range(n_sensors)],
            "kind": [kinds[c % len(kinds)] for c in range(n_sensors)],
            "unit": "mm",
            "x": rng.uniform(0, 50, n_sensors),
            "y": rng.uniform(0, 50, n_sensors),
            "z": 0.0,
            "group": "",
            "meta": "{}",
        }
    )
    time = np.datetime64("2024-01-01T00:00", "ns") + np.arange(n_times) * np.timedelta64(1, "h")
    return SensorFrame(values, observed, time, sensors, pd.Timedelta("1h"))


def test_predictor_without_context_cannot_reach_the_trained_loss() -> None:
    """Train a tiny JEPA on a frame whose content is not a function of position; then
    (a) remove the context at evaluation, and (b) train a copy of the predictor with no
    context at all, against the same frozen targets. Both must stay clearly above the
    trained loss on held-out windows: the predictor uses the context and cannot read the
    answer from anywhere else."""
    frame = _factor_frame(6, 2400, seed=0)
    norm = Normaliser.fit(frame, end=1800)
    train = WindowDataset(frame, norm, SPEC, end=1800)
    held = WindowDataset(frame, norm, SPEC, start=1800)
    collate = MaskCollator(MaskConfig(), SPEC.patch, seed=5)
    rng = np.random.default_rng(0)
    cfg = preset("tiny", dim=64, predictor_dim=32, depth=2, predictor_depth=2)
    model = JEPA(JEPAConfig(cfg), seed=1)
    opt = torch.optim.AdamW(model.param_groups(0.04), lr=1e-3)
    steps, bsz = 200, 16
    for step in range(steps):
        idx = rng.integers(0, len(train), bsz)
        out = model(collate([(step, train[int(i)]) for i in idx]))
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        model.update_target(0.99 + 0.01 * step / steps)
    eval_collate = MaskCollator(MaskConfig(), SPEC.patch, seed=99)
    held_batches = [
        eval_collate([(k, held[int(i)]) for i in range(k, len(held), 9)][:16]) for k in range(4)
    ]
    trained = _loss_of(model, held_batches)
    blind = _loss_of(model, held_batches, blind=True)
    assert model(held_batches[0]).stats["target_std"] > 0.1  # targets did not collapse

    # (b) the best a context-free predictor does with a comparable budget, same targets
    blind_model = copy.deepcopy(model)
    opt2 = torch.optim.AdamW(blind_model.predictor.parameters(), lr=1e-3)
    for step in range(150):
        idx = rng.integers(0, len(train), bsz)
        out = blind_model(_no_context(collate([(steps + step, train[int(i)]) for i in idx])))
        opt2.zero_grad()
        out.loss.backward()
        opt2.step()
    blind_trained = _loss_of(blind_model, held_batches, blind=True)
    numbers = {"trained": trained, "context_removed": blind, "no_context_trained": blind_trained}
    logging.getLogger(__name__).info("held-out latent loss: %s", numbers)
    assert blind > 1.25 * trained, numbers
    assert blind_trained > 1.25 * trained, numbers


def test_unlogged_step_skips_only_the_diagnostics() -> None:
    """stats=False: the same loss and gradients, the losses reported, no diagnostic stats."""
    batch = _batch(seed=3)
    full, lean = _small_model(seed=1, sigreg_weight=0.5), _small_model(seed=1, sigreg_weight=0.5)
    a, b = full(batch), lean(batch, stats=False)
    assert torch.equal(a.loss, b.loss)
    assert set(b.stats) == {"loss", "latent_loss", "sigreg"}
    assert {"pred_std", "target_std", "context_std", "n_targets"} <= set(a.stats)
    assert a.stats["loss"] == b.stats["loss"]
    a.loss.backward()
    b.loss.backward()
    for p, q in zip(full.parameters(), lean.parameters(), strict=True):
        assert (p.grad is None) == (q.grad is None)
        if p.grad is not None:
            assert torch.equal(p.grad, q.grad)


def test_the_target_encoder_stays_in_eval_mode_so_dropout_never_touches_targets() -> None:
    cfg = JEPAConfig(model=preset("tiny", dropout=0.2))
    model = JEPA(cfg, seed=0)
    batch = _batch(n_sensors=3, count=2)
    model.train()
    assert model.encoder.training and not model.target_encoder.training
    torch.testing.assert_close(model.target_repr(batch), model.target_repr(batch), rtol=0, atol=0)
    model.eval()
    model.train()
    assert not model.target_encoder.training
