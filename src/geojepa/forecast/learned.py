"""GeoJEPA forecasters: heads on frozen target-encoder features, on the common contract.

`JepaForecaster` follows ``fit(t, y, drivers) -> self``, ``predict(t_future) -> Forecast``
(`geojepa.forecast.base`). What it reads beside the history comes from a `track_of`
function (the target with the sensors the encoder sees: its drivers, or its whole site)
and from training tracks (other plates, wells, sites):

1. the track of the history, and every context track on its clock (`context_of`: other
   sensors of the same site), are **cut at the history's last time** (`Track.cut`) before
   anything is read from them, whatever those functions returned;
2. training samples: origins every `stride` days, from one window span in, of the cut
   track (targets inside it, so every target precedes the cutoff), of the cut context
   tracks and of every training track; features at each origin
   (`geojepa.forecast.features`: embedding of the window ending there + level features);
   target for each anchor horizon h: the change of the target from its last observed
   value at the origin to its value at ``origin + h`` (linear between readings), divided
   by the window's local scale of the target, through ``asinh`` (default: scaled changes
   are heavy-tailed, a fill lift moves a plate many local scales);
3. the embedding block is reduced to its first `components` principal components (fitted
   on the training features, not their targets); one head (`geojepa.forecast.heads`:
   ridge or MLP) maps features to the K transformed changes, its penalty or early stopping
   chosen on held-out groups (a group is a site, or a record standing alone);
   With a `base` (`geojepa.forecast.hybrid`: the hybrid), the target is instead the
   residual of that classic forecast's change, and its scaled changes are K more features;
4. forecast: the head at the last row of the cut track (plus the base's change, for the
   hybrid); changes between anchors are interpolated linearly (0 at lead 0), held constant
   beyond the last anchor with a model;
   the band is the head's out-of-sample residual quantiles, scaled and interpolated alike.

Falls back to persistence (``fallback_`` says why) when the last window holds no target
reading or no anchor has enough samples. `bind` tells the forecaster the evaluated series'
name and time origin (metadata, never values) so `track_of` can find the right context.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Self

import numpy as np
import pandas as pd

from geojepa.forecast._threads import one_thread
from geojepa.forecast.base import (
    DEFAULT_LEVEL,
    Drivers,
    Forecast,
    Forecaster,
    as_history,
    as_times,
)
from geojepa.forecast.classic import Persistence
from geojepa.forecast.evaluate import Series
from geojepa.forecast.features import N_LEVEL, EncoderFeatures
from geojepa.forecast.heads import MLPHead, RidgeHead, make_head
from geojepa.forecast.hybrid import base_changes
from geojepa.forecast.tracks import Track

log = logging.getLogger(__name__)

TrackOf = Callable[[Series], Track]
"""The history (a `Series` with the bound name and origin) -> its track."""


@dataclass(frozen=True)
class Samples:
    """Training samples: x (N, F) features, y (N, K) scaled changes (NaN: no target)."""

    x: np.ndarray
    y: np.ndarray

    @staticmethod
    def concat(parts: Sequence[Samples], dim: int, k: int) -> Samples:
        if not parts:
            return Samples(np.zeros((0, dim)), np.zeros((0, k)))
        return Samples(np.concatenate([p.x for p in parts]), np.concatenate([p.y for p in parts]))


def origin_rows(track: Track, stride: float, min_rows: int) -> np.ndarray:
    """Rows every `stride` days from `min_rows`, ending at the last row (aligned to it)."""
    step = max(1, round(stride / track.step))
    last = track.n_rows - 1
    if last < min_rows:
        return np.zeros(0, dtype=np.int64)
    return np.arange(last, min_rows - 1, -step, dtype=np.int64)[::-1]


def track_samples(
    features: EncoderFeatures,
    track: Track,
    horizons: Sequence[float],
    stride: float,
    min_rows: int,
    base: str | None = None,
) -> Samples:
    """Samples at origins of `track` whose targets lie inside it (scaled changes; with a
    `base`, scaled residuals of its forecast, and its scaled changes as K more features)."""
    rows = origin_rows(track, stride, min_rows)
    k = len(horizons)
    width = features.dim + (k if base else 0)
    if rows.size == 0:
        return Samples(np.zeros((0, width)), np.zeros((0, k)))
    f = features.at(track, rows)
    t = track.times()[rows]  # (N,)
    future = track.value_at(t[:, None] + np.asarray(horizons, dtype=np.float64)[None, :])  # (N, K)
    x, b = with_base(f.x, f.scale, track, rows, horizons, base)  # (N, F'), (N, K)
    y = (future - f.level[:, None] - b) / f.scale[:, None]
    keep = f.ok & np.isfinite(y).any(axis=1)
    return Samples(x[keep], y[keep])


def with_base(
    x: np.ndarray,
    scale: np.ndarray,
    track: Track,
    rows: np.ndarray,
    horizons: Sequence[float],
    base: str | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Features with the base forecast's scaled changes appended, and those changes.

    x (N, F) -> (N, F + K) and base changes (N, K) in raw units; no base: x unchanged and
    zeros."""
    if not base:
        return x, np.zeros((x.shape[0], len(horizons)))
    b = base_changes(base, track, rows, horizons)  # (N, K)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.nan_to_num(np.arcsinh(b / scale[:, None]))  # (N, K), scale NaN where not ok
    return np.concatenate([x, z], axis=1), b


