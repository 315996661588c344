"""Shared fixtures. Tests pass seeds in; nothing seeds globally."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geojepa.site import Sensor, Site, sensors_frame

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
