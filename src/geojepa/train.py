"""The pretraining loop: schedules, EMA target, collapse guards, checkpoints, tracking, DDP.

`pretrain(sites, run_dir, config)` trains a JEPA on one site or a family of sites (readings
before `until` only) and writes the run folder: ``config.yaml`` (resolved), ``checkpoint.pt``
(self-describing, see `geojepa.checkpoint`), ``metrics.jsonl`` (one JSON object per logged
step or evaluation), ``init.json`` when the run started from another run's weights (`init`,
`geojepa.warmstart`) and, unless tracking is off, an MLflow run.

One step: the global batch (site, window indices) is drawn from
``np.random.default_rng([seed, step, ...])``; masks are made in the DataLoader's collate
function (`MaskCollator`, seeded by (seed, step, item)); dropout draws from a torch generator
seeded by (seed, step) inside `torch.random.fork_rng` (the caller's global RNG is untouched).
Schedules are pure functions of the step: LR linear warmup then cosine, weight decay cosine
0.04 -> 0.4 (decay group only), target EMA momentum cosine 0.996 -> 1.0 over the run's actual
number of steps; gradients are clipped; bf16 autocast is optional.

Guarantees:

- resumable exactly: a run stopped after a checkpoint (a kill, or `stop_after`) and resumed
  with ``resume=True`` ends with the same weights as an uninterrupted run (same machine,
  same thread count), and ``metrics.jsonl`` drops records written after that checkpoint;
- under ``torchrun`` (WORLD_SIZE > 1) every rank collates the same global batch and trains on
  its contiguous share through `DistributedDataParallel`; each rank's loss is weighted by its
  share of the batch's target tokens, so the gradients equal those of one process on the
  global batch; only rank 0 writes files and tracks. One process never opens a process group;
- the collapse guard (RankMe and per-dimension std on a fixed validation set) stops a
  collapsed run with `CollapseError` (the last good checkpoint is kept); a non-finite loss
  stops it too;
- only readings before `until` are used; the validation windows are the last `val_fraction`
  of that period and are never trained on (when the period is too short for both, the
  training windows double as the validation set, logged).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from geojepa.atomic import atomic_path
from geojepa.checkpoint import (
    CHECKPOINT_NAME,
    CONFIG_NAME,
    METRICS_NAME,
    SiteRecord,
    build_model,
    read_checkpoint,
    save_checkpoint,
    saved_config,
)
from geojepa.config import RunConfig, preset, save_config
from geojepa.devices import autocast_type, resolve_device, rng_devices
from geojepa.distributed import (
    DistInfo,
    all_sum,
    backend_for,
    env_local_rank,
    env_world_size,
    init_from_env,
    rank_slice,
    shutdown,
)
from geojepa.errors import CollapseError, InputError
from geojepa.frame import SensorFrame, to_frame
from geojepa.jepa import JEPA, JEPAOutput
from geojepa.masking import Batch, MaskCollator, full_batch
from geojepa.progress import Progress
from geojepa.quality import (
    CollapseGuard,
    QualityReport,
    alignment,
    lidar,
    rankme,
    std_ratio,
)
from geojepa.site import Site
from geojepa.tracking import JsonlLog, NullTracker, Tracker, make_tracker
from geojepa.warmstart import INIT_NAME, InitSource
from geojepa.windows import Normaliser, Window, WindowDataset

log = logging.getLogger(__name__)

VAL_STEP = 2**31 - 1  # mask "step" of the fixed validation masks (never a training step)
_SALT_DATA = 0xDA7A
_SALT_TORCH = 0x70C4
MAX_QUALITY_TOKENS = 4096


# --------------------------------------------------------------------------- schedules
def lr_at(step: int, total: int, base: float, final: float, warmup: int) -> float:
    """Linear warmup from 0 over `warmup` steps, then cosine from `base` to `final`."""
    if warmup > 0 and step < warmup:
        return base * (step + 1) / warmup
    span = max(total - warmup - 1, 1)
    t = min(max(step - warmup, 0) / span, 1.0)
    return final + (base - final) * 0.5 * (1.0 + math.cos(math.pi * t))


def cosine_ramp(step: int, total: int, start: float, end: float) -> float:
    """Cosine from `start` at step 0 to `end` at the last step (total - 1)."""
    t = min(max(step / max(total - 1, 1), 0.0), 1.0)
    return end - (end - start) * 0.5 * (1.0 + math.cos(math.pi * t))


@dataclass(frozen=True)
class Schedule:
    """LR, weight decay and EMA momentum at each step of a run of `total` steps."""

    total: int
    lr: float
    min_lr: float
    warmup: int
    wd_start: float
    wd_end: float
    ema_start: float
    ema_end: float

    @classmethod
    def of(cls, config: RunConfig) -> Schedule:
        t = config.train
        return cls(
            total=t.steps,
            lr=t.lr,
            min_lr=t.min_lr,
            warmup=t.warmup(),
            wd_start=t.weight_decay_start,
            wd_end=t.weight_decay_end,
            ema_start=t.ema_start,
            ema_end=t.ema_end,
        )

    def at(self, step: int) -> tuple[float, float, float]:
        """(lr, weight decay, EMA momentum) for 0-based `step`."""
        return (
            lr_at(step, self.total, self.lr, self.min_lr, self.warmup),
            cosine_ramp(step, self.total, self.wd_start, self.wd_end),
            cosine_ramp(step, self.total, self.ema_start, self.ema_end),
        )

    def to_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# --------------------------------------------------------------------------- data
@dataclass(frozen=True)
class SiteData:
    """One training site's frame, windows and record."""

    record: SiteRecord
    frame: SensorFrame
    train: WindowDataset
    val: WindowDataset


