"""Physics of the simulator, checked on its readings (noise, resolution and all)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geojepa.frame import to_frame
from geojepa.simulate import simulate_site
from geojepa.simulate.embankment import consolidation_kernel
from geojepa.simulate.signals import (
    ar1,
    causal_convolve,
    gamma_kernel,
    gamma_kernel_length,
    spatial_mix,
)
from geojepa.soil import TV90, terzaghi_u


def _lagged(x: np.ndarray, k: int) -> np.ndarray:
    """(n, k + 1): column j holds x delayed by j steps (zeros before the start)."""
    n = len(x)
    out = np.zeros((n, k + 1))
    for j in range(k + 1):
        out[j:, j] = x[: n - j]
    return out


def impulse_response(rain: np.ndarray, y: np.ndarray, k: int, baro: np.ndarray) -> np.ndarray:
    """Rain -> piezometer impulse response, (k + 1,): the cross-covariance of rain and the
    piezometer deconvolved by the rain's own autocovariance (least squares of the
    differenced piezometer on lagged differenced rain), with the differenced barometer as a
    co-regressor, as a practitioner compensates unvented gauges. Differencing removes the
    slow seasonal response; the peak of this curve is where the cross-correlation of
    prewhitened rain and piezometer peaks."""
    y = pd.Series(y).interpolate(limit_direction="both").to_numpy()
    x = np.column_stack([_lagged(np.diff(rain), k), np.diff(baro)])[k:]
    coef, *_ = np.linalg.lstsq(x, np.diff(y)[k:], rcond=None)
    return coef[: k + 1]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rain_to_piezometer_lag_is_the_configured_one(seed: int) -> None:
    sim = simulate_site("slope", 14, 365, "3h", seed, events=False)
    frame = to_frame(sim.site)
    rain = frame.values[:, frame.column("RG01")].astype(np.float64)
    baro = frame.values[:, frame.column("BA01")].astype(np.float64)
    lags = sim.truth["lag_steps"]
    assert lags
    for pid, lag in lags.items():
        y = frame.values[:, frame.column(pid)].astype(np.float64)
        h = impulse_response(rain, y, 3 * lag + 8, baro)
        assert abs(int(np.argmax(h)) - lag) <= 1, (pid, lag, int(np.argmax(h)))


def test_deeper_piezometers_respond_later() -> None:
    sim = simulate_site("slope", 30, 30, "1h", 4, events=False)
    s = sim.site.sensors
    for _, grp in s[s["kind"] == "piezometer"].groupby("group"):
        if len(grp) < 2:
            continue
        by_depth = grp.sort_values("z", ascending=False)["id"]
        hours = [sim.truth["lag_hours"][i] for i in by_depth]
        assert hours == sorted(hours)


def _hyperbolic_r2(t: np.ndarray, s: np.ndarray) -> float:
    """R^2 of s = t / (a + b t) fitted the classic way (t/s linear in t)."""
    keep = (t > 0) & (s > 0)
    b, a = np.polyfit(t[keep], t[keep] / s[keep], 1)
    pred = t / (a + b * t)
    return float(1.0 - np.sum((s - pred) ** 2) / np.sum((s - s.mean()) ** 2))


def test_settlement_after_each_stage_is_hyperbolic_and_restarts() -> None:
    cases = 0
    restarts = 0
    for seed in (0, 3):
        sim = simulate_site("embankment", 16, 540, "1h", seed, events=False)
        t0 = sim.drivers.index[0]
        r = sim.site.readings.dropna(subset=["value"])
        stages = sim.truth["stages"]
        assert len(stages) >= 2
        for sid in sim.site.sensors.loc[sim.site.sensors["kind"] == "settlement", "id"]:
            x = r[r["sensor_id"] == sid]
            steps = ((x["timestamp"] - t0) / pd.Timedelta("1h")).to_numpy()
            v = x["value"].to_numpy()
            for st in stages:
                m = (steps >= st["top_step"]) & (steps < st["wait_end_step"])
                if m.sum() < 5 or v[m][-1] - v[m][0] < 20.0:
                    continue  # too few readings, or settlement within a few survey errors
                t = (steps[m] - steps[m][0]) / 24.0
                r2 = _hyperbolic_r2(t, v[m] - v[m][0])
                assert r2 >= 0.95, (seed, sid, st, r2)
                cases += 1
            # each new stage restarts a fast settlement: rate after the lift > rate before
            if "logger" not in str(sim.site.sensor(sid).meta.get("sampling")):
                continue
            for st in stages[1:]:
                before = (steps >= st["start_step"] - 240) & (steps < st["start_step"])
                after = (steps >= st["top_step"]) & (steps < st["top_step"] + 240)
                if before.sum() < 100 or after.sum() < 100:
                    continue
                rate_b = np.polyfit(steps[before], v[before], 1)[0]
                rate_a = np.polyfit(steps[after], v[after], 1)[0]
                assert rate_a > 1.5 * rate_b, (seed, sid, st)
                restarts += 1
    assert cases >= 10
    assert restarts >= 4


def test_consolidation_curve_reaches_90_percent_at_t90_and_approaches_one() -> None:
    """Settlement per unit load (no secondary compression) is 0.9 at t90 and rises towards
    1 without passing it; the excess pore pressure 1 - U of foundation piezometers then
    dissipates towards 0 without turning negative."""
    k = consolidation_kernel(100.0, 5000, 0.0)
    assert k[100] == pytest.approx(0.9, abs=0.01)
    assert np.all(np.diff(k) >= 0)
    assert k.max() <= 1.0
    assert k[-1] >= 0.99


def test_accelerating_creep_shows_falling_inverse_velocity() -> None:
    checked = 0
    for seed in (0, 1):
        sim = simulate_site("slope", 16, 400, "1h", seed)
        frame = to_frame(sim.site)
        creep = sim.site.labels[sim.site.labels["kind"] == "accelerating_creep"]
        assert len(creep) >= 1
        ev = creep.iloc[0]
        slide = sim.truth["slide_displacement_mm"]
        moved = slide[ev["end"]] - slide[ev["start"]]
        for sid in str(ev["sensors"]).split(";"):
            spec = sim.site.sensor(sid)
            if (
                spec.kind not in ("inclinometer", "extensometer")
                or spec.meta["sampling"] != "logger"
            ):
                continue
            clean = sim.truth["signal"][sid]
            if clean[ev["end"]] - clean[ev["start"]] < 0.3 * moved:
                continue  # the label also lists sensors moving with a small part of the slide
            y = pd.Series(frame.values[:, frame.column(sid)], index=frame.times())
            daily = y.resample("1D").mean()
            v = daily.diff().rolling(3, center=True).mean()
            seg = v[ev["start"].ceil("1D") + pd.Timedelta("2D") : ev["end"].floor("1D")]
            n = len(seg)
            assert n >= 10
            inv = 1.0 / seg.to_numpy()
            assert (seg.to_numpy() > 0).all()
            first, last = np.median(inv[: n // 3]), np.median(inv[-(n // 3) :])
            assert last < 0.6 * first, (sid, first, last)
            slope = np.polyfit(np.arange(n), inv, 1)[0]
            assert slope < 0
            checked += 1
    assert checked >= 2


def test_unvented_piezometers_carry_the_barometric_effect() -> None:
    sim = simulate_site("slope", 24, 200, "1h", 6, events=False)
    frame = to_frame(sim.site)
    dp = np.diff(frame.values[:, frame.column("BA01")].astype(np.float64))
    gauges = sim.truth["piezometer_gauges"]
    seen = set()
    for pid, g in gauges.items():
        dy = np.diff(frame.values[:, frame.column(pid)].astype(np.float64))
        coef = float(np.polyfit(dp, dy, 1)[0])
        assert abs(coef - g["barometric_coefficient"]) < 0.15, (pid, coef, g)
        seen.add(g["vented"])
    assert seen == {True, False}


def test_dam_piezometers_follow_the_reservoir() -> None:
    """Pore pressure follows the lagged reservoir level with slope ~ gamma_w * eta (the
    configured head ratio); rain feeding both the reservoir and the ground biases the
    fitted slope upwards a little, so the median over piezometers is checked."""
    ratios = []
    for seed in (3, 4):
        sim = simulate_site("dam", 16, 365, "6h", seed, events=False)
        frame = to_frame(sim.site)
        level = frame.values[:, frame.column("WL01")].astype(np.float64)
        for pid, mode in sim.truth["reservoir_lag_steps"].items():
            y = frame.values[:, frame.column(pid)].astype(np.float64)
            k = gamma_kernel(mode, 2.0, gamma_kernel_length(mode, 2.0))
            padded = np.concatenate([np.full(len(k), level[0]), level])
            lagged = causal_convolve(padded, k / k.sum())[len(k) :]
            assert np.corrcoef(lagged, y)[0, 1] ** 2 >= 0.4, pid
            ratios.append(np.polyfit(lagged, y, 1)[0] / (9.81 * sim.truth["head_ratio"][pid]))
    assert len(ratios) >= 6
    assert 0.95 <= float(np.median(ratios)) <= 1.3


def test_process_noise_correlation_falls_with_distance() -> None:
    xyz = np.array([[0.0, 0, 0], [10, 0, 0], [200, 0, 0]])
    mix = spatial_mix(xyz, 50.0)
    x = ar1(np.random.default_rng(0), 40_000, 5.0, 1.0, columns=3, mix=mix)
    c = np.corrcoef(x.T)
    assert c[0, 1] > 0.7 > 0.2 > c[0, 2]
    assert np.allclose(x.std(axis=0), 1.0, atol=0.1)


def test_terzaghi_u_follows_the_series_solution() -> None:
    """U(Tv) within 0.001 of the full Fourier series (200 terms) from Tv = 0.001 to 3."""
    tv = np.linspace(0.001, 3.0, 400)
    m = np.arange(200)[:, None]
    big_m = np.pi * (2 * m + 1) / 2
    exact = 1.0 - (2.0 / big_m**2 * np.exp(-(big_m**2) * tv)).sum(axis=0)
    assert np.abs(terzaghi_u(tv) - exact).max() < 1e-3
    assert terzaghi_u(np.array([TV90]))[0] == pytest.approx(0.9, abs=1e-3)
