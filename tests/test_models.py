"""Layers and modules: token inputs, masks, the grid of the factorised mode, per-kind isolation."""

from __future__ import annotations

import pytest
import torch

from conftest import synthetic_frame
from geojepa.codes import FAMILIES, KIND_FAMILIES
from geojepa.layers import Attention, Grid, ensure_some_key, key_mask
from geojepa.masking import full_batch
from geojepa.models import (
    Encoder,
    ModelConfig,
    fusion_layout,
    gather_tokens,
    preset,
    token_inputs,
)
from geojepa.windows import Normaliser, WindowDataset, WindowSpec


@pytest.fixture(autouse=True)
def _one_thread():  # type: ignore[no-untyped-def]
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_token_inputs_carry_values_mask_and_observed_fraction() -> None:
    values = torch.arange(16, dtype=torch.float32).reshape(1, 2, 8) + 1.0
    observed = torch.ones(1, 2, 8, dtype=torch.bool)
    observed[0, 1, :3] = False
    x = token_inputs(values, observed, patch=4, flag="observed")  # (1, 4, 9)
    assert x.shape == (1, 4, 9)
    assert torch.equal(x[0, 2, :4], torch.tensor([0.0, 0.0, 0.0, 12.0]))  # unobserved -> 0
    assert torch.equal(x[0, 2, 4:8], torch.tensor([0.0, 0.0, 0.0, 1.0]))
    assert x[0, 2, 8] == pytest.approx(0.25) and x[0, 0, 8] == 1.0


def test_missing_flag_leaves_a_fully_observed_patch_its_values_alone() -> None:
    # the missing flag (`config.missing_flag_recipe`): a fully observed patch adds no
    # shared vector
    values = torch.arange(16, dtype=torch.float32).reshape(1, 2, 8) + 1.0
    observed = torch.ones(1, 2, 8, dtype=torch.bool)
    observed[0, 1, :3] = False
    x = token_inputs(values, observed, patch=4, flag="missing")  # (1, 4, 9)
    assert torch.equal(x[0, 2, :4], torch.tensor([0.0, 0.0, 0.0, 12.0]))
    assert torch.equal(x[0, 2, 4:8], torch.tensor([1.0, 1.0, 1.0, 0.0]))
    assert x[0, 2, 8] == pytest.approx(0.75)
    assert torch.equal(x[0, 0, 4:], torch.zeros(5))  # fully observed: values only
    legacy = token_inputs(values, observed, patch=4, flag="observed")
    assert torch.equal(x[..., :4], legacy[..., :4])
    assert torch.equal(x[..., 4:], 1.0 - legacy[..., 4:])  # the same information


def test_missing_flag_does_not_start_tokens_on_one_shared_direction() -> None:
    # With the observed flag, every fully observed patch added the same vector: at
    # initialisation most of the token embeddings' energy lay along their mean.
    frame = synthetic_frame(n_sensors=6, n_times=512)
    spec = WindowSpec(length=64, stride=32, patch=16, level="window")  # the presets' level
    ds = WindowDataset(frame, Normaliser.fit(frame), spec)
    batch = full_batch([ds[i] for i in range(min(8, len(ds)))], spec.patch)

    def mean_share(flag: str) -> float:
        enc = Encoder(preset("tiny", cell_flag=flag), torch.Generator().manual_seed(0))
        x = enc.patch_embed(
            token_inputs(batch.values, batch.observed, spec.patch, flag)
        )  # (B, N, D)
        t = x.reshape(-1, x.shape[-1])[batch.token_valid.reshape(-1)]
        return float(t.mean(0).square().sum() * t.shape[0] / t.square().sum())

    observed, missing = mean_share("observed"), mean_share("missing")
    assert missing < 0.05 and observed > 5 * missing, (observed, missing)


def test_key_masks_never_leave_a_row_empty() -> None:
    pad = torch.tensor([[True, True, True], [False, True, False]])
    m = key_mask(pad)
    assert m.shape == (2, 1, 1, 3)
    assert m[0, 0, 0].tolist() == [True, False, False]
    assert m[1, 0, 0].tolist() == [True, False, True]
    allowed = torch.zeros(1, 1, 2, 2, dtype=torch.bool)
    allowed[0, 0, 1, 1] = True
    assert ensure_some_key(allowed)[0, 0].tolist() == [[True, False], [False, True]]