def _utc(t: pd.Timestamp | str) -> pd.Timestamp:
    ts = pd.Timestamp(t)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _frame_of(
    item: Site | SensorFrame,
    until: pd.Timestamp | None,
    interval: pd.Timedelta | str | None,
    start: pd.Timestamp | None = None,
) -> SensorFrame:
    if isinstance(item, SensorFrame):
        frame = item
        if until is not None:
            # keep only the cells that end by `until`: a cell that straddles it averages
            # readings from after it (a Site is cut by its readings instead)
            end = (_utc(until) - pd.Timedelta(frame.interval)).tz_localize(None).to_datetime64()
            frame = frame.slice_time(0, int(np.searchsorted(frame.time, end, side="right")))
        return frame
    site = item.before(until)
    if site.readings.empty:
        raise InputError(
            f"site {item.name!r} has no readings before {until}",
            hint="choose a later --until",
        )
    return to_frame(site, interval=interval, start=start, end=until)


def _site_name(item: Site | SensorFrame, i: int) -> str:
    return item.name if isinstance(item, Site) else f"site{i}"


def prepare_site(
    item: Site | SensorFrame,
    index: int,
    config: RunConfig,
    until: pd.Timestamp | None,
    stored: SiteRecord | None = None,
) -> SiteData:
    """Frame, normaliser (fitted on the training period, or the stored one) and windows."""
    spec = config.window
    if stored is not None:
        frame = _frame_of(item, stored.train_end, stored.interval, stored.grid_start)
        if frame.sensor_ids != list(stored.normaliser.sensor_ids):
            raise InputError(
                f"site {_site_name(item, index)!r} does not have the sensors of the run "
                f"being resumed ({len(frame.sensor_ids)} vs {len(stored.normaliser.sensor_ids)})",
                hint="resume with the same SITE folders, in the same order",
            )
        normaliser = stored.normaliser
    else:
        frame = _frame_of(item, until, config.train.interval)
        normaliser = Normaliser.fit(frame)
    t = frame.n_times
    span = max(spec.span(k) for k in spec.scales)
    n_val = round(config.train.val_fraction * t)
    split = t - n_val
    train = WindowDataset(frame, normaliser, spec, 0, split)
    # validation windows overlap more (stride = one patch): more of them from a short period
    val_spec = replace(spec, stride=min(spec.stride, spec.patch))
    val = WindowDataset(frame, normaliser, val_spec, split, t) if n_val >= span else None
    if len(train) == 0 or val is None or len(val) < 2:
        if len(train) == 0 or val is None or len(val) == 0:
            log.warning(
                "site %s: too short for a separate validation period; validating on "
                "training windows",
                _site_name(item, index),
            )
        train = WindowDataset(frame, normaliser, spec, 0, t)
        val = train
    if len(train) == 0:
        raise InputError(
            f"site {_site_name(item, index)!r} has no window of {span} grid steps with "
            f"{spec.min_observed:.0%} observed data ({t} grid steps of {frame.interval})",
            hint="use a shorter window.length, a coarser train.interval, or a lower "
            "window.min_observed",
        )
    grid_start = _utc(pd.Timestamp(frame.time[0])) if t else _utc("1970-01-01")
    train_end = (
        stored.train_end
        if stored is not None
        else (until if until is not None else grid_start + frame.interval * t)
    )
    record = SiteRecord(
        name=_site_name(item, index),
        sensors=frame.sensors,
        normaliser=normaliser,
        interval=frame.interval,
        train_end=_utc(train_end),
        grid_start=grid_start,
        n_windows=len(train),
    )
    return SiteData(record=record, frame=frame, train=train, val=val)


