"""`simulate_site`: one call from (scenario, sensors, days, freq, seed) to a labelled site.

Steps: draw the site family and layout from the seed; make the drivers on a grid that
starts with a warm-up period; plan events; compute sensor physics; sample each sensor
on its schedule (logger scans, GNSS solutions, survey campaigns) with white noise; inject
sensor faults; round to each sensor's resolution (a rain gauge's tips come first, so its
faults act on tip counts and leave the bucket's phase after them unchanged); assemble the
`Site`, the drivers table, the labels and the logger tables that `SimulatedSite.write`
turns into files.

Guarantees: the same arguments give identical objects and byte-identical files; the
Site's readings are exactly what a reader parses back from the written files (values,
UTC timestamps, ``missing`` flags for NaN cells, source file names); labels cover every
sample an event changed; nothing depends on global random state.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from geojepa.errors import InputError
from geojepa.simulate.drivers import Drivers, make_drivers
from geojepa.simulate.events import (
    GEOTECHNICAL,
    SENSOR_FAULT,
    PlannedEvent,
    inject_fault,
    plan_events,
)
from geojepa.simulate.layout import (
    SCENARIOS,
    SensorSpec,
    SiteFamily,
    check_scenario,
    draw_family,
    place_sensors,
)
from geojepa.simulate.physics import simulate_physics
from geojepa.simulate.writers import (
    LoggerTable,
    decimal_values,
    decimals_of,
    write_events,
    write_lines,
    write_sensors,
    write_toa5,
    write_wide,
)
from geojepa.site import Quality, Sensor, Site, sensors_frame

log = logging.getLogger(__name__)

DEFAULT_START = "2022-01-01T00:00:00Z"
MAX_CELLS = 40_000_000  # (warm-up + output steps) x sensors held in memory at once
WARMUP_DAYS = 365.0
MAX_WARMUP_STEPS = 200_000


@dataclass(frozen=True)
class SimulatedSite:
    """A simulated site: the `Site`, its drivers, ground truth, and its logger tables.

    `truth` holds JSON-ready facts (``lag_steps`` per piezometer, ``creep`` threshold and
    failure steps, ``stages``, ``consolidation``, ``events`` with intensities, ``family``)
    plus arrays: ``signal`` (DataFrame of noise-free readings on the grid, no faults) and,
    for slopes, ``slide_displacement_mm`` (Series).
    """

    site: Site
    drivers: pd.DataFrame
    truth: dict[str, Any]
    loggers: tuple[LoggerTable, ...] = field(repr=False)
    params: Mapping[str, Any] = field(default_factory=dict)

    def write(self, out_dir: str | Path) -> list[Path]:
        """Write logger files (``loggers/``), ``sensors.csv``, ``events.csv`` and
        ``simulation.json`` into `out_dir`; returns the written paths."""
        root = Path(out_dir)
        (root / "loggers").mkdir(parents=True, exist_ok=True)
        paths: list[Path] = []
        for t in self.loggers:
            p = root / "loggers" / t.name
            (write_toa5 if t.fmt == "toa5" else write_wide)(p, t)
            paths.append(p)
        write_sensors(root / "sensors.csv", self.site.sensors)
        write_events(root / "events.csv", self.site.labels)
        meta = {
            "params": dict(self.params),
            "files": [f"loggers/{t.name}" for t in self.loggers],
            "truth": {k: v for k, v in self.truth.items() if _jsonable(v)},
        }
        _write_text(root / "simulation.json", json.dumps(meta, indent=1, sort_keys=True) + "\n")
        paths += [root / "sensors.csv", root / "events.csv", root / "simulation.json"]
        return paths


def _write_text(path: Path, text: str) -> None:
    write_lines(path, [text.rstrip("\n")], "\n")


def _jsonable(v: Any) -> bool:
    return not isinstance(v, (pd.DataFrame, pd.Series, np.ndarray))


def parse_freq(freq: str) -> pd.Timedelta:
    """A fixed grid interval between one minute and one day, or `InputError`."""
    try:
        step = pd.Timedelta(pd.tseries.frequencies.to_offset(str(freq)).nanos, unit="ns")
    except (ValueError, TypeError) as err:
        raise InputError(
            f"cannot read the interval {freq!r}",
            column="--freq",
            hint="give a fixed interval such as 15min, 1h or 1D",
        ) from err
    if not pd.Timedelta("1min") <= step <= pd.Timedelta("1D"):
        raise InputError(
            f"interval {freq!r} is outside 1min..1D",
            column="--freq",
            hint="give a fixed interval such as 15min, 1h or 1D",
        )
    return step


def simulate_site(
    scenario: str,
    n_sensors: int,
    days: float,
    freq: str,
    seed: int,
    intensity: float = 1.0,
    events: bool = True,
    *,
    start: str = DEFAULT_START,
    event_rate: float = 1.0,
) -> SimulatedSite:
    """Simulate one monitoring site of `scenario` ('slope', 'embankment', 'dam').

    `n_sensors` counts every sensor, drivers included (rain gauge, thermometer, and the
    reservoir level or fill height); `days` of readings every `freq` from `start` (UTC);
    `intensity` scales every event's amplitude (0: labels only, 1: default); `events`
    False gives a clean site with no labels; `event_rate` multiplies event counts.
    """
    scenario = check_scenario(scenario)
    step = parse_freq(freq)
    dt_h = step.total_seconds() / 3600.0
    if not (isinstance(days, (int, float)) and math.isfinite(days) and days > 0):
        raise InputError(f"days must be a positive number, got {days!r}", column="--days")
    if not (math.isfinite(intensity) and intensity >= 0):
        raise InputError(f"intensity must be >= 0, got {intensity!r}", column="--intensity")
    if not (math.isfinite(event_rate) and event_rate >= 0):
        raise InputError(f"event_rate must be >= 0, got {event_rate!r}")
    if int(seed) < 0:
        raise InputError(f"seed must be >= 0, got {seed}", column="--seed")
    n_out = round(days * 24.0 / dt_h)
    if n_out < 2:
        raise InputError(
            f"{days} days at {freq} is fewer than two readings",
            column="--days",
            hint="simulate more days or use a finer --freq",
        )
    n_warm = int(min(round(WARMUP_DAYS * 24.0 / dt_h), MAX_WARMUP_STEPS))
    if (n_out + n_warm) * int(n_sensors) > MAX_CELLS:
        raise InputError(
            f"{n_sensors} sensors x {n_out} steps is too large to simulate at once",
            column="--days",
            hint="simulate fewer sensors, fewer days or a coarser --freq",
        )
    try:
        t0 = pd.Timestamp(start)
    except ValueError as err:
        raise InputError(f"cannot read the start time {start!r}", hint="use ISO 8601") from err
    t0 = t0.tz_localize("UTC") if t0.tzinfo is None else t0.tz_convert("UTC")

    ss = np.random.SeedSequence([int(seed), SCENARIOS.index(scenario)])
    r_family, r_layout, r_drivers, r_events, r_physics, r_sample = (
        np.random.default_rng(s) for s in ss.spawn(6)
    )
    fam = draw_family(scenario, r_family)
    specs = place_sensors(fam, int(n_sensors), r_layout)
    step_ns = int(step.value)
    t0_ns = int(t0.value)
    grid_ns = t0_ns + (np.arange(n_out + n_warm, dtype=np.int64) - n_warm) * step_ns
    log.info("simulating %s: %d sensors, %d steps of %s", scenario, len(specs), n_out, freq)
    drv = make_drivers(fam, grid_ns, n_warm, dt_h, r_drivers)
    schedules, sched_ns = _schedules(fam, specs, n_out, dt_h, t0_ns, step_ns, r_sample)
    first_load = drv.stages[0].top if drv.stages else 0
    plan = (
        plan_events(
            scenario,
            specs,
            schedules,
            n_out,
            dt_h,
            r_events,
            intensity=float(intensity),
            rate=float(event_rate),
            earliest_geotech=first_load,
        )
        if events
        else []
    )
    geo = [e for e in plan if e.category == GEOTECHNICAL]
    faults = [e for e in plan if e.category == SENSOR_FAULT]
    phys = simulate_physics(fam, specs, drv, n_warm, dt_h, geo, r_physics)

    out_ns = grid_ns[n_warm:]
    values: dict[str, np.ndarray] = {}
    for i, sp in enumerate(specs):
        pos = schedules[sp.id]
        x = _sample(phys.signal[:, i], pos)
        if phys.noise_sd[i] > 0:
            x = x + r_sample.normal(0.0, phys.noise_sd[i], len(x))
        rain = sp.kind == "rain_gauge"
        if rain:  # the bucket tips on the true catch; logger faults act on the tip counts
            x = _quantise(x, sp, float(phys.resolution[i]))
        for ev in faults:
            if sp.id in ev.sensors:
                x = _fault(x, ev, sp)
        values[sp.id] = x if rain else _quantise(x, sp, float(phys.resolution[i]))

    decimals = {sp.id: decimals_of(float(phys.resolution[i])) for i, sp in enumerate(specs)}
    for sp in specs:
        values[sp.id] = decimal_values(values[sp.id], decimals[sp.id])
    station = f"SIM_{scenario.upper()}_{int(seed)}"
    tables = _tables(specs, values, sched_ns, decimals, station, step)
    site = _site(scenario, int(seed), specs, tables, fam)
    labels = _labels(plan, out_ns, sched_ns, specs)
    site = Site(
        name=site.name,
        sensors=site.sensors,
        readings=site.readings,
        labels=labels,
        meta=site.meta,
    )
    times = pd.DatetimeIndex(pd.to_datetime(out_ns, utc=True), name="time")
    drivers = _drivers_frame(drv, n_warm, times)
    truth = dict(phys.truth)
    truth["family"] = fam.describe()
    truth["events"] = [_event_json(e, out_ns, sched_ns, specs) for e in plan]
    truth["signal"] = pd.DataFrame(phys.signal, index=times, columns=[s.id for s in specs])
    if "slide_displacement_mm" in truth:
        truth["slide_displacement_mm"] = pd.Series(
            truth["slide_displacement_mm"], index=times, name="slide_displacement_mm"
        )
    params = {
        "scenario": scenario,
        "n_sensors": int(n_sensors),
        "days": float(days),
        "freq": str(freq),
        "seed": int(seed),
        "intensity": float(intensity),
        "events": bool(events),
        "event_rate": float(event_rate),
        "start": t0.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return SimulatedSite(site=site, drivers=drivers, truth=truth, loggers=tables, params=params)


# ------------------------------------------------------------------ sampling


def _schedules(
    fam: SiteFamily,
    specs: list[SensorSpec],
    n_out: int,
    dt_h: float,
    t0_ns: int,
    step_ns: int,
    rng: np.random.Generator,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Sample positions (output-grid steps, float) and UTC times (ns) of every sensor."""
    steps_day = 24.0 / dt_h
    minute = 60_000_000_000
    pos: dict[str, np.ndarray] = {}
    tns: dict[str, np.ndarray] = {}
    grid = np.arange(n_out, dtype=np.float64)
    campaigns: dict[str, np.ndarray] = {}
    for sp in specs:
        if sp.sampling == "logger" or dt_h >= 24.0:
            p = grid
        elif sp.sampling == "gnss":
            every = steps_day if fam.gnss_daily else max(1.0, 1.0 / dt_h)
            p = np.arange(0.0, n_out, round(every))
        elif sp.sampling == "daily":
            first = ((17.0 - fam.utc_offset_h) % 24.0) / dt_h
            p = np.arange(first, n_out - 1, steps_day)
        else:
            if sp.kind not in campaigns:
                every = fam.campaign_days.get(sp.kind, 14)
                days = np.arange(0, n_out / steps_day, every, dtype=np.float64)
                days = days + rng.integers(0, 2, len(days))  # a day late now and then
                hour = (9.0 - fam.utc_offset_h) % 24.0 + rng.uniform(0, 6, len(days))
                minutes = np.round((days * 24.0 + hour) * 60.0)
                p = minutes / 60.0 / dt_h
                campaigns[sp.kind] = np.unique(p[p <= n_out - 1])
            p = campaigns[sp.kind]
        pos[sp.id] = p
        tns[sp.id] = t0_ns + np.round(p * step_ns / minute).astype(np.int64) * minute
        if sp.sampling == "logger" or dt_h >= 24.0:
            tns[sp.id] = t0_ns + p.astype(np.int64) * step_ns
    return pos, tns


