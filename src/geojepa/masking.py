"""Mask generators, the collate function that makes masked batches, and the `Batch` type.

Tokens are (sensor, time-patch) cells; token index n = c * P + p (sensor-major). Each
generator draws a target set over the valid cells of one window; everything valid and not
a target is context. Generators (each with an `id` that picks its own learned mask token):

- ``temporal``   I-JEPA style multi-block: a few time blocks of independently drawn length,
                 each over a random subset of sensors;
- ``tube``       a failed gauge: a few whole sensors hidden for the whole window;
- ``spatial``    the sensors nearest a random point (a radius), over a long time block
                 (Signal-JEPA); falls back to a borehole/group, then random sensors, when
                 positions are unknown;
- ``cross_kind`` every sensor of one or more kinds hidden (Brain-JEPA cross-ROI): predict the
                 piezometers from the rest;
- ``future``     the last patches of a subset of sensors (the world-model view).

Guarantees (tested for every generator in tests/test_contracts.py):

- target is a subset of the valid cells (missing cells are never targets);
- context and target never overlap; context is non-empty whenever any cell is valid;
- masks are made in the collate function from `np.random.default_rng([seed, step, i])`,
  so a batch is a pure function of (seed, step, windows): deterministic under resume;
- batches pad to the batch maximum (sensors, context and target lengths), never truncate;
- with the default weights every cell is a target about equally often (coverage test).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

import numpy as np
import torch

from geojepa.codes import SensorInfo, sensor_info
from geojepa.errors import InputError
from geojepa.windows import Window

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- config
DEFAULT_WEIGHTS: dict[str, float] = {
    "temporal": 0.30,
    "tube": 0.20,
    "spatial": 0.20,
    "cross_kind": 0.15,
    "future": 0.15,
}


@dataclass(frozen=True)
class MaskConfig:
    """Mixture weights of the generators and each generator's ranges (fractions)."""

    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    temporal_scale: tuple[float, float] = (0.15, 0.35)  # block length / P
    temporal_blocks: tuple[int, int] = (2, 4)  # number of blocks (inclusive)
    temporal_sensors: tuple[float, float] = (0.5, 1.0)  # fraction of sensors under a block
    tube_ratio: tuple[float, float] = (0.3, 0.6)  # fraction of sensors hidden
    spatial_ratio: tuple[float, float] = (0.35, 0.65)  # fraction of sensors in the radius
    block_time: tuple[float, float] = (0.5, 1.0)  # time block of spatial / cross_kind, / P
    cross_kind_ratio: tuple[float, float] = (0.25, 0.6)  # kinds added until this is hidden
    cross_kind_max: float = 0.7  # at most this fraction of sensors hidden
    future_ratio: tuple[float, float] = (0.25, 0.5)  # hidden tail / P
    future_sensors: tuple[float, float] = (0.6, 1.0)  # fraction of sensors with a hidden tail

    def __post_init__(self) -> None:
        unknown = sorted(set(self.weights) - set(MASK_GENERATORS))
        if unknown:
            raise InputError(
                f"unknown mask generator(s) {unknown}",
                hint="known: " + ", ".join(MASK_GENERATORS),
            )
        if any(float(w) < 0 for w in self.weights.values()) or not any(
            float(w) > 0 for w in self.weights.values()
        ):
            raise InputError(
                "mask weights must be >= 0 with at least one > 0",
                hint="e.g. {temporal: 1.0}",
            )
        object.__setattr__(self, "weights", {k: float(v) for k, v in self.weights.items()})

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["weights"] = dict(self.weights)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MaskConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InputError(
                f"unknown mask setting(s) {unknown}", hint="known: " + ", ".join(sorted(known))
            )
        kw: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**kw)


HEAVY_RANGES: dict[str, Any] = {
    "temporal_scale": (0.3, 0.6),
    "temporal_sensors": (0.7, 1.0),
    "tube_ratio": (0.5, 0.8),
    "spatial_ratio": (0.55, 0.85),
    "block_time": (0.7, 1.0),
    "cross_kind_ratio": (0.45, 0.8),
    "cross_kind_max": 0.85,
    "future_ratio": (0.4, 0.7),
    "future_sensors": (0.8, 1.0),
}
"""`MaskConfig` ranges that hide about 64 % of a window's valid tokens (the defaults about
40 %), the same generators and weights: the "heavy" point of docs/results/masking.md
(`examples/configs/tiny-mask-heavy.yaml` holds the same ranges)."""


