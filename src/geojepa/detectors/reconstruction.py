"""The masked-reconstruction baseline ("reconstruction"): the JEPA's backbone, masks and
budget, but predicting the hidden patches' normalised VALUES (sensor space, MAE-style)
instead of the target encoder's representations. The JEPA-versus-MAE question.

Model: the same `geojepa.jepa.JEPA` context encoder and predictor (the target encoder is
unused) + a linear head D -> patch. Training: the same windows (`WindowDataset` over the
training rows), the same mask mixture (`MaskCollator`), the same steps, batch size, AdamW,
warmup + cosine LR and weight decay (held at its start value here: a simplification) as
`detector_config`. Loss: mean squared error on the observed cells of the hidden patches.

Score: the same energy sweep (`geojepa.energy.frame_energy`) with an engine whose
"representation" of a token is its normalised patch values (0 where unobserved) and whose
prediction is the head's output with unobserved cells set to the truth's 0, so a missing
reading never adds error.

Guarantees: fit reads rows < train_end only; weights are a function of the seed and the
training rows; trained weights are cached (``weights_only`` loads) like the JEPA's runs.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from geojepa.atomic import atomic_path
from geojepa.detectors.base import (
    DetectorScores,
    SensorwiseDetector,
    register_detector,
    zero_unscored,
)
from geojepa.detectors.jepa import CACHE_ENV, _one_thread, detector_config, frame_hash
from geojepa.energy import EnergySpec, TokenInputs, frame_energy
from geojepa.frame import SensorFrame

log = logging.getLogger(__name__)

__all__ = ["Reconstruction", "ReconstructionEngine"]


def _build(config: Any, seed: int) -> tuple[Any, Any]:
    import torch

    from geojepa.jepa import JEPA

    model = JEPA(config.jepa_config(), seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)
    head = torch.nn.Linear(config.model.dim, config.model.patch)
    with torch.no_grad():
        head.weight.copy_(torch.randn(head.weight.shape, generator=gen) * 0.02)
        head.bias.zero_()
    return model, head


def _patches(values: Any, observed: Any, patch: int) -> tuple[Any, Any]:
    """(B, C, L) values / observed -> (B, N, patch) each, n = c * P + p, values 0 where missing."""
    b, c, length = values.shape
    p = length // patch
    obs = observed[:, :, : p * patch].reshape(b, c * p, patch)
    val = values[:, :, : p * patch].reshape(b, c * p, patch)
    return val * obs, obs


def train_reconstruction(train: SensorFrame, config: Any, seed: int) -> tuple[Any, Any, Any]:
    """Train encoder + predictor + head on `train`; returns (model, head, normaliser)."""
    import torch

    from geojepa.masking import MaskCollator
    from geojepa.models import gather_tokens
    from geojepa.train import lr_at
    from geojepa.windows import Normaliser, WindowDataset

    normaliser = Normaliser.fit(train)
    windows = WindowDataset(train, normaliser, config.window, 0, train.n_times)
    if len(windows) == 0:
        from geojepa.errors import InputError

        raise InputError(
            f"no training window of {config.window.length} steps", hint="train on more rows"
        )
    model, head = _build(config, seed)
    collate = MaskCollator(config.mask, config.model.patch, seed)
    tc = config.train
    groups = model.param_groups(tc.weight_decay_start)
    groups.append({"params": list(head.parameters()), "weight_decay": 0.0})
    opt = torch.optim.AdamW(groups, lr=tc.lr)
    params = [p for g in groups for p in g["params"]]
    rng = np.random.default_rng([seed, 7])
    model.train()
    for step in range(tc.steps):
        lr = lr_at(step, tc.steps, tc.lr, tc.min_lr, tc.warmup())
        for g in opt.param_groups:
            g["lr"] = lr
        idx = rng.integers(0, len(windows), size=min(tc.batch_size, len(windows)))
        batch = collate([(step, windows[int(i)]) for i in idx])
        ctx = model.encoder.encode(batch, batch.context, batch.context_pad)  # (B, Nc, D)
        pred = model.predictor(
            ctx, batch.context_pad, batch.target, batch.target_pad, batch.mask_kind, batch
        )  # (B, Nt, D)
        pred = head(pred)  # (B, Nt, patch)
        val, obs = _patches(batch.values, batch.observed.float(), config.model.patch)
        truth = gather_tokens(val, batch.target)  # (B, Nt, patch)
        w = gather_tokens(obs, batch.target) * (~batch.target_pad).float()[..., None]
        loss = (((pred - truth) ** 2) * w).sum() / w.sum().clamp_min(1.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if tc.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, tc.grad_clip)
        opt.step()
        if step % 50 == 0 or step == tc.steps - 1:
            log.info("reconstruction step %d loss %.4f", step, float(loss.detach()))
    model.eval()
    return model, head, normaliser


class ReconstructionEngine:
    """`geojepa.energy.TokenEngine` in sensor space: tokens are their normalised values."""

    def __init__(self, model: Any, head: Any, patch: int) -> None:
        from geojepa.export import _graph_modules, mask_kinds

        self.predictor_graph = _graph_modules(model)[1]
        self.head = head.eval()
        self.patch = patch
        self.kinds: Mapping[str, int] = mask_kinds()

    def target_repr(self, inputs: TokenInputs) -> np.ndarray:
        val, _ = _patches(inputs.values, inputs.observed.astype(np.float32), self.patch)
        return np.asarray(val, dtype=np.float32)  # (B, N, patch)

    def predict(
        self,
        inputs: TokenInputs,
        context: np.ndarray,
        context_pad: np.ndarray,
        target: np.ndarray,
        target_pad: np.ndarray,
        mask_kind: np.ndarray,
    ) -> np.ndarray:
        from geojepa.export import run_predictor_graph

        rec = run_predictor_graph(
            self.predictor_graph,
            inputs,
            context,
            context_pad,
            target,
            target_pad,
            mask_kind,
            head=self.head,
        )
        out = rec.float().numpy()  # (B, Nt, patch)
        _, obs = _patches(inputs.values, inputs.observed.astype(np.float32), self.patch)
        obs_t = np.take_along_axis(obs, target[..., None], axis=1)  # (B, Nt, patch)
        return np.asarray(out * obs_t, dtype=np.float32)  # (B, Nt, patch)


class Reconstruction(SensorwiseDetector):
    """Per-sensor score = masked-reconstruction error in sensor space under the sweep."""

    def __init__(
        self,
        steps: int = 200,
        seed: int = 0,
        cache_dir: str | None = None,
        model_overrides: Mapping[str, Any] | None = None,
        window_length: int | None = None,
    ) -> None:
        self.steps = steps
        self.seed = seed
        self.cache_dir = cache_dir
        self.model_overrides = model_overrides
        self.window_length = window_length

    def _fit_train(self, train: SensorFrame) -> np.ndarray:
        import torch

        cfg = detector_config(
            self.seed,
            self.steps,
            model_overrides=self.model_overrides,
            window_length=self.window_length,
        )
        root = self.cache_dir if self.cache_dir is not None else os.environ.get(CACHE_ENV)
        path = None
        if root:
            path = Path(root) / f"{frame_hash(train, cfg.to_dict())}-reconstruction.pt"
        with _one_thread():
            if path is not None and path.exists():
                from geojepa.windows import Normaliser

                model, head = _build(cfg, self.seed)
                state = torch.load(path, weights_only=True)
                model.load_state_dict(state["model"])
                head.load_state_dict(state["head"])
                model.eval()
                normaliser = Normaliser.fit(train)
            else:
                model, head, normaliser = train_reconstruction(train, cfg, self.seed)
                if path is not None:  # a temporary file of its own: two processes may
                    # train the same model into the same cache at once (same rows and seed)
                    with atomic_path(path) as tmp:
                        torch.save({"model": model.state_dict(), "head": head.state_dict()}, tmp)
        self.engine_ = ReconstructionEngine(model, head, cfg.model.patch)
        self.normaliser_ = normaliser
        self.window_ = cfg.window
        return self._raw(train)

    def score(self, frame: SensorFrame) -> DetectorScores:
        """As the JEPA energy's: an observed cell no window could score gets 0 (before, a
        single gauge's first patches were NaN and the benchmark stopped on the wells)."""
        return zero_unscored(super().score(frame), frame)

    def lookahead_rows(self) -> int:
        """As the JEPA energy: a window's error fills the stride of rows it ends with."""
        return EnergySpec().stride(self.window_) - 1

    def _raw(self, frame: SensorFrame) -> np.ndarray:
        with _one_thread():
            return frame_energy(
                self.engine_, frame, self.normaliser_, self.window_, EnergySpec()
            )  # (T, C)


def _reconstruction(seed: int) -> Reconstruction:
    return Reconstruction(steps=200, seed=seed)


register_detector("reconstruction", _reconstruction)
