"""Labelled events: fault models callable on any array, and the simulator's event plan.

`inject_fault(values, kind, start, end, intensity, rng)` puts one event into a copy of
a (T,) or (T, C) series, real or simulated. Sensor faults (spike, step, drift, stuck,
noise_burst, dropout, clock_shift) change samples in [start, end) only; the generic
geotechnical shapes (pore_pressure_rise, seepage_change: a rise and a return;
settlement_acceleration, accelerating_creep: extra movement that stays) follow the
physical patterns the simulator produces. Amplitudes scale with `intensity` (0: no
change, 1: the default, larger: more obvious) and with the series' own robust scales:
`noise` (from the MAD of first differences) and `spread` (from the interquartile range).

`plan_events` draws where and when the simulator's events happen, without overlaps on
any one sensor.

Guarantees: deterministic given `rng`; the input array is never modified; NaN samples
stay NaN (except where a fault reads earlier samples: stuck, clock_shift); every planned
event lies inside the output span; labels cover every changed sample.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from geojepa.errors import InputError
from geojepa.simulate.layout import SensorSpec

FAULT_KINDS: tuple[str, ...] = (
    "spike",
    "step",
    "drift",
    "stuck",
    "noise_burst",
    "dropout",
    "clock_shift",
)
GEOTECH_KINDS: tuple[str, ...] = (
    "pore_pressure_rise",
    "seepage_change",
    "accelerating_creep",
    "settlement_acceleration",
)
EVENT_KINDS: tuple[str, ...] = FAULT_KINDS + GEOTECH_KINDS
SENSOR_FAULT = "sensor_fault"
GEOTECHNICAL = "geotechnical"
PERSISTENT_KINDS: tuple[str, ...] = ("accelerating_creep", "settlement_acceleration")
"""Kinds whose extra movement stays after the event (displacement does not go back)."""

CREEP_FAILURE_FRACTION = 0.85
"""An accelerating-creep event ends (stabilisation) at this fraction of the time from its
start to the failure time its inverse-velocity trend points to."""

CREEP_CORE_SLIDE = 0.3
"""A slope gets accelerating-creep events only if a displacement sensor moves with at least
this fraction of the slide (its ``slide`` factor)."""

CREEP_LABEL_SLIDE = 0.05
"""An accelerating-creep label lists every displacement sensor whose ``slide`` factor is at
least this; the event's extra movement reaches exactly those sensors (see `slope`)."""


@dataclass(frozen=True)
class SeriesScale:
    """Robust scales of a series: `noise` (std of white noise) and `spread` (of the level)."""

    noise: float
    spread: float