def group_of(track: Track) -> str:
    """The group of a track's samples: its site (the name's part before '/'), else its name."""
    return track.name.split("/", 1)[0]


class Reducer:
    """Principal components of the embedding block (the first `n_embed` columns), fitted
    on training features without their targets; the level columns pass unchanged.
    `components` None, or not fewer than the block's width or the samples: identity."""

    def __init__(self, n_embed: int, components: int | None) -> None:
        self.n_embed = n_embed
        self.components = components

    def fit(self, x: np.ndarray) -> Self:
        e, c = self.n_embed, self.components
        self.basis_: np.ndarray | None = None
        if c is None or e <= c or x.shape[0] <= c:
            return self
        self.mean_ = x[:, :e].mean(axis=0)  # (E,)
        _, _, vt = np.linalg.svd(x[:, :e] - self.mean_, full_matrices=False)
        self.basis_ = vt[:c].T  # (E, c)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        """(N, F) -> (N, c + N_LEVEL), or unchanged."""
        if self.basis_ is None:
            return x
        e = self.n_embed
        return np.concatenate([(x[:, :e] - self.mean_) @ self.basis_, x[:, e:]], axis=1)


class SampleBank:
    """Samples of fixed training tracks, computed once per (features, track, horizons,
    stride); an entry is used only for the very same track and features objects."""

    def __init__(self) -> None:
        self._store: dict[tuple[int, ...], tuple[Track, EncoderFeatures, Samples]] = {}

    def get(
        self,
        features: EncoderFeatures,
        track: Track,
        horizons: Sequence[float],
        stride: float,
        min_rows: int,
        base: str | None = None,
    ) -> Samples:
        hs = hash(tuple(float(h) for h in horizons))
        key = (id(features), id(track), hs, hash(float(stride)), int(min_rows), hash(base))
        hit = self._store.get(key)
        if hit is not None and hit[0] is track and hit[1] is features:
            return hit[2]
        s = track_samples(features, track, horizons, stride, min_rows, base)
        self._store[key] = (track, features, s)
        return s