def batch_plan(
    seed: int, step: int, sizes: Sequence[int], batch_size: int
) -> tuple[int, np.ndarray]:
    """(site index, window indices (B,)) of the global batch at `step`: a pure function.

    The site is drawn with probability proportional to its number of windows; windows are
    drawn without replacement within the batch (with replacement if the site has fewer).
    """
    rng = np.random.default_rng([seed, step, _SALT_DATA])
    p = np.asarray(sizes, dtype=np.float64)
    site = int(rng.choice(len(sizes), p=p / p.sum())) if len(sizes) > 1 else 0
    n = int(sizes[site])
    idx = rng.choice(n, size=batch_size, replace=n < batch_size)
    return site, np.asarray(idx, dtype=np.int64)


class _StepWindows(torch.utils.data.Dataset[tuple[int, Window]]):
    """Key (site, step, window index) -> (step, Window), for the DataLoader."""

    def __init__(self, sites: Sequence[SiteData]) -> None:
        self.sites = sites

    def __len__(self) -> int:
        return sum(len(s.train) for s in self.sites)

    def __getitem__(self, key: tuple[int, int, int]) -> tuple[int, Window]:
        site, step, i = key
        return step, self.sites[site].train[i]


class _StepSampler(torch.utils.data.Sampler[list[tuple[int, int, int]]]):
    """Yields the keys of the global batch of each step in [start, stop)."""

    def __init__(
        self, seed: int, start: int, stop: int, sizes: Sequence[int], batch_size: int
    ) -> None:
        self.seed, self.start, self.stop = seed, start, stop
        self.sizes, self.batch_size = list(sizes), batch_size

    def __len__(self) -> int:
        return max(self.stop - self.start, 0)

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        for step in range(self.start, self.stop):
            site, idx = batch_plan(self.seed, step, self.sizes, self.batch_size)
            yield [(site, step, int(i)) for i in idx]


def slice_batch(batch: Batch, part: slice) -> Batch:
    """Rows `part` of every tensor of `batch` (padding widths are kept)."""
    kw: dict[str, Any] = {}
    for f in fields(batch):
        v = getattr(batch, f.name)
        kw[f.name] = v[part] if isinstance(v, torch.Tensor) else v
    return Batch(**kw)


class _RankCollate:
    """Collate the global batch (masks seeded by global position), keep this rank's share."""

    def __init__(self, collator: MaskCollator, info: DistInfo) -> None:
        self.collator = collator
        self.info = info

    def __call__(self, items: Sequence[tuple[int, Window]]) -> Batch:
        batch = self.collator(items)
        if not self.info.distributed:
            return batch
        return slice_batch(batch, rank_slice(len(items), self.info))


# --------------------------------------------------------------------------- validation
@dataclass(frozen=True)
class ValidationSet:
    """Fixed validation windows and masks: `views` masked batches + one full batch."""

    full: Batch
    views: tuple[Batch, ...]

    def to(self, device: torch.device) -> ValidationSet:
        return ValidationSet(
            full=self.full.to(device), views=tuple(v.to(device) for v in self.views)
        )