def _sample(signal: np.ndarray, pos: np.ndarray) -> np.ndarray:
    if len(pos) == len(signal) and pos[0] == 0:
        return signal.copy()
    if np.all(pos == np.round(pos)):
        return signal[pos.astype(np.int64)].copy()
    return np.interp(pos, np.arange(len(signal), dtype=np.float64), signal)


def _fault(x: np.ndarray, ev: PlannedEvent, sp: SensorSpec) -> np.ndarray:
    rng = np.random.default_rng(ev.seed)
    if sp.kind == "rain_gauge" and ev.kind == "stuck" and ev.intensity > 0:
        out = x.copy()
        out[ev.start : ev.end] = 0.0  # a clogged funnel reads no rain
        return out
    return inject_fault(x, ev.kind, ev.start, ev.end, ev.intensity, rng)


def _quantise(x: np.ndarray, sp: SensorSpec, res: float) -> np.ndarray:
    if sp.kind == "rain_gauge":
        # tipping bucket: whole tips of the cumulative catch, per interval
        good = np.isfinite(x)
        cum = np.cumsum(np.where(good, np.maximum(x, 0.0), 0.0))
        tips = np.floor(cum / res + 1e-9)
        per = np.diff(tips, prepend=0.0) * res
        return np.where(good, per, np.nan)
    return np.round(x / res) * res


