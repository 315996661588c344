"""Fault and event models on arbitrary arrays, and the simulator's event plan."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geojepa.errors import InputError
from geojepa.simulate import (
    EVENT_KINDS,
    FAULT_KINDS,
    GEOTECH_KINDS,
    SimulatedSite,
    event_shape,
    inject_fault,
    series_scale,
    simulate_site,
)
from geojepa.simulate.events import PERSISTENT_KINDS


def _series(n: int = 600, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 50.0 + 5.0 * np.sin(2 * np.pi * t / 200) + 0.02 * t + rng.normal(0, 0.1, n)


@pytest.mark.parametrize("kind", EVENT_KINDS)
def test_every_kind_changes_only_its_window(kind: str) -> None:
    x = _series()
    before = x.copy()
    y = inject_fault(x, kind, 200, 260, 1.0, np.random.default_rng(1))
    assert np.array_equal(x, before)  # input untouched
    assert y.shape == x.shape and y.dtype == np.float64
    assert np.array_equal(y[:200], x[:200])
    inside = y[200:260]
    assert not np.array_equal(inside, x[200:260], equal_nan=True)
    if kind in PERSISTENT_KINDS:
        offset = y[260:] - x[260:]
        assert np.allclose(offset, offset[0]) and abs(offset[0]) > 0
    else:
        assert np.array_equal(y[260:], x[260:])
    again = inject_fault(x, kind, 200, 260, 1.0, np.random.default_rng(1))
    assert np.array_equal(y, again, equal_nan=True)


@pytest.mark.parametrize("kind", EVENT_KINDS)
def test_intensity_zero_changes_nothing(kind: str) -> None:
    x = _series()
    y = inject_fault(x, kind, 100, 150, 0.0, np.random.default_rng(0))
    assert np.array_equal(x, y)


def test_fault_shapes() -> None:
    x = _series()
    sc = series_scale(x)
    assert 0.05 < sc.noise < 0.2  # white noise std 0.1
    rng = np.random.default_rng(3)
    stuck = inject_fault(x, "stuck", 300, 340, 1.0, rng)
    assert np.all(stuck[300:340] == x[299])
    gone = inject_fault(x, "dropout", 300, 340, 1.0, rng)
    assert np.isnan(gone[300:340]).all() and not np.isnan(gone[:300]).any()
    spike = inject_fault(x, "spike", 300, 301, 1.0, rng)
    assert abs(spike[300] - x[300]) >= 0.7 * 10 * sc.noise * 0.8
    step = inject_fault(x, "step", 300, 400, 1.0, rng)
    d = step[300:400] - x[300:400]
    assert np.allclose(d, d[0]) and abs(d[0]) >= 0.7 * 0.3 * sc.spread
    drift = inject_fault(x, "drift", 300, 400, 1.0, rng)
    d = np.abs(drift[300:400] - x[300:400])
    assert np.all(np.diff(d) > 0)
    shift = inject_fault(x, "clock_shift", 300, 400, 1.0, rng)
    assert np.array_equal(shift[300:400], x[298:398])  # two samples late at intensity 1
    burst = inject_fault(x, "noise_burst", 300, 400, 1.0, rng)
    assert np.std(burst[300:400] - x[300:400]) > 3 * sc.noise
    bigger = inject_fault(x, "step", 300, 400, 3.0, np.random.default_rng(9))
    smaller = inject_fault(x, "step", 300, 400, 0.5, np.random.default_rng(9))
    assert abs(bigger[350] - x[350]) == pytest.approx(6 * abs(smaller[350] - x[350]))


def test_creep_shape_has_linear_inverse_velocity() -> None:
    n, a, b = 400, 100, 300
    disp = event_shape("accelerating_creep", n, a, b)
    v = np.diff(disp)[a : b - 1]
    assert np.all(np.diff(v) > 0)  # accelerating
    inv = 1.0 / v
    t = np.arange(len(inv))
    slope, icpt = np.polyfit(t, inv, 1)
    resid = inv - (slope * t + icpt)
    assert slope < 0 and np.max(np.abs(resid)) < 0.02 * inv[0]
    # the inverse-velocity line reaches zero after the event: at start + (end-start)/0.85
    t_fail = -icpt / slope
    assert t_fail == pytest.approx((b - a) / 0.85, rel=0.03)
    assert np.all(disp[b:] == 1.0)


@pytest.mark.parametrize("kind", ["pore_pressure_rise", "seepage_change"])
def test_rise_and_return_shapes(kind: str) -> None:
    s = event_shape(kind, 300, 100, 200)
    assert s[:100].max() == 0 and s[200:].max() == 0
    assert s.max() == pytest.approx(1.0, abs=1e-9)
    assert np.argmax(s) < 160


def test_two_dimensional_and_nan_input() -> None:
    x = np.stack([_series(seed=i) for i in range(3)], axis=1)
    x[50:60, 1] = np.nan
    y = inject_fault(x, "step", 100, 150, 1.0, np.random.default_rng(0))
    assert y.shape == x.shape
    assert np.isnan(y[50:60, 1]).all()
    assert all(not np.allclose(y[100:150, c], x[100:150, c]) for c in range(3))
    z = inject_fault(x[:, 1], "spike", 55, 57, 1.0, np.random.default_rng(0))
    assert np.isnan(z[55:57]).all()  # a missing sample stays missing


@pytest.mark.parametrize(
    ("kind", "start", "end", "intensity"),
    [
        ("meteor", 1, 5, 1.0),
        ("spike", 5, 5, 1.0),
        ("spike", -1, 5, 1.0),
        ("spike", 5, 1000, 1.0),
        ("step", 1, 5, -0.5),
        ("step", 1, 5, float("inf")),
    ],
)
def test_bad_requests(kind: str, start: int, end: int, intensity: float) -> None:
    with pytest.raises(InputError):
        inject_fault(_series(), kind, start, end, intensity, np.random.default_rng(0))


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(20, 300),
    kind=st.sampled_from([k for k in EVENT_KINDS if k not in PERSISTENT_KINDS]),
    a=st.floats(0, 0.9),
    length=st.integers(1, 40),
    intensity=st.floats(0, 5),
    seed=st.integers(0, 2**32 - 1),
)
def test_property_outside_window_untouched(
    n: int, kind: str, a: float, length: int, intensity: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    x = np.cumsum(rng.normal(size=n))
    s = int(a * (n - 1))
    e = min(n, s + length)
    y = inject_fault(x, kind, s, e, intensity, rng)
    assert np.array_equal(y[:s], x[:s]) and np.array_equal(y[e:], x[e:])
    assert np.isfinite(y[s:e]).all() or kind == "dropout"


def test_kinds_are_the_documented_ones() -> None:
    assert set(FAULT_KINDS) == {
        "spike",
        "step",
        "drift",
        "stuck",
        "noise_burst",
        "dropout",
        "clock_shift",
    }
    assert set(GEOTECH_KINDS) == {
        "pore_pressure_rise",
        "seepage_change",
        "accelerating_creep",
        "settlement_acceleration",
    }


@pytest.mark.parametrize("scenario", ["slope", "embankment", "dam"])
def test_planned_events_never_overlap_on_a_sensor(scenario: str) -> None:
    sim = simulate_site(scenario, 20, 365, "2h", 8, event_rate=4.0)
    labels = sim.site.labels
    kinds = set(labels["kind"])
    geo = {"slope": "accelerating_creep", "embankment": "settlement_acceleration"}
    assert geo.get(scenario, "seepage_change") in kinds
    assert len(kinds & set(FAULT_KINDS)) >= 5
    per_sensor: dict[str, list[tuple[object, object]]] = {}
    for r in labels.itertuples(index=False):
        for sid in str(r.sensors).split(";"):
            per_sensor.setdefault(sid, []).append((r.start, r.end))
    for spans in per_sensor.values():
        spans.sort()
        for (_, e1), (s2, _) in itertools.pairwise(spans):
            assert s2 > e1  # type: ignore[operator]
    t = sim.drivers.index
    assert (labels["start"] >= t[0]).all() and (labels["end"] <= t[-1]).all()
    assert set(labels.loc[labels["kind"].isin(GEOTECH_KINDS), "category"]) == {"geotechnical"}
    assert set(labels.loc[labels["kind"].isin(FAULT_KINDS), "category"]) == {"sensor_fault"}


def test_intensity_scales_simulated_events() -> None:
    """The same plan at higher intensity moves readings further from the clean signal."""
    gaps = []
    for k in (0.5, 2.0):
        sim = simulate_site("dam", 14, 200, "1h", 2, intensity=k, event_rate=3.0)
        diff = 0.0
        r = sim.site.readings
        for ev in sim.site.labels.itertuples(index=False):
            if ev.kind not in ("step", "spike", "drift"):
                continue
            for sid in str(ev.sensors).split(";"):
                x = r[(r["sensor_id"] == sid) & r["timestamp"].between(ev.start, ev.end)]
                clean = sim.truth["signal"][sid].reindex(x["timestamp"]).to_numpy()
                diff += float(np.nanmean(np.abs(x["value"].to_numpy() - clean)))
        gaps.append(diff)
    assert gaps[1] > 2.0 * gaps[0] > 0


@pytest.mark.parametrize("scenario", ["slope", "embankment", "dam"])
@pytest.mark.parametrize("seed", [0, 3, 5])
def test_geotechnical_events_change_only_labelled_sensors(scenario: str, seed: int) -> None:
    """The noise-free signal with events differs from the one without only on the sensors
    and windows of the geotechnical labels (and after them, for persistent kinds): a
    creeping slide must not move a sensor its label leaves out."""
    on = simulate_site(scenario, 24, 400, "3h", seed, event_rate=2.0)
    off = simulate_site(scenario, 24, 400, "3h", seed, events=False)
    changed = (on.truth["signal"] - off.truth["signal"]).abs() > 1e-9
    allowed = pd.DataFrame(False, index=changed.index, columns=changed.columns)
    labels = on.site.labels
    for r in labels[labels["category"] == "geotechnical"].itertuples(index=False):
        stop = None if r.kind in PERSISTENT_KINDS else r.end
        for sid in str(r.sensors).split(";"):
            allowed.loc[r.start : stop, sid] = True
    stray = [c for c in changed.columns if (changed[c] & ~allowed[c]).any()]
    assert not stray, stray


@pytest.mark.parametrize("scenario", ["embankment", "dam"])
def test_intensity_zero_gives_labels_only(scenario: str) -> None:
    """At intensity 0 the readings are those of the clean site (a clogged rain gauge
    included), while the labels are kept."""
    quiet = simulate_site(scenario, 12, 200, "2h", 1, intensity=0.0, event_rate=10.0)
    clean = simulate_site(scenario, 12, 200, "2h", 1, events=False)
    assert "stuck" in set(quiet.site.labels["kind"])
    a, b = quiet.site.readings, clean.site.readings
    same = np.isclose(a["value"], b["value"], equal_nan=True, rtol=0, atol=0)
    assert same.all(), sorted(set(a.loc[~same, "sensor_id"]))


@pytest.mark.parametrize(("scenario", "seed"), [("slope", 0), ("embankment", 2), ("dam", 3)])
def test_rain_gauge_faults_change_only_labelled_readings(scenario: str, seed: int) -> None:
    """A logger dropout, a late clock or a clogged funnel does not move the tipping
    bucket's phase: after the label the gauge reads what the clean site's gauge reads."""
    on = simulate_site(scenario, 12, 365, "1h", seed, event_rate=3.0)
    off = simulate_site(scenario, 12, 365, "1h", seed, events=False)

    def rain(sim: SimulatedSite) -> pd.Series:
        r = sim.site.readings
        return r[r["sensor_id"] == "RG01"].set_index("timestamp")["value"]

    a, b = rain(on), rain(off)
    labels = on.site.labels
    mine = labels[labels["sensors"].str.split(";").apply(lambda ids: "RG01" in ids)]
    assert len(mine) >= 2
    covered = pd.Series(False, index=a.index)
    for r in mine.itertuples(index=False):
        covered[r.start : r.end] = True
    changed = ~np.isclose(a, b, equal_nan=True)
    assert not (changed & ~covered.to_numpy()).any()
