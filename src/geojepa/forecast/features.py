"""Features for learned forecasting heads: frozen target-encoder embeddings at an origin.

For an origin row r of a `Track` the features describe the window that ends with row r
(rows ``r - L*k + 1 .. r``, earlier rows padded as unobserved) and nothing later:

- the target sensor's token embeddings pooled over its last `recent_patches` valid patches
  (D), and the whole window's pooled vector over all valid tokens (D) — from the run's
  **target encoder** (eval mode, no gradients);
- level features: the target's last observed value in normalised units, how many steps
  ago it was read (/ L), its change over the last patch and over the window in units of
  the window's **local scale** (q90 - q10 of the target's readings in the window, at least
  `LOCAL_FLOOR` of the normaliser's scale), and log(local / normaliser scale).

The local scale is also what heads divide the target's future change by, so one head can
learn across plates of different sizes, wells and sites.

The normaliser is fitted causally: on the track's rows before ``q`` (at most `NORM_SPANS`
window spans of them), where ``q`` is the
origin's end row (r + 1) rounded down to a multiple of `refit_every` (rows before the end
row itself when r + 1 < `refit_every`). So features at an origin are a function of the
track's rows up to it alone, whatever later rows exist, and the same origin gives the same
features in every cut of the track. Two caches, both exact: features by a digest of the
track's sensors and every row up to the origin (so successive cutoffs of one record reuse
their earlier origins), embeddings by the bytes of the window the encoder reads.

`with_embedding=False` gives the level features alone (no model is run): the ablation that
shows what the embedding adds.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from geojepa.forecast._threads import torch_threads
from geojepa.forecast.tracks import Track
from geojepa.frame import SensorFrame
from geojepa.windows import (
    Normaliser,
    Window,
    WindowSpec,
    sensor_features,
    time_features,
    window_at,
)

if TYPE_CHECKING:
    from geojepa.checkpoint import LoadedRun

log = logging.getLogger(__name__)

N_LEVEL = 5
"""Level features: last value, age of the last reading, change over the last patch and the
window (in local units), log of the local over the normaliser's scale."""
LOCAL_FLOOR = 0.05
"""The local scale is at least this fraction of the normaliser's scale."""
CLIP = 20.0
NORM_SPANS = 20
"""The causal normaliser reads at most this many window spans before its end row."""


@dataclass(frozen=True)
class Features:
    """Features at N origins of one track.

    x (N, F) float64; level (N,) the target's last observed raw value at or before each
    origin; scale (N,) the window's local scale of the target; center (N,) the target's
    normaliser centre; ok (N,) bool: the window and the normaliser's rows hold an observed
    target value.
    """

    x: np.ndarray
    level: np.ndarray
    scale: np.ndarray
    center: np.ndarray
    ok: np.ndarray