# --------------------------------------------------------------------------- helpers
def _uniform(rng: np.random.Generator, lo_hi: Sequence[float]) -> float:
    lo, hi = float(lo_hi[0]), float(lo_hi[1])
    return lo if hi <= lo else float(rng.uniform(lo, hi))


def _time_block(rng: np.random.Generator, n_patches: int, frac: float) -> np.ndarray:
    """(P,) bool block of length ~frac*P with a uniform start, wrapping around the window.

    Wrapping (a block running off the end continues at the start, i.e. two pieces) keeps
    every patch equally likely to be covered AND keeps the drawn length, where clipping at
    the edges would halve long blocks and a start drawn from [0, P-len] favours the middle.
    """
    length = min(max(1, round(frac * n_patches)), n_patches)
    start = int(rng.integers(n_patches))
    out = np.zeros(n_patches, dtype=bool)
    out[(start + np.arange(length)) % n_patches] = True
    return out


def _some_sensors(
    rng: np.random.Generator, n: int, frac: float, cap: int | None = None
) -> np.ndarray:
    """(n,) bool: round(frac*n) sensors (at least 1, at most `cap`) drawn uniformly."""
    m = max(1, round(frac * n))
    if cap is not None:
        m = max(1, min(m, cap))
    out = np.zeros(n, dtype=bool)
    out[rng.choice(n, size=min(m, n), replace=False)] = True
    return out


