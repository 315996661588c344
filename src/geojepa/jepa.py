"""The JEPA method: context encoder, EMA target encoder, predictor, latent loss.

Guarantees: the target encoder is an EMA copy with requires_grad False; the predictor never
receives the target encoder's output (targets appear only in the loss); the loss covers
valid, non-padding target tokens only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from geojepa.masking import Batch
from geojepa.models import Encoder, ModelConfig, Predictor


@dataclass(frozen=True)
class JEPAConfig:
    """model, loss ("smooth_l1" | "l2"), SIGReg weight and its number of slices."""

    model: ModelConfig = field(default_factory=ModelConfig)
    loss: str = "smooth_l1"
    sigreg_weight: float = 0.0
    sigreg_slices: int = 64


@dataclass(frozen=True)
class JEPAOutput:
    loss: torch.Tensor  # ()
    pred: torch.Tensor  # (B, Nt, D)
    target: torch.Tensor  # (B, Nt, D)
    stats: dict[str, float]


class JEPA(nn.Module):
    encoder: Encoder
    target_encoder: Encoder
    predictor: Predictor

    def __init__(self, config: JEPAConfig) -> None:
        super().__init__()
        raise NotImplementedError

    def forward(self, batch: Batch) -> JEPAOutput:
        raise NotImplementedError

    @torch.no_grad()
    def update_target(self, momentum: float) -> None:
        raise NotImplementedError

    @torch.no_grad()
    def embed(self, batch: Batch) -> torch.Tensor:
        """(B, C, P, D) from the target encoder over all tokens; invalid tokens 0."""
        raise NotImplementedError

    @torch.no_grad()
    def pooled(self, batch: Batch) -> torch.Tensor:
        """(B, D) mean over valid tokens."""
        raise NotImplementedError

    def param_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        raise NotImplementedError


def predict_tokens(
    model: JEPA,
    batch: Batch,
    target: torch.Tensor,
    target_pad: torch.Tensor,
    mask_kind: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(pred (B,Nt,D), target_repr (B,Nt,D)) with `target` hidden from the context."""
    raise NotImplementedError
