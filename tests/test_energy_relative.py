"""Window-relative energy inputs: the level of each sensor's history is removed, so a
sensor offset by a constant (a trending gauge far from its training level) scores the same,
while a change inside the scored patch still shows. The setting round-trips and is off by
default (bundles written before it score as before)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geojepa.energy import EnergySpec, relative_window, window_energy
from geojepa.errors import InputError
from geojepa.frame import to_frame
from geojepa.site import Sensor, Site, sensors_frame
from geojepa.windows import Normaliser, Window, WindowSpec, window_at
from test_edge import MeanEngine  # a numpy stand-in for the two graphs


def _window(offset: float, jump: float, seed: int = 3) -> Window:
    rng = np.random.default_rng(seed)
    n, c = 64, 4
    base = np.cumsum(rng.normal(size=n))
    values = base[:, None] + 0.05 * rng.normal(size=(n, c))
    values[:, 1] += offset  # sensor 1 sits far from the others (inputs are clipped at 20)
    values[-8:, 2] += jump  # sensor 2 jumps in the last patch
    times = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")
    rows = [(t, f"S{j}", values[i, j]) for i, t in enumerate(times) for j in range(c)]
    readings = pd.DataFrame(rows, columns=["timestamp", "sensor_id", "value"])
    site = Site("s", sensors_frame([Sensor(f"S{j}") for j in range(c)]), readings)
    frame = to_frame(site)
    norm = Normaliser(tuple(frame.sensor_ids), np.zeros(c), np.ones(c))
    return window_at(frame, norm, WindowSpec(length=32, stride=8, patch=8), n)


def test_relative_window_removes_the_history_median_only() -> None:
    win = _window(offset=0.0, jump=0.0)
    rel = relative_window(win, patch=8, recent=1)
    head = win.values[:, :24]
    expected = win.values - np.median(head, axis=1, keepdims=True)
    np.testing.assert_allclose(rel.values, expected, rtol=1e-5, atol=1e-5)
    assert rel.values.dtype == np.float32
    # missing cells stay 0 and the level of a sensor without history is left alone
    obs = win.observed.copy()
    obs[0, :24] = False
    obs[3, 5] = False
    gappy = Window(
        np.where(obs, win.values, 0.0).astype(np.float32),
        obs,
        win.sensor_feats,
        win.time_feats,
        win.start,
    )
    rel2 = relative_window(gappy, patch=8, recent=1)
    assert rel2.values[3, 5] == 0.0
    np.testing.assert_allclose(rel2.values[0, 24:], gappy.values[0, 24:])


def test_relative_energy_ignores_a_level_offset_but_sees_a_jump() -> None:
    spec_rel = EnergySpec(relative=True)
    plain = window_energy(MeanEngine(8), _window(0.0, 0.0), 8, spec_rel)
    offset = window_energy(MeanEngine(8), _window(8.0, 0.0), 8, spec_rel)
    np.testing.assert_allclose(offset, plain, rtol=1e-4, atol=1e-6)
    # without it, the offset sensor dominates the energy
    absolute = window_energy(MeanEngine(8), _window(8.0, 0.0), 8, EnergySpec())
    assert int(np.nanargmax(absolute[:, 0])) == 1
    # a jump inside the scored patch still points at its sensor
    jumped = window_energy(MeanEngine(8), _window(8.0, 6.0), 8, spec_rel)
    assert int(np.nanargmax(jumped[:, 0])) == 2


def test_spec_round_trips_and_defaults_off() -> None:
    assert EnergySpec().relative is False
    spec = EnergySpec(recent=2, relative=True)
    assert EnergySpec.from_dict(spec.to_dict()) == spec
    assert EnergySpec.from_dict({"recent": 1, "tube": True, "future": True}).relative is False
    with pytest.raises(InputError):
        EnergySpec.from_dict({"relative": True, "levels": 3})
