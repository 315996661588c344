"""The sites a benchmark runs on: simulated scenarios, and real series with injected faults.

- `simulated_builder`: a `SiteBuilder` that draws ``simulate_site(scenario, n_sensors, days,
  freq, seed, intensity)`` for each case (the simulator labels its own events); with
  `inject`, it also puts one fault of each named kind (e.g. drift, whose 1-8 week
  durations rarely fit a short simulated test period) into the test period of a monitoring
  sensor that has no other test-period event, drawn with the case's seed.
- `inject_events`: puts labelled faults (the simulator's fault models, `inject_fault`) into
  the test period of one sensor of a real site. The series itself is kept as read
  everywhere else; the fault amplitudes are scaled by the training period's own noise and
  spread, so "intensity 1" means the same thing on every well.
- `gw_builder` / `gw_cases`: the ``gw-challenge`` wells (heads only by default) with faults
  injected, one case per (well, intensity, seed).

Guarantees: the same case gives the same site; injected events lie in the test period only
(after the split the harness uses), never overlap, and are labelled with their kind,
sensor and category ``sensor_fault``; readings keep their source with ``+injected``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from geojepa.errors import InputError
from geojepa.evaluate.benchmark import Case, SiteBuilder
from geojepa.frame import to_frame
from geojepa.site import MONITORING_KINDS, Quality, Site

log = logging.getLogger(__name__)

__all__ = [
    "FAULT_DAYS",
    "INJECT_DAYS",
    "MONITORING_KINDS",
    "REAL_FAULT_KINDS",
    "gw_builder",
    "gw_cases",
    "inject_events",
    "simulated_builder",
]

REAL_FAULT_KINDS: tuple[str, ...] = ("spike", "step", "drift", "stuck")
FAULT_DAYS: dict[str, float] = {"spike": 0.0, "step": 60.0, "drift": 120.0, "stuck": 45.0}
"""Length of each injected fault in days (0: a single grid row)."""

INJECT_DAYS: dict[str, float] = {"spike": 0.0, "step": 10.0, "drift": 21.0, "stuck": 5.0}
"""Length of a fault injected into a simulated site (inside the simulator's ranges)."""


def simulated_builder(
    n_sensors: int = 16,
    days: int = 120,
    freq: str = "1h",
    event_rate: float = 3.0,
    inject: Sequence[str] = (),
    train_fraction: float = 0.5,
) -> SiteBuilder:
    """A builder drawing ``simulate_site`` for each case (scenario, intensity, seed).

    `event_rate` multiplies the simulator's event counts, so a test period of weeks holds
    enough events to measure recall and precision. `inject`: fault kinds added, one each,
    to the test period (rows >= `train_fraction` of the grid) by `inject_simulated`.
    """

    def build(case: Case) -> Site:
        try:
            from geojepa.simulate import simulate_site  # type: ignore[attr-defined,unused-ignore]
        except ImportError as err:
            raise InputError(
                "the simulator is not available in this installation",
                hint="benchmark real data instead, or install the full package",
            ) from err
        sim = simulate_site(
            scenario=case.scenario,
            n_sensors=n_sensors,
            days=days,
            freq=freq,
            seed=case.seed,
            intensity=case.intensity,
            event_rate=event_rate,
        )
        site = sim.site if hasattr(sim, "site") else sim
        if not isinstance(site, Site):
            raise TypeError(f"simulate_site returned {type(sim).__name__}, not a site")
        for j, kind in enumerate(inject):
            site = inject_simulated(
                site, kind, case.intensity, case.seed + 1000 * (j + 1), train_fraction
            )
        return site

    return build


def inject_simulated(
    site: Site, kind: str, intensity: float, seed: int, train_fraction: float = 0.5
) -> Site:
    """`site` with one `kind` fault in the test period of one monitoring sensor.

    The sensor is drawn (seeded) among logger or GNSS sensors of `MONITORING_KINDS` that
    have no labelled event overlapping the test period, else among all of them; a site
    with none such is returned unchanged (logged). The fault lasts `INJECT_DAYS[kind]`.
    """
    frame = to_frame(site)
    test_start = frame.times()[round(frame.n_times * train_fraction)]
    meta = site.sensors["meta"].map(lambda m: json.loads(m) if isinstance(m, str) and m else {})
    sampling = meta.map(lambda m: m.get("sampling", "logger"))
    able = site.sensors.loc[
        site.sensors["kind"].isin(MONITORING_KINDS) & sampling.isin(["logger", "gnss"]), "id"
    ].astype(str)
    busy: set[str] = set()
    for _, ev in site.labels.iterrows():
        if pd.Timestamp(ev["end"]) >= test_start:
            busy.update(str(ev["sensors"]).split(";"))
    free = [s for s in able if s not in busy]
    pool = free or list(able)
    if not pool:
        log.info("%s: no monitoring sensor to inject a %s fault into", site.name, kind)
        return site
    rng = np.random.default_rng(seed)
    sensor = pool[int(rng.integers(0, len(pool)))]
    return inject_events(
        site,
        sensor,
        intensity,
        seed,
        kinds=(kind,),
        per_kind=1,
        train_fraction=train_fraction,
        days=INJECT_DAYS,
    )


def inject_events(
    site: Site,
    sensor_id: str,
    intensity: float,
    seed: int,
    kinds: Sequence[str] = REAL_FAULT_KINDS,
    per_kind: int = 2,
    train_fraction: float = 0.5,
    days: Mapping[str, float] | None = None,
) -> Site:
    """`site` with `per_kind` faults of each kind injected into `sensor_id`'s test period.

    The site is put on its grid (`to_frame`); the sensor's readings are replaced by its grid
    values (faults included) at the grid times, other sensors are kept as they were.
    `days`: fault lengths in days (default `FAULT_DAYS`), cut to fit the test period.
    """
    from geojepa.simulate.events import inject_fault, series_scale

    frame = to_frame(site)
    col = frame.column(sensor_id)
    values = np.where(frame.observed[:, col], frame.values[:, col], np.nan).astype(np.float64)
    n = frame.n_times
    train_end = round(n * train_fraction)
    scale = series_scale(values[:train_end])
    step_days = frame.interval / pd.Timedelta("1D")
    fault_days = FAULT_DAYS if days is None else days
    lengths = {k: max(1, round(fault_days.get(k, 30.0) / step_days)) for k in kinds}
    rng = np.random.default_rng(seed)
    plan = [k for k in kinds for _ in range(per_kind)]
    rng.shuffle(plan)
    lo, hi = train_end + 2, n - 2
    if not plan or hi - lo < 4 * len(plan):  # lengths are cut to fit each slot below
        raise InputError(
            f"the test period of {sensor_id!r} ({max(hi - lo, 0)} rows) is too short for "
            f"{len(plan)} faults",
            hint="inject fewer faults or use a longer series",
        )
    slot = (hi - lo) / len(plan)
    labels = []
    observed = np.isfinite(values)
    for j, kind in enumerate(plan):
        length = min(lengths[kind], int(slot) - 2)
        a0 = lo + int(j * slot)
        # a fault starts on a reading: one placed in a gap (a spike added to nothing)
        # could never be seen, yet would count as missed by every detector
        starts = a0 + np.flatnonzero(observed[a0 : a0 + max(int(slot) - length - 1, 1)])
        if starts.size == 0:
            log.warning(
                "%s: no reading in rows %d-%d of its test period: the %s fault of that slot "
                "is not injected",
                sensor_id,
                a0,
                a0 + int(slot),
                kind,
            )
            continue
        a = int(starts[int(rng.integers(0, starts.size))])
        b = a + length
        values = inject_fault(values, kind, a, b, intensity, rng, scale=scale)
        labels.append(
            {
                "start": frame.times()[a],
                "end": frame.times()[b - 1],
                "kind": kind,
                "sensors": sensor_id,
                "category": "sensor_fault",
                "source": f"injected seed={seed} intensity={intensity:g}",
            }
        )
    keep = np.isfinite(values)
    sources = site.readings.loc[site.readings["sensor_id"] == sensor_id, "source"]
    source = (str(sources.iloc[0]) if len(sources) else "") + "+injected"
    new = pd.DataFrame(
        {
            "timestamp": frame.times()[keep],
            "sensor_id": sensor_id,
            "value": values[keep],
            "quality": Quality.OK.value,
            "source": source,
        }
    )
    others = site.readings[site.readings["sensor_id"] != sensor_id]
    readings = pd.concat([others, new], ignore_index=True)
    all_labels = pd.concat([site.labels, pd.DataFrame(labels)], ignore_index=True)
    return Site(
        name=f"{site.name}+faults",
        sensors=site.sensors,
        readings=readings,
        labels=all_labels,
        meta={**dict(site.meta), "injected": len(labels)},
    )


def gw_cases(
    root: str | Path | None, intensities: Sequence[float], seeds: Sequence[int]
) -> list[Case]:
    """One case per (well, intensity, seed) of ``gw-challenge`` under `root`."""
    from geojepa.datasets import load_gw_wells

    names = [w.name for w in load_gw_wells(root)]
    return [Case(name, float(i), int(s)) for name in names for i in intensities for s in seeds]


def gw_builder(
    root: str | Path | None = None,
    kinds: Sequence[str] = REAL_FAULT_KINDS,
    per_kind: int = 2,
    with_forcing: bool = False,
    train_fraction: float = 0.5,
) -> SiteBuilder:
    """A builder: the case's well (``scenario`` = well name) with faults in its head series."""
    from geojepa.datasets import gw_site, load_gw_wells

    wells = {w.name: w for w in load_gw_wells(root)}

    def build(case: Case) -> Site:
        if case.scenario not in wells:
            raise InputError(
                f"no well {case.scenario!r} in gw-challenge", hint="wells: " + ", ".join(wells)
            )
        site = gw_site(wells[case.scenario])
        if not with_forcing:
            site = site.select(["head"])
        return inject_events(
            site, "head", case.intensity, case.seed, kinds, per_kind, train_fraction
        )

    return build
