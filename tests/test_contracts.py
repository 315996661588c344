"""One set of checks run over every registered family member (timm / aeon style):
every mask generator, every fusion mode, every preset."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import synthetic_frame
from geojepa.codes import sensor_features, sensor_info
from geojepa.frame import SensorFrame
from geojepa.jepa import JEPA, JEPAConfig, index_of_mask
from geojepa.masking import MASK_GENERATORS, Batch, MaskCollator, MaskConfig, full_batch
from geojepa.models import FUSIONS, PRESETS, Encoder, Predictor, count_parameters, preset
from geojepa.windows import Normaliser, WindowDataset, WindowSpec

SPEC = WindowSpec(length=64, stride=16, patch=16, min_observed=0.0)
P = SPEC.length // SPEC.patch


@pytest.fixture(autouse=True)
def _one_thread():  # type: ignore[no-untyped-def]
    """Small models on a shared 2-core machine run faster (and steadier) on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --------------------------------------------------------------------------- helpers
def _frame(n_sensors: int, seed: int, missing: float = 0.1) -> SensorFrame:
    return synthetic_frame(n_sensors, 64 + 16 * 8, seed=seed, missing=missing)


def _windows(frame: SensorFrame, count: int = 3) -> list:
    ds = WindowDataset(frame, Normaliser.fit(frame), SPEC)
    return [ds[i] for i in range(count)]


def _permuted(frame: SensorFrame, perm: np.ndarray) -> SensorFrame:
    return SensorFrame(
        values=frame.values[:, perm],
        observed=frame.observed[:, perm],
        time=frame.time,
        sensors=frame.sensors.iloc[perm].reset_index(drop=True),
        interval=frame.interval,
    )


def _grid(x: torch.Tensor, index: torch.Tensor, pad: torch.Tensor, c: int) -> torch.Tensor:
    """Scatter (B, Nk, D) outputs at token ids into a (B, C, P, D) grid (NaN where absent)."""
    b, _, d = x.shape
    out = torch.full((b, c * P + 1, d), float("nan"))
    slot = torch.where(pad, torch.full_like(index, c * P), index)
    out.scatter_(1, slot[..., None].expand(-1, -1, d), x.float())
    return out[:, : c * P].reshape(b, c, P, d)


def _batch_with(batch: Batch, context_mask: torch.Tensor, target_mask: torch.Tensor) -> Batch:
    ctx, ctx_pad = index_of_mask(context_mask)
    tgt, tgt_pad = index_of_mask(target_mask)
    return Batch(
        values=batch.values,
        observed=batch.observed,
        sensor_feats=batch.sensor_feats,
        sensor_pad=batch.sensor_pad,
        time_feats=batch.time_feats,
        token_valid=batch.token_valid,
        context=ctx,
        context_pad=ctx_pad,
        target=tgt,
        target_pad=tgt_pad,
        mask_kind=torch.tensor([0, 2, 4]),
        starts=batch.starts,
        patch=batch.patch,
    )


def _model(fusion: str, seed: int = 0) -> JEPA:
    cfg = JEPAConfig(preset("tiny", fusion=fusion, dim=64, heads=4, predictor_dim=32))
    return JEPA(cfg, seed=seed)


# --------------------------------------------------------------------------- mask generators
def _infos() -> list:
    frame = _frame(7, 0)
    mixed = sensor_info(sensor_features(frame.sensors))
    bare = frame.sensors.copy()
    bare[["x", "y", "z"]] = np.nan
    bare["kind"] = "piezometer"
    bare["group"] = ""
    plain = sensor_info(sensor_features(bare))  # no positions, one kind, no groups
    return [mixed, plain]


@pytest.mark.parametrize("name", sorted(MASK_GENERATORS))
def test_generator_contract(name: str) -> None:
    gen = MASK_GENERATORS[name](MaskConfig())
    assert gen.name == name and 0 <= gen.id < len(MASK_GENERATORS)
    rng = np.random.default_rng(0)
    for info_full in _infos():
        for c, p in [(1, 1), (1, 8), (2, 3), (7, 4), (7, 32)]:
            info = type(info_full)(
                kind=info_full.kind[:c],
                family=info_full.family[:c],
                position=info_full.position[:c],
                has_position=info_full.has_position[:c],
                group=info_full.group[:c],
            )
            for trial in range(40):
                density = [1.0, 0.7, 0.2, 0.0][trial % 4]
                valid = rng.random((c, p)) < density
                target = gen(np.random.default_rng([trial, c, p]), valid, info)
                again = gen(np.random.default_rng([trial, c, p]), valid, info)
                assert target.dtype == bool and target.shape == (c, p)
                np.testing.assert_array_equal(target, again)  # a function of the rng
                assert not (target & ~valid).any()  # missing cells are never targets
                context = valid & ~target
                if valid.any():
                    assert context.any()  # context never empty
                if valid.sum() >= 2:
                    assert target.any()


