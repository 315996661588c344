"""Simulated-site forecasting protocols, on small hand-made sites with known answers."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest

from geojepa.forecast.evaluate import classic, summarise
from geojepa.forecast.simulated import (
    creep_cases,
    creep_displacement_protocol,
    daily_series,
    embankment_series,
    failure_protocol_sim,
    failure_summary,
    settlement_protocol_sim,
)
from geojepa.site import Sensor, Site, sensors_frame

if TYPE_CHECKING:
    from geojepa.forecast.jepa_protocols import SimContext
    from geojepa.forecast.simulated import CreepCase

T0 = pd.Timestamp("2022-01-01", tz="UTC")


def hourly_site(values: dict[str, np.ndarray], kinds: dict[str, str]) -> Site:
    frames = []
    for sid, v in values.items():
        ts = T0 + pd.to_timedelta(np.arange(v.size), unit="h")
        frames.append(pd.DataFrame({"timestamp": ts, "sensor_id": sid, "value": v}))
    readings = pd.concat(frames, ignore_index=True)
    readings["quality"] = "ok"
    readings["source"] = "sim.dat"
    sensors = sensors_frame([Sensor(sid, kinds[sid], "mm") for sid in values])
    return Site(name="sim", sensors=sensors, readings=readings)


def test_daily_means_are_stamped_at_the_end_of_their_day() -> None:
    v = np.arange(72, dtype=float)  # three days of hourly readings
    site = hourly_site({"A": v}, {"A": "settlement"})
    s = daily_series(site, "A", origin=T0)
    np.testing.assert_allclose(s.t, [1.0, 2.0, 3.0])  # day 0's mean is complete at day 1
    np.testing.assert_allclose(s.y, [11.5, 35.5, 59.5])


def embankment(seed: int) -> Site:
    """One logger plate under a fill raised over days 20-30 to 4 m, then held."""
    rng = np.random.default_rng(seed)
    hours = np.arange(200 * 24)
    days = hours / 24.0
    fill = np.clip((days - 20.0) / 10.0, 0.0, 1.0) * 4.0 + rng.normal(0, 0.05, days.size)
    x = np.clip(days - 30.0, 0.0, None)
    settle = x / (1.0 + 0.01 * x) + rng.normal(0, 0.3, days.size)
    return hourly_site({"SP1": settle, "FH1": fill}, {"SP1": "settlement", "FH1": "load"})


def test_settlement_protocol_sim_scores_every_method_on_rolling_cutoffs() -> None:
    site = embankment(0)
    (s,) = embankment_series(site)
    assert set(s.drivers) == {"load"}
    methods = {
        "persistence": classic("persistence"),
        "hyperbolic": classic("hyperbolic", load="load"),
    }
    rec = settlement_protocol_sim(methods, [("e0", site)], horizons=(7.0, 30.0), warmup=60.0)
    assert set(rec["site"]) == {"e0"} and set(rec["horizon"]) == {7.0, 30.0}
    assert rec["cutoff"].min() >= 59.0
    out = summarise(rec, by=("method", "horizon")).set_index(["method", "horizon"])
    # in its own stage the hyperbola is the right model: far better than persistence
    assert out.loc[("hyperbolic", 30.0), "mae_vs_persistence"] < 0.3
    assert out.loc[("hyperbolic", 30.0), "n_fallback"] == 0


def creep_site(seed: int) -> tuple[Site, dict[str, object]]:
    """A GNSS point creeping steadily, then (from day 60) only accelerating toward failure at
    day 100 with 1/v = 0.2 (t_f - t): Fukuzono's own law."""
    rng = np.random.default_rng(seed)
    days = np.arange(95 * 24) / 24.0
    onset, t_f = 60.0, 100.0
    x = 0.05 * np.minimum(days, onset)
    acc = days >= onset
    x[acc] += np.log((t_f - onset) / (t_f - days[acc])) / 0.2
    x += rng.normal(0, 0.3, days.size)
    site = hourly_site({"GN1": x, "RG1": np.zeros(days.size)}, {"GN1": "gnss", "RG1": "rain_gauge"})
    truth = {
        "events": [
            {
                "kind": "accelerating_creep",
                "sensors": ["GN1", "RG1"],
                "start": str(T0 + pd.Timedelta(days=onset)),
                "end": str(T0 + pd.Timedelta(days=94.0)),
                "failure_time": str(T0 + pd.Timedelta(days=t_f)),
            }
        ]
    }
    return site, truth


def test_creep_cases_and_fukuzono_time_of_failure_error() -> None:
    site, truth = creep_site(1)
    cases = creep_cases("s1", site, truth)
    assert [c.sensor for c in cases] == ["GN1"]  # the rain gauge is no displacement sensor
    c = cases[0]
    assert c.failure == pytest.approx(99.0)  # day 100 on the end-of-day clock starting at 1
    assert c.onset == pytest.approx(59.0)
    rec = failure_protocol_sim(cases, fractions=(0.7, 0.9))
    assert set(rec["method"]) == {"fukuzono", "fukuzono_onset"}
    late = rec[(rec["fraction"] == 0.9) & (rec["method"] == "fukuzono_onset")]
    assert abs(float(late["error"].iloc[0])) < 5.0
    summary = failure_summary(rec)
    assert set(summary.columns) >= {"median_abs_error_days", "n_no_failure", "coverage"}
    disp = creep_displacement_protocol({"persistence": classic("persistence")}, cases)
    assert set(disp["horizon"]) == {1.0, 3.0, 7.0}
    assert np.all(disp["t"] > disp["cutoff"])


