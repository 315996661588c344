"""Environmental drivers: rain, air temperature, barometric pressure, evapotranspiration,
reservoir level (dams) and staged fill height (embankments).

All series are on one regular grid of `n` steps of `dt_h` hours whose step `i` is at
`times_ns[i]` (UTC nanoseconds); the grid usually starts with a warm-up period before
the output span so that slow responses are already in their stationary regime.

Guarantees: deterministic given the generator; rain is non-negative (mm per step),
seasonal through storm frequency, storm-clustered within storms; temperature has daily
(local time) and yearly cycles; the reservoir never exceeds its spillway by more than
a few decimetres; fill height is piecewise linear and non-decreasing, zero before the
first stage, and every stage starts and ends inside the output span.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from geojepa.simulate.layout import SiteFamily
from geojepa.simulate.signals import (
    ar1,
    causal_convolve,
    exp_kernel,
    gamma_kernel,
    gamma_kernel_length,
    soft_min,
)

HOURS_PER_YEAR = 8766.0
NS_PER_HOUR = 3_600_000_000_000
EPOCH_2000_NS = 946_684_800_000_000_000


@dataclass(frozen=True)
class FillStage:
    """One embankment lift: the fill rises from `start` to `top` (output-grid steps), then
    the site waits until `wait_end`; `height` is the fill height after the lift (m)."""

    start: int
    top: int
    wait_end: int
    height: float


@dataclass(frozen=True)
class Drivers:
    """Driver series, each (n,) on the simulation grid."""

    rain: np.ndarray  # mm per step (true, before the gauge's tipping-bucket resolution)
    temperature: np.ndarray  # degC, air
    pressure: np.ndarray  # kPa, barometric
    et: np.ndarray  # mm per step, potential evapotranspiration
    reservoir: np.ndarray | None  # m a.s.l. (dam only)
    tailwater: float  # m a.s.l. (dam only, else nan)
    fill: np.ndarray | None  # m of fill (embankment only)
    stages: tuple[FillStage, ...]
    fill_time_scale: float = 1.0  # every ramp and wait of `stages` is its draw x this (<= 1)


def day_of_year(times_ns: np.ndarray) -> np.ndarray:
    """Fractional day of the (mean) year, (n,)."""
    days = (times_ns.astype(np.int64) - EPOCH_2000_NS) / (24.0 * NS_PER_HOUR)
    return np.mod(days, 365.2425)


def hour_of_day(times_ns: np.ndarray, utc_offset_h: float) -> np.ndarray:
    hours = (times_ns.astype(np.int64) // 1_000_000_000) / 3600.0
    return np.mod(hours + utc_offset_h, 24.0)


def make_rain(
    fam: SiteFamily, doy: np.ndarray, dt_h: float, rng: np.random.Generator
) -> np.ndarray:
    """Storm-clustered rainfall (n,) in mm per step.

    Storms arrive as a Poisson process whose rate follows the wet season; each storm has
    an exponential duration and a gamma-distributed mean intensity, and is made of
    hour-scale rain cells with gamma weights (bursty, as gauges record it).
    """
    n = len(doy)
    phase = 2 * np.pi * (doy - fam.wet_peak_doy) / 365.25
    rate = fam.storms_per_year / HOURS_PER_YEAR * (1.0 + fam.rain_seasonality * np.cos(phase))
    counts = rng.poisson(np.clip(rate, 0.0, None) * dt_h)  # (n,) storm starts per step
    starts = np.repeat(np.arange(n), counts)
    m = len(starts)
    mean_int = fam.rain_mm_year / (fam.storms_per_year * fam.storm_hours)  # mm/h
    durations = rng.exponential(fam.storm_hours, m) + 0.25  # h
    intensity = rng.gamma(0.8, mean_int / 0.8, m)  # mm/h
    cell_h = max(dt_h, 1.0)
    cell_steps = max(1, round(cell_h / dt_h))
    rain = np.zeros(n)
    for s0, dur, inten in zip(starts.tolist(), durations.tolist(), intensity.tolist(), strict=True):
        s = int(s0)
        n_cells = max(1, math.ceil(dur / cell_h))
        w = rng.gamma(0.6, 1.0 / 0.6, n_cells)
        w = np.repeat(w, cell_steps)[: max(1, round(dur / dt_h))]
        stop = min(n, s + len(w))
        rain[s:stop] += inten * dt_h * w[: stop - s]
    return rain


def make_drivers(
    fam: SiteFamily,
    times_ns: np.ndarray,
    n_warm: int,
    dt_h: float,
    rng: np.random.Generator,
) -> Drivers:
    """All drivers of a site on the grid `times_ns` (n,), `n_warm` warm-up steps first."""
    n = len(times_ns)
    doy = day_of_year(times_ns)
    hour = hour_of_day(times_ns, fam.utc_offset_h)
    rain = make_rain(fam, doy, dt_h, rng)
    wet = causal_convolve((rain > 0).astype(np.float64), exp_kernel(6.0 / dt_h, n))
    season = np.cos(2 * np.pi * (doy - fam.warm_peak_doy) / 365.25)
    daily = np.cos(2 * np.pi * (hour - 15.0) / 24.0)
    temp = (
        fam.temp_mean
        + fam.temp_annual_amp * season
        + fam.temp_daily_amp * daily * (1.0 - 0.6 * np.clip(wet, 0, 1))
        + ar1(rng, n, 72.0 / dt_h, 2.5)
        - 1.5 * np.clip(wet, 0, 1)
    )
    p0 = 101.325 * math.exp(-fam.elevation_m / 8434.0)
    utc_hour = hour_of_day(times_ns, 0.0)
    pressure = (
        p0
        + ar1(rng, n, 48.0 / dt_h, 0.8)
        + 0.1 * np.cos(2 * np.pi * (utc_hour + fam.utc_offset_h - 10.0) / 12.0)
        - 0.6 * np.clip(causal_convolve(wet, exp_kernel(12.0 / dt_h, n)), 0, 1)
    )
    et = fam.et_mm_year / HOURS_PER_YEAR * dt_h * np.clip(1.0 + 0.9 * season, 0.0, None)
    reservoir: np.ndarray | None = None
    tailwater = float("nan")
    fill: np.ndarray | None = None
    stages: tuple[FillStage, ...] = ()
    fill_scale = 1.0
    if fam.scenario == "dam":
        reservoir, tailwater = _reservoir(fam, doy, rain, dt_h, rng)
    elif fam.scenario == "embankment":
        fill, stages, fill_scale = _fill(fam, n, n_warm, dt_h, rng)
    return Drivers(
        rain=rain,
        temperature=temp,
        pressure=pressure,
        et=et,
        reservoir=reservoir,
        tailwater=tailwater,
        fill=fill,
        stages=stages,
        fill_time_scale=fill_scale,
    )


def _reservoir(
    fam: SiteFamily, doy: np.ndarray, rain: np.ndarray, dt_h: float, rng: np.random.Generator
) -> tuple[np.ndarray, float]:
    """Reservoir level: a seasonal operating rule, rain-fed inflow, maintenance drawdowns."""
    g = fam.geometry
    base = fam.elevation_m
    top = base + g["height"] - g["freeboard"]
    span = g["drawdown_range"]
    low = top - span
    n = len(doy)
    full_doy = fam.wet_peak_doy + g["fill_peak_shift_days"]
    target = low + span * (0.55 + 0.4 * np.cos(2 * np.pi * (doy - full_doy) / 365.25))
    steps_day = 24.0 / dt_h
    # inflow from the catchment: a smooth, delayed response to rain (peak after ~5 days)
    mode = 5.0 * steps_day
    k = gamma_kernel(mode, 2.5, min(n, gamma_kernel_length(mode, 2.5)))
    wetness = causal_convolve(rain, k / k.sum())
    inflow = 0.35 * span * (wetness / max(float(wetness.mean()), 1e-9) - 1.0)
    level = target + np.clip(inflow, -0.3 * span, 0.6 * span)
    # maintenance drawdowns: drop, hold, refill
    years = n * dt_h / HOURS_PER_YEAR
    for _ in range(int(rng.poisson(0.4 * years))):
        depth = float(rng.uniform(0.3, 0.6)) * span
        s = int(rng.integers(0, n))
        down = int(rng.uniform(10, 20) * steps_day)
        hold = int(rng.uniform(10, 40) * steps_day)
        up = int(rng.uniform(20, 40) * steps_day)
        prof = np.concatenate(
            [np.linspace(0, 1, max(down, 1)), np.ones(hold), np.linspace(1, 0, max(up, 1))]
        )
        stop = min(n, s + len(prof))
        level[s:stop] -= depth * prof[: stop - s]
    level += ar1(rng, n, 6.0 / dt_h, 0.03)
    level = soft_min(level, top + 0.3, 0.08)
    tailwater = base + float(rng.uniform(0.5, 3.0))
    return level, tailwater


def _fill(
    fam: SiteFamily, n: int, n_warm: int, dt_h: float, rng: np.random.Generator
) -> tuple[np.ndarray, tuple[FillStage, ...], float]:
    """Staged fill height: each lift ramps up over U(5, 20) days, then the site waits
    U(40, 140) days for consolidation; every duration is multiplied by one scale (<= 1) so
    that the sequence ends by ~80% of the output span. Returns (fill, stages, scale)."""
    g = fam.geometry
    n_out = n - n_warm
    steps_day = 24.0 / dt_h
    k = int(g["n_stages"])
    span_days = n_out / steps_day
    start_day = span_days * float(rng.uniform(0.04, 0.1))
    ramps = rng.uniform(5, 20, k)
    waits = rng.uniform(40, 140, k)
    avail = 0.8 * span_days - start_day
    scale = min(1.0, avail / float(ramps.sum() + waits.sum()))
    heights = g["stage_height"] * rng.uniform(0.8, 1.2, k)
    fill = np.zeros(n)
    stages: list[FillStage] = []
    day = start_day
    total = 0.0
    for i in range(k):
        s = round(day * steps_day)
        t = max(s + 1, round((day + ramps[i] * scale) * steps_day))
        w = max(t + 1, round((day + (ramps[i] + waits[i]) * scale) * steps_day))
        t, w = min(t, n_out - 1), min(w, n_out)
        prev = total
        total += float(heights[i])
        ramp = np.linspace(prev, total, t - s + 1)
        fill[n_warm + s : n_warm + t + 1] = ramp
        fill[n_warm + t + 1 :] = total
        stages.append(FillStage(start=s, top=t, wait_end=w, height=round(total, 3)))
        day = w / steps_day
    return fill, tuple(stages), scale
