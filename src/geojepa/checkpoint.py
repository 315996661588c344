"""Self-describing checkpoints of a pretraining run, and loading a run for downstream use.

A checkpoint (``RUN/checkpoint.pt``) is one dict of plain Python types and tensors:

- ``format``/``version``/``geojepa_version``: what wrote it;
- ``config``: `RunConfig.to_dict()`; ``sites``: per training site its name, sensors table
  (column lists), normaliser (`Normaliser.to_dict()`), grid interval (ns), training-period
  end (ISO 8601 UTC, exclusive) and grid start;
- ``model``: the JEPA state dict (context encoder, target encoder, predictor);
- ``optimizer``: AdamW state; ``schedule``: step, total steps and the schedule settings;
- ``rng``: the torch CPU generator state plus the seed; every per-step generator is derived
  from (seed, step), so resuming needs nothing else;
- ``metrics``: the last logged metrics.

Guarantees: `save_checkpoint` writes atomically (a kill leaves the previous file whole)
and holds CPU tensors only, whatever device trained (a GPU run's file reads on a CPU);
`read_checkpoint` uses ``torch.load(weights_only=True)`` (no pickle code runs) and refuses
other formats or newer versions with an `InputError`; `load_run` returns the model in eval
mode, built from the stored configuration alone.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from geojepa import __version__
from geojepa.atomic import atomic_path
from geojepa.config import RunConfig
from geojepa.errors import InputError
from geojepa.models import LEGACY_CELL_FLAG
from geojepa.windows import Normaliser

if TYPE_CHECKING:
    import torch

    from geojepa.jepa import JEPA

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "geojepa-checkpoint"
CHECKPOINT_VERSION = 1
CHECKPOINT_NAME = "checkpoint.pt"
CONFIG_NAME = "config.yaml"
METRICS_NAME = "metrics.jsonl"


def _utc(t: pd.Timestamp | str) -> pd.Timestamp:
    ts = pd.Timestamp(t)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


@dataclass(frozen=True)
class SiteRecord:
    """What a run knows about one training site."""

    name: str
    sensors: pd.DataFrame
    normaliser: Normaliser
    interval: pd.Timedelta
    train_end: pd.Timestamp  # exclusive end of the training period (UTC)
    grid_start: pd.Timestamp  # first grid time (UTC)
    n_windows: int = 0

    def to_dict(self) -> dict[str, Any]:
        cols = {}
        for c in self.sensors.columns:
            vals = self.sensors[c].tolist()
            cols[str(c)] = [None if isinstance(v, float) and math.isnan(v) else v for v in vals]
        return {
            "name": self.name,
            "sensors": cols,
            "normaliser": self.normaliser.to_dict(),
            "interval_ns": int(self.interval.value),
            "train_end": _utc(self.train_end).isoformat(),
            "grid_start": _utc(self.grid_start).isoformat(),
            "n_windows": int(self.n_windows),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SiteRecord:
        sensors = pd.DataFrame({k: list(v) for k, v in dict(d["sensors"]).items()})
        for c in ("x", "y", "z"):
            if c in sensors:
                sensors[c] = pd.to_numeric(sensors[c], errors="coerce").astype("float64")
        for c in ("id", "kind", "unit", "group", "meta"):
            if c in sensors:
                sensors[c] = sensors[c].astype("str")
        return cls(
            name=str(d["name"]),
            sensors=sensors,
            normaliser=Normaliser.from_dict(d["normaliser"]),
            interval=pd.Timedelta(int(d["interval_ns"]), unit="ns"),
            train_end=_utc(d["train_end"]),
            grid_start=_utc(d["grid_start"]),
            n_windows=int(d.get("n_windows", 0)),
        )


def save_checkpoint(
    path: str | Path,
    *,
    config: RunConfig,
    model: JEPA,
    optimizer: torch.optim.Optimizer | None,
    step: int,
    total_steps: int,
    sites: Sequence[SiteRecord],
    metrics: Mapping[str, float] | None = None,
    schedule: Mapping[str, Any] | None = None,
) -> None:
    """Write a checkpoint atomically (temporary file beside `path`, then rename)."""
    import torch

    state = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "geojepa_version": __version__,
        "config": config.to_dict(),
        "sites": [s.to_dict() for s in sites],
        "model": _on_cpu(model.state_dict()),
        "optimizer": _on_cpu(optimizer.state_dict()) if optimizer is not None else None,
        "schedule": {"step": int(step), "total_steps": int(total_steps), **dict(schedule or {})},
        "rng": {"torch": torch.get_rng_state(), "seed": int(config.seed)},
        "step": int(step),
        "metrics": {k: float(v) for k, v in (metrics or {}).items() if v is not None},
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    log.debug("checkpoint written at step %d: %s", step, path)


def _on_cpu(obj: Any) -> Any:
    """`obj` with every tensor in it copied to the CPU (a GPU run's file reads anywhere)."""
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _on_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_on_cpu(v) for v in obj)
    return obj


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint dict safely (``weights_only=True``) and check its format."""
    import torch

    p = Path(path)
    if not p.is_file():
        raise InputError(
            "no checkpoint here",
            file=p,
            hint="train one with `geojepa pretrain SITE --run RUN`",
        )
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for damaged or foreign files
        raise InputError(
            f"cannot read the checkpoint ({type(err).__name__}: {str(err)[:200]})",
            file=p,
            hint="the file is damaged or not a GeoJEPA checkpoint; retrain or restore it",
        ) from err
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise InputError(
            "not a GeoJEPA checkpoint",
            file=p,
            hint="point at a run folder written by `geojepa pretrain`",
        )
    if int(state.get("version", 0)) > CHECKPOINT_VERSION:
        raise InputError(
            f"checkpoint version {state.get('version')} is newer than this GeoJEPA reads",
            file=p,
            hint="upgrade geojepa",
        )
    return state


@dataclass(frozen=True)
class LoadedRun:
    """A trained run, ready for embed / detect / forecast / export.

    `normaliser`, `sensors`, `interval` and `train_end` are those of the first training
    site; `sites` holds every site's record (pretraining on a family of sites).
    """

    model: JEPA
    config: RunConfig
    normaliser: Normaliser
    sensors: pd.DataFrame
    interval: pd.Timedelta
    train_end: pd.Timestamp
    step: int
    metrics: dict[str, float]
    sites: tuple[SiteRecord, ...] = field(default_factory=tuple)
    run_dir: Path = field(default_factory=Path)

    def site_record(self, sensor_ids: Sequence[str]) -> SiteRecord | None:
        """The training site whose normaliser knows every one of `sensor_ids`, if any."""
        want = set(sensor_ids)
        for s in self.sites:
            if want <= set(s.normaliser.sensor_ids):
                return s
        return None


def build_model(
    config: RunConfig, state: Mapping[str, Any] | None = None, seed: int | None = None
) -> JEPA:
    """A JEPA from the configuration; initial weights drawn from `seed`, then replaced by
    `state` (a state dict) when given."""
    from geojepa.jepa import JEPA

    model = JEPA(config.jepa_config(), seed=seed)
    if state is not None:
        missing, unexpected = model.load_state_dict(dict(state), strict=False)
        if missing or unexpected:
            raise InputError(
                f"checkpoint weights do not fit the model (missing {list(missing)[:3]}, "
                f"unexpected {list(unexpected)[:3]})",
                hint="the checkpoint was written by another GeoJEPA version; retrain",
            )
    return model


def save_untrained_run(
    run_dir: str | Path, site: Any, config: RunConfig, train_fraction: float = 1.0
) -> Path:
    """A run folder holding an UNTRAINED model of `config` (weights drawn from its seed) and
    `site`'s normaliser fitted on the first `train_fraction` of its grid rows: what export,
    scoring and speed measurements need when training does not matter. Returns the
    checkpoint's path."""
    from geojepa.frame import to_frame

    frame = to_frame(site)
    end = max(1, min(int(train_fraction * frame.n_times), frame.n_times))
    record = SiteRecord(
        name=site.name,
        sensors=site.sensors,
        normaliser=Normaliser.fit(frame, end),
        interval=frame.interval,
        train_end=(
            frame.times()[end] if end < frame.n_times else frame.times()[-1] + frame.interval
        ),
        grid_start=frame.times()[0],
    )
    path = Path(run_dir) / CHECKPOINT_NAME
    save_checkpoint(
        path,
        config=config,
        model=build_model(config, seed=config.seed).eval(),
        optimizer=None,
        step=0,
        total_steps=0,
        sites=[record],
    )
    return path