def test_generator_ids_are_distinct() -> None:
    ids = sorted(g.id for g in MASK_GENERATORS.values())
    assert ids == list(range(len(MASK_GENERATORS)))


# --------------------------------------------------------------------------- fusion modes
@pytest.mark.parametrize("fusion", FUSIONS)
def test_permuting_sensors_permutes_outputs(fusion: str) -> None:
    frame = _frame(7, seed=11)
    perm = np.random.default_rng(1).permutation(7)
    batch = full_batch(_windows(frame), SPEC.patch)
    batch_p = full_batch(_windows(_permuted(frame, perm)), SPEC.patch)
    model = _model(fusion).eval()
    t_perm = torch.from_numpy(perm)

    # target encoder, all tokens
    e = model.embed(batch)  # (B, C, P, D)
    e_p = model.embed(batch_p)
    assert (e_p - e[:, t_perm]).abs().max() <= 1e-5

    # context encoder and predictor, a random context / target split mapped through perm
    gen = torch.Generator().manual_seed(0)
    valid = batch.token_valid.reshape(3, 7, P)
    tmask = (torch.rand(3, 7, P, generator=gen) < 0.3) & valid
    cmask = valid & ~tmask
    b1 = _batch_with(batch, cmask.reshape(3, -1), tmask.reshape(3, -1))
    b2 = _batch_with(batch_p, cmask[:, t_perm].reshape(3, -1), tmask[:, t_perm].reshape(3, -1))
    with torch.no_grad():
        c1 = model.encoder.encode(b1, b1.context, b1.context_pad)
        c2 = model.encoder.encode(b2, b2.context, b2.context_pad)
        g1 = _grid(c1, b1.context, b1.context_pad, 7)[:, t_perm]
        g2 = _grid(c2, b2.context, b2.context_pad, 7)
        assert torch.equal(g1.isnan(), g2.isnan())
        assert (g1 - g2).nan_to_num().abs().max() <= 1e-5
        p1 = model.predictor(c1, b1.context_pad, b1.target, b1.target_pad, b1.mask_kind, b1)
        p2 = model.predictor(c2, b2.context_pad, b2.target, b2.target_pad, b2.mask_kind, b2)
        q1 = _grid(p1, b1.target, b1.target_pad, 7)[:, t_perm]
        q2 = _grid(p2, b2.target, b2.target_pad, 7)
        assert (q1 - q2).nan_to_num().abs().max() <= 1e-5
        assert abs(float(model(b1).loss) - float(model(b2).loss)) <= 1e-5


@pytest.mark.parametrize("fusion", FUSIONS)
def test_one_model_runs_on_1_7_and_256_sensors(fusion: str) -> None:
    model = _model(fusion)
    for c in (1, 7, 256):
        ws = _windows(_frame(c, seed=c), count=2 if c < 256 else 1)
        batch = MaskCollator(MaskConfig(), SPEC.patch, seed=0)([(0, w) for w in ws])
        out = model(batch)
        assert torch.isfinite(out.loss)
        out.loss.backward()
        emb = model.embed(batch)
        assert emb.shape == (len(ws), c, P, model.dim) and torch.isfinite(emb).all()
        model.zero_grad()


@pytest.mark.parametrize("fusion", FUSIONS)
def test_unobserved_cells_and_padding_never_reach_loss_or_gradients(fusion: str) -> None:
    """Changing values at unobserved cells, everything about padded sensors, and the index
    stored in padded context/target slots changes neither the loss nor any gradient."""
    small = _windows(_frame(3, seed=5, missing=0.3), count=2)
    large = _windows(_frame(6, seed=6, missing=0.3), count=1)
    items = [(0, small[0]), (0, large[0]), (0, small[1])]
    batch = MaskCollator(MaskConfig(), SPEC.patch, seed=0)(items)
    assert batch.sensor_pad.any() and batch.context_pad.any() and batch.target_pad.any()
    gen = torch.Generator().manual_seed(7)

    def noisy(x: torch.Tensor) -> torch.Tensor:
        return torch.randn(x.shape, generator=gen) * 50.0

    hidden = ~batch.observed | batch.sensor_pad[..., None]  # (B, C, L)
    changed = Batch(
        values=torch.where(hidden, noisy(batch.values), batch.values),
        observed=batch.observed,
        sensor_feats=torch.where(
            batch.sensor_pad[..., None], noisy(batch.sensor_feats), batch.sensor_feats
        ),
        sensor_pad=batch.sensor_pad,
        time_feats=batch.time_feats,
        token_valid=batch.token_valid,
        context=torch.where(
            batch.context_pad,
            torch.randint(0, 24, batch.context.shape, generator=gen),
            batch.context,
        ),
        context_pad=batch.context_pad,
        target=torch.where(
            batch.target_pad,
            torch.randint(0, 24, batch.target.shape, generator=gen),
            batch.target,
        ),
        target_pad=batch.target_pad,
        mask_kind=batch.mask_kind,
        starts=batch.starts,
        patch=batch.patch,
    )
    model = _model(fusion)
    with torch.no_grad():  # make the target encoder differ from the context encoder
        for p in model.target_encoder.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.01)
    grads = []
    losses = []
    for b in (batch, changed):
        model.zero_grad()
        out = model(b)
        out.loss.backward()
        losses.append(float(out.loss.detach()))
        grads.append([p.grad.clone() for p in model.parameters() if p.grad is not None])
    assert losses[0] == pytest.approx(losses[1], abs=1e-6)
    assert len(grads[0]) == len(grads[1]) > 0
    for g0, g1 in zip(grads[0], grads[1], strict=True):
        assert torch.allclose(g0, g1, atol=1e-6, rtol=1e-5)
    # and the check can fail: changing an OBSERVED value does change the loss
    obs = batch.observed.clone()
    bumped = Batch(**{**batch.__dict__, "values": torch.where(obs, batch.values + 1.0, 0.0)})
    assert abs(float(model(bumped).loss.detach()) - losses[0]) > 1e-4


