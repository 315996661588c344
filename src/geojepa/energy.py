"""The JEPA energy score, numpy side: which tokens to hide, and how errors become scores.

The energy of a (sensor, time) cell is how badly the JEPA predicts its latent
representation when it is hidden: for a window ending at a scored grid time, the sweep

- hides each sensor in turn over the whole window (the ``tube`` generator's mask token:
  "is this gauge consistent with its neighbours?"), and
- hides the last `recent` patches of every sensor at once (the ``future`` mask token:
  "did the site just do what its past predicts?"),

and the error of a cell in the recent patches is the mean squared difference, over the
width D, between the predictor's output and the (layer-normed) target encoder's
representation, averaged over the masks that hid it. Cells with no observed reading get
NaN (nothing to predict), never 0.

With ``EnergySpec(relative=True)`` each window is first made window-relative
(`relative_window`): every sensor's level, the median of its observed normalised values
in the window's earlier patches (all but the `recent` scored ones), is subtracted. A
sensor that trends (a settling plate) then stays inside the range the model saw in
training; a change in the scored patches still shows against the sensor's own recent
history. Off by default: a bundle without the setting scores as before.

Scored windows are aligned on ABSOLUTE grid cells (cell k = floor(time / interval)): a
window is scored where ``(k + 1) % stride == 0`` and gives the energy of the `stride`
cells it ends with; when the data end inside a stride, that partial stride is scored by
the window ending at the newest row (`tail_window_end`). The same rules serve a whole
frame (`frame_energy`, used by ``geojepa detect``) and a stream (the edge scorer), so
both give the same numbers.

This module is numpy only. The neural networks come in through `TokenEngine`: a torch
engine (``geojepa.export.TorchEngine``) and an onnxruntime engine (the edge scorer's)
implement it with the same two graphs, so everything here is shared code, not a copy.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol

import numpy as np
import pandas as pd

from geojepa.errors import InputError
from geojepa.frame import SensorFrame
from geojepa.progress import Progress
from geojepa.windows import Normaliser, Window, WindowSpec, subtract_level, window_at

log = logging.getLogger(__name__)

__all__ = [
    "EnergySpec",
    "MaskSweep",
    "TokenEngine",
    "TokenInputs",
    "frame_energy",
    "pad_index",
    "relative_window",
    "row_max",
    "scored_ends",
    "scored_row_max",
    "stack_windows",
    "sweep",
    "tail_window_end",
    "token_valid_of",
    "window_energy",
    "windows_energy",
    "with_context",
]


@dataclass(frozen=True)
class EnergySpec:
    """Settings of the sweep. `recent`: patches scored per window (the stride is
    recent * patch * scale grid steps); `tube` / `future`: which masks the sweep uses;
    `relative`: score window-relative inputs (`relative_window`)."""

    recent: int = 1
    tube: bool = True
    future: bool = True
    relative: bool = False

    def __post_init__(self) -> None:
        if self.recent < 1:
            raise InputError(f"energy recent={self.recent} must be >= 1", hint="use 1")
        if not (self.tube or self.future):
            raise InputError("the energy sweep needs tube or future masks", hint="enable one")

    def stride(self, window: WindowSpec) -> int:
        """Grid steps between scored windows = grid steps covered by the recent patches."""
        return self.recent * window.patch * window.scales[0]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EnergySpec:
        known = {"recent", "tube", "future", "relative"}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InputError(
                f"unknown energy setting(s) {unknown}", hint="known: " + ", ".join(sorted(known))
            )
        return cls(**dict(d))


@dataclass(frozen=True)
class TokenInputs:
    """A batch of windows as numpy arrays (the graphs' inputs). N = C * P, n = c * P + p.

    values (B, C, L) float32, 0 where missing; observed (B, C, L) bool; sensor_feats
    (B, C, F) float32; time_feats (B, P, Ft) float32; token_valid (B, N) bool.
    """

    values: np.ndarray
    observed: np.ndarray
    sensor_feats: np.ndarray
    time_feats: np.ndarray
    token_valid: np.ndarray

    @property
    def batch(self) -> int:
        return int(self.values.shape[0])

    def take(self, index: np.ndarray | Sequence[int]) -> TokenInputs:
        """Windows `index` (B',) of the batch, in that order, repeats allowed: (B', ...)."""
        i = np.asarray(index, dtype=np.int64)
        return TokenInputs(
            self.values[i],
            self.observed[i],
            self.sensor_feats[i],
            self.time_feats[i],
            self.token_valid[i],
        )


def token_valid_of(observed: np.ndarray, patch: int) -> np.ndarray:
    """(C, L) bool observed -> (C, P) bool: the patch holds at least one observed cell."""
    c, length = observed.shape
    p = length // patch
    return np.asarray(observed[:, : p * patch].reshape(c, p, patch).any(axis=2), dtype=bool)


def stack_windows(windows: Sequence[Window], patch: int) -> TokenInputs:
    """Windows of one sensor set and length -> `TokenInputs` (B = len(windows))."""
    if not windows:
        raise ValueError("stack_windows needs at least one window")
    values = np.stack([np.where(w.observed, w.values, 0.0) for w in windows]).astype(np.float32)
    observed = np.stack([w.observed for w in windows]).astype(bool)
    feats = np.stack([w.sensor_feats for w in windows]).astype(np.float32)
    p = windows[0].length // patch
    times = np.stack([w.time_feats[:p] for w in windows]).astype(np.float32)
    valid = np.stack([token_valid_of(w.observed, patch).reshape(-1) for w in windows])
    return TokenInputs(values, observed, feats, times, valid)  # (B, C, L) ... (B, N)


def pad_index(rows: Sequence[np.ndarray], min_width: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Ragged index lists -> idx (B, W) int64, pad (B, W) bool (True = padding)."""
    width = max([len(r) for r in rows] + [min_width])
    idx = np.zeros((len(rows), width), dtype=np.int64)
    pad = np.ones((len(rows), width), dtype=bool)
    for i, r in enumerate(rows):
        idx[i, : len(r)] = r
        pad[i, : len(r)] = False
    return idx, pad


@dataclass(frozen=True)
class MaskSweep:
    """The masks of one window's sweep: M masks over N = C * P tokens.

    target / context (M, Nt) / (M, Nc) int64 token indices with their pads (True = pad);
    mask_kind (M,) int64 generator ids; hidden (M, N) bool (the target set of each mask).
    """

    target: np.ndarray
    target_pad: np.ndarray
    context: np.ndarray
    context_pad: np.ndarray
    mask_kind: np.ndarray
    hidden: np.ndarray

    @property
    def n_masks(self) -> int:
        return int(self.mask_kind.shape[0])


def sweep(valid: np.ndarray, spec: EnergySpec, kinds: Mapping[str, int]) -> MaskSweep | None:
    """Masks for one window from its token validity (C, P) bool; None if nothing to score.

    A mask is kept only when it hides a valid token in the recent patches and leaves a
    non-empty context (missing tokens are never targets; the context is never empty).
    """
    c, p = valid.shape
    recent = np.zeros((c, p), dtype=bool)
    recent[:, max(p - spec.recent, 0) :] = True
    masks: list[np.ndarray] = []
    kind_ids: list[int] = []
    if spec.tube:
        for s in range(c):
            m = np.zeros((c, p), dtype=bool)
            m[s] = valid[s]
            masks.append(m)
            kind_ids.append(int(kinds["tube"]))
    if spec.future:
        masks.append(valid & recent)
        kind_ids.append(int(kinds["future"]))
    keep = [
        i
        for i, m in enumerate(masks)
        if (m & recent).any() and (valid & ~m).any()  # something to score, something to see
    ]
    if not keep:
        return None
    hidden = np.stack([masks[i].reshape(-1) for i in keep])  # (M, N)
    ctx = valid.reshape(-1)[None, :] & ~hidden  # (M, N)
    target, target_pad = pad_index([np.flatnonzero(h) for h in hidden])
    context, context_pad = pad_index([np.flatnonzero(x) for x in ctx])
    return MaskSweep(
        target, target_pad, context, context_pad, np.asarray([kind_ids[i] for i in keep]), hidden
    )


class TokenEngine(Protocol):
    """The two graphs the energy needs, on numpy arrays (torch or onnxruntime inside).

    `kinds` maps ``tube`` and ``future`` to their generator ids (mask tokens). An engine
    may also carry ``windows_per_call`` (default 1): how many windows `frame_energy` sends
    in one call (one target pass, one predictor pass over all their masks); more than one
    pays on a GPU, where one window's sweep leaves it waiting on launches.
    """

    kinds: Mapping[str, int]

    def target_repr(self, inputs: TokenInputs) -> np.ndarray:
        """Layer-normed target-encoder representations of all tokens: (B, N, D) float32."""
        ...

    def predict(
        self,
        inputs: TokenInputs,
        context: np.ndarray,
        context_pad: np.ndarray,
        target: np.ndarray,
        target_pad: np.ndarray,
        mask_kind: np.ndarray,
    ) -> np.ndarray:
        """Predicted representations of the target tokens from the context: (B, Nt, D)."""
        ...


def relative_window(window: Window, patch: int, recent: int = 1) -> Window:
    """`window` with each sensor's level subtracted from its observed values.

    The level of a sensor is the median of its observed values in the window's first
    P - recent patches (its recent history, not the scored patches); a sensor with no
    reading there keeps its values. values (C, L) -> (C, L); missing cells stay 0.
    """
    head = max(window.values.shape[1] - recent * patch, 0)
    values = window.values.astype(np.float64)
    shifted = subtract_level(values, window.observed, upto=head)  # (C, L)
    return replace(window, values=shifted)


def window_energy(engine: TokenEngine, window: Window, patch: int, spec: EnergySpec) -> np.ndarray:
    """Energy of the recent patches of one window: (C, recent) float64, NaN where invalid."""
    return windows_energy(engine, [window], patch, spec)[0]


def windows_energy(
    engine: TokenEngine, windows: Sequence[Window], patch: int, spec: EnergySpec
) -> list[np.ndarray]:
    """`window_energy` of several windows of one sensor set and length, with one target
    pass over all of them and one predictor pass over all their masks (each window's masks
    padded to the widest; padding is never attended to nor scored). Each (C, recent)."""
    if spec.relative:
        windows = [relative_window(w, patch, spec.recent) for w in windows]
    inputs = stack_windows(windows, patch)  # (K, ...)
    c = windows[0].n_sensors
    p = windows[0].length // patch
    r = min(spec.recent, p)
    outs = [np.full((c, r), np.nan) for _ in windows]
    plans = [
        sweep(inputs.token_valid[i].reshape(c, p), spec, engine.kinds) for i in range(len(windows))
    ]
    live = [i for i, plan in enumerate(plans) if plan is not None]
    sweeps = [plan for plan in plans if plan is not None]
    if not sweeps:
        return outs
    target_all = engine.target_repr(inputs.take(live))  # (K', N, D)
    # every window's masks as rows, padded to the widest of all (real indices come first)
    target, target_pad = pad_index(
        [row[~pad] for sw in sweeps for row, pad in zip(sw.target, sw.target_pad, strict=True)]
    )
    context, context_pad = pad_index(
        [row[~pad] for sw in sweeps for row, pad in zip(sw.context, sw.context_pad, strict=True)]
    )
    pred = engine.predict(
        inputs.take(np.repeat(live, [sw.n_masks for sw in sweeps])),
        context,
        context_pad,
        target,
        target_pad,
        np.concatenate([sw.mask_kind for sw in sweeps]),
    )  # (sum M, Nt_max, D)
    o = 0
    for j, (i, sw) in enumerate(zip(live, sweeps, strict=True)):
        m, nt = sw.target.shape
        truth = target_all[j][sw.target].astype(np.float64)  # (M, Nt, D)
        mine = pred[o : o + m, :nt].astype(np.float64)  # (M, Nt, D): this window's masks
        o += m
        err = np.mean((mine - truth) ** 2, axis=-1)  # (M, Nt)
        total = np.zeros(c * p)
        count = np.zeros(c * p)
        use = ~sw.target_pad
        np.add.at(total, sw.target[use], err[use])
        np.add.at(count, sw.target[use], 1.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            cell = np.where(count > 0, total / np.maximum(count, 1.0), np.nan).reshape(c, p)
        outs[i] = cell[:, p - r :]
    return outs


def scored_ends(first_cell: int, n_cells: int, stride: int) -> np.ndarray:
    """Absolute end cells k (k + 1 multiple of `stride`) of the windows that score cells
    first_cell .. first_cell + n_cells - 1; the last one may end after the data."""
    if n_cells <= 0:
        return np.zeros(0, dtype=np.int64)
    last = first_cell + n_cells - 1
    k0 = (first_cell // stride) * stride + stride - 1
    return np.arange(k0, last + stride, stride, dtype=np.int64)  # up to the first end >= last


def first_cell(frame: SensorFrame) -> int:
    """Absolute grid cell of the frame's first row: floor(time / interval)."""
    if frame.n_times == 0:
        raise InputError("the frame has no grid times", hint="ingest readings first")
    t0 = int(frame.time[0].astype("datetime64[ns]").astype(np.int64))
    return t0 // int(pd.Timedelta(frame.interval).value)


def frame_energy(
    engine: TokenEngine,
    frame: SensorFrame,
    normaliser: Normaliser,
    window: WindowSpec,
    spec: EnergySpec,
) -> np.ndarray:
    """Raw energy of every cell of `frame`: (T, C) float64, NaN where nothing was hidden.

    Windows end at the aligned cells of `scored_ends`; each fills the `stride` rows it
    ends with. When the data end inside a stride (the newest rows of a site, most of the
    time), that last, partial stride is scored by the window that ends at the newest row
    (`tail_window_end`): its last patch is then full of readings instead of half future
    rows that no training window ever had, which scored 10-80x the usual energy and raised
    an alarm on the newest data whenever they ended mid-stride. Those rows are provisional:
    once the stride completes, the aligned window scores them (as a stream does).
    """
    t, c = frame.n_times, frame.n_sensors
    out = np.full((t, c), np.nan)
    if t == 0:
        return out
    stride = spec.stride(window)
    scale = window.scales[0]
    k_first = first_cell(frame)
    ends = scored_ends(k_first, t, stride)
    per_call = max(1, int(getattr(engine, "windows_per_call", 1)))
    # shown by a command (`geojepa.progress.shown`), quiet when a benchmark calls it
    with Progress("energy (windows)", len(ends), enabled=None) as bar:
        for lo in range(0, len(ends), per_call):
            jobs = []  # (row_end, win_end, window) of the windows scored in one call
            for k in ends[lo : lo + per_call]:
                row_end = int(k - k_first + 1)  # exclusive; past t for the last, partial stride
                win_end = tail_window_end(row_end, t)
                lo_row = max(win_end - window.span(scale), 0)  # only the window's rows
                win = window_at(
                    frame.slice_time(lo_row, win_end),
                    normaliser,
                    window,
                    win_end - lo_row,
                    scale=scale,
                )
                jobs.append((row_end, win_end, win))
            energies = _energies(engine, [w for _, _, w in jobs], window.patch, spec)
            for (row_end, win_end, _), e in zip(jobs, energies, strict=True):  # e (C, recent)
                cells = np.repeat(e, window.patch * scale, axis=1).T  # (stride, C) to win_end
                a, b = max(row_end - stride, 0), min(row_end, t)
                if a < b:
                    first = win_end - stride  # the frame row of cells[0]
                    out[a:b] = cells[a - first : b - first]
            bar.advance(len(jobs))
    return out


def _energies(
    engine: TokenEngine, windows: list[Window], patch: int, spec: EnergySpec
) -> list[np.ndarray]:
    """`windows_energy`, through the engine's ``energy_memo`` (a dict) when it has one: a
    window whose inputs were scored before (the same values, observed cells, sensor and time
    features, patch and settings) is not scored again (`geojepa detect` scores the training
    period for its thresholds, then the range, which holds the same windows)."""
    memo: dict[bytes, np.ndarray] | None = getattr(engine, "energy_memo", None)
    if memo is None:
        return windows_energy(engine, windows, patch, spec)
    salt = repr((patch, spec)).encode()  # the settings the energy also depends on
    keys = [w.digest(salt) for w in windows]
    todo = [i for i, k in enumerate(keys) if k not in memo]
    if todo:
        fresh = windows_energy(engine, [windows[i] for i in todo], patch, spec)
        for i, e in zip(todo, fresh, strict=True):
            memo[keys[i]] = e
    return [memo[k] for k in keys]


def tail_window_end(row_end: int, n_rows: int) -> int:
    """End row (exclusive) of the window that scores the stride ending at `row_end`: the
    stride's own end, or the newest row when the data stop before it (a partial stride)."""
    return min(int(row_end), int(n_rows))


def row_max(x: np.ndarray) -> np.ndarray:
    """Row-wise max ignoring NaN; NaN where the whole row is NaN. (T, C) -> (T,)."""
    filled = np.where(np.isnan(x), -np.inf, x)
    out = filled.max(axis=1) if x.shape[1] else np.full(x.shape[0], -np.inf)
    out[np.isneginf(out) & np.isnan(x).all(axis=1)] = np.nan
    return out


def with_context(scores: np.ndarray, context_score: np.ndarray | None) -> np.ndarray:
    """Per-sensor scores (T, C) with each context sensor's column (a finite `context_score`
    (C,) entry; NaN entries: sensors scored as they are; None: all scored) set to NaN: a
    context sensor is read as input but has no score, so it never ranks in an attribution
    and never sets a time's score."""
    if context_score is None:
        return scores
    out = np.array(scores, dtype=np.float64, copy=True)
    out[:, ~np.isnan(context_score)] = np.nan
    return out


def scored_row_max(x: np.ndarray, scored: np.ndarray | None) -> np.ndarray:
    """Per-time score (T,) of per-sensor scores x (T, C): the row maximum over the `scored`
    columns (C,) bool (None: all). A row where none of them has a value has no score (NaN):
    context sensors alone never make a time's score (nor its alarm level)."""
    if scored is None or scored.all():
        return row_max(x)
    if not scored.any():
        return np.full(x.shape[0], np.nan)
    return row_max(x[:, scored])
