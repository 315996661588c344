"""Faults injected into simulated sites: one per named kind, inside the test period, on a
monitoring sensor, labelled; the same case gives the same site."""

from __future__ import annotations

import numpy as np
import pandas as pd

from geojepa.evaluate import Case
from geojepa.evaluate.sites import INJECT_DAYS, MONITORING_KINDS, simulated_builder
from geojepa.frame import to_frame


def test_drift_lands_in_the_test_period_of_a_monitoring_sensor() -> None:
    build = simulated_builder(n_sensors=8, days=40, inject=("drift",), train_fraction=0.5)
    plain = simulated_builder(n_sensors=8, days=40)
    for scenario in ("slope", "embankment", "dam"):
        case = Case(scenario, 0.5, 4)
        site = build(case)
        before = plain(case)
        added = site.labels[site.labels["kind"] == "drift"]
        added = added[added["source"].astype(str).str.startswith("injected")]
        assert len(added) == 1, scenario
        ev = added.iloc[0]
        frame = to_frame(site)
        split = frame.times()[round(frame.n_times * 0.5)]
        assert pd.Timestamp(ev["start"]) > split
        days = (pd.Timestamp(ev["end"]) - pd.Timestamp(ev["start"])) / pd.Timedelta("1D")
        assert days <= INJECT_DAYS["drift"]
        sensor = str(ev["sensors"])
        kinds = site.sensors.set_index("id")["kind"]
        assert kinds[sensor] in MONITORING_KINDS
        # the drifting sensor differs from the clean draw inside the event only
        a, b = to_frame(site), to_frame(before)
        col = a.column(sensor)
        diff = np.abs(np.nan_to_num(a.values[:, col]) - np.nan_to_num(b.values[:, col])) > 1e-4
        rows = np.flatnonzero(diff)
        assert rows.size > 0
        assert a.times()[rows[0]] >= pd.Timestamp(ev["start"])
        assert a.times()[rows[-1]] <= pd.Timestamp(ev["end"])
        # every simulator label is kept
        assert len(site.labels) == len(before.labels) + 1


def test_same_case_same_site() -> None:
    build = simulated_builder(n_sensors=6, days=30, inject=("drift", "step"))
    s1, s2 = build(Case("dam", 1.0, 2)), build(Case("dam", 1.0, 2))
    pd.testing.assert_frame_equal(s1.labels, s2.labels)
    pd.testing.assert_frame_equal(s1.readings, s2.readings)
    assert {"drift", "step"} <= set(s1.labels["kind"])


def test_injected_faults_start_on_a_reading_and_a_slot_without_one_is_skipped_loudly(
    caplog,  # type: ignore[no-untyped-def]
) -> None:
    """A fault placed in a gap (a spike added to a missing value) could never be detected
    yet would count as missed: every injected fault starts on an observed cell, and a slot
    with no reading at all injects nothing, with a warning."""
    import logging

    from geojepa.evaluate.protocol import ground_truth
    from geojepa.evaluate.sites import inject_events
    from geojepa.site import Site

    n = 400
    t = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC")
    rng = np.random.default_rng(0)
    keep = np.ones(n, dtype=bool)
    keep[200:] = rng.random(n - 200) < 0.5  # half the test rows missing
    readings = pd.DataFrame(
        {
            "timestamp": t[keep],
            "sensor_id": "p1",
            "value": rng.normal(size=int(keep.sum())),
            "quality": "ok",
            "source": "x",
        }
    )
    site = Site(
        "s", pd.DataFrame({"id": ["p1"], "kind": ["piezometer"], "unit": ["kPa"]}), readings
    )
    for seed in range(10):
        out = inject_events(site, "p1", 1.0, seed, kinds=("spike",), per_kind=2)
        frame = to_frame(out)
        events = ground_truth(out.labels, frame).events
        assert len(events) == 2
        assert all(keep[e.start] for e in events)
    # no reading in the second half of the test period: its fault is skipped, and said so
    dense = pd.DataFrame(
        {"timestamp": t, "sensor_id": "p1", "value": rng.normal(size=n), "quality": "ok"}
    ).assign(source="x")
    gap = dense[(dense["timestamp"] < t[300]) | (dense["timestamp"] >= t[n - 2])]
    caplog.set_level(logging.WARNING, logger="geojepa.evaluate.sites")
    out = inject_events(Site("s", site.sensors, gap), "p1", 1.0, 0, kinds=("spike",), per_kind=2)
    assert len(out.labels) == 1 and out.meta["injected"] == 1
    assert "not injected" in caplog.text