def finalise(rng: np.random.Generator, target: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Restrict `target` to valid cells, keep the context non-empty and the target non-empty.

    When every valid cell is a target, one drawn at random becomes context; when no valid
    cell is a target and at least two are valid, one drawn at random becomes the target.
    """
    target = target & valid
    n_valid = int(valid.sum())
    if n_valid and not (valid & ~target).any():
        cells = np.flatnonzero(target)
        flat = target.reshape(-1).copy()
        flat[cells[int(rng.integers(len(cells)))]] = False
        target = flat.reshape(valid.shape)
    if n_valid >= 2 and not target.any():
        cells = np.flatnonzero(valid)
        flat = target.reshape(-1).copy()
        flat[cells[int(rng.integers(len(cells)))]] = True
        target = flat.reshape(valid.shape)
    return target


# --------------------------------------------------------------------------- generators
class MaskGenerator:
    """Base of the mask generators.

    ``__call__(rng, valid (C, P) bool, sensors: SensorInfo) -> target (C, P) bool`` with
    target a subset of valid, context (= valid & ~target) non-empty when valid is.
    Subclasses implement `draw` and set `name` and `id` (the index of their mask token).
    """

    name: ClassVar[str] = ""
    id: ClassVar[int] = -1

    def __init__(self, config: MaskConfig | None = None) -> None:
        self.config = config if config is not None else MaskConfig()

    def draw(self, rng: np.random.Generator, valid: np.ndarray, sensors: SensorInfo) -> np.ndarray:
        raise NotImplementedError

    def __call__(
        self, rng: np.random.Generator, valid: np.ndarray, sensors: SensorInfo
    ) -> np.ndarray:
        valid = np.asarray(valid, dtype=bool)
        if valid.ndim != 2 or valid.shape[0] != sensors.n_sensors:
            raise ValueError(f"valid must be (C, P) with C={sensors.n_sensors}, got {valid.shape}")
        if valid.size == 0:
            return np.zeros_like(valid)
        return finalise(rng, self.draw(rng, valid, sensors), valid)


class TemporalMultiBlock(MaskGenerator):
    """A few time blocks, lengths drawn independently, each over a random sensor subset."""

    name = "temporal"
    id = 0

    def draw(self, rng: np.random.Generator, valid: np.ndarray, sensors: SensorInfo) -> np.ndarray:
        c, p = valid.shape
        cfg = self.config
        target = np.zeros((c, p), dtype=bool)
        lo, hi = cfg.temporal_blocks
        for _ in range(int(rng.integers(lo, hi + 1))):
            rows = _some_sensors(rng, c, _uniform(rng, cfg.temporal_sensors))
            cols = _time_block(rng, p, _uniform(rng, cfg.temporal_scale))
            target |= rows[:, None] & cols[None, :]
        return target


class SensorTube(MaskGenerator):
    """A failed gauge: whole sensors hidden over the whole window (a long block if C = 1)."""

    name = "tube"
    id = 1

    def draw(self, rng: np.random.Generator, valid: np.ndarray, sensors: SensorInfo) -> np.ndarray:
        c, p = valid.shape
        if c == 1:
            return _time_block(rng, p, _uniform(rng, (0.3, 0.6)))[None, :]
        rows = _some_sensors(rng, c, _uniform(rng, self.config.tube_ratio), cap=c - 1)
        return np.repeat(rows[:, None], p, axis=1)


class SpatialRadius(MaskGenerator):
    """Sensors nearest a random point, over a long time block.

    The point is a random positioned sensor's location plus a jitter; the radius takes
    round(ratio * C) nearest sensors. Sensors without a position join with the same
    probability, so they are targets about as often. Without any positions: one group
    (borehole), else random sensors.
    """

    name = "spatial"
    id = 2

    def draw(self, rng: np.random.Generator, valid: np.ndarray, sensors: SensorInfo) -> np.ndarray:
        c, p = valid.shape
        cfg = self.config
        frac = _uniform(rng, cfg.spatial_ratio)
        cols = _time_block(rng, p, _uniform(rng, cfg.block_time))
        if c == 1:
            return cols[None, :]
        pos = sensors.has_position
        m = max(1, min(round(frac * c), c - 1))
        rows = np.zeros(c, dtype=bool)
        if pos.sum() >= 2:
            idx = np.flatnonzero(pos)
            centre = sensors.position[idx[int(rng.integers(len(idx)))], :2]
            centre = centre + rng.normal(0.0, 0.1, size=2)
            d = np.linalg.norm(sensors.position[idx, :2] - centre, axis=1)
            d = d + rng.uniform(0.0, 1e-6, size=d.shape)  # random tie-break
            k = max(1, min(round(frac * len(idx)), len(idx)))
            rows[idx[np.argsort(d)[:k]]] = True
            free = np.flatnonzero(~pos)
            rows[free] = rng.random(len(free)) < frac
        else:
            groups = sensors.group[sensors.group >= 0]
            if len(np.unique(groups)) >= 2:
                g = rng.choice(np.unique(groups))
                rows = sensors.group == g
            else:
                rows = _some_sensors(rng, c, frac, cap=m)
        if rows.all():
            rows[int(rng.integers(c))] = False
        return rows[:, None] & cols[None, :]


class CrossKind(MaskGenerator):
    """Every sensor of one or more kinds over a long time block.

    Kinds, in random order, are added until `cross_kind_ratio` of the sensors are hidden
    (never all kinds; at most `cross_kind_max` of the sensors, subsampled if needed).

    Needs at least two kinds among the sensors; with one kind it hides a sensor tube.
    """

    name = "cross_kind"
    id = 3

    def draw(self, rng: np.random.Generator, valid: np.ndarray, sensors: SensorInfo) -> np.ndarray:
        c, p = valid.shape
        cfg = self.config
        kinds = np.unique(sensors.kind)
        cols = _time_block(rng, p, _uniform(rng, cfg.block_time))
        if len(kinds) < 2:
            if c == 1:
                return cols[None, :]
            rows = _some_sensors(rng, c, _uniform(rng, cfg.tube_ratio), cap=c - 1)
            return rows[:, None] & cols[None, :]
        want = _uniform(rng, cfg.cross_kind_ratio) * c
        members = np.zeros(0, dtype=np.int64)
        for kind in rng.permutation(kinds)[:-1]:  # never every kind
            members = np.concatenate([members, np.flatnonzero(sensors.kind == kind)])
            if len(members) >= want:
                break
        cap = max(1, min(int(np.floor(cfg.cross_kind_max * c)), c - 1))
        if len(members) > cap:
            members = rng.choice(members, size=cap, replace=False)
        rows = np.zeros(c, dtype=bool)
        rows[members] = True
        return rows[:, None] & cols[None, :]


class Future(MaskGenerator):
    """The last patches (a horizon of ratio * P) of a random subset of sensors."""

    name = "future"
    id = 4

    def draw(self, rng: np.random.Generator, valid: np.ndarray, sensors: SensorInfo) -> np.ndarray:
        c, p = valid.shape
        cfg = self.config
        h = min(max(1, round(_uniform(rng, cfg.future_ratio) * p)), p)
        rows = _some_sensors(rng, c, _uniform(rng, cfg.future_sensors))
        cols = np.zeros(p, dtype=bool)
        cols[p - h :] = True
        return rows[:, None] & cols[None, :]


MASK_GENERATORS: dict[str, type[MaskGenerator]] = {
    g.name: g for g in (TemporalMultiBlock, SensorTube, SpatialRadius, CrossKind, Future)
}
"""Registry: name -> generator class. `id`s are 0..len-1 in this order."""

N_MASK_KINDS = len(MASK_GENERATORS)


# --------------------------------------------------------------------------- batch
@dataclass
class Batch:
    """A padded batch of masked windows (torch tensors). N = C * P, n = c * P + p.

    values (B, C, L) float32 (0 where missing); observed (B, C, L) bool;
    sensor_feats (B, C, F) float32; sensor_pad (B, C) bool (True = padding sensor);
    time_feats (B, P, Ft) float32; token_valid (B, N) bool (patch has an observed cell and
    its sensor is not padding); context (B, Nc) long, context_pad (B, Nc) bool;
    target (B, Nt) long, target_pad (B, Nt) bool; mask_kind (B,) long (generator id, -1 =
    none); starts (B,) long (grid index of each window start).
    """

    values: torch.Tensor
    observed: torch.Tensor
    sensor_feats: torch.Tensor
    sensor_pad: torch.Tensor
    time_feats: torch.Tensor
    token_valid: torch.Tensor
    context: torch.Tensor
    context_pad: torch.Tensor
    target: torch.Tensor
    target_pad: torch.Tensor
    mask_kind: torch.Tensor
    starts: torch.Tensor
    patch: int = 16

    @property
    def n_patches(self) -> int:
        return int(self.values.shape[2]) // self.patch

    def to(self, device: torch.device | str) -> Batch:
        moved = {
            f.name: getattr(self, f.name).to(device)
            for f in fields(self)
            if isinstance(getattr(self, f.name), torch.Tensor)
        }
        return Batch(**moved, patch=self.patch)

    def pin_memory(self) -> Batch:
        moved = {
            f.name: getattr(self, f.name).pin_memory()
            for f in fields(self)
            if isinstance(getattr(self, f.name), torch.Tensor)
        }
        return Batch(**moved, patch=self.patch)


def token_valid_of(observed: np.ndarray, patch: int) -> np.ndarray:
    """(C, L) bool observed -> (C, P) bool: the patch holds at least one observed cell."""
    c, length = observed.shape
    p = length // patch
    return np.asarray(observed[:, : p * patch].reshape(c, p, patch).any(axis=2), dtype=bool)


def _pad_index(rows: list[np.ndarray], min_width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Ragged index lists -> (B, W) long, (B, W) bool pad, W = max(len, min_width)."""
    width = max([len(r) for r in rows] + [min_width])
    idx = np.zeros((len(rows), width), dtype=np.int64)
    pad = np.ones((len(rows), width), dtype=bool)
    for i, r in enumerate(rows):
        idx[i, : len(r)] = r
        pad[i, : len(r)] = False
    return torch.from_numpy(idx), torch.from_numpy(pad)


def _stack_windows(
    windows: Sequence[Window], patch: int
) -> tuple[dict[str, torch.Tensor], list[np.ndarray]]:
    """Pad windows to the batch's max sensor count; returns tensors and (C_i, P) valid masks."""
    if not windows:
        raise ValueError("a batch needs at least one window")
    lengths = {w.length for w in windows}
    if len(lengths) != 1:
        raise ValueError(f"windows in one batch must share their length, got {sorted(lengths)}")
    length = lengths.pop()
    if length % patch:
        raise ValueError(f"window length {length} is not a multiple of patch {patch}")
    p = length // patch
    b = len(windows)
    c_max = max(w.n_sensors for w in windows)
    f = windows[0].sensor_feats.shape[1]
    ft = windows[0].time_feats.shape[1]
    values = np.zeros((b, c_max, length), dtype=np.float32)
    observed = np.zeros((b, c_max, length), dtype=bool)
    feats = np.zeros((b, c_max, f), dtype=np.float32)
    sensor_pad = np.ones((b, c_max), dtype=bool)
    time_feats = np.zeros((b, p, ft), dtype=np.float32)
    token_valid = np.zeros((b, c_max, p), dtype=bool)
    valids = []
    for i, w in enumerate(windows):
        c = w.n_sensors
        values[i, :c] = np.where(w.observed, w.values, 0.0)
        observed[i, :c] = w.observed
        feats[i, :c] = w.sensor_feats
        sensor_pad[i, :c] = False
        time_feats[i] = w.time_feats[:p]
        v = token_valid_of(w.observed, patch)
        token_valid[i, :c] = v
        valids.append(v)
    tensors = {
        "values": torch.from_numpy(values),
        "observed": torch.from_numpy(observed),
        "sensor_feats": torch.from_numpy(feats),
        "sensor_pad": torch.from_numpy(sensor_pad),
        "time_feats": torch.from_numpy(time_feats),
        "token_valid": torch.from_numpy(token_valid.reshape(b, c_max * p)),
        "starts": torch.tensor([w.start for w in windows], dtype=torch.long),
    }
    return tensors, valids


def _flat_index(mask: np.ndarray, c_max: int) -> np.ndarray:
    """(C, P) bool of one window -> token indices n = c * P + p in the padded (C_max, P) grid."""
    c, p = mask.shape
    padded = np.zeros((c_max, p), dtype=bool)
    padded[:c] = mask
    return np.flatnonzero(padded.reshape(-1))


class MaskCollator:
    """Collate function: list of (step, Window) -> masked `Batch`.

    Item i of a batch at `step` draws its generator and mask from
    ``np.random.default_rng([seed, step, i])``.
    """

    def __init__(self, config: MaskConfig, patch: int, seed: int) -> None:
        self.config = config
        self.patch = int(patch)
        self.seed = int(seed)
        self.names = [n for n, w in config.weights.items() if w > 0]
        weights = np.array([config.weights[n] for n in self.names], dtype=np.float64)
        self.probs = weights / weights.sum()
        self.generators = {n: MASK_GENERATORS[n](config) for n in self.names}

    def draw(
        self, rng: np.random.Generator, valid: np.ndarray, info: SensorInfo
    ) -> tuple[np.ndarray, int]:
        """One mask: (target (C, P) bool, generator id)."""
        name = self.names[int(rng.choice(len(self.names), p=self.probs))]
        gen = self.generators[name]
        return gen(rng, valid, info), gen.id

    def __call__(self, items: Sequence[tuple[int, Window]]) -> Batch:
        windows = [w for _, w in items]
        tensors, valids = _stack_windows(windows, self.patch)
        c_max = int(tensors["values"].shape[1])
        contexts, targets, kinds = [], [], []
        for i, ((step, w), valid) in enumerate(zip(items, valids, strict=True)):
            rng = np.random.default_rng([self.seed, int(step), i])
            tmask, kind = self.draw(rng, valid, sensor_info(w.sensor_feats))
            contexts.append(_flat_index(valid & ~tmask, c_max))
            targets.append(_flat_index(tmask, c_max))
            kinds.append(kind)
        context, context_pad = _pad_index(contexts, 1)
        target, target_pad = _pad_index(targets, 1)
        return Batch(
            **tensors,
            context=context,
            context_pad=context_pad,
            target=target,
            target_pad=target_pad,
            mask_kind=torch.tensor(kinds, dtype=torch.long),
            patch=self.patch,
        )


def full_batch(windows: Sequence[Window], patch: int = 16) -> Batch:
    """Every valid token is context, no target (Nt = 0): for embed, scoring and export."""
    tensors, valids = _stack_windows(windows, patch)
    c_max = int(tensors["values"].shape[1])
    context, context_pad = _pad_index([_flat_index(v, c_max) for v in valids], 1)
    b = len(windows)
    return Batch(
        **tensors,
        context=context,
        context_pad=context_pad,
        target=torch.zeros((b, 0), dtype=torch.long),
        target_pad=torch.zeros((b, 0), dtype=torch.bool),
        mask_kind=torch.full((b,), -1, dtype=torch.long),
        patch=patch,
    )


def with_target(batch: Batch, target_mask: torch.Tensor, mask_kind: int | torch.Tensor) -> Batch:
    """A copy of `batch` whose target is `target_mask` (B, N) bool (restricted to valid
    tokens) and whose context is every other valid token. For the anomaly energy sweep."""
    valid = batch.token_valid
    tgt = target_mask & valid
    ctx = valid & ~tgt
    t_rows = [torch.nonzero(r).flatten().numpy() for r in tgt.cpu()]
    c_rows = [torch.nonzero(r).flatten().numpy() for r in ctx.cpu()]
    target, target_pad = _pad_index(t_rows, 1)
    context, context_pad = _pad_index(c_rows, 1)
    kind = (
        mask_kind.to(torch.long)
        if isinstance(mask_kind, torch.Tensor)
        else torch.full((valid.shape[0],), int(mask_kind), dtype=torch.long)
    )
    dev = valid.device
    return Batch(
        values=batch.values,
        observed=batch.observed,
        sensor_feats=batch.sensor_feats,
        sensor_pad=batch.sensor_pad,
        time_feats=batch.time_feats,
        token_valid=batch.token_valid,
        context=context.to(dev),
        context_pad=context_pad.to(dev),
        target=target.to(dev),
        target_pad=target_pad.to(dev),
        mask_kind=kind.to(dev),
        starts=batch.starts,
        patch=batch.patch,
    )
