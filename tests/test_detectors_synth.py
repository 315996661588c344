"""A small synthetic site with injected events, for the detector, metric and harness tests.

Kept deliberately simple (the simulator is the realistic source): a few piezometer-like
sensors with a daily cycle, a slow seasonal swing and noise, and events injected into
the second half: spike, step offset, drift, stuck value and a noise burst.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from geojepa.frame import label_mask, to_frame
from geojepa.site import Sensor, Site, sensors_frame

EVENT_KINDS = ("spike", "step", "drift", "stuck", "noise")


def make_site(
    seed: int,
    n_sensors: int = 4,
    days: int = 60,
    intensity: float = 1.0,
    kinds: tuple[str, ...] = EVENT_KINDS,
    events_per_kind: int = 2,
    missing: float = 0.02,
    early_event: bool = False,
) -> Site:
    """Hourly site; events (labelled with their sensor) only after the first half."""
    rng = np.random.default_rng(seed)
    n = days * 24
    t = np.arange(n, dtype=np.float64)
    times = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")
    base = np.empty((n, n_sensors))
    for c in range(n_sensors):
        phase = rng.uniform(0, 2 * np.pi)
        base[:, c] = (
            10.0
            + 0.5 * c
            + 0.3 * np.sin(2 * np.pi * t / 24 + phase)
            + 0.8 * np.sin(2 * np.pi * t / (24 * 45) + phase)
            + 0.05 * rng.normal(size=n)
        )
    labels = []
    lo = n // 2 + 24
    slots = np.linspace(lo, n - 48, len(kinds) * events_per_kind + 1).astype(int)
    order = rng.permutation(len(kinds) * events_per_kind)
    for j, slot in enumerate(order):
        kind = kinds[slot % len(kinds)]
        a = int(slots[j]) + int(rng.integers(0, 24))
        c = int(rng.integers(0, n_sensors))
        length = {"spike": 1, "step": 48, "drift": 96, "stuck": 36, "noise": 24}[kind]
        length = max(1, min(length, n - 1 - a))
        b = a + length
        if kind == "spike":
            base[a, c] += 1.5 * intensity * rng.choice([-1, 1])
        elif kind == "step":
            base[a:b, c] += 0.8 * intensity
        elif kind == "drift":
            base[a:b, c] += np.linspace(0, 1.0 * intensity, length)
        elif kind == "stuck":
            base[a:b, c] = base[a, c]
        else:
            base[a:b, c] += 0.3 * intensity * rng.normal(size=length)
        labels.append((times[a], times[b - 1], kind, f"S{c}", "synthetic"))
    if early_event:
        a = n // 4
        base[a : a + 48, 0] += 2.0
        labels.append((times[a], times[a + 47], "step", "S0", "synthetic"))
    keep = rng.random((n, n_sensors)) >= missing
    rows = [
        (times[i], f"S{c}", float(base[i, c]), "ok", "synthetic.csv")
        for c in range(n_sensors)
        for i in np.flatnonzero(keep[:, c])
    ]
    readings = pd.DataFrame(rows, columns=["timestamp", "sensor_id", "value", "quality", "source"])
    sensors = sensors_frame(
        [Sensor(f"S{c}", "piezometer", "kPa", float(c), 0.0, -5.0, "BH1") for c in range(n_sensors)]
    )
    lab = pd.DataFrame(labels, columns=["start", "end", "kind", "sensors", "category"])
    lab["source"] = "synthetic"
    return Site(name=f"synthetic-{seed}", sensors=sensors, readings=readings, labels=lab)


def test_synthetic_site_labels_cover_injected_events() -> None:
    site = make_site(0, early_event=True)
    frame = to_frame(site)
    mask = label_mask(site.labels, frame)
    assert frame.values.shape == (60 * 24, 4)
    assert set(site.labels["kind"]) == set(EVENT_KINDS)
    # every event but the early one lies after the first half
    rows = np.flatnonzero(mask.any(axis=1))
    assert rows.min() == frame.n_times // 4
    assert (rows < frame.n_times // 2).sum() == 48
    assert 0.005 < frame.missing_fraction() < 0.04


def test_synthetic_site_is_seeded() -> None:
    a, b, c = make_site(1), make_site(1), make_site(2)
    pd.testing.assert_frame_equal(a.readings, b.readings)
    assert not np.allclose(a.readings["value"][:100], c.readings["value"][:100])
