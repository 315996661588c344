"""Continuous sensor codes and time codes: the positions a token carries.

A sensor's code comes from its metadata only (kind, unit, position, group), never from
its row index, so a new site's unseen sensors still get meaningful codes and permuting
the sensors permutes the codes. Time codes come from the real timestamps of each patch
(elapsed time, time of year, time of day, patch duration), never from the array index.

Guarantees:

- `sensor_features` returns (C, N_SENSOR_FEATS) float32, finite, row c depending only on
  sensor c's metadata and on the site's centroid/extent (a permutation-invariant summary);
- `time_features` returns (P, N_TIME_FEATS) float32, finite;
- `sensor_info` recovers kind, normalised position and group code from the features,
  so everything downstream needs only the feature matrix.

numpy only: no torch import.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from geojepa.site import SENSOR_KINDS

UNIT_FAMILIES: tuple[str, ...] = (
    "pressure",
    "length",
    "angle",
    "strain",
    "temperature",
    "flow",
    "force",
    "ratio",
    "other",
)
"""Unit families the sensor code distinguishes; unknown or empty units are ``other``."""

KIND_FAMILIES: dict[str, str] = {
    "piezometer": "hydro",
    "water_level": "hydro",
    "tensiometer": "hydro",
    "soil_moisture": "hydro",
    "discharge": "hydro",
    "strain_gauge": "deformation",
    "inclinometer": "deformation",
    "extensometer": "deformation",
    "settlement": "deformation",
    "gnss": "deformation",
    "load": "deformation",
    "rain_gauge": "environment",
    "thermometer": "environment",
    "barometer": "environment",
    "other": "environment",
}
"""Sensor kind -> family, used by the `per_kind` fusion mode (one encoder per family)."""

FAMILIES: tuple[str, ...] = ("hydro", "deformation", "environment")

_UNIT_PATTERNS: tuple[tuple[str, str], ...] = (
    ("pressure", r"^(k|m|h)?pa$|^psi$|^bar$|^mbar$|^hpa$|^kgf/cm2$|^mh2o$|^m ?h2o$|^ftwc$|^inhg$"),
    ("length", r"^(m|mm|cm|km|in|ft|um|µm|inch|inches|feet|masl|m asl|mbgl|m bgl)$"),
    ("angle", r"^(deg|degree|degrees|°|rad|mrad|arcsec|arcmin|mm/m)$"),
    ("strain", r"^(ue|µε|με|microstrain|ustrain|µstrain|strain)$"),
    ("temperature", r"^(c|°c|degc|deg c|f|°f|degf|k)$"),
    ("flow", r"^(m3/s|m³/s|l/s|cfs|l/min|m3/h|gpm)$"),
    ("force", r"^(n|kn|mn|t|kgf|lbf|kip|kips)$"),
    ("ratio", r"^(%|percent|vwc|m3/m3|-|ratio)$"),
)

N_KINDS = len(SENSOR_KINDS)
N_UNITS = len(UNIT_FAMILIES)
N_POS_FREQS = 3  # Fourier frequencies per axis: pi * (1, 2, 4)
N_GROUP_BITS = 8

# Column layout of the sensor features (fixed: stored checkpoints rely on it).
KIND_SLICE = slice(0, N_KINDS)
UNIT_SLICE = slice(KIND_SLICE.stop, KIND_SLICE.stop + N_UNITS)
POS_SLICE = slice(UNIT_SLICE.stop, UNIT_SLICE.stop + 3)  # normalised x, y, z (0 when absent)
FOURIER_SLICE = slice(POS_SLICE.stop, POS_SLICE.stop + 3 * N_POS_FREQS * 2)
HAS_XY_COL = FOURIER_SLICE.stop
HAS_Z_COL = HAS_XY_COL + 1
GROUP_SLICE = slice(HAS_Z_COL + 1, HAS_Z_COL + 1 + N_GROUP_BITS)
HAS_GROUP_COL = GROUP_SLICE.stop
N_SENSOR_FEATS = HAS_GROUP_COL + 1

N_TIME_FREQS = 3  # relative position in the window at pi * (1, 2, 4)
N_TIME_FEATS = 1 + 2 * N_TIME_FREQS + 1 + 2 + 2 + 1


def unit_family(unit: str) -> str:
    """The family of a unit string (``kPa`` -> pressure); ``other`` when unknown."""
    text = str(unit).strip().lower()
    for family, pattern in _UNIT_PATTERNS:
        if re.match(pattern, text):
            return family
    return "other"


def group_code(group: str) -> np.ndarray:
    """A deterministic +-1 code of N_GROUP_BITS bits for a group name (zeros when empty).

    A hash, not an index table: the same name always gets the same code on any site.
    """
    if not group:
        return np.zeros(N_GROUP_BITS, dtype=np.float32)
    digest = hashlib.blake2b(group.encode("utf-8"), digest_size=4).digest()
    bits = np.unpackbits(np.frombuffer(digest, dtype=np.uint8))[:N_GROUP_BITS]
    return (bits.astype(np.float32) * 2.0 - 1.0).astype(np.float32)


def sensor_features(sensors: pd.DataFrame) -> np.ndarray:
    """Continuous codes (C, N_SENSOR_FEATS) float32 of a sensors table.

    Layout: kind one-hot over SENSOR_KINDS | unit-family one-hot | x, y, z relative to the
    site's centroid divided by its extent (0 when absent) | sin/cos Fourier features of
    those | has-xy flag | has-z flag | group hash bits | has-group flag.
    Unknown kinds count as ``other``. Positions use the centroid and extent of the sensors
    that have one, so the code is the same whatever the row order.
    """
    c = len(sensors)
    out = np.zeros((c, N_SENSOR_FEATS), dtype=np.float32)
    if c == 0:
        return out
    kind_index = {k: i for i, k in enumerate(SENSOR_KINDS)}
    unit_index = {u: i for i, u in enumerate(UNIT_FAMILIES)}
    kinds = sensors["kind"].astype(str).to_numpy() if "kind" in sensors else ["other"] * c
    units = sensors["unit"].astype(str).to_numpy() if "unit" in sensors else [""] * c
    groups = sensors["group"].astype(str).to_numpy() if "group" in sensors else [""] * c
    for i in range(c):
        out[i, KIND_SLICE.start + kind_index.get(str(kinds[i]), kind_index["other"])] = 1.0
        out[i, UNIT_SLICE.start + unit_index[unit_family(str(units[i]))]] = 1.0
        code = group_code(str(groups[i]) if groups[i] != "nan" else "")
        out[i, GROUP_SLICE] = code
        out[i, HAS_GROUP_COL] = float(np.any(code != 0))

    xyz = np.stack(
        [
            pd.to_numeric(sensors[a], errors="coerce").to_numpy(dtype=np.float64)
            if a in sensors
            else np.full(c, np.nan)
            for a in ("x", "y", "z")
        ],
        axis=1,
    )  # (C, 3)
    has_xy = np.isfinite(xyz[:, 0]) & np.isfinite(xyz[:, 1])
    has_z = np.isfinite(xyz[:, 2])
    rel = np.zeros((c, 3), dtype=np.float64)
    if has_xy.any():
        xy = xyz[has_xy, :2]
        centre = xy.mean(axis=0)
        extent = max(float(np.max(xy.max(axis=0) - xy.min(axis=0))), 1.0)
        rel[has_xy, :2] = (xy - centre) / extent
    if has_z.any():
        z = xyz[has_z, 2]
        extent_z = max(float(z.max() - z.min()), 1.0)
        rel[has_z, 2] = (z - z.mean()) / extent_z
    out[:, POS_SLICE] = rel
    freqs = np.pi * (2.0 ** np.arange(N_POS_FREQS))  # (K,)
    ang = rel[:, :, None] * freqs[None, None, :]  # (C, 3, K)
    present = np.stack([has_xy, has_xy, has_z], axis=1)[:, :, None]  # (C, 3, 1)
    fourier = np.concatenate([np.sin(ang) * present, np.cos(ang) * present], axis=2)
    out[:, FOURIER_SLICE] = fourier.reshape(c, -1)
    out[:, HAS_XY_COL] = has_xy
    out[:, HAS_Z_COL] = has_z
    return out


@dataclass(frozen=True)
class SensorInfo:
    """What mask generators need to know about the sensors of one window.

    kind (C,) int64 index into SENSOR_KINDS; family (C,) int64 index into FAMILIES;
    position (C, 3) float64 normalised (0 where absent); has_position (C,) bool (x and y
    known); group (C,) int64 hash code (-1 = no group).
    """

    kind: np.ndarray
    family: np.ndarray
    position: np.ndarray
    has_position: np.ndarray
    group: np.ndarray

    @property
    def n_sensors(self) -> int:
        return int(self.kind.shape[0])


def sensor_info(feats: np.ndarray) -> SensorInfo:
    """Recover `SensorInfo` from sensor features (C, N_SENSOR_FEATS)."""
    feats = np.asarray(feats)
    kind = np.argmax(feats[:, KIND_SLICE], axis=1).astype(np.int64)
    family_of_kind = np.array([FAMILIES.index(KIND_FAMILIES[k]) for k in SENSOR_KINDS])
    bits = (feats[:, GROUP_SLICE] > 0).astype(np.int64)  # (C, G)
    group = bits @ (1 << np.arange(N_GROUP_BITS, dtype=np.int64))
    group = np.where(feats[:, HAS_GROUP_COL] > 0, group, -1)
    return SensorInfo(
        kind=kind,
        family=family_of_kind[kind].astype(np.int64),
        position=feats[:, POS_SLICE].astype(np.float64),
        has_position=feats[:, HAS_XY_COL] > 0,
        group=group.astype(np.int64),
    )


def family_of_kind_table() -> np.ndarray:
    """(N_KINDS,) int64: FAMILIES index of each SENSOR_KINDS entry."""
    return np.array([FAMILIES.index(KIND_FAMILIES[k]) for k in SENSOR_KINDS], dtype=np.int64)


def time_features(times: np.ndarray, patch: int) -> np.ndarray:
    """Time codes (P, N_TIME_FEATS) float32 for a window's grid times (L,) datetime64.

    P = L // patch. Per patch, from its first and last timestamps: relative position in the
    window (elapsed / window span) with sin/cos at pi*(1, 2, 4), log1p(elapsed days), time of
    year sin/cos, time of day sin/cos (of the patch middle), log10 of the patch duration in
    days. Elapsed and durations come from the timestamps, so coarse (multi-scale) windows
    and irregular spans get honest codes.
    """
    t = np.asarray(times).astype("datetime64[ns]")
    n_patches = t.shape[0] // patch
    out = np.zeros((n_patches, N_TIME_FEATS), dtype=np.float32)
    if n_patches == 0:
        return out
    ns = t[: n_patches * patch].astype(np.int64).reshape(n_patches, patch).astype(np.float64)
    day = 86_400e9
    first = ns[:, 0]
    last = ns[:, -1]
    step = (ns[0, 1] - ns[0, 0]) if patch > 1 else (ns[1, 0] - ns[0, 0] if n_patches > 1 else day)
    step = step if step > 0 else day
    duration = (last - first) + step  # ns covered by one patch
    elapsed = first - first[0]
    span = max(float(elapsed[-1] + duration[-1]), step)
    rel = elapsed / span  # (P,) in [0, 1)
    freqs = np.pi * (2.0 ** np.arange(N_TIME_FREQS))
    ang = rel[:, None] * freqs[None, :]
    mid = first + duration / 2.0
    year = 365.2425 * day
    doy = 2 * np.pi * np.mod(mid, year) / year
    tod = 2 * np.pi * np.mod(mid, day) / day
    cols = [
        rel[:, None],
        np.sin(ang),
        np.cos(ang),
        np.log1p(elapsed / day)[:, None],
        np.sin(doy)[:, None],
        np.cos(doy)[:, None],
        np.sin(tod)[:, None],
        np.cos(tod)[:, None],
        np.log10(duration / day)[:, None],
    ]
    out[:] = np.concatenate(cols, axis=1)
    return out
