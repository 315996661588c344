"""The JEPA method: context encoder, EMA target encoder, predictor and the latent loss.

One step: the context encoder embeds only the context tokens; the predictor gets those
representations plus mask tokens carrying the targets' positions; the target encoder (an
EMA copy, no gradients; with momentum 0, as in the tiny preset, a plain copy of the online
encoder after every step) embeds every token and its layer-normed outputs at the target
positions are what the predictor must match (smooth-L1 or L2). Optional SIGReg (LeJEPA:
a sketched Epps-Pulley test of the context embeddings against an isotropic Gaussian,
`geojepa.sigreg`) is a second guard against collapse, the only one without an EMA.

Guarantees:

- the predictor never receives the target encoder's output: targets appear only in the loss;
- the loss averages over valid, non-padding target tokens only: values at unobserved cells,
  padded sensors and padded index slots change neither the loss nor the gradients;
- `target_encoder` parameters have requires_grad False and change only in `update_target`;
- `embed`/`pooled` use the target encoder, in no-grad mode, with invalid tokens zeroed;
- SIGReg directions are drawn from a generator seeded by the batch itself, so a resumed
  run computes the same loss.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from geojepa.errors import InputError
from geojepa.masking import Batch
from geojepa.models import Encoder, ModelConfig, Predictor, gather_tokens
from geojepa.sigreg import sigreg

log = logging.getLogger(__name__)

LOSSES: tuple[str, ...] = ("smooth_l1", "l2")


@dataclass(frozen=True)
class JEPAConfig:
    """The model, the latent loss ("smooth_l1" | "l2"), SIGReg weight and sketch size."""

    model: ModelConfig = field(default_factory=ModelConfig)
    loss: str = "smooth_l1"
    sigreg_weight: float = 0.0
    sigreg_slices: int = 64
    sigreg_points: int = 17

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise InputError(f"unknown loss {self.loss!r}", hint="use one of " + ", ".join(LOSSES))
        if self.sigreg_weight < 0:
            raise InputError("sigreg_weight must be >= 0", hint="use 0 to switch it off")
        if self.sigreg_slices < 1 or self.sigreg_points < 2:
            raise InputError(
                f"SIGReg needs sigreg_slices >= 1 and sigreg_points >= 2 "
                f"(got {self.sigreg_slices}, {self.sigreg_points})",
                hint="the LeJEPA defaults are 64 slices (256 for tiny) and 17 points",
            )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["model"] = self.model.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JEPAConfig:
        kw = dict(d)
        if "model" in kw and isinstance(kw["model"], dict):
            kw["model"] = ModelConfig.from_dict(kw["model"])
        return cls(**kw)


@dataclass(frozen=True)
class JEPAOutput:
    """loss () ; pred (B, Nt, D) ; target (B, Nt, D) layer-normed ; stats (floats)."""

    loss: torch.Tensor
    pred: torch.Tensor
    target: torch.Tensor
    stats: dict[str, float]


def _batch_seed(batch: Batch) -> int:
    """A deterministic seed from the batch content (same batch -> same SIGReg directions)."""
    s = int(batch.starts.sum()) * 1_000_003 + int(batch.target.sum()) * 7919
    s += int(batch.context.sum()) + int(batch.mask_kind.sum()) * 31
    return s % (2**31 - 1)


def _masked_std(x: torch.Tensor, w: torch.Tensor) -> float:
    """Mean over D of the std over the rows of x (n, D) where w (n,) is True."""
    rows = x[w]
    if rows.shape[0] < 2:
        return 0.0
    return float(rows.float().std(dim=0).mean())


class JEPA(nn.Module):
    """Context encoder + EMA target encoder + predictor. forward(batch) -> JEPAOutput.

    `generator` (or `seed`) makes the initial weights a function of it alone.
    """

    def __init__(
        self,
        config: JEPAConfig,
        generator: torch.Generator | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        if generator is None and seed is not None:
            generator = torch.Generator().manual_seed(int(seed))
        self.config = config
        self.encoder = Encoder(config.model, generator)
        self.target_encoder = copy.deepcopy(self.encoder)
        for p in self.target_encoder.parameters():
            p.requires_grad_(False)
        self.predictor = Predictor(config.model, generator)

    @property
    def dim(self) -> int:
        return self.config.model.dim

    def train(self, mode: bool = True) -> JEPA:
        """As `nn.Module.train`, but the target encoder always stays in eval mode: its
        outputs are the regression targets, which dropout must not perturb."""
        super().train(mode)
        self.target_encoder.eval()
        return self

    def target_repr(self, batch: Batch) -> torch.Tensor:
        """Layer-normed target-encoder outputs over all tokens (B, N, D), no gradients."""
        with torch.no_grad():
            full = self.target_encoder.encode(batch)  # (B, N, D)
            return F.layer_norm(full.float(), (full.shape[-1],))

    def forward(self, batch: Batch, stats: bool = True) -> JEPAOutput:
        """One JEPA step's loss. `stats` False skips the diagnostic statistics (counts and
        stds: three masked gathers) and keeps only the losses (a training step that is not
        logged needs no more)."""
        ctx = self.encoder.encode(batch, batch.context, batch.context_pad)  # (B, Nc, D)
        pred = self.predictor(
            ctx, batch.context_pad, batch.target, batch.target_pad, batch.mask_kind, batch
        )  # (B, Nt, D)
        target = gather_tokens(self.target_repr(batch), batch.target)  # (B, Nt, D)
        weight = ~batch.target_pad & batch.token_valid.gather(1, batch.target)  # (B, Nt)
        loss, _ = self._latent_loss(pred.float(), target, weight)
        total = loss
        info: dict[str, float] = {}
        if self.config.sigreg_weight > 0:
            live = ~batch.context_pad  # (B, Nc)
            gen = torch.Generator().manual_seed(_batch_seed(batch))
            reg = sigreg(
                ctx.float()[live], self.config.sigreg_slices, self.config.sigreg_points, gen
            )
            total = loss + self.config.sigreg_weight * reg
            info["sigreg"] = float(reg.detach())
        info.update({"loss": float(total.detach()), "latent_loss": float(loss.detach())})
        if not stats:
            return JEPAOutput(loss=total, pred=pred, target=target, stats=info)
        with torch.no_grad():
            info.update(
                {
                    "n_targets": float(weight.sum()),
                    "n_context": float((~batch.context_pad).sum()),
                    "pred_std": _masked_std(pred.detach(), weight),
                    "target_std": _masked_std(target, weight),
                    "context_std": _masked_std(ctx.detach(), ~batch.context_pad),
                }
            )
        return JEPAOutput(loss=total, pred=pred, target=target, stats=info)

    def _latent_loss(
        self, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean over valid targets of the per-token loss (mean over D). Returns (loss, (B, Nt))."""
        if self.config.loss == "smooth_l1":
            per = F.smooth_l1_loss(pred, target, reduction="none", beta=1.0)
        else:
            per = (pred - target) ** 2
        per = per.mean(dim=-1)  # (B, Nt)
        # where(), not a product: a non-finite prediction at a padded slot cannot leak in
        per = torch.where(weight, per, torch.zeros_like(per))
        return per.sum() / weight.sum().clamp_min(1), per

    @torch.no_grad()
    def update_target(self, momentum: float) -> None:
        """target <- momentum * target + (1 - momentum) * encoder, parameter by parameter."""
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"EMA momentum {momentum} outside [0, 1]")
        tgt: list[torch.Tensor] = list(self.target_encoder.parameters())
        src = [p.detach() for p in self.encoder.parameters()]
        torch._foreach_lerp_(tgt, src, 1.0 - momentum)
        for bt, bs in zip(self.target_encoder.buffers(), self.encoder.buffers(), strict=True):
            bt.copy_(bs)

    @torch.no_grad()
    def embed(self, batch: Batch) -> torch.Tensor:
        """(B, C, P, D) from the target encoder over all tokens; invalid tokens are 0."""
        full = self.target_encoder.encode(batch)  # (B, N, D)
        full = torch.where(batch.token_valid[..., None], full, torch.zeros_like(full))
        b, c = batch.values.shape[:2]
        return full.reshape(b, c, -1, full.shape[-1])

    @torch.no_grad()
    def pooled(self, batch: Batch) -> torch.Tensor:
        """(B, D): mean of the target encoder's outputs over valid tokens (0 if none)."""
        full = self.target_encoder.encode(batch)  # (B, N, D)
        w = batch.token_valid.to(full.dtype)[..., None]  # (B, N, 1)
        return (full * w).sum(dim=1) / w.sum(dim=1).clamp_min(1.0)

    def param_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """Two AdamW groups: "decay" (matrices) and "no_decay" (biases, norms, mask tokens).

        Each group carries ``apply_decay`` so a weight-decay schedule updates only the first.
        """
        decay, no_decay = [], []
        for module in (self.encoder, self.predictor):
            for name, p in module.named_parameters():
                if not p.requires_grad:
                    continue
                if p.ndim < 2 or "norm" in name or "mask_tokens" in name:
                    no_decay.append(p)
                else:
                    decay.append(p)
        return [
            {"params": decay, "weight_decay": weight_decay, "apply_decay": True, "name": "decay"},
            {"params": no_decay, "weight_decay": 0.0, "apply_decay": False, "name": "no_decay"},
        ]