def checkpoint_path(run: str | Path) -> Path:
    p = Path(run)
    return p / CHECKPOINT_NAME if p.is_dir() or p.suffix != ".pt" else p


def saved_config(state: Mapping[str, Any], path: str | Path) -> RunConfig:
    """The configuration a checkpoint's `state` was trained with. Settings added after it
    was written take the value that reproduces how it was trained, not today's preset
    value (`ModelConfig.cell_flag`: checkpoints without it flag observed cells)."""
    config = state["config"]
    model = config.get("model") if isinstance(config, Mapping) else None
    if isinstance(model, Mapping) and "cell_flag" not in model:
        config = {**config, "model": {**model, "cell_flag": LEGACY_CELL_FLAG}}
    return RunConfig.from_dict(config, file=path)


def load_run(run_dir: str | Path) -> LoadedRun:
    """Load ``RUN/checkpoint.pt`` (or a checkpoint file) into a `LoadedRun` (model in eval)."""
    path = checkpoint_path(run_dir)
    state = read_checkpoint(path)
    try:
        config = saved_config(state, path)
        sites = tuple(SiteRecord.from_dict(s) for s in state["sites"])
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(
            f"checkpoint metadata is incomplete ({err})",
            file=path,
            hint="the file is damaged; retrain or restore it",
        ) from err
    if not sites:
        raise InputError("checkpoint names no training site", file=path, hint="retrain")
    model = build_model(config, state["model"])
    model.eval()
    first = sites[0]
    return LoadedRun(
        model=model,
        config=config,
        normaliser=first.normaliser,
        sensors=first.sensors,
        interval=first.interval,
        train_end=first.train_end,
        step=int(state["step"]),
        metrics=dict(state.get("metrics", {})),
        sites=sites,
        run_dir=path.parent,
    )