# ------------------------------------------------------------------ assembly


def _tables(
    specs: list[SensorSpec],
    values: Mapping[str, np.ndarray],
    sched_ns: Mapping[str, np.ndarray],
    decimals: Mapping[str, int],
    station: str,
    step: pd.Timedelta,
) -> tuple[LoggerTable, ...]:
    minutes = int(step.total_seconds() // 60)
    table = {60: "Hourly", 1440: "Daily"}.get(minutes, f"Min{minutes}")
    by_logger: dict[str, list[SensorSpec]] = {}
    for sp in specs:
        by_logger.setdefault(sp.logger, []).append(sp)
    out = []
    for name in sorted(by_logger):
        group = by_logger[name]
        times = sched_ns[group[0].id]
        proc = tuple(
            "Tot" if s.kind == "rain_gauge" else "Avg" if s.kind == "thermometer" else "Smp"
            for s in group
        )
        out.append(
            LoggerTable(
                name=name,
                fmt="toa5" if name.endswith(".dat") else "wide",
                station=station,
                table=table if name.endswith(".dat") else "",
                times_ns=times,
                ids=tuple(s.id for s in group),
                units=tuple(s.unit for s in group),
                processes=proc,
                decimals=tuple(decimals[s.id] for s in group),
                values=np.stack([values[s.id] for s in group], axis=1),  # (S, k)
            )
        )
    return tuple(out)


def _site(
    scenario: str,
    seed: int,
    specs: list[SensorSpec],
    tables: tuple[LoggerTable, ...],
    fam: SiteFamily,
) -> Site:
    ids: list[str] = []
    names = [t.name for t in tables]
    ts_parts, id_codes, val_parts, src_codes = [], [], [], []
    for k, t in enumerate(tables):
        s = len(t.times_ns)
        for j, sid in enumerate(t.ids):
            ts_parts.append(t.times_ns)
            id_codes.append(np.full(s, len(ids), dtype=np.int32))
            ids.append(sid)
            val_parts.append(t.values[:, j])
            src_codes.append(np.full(s, k, dtype=np.int32))
    vals = np.concatenate(val_parts)
    stamps = np.concatenate(ts_parts).astype(np.int64).view("datetime64[ns]")
    flags = [Quality.OK.value, Quality.MISSING.value]

    def text(words: list[str], codes: np.ndarray) -> pd.Series:
        # many repeats of few strings: build the arrow string column by take (fast)
        return pd.Series(pa.array(words).take(pa.array(codes)).to_pandas(), copy=False)

    readings = pd.DataFrame(
        {
            "timestamp": pd.DatetimeIndex(stamps).tz_localize("UTC"),
            "sensor_id": text(ids, np.concatenate(id_codes)),
            "value": vals,
            "quality": text(flags, np.isnan(vals).astype(np.int32)),
            "source": text(names, np.concatenate(src_codes)),
        }
    )
    sensors = sensors_frame(
        Sensor(
            id=s.id,
            kind=s.kind,
            unit=s.unit,
            x=s.x,
            y=s.y,
            z=s.z,
            group=s.group,
            meta={"depth": round(s.depth, 3), "logger": s.logger, "sampling": s.sampling},
        )
        for s in specs
    )
    meta = {"simulated": True, "scenario": scenario, "seed": seed, "family": fam.describe()}
    return Site(name=f"sim-{scenario}-{seed}", sensors=sensors, readings=readings, meta=meta)


def _window_times(
    ev: PlannedEvent,
    out_ns: np.ndarray,
    sched_ns: Mapping[str, np.ndarray],
) -> tuple[int, int]:
    """Label start and end (inclusive) in ns. Geotechnical: [start, end - 1] on the grid;
    faults: [start, end] on the sensors' schedule (the first sample after a fault shows
    its end: the jump back)."""
    if ev.category == GEOTECHNICAL:
        return int(out_ns[ev.start]), int(out_ns[ev.end - 1])
    t = sched_ns[ev.sensors[0]]
    return int(t[ev.start]), int(t[min(ev.end, len(t) - 1)])


def _labels(
    plan: list[PlannedEvent],
    out_ns: np.ndarray,
    sched_ns: Mapping[str, np.ndarray],
    specs: list[SensorSpec],
) -> pd.DataFrame:
    rows = []
    for ev in plan:
        a, b = _window_times(ev, out_ns, sched_ns)
        rows.append(
            {
                "start": pd.Timestamp(a, tz="UTC"),
                "end": pd.Timestamp(b, tz="UTC"),
                "kind": ev.kind,
                "sensors": ";".join(ev.sensors),
                "category": ev.category,
                "source": "simulator",
            }
        )
    df = pd.DataFrame(rows, columns=["start", "end", "kind", "sensors", "category", "source"])
    if len(df):
        df = df.sort_values(["start", "kind", "sensors"], kind="stable", ignore_index=True)
    return df


def _event_json(
    ev: PlannedEvent,
    out_ns: np.ndarray,
    sched_ns: Mapping[str, np.ndarray],
    specs: list[SensorSpec],
) -> dict[str, Any]:
    a, b = _window_times(ev, out_ns, sched_ns)
    d: dict[str, Any] = {
        "kind": ev.kind,
        "category": ev.category,
        "sensors": list(ev.sensors),
        "start": pd.Timestamp(a, tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end": pd.Timestamp(b, tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ"),
        "intensity": round(ev.intensity, 4),
    }
    if ev.failure_step is not None:
        step = (int(out_ns[1]) - int(out_ns[0])) if len(out_ns) > 1 else 0
        tf = int(out_ns[0]) + round(ev.failure_step * step)
        d["failure_time"] = pd.Timestamp(tf, tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
    return d


def _drivers_frame(drv: Drivers, n_warm: int, times: pd.DatetimeIndex) -> pd.DataFrame:
    cols: dict[str, np.ndarray] = {
        "rain": drv.rain[n_warm:],
        "temperature": drv.temperature[n_warm:],
        "pressure": drv.pressure[n_warm:],
        "et": drv.et[n_warm:],
    }
    if drv.reservoir is not None:
        cols["reservoir"] = drv.reservoir[n_warm:]
    if drv.fill is not None:
        cols["fill"] = drv.fill[n_warm:]
    return pd.DataFrame(cols, index=times)