def index_of_mask(mask: torch.Tensor, min_width: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, N) bool -> (index (B, W) long in ascending order, pad (B, W) bool), W = max count."""
    b, n = mask.shape
    counts = mask.sum(dim=1)  # (B,)
    width = max(int(counts.max()) if b else 0, min_width)
    order = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)  # True first, in order
    if width > n:
        order = torch.cat([order, order.new_zeros(b, width - n)], dim=1)
    index = order[:, :width]
    pad = torch.arange(width, device=mask.device)[None, :] >= counts[:, None]
    return torch.where(pad, torch.zeros_like(index), index), pad


def predict_tokens(
    model: JEPA,
    batch: Batch,
    target: torch.Tensor,
    target_pad: torch.Tensor,
    mask_kind: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Hide `target` (B, Nt) tokens, predict them from every other valid token.

    Returns (pred (B, Nt, D), target_repr (B, Nt, D) layer-normed target-encoder outputs),
    aligned with `target`. The anomaly "energy" is a distance between the two.
    """
    b, n = batch.token_valid.shape
    hidden = torch.zeros(b, n + 1, dtype=torch.bool, device=target.device)
    slot = torch.where(target_pad, torch.full_like(target, n), target)
    hidden.scatter_(1, slot, True)
    ctx_mask = batch.token_valid & ~hidden[:, :n]
    context, context_pad = index_of_mask(ctx_mask)
    ctx = model.encoder.encode(batch, context, context_pad)  # (B, Nc, D)
    pred = model.predictor.run(
        ctx,
        context,
        context_pad,
        target,
        target_pad,
        mask_kind,
        batch.sensor_feats,
        batch.time_feats,
    )
    target_repr = gather_tokens(model.target_repr(batch), target)
    return pred, target_repr
