"""Encoder and predictor of the JEPA: token embedding, fusion modes, presets.

Tokens are (sensor, time-patch) cells, token index n = c * P + p. A token's embedding is
patch values + observed mask + observed fraction (linear), plus a sensor code (learned
projection of continuous metadata features, never a per-index table) plus a time code
(projection of real-timestamp features).

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

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

import torch
from torch import nn

from geojepa.codes import N_SENSOR_FEATS, N_TIME_FEATS
from geojepa.errors import InputError
from geojepa.masking import N_MASK_KINDS, Batch

Fusion = Literal["joint", "factorised", "per_kind"]
FUSIONS: tuple[str, ...] = ("joint", "factorised", "per_kind")


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
    "tiny": ModelConfig(),
    "small": ModelConfig(
        dim=256, depth=8, heads=8, predictor_dim=128, predictor_depth=4, predictor_heads=4
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


class Encoder(nn.Module):
    """Token encoder. forward(values (B,C,L), observed (B,C,L), sensor_feats (B,C,F),
    time_feats (B,P,Ft), token_valid (B,N), index (B,Nk) long | None, pad (B,Nk) | None)
    -> (B, Nk, D); index None = all N tokens with pad = ~token_valid."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        raise NotImplementedError

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
        raise NotImplementedError

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


class Predictor(nn.Module):
    """forward(context_repr (B,Nc,D), context_pad, target (B,Nt), target_pad, mask_kind (B,),
    batch) -> (B, Nt, D). Mask tokens = generator's mask token + target sensor/time codes."""

    n_mask_kinds = N_MASK_KINDS

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        raise NotImplementedError

    def forward(
        self,
        context_repr: torch.Tensor,
        context_pad: torch.Tensor,
        target: torch.Tensor,
        target_pad: torch.Tensor,
        mask_kind: torch.Tensor,
        batch: Batch,
    ) -> torch.Tensor:
        raise NotImplementedError