# --------------------------------------------------------------------------- GeoJEPA glue
def test_sim_tracks_share_the_daily_clock_of_the_series() -> None:
    from geojepa.forecast.jepa_protocols import SimContext, daily_frame

    site = embankment(2)
    (s,) = embankment_series(site)
    ctx = SimContext({"e2": daily_frame(site)})
    tr = ctx.track("e2/SP1")
    # row r of the daily frame is the mean the series stamps at t = r
    np.testing.assert_allclose(tr.value_at(s.t), s.y, rtol=1e-5)
    assert ctx.ids("e2") == ["SP1"] and ctx.others("e2/SP1") == []
    # several kinds: the settlement plate and the load sensor both count
    both = SimContext({"e2": daily_frame(site)}, kind=("settlement", "load"))
    kinds = dict(zip(site.sensors["id"], site.sensors["kind"], strict=True))
    assert sorted(both.ids("e2")) == sorted(
        i for i, k in kinds.items() if k in ("settlement", "load")
    )
    assert [t.name for t in both.others("e2/SP1")] == [
        f"e2/{i}" for i in both.ids("e2") if i != "SP1"
    ]


def test_sim_methods_run_in_the_protocol_with_pool_sites() -> None:
    from geojepa.forecast.features import EncoderFeatures
    from geojepa.forecast.jepa_protocols import SimContext, daily_frame, sim_methods

    sites = {"e0": embankment(0), "pool-1": embankment(1), "pool-2": embankment(3)}
    ctx = SimContext({k: daily_frame(v) for k, v in sites.items()})
    methods = {"persistence": classic("persistence")}
    methods.update(
        sim_methods({"level": EncoderFeatures(None)}, ctx, ["pool-1", "pool-2"], heads=("ridge",))
    )
    rec = settlement_protocol_sim(methods, [("e0", sites["e0"])], horizons=(7.0, 30.0))
    learned = rec[rec["method"] == "level_ridge"]
    assert len(learned) == len(rec[rec["method"] == "persistence"]) > 0
    assert (learned["fallback"] == "").all() and np.isfinite(learned["prediction"]).all()


@pytest.fixture(scope="module")
def creep_sites() -> tuple[dict[str, list[CreepCase]], SimContext]:
    """Creep cases of three simulated slopes (s0, s1, s2) and their daily tracks."""
    from geojepa.forecast.jepa_protocols import SimContext, daily_frame

    sites = {f"s{k}": creep_site(k) for k in range(3)}
    cases = {k: creep_cases(k, site, truth) for k, (site, truth) in sites.items()}
    return cases, SimContext({k: daily_frame(site) for k, (site, _) in sites.items()})


def test_jepa_time_of_failure_never_reads_the_evaluated_failure_time(
    creep_sites: tuple[dict[str, list[CreepCase]], SimContext],
) -> None:
    from dataclasses import replace

    from geojepa.forecast.features import EncoderFeatures
    from geojepa.forecast.jepa_protocols import failure_protocol_jepa

    cases, ctx = creep_sites
    feats = {"level": EncoderFeatures(None)}
    train = cases["s1"] + cases["s2"]
    rec = failure_protocol_jepa(feats, ctx, train, cases["s0"], fractions=(0.5, 0.9))
    assert set(rec["method"]) == {"level_tof"} and len(rec) == 2
    assert np.isfinite(rec["predicted"]).all() and (rec["predicted"] > rec["cutoff"] - 1).all()
    assert (rec["lower"] <= rec["predicted"]).all() and (rec["predicted"] <= rec["upper"]).all()
    moved = [replace(c, failure=c.failure + 50.0) for c in cases["s0"]]
    again = failure_protocol_jepa(feats, ctx, train, moved, fractions=(0.5, 0.9))
    np.testing.assert_allclose(again["predicted"], rec["predicted"])
    np.testing.assert_allclose(again["error"], rec["error"] - 50.0)
    assert set(failure_summary(rec).columns) >= {"median_abs_error_all_days", "miss_or_error_gt_7d"}
    hyb = failure_protocol_jepa(feats, ctx, train, cases["s0"], fractions=(0.5, 0.9), fukuzono=True)
    assert len(hyb) == len(rec) and np.isfinite(hyb["predicted"]).all()
    hyb_moved = failure_protocol_jepa(feats, ctx, train, moved, fractions=(0.5, 0.9), fukuzono=True)
    np.testing.assert_allclose(hyb_moved["predicted"], hyb["predicted"])


def test_time_of_failure_penalty_is_chosen_on_held_out_events(
    monkeypatch: pytest.MonkeyPatch,
    creep_sites: tuple[dict[str, list[CreepCase]], SimContext],
) -> None:
    """The cutoffs of one training event are near-copies: the ridge's penalty must be
    chosen on whole events held out (one group per event), not by leave-one-out."""
    from geojepa.forecast import jepa_protocols
    from geojepa.forecast.features import EncoderFeatures
    from geojepa.forecast.heads import RidgeHead

    seen: list[np.ndarray | None] = []

    class Recording(RidgeHead):
        def fit(self, x: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> Recording:
            seen.append(None if groups is None else np.asarray(groups))
            return super().fit(x, y, groups)

    monkeypatch.setattr(jepa_protocols, "RidgeHead", Recording)
    cases, ctx = creep_sites
    train = cases["s1"] + cases["s2"]
    jepa_protocols.failure_protocol_jepa(
        {"level": EncoderFeatures(None)}, ctx, train, cases["s0"], fractions=(0.5,)
    )
    (groups,) = seen
    assert groups is not None
    # one group per training event, each holding that event's several cutoffs
    assert np.unique(groups).size == len(train) >= 2
    assert np.bincount(groups).min() >= 2