def series_scale(values: np.ndarray) -> SeriesScale:
    """Robust noise and spread of a (T,) series, NaN-aware, never zero."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if len(v) < 3:
        return SeriesScale(noise=1.0, spread=1.0)
    d = np.diff(v)
    noise = 1.4826 * float(np.median(np.abs(d - np.median(d)))) / math.sqrt(2.0)
    q75, q25 = np.percentile(v, [75, 25])
    spread = float(q75 - q25) / 1.349
    if spread <= 0:
        spread = float(np.std(v))
    if noise <= 0:
        # quantised or very smooth series: use the typical non-zero change
        nz = np.abs(d[d != 0])
        noise = float(np.median(nz)) if len(nz) else 0.0
    if spread <= 0 and noise <= 0:
        spread = noise = max(abs(float(np.median(v))) * 1e-3, 1e-3)
    if noise <= 0:
        noise = spread * 1e-2
    if spread <= 0:
        spread = noise * 10.0
    return SeriesScale(noise=noise, spread=spread)


def event_shape(kind: str, n: int, start: int, end: int) -> np.ndarray:
    """Unit-amplitude profile (n,) of a geotechnical event over [start, end).

    pore_pressure_rise: smooth rise over the first 40%, plateau, return over the last 20%;
    seepage_change: slower rise over the first 50%, plateau, return over the last 15%;
    settlement_acceleration: quadratic (accelerating) extra settlement reaching 1 at the
    end and staying; accelerating_creep: extra displacement whose velocity follows
    v ~ 1/(t_f - t) (linear inverse velocity) reaching 1 at the end and staying.
    """
    out = np.zeros(n)
    m = end - start
    if m <= 0:
        return out
    t = (np.arange(m) + 0.5) / m  # (m,) in (0, 1)
    if kind in ("pore_pressure_rise", "seepage_change"):
        up, down = (0.4, 0.2) if kind == "pore_pressure_rise" else (0.5, 0.15)
        rise = 0.5 - 0.5 * np.cos(np.pi * np.clip(t / up, 0, 1))
        fall = 0.5 - 0.5 * np.cos(np.pi * np.clip((1 - t) / down, 0, 1))
        out[start:end] = np.minimum(rise, fall)
    elif kind == "settlement_acceleration":
        out[start:end] = t**2
        out[end:] = 1.0
    elif kind == "accelerating_creep":
        f = CREEP_FAILURE_FRACTION
        # displacement of v = 1/(1 - f t): -log(1 - f t) / f, normalised to 1 at t = 1
        disp = -np.log1p(-f * t)
        out[start:end] = disp / -math.log1p(-f)
        out[end:] = 1.0
    else:
        raise InputError(f"{kind!r} has no event shape", hint="use a geotechnical kind")
    return out


def _check(kind: str, n: int, start: int, end: int, intensity: float) -> None:
    if kind not in EVENT_KINDS:
        raise InputError(
            f"unknown event kind {kind!r}", hint="use one of " + ", ".join(EVENT_KINDS)
        )
    if not 0 <= start < end <= n:
        raise InputError(
            f"event window [{start}, {end}) is outside a series of length {n}",
            hint="pass 0 <= start < end <= len(values)",
        )
    if not (math.isfinite(intensity) and intensity >= 0):
        raise InputError(f"intensity must be a finite number >= 0, got {intensity}")


def inject_fault(
    values: np.ndarray,
    kind: str,
    start: int,
    end: int,
    intensity: float,
    rng: np.random.Generator,
    *,
    scale: SeriesScale | None = None,
) -> np.ndarray:
    """Return a float64 copy of `values` (T,) or (T, C) with one `kind` event in [start, end).

    On a 2-D array the event hits every column at the same samples (e.g. a logger's clock),
    each column with its own scale. `scale` overrides the robust scales measured on the
    series. Amplitudes at intensity 1: spike max(10 noise, 0.5 spread); step max(8 noise,
    0.3 spread); drift 0.5 spread at the end (linear); noise_burst std max(6 noise, 0.05
    spread); clock_shift max(1, round(2 intensity)) samples late; stuck (holds the last
    reading before the window) and dropout (NaN) do not depend on intensity (except
    intensity 0: no change); pore_pressure_rise 1.0 spread;
    seepage_change 0.6 spread; settlement_acceleration max(0.3 spread, 20 noise) and
    accelerating_creep max(0.5 spread, 20 noise) in the direction of the series' trend.
    """
    arr = np.asarray(values, dtype=np.float64)
    n = arr.shape[0]
    _check(kind, n, int(start), int(end), float(intensity))
    out = arr.copy()
    if arr.ndim == 1:
        _inject_1d(out, kind, int(start), int(end), float(intensity), rng, scale)
    elif arr.ndim == 2:
        for c in range(arr.shape[1]):
            col = out[:, c].copy()
            _inject_1d(col, kind, int(start), int(end), float(intensity), rng, scale)
            out[:, c] = col
    else:
        raise InputError(f"values must be (T,) or (T, C), got shape {arr.shape}")
    return out


def _inject_1d(
    v: np.ndarray,
    kind: str,
    s: int,
    e: int,
    intensity: float,
    rng: np.random.Generator,
    scale: SeriesScale | None,
) -> None:
    """Modify `v` (T,) in place."""
    if intensity == 0:
        return
    sc = scale if scale is not None else series_scale(v)
    sign = 1.0 if rng.uniform() < 0.5 else -1.0
    jitter = float(rng.uniform(0.7, 1.3))
    if kind == "spike":
        amp = intensity * jitter * max(10.0 * sc.noise, 0.5 * sc.spread)
        signs = np.where(rng.uniform(size=e - s) < 0.5, -1.0, 1.0)
        v[s:e] += signs * amp * rng.uniform(0.8, 1.2, e - s)
    elif kind == "step":
        v[s:e] += sign * intensity * jitter * max(8.0 * sc.noise, 0.3 * sc.spread)
    elif kind == "drift":
        ramp = (np.arange(e - s) + 1.0) / (e - s)
        v[s:e] += sign * intensity * jitter * 0.5 * sc.spread * ramp
    elif kind == "stuck":
        # the last reading before the window (the first one if the window starts the series)
        src = v[: max(s, 1)][np.isfinite(v[: max(s, 1)])]
        held = float(src[-1]) if len(src) else float("nan")
        v[s:e] = held
    elif kind == "noise_burst":
        sd = intensity * jitter * max(6.0 * sc.noise, 0.05 * sc.spread)
        v[s:e] += rng.normal(0.0, sd, e - s)
    elif kind == "dropout":
        v[s:e] = np.nan
    elif kind == "clock_shift":
        k = max(1, round(2.0 * intensity))
        src = np.arange(s, e) - k
        orig = v.copy()
        v[s:e] = orig[np.clip(src, 0, None)]
    else:
        direction = _trend_sign(v)
        if kind == "pore_pressure_rise":
            amp = intensity * jitter * max(1.0 * sc.spread, 10.0 * sc.noise)
            v += amp * event_shape(kind, len(v), s, e)
        elif kind == "seepage_change":
            amp = intensity * jitter * max(0.6 * sc.spread, 8.0 * sc.noise)
            v += amp * event_shape(kind, len(v), s, e)
        elif kind == "settlement_acceleration":
            amp = intensity * jitter * max(0.3 * sc.spread, 20.0 * sc.noise)
            v += direction * amp * event_shape(kind, len(v), s, e)
        else:  # accelerating_creep
            amp = intensity * jitter * max(0.5 * sc.spread, 20.0 * sc.noise)
            v += direction * amp * event_shape(kind, len(v), s, e)


def _trend_sign(v: np.ndarray) -> float:
    f = v[np.isfinite(v)]
    if len(f) < 10:
        return 1.0
    k = max(1, len(f) // 10)
    return 1.0 if float(np.median(f[-k:])) >= float(np.median(f[:k])) else -1.0


# ---------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class PlannedEvent:
    """One event of a simulated site.

    Geotechnical events: `start`/`end` are output-grid steps [start, end). Sensor faults:
    sample indices [start, end) in the (shared) sampling schedule of `sensors`. `seed`
    seeds the generator that injects it; `failure_step` is the output-grid step the
    inverse-velocity trend of an accelerating-creep event points to.
    """

    kind: str
    category: str
    sensors: tuple[str, ...]
    start: int
    end: int
    intensity: float
    seed: int
    failure_step: float | None = None


# duration ranges in hours per fault kind (spike: samples)
FAULT_HOURS: Mapping[str, tuple[float, float]] = {
    "step": (24, 240),
    "drift": (168, 1440),
    "stuck": (6, 120),
    "noise_burst": (6, 72),
    "dropout": (2, 168),
    "clock_shift": (24, 336),
}
FAULTS_BY_SAMPLING: Mapping[str, tuple[str, ...]] = {
    "logger": ("spike", "step", "drift", "stuck", "noise_burst", "dropout"),
    "gnss": ("spike", "step", "drift", "noise_burst", "dropout"),
    "manual": ("spike", "step"),
    "daily": ("spike",),
}
RAIN_FAULTS: tuple[str, ...] = ("stuck", "dropout")
DISPLACEMENT_KINDS: tuple[str, ...] = ("inclinometer", "extensometer", "gnss", "strain_gauge")


class _Occupancy:
    """Per-sensor busy intervals (output-grid steps) so events never overlap on a sensor."""

    def __init__(self, margin: float) -> None:
        self.busy: dict[str, list[tuple[float, float]]] = {}
        self.margin = margin

    def free(self, sensors: Sequence[str], a: float, b: float) -> bool:
        for sid in sensors:
            for x, y in self.busy.get(sid, []):
                if a <= y + self.margin and x <= b + self.margin:
                    return False
        return True

    def take(self, sensors: Sequence[str], a: float, b: float) -> None:
        for sid in sensors:
            self.busy.setdefault(sid, []).append((a, b))


def plan_events(
    scenario: str,
    specs: Sequence[SensorSpec],
    schedules: Mapping[str, np.ndarray],
    n_out: int,
    dt_h: float,
    rng: np.random.Generator,
    *,
    intensity: float = 1.0,
    rate: float = 1.0,
    earliest_geotech: int = 0,
) -> list[PlannedEvent]:
    """Draw the events of one site: geotechnical ones first, then sensor faults.

    `schedules` maps a sensor id to its sample positions in output-grid steps (S,).
    `rate` multiplies every event rate (per sensor-year). Events avoid the first 2% of
    the span and never overlap on one sensor.
    """
    years = n_out * dt_h / 8766.0
    steps_day = 24.0 / dt_h
    occ = _Occupancy(margin=2.0)
    events: list[PlannedEvent] = []
    lo = int(0.02 * n_out)
    by_kind: dict[str, list[SensorSpec]] = {}
    for sp in specs:
        by_kind.setdefault(sp.kind, []).append(sp)
    long_enough = n_out * dt_h >= 60 * 24

    def window(days: tuple[float, float], first: int) -> tuple[int, int] | None:
        dur = round(float(rng.uniform(*days)) * steps_day)
        dur = max(3, min(dur, int(0.3 * n_out)))
        first = max(first, lo)
        if n_out - dur - 1 <= first:
            return None
        s = int(rng.integers(first, n_out - dur - 1))
        return s, s + dur

    def add_geo(kind: str, sensors: list[str], days: tuple[float, float], first: int) -> None:
        for _ in range(20):
            w = window(days, first)
            if w is None:
                return
            if occ.free(sensors, w[0], w[1]):
                occ.take(sensors, w[0], w[1])
                eff = intensity * float(rng.uniform(0.7, 1.3))
                fail = None
                if kind == "accelerating_creep":
                    fail = w[0] + (w[1] - w[0]) / CREEP_FAILURE_FRACTION
                seed = int(rng.integers(0, 2**31 - 1))
                events.append(
                    PlannedEvent(kind, GEOTECHNICAL, tuple(sensors), w[0], w[1], eff, seed, fail)
                )
                return

    piezos = [s for s in by_kind.get("piezometer", []) if s.sampling == "logger"]

    def piezo_group(pick: list[SensorSpec]) -> list[str]:
        anchor = pick[int(rng.integers(0, len(pick)))]
        same = sorted(
            (s for s in pick if s.group == anchor.group),
            key=lambda s: abs(s.z - anchor.z),
        )
        k = int(rng.integers(1, 3))
        return [s.id for s in same[:k]]

    if scenario == "slope":
        slide = {s.id: s.factors.get("slide", 0.0) for s in specs if s.kind in DISPLACEMENT_KINDS}
        moving = [sid for sid, f in slide.items() if f >= CREEP_LABEL_SLIDE]
        if any(f >= CREEP_CORE_SLIDE for f in slide.values()) and long_enough:
            for _ in range(1 + int(years > 2.0)):
                add_geo("accelerating_creep", moving, (20, 60), max(lo, n_out // 3))
    elif scenario == "embankment":
        plates = [s for s in by_kind.get("settlement", [])]
        if plates and long_enough:
            n_ev = max(1, int(rng.poisson(rate * 0.15 * len(plates) * years)))
            for _ in range(n_ev):
                anchor = plates[int(rng.integers(0, len(plates)))]
                sec = [s.id for s in plates if s.group == anchor.group][:3]
                add_geo("settlement_acceleration", sec, (10, 40), earliest_geotech)
    elif scenario == "dam":
        cand = [s for s in piezos] + list(by_kind.get("discharge", []))
        if cand and long_enough:
            n_ev = max(1, int(rng.poisson(rate * 0.25 * len(cand) * years)))
            for _ in range(n_ev):
                if by_kind.get("discharge") and rng.uniform() < 0.15:
                    add_geo("seepage_change", [by_kind["discharge"][0].id], (20, 90), lo)
                elif piezos:
                    add_geo("seepage_change", piezo_group(piezos), (20, 90), lo)
    if piezos and long_enough:
        per = {"slope": 0.3, "embankment": 0.2, "dam": 0.1}[scenario]
        for _ in range(int(rng.poisson(rate * per * len(piezos) * years))):
            add_geo("pore_pressure_rise", piezo_group(piezos), (5, 40), lo)

    # ---- sensor faults
    def add_fault(kind: str, sensors: list[str], sched: np.ndarray) -> None:
        n_s = len(sched)
        if n_s < 8:
            return
        step_h = dt_h * float(np.median(np.diff(sched))) if n_s > 1 else dt_h
        for _ in range(20):
            if kind == "spike":
                m = int(rng.integers(1, 4)) if step_h <= 24 else 1
            else:
                hours = float(rng.uniform(*FAULT_HOURS[kind]))
                m = max(3 if kind == "drift" else 1, round(hours / step_h))
            m = min(m, max(1, n_s // 5))
            first = int(np.searchsorted(sched, lo))
            if n_s - m - 1 <= first:
                return
            s = int(rng.integers(first, n_s - m - 1))
            a, b = float(sched[s]), float(sched[min(s + m, n_s - 1)])
            if occ.free(sensors, a, b):
                occ.take(sensors, a, b)
                eff = intensity * float(rng.uniform(0.7, 1.3))
                seed = int(rng.integers(0, 2**31 - 1))
                events.append(PlannedEvent(kind, SENSOR_FAULT, tuple(sensors), s, s + m, eff, seed))
                return

    for sp in specs:
        allowed = RAIN_FAULTS if sp.kind == "rain_gauge" else FAULTS_BY_SAMPLING[sp.sampling]
        for _ in range(int(rng.poisson(rate * 0.8 * years))):
            kind = str(allowed[int(rng.integers(0, len(allowed)))])
            add_fault(kind, [sp.id], schedules[sp.id])
    loggers: dict[str, list[str]] = {}
    for sp in specs:
        if sp.sampling == "logger":
            loggers.setdefault(sp.logger, []).append(sp.id)
    for name in sorted(loggers):
        for _ in range(int(rng.poisson(rate * 0.5 * years))):
            ids = loggers[name]
            add_fault("clock_shift", ids, schedules[ids[0]])
    return events
