"""The embedding-density score along a frame: how unlike its training embeddings each
sensor's newest patch looks to the target encoder.

For each window (ending every `patch` rows), the target encoder embeds the whole window;
each sensor's embedding of its last patch is compared with that sensor's training
embeddings through a Gaussian model: the Mahalanobis distance under a Ledoit-Wolf shrunk
covariance of the standardised embeddings (`DensityModel`). The window's distance scores
the `patch` rows it ends with.

Guarantees: `DensityModel.fit` reads only the embeddings it is given (callers pass training
windows); scoring is numpy only (no scikit-learn), so the edge scorer can run it; a sensor
with fewer than `MIN_FIT` training embeddings, or whose last patch holds no reading, scores
NaN; `frame_density` aligns its windows to the absolute grid and reads each window's rows only,
so a slice of a frame scores its rows as the whole frame does (away from the slice's first
window span and its last, provisional stride). The edge scorer (`geojepa.edge.score`,
`geojepa.edge.watch`) scores a density bundle with these same functions: `DensityModel`
saved by ``geojepa export --score density``, `window_embeddings` on each window and
`density_stride` for where windows end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geojepa.energy import (
    TokenEngine,
    first_cell,
    relative_window,
    scored_ends,
    stack_windows,
    tail_window_end,
)
from geojepa.frame import SensorFrame
from geojepa.progress import Progress
from geojepa.windows import Normaliser, Window, WindowSpec, window_at

MIN_FIT = 3
"""Training embeddings a sensor needs for its density to be fitted."""


def window_ends(n_rows: int, stride: int) -> np.ndarray:
    """(W,) exclusive end rows of windows every `stride` rows, the last one at `n_rows`."""
    ends = np.arange(stride, n_rows + 1, stride, dtype=np.int64)
    if n_rows > 0 and (ends.size == 0 or ends[-1] != n_rows):
        ends = np.append(ends, n_rows)
    return ends


def density_stride(window: WindowSpec) -> int:
    """Grid cells between the density's scoring windows: one patch (`aligned_ends`)."""
    return int(window.patch)


def window_embeddings(engine: TokenEngine, windows: Sequence[Window], patch: int) -> np.ndarray:
    """(B, C, D) float64 the target encoder's embedding of each sensor's last patch in each
    of `windows` (one sensor set and length); NaN where that patch holds no reading."""
    c = windows[0].n_sensors
    inputs = stack_windows(windows, patch)
    rep = engine.target_repr(inputs)  # (B, N, D), N = C * P
    b, n, d = rep.shape
    p = n // c
    last = rep.reshape(b, c, p, d)[:, :, -1, :].astype(np.float64)  # (B, C, D)
    valid = inputs.token_valid.reshape(b, c, p)[:, :, -1]  # (B, C)
    return np.where(valid[..., None], last, np.nan)


def last_patch_embeddings(
    engine: TokenEngine,
    frame: SensorFrame,
    normaliser: Normaliser,
    window: WindowSpec,
    ends: Sequence[int] | np.ndarray,
    relative: bool = False,
    batch: int = 32,
) -> np.ndarray:
    """(W, C, D) the target encoder's embedding of each sensor's last patch in the window
    ending at each of `ends`; NaN where that patch holds no reading. `relative`: windows
    made window-relative first (`geojepa.energy.relative_window`)."""
    c = frame.n_sensors
    out: list[np.ndarray] = []
    # shown by a command (`geojepa.progress.shown`), quiet when a benchmark calls it
    with Progress("embeddings (windows)", len(ends), enabled=None) as bar:
        for i in range(0, len(ends), batch):
            wins = [window_at(frame, normaliser, window, int(e)) for e in ends[i : i + batch]]
            if relative:
                wins = [relative_window(w, window.patch) for w in wins]
            out.append(window_embeddings(engine, wins, window.patch))  # (B, C, D)
            bar.advance(len(wins))
    if not out:
        return np.zeros((0, c, 0))
    return np.concatenate(out)


@dataclass(frozen=True)
class DensityModel:
    """Per-sensor Gaussians of training embeddings: mean and std (C, D) standardise an
    embedding, `location` (C, D) and `precision` (C, D, D) are the Ledoit-Wolf fit on the
    standardised rows; `fitted` (C,) False where a sensor had too few embeddings."""

    mean: np.ndarray
    std: np.ndarray
    location: np.ndarray
    precision: np.ndarray
    fitted: np.ndarray

    @classmethod
    def fit(cls, emb: np.ndarray) -> DensityModel:
        """From training embeddings (W, C, D); NaN rows (no reading) are left out."""
        from sklearn.covariance import LedoitWolf

        _, c, d = emb.shape  # (W, C, D)
        mean = np.zeros((c, d))
        std = np.ones((c, d))
        location = np.zeros((c, d))
        precision = np.zeros((c, d, d))
        fitted = np.zeros(c, dtype=bool)
        for j in range(c):
            x = emb[:, j]
            x = x[np.isfinite(x).all(axis=1)]  # (N, D)
            if len(x) < MIN_FIT:
                continue
            mean[j] = x.mean(axis=0)
            s = x.std(axis=0)
            std[j] = np.where(s > 1e-12, s, 1.0)
            lw = LedoitWolf().fit((x - mean[j]) / std[j])
            location[j] = lw.location_
            precision[j] = lw.precision_
            fitted[j] = True
        return cls(mean, std, location, precision, fitted)

    def score(self, emb: np.ndarray) -> np.ndarray:
        """Mahalanobis distances (W, C) of embeddings (W, C, D); NaN where an embedding is
        NaN or its sensor's density is not fitted."""
        z = (emb - self.mean[None]) / self.std[None] - self.location[None]  # (W, C, D)
        m = np.einsum("wcd,cde,wce->wc", z, self.precision, z)  # (W, C)
        out = np.sqrt(np.maximum(m, 0.0))
        return np.where(self.fitted[None, :] & np.isfinite(out), out, np.nan)

    def save(self, path: str | Path) -> None:
        np.savez(
            path,
            mean=self.mean,
            std=self.std,
            location=self.location,
            precision=self.precision,
            fitted=self.fitted,
        )

    @classmethod
    def load(cls, path: str | Path) -> DensityModel:
        with np.load(path) as z:
            return cls(z["mean"], z["std"], z["location"], z["precision"], z["fitted"])