def validation_set(
    sites: Sequence[SiteData], config: RunConfig, collator: MaskCollator
) -> ValidationSet:
    """Up to `val_windows` windows spread evenly over the sites' validation periods.

    Batches from several sites are padded to the largest sensor count.
    """
    t = config.train
    per_site = max(t.val_windows // len(sites), 2)
    windows: list[Window] = []
    for s in sites:
        n = len(s.val)
        take = np.unique(np.linspace(0, n - 1, num=min(per_site, n)).round().astype(int))
        windows.extend(s.val[int(i)] for i in take)
    full = full_batch(windows, config.window.patch)
    views = tuple(collator([(VAL_STEP - v, w) for w in windows]) for v in range(t.lidar_views))
    return ValidationSet(full=full, views=views)


@torch.no_grad()
def evaluate(model: JEPA, val: ValidationSet, step: int) -> QualityReport:
    """Quality measures of `model` on the fixed validation set (eval mode, no grad)."""
    was_training = model.training
    model.eval()
    try:
        emb = model.embed(val.full)  # (B, C, P, D)
        d = int(emb.shape[-1])
        valid = val.full.token_valid  # (B, N)
        tokens = emb.reshape(-1, d)[valid.reshape(-1)].double().cpu().numpy()  # (n, D)
        if tokens.shape[0] > MAX_QUALITY_TOKENS:
            pick = np.linspace(0, tokens.shape[0] - 1, MAX_QUALITY_TOKENS).round().astype(int)
            tokens = tokens[pick]
        pooled_views = []
        losses, aligns = [], []
        for b in val.views:
            ctx = model.encoder.encode(b, b.context, b.context_pad)  # (B, Nc, D)
            w = (~b.context_pad).to(ctx.dtype)[..., None]  # (B, Nc, 1)
            pooled = (ctx * w).sum(1) / w.sum(1).clamp_min(1.0)  # (B, D)
            pooled_views.append(pooled.double().cpu().numpy())
            out = model(b)
            keep = (~b.target_pad & b.token_valid.gather(1, b.target)).reshape(-1)
            if bool(keep.any()):
                p = out.pred.reshape(-1, d)[keep].double().cpu().numpy()
                q = out.target.reshape(-1, d)[keep].double().cpu().numpy()
                aligns.append(alignment(p, q))
            losses.append(float(out.stats.get("latent_loss", float(out.loss))))
        views = np.stack(pooled_views, axis=1)  # (B, Q, D)
        try:
            lid = lidar(views) if views.shape[0] >= 2 else float("nan")
        except (ValueError, np.linalg.LinAlgError):
            lid = float("nan")
        finite = np.all(np.isfinite(tokens))
        return QualityReport(
            step=step,
            rankme=rankme(tokens) if finite and len(tokens) else float("nan"),
            lidar=lid,
            std_ratio=std_ratio(tokens) if finite and len(tokens) > 1 else float("nan"),
            embed_std=float(tokens.std(axis=0).mean()) if len(tokens) > 1 else float("nan"),
            alignment=float(np.mean(aligns)) if aligns else float("nan"),
            val_loss=float(np.mean(losses)) if losses else float("nan"),
            dim=d,
        )
    finally:
        model.train(was_training)


# --------------------------------------------------------------------------- the loop
@dataclass(frozen=True)
class TrainResult:
    """What a `pretrain` call did."""

    run_dir: Path
    step: int  # completed steps
    total_steps: int
    seconds: float
    windows_per_second: float
    final_loss: float
    quality: QualityReport | None
    stopped: bool  # True when `stop_after` ended the call before `total_steps`
    sites: tuple[SiteRecord, ...]
    device: str = "cpu"  # where it trained ("cpu", "cuda:0", ...)


def _seed_of(seed: int, step: int) -> int:
    return int(np.random.SeedSequence([seed, step, _SALT_TORCH]).generate_state(1)[0])


def _init_model(config: RunConfig) -> JEPA:
    """Initial weights from the run's seed alone (the global torch RNG is left untouched)."""
    seed = int(np.random.SeedSequence([config.seed, 0x1217]).generate_state(1)[0])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(config, seed=seed)


def _set_schedule(opt: torch.optim.Optimizer, lr: float, wd: float) -> None:
    for g in opt.param_groups:
        g["lr"] = lr
        g["weight_decay"] = wd if g.get("apply_decay", True) else 0.0


def _make_optimizer(model: JEPA, config: RunConfig) -> torch.optim.AdamW:
    """AdamW with the fused kernel where the parameters' device has one.

    On CPU torch's default is the per-parameter loop (foreach is a CUDA default): measured
    here on the tiny preset, the fused kernel's update took a fifth of the loop's time
    (~3 % of a training step saved). Its state dict is the same as the loop's.
    """
    groups = model.param_groups(config.train.weight_decay_start)
    device = next(model.parameters()).device.type
    fused = device in ("cpu", "cuda")
    return torch.optim.AdamW(groups, lr=config.train.lr, betas=(0.9, 0.95), fused=fused)


def _resolve_resume(
    run_dir: Path, config: RunConfig | None, steps: int | None
) -> tuple[RunConfig, dict[str, Any]]:
    state = read_checkpoint(run_dir / CHECKPOINT_NAME)
    stored = saved_config(state, run_dir / CHECKPOINT_NAME)
    if config is not None:
        a, b = config.to_dict(), stored.to_dict()
        a["train"].pop("steps")
        b["train"].pop("steps")
        if a != b:
            diff = sorted(
                f"{k}.{kk}"
                for k in b
                if isinstance(b[k], dict)
                for kk in set(a[k]) | set(b[k])
                if a[k].get(kk) != b[k].get(kk)
            ) + sorted(k for k in b if not isinstance(b[k], dict) and a[k] != b[k])
            log.warning(
                "resume: using the run's stored configuration; ignoring differences in %s",
                ", ".join(diff) or "?",
            )
    if steps is not None and steps != stored.train.steps:
        log.warning(
            "resume: total steps changed from %d to %d; the schedules follow the new total",
            stored.train.steps,
            steps,
        )
        stored = replace(stored, train=replace(stored.train, steps=int(steps)))
    return stored, state


@dataclass(frozen=True)
class StepResult:
    """One optimisation step: the model output (this rank), the global mean loss, the
    gradient norm before clipping (NaN when clipping is off)."""

    output: JEPAOutput
    loss: float
    grad_norm: float


def train_step(
    module: torch.nn.Module,
    model: JEPA,
    optimizer: torch.optim.Optimizer,
    batch: Batch,
    params: Sequence[torch.nn.Parameter],
    *,
    lr: float,
    weight_decay: float,
    momentum: float,
    grad_clip: float,
    bf16: bool,
    seed: int,
    info: DistInfo | None = None,
    stats: bool = True,
) -> StepResult:
    """Forward, backward, clip, AdamW step and EMA update of the target encoder.

    `module` is `model` itself or its DDP wrapper. Dropout draws from a generator seeded by
    `seed` (the global RNG is restored afterwards). Under DDP each rank's loss is weighted
    by its share of the global batch's target tokens, so the averaged gradients are those
    of the global-batch mean loss. `stats` False: the output carries the losses only (a
    step that is not logged skips the diagnostic statistics).
    """
    info = info or DistInfo()
    device = batch.values.device
    _set_schedule(optimizer, lr, weight_decay)
    n_local = (~batch.target_pad & batch.token_valid.gather(1, batch.target)).sum()
    n_global = float(all_sum(n_local.to(torch.float64), info))
    with torch.random.fork_rng(devices=rng_devices(device)):
        torch.manual_seed(seed)  # every generator: the CPU's and the GPUs'
        with torch.autocast(autocast_type(device), dtype=torch.bfloat16, enabled=bf16):
            out = module(batch, stats=stats)
        loss = out.loss.float()
        if info.distributed:
            loss = loss * (float(n_local) * info.world_size / max(n_global, 1.0))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
    grad_norm = (
        float(torch.nn.utils.clip_grad_norm_(params, grad_clip)) if grad_clip > 0 else float("nan")
    )
    optimizer.step()
    model.update_target(momentum)
    value = float(out.stats.get("loss", float(out.loss.detach())))
    if info.distributed:
        total = all_sum(
            torch.tensor(value * float(n_local), dtype=torch.float64, device=device), info
        )
        value = float(total) / max(n_global, 1.0)
    return StepResult(output=out, loss=value, grad_norm=grad_norm)


def pretrain(
    sites: Sequence[Site | SensorFrame],
    run_dir: str | Path,
    config: RunConfig | None = None,
    *,
    until: pd.Timestamp | str | None = None,
    resume: bool = False,
    steps: int | None = None,
    tracking_uri: str | None = None,
    progress: bool = True,
    stop_after: int | None = None,
    init: str | Path | InitSource | None = None,
    device: str | None = "cpu",
) -> TrainResult:
    """Pretrain a JEPA on `sites` (readings before `until`) into `run_dir`.

    `config` defaults to the tiny preset (on resume: the stored one; with `init`: the init
    run's). `steps` overrides the total number of steps. `stop_after` ends the call after
    that many completed steps with a checkpoint (a time-boxed run; `resume=True` continues
    it). `tracking_uri`: None = MLflow on SQLite beside the run folder, "none" = no MLflow.

    `init`: another run folder (or checkpoint, or an `InitSource`) whose weights (context
    encoder, predictor, target encoder) this run starts from: continued pretraining on new
    sites, e.g. a model pretrained on a family of sites adapted to one more. Its model
    configuration must be this run's; the optimiser, the schedules and the step count start
    afresh, and the normaliser is fitted on `sites` as for any run. The source is recorded in
    the run folder (``init.json``) and in the tracked parameters. Not with `resume` (the
    checkpoint holds the weights then).

    `device` (`geojepa.devices`): "cpu" (the default here; the command line's is "auto"),
    "auto" (a CUDA GPU when torch sees one, else the CPU), "cuda", "cuda:N". Under
    torchrun each process takes its local rank's GPU and the process group uses nccl (gloo
    on the CPU). The checkpoint is the same whatever
    the device: a run trained on a GPU is read, resumed and scored on a CPU.
    """
    if not sites:
        raise InputError("no site to train on", hint="pass at least one SITE folder")
    run = Path(run_dir)
    ckpt_path = run / CHECKPOINT_NAME
    distributed = env_world_size() > 1
    if distributed and device is not None and ":" in str(device):
        raise InputError(
            f"--device {device!r} names one GPU, but under torchrun each process takes the GPU "
            "of its local rank",
            hint="use --device cuda (or auto) with torchrun",
        )
    dev = resolve_device(device, env_local_rank() if distributed else 0)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    info = init_from_env(backend_for(dev))
    try:
        return _pretrain(
            sites,
            run,
            ckpt_path,
            config,
            None if until is None else _utc(until),
            resume,
            steps,
            tracking_uri,
            progress,
            stop_after,
            info,
            init,
            dev,
        )
    finally:
        shutdown(info)


def _pretrain(
    items: Sequence[Site | SensorFrame],
    run: Path,
    ckpt_path: Path,
    config: RunConfig | None,
    until: pd.Timestamp | None,
    resume: bool,
    steps: int | None,
    tracking_uri: str | None,
    progress: bool,
    stop_after: int | None,
    info: DistInfo,
    init: str | Path | InitSource | None,
    device: torch.device,
) -> TrainResult:
    state: dict[str, Any] | None = None
    start_from: InitSource | None = None
    if resume and init is not None:
        raise InputError(
            "--init starts a new run; a resumed run continues from its own checkpoint",
            file=run,
            hint="drop --init to resume, or choose a new --run folder",
        )
    if resume:
        if not ckpt_path.is_file():
            raise InputError(
                "nothing to resume: no checkpoint in the run folder",
                file=run,
                hint="start the run without --resume",
            )
        cfg, state = _resolve_resume(run, config, steps)
        stored_sites = [SiteRecord.from_dict(s) for s in state["sites"]]
        if len(stored_sites) != len(items):
            raise InputError(
                f"the run was trained on {len(stored_sites)} site(s), {len(items)} given",
                file=run,
                hint="resume with the same SITE folders",
            )
        if until is not None and any(_utc(until) != s.train_end for s in stored_sites):
            raise InputError(
                f"--until {until} differs from the run's training end {stored_sites[0].train_end}",
                file=run,
                hint="resume without --until or with the same value",
            )
    else:
        if ckpt_path.exists():
            raise InputError(
                "the run folder already holds a checkpoint",
                file=run,
                hint="pass --resume to continue it, or choose a new --run folder",
            )
        if init is not None:
            start_from = init if isinstance(init, InitSource) else InitSource.load(init)
            cfg = start_from.check(config)
        else:
            cfg = config if config is not None else preset("tiny")
        if steps is not None:
            cfg = replace(cfg, train=replace(cfg.train, steps=int(steps)))
        stored_sites = []
    tc = cfg.train
    if tc.batch_size % info.world_size:
        raise InputError(
            f"batch size {tc.batch_size} does not divide by {info.world_size} processes",
            hint="choose a train.batch_size that is a multiple of --nproc_per_node",
        )
    threads_before = torch.get_num_threads()
    if tc.threads is not None:
        torch.set_num_threads(tc.threads)
    try:
        return _train(
            items,
            run,
            ckpt_path,
            cfg,
            state,
            stored_sites,
            until,
            resume,
            tracking_uri,
            progress,
            stop_after,
            info,
            start_from,
            device,
        )
    finally:
        torch.set_num_threads(threads_before)


def _train(
    items: Sequence[Site | SensorFrame],
    run: Path,
    ckpt_path: Path,
    cfg: RunConfig,
    state: dict[str, Any] | None,
    stored_sites: list[SiteRecord],
    until: pd.Timestamp | None,
    resume: bool,
    tracking_uri: str | None,
    progress: bool,
    stop_after: int | None,
    info: DistInfo,
    start_from: InitSource | None,
    device: torch.device,
) -> TrainResult:
    tc = cfg.train

    data = [
        prepare_site(item, i, cfg, until, stored_sites[i] if stored_sites else None)
        for i, item in enumerate(items)
    ]
    records = tuple(d.record for d in data)
    for d in data:
        log.info(
            "site %s: %d sensors, %d grid steps of %s, %d training / %d validation windows",
            d.record.name,
            d.frame.n_sensors,
            d.frame.n_times,
            d.frame.interval,
            len(d.train),
            len(d.val),
        )

    model = _init_model(cfg).to(device)  # initial weights drawn on the CPU: same on any device
    if start_from is not None:
        model.load_state_dict(start_from.weights)
    opt = _make_optimizer(model, cfg)
    start = 0
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start = int(state["step"])
    schedule = Schedule.of(cfg)
    total = schedule.total
    stop = total if stop_after is None else min(total, int(stop_after))

    main = info.is_main
    if main:
        run.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run / CONFIG_NAME)
        if start_from is not None:  # never on resume: `init` is refused there
            with atomic_path(run / INIT_NAME) as tmp:
                tmp.write_text(json.dumps(start_from.describe(), indent=2) + "\n", encoding="utf-8")
    metrics_log = JsonlLog(run / METRICS_NAME)
    if main:
        if resume:
            metrics_log.truncate_after(start)
        elif metrics_log.path.exists():
            metrics_log.path.unlink()
    tracker: Tracker = make_tracker(run, tracking_uri, enabled=main) if main else NullTracker()
    try:  # a run that fails to start is closed in the tracker, not left running
        if main:
            tracker.log_params(
                {
                    **cfg.to_dict(),
                    "data": {
                        r.name: {
                            "sensors": len(r.sensors),
                            "interval": str(r.interval),
                            "train_end": r.train_end.isoformat(),
                            "windows": r.n_windows,
                        }
                        for r in records
                    },
                    "world_size": info.world_size,
                    **({"init": start_from.describe()} if start_from is not None else {}),
                }
            )

        collator = MaskCollator(cfg.mask, cfg.window.patch, cfg.seed)
        val = validation_set(data, cfg, collator).to(device)
        guard = CollapseGuard(
            min_rank_fraction=tc.collapse_min_rank_fraction,
            min_std_ratio=tc.collapse_min_std_ratio,
            min_alignment=tc.collapse_min_alignment,
            patience=tc.collapse_patience,
            enabled=tc.stop_on_collapse,
        )
        loader = torch.utils.data.DataLoader(
            _StepWindows(data),
            batch_sampler=_StepSampler(
                cfg.seed, start, stop, [len(d.train) for d in data], tc.batch_size
            ),
            collate_fn=_RankCollate(collator, info),
            num_workers=0,
        )
        ddp: torch.nn.Module = model
        if info.distributed:
            from torch.nn.parallel import DistributedDataParallel

            ddp = DistributedDataParallel(
                model,
                device_ids=[device.index] if device.type == "cuda" else None,
                find_unused_parameters=True,
            )
    except BaseException:
        tracker.finish("FAILED")
        raise

    def checkpoint(step: int, last: dict[str, float]) -> None:
        if main:
            save_checkpoint(
                ckpt_path,
                config=cfg,
                model=model,
                optimizer=opt,
                step=step,
                total_steps=total,
                sites=records,
                metrics=last,
                schedule=schedule.to_dict(),
            )

    params = [p for p in model.parameters() if p.requires_grad]
    last: dict[str, float] = {}
    report: QualityReport | None = None
    t0 = time.perf_counter()
    done = start
    windows_seen = 0
    status = "FAILED"
    bar = Progress("pretrain", total, enabled=progress and main)
    bar.done = start
    try:
        model.train()
        log.info("training on %s", device)
        for batch in loader:
            if device.type != "cpu":
                batch = batch.to(device)
            step = done
            lr, wd, momentum = schedule.at(step)
            logged = (step + 1) % tc.log_every == 0 or step + 1 == stop or step == start
            res = train_step(
                ddp,
                model,
                opt,
                batch,
                params,
                lr=lr,
                weight_decay=wd,
                momentum=momentum,
                grad_clip=tc.grad_clip,
                bf16=tc.bf16,
                seed=_seed_of(cfg.seed, step),
                info=info,
                stats=logged,
            )
            out, grad_norm, loss_value = res.output, res.grad_norm, res.loss
            done = step + 1
            windows_seen += int(batch.values.shape[0]) * info.world_size
            if not math.isfinite(loss_value):
                raise CollapseError(
                    f"training diverged at step {done}: the loss is {loss_value}. Try a lower "
                    "train.lr, a longer warmup or train.grad_clip 1.0; the last good "
                    "checkpoint is kept in the run folder"
                )
            if logged:
                last = {
                    "loss": loss_value,
                    "lr": lr,
                    "weight_decay": wd,
                    "ema": momentum,
                    "grad_norm": grad_norm,
                    **{
                        k: float(v)
                        for k, v in out.stats.items()
                        if k not in ("loss",) and isinstance(v, int | float)
                    },
                }
                if main:
                    metrics_log.write({"step": done, "kind": "train", **last})
                    tracker.log_metrics(last, done)
            if done % tc.eval_every == 0 or done == total:
                report = evaluate(model, val, done)
                if main:
                    metrics_log.write({"step": done, "kind": "eval", **report.as_dict()})
                    tracker.log_metrics(report.as_dict(), done)
                    log.info(
                        "step %d: loss %.4f, RankMe %.1f/%d, LiDAR %.1f, std ratio %.3f",
                        done,
                        loss_value,
                        report.rankme,
                        report.dim,
                        report.lidar,
                        report.std_ratio,
                    )
                guard.check(report)
            if done % tc.checkpoint_every == 0 or done == stop:
                checkpoint(done, last)
            bar.advance(1, postfix=f"loss {loss_value:.4f}")
        status = "FINISHED" if done >= total else "KILLED"
    except CollapseError:
        status = "FAILED"
        raise
    finally:
        bar.close()
        if main:
            try:
                if status != "FAILED":
                    for name in (CONFIG_NAME, METRICS_NAME, CHECKPOINT_NAME, INIT_NAME):
                        if (run / name).is_file():
                            tracker.log_artifact(run / name)
            except BaseException:
                status = "FAILED"  # the run's record is incomplete: never left running
                raise
            finally:
                tracker.finish(status)  # sends the buffered metrics, then closes the run
    seconds = time.perf_counter() - t0
    return TrainResult(
        run_dir=run,
        step=done,
        total_steps=total,
        seconds=seconds,
        windows_per_second=windows_seen / max(seconds, 1e-9),
        final_loss=float(last.get("loss", float("nan"))),
        quality=report,
        stopped=done < total,
        sites=records,
        device=str(device),
    )