@pytest.mark.parametrize("fusion", FUSIONS)
def test_context_encoder_sees_only_context_tokens(fusion: str) -> None:
    ws = _windows(_frame(5, seed=8), count=3)
    batch = MaskCollator(MaskConfig(), SPEC.patch, seed=1)([(0, w) for w in ws])
    model = _model(fusion)
    with torch.no_grad():
        a = model.encoder.encode(batch, batch.context, batch.context_pad)
        assert a.shape == (*batch.context.shape, model.dim)
        # scramble every non-context cell (targets included): context outputs are unchanged
        b, c, length = batch.values.shape
        in_ctx = torch.zeros(b, c * P + 1, dtype=torch.bool)
        slot = torch.where(batch.context_pad, c * P, batch.context)
        in_ctx.scatter_(1, slot, True)
        cell = in_ctx[:, : c * P].reshape(b, c, P, 1).expand(-1, -1, -1, SPEC.patch)
        cell = cell.reshape(b, c, length)
        noise = torch.randn(batch.values.shape, generator=torch.Generator().manual_seed(0))
        scrambled = Batch(**{**batch.__dict__, "values": torch.where(cell, batch.values, noise)})
        a2 = model.encoder.encode(scrambled, batch.context, batch.context_pad)
        live = ~batch.context_pad
        assert torch.allclose(a[live], a2[live], atol=1e-6)


@pytest.mark.parametrize("fusion", FUSIONS)
def test_bf16_autocast_runs(fusion: str) -> None:
    ws = _windows(_frame(4, seed=9), count=2)
    batch = MaskCollator(MaskConfig(), SPEC.patch, seed=2)([(0, w) for w in ws])
    model = _model(fusion)
    ref = float(model(batch).loss.detach())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(batch)
    assert out.loss.dtype == torch.float32 and torch.isfinite(out.loss)
    out.loss.backward()
    assert abs(float(out.loss.detach()) - ref) < 0.05 * abs(ref) + 1e-3


# --------------------------------------------------------------------------- presets
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_contract(name: str) -> None:
    counts = {}
    for fusion in FUSIONS:
        cfg = preset(name, fusion=fusion)
        with torch.device("meta"):  # shapes only: no memory, no initialisation cost
            counts[fusion] = count_parameters(Encoder(cfg)) + count_parameters(Predictor(cfg))
    ref = counts["joint"]
    for fusion, n in counts.items():
        assert abs(n - ref) <= 0.01 * ref, (fusion, n, ref)  # equal parameter count
    if name == "tiny":
        assert 0.8e6 <= ref <= 1.2e6
    cfg = preset(name)
    assert cfg.dim % cfg.heads == 0 and cfg.predictor_dim % cfg.predictor_heads == 0
    assert preset(name, depth=2).depth == 2


def test_presets_grow() -> None:
    sizes = [count_parameters(Encoder(preset(n))) for n in ("tiny", "small", "base")]
    assert sizes[0] < sizes[1] < sizes[2]


def test_unknown_preset_and_fusion_are_input_errors() -> None:
    from geojepa.errors import InputError

    with pytest.raises(InputError, match="preset"):
        preset("huge")
    with pytest.raises(InputError, match="fusion"):
        Encoder(preset("tiny", fusion="late"))
    with pytest.raises(InputError, match="unknown model setting"):
        type(preset("tiny")).from_dict({"dim": 8, "width": 3})