def aligned_ends(frame: SensorFrame, patch: int) -> tuple[np.ndarray, np.ndarray]:
    """The windows that score `frame` (`geojepa.energy.scored_ends` on the absolute grid):
    (row_ends (W,), the exclusive end row of the `patch` rows each scores, past the data for
    a last partial stride; win_ends (W,), where each window ends: the same, or the newest
    row for that last stride, `tail_window_end`)."""
    t = frame.n_times
    if t == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    k_first = first_cell(frame)
    row_ends = scored_ends(k_first, t, patch) - k_first + 1  # (W,) exclusive
    win_ends = np.array([tail_window_end(int(e), t) for e in row_ends], dtype=np.int64)
    return row_ends, win_ends


def spread(scores: np.ndarray, row_ends: np.ndarray, frame: SensorFrame, patch: int) -> np.ndarray:
    """(T, C) cells from window scores (W, C): window w scores the `patch` rows ending at
    ``row_ends[w]``; NaN where a cell is unobserved."""
    t = frame.n_times
    out = np.full((t, frame.n_sensors), np.nan)
    for w, e in enumerate(row_ends):
        a, b = max(int(e) - patch, 0), min(int(e), t)
        if a < b:
            out[a:b] = scores[w]
    return np.where(frame.observed, out, np.nan)


def frame_density(
    engine: TokenEngine,
    frame: SensorFrame,
    normaliser: Normaliser,
    window: WindowSpec,
    model: DensityModel,
    relative: bool = False,
) -> np.ndarray:
    """Raw density score of every cell of `frame`: (T, C), NaN where unobserved.

    Windows end on the absolute grid every `patch` cells (`aligned_ends`, as the energy's
    do), so a slice of a site scores its rows as the whole site does; each window scores
    the `patch` rows it ends with. A last, partial stride is scored by the window ending at
    the newest row, provisionally, as the energy does.
    """
    stride = density_stride(window)
    row_ends, win_ends = aligned_ends(frame, stride)
    if row_ends.size == 0:
        return np.full((frame.n_times, frame.n_sensors), np.nan)
    emb = last_patch_embeddings(engine, frame, normaliser, window, win_ends, relative)  # (W, C, D)
    return spread(model.score(emb), row_ends, frame, stride)


def fit_density(
    engine: TokenEngine,
    train: SensorFrame,
    normaliser: Normaliser,
    window: WindowSpec,
    folds: int = 5,
) -> tuple[DensityModel, np.ndarray]:
    """The density of the training frame's embeddings, and the training cells' raw scores
    (T, C) for calibrating thresholds, each window scored by a model fitted WITHOUT its own
    contiguous block of windows (`folds` blocks).

    Scored by the model fitted on them, the training windows would look closer than new
    data does (with about as many windows as dimensions, most new normal windows exceed
    the training q99), and thresholds set on those scores would flood a site with false
    alarms; cross-fitted scores are out of sample, as the scores to be thresholded are.
    The windows are the scoring windows (`aligned_ends`)."""
    stride = density_stride(window)
    row_ends, win_ends = aligned_ends(train, stride)
    emb = last_patch_embeddings(engine, train, normaliser, window, win_ends)  # (W, C, D)
    held = held_out_scores(emb, folds)  # (W, C)
    return DensityModel.fit(emb), spread(held, row_ends, train, stride)


def held_out_scores(emb: np.ndarray, folds: int = 5) -> np.ndarray:
    """(W, C) the density score of each window's embeddings (W, C, D) under a model fitted
    without its contiguous block of windows (`folds` blocks); NaN where that model has too
    few embeddings of a sensor."""
    w = emb.shape[0]
    held = np.full(emb.shape[:2], np.nan)  # (W, C)
    for block in np.array_split(np.arange(w), max(1, min(folds, w))):
        if 0 < block.size < w:
            rest = np.setdiff1d(np.arange(w), block)
            held[block] = DensityModel.fit(emb[rest]).score(emb[block])
    return held


__all__ = [
    "MIN_FIT",
    "DensityModel",
    "aligned_ends",
    "density_stride",
    "fit_density",
    "frame_density",
    "held_out_scores",
    "last_patch_embeddings",
    "spread",
    "window_embeddings",
    "window_ends",
]
