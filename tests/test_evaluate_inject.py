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
