"""Shared fixtures. Tests pass seeds in; nothing seeds globally.

The commands' `--device` defaults to `auto` (a GPU when torch sees one); the suite pins the
CPU through `GEOJEPA_DEVICE`, so that its exactness claims (kill and resume within 1e-6, the
command line equal to the library) mean the same on a GPU machine. `tests/test_devices.py`
names its devices explicitly.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geojepa.site import Sensor, Site, sensors_frame

os.environ.setdefault("GEOJEPA_DEVICE", "cpu")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_data(name: str) -> Path:
    """Path of a real data folder, or skip the test when it is absent."""
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"{path} is absent (real data lives in ../shared/data)")
    return path


@pytest.fixture
def small_site() -> Site:
    """Three sensors, hourly for four days, one gap, one labelled event."""
    rng = np.random.default_rng(0)
    times = pd.date_range("2024-01-01", periods=96, freq="h", tz="UTC")
    rows = []
    for sid in ("P1", "P2", "R1"):
        for i, t in enumerate(times):
            if sid == "P2" and 10 <= i < 20:
                continue
            rows.append((t, sid, float(rng.normal()), "ok", "fixture.csv"))
    readings = pd.DataFrame(rows, columns=["timestamp", "sensor_id", "value", "quality", "source"])
    sensors = sensors_frame(
        [
            Sensor("P1", "piezometer", "kPa", 0.0, 0.0, -5.0, "BH1"),
            Sensor("P2", "piezometer", "kPa", 0.0, 0.0, -10.0, "BH1"),
            Sensor("R1", "rain_gauge", "mm", 5.0, 0.0, 0.0, ""),
        ]
    )
    labels = pd.DataFrame(
        {
            "start": [times[40]],
            "end": [times[45]],
            "kind": ["spike"],
            "sensors": ["P1"],
            "category": ["sensor_fault"],
            "source": ["fixture"],
        }
    )
    return Site(name="fixture", sensors=sensors, readings=readings, labels=labels)


def synthetic_frame(n_sensors: int = 8, n_times: int = 1024, seed: int = 0, missing: float = 0.05):
    """A small structured multi-sensor SensorFrame (no file I/O): rain drives piezometers
    with depth-dependent lags, settlement trends, thermometers follow a daily cycle.
    Hourly grid; a fraction `missing` of cells unobserved. For model and window tests."""
    from geojepa.frame import SensorFrame
    from geojepa.site import SENSOR_KINDS  # noqa: F401  (kinds below are canonical)

    rng = np.random.default_rng(seed)
    t = np.arange(n_times)
    rain = np.where(rng.random(n_times) < 0.03, rng.exponential(5.0, n_times), 0.0)
    kinds = ["rain_gauge", "piezometer", "piezometer", "settlement", "thermometer", "inclinometer"]
    sensors, cols = [], []
    for c in range(n_sensors):
        kind = kinds[c % len(kinds)] if c else "rain_gauge"
        depth = 2.0 + 3.0 * (c % 4)
        x, y = float(rng.uniform(0, 100)), float(rng.uniform(0, 50))
        if kind == "rain_gauge":
            sig = rain + rng.normal(0, 0.05, n_times)
        elif kind == "piezometer":
            lag = 0.8 + 0.015 * depth
            resp = np.zeros(n_times)
            for i in range(1, n_times):
                resp[i] = lag * resp[i - 1] + (1 - lag) * rain[i - 1] * 4.0
            sig = 20.0 + depth + resp + rng.normal(0, 0.1, n_times)
        elif kind == "settlement":
            sig = -0.01 * t * (1 + 0.1 * c) + rng.normal(0, 0.05, n_times)
        elif kind == "inclinometer":
            sig = np.cumsum(rain) * 0.01 * (1 + 0.05 * c) + rng.normal(0, 0.02, n_times)
        else:
            sig = 10 + 5 * np.sin(2 * np.pi * t / 24.0 + 0.1 * c) + rng.normal(0, 0.2, n_times)
        unit = {
            "rain_gauge": "mm",
            "piezometer": "kPa",
            "settlement": "mm",
            "thermometer": "degC",
            "inclinometer": "mm",
        }[kind]
        sensors.append((f"S{c:03d}", kind, unit, x, y, -depth, f"BH{c % 3}", "{}"))
        cols.append(sig)
    values = np.stack(cols, axis=1).astype(np.float32)  # (T, C)
    observed = rng.random(values.shape) >= missing
    values[~observed] = np.nan
    table = pd.DataFrame(sensors, columns=["id", "kind", "unit", "x", "y", "z", "group", "meta"])
    time = np.datetime64("2024-01-01T00:00", "ns") + np.arange(n_times) * np.timedelta64(1, "h")
    return SensorFrame(
        values=values, observed=observed, time=time, sensors=table, interval=pd.Timedelta("1h")
    )
