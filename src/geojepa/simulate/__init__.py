"""Site simulator: physically plausible monitoring sites with labelled events.

`simulate_site(scenario, n_sensors, days, freq, seed, intensity=1.0, events=True)`
returns a `SimulatedSite` (a `Site` with labels, its drivers, ground truth) whose
`write(out_dir)` produces logger files (TOA5 and wide CSV), ``sensors.csv`` and
``events.csv``. `inject_fault(values, kind, start, end, intensity, rng)` puts the same
event models into any array, real series included.

Modules: `families` (site families from a seed), `layout` (sensor placement, loggers),
`drivers` (rain, temperature, pressure, reservoir, fill), `physics` with `response`,
`slope`, `embankment`, `dam` (sensor responses), `signals` (filters), `events` (fault
models, event plan), `writers` (file formats), `api` (the whole pipeline), `figures`
(overview plots).
"""

from __future__ import annotations

from geojepa.simulate.api import SimulatedSite, simulate_site
from geojepa.simulate.events import (
    EVENT_KINDS,
    FAULT_KINDS,
    GEOTECH_KINDS,
    GEOTECHNICAL,
    SENSOR_FAULT,
    SeriesScale,
    event_shape,
    inject_fault,
    series_scale,
)
from geojepa.simulate.layout import SCENARIOS

__all__ = [
    "EVENT_KINDS",
    "FAULT_KINDS",
    "GEOTECHNICAL",
    "GEOTECH_KINDS",
    "SCENARIOS",
    "SENSOR_FAULT",
    "SeriesScale",
    "SimulatedSite",
    "event_shape",
    "inject_fault",
    "series_scale",
    "simulate_site",
]
