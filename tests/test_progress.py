"""Progress of long work: shown by commands, quiet inside library calls, no rich needed."""

from __future__ import annotations

import logging
import sys

import numpy as np
import pandas as pd
import pytest

from geojepa.energy import EnergySpec, frame_energy
from geojepa.frame import to_frame
from geojepa.progress import Progress, shown
from geojepa.site import Sensor, Site, sensors_frame
from geojepa.windows import Normaliser, WindowSpec
from test_edge import MeanEngine


def test_deep_work_is_shown_only_inside_a_command() -> None:
    assert Progress("x", 3, enabled=None).enabled is False
    with shown():
        assert Progress("x", 3, enabled=None).enabled is True
        assert Progress("x", 3, enabled=False).enabled is False  # an explicit choice wins
        with shown(False):
            assert Progress("x", 3, enabled=None).enabled is False
        assert Progress("x", 3, enabled=None).enabled is True
    assert Progress("x", 3, enabled=None).enabled is False


def _site(n: int = 200, c: int = 3) -> Site:
    rng = np.random.default_rng(0)
    times = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")
    rows = [(t, f"S{j}", rng.normal()) for t in times for j in range(c)]
    return Site(
        "s",
        sensors_frame([Sensor(f"S{j}") for j in range(c)]),
        pd.DataFrame(rows, columns=["timestamp", "sensor_id", "value"]),
    )


def test_an_energy_sweep_reports_its_windows_when_a_command_asks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    frame = to_frame(_site())
    args = (frame, Normaliser.fit(frame), WindowSpec(32, 8, 8), EnergySpec())
    with caplog.at_level(logging.INFO, logger="geojepa.progress"):
        frame_energy(MeanEngine(8), *args)
        assert not [r for r in caplog.records if r.name == "geojepa.progress"]
        with shown():
            frame_energy(MeanEngine(8), *args)
    lines = [r.getMessage() for r in caplog.records if r.name == "geojepa.progress"]
    assert lines and lines[-1].startswith("energy (windows): 25/25")  # 200 rows / stride 8


def test_a_terminal_without_rich_gets_log_lines(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    monkeypatch.setitem(sys.modules, "rich.progress", None)  # import fails, as on a gateway
    with caplog.at_level(logging.INFO, logger="geojepa.progress"):
        with Progress("scoring", 2) as bar:
            bar.advance(2)
    assert any("scoring: 2/2" in r.getMessage() for r in caplog.records)
