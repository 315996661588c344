"""Windows over a `SensorFrame`: robust normalisation and fixed-length multi-sensor windows.

A `Window` is what one training example or one scored position is: values (C, L) normalised
and 0 where missing, the observed mask (C, L), the sensors' continuous codes (C, F) and the
patches' time codes (P, Ft). Multi-scale windows (`WindowSpec.scales`) average k grid steps
per window step, so one window of length L spans L*k grid steps (slow dynamics).

Guarantees:

- `Normaliser.fit` sees only rows before `end`; median / (IQR / 1.349) per sensor with a
  floor, so constant sensors do not blow up; it is stored as plain JSON (`to_dict`);
- `transform` matches sensors by id (any column order), returns 0.0 where not observed,
  never NaN, and clips to +-`clip` so one wild reading cannot dominate a batch;
- windows never read outside [start, end) of the frame; windows with an observed fraction
  below `min_observed` are skipped, counted and logged, never silently;
- with ``WindowSpec.level == "window"`` each sensor's values in a window are measured from
  that window's median of its observed cells (then clipped); the edge scorer cuts windows
  with this same code, so it sees what the model saw in training;
- nothing is interpolated: a missing cell stays unobserved (coarse cells are observed when
  any of their grid cells is, and hold the mean of those).

numpy only: importing this module does not import torch.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from geojepa.codes import N_SENSOR_FEATS, N_TIME_FEATS, sensor_features, time_features
from geojepa.errors import InputError
from geojepa.frame import SensorFrame

__all__ = [
    "N_SENSOR_FEATS",
    "N_TIME_FEATS",
    "Normaliser",
    "Window",
    "WindowDataset",
    "WindowSpec",
    "sensor_features",
    "time_features",
    "window_at",
]

log = logging.getLogger(__name__)

IQR_TO_SIGMA = 1.349
DEFAULT_CLIP = 20.0


@dataclass(frozen=True)
class Normaliser:
    """Per-sensor robust centre and scale. Shapes: center (C,), scale (C,) float64."""

    sensor_ids: tuple[str, ...]
    center: np.ndarray
    scale: np.ndarray
    clip: float = DEFAULT_CLIP

    @classmethod
    def fit(
        cls, frame: SensorFrame, end: int | None = None, clip: float = DEFAULT_CLIP
    ) -> Normaliser:
        """Fit on rows < `end` (all rows when None). Unseen sensors get centre 0, scale 1.

        Scale = IQR / 1.349; when that is ~0 (a rain gauge that is mostly 0) the standard
        deviation; when that is ~0 too, 1.0. Floored at 1e-6 * (1 + |median|).
        """
        stop = frame.n_times if end is None else max(0, min(int(end), frame.n_times))
        vals = frame.values[:stop]
        obs = frame.observed[:stop]
        c = frame.n_sensors
        center = np.zeros(c, dtype=np.float64)
        scale = np.ones(c, dtype=np.float64)
        unseen = []
        for j in range(c):
            x = vals[obs[:, j], j].astype(np.float64)
            if x.size == 0:
                unseen.append(frame.sensor_ids[j])
                continue
            med = float(np.median(x))
            q75, q25 = np.percentile(x, [75, 25])
            s = float(q75 - q25) / IQR_TO_SIGMA
            floor = 1e-6 * (1.0 + abs(med))
            if s <= floor:
                s = float(np.std(x))
            if s <= floor:
                s = 1.0
            center[j] = med
            scale[j] = s
        if unseen:
            log.warning(
                "normaliser: %d sensor(s) have no readings in the fitting period (%s); "
                "they use centre 0 and scale 1",
                len(unseen),
                ", ".join(unseen[:10]),
            )
        return cls(tuple(frame.sensor_ids), center, scale, float(clip))

    def _columns(self, frame: SensorFrame) -> np.ndarray:
        index = {s: i for i, s in enumerate(self.sensor_ids)}
        missing = [s for s in frame.sensor_ids if s not in index]
        if missing:
            raise InputError(
                f"sensors not known to the model's normaliser: {missing[:5]}",
                hint="use a site with the sensors the model was trained on, or retrain "
                "(the normaliser knows: " + ", ".join(self.sensor_ids[:10]) + ")",
            )
        return np.array([index[s] for s in frame.sensor_ids], dtype=np.int64)

    def transform(self, frame: SensorFrame, clip: bool = True) -> np.ndarray:
        """Normalised values (T, C) float32 in the frame's column order; 0.0 where unobserved.

        `clip` False leaves values beyond +-`self.clip` as they are (a window that is
        re-levelled clips after subtracting its own level)."""
        cols = self._columns(frame)
        z = (frame.values.astype(np.float64) - self.center[cols]) / self.scale[cols]
        if clip:
            z = np.clip(z, -self.clip, self.clip)
        z = np.where(frame.observed, z, 0.0)
        return z.astype(np.float32)

    def inverse(self, values: np.ndarray, sensor_ids: Sequence[str]) -> np.ndarray:
        """Back to sensor units: values (..., C) in the order of `sensor_ids`."""
        index = {s: i for i, s in enumerate(self.sensor_ids)}
        cols = np.array([index[s] for s in sensor_ids], dtype=np.int64)
        return np.asarray(values, dtype=np.float64) * self.scale[cols] + self.center[cols]

    def to_dict(self) -> dict[str, Any]:
        return {
            "sensor_ids": list(self.sensor_ids),
            "center": [float(v) for v in self.center],
            "scale": [float(v) for v in self.scale],
            "clip": float(self.clip),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Normaliser:
        ids = tuple(str(s) for s in d["sensor_ids"])
        center = np.asarray(d["center"], dtype=np.float64)
        scale = np.asarray(d["scale"], dtype=np.float64)
        if center.shape != (len(ids),) or scale.shape != (len(ids),) or np.any(scale <= 0):
            raise InputError(
                "normaliser record is inconsistent (lengths differ or a scale is not positive)",
                hint="the checkpoint or export metadata is damaged; retrain or re-export",
            )
        return cls(ids, center, scale, float(d.get("clip", DEFAULT_CLIP)))


LEVELS = ("site", "window")


@dataclass(frozen=True)
class WindowSpec:
    """Window geometry in window steps. One window step = `scale` grid steps.

    length L (multiple of patch), stride between window starts, patch length, minimum
    observed fraction, and the scales (1 = the grid; k > 1 averages k grid steps).

    `level`: what a value is measured from. ``"site"``: the normaliser's training median
    (a window carries its sensors' absolute levels). ``"window"``: each sensor's median over
    the window's observed cells, subtracted before clipping (the model sees shapes, not
    levels: a settling plate or a drawn-down well that leaves its training range is not
    out of distribution for that reason alone; levels stay available to the forecasting
    heads, which read them from the readings).
    """

    length: int = 128
    stride: int = 32
    patch: int = 16
    min_observed: float = 0.25
    scales: tuple[int, ...] = (1,)
    level: str = "site"

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise InputError(
                f"window level {self.level!r} is not one of {list(LEVELS)}",
                hint="use 'site' (absolute levels) or 'window' (each window's own median)",
            )
        if self.patch <= 0 or self.length <= 0 or self.length % self.patch:
            raise InputError(
                f"window length {self.length} is not a positive multiple of patch {self.patch}",
                hint="choose length = k * patch",
            )
        if self.stride <= 0:
            raise InputError(f"window stride {self.stride} must be positive", hint="use >= 1")
        if not 0.0 <= self.min_observed <= 1.0:
            raise InputError(
                f"min_observed {self.min_observed} is outside [0, 1]", hint="use e.g. 0.25"
            )
        scales = tuple(int(s) for s in self.scales)
        if not scales or any(s < 1 for s in scales):
            raise InputError(f"window scales {self.scales} must be >= 1", hint="use e.g. [1, 4]")
        object.__setattr__(self, "scales", scales)

    @property
    def n_patches(self) -> int:
        return self.length // self.patch

    def span(self, scale: int = 1) -> int:
        """Grid steps covered by one window at `scale`."""
        return self.length * scale

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["scales"] = list(self.scales)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> WindowSpec:
        known = {"length", "stride", "patch", "min_observed", "scales", "level"}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InputError(
                f"unknown window setting(s) {unknown}", hint="known: " + ", ".join(sorted(known))
            )
        kw = dict(d)
        if "scales" in kw:
            kw["scales"] = tuple(kw["scales"])
        return cls(**kw)


@dataclass(frozen=True)
class Window:
    """One multi-sensor window. C sensors, L steps, P = L // patch patches.

    values (C, L) float32 normalised, 0 where missing; observed (C, L) bool;
    sensor_feats (C, F) float32; time_feats (P, Ft) float32; start: grid index of the
    first step; scale: grid steps per window step; times (L,) datetime64 of each step.
    """

    values: np.ndarray
    observed: np.ndarray
    sensor_feats: np.ndarray
    time_feats: np.ndarray
    start: int
    scale: int = 1
    times: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype="datetime64[ns]"))

    @property
    def n_sensors(self) -> int:
        return int(self.values.shape[0])

    @property
    def length(self) -> int:
        return int(self.values.shape[1])

    @property
    def observed_fraction(self) -> float:
        return float(self.observed.mean()) if self.observed.size else 0.0

    def digest(self, salt: bytes = b"") -> bytes:
        """A key for memos of what a model makes of this window: a digest of its values,
        observed cells, sensor and time features (dtypes and shapes included) and `salt`
        (the caller's other inputs: settings, a column)."""
        h = hashlib.blake2b(salt, digest_size=16)
        for a in (self.values, self.observed, self.sensor_feats, self.time_feats):
            arr = np.ascontiguousarray(a)
            h.update(f"{arr.dtype}{arr.shape}".encode())
            h.update(arr.tobytes())
        return h.digest()


def _coarsen(
    values: np.ndarray, observed: np.ndarray, times: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Average k consecutive steps. values/observed (k*L, C) -> (L, C); times -> (L,) first."""
    if k == 1:
        return values, observed, times
    n, c = values.shape
    length = n // k
    v = values[: length * k].reshape(length, k, c)
    o = observed[: length * k].reshape(length, k, c)
    cnt = o.sum(axis=1)  # (L, C)
    tot = np.where(o, v, 0.0).sum(axis=1)
    mean = np.where(cnt > 0, tot / np.maximum(cnt, 1), 0.0).astype(np.float32)
    return mean, cnt > 0, times[: length * k : k]


def subtract_level(
    values: np.ndarray, observed: np.ndarray, upto: int | None = None, clip: float | None = None
) -> np.ndarray:
    """values (C, L) minus each sensor's level: the median of its observed cells in the first
    `upto` steps (all when None); a sensor with none there keeps level 0. Clipped to
    +-`clip` when given; 0 where unobserved. (C, L) float32."""
    head = values.shape[1] if upto is None else max(int(upto), 0)
    ob = observed[:, :head]
    has = ob.any(axis=1)  # (C,)
    level = np.zeros(values.shape[0], dtype=np.float64)
    if has.any():
        level[has] = np.nanmedian(np.where(ob, values[:, :head], np.nan)[has], axis=1)
    out = values - level[:, None]
    if clip is not None:
        out = np.clip(out, -clip, clip)
    return np.where(observed, out, 0.0).astype(np.float32)


def _grid_times(frame: SensorFrame, lo: int, hi: int) -> np.ndarray:
    """Grid times for rows lo..hi-1, extrapolated on the regular grid outside the frame."""
    if frame.n_times == 0:
        raise InputError("the frame has no grid times", hint="ingest readings first")
    step = np.timedelta64(int(frame.interval.value), "ns")
    t0 = frame.time[0].astype("datetime64[ns]")
    return t0 + step * np.arange(lo, hi, dtype=np.int64)


def _make_window(
    z: np.ndarray,
    obs: np.ndarray,
    frame: SensorFrame,
    feats: np.ndarray,
    spec: WindowSpec,
    start: int,
    scale: int,
    clip: float,
) -> Window:
    """Cut rows [start, start + L*scale) (rows < 0 are unobserved padding). `z` is clipped
    already for level "site"; for level "window" it is not, and each sensor's median over
    the window's observed cells is subtracted before clipping to +-`clip`."""
    span = spec.span(scale)
    stop = start + span
    c = z.shape[1]
    vals = np.zeros((span, c), dtype=np.float32)
    ob = np.zeros((span, c), dtype=bool)
    lo = max(start, 0)
    vals[lo - start :] = z[lo:stop]
    ob[lo - start :] = obs[lo:stop]
    if spec.level == "window":
        vals = subtract_level(vals.T, ob.T, clip=clip).T  # (S, C)
    times = _grid_times(frame, start, stop)
    vals, ob, times = _coarsen(vals, ob, times, scale)  # (L, C)
    return Window(
        values=np.ascontiguousarray(vals.T),  # (C, L)
        observed=np.ascontiguousarray(ob.T),
        sensor_feats=feats,
        time_feats=time_features(times, spec.patch),  # (P, Ft)
        start=int(start),
        scale=int(scale),
        times=times,
    )


class WindowDataset:
    """Windows of `frame` lying inside grid rows [start, end), at every scale of `spec`.

    `starts` (M,) int64 grid index of each kept window, `scales_of` (M,) int64 its scale.
    Windows whose observed fraction is below `spec.min_observed` are skipped and counted in
    `skipped` (logged at INFO).
    """

    def __init__(
        self,
        frame: SensorFrame,
        normaliser: Normaliser,
        spec: WindowSpec,
        start: int = 0,
        end: int | None = None,
    ) -> None:
        self.frame = frame
        self.normaliser = normaliser
        self.spec = spec
        self.start = max(int(start), 0)
        self.end = frame.n_times if end is None else min(int(end), frame.n_times)
        self._z = normaliser.transform(frame, clip=spec.level == "site")  # (T, C)
        self._obs = frame.observed
        self._feats = sensor_features(frame.sensors)  # (C, F)
        starts: list[int] = []
        scales: list[int] = []
        skipped = 0
        for k in spec.scales:
            span = spec.span(k)
            for s in range(self.start, self.end - span + 1, spec.stride * k):
                frac = float(self._obs[s : s + span].mean()) if frame.n_sensors else 0.0
                if frac < spec.min_observed:
                    skipped += 1
                    continue
                starts.append(s)
                scales.append(k)
        self.starts = np.asarray(starts, dtype=np.int64)
        self.scales_of = np.asarray(scales, dtype=np.int64)
        self.skipped = skipped
        if skipped:
            log.info(
                "windows: %d kept, %d skipped (observed fraction < %.2f)",
                len(starts),
                skipped,
                spec.min_observed,
            )
        if not starts:
            log.warning(
                "windows: none of length %d fit rows [%d, %d) with enough data",
                spec.length,
                self.start,
                self.end,
            )

    def __len__(self) -> int:
        return int(self.starts.shape[0])

    def __getitem__(self, i: int) -> Window:
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        return _make_window(
            self._z,
            self._obs,
            self.frame,
            self._feats,
            self.spec,
            int(self.starts[i]),
            int(self.scales_of[i]),
            self.normaliser.clip,
        )


def window_at(
    frame: SensorFrame,
    normaliser: Normaliser,
    spec: WindowSpec,
    end_index: int,
    scale: int | None = None,
) -> Window:
    """The window whose last step ends just before grid row `end_index` (exclusive).

    It covers rows [end_index - L*scale, end_index); rows before the frame start are
    unobserved padding, so early grid times can still be scored. To include row t, pass
    `end_index = t + 1`. `scale` defaults to the spec's first scale. Only the window's own
    rows are read and normalised, so a call costs O(L * scale), not O(T).
    """
    k = spec.scales[0] if scale is None else int(scale)
    if not 0 < end_index <= frame.n_times:
        raise InputError(
            f"window end {end_index} is outside the frame (1..{frame.n_times})",
            hint="choose a time inside the site's readings",
        )
    start = end_index - spec.span(k)
    lo = max(start, 0)
    sub = frame.slice_time(lo, end_index)  # only the window's rows are normalised: O(L)
    win = _make_window(
        normaliser.transform(sub, clip=spec.level == "site"),
        sub.observed,
        sub,
        sensor_features(frame.sensors),
        spec,
        start - lo,
        k,
        normaliser.clip,
    )
    return replace(win, start=int(start))