class EncoderFeatures:
    """Embedding + level features at origins of tracks, from a trained run (or none).

    `run` None (or `with_embedding` False) gives level features only; `spec` then sets the
    window (default: the run's, else length 64 / patch 8). `threads`: torch threads while
    encoding (None: unchanged).
    """

    def __init__(
        self,
        run: LoadedRun | None,
        recent_patches: int = 2,
        refit_every: int = 32,
        batch_size: int = 64,
        with_embedding: bool = True,
        spec: WindowSpec | None = None,
        threads: int | None = 1,
    ) -> None:
        self.run = run
        self.threads = threads
        self.recent_patches = recent_patches
        self.refit_every = refit_every
        self.batch_size = batch_size
        self.with_embedding = with_embedding and run is not None
        base = spec or (run.config.window if run is not None else WindowSpec(length=64, patch=8))
        self.spec = replace(base, scales=(base.scales[0],))
        self._cache: dict[bytes, np.ndarray] = {}
        self._rows: dict[bytes, tuple[np.ndarray, float, float, float, bool]] = {}
        self.hits = 0
        self.misses = 0
        self.row_hits = 0

    @property
    def dim(self) -> int:
        """Number of features F."""
        d = int(self.run.config.model.dim) if self.with_embedding and self.run else 0
        return 2 * d + N_LEVEL

    def _norm_end(self, end: int) -> int:
        r = self.refit_every
        return (end // r) * r if end >= r else end

    def at(self, track: Track, rows: np.ndarray) -> Features:
        """Features at origin `rows` (N,) of `track` (each in 0..T-1)."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        n = rows.size
        if n and (rows.min() < 0 or rows.max() >= track.n_rows):
            raise ValueError(f"origin rows outside 0..{track.n_rows - 1}")
        keys = self._prefix_keys(track, rows)
        todo = [i for i, k in enumerate(keys) if k not in self._rows]
        if todo:
            fresh = self._compute(track, rows[todo])
            for j, i in enumerate(todo):
                self._rows[keys[i]] = (
                    fresh.x[j],
                    float(fresh.level[j]),
                    float(fresh.scale[j]),
                    float(fresh.center[j]),
                    bool(fresh.ok[j]),
                )
        self.row_hits += n - len(todo)
        got = [self._rows[k] for k in keys]
        return Features(
            x=np.array([g[0] for g in got]).reshape(n, self.dim),
            level=np.array([g[1] for g in got], dtype=np.float64),
            scale=np.array([g[2] for g in got], dtype=np.float64),
            center=np.array([g[3] for g in got], dtype=np.float64),
            ok=np.array([g[4] for g in got], dtype=bool),
        )

    def _prefix_keys(self, track: Track, rows: np.ndarray) -> list[bytes]:
        """Per origin, a digest of everything its features depend on: the track's sensors,
        target column and rows 0..r (values, observed, times), chained row by row."""
        if rows.size == 0:
            return []
        f = track.frame
        h = hashlib.blake2b(digest_size=16)
        h.update(sensor_features(f.sensors).tobytes())
        h.update(np.array([track.target, int(f.interval.value)], dtype=np.int64).tobytes())
        need = int(rows.max()) + 1
        vals = np.ascontiguousarray(np.where(f.observed[:need], f.values[:need], 0.0))
        obs = np.ascontiguousarray(f.observed[:need])
        times = np.ascontiguousarray(f.time[:need].astype("datetime64[ns]").astype(np.int64))
        want = set(int(r) for r in rows)
        at: dict[int, bytes] = {}
        for r in range(need):
            h.update(vals[r].tobytes())
            h.update(obs[r].tobytes())
            h.update(times[r].tobytes())
            if r in want:
                at[r] = h.copy().digest()
        return [at[int(r)] for r in rows]

    def _compute(self, track: Track, rows: np.ndarray) -> Features:
        n = rows.size
        frame = track.frame
        span = self.spec.span(self.spec.scales[0])
        raw_last, _ = track.last_observed()
        x = np.zeros((n, self.dim))
        scale = np.ones(n)
        center = np.zeros(n)
        ok = np.zeros(n, dtype=bool)
        windows: list[tuple[int, Window]] = []
        norms: dict[int, Normaliser] = {}
        sensor_feats = sensor_features(frame.sensors)  # (C, F) once per call
        col = track.target
        for i, r in enumerate(rows):
            end = int(r) + 1
            q = self._norm_end(end)
            lo_q = max(0, q - NORM_SPANS * span)
            if not frame.observed[lo_q:q, col].any():
                continue  # no target reading to normalise by: not a usable origin (ok False)
            if q not in norms:
                norms[q] = Normaliser.fit(_rows(frame, lo_q, q))
            nm = norms[q]
            lo = max(0, end - span)
            sub = _rows(frame, lo, end)
            w = self._window(sub, nm, sensor_feats, end)
            center[i] = float(nm.center[col])
            obs_raw = sub.observed[:, col]
            raw = np.where(obs_raw, sub.values[:, col], np.nan).astype(np.float64)  # (<= L,)
            x[i, -N_LEVEL:], scale[i] = _level(
                raw, obs_raw, self.spec.patch, center[i], float(nm.scale[col])
            )
            ok[i] = bool(w.observed[col].any())
            if self.with_embedding:
                windows.append((i, w))
        if windows:
            x[:, : self.dim - N_LEVEL] = self._embed(windows, track.target, n)
        level = raw_last[rows] if n else np.zeros(0)
        ok &= np.isfinite(level)
        return Features(x=x, level=level, scale=scale, center=center, ok=ok)

    def _window(
        self, sub: SensorFrame, nm: Normaliser, sensor_feats: np.ndarray, end: int
    ) -> Window:
        """The window of rows [end - span, end) of the track; `sub` holds its rows inside
        the track (rows before the track's start are unobserved padding)."""
        spec = self.spec
        k = spec.scales[0]
        if k != 1:  # coarse windows: the general (slower) path
            return window_at(sub, nm, spec, sub.n_times, k)
        span = spec.span(1)
        pad = span - sub.n_times
        z = nm.transform(sub)  # (t, C), 0 where unobserved
        c = z.shape[1]
        values = np.zeros((span, c), dtype=np.float32)
        observed = np.zeros((span, c), dtype=bool)
        values[pad:] = z
        observed[pad:] = sub.observed
        step = np.timedelta64(int(sub.interval.value), "ns")
        first = sub.time[0].astype("datetime64[ns]") - step * pad
        times = first + step * np.arange(span, dtype=np.int64)
        return Window(
            values=np.ascontiguousarray(values.T),  # (C, L)
            observed=np.ascontiguousarray(observed.T),
            sensor_feats=sensor_feats,
            time_feats=time_features(times, spec.patch),  # (P, Ft)
            start=end - span,
            scale=1,
            times=times,
        )

    def _embed(self, windows: list[tuple[int, Window]], col: int, n: int) -> np.ndarray:
        """(n, 2D) target and pooled embeddings; rows without a window stay 0."""
        import torch

        from geojepa.masking import full_batch

        assert self.run is not None
        d = int(self.run.config.model.dim)
        out = np.zeros((n, 2 * d))
        todo: list[tuple[int, Window, bytes]] = []
        for i, w in windows:
            key = w.digest(np.int64(col).tobytes())
            hit = self._cache.get(key)
            if hit is not None:
                out[i] = hit
                self.hits += 1
            else:
                todo.append((i, w, key))
        self.misses += len(todo)
        model = self.run.model
        model.eval()
        k = self.recent_patches
        with torch.no_grad(), torch_threads(self.threads):
            for lo in range(0, len(todo), self.batch_size):
                part = todo[lo : lo + self.batch_size]
                batch = full_batch([w for _, w, _ in part], self.spec.patch)
                tokens = model.embed(batch).float()  # (B, C, P, D)
                valid = batch.token_valid.reshape(tokens.shape[:3])  # (B, C, P)
                vt = valid[:, col, :]  # (B, P)
                # the last k valid patches of the target: rank valid patches from the end
                rank = torch.flip(torch.cumsum(torch.flip(vt.long(), [1]), 1), [1])  # (B, P)
                recent = vt & (rank <= k)
                wt = recent.to(tokens.dtype)[..., None]  # (B, P, 1)
                tgt = (tokens[:, col] * wt).sum(1) / wt.sum(1).clamp_min(1.0)  # (B, D)
                wa = valid.to(tokens.dtype)[..., None]  # (B, C, P, 1)
                pooled = (tokens * wa).sum((1, 2)) / wa.sum((1, 2)).clamp_min(1.0)  # (B, D)
                vec = torch.cat([tgt, pooled], dim=1).double().numpy()  # (B, 2D)
                for (i, _, key), v in zip(part, vec, strict=True):
                    out[i] = v
                    self._cache[key] = v
        return out


def _rows(frame: SensorFrame, lo: int, hi: int) -> SensorFrame:
    return frame.slice_time(lo, hi)


def _level(
    raw: np.ndarray, obs: np.ndarray, patch: int, center: float, scale: float
) -> tuple[np.ndarray, float]:
    """Level features (N_LEVEL,) of the target's window and its local scale.

    raw (L,) target values in sensor units (NaN where unobserved), obs (L,) bool;
    `center`/`scale` the causal normaliser's. Returns ([last normalised, age / L, change over
    the last patch / local, change over the window / local, log(local / scale)], local),
    local = max(q90 - q10 of the window's readings, FLOOR * scale).
    """
    length = raw.size
    idx = np.where(obs, np.arange(length), -1)
    idx = np.maximum.accumulate(idx)
    floor = LOCAL_FLOOR * scale
    if idx[-1] < 0:
        return np.zeros(N_LEVEL), floor
    vals = raw[obs]
    local = max(float(np.quantile(vals, 0.9) - np.quantile(vals, 0.1)), floor)
    ff = np.where(idx >= 0, raw[np.clip(idx, 0, None)], np.nan)
    last = float(ff[-1])
    prev = ff[-1 - patch] if length > patch else np.nan
    d_patch = (last - float(prev)) / local if np.isfinite(prev) else 0.0
    first = float(vals[0])
    z_last = float(np.clip((last - center) / scale, -CLIP, CLIP))
    age = float(length - 1 - idx[-1]) / length
    feats = np.array([z_last, age, d_patch, (last - first) / local, np.log(local / scale)])
    return feats, local
