"""Sensor placement: which sensors a simulated site has, where, and on which logger.

`place_sensors` turns a `SiteFamily` (see `families`) and a sensor count into
`SensorSpec` records positioned in 3-D, in boreholes / sections, each assigned to a
logger file and a sampling habit.

Guarantees:

- the same family, count and generator state give the same layout;
- exactly `n_sensors` sensors are placed; the site's driver sensors (rain gauge,
  thermometer, and reservoir level for dams or fill height for embankments) are
  always among them; every kind is one of `geojepa.site.SENSOR_KINDS`;
- sensor ids are unique and valid Campbell field names (letters, digits, underscore).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from geojepa.errors import InputError
from geojepa.simulate.families import (
    BASE_MIX,
    SCENARIOS,
    SiteFamily,
    check_scenario,
    draw_family,
)
from geojepa.site import SENSOR_KINDS

PREFIX: Mapping[str, str] = {
    "piezometer": "PZ",
    "strain_gauge": "SG",
    "inclinometer": "IN",
    "extensometer": "EX",
    "settlement": "SP",
    "gnss": "GN",
    "rain_gauge": "RG",
    "thermometer": "TH",
    "barometer": "BA",
    "water_level": "WL",
    "load": "FH",
    "discharge": "WQ",
}
"""Sensor id prefix per kind (ids read like PZ03, SP12)."""


UNIT: Mapping[str, str] = {
    "piezometer": "kPa",
    "strain_gauge": "microstrain",
    "inclinometer": "mm",
    "extensometer": "mm",
    "settlement": "mm",
    "gnss": "mm",
    "rain_gauge": "mm",
    "thermometer": "degC",
    "barometer": "kPa",
    "water_level": "m",
    "load": "m",
    "discharge": "L/s",
}

# Required driver sensors per scenario (always placed, in this order).


DRIVER_KINDS: Mapping[str, tuple[str, ...]] = {
    "slope": ("rain_gauge", "thermometer"),
    "embankment": ("rain_gauge", "thermometer", "load"),
    "dam": ("rain_gauge", "thermometer", "water_level"),
}
# Geotechnical kinds that must appear at least once.


CORE_KINDS: Mapping[str, tuple[str, ...]] = {
    "slope": ("piezometer", "gnss"),
    "embankment": ("settlement", "piezometer"),
    "dam": ("piezometer",),
}
# Typical mix of the remaining sensors (perturbed per site).


MIN_SENSORS: Mapping[str, int] = {
    s: len(DRIVER_KINDS[s]) + len(CORE_KINDS[s]) for s in ("slope", "embankment", "dam")
}


MAX_SENSORS = 500


LOGGER_CHANNELS = 16

# name: (rain mm/yr, storms/yr, storm hours, seasonality, temp mean, annual amp, daily amp, ET mm/yr)


@dataclass(frozen=True)
class SensorSpec:
    """One simulated sensor: identity, position, logger, sampling and geometry factors.

    `depth` is metres below the local ground surface (0 on the surface); `sampling` is
    ``logger`` (every grid step), ``gnss`` (hourly or daily solutions), ``daily`` or
    ``manual`` (survey campaigns). `factors` hold geometry-derived physics factors
    (slide, load, eta, section...).
    """

    id: str
    kind: str
    unit: str
    x: float
    y: float
    z: float
    group: str
    depth: float
    logger: str
    sampling: str
    factors: Mapping[str, float] = field(default_factory=dict)


def _allocate(n: int, weights: Mapping[str, float]) -> dict[str, int]:
    """Split `n` among kinds by largest remainder (deterministic tie order)."""
    keys = sorted(weights)
    raw = [n * weights[k] for k in keys]
    base = [math.floor(r) for r in raw]
    left = n - sum(base)
    order = sorted(range(len(keys)), key=lambda i: (-(raw[i] - base[i]), keys[i]))
    for i in order[:left]:
        base[i] += 1
    return {k: b for k, b in zip(keys, base, strict=True)}


def count_kinds(family: SiteFamily, n_sensors: int) -> dict[str, int]:
    """How many sensors of each kind a site of `n_sensors` gets (drivers included)."""
    scenario = family.scenario
    lo = MIN_SENSORS[scenario]
    if not lo <= n_sensors <= MAX_SENSORS:
        raise InputError(
            f"a {scenario} site needs between {lo} and {MAX_SENSORS} sensors, got {n_sensors}",
            column="--sensors",
            hint=f"pass --sensors {lo} or more",
        )
    counts: dict[str, int] = {k: 1 for k in DRIVER_KINDS[scenario]}
    for k in CORE_KINDS[scenario]:
        counts[k] = counts.get(k, 0) + 1
    extra_drivers: list[str] = []
    if n_sensors >= 8:
        extra_drivers.append("barometer")
    if scenario == "dam" and n_sensors >= 10:
        extra_drivers.append("discharge")
    for k in extra_drivers:
        counts[k] = 1
    rest = n_sensors - sum(counts.values())
    for k, v in _allocate(rest, family.kind_weights).items():
        counts[k] = counts.get(k, 0) + v
    return {k: v for k, v in counts.items() if v > 0}


def _ids(kind: str, n: int) -> list[str]:
    width = max(2, len(str(n)))
    return [f"{PREFIX[kind]}{i + 1:0{width}d}" for i in range(n)]


def place_sensors(family: SiteFamily, n_sensors: int, rng: np.random.Generator) -> list[SensorSpec]:
    """Place `n_sensors` sensors for `family`: positions, groups, loggers and sampling."""
    counts = count_kinds(family, n_sensors)
    placer = {"slope": _place_slope, "embankment": _place_embankment, "dam": _place_dam}
    raw = placer[family.scenario](family, counts, rng)
    specs = _assign_loggers(family, raw, rng)
    if len(specs) != n_sensors:  # an internal invariant: every requested sensor is placed
        raise RuntimeError(f"placed {len(specs)} sensors instead of {n_sensors}")
    return specs


# A raw placement before loggers: kind, x, y, z, group, depth, factors


_Raw = tuple[str, float, float, float, str, float, dict[str, float]]


def _drivers_raw(family: SiteFamily, counts: Mapping[str, int], x: float) -> list[_Raw]:
    out: list[_Raw] = []
    for k in ("rain_gauge", "thermometer", "barometer"):
        if counts.get(k):
            out.append((k, x, -10.0, family.elevation_m + 1.5, "MET", 0.0, {}))
    return out


def _boreholes(n_items: int, per_hole: tuple[int, int], rng: np.random.Generator) -> list[int]:
    """Split `n_items` sensors into boreholes of `per_hole` sizes; returns the sizes."""
    sizes: list[int] = []
    left = n_items
    while left > 0:
        k = min(left, int(rng.integers(per_hole[0], per_hole[1] + 1)))
        sizes.append(k)
        left -= k
    return sizes


def _place_slope(
    family: SiteFamily, counts: Mapping[str, int], rng: np.random.Generator
) -> list[_Raw]:
    g = family.geometry
    length, width = g["length"], g["width"]
    tan_a = math.tan(math.radians(g["angle_deg"]))
    top = family.elevation_m + length * tan_a

    def ground(x: float) -> float:
        return top - x * tan_a

    def slide(x: float, y: float) -> float:
        r2 = ((x - g["slide_x0"]) / g["slide_rx"]) ** 2 + (y / g["slide_ry"]) ** 2
        return float(math.exp(-(r2**2)))  # flat-topped footprint, ~1 inside, ~0 outside

    def slip_depth(x: float, y: float) -> float:
        return g["slip_depth"] * max(0.35, slide(x, y) ** 0.5)

    def in_slide(r: np.random.Generator) -> tuple[float, float]:
        x = g["slide_x0"] + g["slide_rx"] * float(r.uniform(-1.1, 1.1))
        y = g["slide_ry"] * float(r.uniform(-1.1, 1.1))
        return min(max(x, 0.0), length), max(min(y, width / 2), -width / 2)

    def mostly_in_slide(r: np.random.Generator, p_slide: float) -> tuple[float, float]:
        """In the slide with probability `p_slide`, else anywhere on the slope."""
        if r.uniform() < p_slide:
            return in_slide(r)
        return float(r.uniform(0, length)), float(r.uniform(-width / 2, width / 2))

    out = _drivers_raw(family, counts, x=-20.0)
    bh = 0
    for size in _boreholes(counts.get("piezometer", 0), (1, 4), rng):
        bh += 1
        x, y = mostly_in_slide(rng, 0.8)
        sd = slip_depth(x, y)
        wt = family.water_table_depth * (1.0 + 0.6 * (1 - x / length))
        depths = np.sort(rng.uniform(wt + 1.0, max(wt + 2.0, sd * 1.4), size))
        for d in depths:
            f = {"slide": slide(x, y), "slip_depth": sd, "wt_depth": wt}
            out.append(("piezometer", x, y, ground(x) - float(d), f"BH{bh}", float(d), f))
    inc = 0
    for size in _boreholes(counts.get("inclinometer", 0), (2, 6), rng):
        inc += 1
        x, y = mostly_in_slide(rng, 0.85)
        sd = slip_depth(x, y)
        # nodes from near the surface to below the slip surface
        depths = np.linspace(1.0, sd * 1.5 + 2.0, size)
        for d in depths:
            shear = 1.0 / (1.0 + math.exp((float(d) - sd) / 0.6))  # 1 above, 0 below the slip
            f = {"slide": slide(x, y) * (0.02 + 0.98 * shear), "slip_depth": sd}
            out.append(("inclinometer", x, y, ground(x) - float(d), f"INC{inc}", float(d), f))
    for k in range(counts.get("extensometer", 0)):
        x, y = in_slide(rng)
        sd = slip_depth(x, y)
        d = sd + float(rng.uniform(3, 8))
        f = {"slide": slide(x, y), "rod_length": d}
        out.append(("extensometer", x, y, ground(x) - d, f"EXT{k + 1}", d, f))
    for _ in range(counts.get("gnss", 0)):
        x, y = mostly_in_slide(rng, 0.75)
        out.append(("gnss", x, y, ground(x) + 2.0, "GNSS", 0.0, {"slide": slide(x, y)}))
    for k in range(counts.get("strain_gauge", 0)):
        x, y = in_slide(rng)
        d = float(rng.uniform(1, 6))
        f = {"slide": slide(x, y), "nail": float(k // 3 + 1)}
        out.append(("strain_gauge", x, y, ground(x) - d, f"NAIL{k // 3 + 1}", d, f))
    return out


def _place_embankment(
    family: SiteFamily, counts: Mapping[str, int], rng: np.random.Generator
) -> list[_Raw]:
    g = family.geometry
    length, crest = g["length"], g["crest_width"]
    height = g["n_stages"] * g["stage_height"]
    toe = crest / 2 + g["side_slope"] * height
    n_geo = sum(v for k, v in counts.items() if k not in DRIVER_KINDS["embankment"])
    n_sections = max(1, min(12, round(n_geo / 6)))
    ys = np.sort(rng.uniform(0.05, 0.95, n_sections)) * length
    base = family.elevation_m
    out = _drivers_raw(family, counts, x=-toe - 30.0)
    out.append(("load", 0.0, float(ys[0]), base, "FILL", 0.0, {"load": 1.0}))

    def section(i: int) -> tuple[str, float]:
        s = i % n_sections
        return f"SEC{s + 1}", float(ys[s])

    # soft-clay thickness varies smoothly along the embankment
    phase = float(rng.uniform(0, 2 * math.pi))

    def clay(y: float) -> float:
        return g["clay_thickness"] * (1.0 + 0.3 * math.sin(2 * math.pi * y / length * 1.3 + phase))

    def load_factor(x: float) -> float:
        ax = abs(x)
        if ax <= crest / 2:
            return 1.0
        return max(0.05, 1.0 - (ax - crest / 2) / (toe - crest / 2))

    for i in range(counts.get("settlement", 0)):
        grp, y = section(i)
        x = float(rng.choice([0.0, 0.0, -crest / 2, crest / 2, -0.6 * toe, 0.6 * toe]))
        f = {"load": load_factor(x), "clay": clay(y), "section": float(i % n_sections)}
        out.append(("settlement", x, y, base, grp, 0.0, f))
    for i in range(counts.get("piezometer", 0)):
        grp, y = section(i)
        h = clay(y)
        x = float(rng.choice([0.0, 0.0, -crest / 2, 0.6 * toe]))
        d = float(rng.uniform(0.25, 0.75)) * h + 0.5
        f = {
            "load": load_factor(x),
            "clay": h,
            "rel_depth": d / h,
            "section": float(i % n_sections),
        }
        out.append(("piezometer", x, y, base - d, grp, d, f))
    for i in range(counts.get("inclinometer", 0)):
        grp, y = section(i)
        h = clay(y)
        d = float(rng.uniform(0.2, 1.2)) * h
        shape = math.sin(math.pi * min(d / (h * 1.1), 1.0)) + 0.2 * (d < 2)
        f = {"lateral": 0.25 * shape, "clay": h, "section": float(i % n_sections)}
        out.append(("inclinometer", toe + 2.0, y, base - d, f"INC{i // 4 + 1}", d, f))
    for i in range(counts.get("extensometer", 0)):
        grp, y = section(i)
        f = {"load": 1.0, "clay": clay(y), "fraction": float(rng.uniform(0.5, 0.9))}
        out.append(("extensometer", 0.0, y, base - clay(y), grp, clay(y), f))
    for i in range(counts.get("strain_gauge", 0)):
        grp, y = section(i)
        x = float(rng.uniform(-toe * 0.8, toe * 0.8))
        f = {"load": load_factor(x), "clay": clay(y), "section": float(i % n_sections)}
        out.append(("strain_gauge", x, y, base + 0.3, grp, 0.0, f))
    for i in range(counts.get("gnss", 0)):
        grp, y = section(i)
        f = {"load": 1.0, "clay": clay(y), "section": float(i % n_sections)}
        out.append(("gnss", 0.0, y, base + height, grp, 0.0, f))
    return out


def _place_dam(
    family: SiteFamily, counts: Mapping[str, int], rng: np.random.Generator
) -> list[_Raw]:
    g = family.geometry
    crest_len, height = g["crest_length"], g["height"]
    base = family.elevation_m
    half_base = height * 2.2
    out = _drivers_raw(family, counts, x=half_base + 40.0)
    out.append(("water_level", -half_base - 10.0, crest_len / 2, base + height, "RES", 0.0, {}))
    if counts.get("discharge"):
        out.append(("discharge", half_base + 5.0, crest_len / 2, base - 1.0, "WEIR", 0.0, {}))
    n_geo = sum(v for k, v in counts.items() if k not in ("rain_gauge", "thermometer", "barometer"))
    n_sections = max(1, min(10, round(n_geo / 8)))
    ys = np.sort(rng.uniform(0.15, 0.85, n_sections)) * crest_len

    def section(i: int) -> tuple[str, float]:
        s = i % n_sections
        return f"SEC{s + 1}", float(ys[s])

    for i in range(counts.get("piezometer", 0)):
        grp, y = section(i)
        # position through the dam: -1 upstream face, +1 downstream toe
        u = float(rng.uniform(-0.6, 1.0))
        x = u * half_base
        eta = float(np.clip(0.5 - 0.55 * u + rng.normal(0, 0.05), 0.04, 0.97))
        # keep the tip below the lowest phreatic level it will see (after a deep drawdown)
        low = base + height - g["freeboard"] - 1.6 * g["drawdown_range"]
        z_max = base + eta * (low - base) - 1.0
        z = min(base + float(rng.uniform(-15, 0.25 * height)), z_max)
        f = {"eta": eta, "u": u, "section": float(i % n_sections)}
        out.append(("piezometer", x, y, z, grp, 0.0, f))
    for i in range(counts.get("strain_gauge", 0)):
        grp, y = section(i)
        f = {"section": float(i % n_sections)}
        out.append(
            ("strain_gauge", 0.0, y, base + float(rng.uniform(0, 0.3)) * height, grp, 0.0, f)
        )
    for i in range(counts.get("extensometer", 0)):
        grp, y = section(i)
        out.append(
            ("extensometer", 0.0, y, base - 5.0, grp, 5.0, {"section": float(i % n_sections)})
        )
    for i in range(counts.get("gnss", 0)):
        grp, y = section(i)
        out.append(
            ("gnss", 0.0, y, base + height, "CREST", 0.0, {"section": float(i % n_sections)})
        )
    for i in range(counts.get("inclinometer", 0)):
        grp, y = section(i)
        d = float(rng.uniform(2, height * 0.8))
        f = {"shape": 1.0 - d / height, "section": float(i % n_sections)}
        out.append(
            ("inclinometer", half_base * 0.5, y, base + height * 0.5 - d, f"INC{i // 4 + 1}", d, f)
        )
    for i in range(counts.get("settlement", 0)):
        grp, y = section(i)
        out.append(("settlement", 0.0, y, base + height, "CREST", 0.0, {"section": float(i)}))
    return out


def _assign_loggers(
    family: SiteFamily, raw: list[_Raw], rng: np.random.Generator
) -> list[SensorSpec]:
    """Give ids, sampling habits and logger files to raw placements."""
    by_kind: dict[str, list[_Raw]] = {}
    for r in raw:
        by_kind.setdefault(r[0], []).append(r)
    named: list[tuple[str, _Raw, str]] = []  # (id, raw, sampling)
    for kind in SENSOR_KINDS:
        items = by_kind.get(kind, [])
        if not items:
            continue
        manual_frac = family.manual_fraction.get(kind, 0.0)
        n_manual = round(manual_frac * len(items))
        manual_idx = (
            set(int(i) for i in rng.choice(len(items), size=n_manual, replace=False))
            if n_manual
            else set()
        )
        for i, (sid, r) in enumerate(zip(_ids(kind, len(items)), items, strict=True)):
            if kind == "load":
                sampling = "daily"
            elif kind == "gnss":
                sampling = "gnss"
            elif i in manual_idx:
                sampling = "manual"
            else:
                sampling = "logger"
            named.append((sid, r, sampling))
    # loggers: the station logger for drivers, then borehole/section groups filled in order
    logger_of: dict[str, str] = {}
    pending: dict[str, list[str]] = {}
    for sid, r, sampling in named:
        kind, group = r[0], r[4]
        if sampling == "manual":
            logger_of[sid] = f"manual_{kind}"
        elif sampling == "daily":
            logger_of[sid] = "manual_fill"
        elif sampling == "gnss":
            logger_of[sid] = "gnss"
        elif group in ("MET", "RES", "WEIR"):
            logger_of[sid] = "MET"
        else:
            pending.setdefault(group, []).append(sid)
    n_loggers, used = 0, LOGGER_CHANNELS
    for group in sorted(pending, key=_group_key):
        sids = pending[group]
        if used + len(sids) > LOGGER_CHANNELS and used > 0:
            n_loggers, used = n_loggers + 1, 0
        for sid in sids:
            if used >= LOGGER_CHANNELS:
                n_loggers, used = n_loggers + 1, 0
            logger_of[sid] = f"LOG{n_loggers:02d}"
            used += 1
    formats: dict[str, str] = {}
    for name in sorted(set(logger_of.values())):
        if name.startswith("LOG"):
            formats[name] = "toa5" if rng.uniform() < family.toa5_fraction else "wide"
        elif name == "MET":
            formats[name] = "toa5"
        else:
            formats[name] = "wide"
    specs: list[SensorSpec] = []
    for sid, r, sampling in named:
        kind, x, y, z, group, depth, factors = r
        logger = logger_of[sid]
        ext = ".dat" if formats[logger] == "toa5" else ".csv"
        specs.append(
            SensorSpec(
                id=sid,
                kind=kind,
                unit=UNIT[kind],
                x=round(float(x), 2),
                y=round(float(y), 2),
                z=round(float(z), 2),
                group=group,
                depth=float(depth),
                logger=logger + ext,
                sampling=sampling,
                factors=dict(factors),
            )
        )
    return specs


def _group_key(group: str) -> tuple[str, int]:
    """Sort BH2 before BH10."""
    head = group.rstrip("0123456789")
    tail = group[len(head) :]
    return head, int(tail) if tail else 0


__all__ = [
    "BASE_MIX",
    "SCENARIOS",
    "SensorSpec",
    "SiteFamily",
    "check_scenario",
    "count_kinds",
    "draw_family",
    "place_sensors",
]
