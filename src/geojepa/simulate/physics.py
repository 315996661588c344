"""Sensor physics: what each simulated instrument reads, before faults and resolution.

For every sensor this computes, on the simulation grid, the physical quantity at its
position (pore pressure, displacement, settlement, strain...) plus the systematic
effects of the instrument (vibrating-wire thermal sensitivity, barometric effect of
unvented gauges, rod expansion) and spatially correlated process noise. White
measurement noise, sampling, faults and resolution are applied later (`api`).

Physics:

- piezometers respond to rain through a gamma-shaped impulse response whose peak lag
  grows with depth (lag0 + depth^2 / (6 D), a diffusion time) and whose gain attenuates
  with depth; a slow response to net recharge (rain - evapotranspiration) gives the
  seasons; dam piezometers follow the reservoir through a lagged kernel and a head ratio
  eta falling from the upstream face; foundation piezometers under an embankment carry
  excess pore pressure B * dq dissipating as consolidation proceeds;
- slope creep rate grows when the slip-surface pore pressure exceeds a threshold;
  accelerating-creep events add a velocity ~ 1/(t_f - t) (Fukuzono's inverse velocity);
- settlement under staged fill superposes Terzaghi consolidation curves, one per load
  increment, plus secondary compression: each stage restarts a fast-then-slowing curve;
- strain gauges carry thermal strain plus load (fill, reservoir, nail tension);
- ground temperature at depth d lags and damps the air temperature (first-order filter
  with time constant ~ d^2 / kappa).

The scenario physics lives in `slope`, `embankment` and `dam`; shared pieces (context,
process noise, piezometer rain response, vibrating-wire effects) in `response`.

Guarantees: deterministic given the generator; `truth` records the configured lags
(argmax of each discrete impulse response, in grid steps), the creep threshold and
failure times, the consolidation parameters, and the noise-free signal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from geojepa.simulate.dam import dam_physics
from geojepa.simulate.drivers import Drivers
from geojepa.simulate.embankment import embankment_physics
from geojepa.simulate.events import PlannedEvent
from geojepa.simulate.layout import SensorSpec, SiteFamily
from geojepa.simulate.response import Ctx
from geojepa.simulate.slope import slope_physics


@dataclass(frozen=True)
class Physics:
    """Sensor signals on the output grid and their measurement models."""

    signal: np.ndarray  # (T, C) reading before white noise, faults and resolution
    noise_sd: np.ndarray  # (C,) white measurement noise std per reading
    resolution: np.ndarray  # (C,) reading resolution (rain: tipping-bucket volume)
    truth: dict[str, Any]


# kind -> (logger noise range, logger resolution, manual noise range, manual resolution)


MEASUREMENT: dict[str, tuple[tuple[float, float], float, tuple[float, float], float]] = {
    "piezometer": ((0.01, 0.05), 0.01, (0.3, 1.0), 0.1),
    "strain_gauge": ((0.3, 1.5), 0.1, (2.0, 5.0), 1.0),
    "inclinometer": ((0.02, 0.08), 0.01, (0.3, 0.8), 0.1),
    "extensometer": ((0.01, 0.04), 0.01, (0.2, 0.5), 0.1),
    "settlement": ((0.3, 1.0), 0.1, (1.0, 3.0), 1.0),
    "gnss": ((2.0, 4.0), 0.1, (0.8, 1.5), 0.1),  # manual slot = daily solutions
    "thermometer": ((0.03, 0.08), 0.1, (0.3, 0.5), 0.1),
    "barometer": ((0.01, 0.03), 0.01, (0.05, 0.1), 0.01),
    "water_level": ((0.003, 0.008), 0.01, (0.01, 0.02), 0.01),
    "load": ((0.03, 0.08), 0.1, (0.03, 0.08), 0.1),
    "discharge": ((0.05, 0.2), 0.01, (0.2, 0.5), 0.1),
}


def simulate_physics(
    fam: SiteFamily,
    specs: Sequence[SensorSpec],
    drv: Drivers,
    n_warm: int,
    dt_h: float,
    geo_events: Sequence[PlannedEvent],
    rng: np.random.Generator,
) -> Physics:
    """Signals (T_out, C) of every sensor of `specs` (geotechnical events included)."""
    ctx = Ctx(fam, drv, n_warm, dt_h, geo_events, rng)
    c = len(specs)
    sig = np.zeros((ctx.n, c))  # (n, C) full grid incl. warm-up
    truth: dict[str, Any] = {"lag_steps": {}, "lag_hours": {}}
    col = {s.id: i for i, s in enumerate(specs)}
    by_kind: dict[str, list[SensorSpec]] = {}
    for s in specs:
        by_kind.setdefault(s.kind, []).append(s)

    # drivers seen by their own gauges
    for s in by_kind.get("rain_gauge", []):
        sig[:, col[s.id]] = drv.rain * float(rng.uniform(0.9, 0.98))  # wind under-catch
    for s in by_kind.get("thermometer", []):
        sig[:, col[s.id]] = drv.temperature + float(rng.normal(0, 0.2))
    for s in by_kind.get("barometer", []):
        sig[:, col[s.id]] = drv.pressure + float(rng.normal(0, 0.05))
    for s in by_kind.get("water_level", []):
        if drv.reservoir is not None:
            sig[:, col[s.id]] = drv.reservoir
    for s in by_kind.get("load", []):
        if drv.fill is not None:
            sig[:, col[s.id]] = drv.fill

    if fam.scenario == "slope":
        slope_physics(ctx, by_kind, col, sig, truth)
    elif fam.scenario == "embankment":
        embankment_physics(ctx, by_kind, col, sig, truth)
    else:
        dam_physics(ctx, by_kind, col, sig, truth)

    noise = np.zeros(c)
    res = np.zeros(c)
    for i, s in enumerate(specs):
        if s.kind == "rain_gauge":
            noise[i], res[i] = 0.0, fam.tip_mm
            continue
        lo_n, lo_r, man_n, man_r = MEASUREMENT[s.kind]
        sparse = s.sampling == "manual" or (s.kind == "gnss" and fam.gnss_daily)
        rng_n = man_n if sparse else lo_n
        noise[i] = float(rng.uniform(*rng_n))
        res[i] = man_r if sparse else lo_r
        if s.kind == "discharge":
            noise[i] *= max(1.0, float(np.mean(sig[:, i])) / 20.0)
    out = np.ascontiguousarray(sig[n_warm:])
    return Physics(signal=out, noise_sd=noise, resolution=res, truth=truth)
