"""Site families: the site-level parameters a seed draws (soil, climate, geometry, habits).

A `SiteFamily` holds what makes two seeds differ the way two real sites do: soil (hydraulic
diffusivity, specific yield, consolidation time, compressibility, creep sensitivity),
climate (rain, storms, seasons, temperature, evapotranspiration, hemisphere, time zone),
scenario geometry, sensor mix, manual-survey habits and logger formats.

Guarantees: `draw_family` depends only on the scenario and the generator state; every
parameter lies in the documented range of its soil or climate class.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from geojepa.errors import InputError

SCENARIOS: tuple[str, ...] = ("slope", "embankment", "dam")


BASE_MIX: Mapping[str, Mapping[str, float]] = {
    "slope": {
        "piezometer": 0.35,
        "inclinometer": 0.25,
        "extensometer": 0.1,
        "gnss": 0.15,
        "strain_gauge": 0.1,
    },
    "embankment": {
        "settlement": 0.35,
        "piezometer": 0.3,
        "inclinometer": 0.15,
        "extensometer": 0.05,
        "strain_gauge": 0.1,
        "gnss": 0.05,
    },
    "dam": {
        "piezometer": 0.5,
        "strain_gauge": 0.15,
        "extensometer": 0.1,
        "gnss": 0.1,
        "inclinometer": 0.1,
        "settlement": 0.05,
    },
}


CLIMATES: Mapping[str, tuple[tuple[float, float], ...]] = {
    "maritime": ((900, 1800), (90, 160), (6, 18), (0.2, 0.5), (8, 12), (5, 8), (3, 5), (400, 600)),
    "continental": (
        (450, 900),
        (50, 100),
        (4, 12),
        (0.2, 0.6),
        (4, 10),
        (10, 16),
        (5, 8),
        (450, 700),
    ),
    "mediterranean": (
        (400, 900),
        (30, 70),
        (6, 20),
        (0.6, 0.9),
        (13, 18),
        (6, 9),
        (5, 8),
        (800, 1100),
    ),
    "monsoon": (
        (1500, 3000),
        (80, 150),
        (3, 10),
        (0.7, 0.95),
        (20, 27),
        (2, 6),
        (4, 7),
        (900, 1300),
    ),
    "alpine": ((1000, 2000), (80, 140), (8, 24), (0.1, 0.4), (0, 6), (7, 11), (4, 7), (300, 500)),
}
# name: (hydraulic diffusivity m2/h, specific yield, rain-kernel shape, consolidation t90 days,
#        mv 1/MPa, creep sensitivity)


SOILS: Mapping[str, tuple[tuple[float, float], ...]] = {
    "clay": ((0.05, 0.3), (0.02, 0.06), (2.5, 3.5), (150, 400), (0.6, 1.5), (0.6, 1.0)),
    "silt": ((0.2, 1.0), (0.05, 0.1), (3.0, 4.0), (80, 200), (0.4, 1.0), (0.4, 0.8)),
    "sand": ((1.0, 5.0), (0.1, 0.25), (3.5, 5.0), (40, 100), (0.2, 0.5), (0.2, 0.5)),
    "weathered_rock": ((0.5, 3.0), (0.02, 0.08), (3.0, 4.5), (60, 150), (0.1, 0.3), (0.3, 0.7)),
}


@dataclass(frozen=True)
class SiteFamily:
    """Site-level parameters drawn from a seed. Units: mm, m, hours, days, degC, kPa."""

    scenario: str
    soil: str
    climate: str
    hemisphere: str
    utc_offset_h: float
    elevation_m: float
    rain_mm_year: float
    storms_per_year: float
    storm_hours: float
    rain_seasonality: float
    wet_peak_doy: float
    et_mm_year: float
    temp_mean: float
    temp_annual_amp: float
    temp_daily_amp: float
    warm_peak_doy: float
    tip_mm: float
    diffusivity_m2_h: float
    specific_yield: float
    kernel_shape: float
    dispersion_h: float
    t90_days: float
    mv_per_mpa: float
    creep_sensitivity: float
    water_table_depth: float
    correlation_length_m: float
    geometry: Mapping[str, float]
    kind_weights: Mapping[str, float]
    toa5_fraction: float
    manual_fraction: Mapping[str, float]
    campaign_days: Mapping[str, int]
    gnss_daily: bool

    def describe(self) -> dict[str, Any]:
        """JSON-ready summary (floats rounded for readability)."""
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            v = getattr(self, name)
            if isinstance(v, float):
                out[name] = round(v, 4)
            elif isinstance(v, Mapping):
                out[name] = {
                    str(k): round(x, 4) if isinstance(x, float) else x for k, x in v.items()
                }
            else:
                out[name] = v
        return out


def _u(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def check_scenario(scenario: str) -> str:
    s = str(scenario).strip().lower()
    if s not in SCENARIOS:
        raise InputError(
            f"unknown scenario {scenario!r}",
            column="--scenario",
            hint="use one of " + ", ".join(SCENARIOS),
        )
    return s


def draw_family(scenario: str, rng: np.random.Generator) -> SiteFamily:
    """Draw a site family (soil, climate, geometry, sensor habits) for `scenario`."""
    scenario = check_scenario(scenario)
    climate = str(rng.choice(sorted(CLIMATES)))
    soil_choices = {
        "slope": ["clay", "silt", "sand", "weathered_rock"],
        "embankment": ["clay", "clay", "silt"],
        "dam": ["clay", "silt", "sand", "weathered_rock"],
    }[scenario]
    soil = str(rng.choice(soil_choices))
    c = CLIMATES[climate]
    s = SOILS[soil]
    hemisphere = "north" if rng.uniform() < 0.75 else "south"
    shift = 0.0 if hemisphere == "north" else 182.6
    warm_peak = (200.0 + rng.uniform(-12, 12) + shift) % 365.25
    wet_offset = {"mediterranean": 180.0, "monsoon": 0.0, "continental": 0.0}.get(climate, 150.0)
    wet_peak = (warm_peak + wet_offset + rng.uniform(-30, 30)) % 365.25
    geometry = _draw_geometry(scenario, rng)
    weights = {k: v * float(rng.lognormal(0.0, 0.35)) for k, v in BASE_MIX[scenario].items()}
    total = sum(weights.values())
    weights = {k: v / total for k, v in sorted(weights.items())}
    manual = {
        "inclinometer": float(rng.choice([0.0, 0.0, 0.3, 0.6])),
        "settlement": float(rng.choice([0.0, 0.3, 0.6, 1.0]))
        if scenario == "embankment"
        else float(rng.choice([0.0, 0.5])),
        "gnss": 0.0,
    }
    campaign = {
        "inclinometer": int(rng.choice([14, 28])),
        "settlement": int(rng.choice([3, 7, 7, 14])),
    }
    return SiteFamily(
        scenario=scenario,
        soil=soil,
        climate=climate,
        hemisphere=hemisphere,
        utc_offset_h=float(rng.integers(-10, 13)),
        elevation_m=_u(rng, (20, 1500)),
        rain_mm_year=_u(rng, c[0]),
        storms_per_year=_u(rng, c[1]),
        storm_hours=_u(rng, c[2]),
        rain_seasonality=_u(rng, c[3]),
        wet_peak_doy=float(wet_peak),
        et_mm_year=_u(rng, c[7]),
        temp_mean=_u(rng, c[4]),
        temp_annual_amp=_u(rng, c[5]),
        temp_daily_amp=_u(rng, c[6]),
        warm_peak_doy=float(warm_peak),
        tip_mm=float(rng.choice([0.2, 0.2, 0.254, 0.5])),
        diffusivity_m2_h=_u(rng, s[0]),
        specific_yield=_u(rng, s[1]),
        kernel_shape=_u(rng, s[2]),
        dispersion_h=_u(rng, (2.0, 5.0)),
        t90_days=_u(rng, s[3]),
        mv_per_mpa=_u(rng, s[4]),
        creep_sensitivity=_u(rng, s[5]),
        water_table_depth=_u(rng, (0.5, 4.0)),
        correlation_length_m=_u(rng, (20, 120)),
        geometry=geometry,
        kind_weights=weights,
        toa5_fraction=float(rng.choice([0.5, 0.8, 1.0])),
        manual_fraction=manual,
        campaign_days=campaign,
        gnss_daily=bool(rng.uniform() < 0.4),
    )


def _draw_geometry(scenario: str, rng: np.random.Generator) -> dict[str, float]:
    if scenario == "slope":
        length = _u(rng, (120, 400))
        return {
            "length": length,
            "width": _u(rng, (60, 200)),
            "angle_deg": _u(rng, (15, 35)),
            "slip_depth": _u(rng, (6, 20)),
            "slide_x0": length * _u(rng, (0.35, 0.65)),
            "slide_rx": length * _u(rng, (0.25, 0.4)),
            "slide_ry": _u(rng, (30, 80)),
            "creep_mm_day": _u(rng, (0.02, 0.3)),
            "creep_quantile": _u(rng, (0.7, 0.9)),
        }
    if scenario == "embankment":
        return {
            "length": _u(rng, (200, 1000)),
            "crest_width": _u(rng, (12, 30)),
            "side_slope": _u(rng, (1.5, 2.5)),
            "clay_thickness": _u(rng, (6, 25)),
            "n_stages": float(rng.integers(2, 6)),
            "stage_height": _u(rng, (1.0, 2.5)),
            "fill_unit_weight": _u(rng, (18, 21)),
        }
    return {
        "crest_length": _u(rng, (200, 800)),
        "height": _u(rng, (20, 80)),
        "freeboard": _u(rng, (2, 5)),
        "drawdown_range": _u(rng, (4, 20)),
        "core_width": _u(rng, (8, 25)),
        "fill_peak_shift_days": _u(rng, (30, 120)),
    }