def test_masked_keys_do_not_reach_outputs() -> None:
    attn = Attention(16, 4)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 5, 16, generator=g)
    pad = torch.tensor([[False, False, True, False, True], [False] * 5])
    y = attn(x, key_mask(pad))
    x2 = x.clone()
    x2[0, 2] = 100.0
    x2[0, 4] = -100.0
    y2 = attn(x2, key_mask(pad))
    live = ~pad[0]
    assert torch.allclose(y[0, live], y2[0, live], atol=1e-6)
    assert torch.equal(y[1], y2[1])


def test_grid_scatter_gather_roundtrip() -> None:
    index = torch.tensor([[5, 0, 7, 0], [1, 2, 3, 4]])
    pad = torch.tensor([[False, False, False, True], [False, False, False, False]])
    grid = Grid(index, pad, n_sensors=2, n_patches=4)
    x = torch.randn(2, 4, 3, generator=torch.Generator().manual_seed(1))
    g = grid.scatter(x)  # (2, 2, 4, 3)
    assert g.shape == (2, 2, 4, 3)
    assert torch.equal(g[0, 1, 1], x[0, 0]) and torch.equal(g[0, 0, 0], x[0, 1])
    assert (g[0, 0, 1] == 0).all()  # empty cell, and the pad slot wrote nowhere
    back = grid.gather(g)
    assert torch.equal(back[~pad], x[~pad])
    # occupied cells only are keys: sensor 0 of sample 0 holds patch 0 only
    assert grid.time_mask[0, 0, 0].tolist() == [True, False, False, False]


def test_fusion_layouts_match_parameter_budget() -> None:
    assert fusion_layout(preset("tiny")) == (4, 0)
    assert fusion_layout(preset("tiny", fusion="factorised")) == (3, 0)
    assert fusion_layout(preset("tiny", fusion="per_kind")) == (1, 1)
    assert fusion_layout(preset("base", fusion="per_kind")) == (3, 3)
    assert set(KIND_FAMILIES.values()) == set(FAMILIES)


def test_per_kind_family_layers_keep_families_apart() -> None:
    """With the fused layers switched off, a hydro sensor's output does not depend on a
    deformation sensor's values (each family has its own encoder)."""
    frame = synthetic_frame(6, 200, seed=0, missing=0.0)  # kinds cycle: rain, piezo, ...
    spec = WindowSpec(length=64, stride=16, patch=16, min_observed=0.0)
    ds = WindowDataset(frame, Normaliser.fit(frame), spec)
    batch = full_batch([ds[0]], spec.patch)
    kinds = list(frame.sensors["kind"])
    hydro = [c for c, k in enumerate(kinds) if KIND_FAMILIES[k] == "hydro"]
    other = [c for c, k in enumerate(kinds) if KIND_FAMILIES[k] == "deformation"]
    enc = Encoder(
        ModelConfig(dim=32, depth=4, heads=4, fusion="per_kind"), torch.Generator().manual_seed(0)
    ).eval()
    with torch.no_grad():
        for blk in enc.fused_blocks:
            for p in blk.parameters():
                p.zero_()  # residual blocks become the identity
        a = enc.encode(batch).reshape(1, 6, 4, 32)
        values = batch.values.clone()
        values[0, other] += 3.0
        b = enc.encode(type(batch)(**{**batch.__dict__, "values": values})).reshape(1, 6, 4, 32)
    assert torch.allclose(a[0, hydro], b[0, hydro], atol=1e-6)
    assert not torch.allclose(a[0, other], b[0, other], atol=1e-3)


def test_gather_tokens_shapes() -> None:
    x = torch.arange(24, dtype=torch.float32).reshape(1, 6, 4)
    out = gather_tokens(x, torch.tensor([[5, 0]]))
    assert out.shape == (1, 2, 4) and torch.equal(out[0, 0], x[0, 5])


@pytest.mark.parametrize("amx", [False, True])
def test_bf16_attention_matches_fp32_on_either_kernel_path(
    amx: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    import geojepa.layers as layers

    monkeypatch.setattr(layers, "cpu_has_amx", lambda: amx)
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 2, 40, 16, generator=g) for _ in range(3))
    mask = layers.key_mask(torch.arange(40)[None, :].expand(2, 40) >= 33)  # 7 padded keys
    ref = layers.attention(q, k, v, mask, 0.0)
    out = layers.attention(q.bfloat16(), k.bfloat16(), v.bfloat16(), mask, 0.0)
    assert out.dtype == torch.bfloat16
    assert float((out.float() - ref).abs().max()) < 0.05