class JepaForecaster(Forecaster):
    """A head on frozen JEPA features of the window ending at the cutoff (see module doc).

    `head`: "ridge", "mlp" or "median" (the MLP fitted to the median); `features`: an
    `EncoderFeatures` (shared, it caches), or one per series name (e.g. a run pretrained
    without that series);
    `training`: tracks of other records (used whole); `context_of`: tracks on the same
    clock as the history (other sensors of its site), cut at the history's end before use;
    `horizons`: anchor horizons in days; `stride`: days between training origins;
    `own_history`: also train on earlier origins of the evaluated history;
    `base`: None, or a classic base forecast (`geojepa.forecast.hybrid`, e.g. "linear")
    whose residual the head learns (the hybrid: classic forecast + learned correction).
    """

    name = "jepa"

    def __init__(
        self,
        features: EncoderFeatures | Mapping[str, EncoderFeatures],
        track_of: TrackOf,
        training: Sequence[Track] = (),
        context_of: Callable[[Series], Sequence[Track]] | None = None,
        horizons: Sequence[float] = (7.0, 30.0, 90.0),
        stride: float = 7.0,
        head: str = "ridge",
        own_history: bool = True,
        min_rows: int | None = None,
        level: float = DEFAULT_LEVEL,
        seed: int = 0,
        bank: SampleBank | None = None,
        head_kwargs: dict[str, Any] | None = None,
        asinh: bool = True,
        components: int | None = 16,
        base: str | None = None,
    ) -> None:
        self.features = features
        self.track_of = track_of
        self.training = training
        self.context_of = context_of
        self.horizons = horizons
        self.stride = stride
        self.head = head
        self.own_history = own_history
        self.min_rows = min_rows
        self.level = level
        self.seed = seed
        self.bank = bank
        self.head_kwargs = head_kwargs
        self.asinh = asinh
        self.components = components
        self.base = base
        self.series_name = "history"
        self.origin: pd.Timestamp | None = None

    def bind(self, name: str, origin: pd.Timestamp | None) -> Self:
        """Name and time origin of the series to be forecast (metadata only)."""
        self.series_name = name
        self.origin = origin
        return self

    def _features(self) -> EncoderFeatures:
        if isinstance(self.features, EncoderFeatures):
            return self.features
        if self.series_name not in self.features:
            raise ValueError(f"no encoder features for series {self.series_name!r}")
        return self.features[self.series_name]

    def _make_head(self) -> RidgeHead | MLPHead:
        kw = dict(self.head_kwargs or {})
        kw.setdefault("level", self.level)
        return make_head(self.head, self.seed, **kw)

    def fit(self, t: np.ndarray, y: np.ndarray, drivers: Drivers | None = None) -> Self:
        with one_thread():
            return self._fit(t, y, drivers)

    def _fit(self, t: np.ndarray, y: np.ndarray, drivers: Drivers | None) -> Self:
        t, y, drv = as_history(t, y, drivers)
        self._persist = Persistence(level=self.level).fit(t, y)
        self.fallback_: str | None = None
        feats = self._features()
        hs = np.array(sorted(float(h) for h in self.horizons))
        self.horizons_ = hs
        history = Series(self.series_name, t, y, drv, self.origin)
        track = self.track_of(history).cut(float(t[-1]))
        self.track_ = track
        min_rows = self.min_rows if self.min_rows is not None else feats.spec.span(1)
        last = track.n_rows - 1
        if last < 0:
            self.fallback_ = "no grid row at or before the cutoff"
            return self._fell_back()
        now = feats.at(track, np.array([last]))
        if not now.ok[0]:
            self.fallback_ = "no target reading in the window ending at the cutoff"
            return self._fell_back()
        parts: list[tuple[str, Samples]] = []
        bank = self.bank or SampleBank()
        for tr in self.training:
            parts.append(
                (group_of(tr), bank.get(feats, tr, list(hs), self.stride, min_rows, self.base))
            )
        t_end = float(t[-1])
        same_clock = [c.cut(t_end) for c in self.context_of(history)] if self.context_of else []
        if self.own_history:
            same_clock.append(track)
        for tr in same_clock:
            samples = track_samples(feats, tr, list(hs), self.stride, min_rows, self.base)
            parts.append((group_of(tr), samples))
        now_x, now_base = with_base(
            now.x, now.scale, track, np.array([last]), list(hs), self.base
        )  # (1, F'), (1, K)
        data = Samples.concat([p for _, p in parts], now_x.shape[1], hs.size)
        names = sorted({g for g, _ in parts})
        groups = np.concatenate(
            [np.full(p.x.shape[0], names.index(g), dtype=np.int64) for g, p in parts]
            or [np.zeros(0, dtype=np.int64)]
        )
        self.n_samples_ = int(data.x.shape[0])
        self.n_groups_ = len(names)
        self.reducer_ = Reducer(feats.dim - N_LEVEL, self.components).fit(data.x)
        model = self._make_head()
        if self.n_samples_:
            y_fit = np.arcsinh(data.y) if self.asinh else data.y
            model.fit(self.reducer_.transform(data.x), y_fit, groups)
        self.head_ = model
        has = (getattr(model, "n_", np.zeros(hs.size)) >= _min_samples(model)) & (
            self.n_samples_ > 0
        )
        if not np.any(has):
            self.fallback_ = f"{self.n_samples_} training samples: too few for any horizon"
            return self._fell_back()
        self.anchors_ = hs[has]
        u = model.predict(self.reducer_.transform(now_x))[0][has]  # (K',)
        band = np.nan_to_num(model.band_[has])  # (K', 2) residual quantiles
        back = np.sinh if self.asinh else (lambda v: v)
        scale = float(now.scale[0])
        self.t_last_ = float(track.times()[last])
        self.y_last_ = float(now.level[0])
        self.change_ = now_base[0][has] + back(u) * scale
        self.lower_ = (back(u + band[:, 0]) - back(u)) * scale  # offsets from the prediction
        self.upper_ = (back(u + band[:, 1]) - back(u)) * scale
        return self

    def _fell_back(self) -> Self:
        log.info("%s: %s; using persistence", self.name, self.fallback_)
        return self

    def predict(self, t_future: np.ndarray) -> Forecast:
        if self.fallback_ is not None:
            return replace(self._persist.predict(t_future), method=self.name)
        tf = as_times(t_future)
        lead = np.clip(tf - self.t_last_, 0.0, None)
        grid = np.concatenate([[0.0], self.anchors_])

        def along(v: np.ndarray) -> np.ndarray:
            return np.interp(lead, grid, np.concatenate([[0.0], v]))  # held beyond the ends

        pred = self.y_last_ + along(self.change_)
        lo = pred + along(self.lower_)
        hi = pred + along(self.upper_)
        return Forecast(tf, pred, np.fmin(lo, pred), np.fmax(hi, pred), self.level, self.name)


def _min_samples(model: RidgeHead | MLPHead) -> int:
    return int(model.min_samples)
