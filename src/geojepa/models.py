"""Encoder and predictor of the JEPA: token embedding, fusion modes, presets.

Tokens are (sensor, time-patch) cells, token index n = c * P + p. A token's embedding is
patch values + a per-cell flag + the flagged fraction (linear), plus a sensor code (learned
projection of continuous metadata features, never a per-index table) plus a time code
(projection of real-timestamp features). The flag marks observed cells (`ModelConfig.cell_flag`
"observed", the presets') or missing ones ("missing", `config.missing_flag_recipe`): the
same function class, but with the observed flag every fully observed patch adds one shared
vector, which at initialisation held 77 % of the patch embeddings' energy and left the
target encoder's tokens dominated by a single direction; with the missing flag a fully
observed patch enters as its values alone (RankMe 0.42-0.44 D instead of 0.26;
docs/results/training.md, "The missing-cell flag").

Guarantees:

- no per-sensor-index parameter anywhere: permuting sensors permutes outputs, any number
  of sensors (1..256+) runs through the same weights;
- the context encoder gathers ONLY the indexed tokens before the transformer;
- padding and missing tokens are never attended to (key-padding masks, never truncation),
  and their inputs never reach a valid token's output;
- the predictor sees context representations plus mask tokens that carry only the target
  positions (sensor + time codes) and the generator's own learned mask token.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

import torch
from torch import nn

from geojepa.codes import (
    FAMILIES,
    KIND_SLICE,
    N_SENSOR_FEATS,
    N_TIME_FEATS,
    family_of_kind_table,
)
from geojepa.errors import InputError
from geojepa.layers import Block, FactorisedBlock, Grid, ensure_some_key, init_weights, key_mask
from geojepa.masking import N_MASK_KINDS, Batch

Fusion = Literal["joint", "factorised", "per_kind"]
FUSIONS: tuple[str, ...] = ("joint", "factorised", "per_kind")
CELL_FLAGS: tuple[str, ...] = ("missing", "observed")
LEGACY_CELL_FLAG = "observed"
"""The flag of checkpoints saved before `ModelConfig.cell_flag` existed."""


@dataclass(frozen=True)
class ModelConfig:
    """Widths and depths of encoder and predictor, the fusion mode and the input sizes."""

    dim: int = 128
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0
    patch: int = 16
    predictor_dim: int = 64
    predictor_depth: int = 2
    predictor_heads: int = 4
    fusion: str = "joint"
    n_sensor_feats: int = N_SENSOR_FEATS
    n_time_feats: int = N_TIME_FEATS
    dropout: float = 0.0
    cell_flag: str = "observed"  # the patch embedding's per-cell flag: 1 = observed / missing

    def __post_init__(self) -> None:
        """Refuse settings no model can be built from, with what to write instead (a bad
        YAML model section is the user's to fix, never an internal error mid-run)."""
        hint = "fix the model section of the configuration"
        for name in (
            "dim",
            "depth",
            "heads",
            "patch",
            "predictor_dim",
            "predictor_depth",
            "predictor_heads",
            "n_sensor_feats",
            "n_time_feats",
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise InputError(f"model.{name} must be a whole number >= 1, got {v!r}", hint=hint)
        for width, heads in (("dim", "heads"), ("predictor_dim", "predictor_heads")):
            w, h = getattr(self, width), getattr(self, heads)
            if w % h:
                raise InputError(
                    f"model.{width} {w} is not divisible by model.{heads} {h}",
                    hint=f"choose {heads} dividing {width} (heads of width 32-64 run fastest)",
                )
        ratio = self.mlp_ratio
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not ratio > 0:
            raise InputError(f"model.mlp_ratio must be > 0, got {ratio!r}", hint=hint)
        if not math.isfinite(float(ratio)) or round(self.dim * float(ratio)) < 1:
            raise InputError(f"model.mlp_ratio {ratio!r} gives no MLP width", hint=hint)
        drop = self.dropout
        if isinstance(drop, bool) or not isinstance(drop, int | float) or not 0 <= drop < 1:
            raise InputError(f"model.dropout must be in [0, 1), got {drop!r}", hint=hint)
        if self.fusion not in FUSIONS:
            raise InputError(
                f"unknown fusion mode {self.fusion!r}", hint="use one of " + ", ".join(FUSIONS)
            )
        if self.cell_flag not in CELL_FLAGS:
            raise InputError(
                f"unknown model.cell_flag {self.cell_flag!r}",
                hint="use one of " + ", ".join(CELL_FLAGS),
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InputError(
                f"unknown model setting(s) {unknown}", hint="known: " + ", ".join(sorted(known))
            )
        return cls(**d)


PRESETS: dict[str, ModelConfig] = {
    # tiny: heads of width 64 in the encoder and 32 in the predictor. Measured on this CPU
    # (one thread, 512 tokens): attention forward + backward ran 1.2x faster with width-64
    # heads than width-32 ones (same FLOPs; the kernels' inner products are longer), and the
    # exported graph's mask-add and softmax, which work per head, halve; width-16 heads ran
    # attention far below matmul speed. Heads change no parameter: still ~1 M.
    "tiny": ModelConfig(heads=2, predictor_heads=2),
    # small: sized for the gateway (issue: <= 10 MB of model files). The edge loads the
    # target encoder and the context encoder + predictor, so the encoder's weights ship
    # twice; at dim 256 that was 56 MB in fp32 (15 MB int8). At dim 192 (~3.6 M encoder
    # parameters, 4.3x tiny) the int8 files total ~9 MB (fp32 ~33 MB). Depth stays a
    # multiple of 4 so the fusion modes keep equal parameter counts. Heads of width 64 in
    # the encoder, 48 in the predictor, as for tiny.
    "small": ModelConfig(
        dim=192, depth=8, heads=3, predictor_dim=96, predictor_depth=4, predictor_heads=2
    ),
    "base": ModelConfig(
        dim=512, depth=12, heads=8, predictor_dim=256, predictor_depth=6, predictor_heads=8
    ),
}


def preset(name: str, **overrides: Any) -> ModelConfig:
    """A named preset ("tiny" ~1 M parameters, "small", "base") with fields overridden."""
    if name not in PRESETS:
        raise InputError(f"unknown preset {name!r}", hint="use one of " + ", ".join(PRESETS))
    return replace(PRESETS[name], **overrides)


def _code_mlp(n_in: int, dim: int) -> nn.Sequential:
    """Continuous features -> learned code: Linear, SiLU, Linear. (..., n_in) -> (..., D)."""
    return nn.Sequential(nn.Linear(n_in, dim), nn.SiLU(), nn.Linear(dim, dim))


def token_inputs(
    values: torch.Tensor, observed: torch.Tensor, patch: int, flag: str = "observed"
) -> torch.Tensor:
    """Patch inputs (B, N, 2*patch + 1): values (0 where unobserved), the per-cell flag
    (1 where observed, or with `flag` "missing" 1 where missing) and its mean.

    values/observed (B, C, L) -> (B, C*P, patch) each, sensor-major (n = c*P + p).
    """
    b, c, length = values.shape
    p = length // patch
    obs = observed[:, :, : p * patch].reshape(b, c * p, patch).to(values.dtype)
    val = values[:, :, : p * patch].reshape(b, c * p, patch)
    val = torch.where(obs > 0, val, torch.zeros_like(val))  # unobserved values never enter
    cell = 1.0 - obs if flag == "missing" else obs
    return torch.cat([val, cell, cell.mean(dim=-1, keepdim=True)], dim=-1)


def gather_tokens(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x (B, N, K), index (B, Nk) -> (B, Nk, K)."""
    return x.gather(1, index[..., None].expand(-1, -1, x.shape[-1]))


class PositionCodes(nn.Module):
    """Sensor code (from metadata) + time code (from timestamps) of each token.

    forward(sensor_feats (B, C, F), time_feats (B, P, Ft), index (B, Nk)) -> (B, Nk, D).
    """

    def __init__(self, n_sensor_feats: int, n_time_feats: int, dim: int) -> None:
        super().__init__()
        self.sensor = _code_mlp(n_sensor_feats, dim)
        self.time = _code_mlp(n_time_feats, dim)

    def forward(
        self, sensor_feats: torch.Tensor, time_feats: torch.Tensor, index: torch.Tensor
    ) -> torch.Tensor:
        p = time_feats.shape[1]
        s = self.sensor(sensor_feats)  # (B, C, D)
        t = self.time(time_feats)  # (B, P, D)
        return gather_tokens(s, torch.div(index, p, rounding_mode="floor")) + gather_tokens(
            t, torch.remainder(index, p)
        )


def fusion_layout(config: ModelConfig) -> tuple[int, int]:
    """(per-family blocks, fused blocks) for `per_kind`; (blocks, 0) otherwise.

    Equal parameter count across fusion modes: joint has `depth` blocks (12 D^2 each);
    factorised has round(0.75 * depth) blocks of two attentions + MLP (16 D^2 each);
    per_kind has `depth // (K + 1)` blocks per family (K families) and the rest fused.
    """
    if config.fusion == "joint":
        return config.depth, 0
    if config.fusion == "factorised":
        return max(1, round(0.75 * config.depth)), 0
    k = len(FAMILIES)
    per = max(1, config.depth // (k + 1))
    return per, max(1, config.depth - k * per)


class Encoder(nn.Module):
    """Token encoder.

    forward(values (B, C, L), observed (B, C, L), sensor_feats (B, C, F), time_feats (B, P, Ft),
    token_valid (B, N), index (B, Nk) long | None, pad (B, Nk) bool | None) -> (B, Nk, D).
    index None = all N tokens in order, with pad = ~token_valid. Only the indexed tokens
    are embedded and enter the transformer (the context encoder sees only context).
    Indexed tokens that are not valid are treated as padding.
    """

    def __init__(self, config: ModelConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = config  # checked when it was made (`ModelConfig.__post_init__`)
        d = config.dim
        self.patch_embed = nn.Linear(2 * config.patch + 1, d)
        self.codes = PositionCodes(config.n_sensor_feats, config.n_time_feats, d)
        n_a, n_b = fusion_layout(config)
        blocks: list[nn.Module] = []
        if config.fusion == "joint":
            blocks = [Block(d, config.heads, config.mlp_ratio, config.dropout) for _ in range(n_a)]
        elif config.fusion == "factorised":
            blocks = [
                FactorisedBlock(d, config.heads, config.mlp_ratio, config.dropout)
                for _ in range(n_a)
            ]
        self.blocks = nn.ModuleList(blocks)
        # per_kind: family_blocks[k][j] is layer j of family k's encoder; then fused blocks
        self.family_blocks = nn.ModuleList(
            [
                nn.ModuleList(
                    [Block(d, config.heads, config.mlp_ratio, config.dropout) for _ in range(n_a)]
                )
                for _ in (FAMILIES if config.fusion == "per_kind" else ())
            ]
        )
        self.fused_blocks = nn.ModuleList(
            [Block(d, config.heads, config.mlp_ratio, config.dropout) for _ in range(n_b)]
        )
        self.norm = nn.LayerNorm(d)
        self.family_of_kind: torch.Tensor
        self.register_buffer(
            "family_of_kind", torch.from_numpy(family_of_kind_table()), persistent=False
        )
        self.n_family_layers = n_a if config.fusion == "per_kind" else 0
        init_weights(self, generator)
        with torch.no_grad():
            for i, blk in enumerate([*self.blocks, *self.fused_blocks]):
                _rescale(blk, i + 1)
            for fam in self.family_blocks:
                assert isinstance(fam, nn.ModuleList)
                for i, blk in enumerate(fam):
                    _rescale(blk, i + 1)

    def forward(
        self,
        values: torch.Tensor,
        observed: torch.Tensor,
        sensor_feats: torch.Tensor,
        time_feats: torch.Tensor,
        token_valid: torch.Tensor,
        index: torch.Tensor | None = None,
        pad: torch.Tensor | None = None,
    ) -> torch.Tensor:
        b, c, _ = values.shape
        p = time_feats.shape[1]
        tokens = token_inputs(values, observed, self.config.patch, self.config.cell_flag)
        # tokens: (B, N, 2*patch+1)
        if index is None:
            idx = torch.arange(c * p, device=values.device).expand(b, c * p)
            live = token_valid if pad is None else token_valid & ~pad  # (B, N)
        else:
            idx = index
            live = token_valid.gather(1, index)
            if pad is not None:
                live = live & ~pad
            tokens = gather_tokens(tokens, index)  # (B, Nk, 2*patch+1)
        x = self.patch_embed(tokens) + self.codes(sensor_feats, time_feats, idx)  # (B, Nk, D)
        x = torch.where(live[..., None], x, torch.zeros_like(x))  # padding carries nothing
        dead = ~live
        if self.config.fusion == "joint":
            mask = key_mask(dead)
            for blk in self.blocks:
                x = blk(x, mask)
        elif self.config.fusion == "factorised":
            grid = Grid(index, dead, c, p)
            for blk in self.blocks:
                x = blk(x, grid)
        else:
            x = self._per_kind(x, sensor_feats, idx, dead, p)
        return self.norm(x)

    def _per_kind(
        self,
        x: torch.Tensor,
        sensor_feats: torch.Tensor,
        idx: torch.Tensor,
        dead: torch.Tensor,
        p: int,
    ) -> torch.Tensor:
        kind = sensor_feats[..., KIND_SLICE].argmax(dim=-1)  # (B, C)
        fam_c = self.family_of_kind[kind]  # (B, C)
        fam = fam_c.gather(1, torch.div(idx, p, rounding_mode="floor"))  # (B, Nk)
        fam = torch.where(dead, torch.full_like(fam, -1), fam)
        same = (fam[:, :, None] == fam[:, None, :]) & ~dead[:, None, :]  # (B, Nk, Nk)
        eye = torch.eye(fam.shape[1], dtype=torch.bool, device=fam.device)
        mask = ensure_some_key((same | eye)[:, None])  # (B, 1, Nk, Nk)
        for j in range(self.n_family_layers):
            out = x
            for k, blocks in enumerate(self.family_blocks):
                assert isinstance(blocks, nn.ModuleList)
                out = torch.where((fam == k)[..., None], blocks[j](x, mask), out)
            x = out
        fused = key_mask(dead)
        for blk in self.fused_blocks:
            x = blk(x, fused)
        return x

    def encode(
        self, batch: Batch, index: torch.Tensor | None = None, pad: torch.Tensor | None = None
    ) -> torch.Tensor:
        """forward() on a Batch's tensors."""
        return self(
            batch.values,
            batch.observed,
            batch.sensor_feats,
            batch.time_feats,
            batch.token_valid,
            index,
            pad,
        )


def _rescale(block: nn.Module, layer: int) -> None:
    """Divide residual output projections by sqrt(2 * layer) (I-JEPA / ViT practice)."""
    for name, prm in block.named_parameters():
        if name.endswith(("proj.weight", "fc2.weight")):
            prm.div_(math.sqrt(2.0 * layer))


class Predictor(nn.Module):
    """Narrow transformer predicting target representations from context.

    forward(context_repr (B, Nc, D), context_pad (B, Nc), target (B, Nt) long,
    target_pad (B, Nt), mask_kind (B,) long, batch) -> (B, Nt, D).
    Context tokens: projection of their representation + their position codes. Mask tokens:
    the generator's learned mask token + the target's position codes (sensor + time) and
    nothing else: the target encoder's output never enters.
    """

    def __init__(self, config: ModelConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = config
        dp = config.predictor_dim
        self.embed = nn.Linear(config.dim, dp)
        self.codes = PositionCodes(config.n_sensor_feats, config.n_time_feats, dp)
        self.mask_tokens = nn.Parameter(torch.zeros(N_MASK_KINDS, dp))
        self.blocks = nn.ModuleList(
            [
                Block(dp, config.predictor_heads, config.mlp_ratio, config.dropout)
                for _ in range(config.predictor_depth)
            ]
        )
        self.norm = nn.LayerNorm(dp)
        self.out = nn.Linear(dp, config.dim)
        init_weights(self, generator)
        nn.init.trunc_normal_(self.mask_tokens, std=0.02, generator=generator)
        with torch.no_grad():
            for i, blk in enumerate(self.blocks):
                _rescale(blk, i + 1)

    def forward(
        self,
        context_repr: torch.Tensor,
        context_pad: torch.Tensor,
        target: torch.Tensor,
        target_pad: torch.Tensor,
        mask_kind: torch.Tensor,
        batch: Batch,
    ) -> torch.Tensor:
        return self.run(
            context_repr,
            batch.context,
            context_pad,
            target,
            target_pad,
            mask_kind,
            batch.sensor_feats,
            batch.time_feats,
        )

    def run(
        self,
        context_repr: torch.Tensor,
        context: torch.Tensor,
        context_pad: torch.Tensor,
        target: torch.Tensor,
        target_pad: torch.Tensor,
        mask_kind: torch.Tensor,
        sensor_feats: torch.Tensor,
        time_feats: torch.Tensor,
    ) -> torch.Tensor:
        """Tensor-only form of `forward` (context indices explicit), for export."""
        nc = context.shape[1]
        ctx = self.embed(context_repr) + self.codes(sensor_feats, time_feats, context)
        kind = mask_kind.clamp(0, N_MASK_KINDS - 1)
        tok = self.mask_tokens[kind][:, None, :]  # (B, 1, Dp)
        tgt = tok + self.codes(sensor_feats, time_feats, target)  # (B, Nt, Dp)
        x = torch.cat([ctx, tgt.to(ctx.dtype)], dim=1)  # (B, Nc + Nt, Dp)
        mask = key_mask(torch.cat([context_pad, target_pad], dim=1))
        for blk in self.blocks:
            x = blk(x, mask)
        return self.out(self.norm(x[:, nc:]))  # (B, Nt, D)


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
