"""Sensor physics: what each simulated instrument reads, before faults and resolution.

For every sensor this computes, on the simulation grid, the physical quantity at its
position (pore pressure, displacement, settlement, strain...) plus the systematic
effects of the instrument (vibrating-wire thermal sensitivity, barometric effect of
unvented gauges, rod expansion) and spatially correlated process noise. White
measurement noise, sampling, faults and resolution are applied later (`api`).

Physics:

- piezometers respond to rain through a gamma-shaped impulse response whose peak lag
  grows with depth (lag0 + depth^2 / (6 D), a diffusion time) and whose gain attenuates
  with depth; a slow response to net recharge (rain - evapotranspiration) gives the
  seasons; dam piezometers follow the reservoir through a lagged kernel and a head ratio
  eta falling from the upstream face; foundation piezometers under an embankment carry
  excess pore pressure B * dq dissipating as consolidation proceeds;
- slope creep rate grows when the slip-surface pore pressure exceeds a threshold;
  accelerating-creep events add a velocity ~ 1/(t_f - t) (Fukuzono's inverse velocity);
- settlement under staged fill superposes Terzaghi consolidation curves, one per load
  increment, plus secondary compression: each stage restarts a fast-then-slowing curve;
- strain gauges carry thermal strain plus load (fill, reservoir, nail tension);
- ground temperature at depth d lags and damps the air temperature (first-order filter
  with time constant ~ d^2 / kappa).

Guarantees: deterministic given the generator; `truth` records the configured lags
(argmax of each discrete impulse response, in grid steps), the creep threshold and
failure times, the consolidation parameters, and the noise-free signal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from geojepa.simulate.drivers import Drivers
from geojepa.simulate.events import PlannedEvent, SeriesScale, event_shape, inject_fault
from geojepa.simulate.layout import SensorSpec, SiteFamily
from geojepa.simulate.signals import (
    ar1,
    causal_convolve,
    exp_kernel,
    gamma_kernel,
    gamma_kernel_length,
    spatial_mix,
)

GAMMA_W = 9.81  # kPa per m of water
KAPPA_M2_DAY = 0.05  # soil thermal diffusivity


@dataclass(frozen=True)
class Physics:
    """Sensor signals on the output grid and their measurement models."""

    signal: np.ndarray  # (T, C) reading before white noise, faults and resolution
    noise_sd: np.ndarray  # (C,) white measurement noise std per reading
    resolution: np.ndarray  # (C,) reading resolution (rain: tipping-bucket volume)
    truth: dict[str, Any]


# kind -> (logger noise range, logger resolution, manual noise range, manual resolution)
MEASUREMENT: dict[str, tuple[tuple[float, float], float, tuple[float, float], float]] = {
    "piezometer": ((0.01, 0.05), 0.01, (0.3, 1.0), 0.1),
    "strain_gauge": ((0.3, 1.5), 0.1, (2.0, 5.0), 1.0),
    "inclinometer": ((0.02, 0.08), 0.01, (0.3, 0.8), 0.1),
    "extensometer": ((0.01, 0.04), 0.01, (0.2, 0.5), 0.1),
    "settlement": ((0.3, 1.0), 0.1, (1.0, 3.0), 1.0),
    "gnss": ((2.0, 4.0), 0.1, (0.8, 1.5), 0.1),  # manual slot = daily solutions
    "thermometer": ((0.03, 0.08), 0.1, (0.3, 0.5), 0.1),
    "barometer": ((0.01, 0.03), 0.01, (0.05, 0.1), 0.01),
    "water_level": ((0.003, 0.008), 0.01, (0.01, 0.02), 0.01),
    "load": ((0.03, 0.08), 0.1, (0.03, 0.08), 0.1),
    "discharge": ((0.05, 0.2), 0.01, (0.2, 0.5), 0.1),
}


class _Ctx:
    """Shared inputs and cached intermediate series of one site's physics."""

    def __init__(
        self,
        fam: SiteFamily,
        drv: Drivers,
        n_warm: int,
        dt_h: float,
        events: Sequence[PlannedEvent],
        rng: np.random.Generator,
    ) -> None:
        self.fam, self.drv, self.n_warm, self.dt_h, self.rng = fam, drv, n_warm, dt_h, rng
        self.n = len(drv.rain)
        self.n_out = self.n - n_warm
        self.steps_day = 24.0 / dt_h
        self.events = list(events)
        self.t_mean = float(np.mean(drv.temperature))

    def ground_temp(self, depths: np.ndarray) -> np.ndarray:
        """Ground temperature anomaly (n, k) at `depths` (m): air anomaly through a
        first-order lag of time constant d^2 / kappa (at least one hour)."""
        depths = np.atleast_1d(np.asarray(depths, dtype=np.float64))
        anomaly = self.drv.temperature - self.t_mean
        taus = np.maximum(depths**2 / KAPPA_M2_DAY * self.steps_day, 1.0 / self.dt_h)  # steps
        length = int(min(self.n, max(8.0 * float(taus.max()), 2.0)))
        kern = np.stack([exp_kernel(t, length) for t in taus], axis=1)  # (K, k)
        return causal_convolve(anomaly, kern)  # (n, k)

    def rain_response(self, modes: np.ndarray, shapes: np.ndarray | float) -> np.ndarray:
        """Peak-normalised gamma responses to rain (n, k) for peak lags `modes` (steps)."""
        sh = np.broadcast_to(np.asarray(shapes, dtype=np.float64), np.shape(modes))
        length = min(
            self.n,
            max(gamma_kernel_length(float(m), float(a)) for m, a in zip(modes, sh, strict=False)),
        )
        kern = np.stack(
            [gamma_kernel(float(m), float(a), length) for m, a in zip(modes, sh, strict=False)], 1
        )
        return causal_convolve(self.drv.rain, kern)  # (n, k)

    def events_of(self, kind: str, sensor: str) -> list[PlannedEvent]:
        return [e for e in self.events if e.kind == kind and sensor in e.sensors]

    def out(self, x: np.ndarray) -> np.ndarray:
        return x[self.n_warm :]


def simulate_physics(
    fam: SiteFamily,
    specs: Sequence[SensorSpec],
    drv: Drivers,
    n_warm: int,
    dt_h: float,
    geo_events: Sequence[PlannedEvent],
    rng: np.random.Generator,
) -> Physics:
    """Signals (T_out, C) of every sensor of `specs` (geotechnical events included)."""
    ctx = _Ctx(fam, drv, n_warm, dt_h, geo_events, rng)
    c = len(specs)
    sig = np.zeros((ctx.n, c))  # (n, C) full grid incl. warm-up
    truth: dict[str, Any] = {"lag_steps": {}, "lag_hours": {}}
    col = {s.id: i for i, s in enumerate(specs)}
    by_kind: dict[str, list[SensorSpec]] = {}
    for s in specs:
        by_kind.setdefault(s.kind, []).append(s)

    # drivers seen by their own gauges
    for s in by_kind.get("rain_gauge", []):
        sig[:, col[s.id]] = drv.rain * float(rng.uniform(0.9, 0.98))  # wind under-catch
    for s in by_kind.get("thermometer", []):
        sig[:, col[s.id]] = drv.temperature + float(rng.normal(0, 0.2))
    for s in by_kind.get("barometer", []):
        sig[:, col[s.id]] = drv.pressure + float(rng.normal(0, 0.05))
    for s in by_kind.get("water_level", []):
        if drv.reservoir is not None:
            sig[:, col[s.id]] = drv.reservoir
    for s in by_kind.get("load", []):
        if drv.fill is not None:
            sig[:, col[s.id]] = drv.fill

    if fam.scenario == "slope":
        _slope(ctx, by_kind, col, sig, truth)
    elif fam.scenario == "embankment":
        _embankment(ctx, by_kind, col, sig, truth)
    else:
        _dam(ctx, by_kind, col, sig, truth)

    noise = np.zeros(c)
    res = np.zeros(c)
    for i, s in enumerate(specs):
        if s.kind == "rain_gauge":
            noise[i], res[i] = 0.0, fam.tip_mm
            continue
        lo_n, lo_r, man_n, man_r = MEASUREMENT[s.kind]
        sparse = s.sampling == "manual" or (s.kind == "gnss" and fam.gnss_daily)
        rng_n = man_n if sparse else lo_n
        noise[i] = float(rng.uniform(*rng_n))
        res[i] = man_r if sparse else lo_r
        if s.kind == "discharge":
            noise[i] *= max(1.0, float(np.mean(sig[:, i])) / 20.0)
    out = np.ascontiguousarray(sig[n_warm:])
    return Physics(signal=out, noise_sd=noise, resolution=res, truth=truth)


# ------------------------------------------------------------------ shared pieces


def _process_noise(
    ctx: _Ctx, specs: list[SensorSpec], tau_days: float, sigma: np.ndarray
) -> np.ndarray:
    """Smooth, spatially correlated noise (n, k) for `specs`: AR(1) with correlation time
    `tau_days`, correlated by exp(-distance / L), then low-passed over tau/4 so that it
    varies like an unmodelled process, not like instrument jitter; std `sigma`."""
    xyz = np.array([[s.x, s.y, s.z] for s in specs], dtype=np.float64)
    mix = spatial_mix(xyz, ctx.fam.correlation_length_m)
    tau = tau_days * ctx.steps_day
    x = ar1(ctx.rng, ctx.n, tau, sigma, columns=len(specs), mix=mix)  # (n, k)
    tau2 = max(tau / 4.0, 1.0)
    smooth = causal_convolve(x, exp_kernel(tau2, min(ctx.n, int(10 * tau2) + 1)))
    return smooth * math.sqrt((tau + tau2) / tau)


def _piezo_rain(
    ctx: _Ctx, specs: list[SensorSpec], depths: np.ndarray, gain_scale: float, truth: dict[str, Any]
) -> np.ndarray:
    """Fast (gamma kernel, depth lag) + slow (net recharge) rain response (n, k) in kPa."""
    fam, rng = ctx.fam, ctx.rng
    k = len(specs)
    # transit through the unsaturated zone: one value per borehole (same surface and soil)
    per_group = {g: float(rng.uniform(6.0, 18.0)) for g in sorted({s.group for s in specs})}
    lag0 = np.array([per_group[s.group] for s in specs])  # h
    lag_h = np.minimum(lag0 + depths**2 / (6.0 * fam.diffusivity_m2_h), 30 * 24.0)
    modes = lag_h / ctx.dt_h
    # advective-dispersive transit: the pulse sharpens (relative to its lag) with distance
    shapes = np.maximum(fam.kernel_shape, 1.0 + lag_h / fam.dispersion_h)
    fast = ctx.rain_response(modes, shapes)  # (n, k)
    gain = (
        gain_scale
        * GAMMA_W
        / 1000.0
        / fam.specific_yield
        * np.exp(-np.maximum(depths, 0) / 10.0)
        * rng.uniform(0.7, 1.3, k)
    )
    length = min(
        ctx.n,
        max(gamma_kernel_length(float(m), float(a)) for m, a in zip(modes, shapes, strict=False)),
    )
    for i, s in enumerate(specs):
        kern = gamma_kernel(float(modes[i]), float(shapes[i]), length)
        truth["lag_steps"][s.id] = int(np.argmax(kern))
        truth["lag_hours"][s.id] = round(float(lag_h[i]), 3)
    net = ctx.drv.rain - ctx.drv.et
    net = (net - float(net.mean())) * ctx.steps_day  # mm/day anomaly
    slow_mode = float(rng.uniform(20, 60)) * ctx.steps_day
    slow_len = min(ctx.n, gamma_kernel_length(slow_mode, 2.5))
    sk = gamma_kernel(slow_mode, 2.5, slow_len)
    slow = causal_convolve(net, sk / sk.sum())  # (n,)
    g_slow = gain_scale * rng.uniform(2.0, 6.0, k) * np.exp(-np.maximum(depths, 0) / 25.0)
    return fast * gain + slow[:, None] * g_slow  # (n, k)


def _vw_effects(
    ctx: _Ctx, specs: list[SensorSpec], depths: np.ndarray, truth: dict[str, Any]
) -> np.ndarray:
    """Vibrating-wire thermal error plus barometric effect of unvented gauges (n, k)."""
    rng = ctx.rng
    k = len(specs)
    tg = ctx.ground_temp(depths)  # (n, k)
    c_t = rng.normal(0.0, 0.04, k)  # kPa/degC
    vented = rng.uniform(size=k) < 0.5
    c_b = np.where(vented, 0.0, rng.uniform(0.3, 0.9, k))  # 1 - barometric efficiency
    for s, v, cb, ct in zip(specs, vented, c_b, c_t, strict=True):
        truth.setdefault("piezometer_gauges", {})[s.id] = {
            "vented": bool(v),
            "barometric_coefficient": round(float(cb), 4),
            "thermal_kpa_per_degc": round(float(ct), 5),
        }
    p = ctx.drv.pressure - float(ctx.drv.pressure.mean())
    return tg * c_t + p[:, None] * c_b


def _apply_pore_rise(ctx: _Ctx, specs: list[SensorSpec], u: np.ndarray) -> None:
    """Pore-pressure rises not explained by rain: added to `u` (n, k) in place."""
    for j, s in enumerate(specs):
        for ev in ctx.events_of("pore_pressure_rise", s.id):
            u_out = ctx.out(u[:, j])
            sc = _scale(u_out, floor=1.5)
            new = inject_fault(
                u_out,
                ev.kind,
                ev.start,
                ev.end,
                ev.intensity,
                np.random.default_rng(ev.seed),
                scale=sc,
            )
            u[ctx.n_warm :, j] = new


def _scale(x: np.ndarray, floor: float) -> SeriesScale:
    q75, q25 = np.percentile(x, [75, 25])
    spread = max(float(q75 - q25) / 1.349, floor)
    return SeriesScale(noise=floor / 10.0, spread=spread)


def _put(sig: np.ndarray, col: dict[str, int], specs: list[SensorSpec], x: np.ndarray) -> None:
    for j, s in enumerate(specs):
        sig[:, col[s.id]] = x[:, j]


# ------------------------------------------------------------------ slope


def _slope(
    ctx: _Ctx,
    by_kind: dict[str, list[SensorSpec]],
    col: dict[str, int],
    sig: np.ndarray,
    truth: dict[str, Any],
) -> None:
    fam, rng, g = ctx.fam, ctx.rng, ctx.fam.geometry
    piezos = by_kind.get("piezometer", [])
    if piezos:
        d = np.array([s.depth for s in piezos])
        wt = np.array([s.factors.get("wt_depth", fam.water_table_depth) for s in piezos])
        u = GAMMA_W * (d - wt) + _piezo_rain(ctx, piezos, d, 1.0, truth)
        u += _process_noise(ctx, piezos, float(rng.uniform(1, 4)), rng.uniform(0.05, 0.3, len(d)))
        _apply_pore_rise(ctx, piezos, u)
        u = np.maximum(u, 0.0) + _vw_effects(ctx, piezos, d, truth)
        _put(sig, col, piezos, u)

    # slip-surface pore pressure drives the creep rate
    slip = np.array([g["slip_depth"]])
    lag_truth: dict[str, Any] = {"lag_steps": {}, "lag_hours": {}}
    ref = SensorSpec("slip", "piezometer", "kPa", 0, 0, 0, "", float(slip[0]), "", "logger")
    u_slip = _piezo_rain(ctx, [ref], slip, 1.0, lag_truth)[:, 0]
    thr = float(np.quantile(u_slip, g["creep_quantile"]))
    spread = float(np.std(u_slip)) or 1.0
    v0 = g["creep_mm_day"]
    excess = np.maximum(u_slip - thr, 0.0) / spread
    v = v0 * (0.3 + 3.0 * fam.creep_sensitivity * excess)  # mm/day, (n,)
    v_typ = float(np.mean(ctx.out(v)))
    failures: list[dict[str, Any]] = []
    for ev in [e for e in ctx.events if e.kind == "accelerating_creep"]:
        s0, e0 = ev.start + ctx.n_warm, ev.end + ctx.n_warm
        tf = float(ev.failure_step if ev.failure_step is not None else ev.end) + ctx.n_warm
        t = np.arange(s0, e0, dtype=np.float64)
        v[s0:e0] += ev.intensity * max(v_typ, v0) * (tf - s0) / (tf - t)
        failures.append({"start_step": ev.start, "failure_step": round(tf - ctx.n_warm, 3)})
    disp = np.cumsum(v) / ctx.steps_day  # mm, (n,)
    disp -= disp[ctx.n_warm]
    truth["creep"] = {
        "threshold_kpa": round(thr, 4),
        "base_rate_mm_day": round(v0, 5),
        "slip_lag_steps": lag_truth["lag_steps"]["slip"],
        "failures": failures,
    }
    truth["slide_displacement_mm"] = ctx.out(disp).copy()
    cos_a = math.cos(math.radians(g["angle_deg"]))

    def moving(specs: list[SensorSpec]) -> np.ndarray:
        f = np.array([s.factors.get("slide", 0.0) for s in specs])
        return disp[:, None] * f[None, :]  # (n, k)

    inc = by_kind.get("inclinometer", [])
    if inc:
        d = np.array([s.depth for s in inc])
        x = moving(inc) + ctx.ground_temp(np.maximum(d, 0.3)) * rng.normal(0, 0.02, len(inc))
        x += _process_noise(ctx, inc, 1.0, rng.uniform(0.02, 0.08, len(inc)))
        _put(sig, col, inc, x)
    ext = by_kind.get("extensometer", [])
    if ext:
        rod = np.array([s.factors.get("rod_length", s.depth) for s in ext])
        x = moving(ext) + ctx.ground_temp(rod / 2.0) * (12e-3 * rod)[None, :]
        x += ctx.ground_temp(np.zeros(len(ext))) * rng.uniform(0.005, 0.02, len(ext))
        x += _process_noise(ctx, ext, 1.0, rng.uniform(0.01, 0.03, len(ext)))
        _put(sig, col, ext, x)
    gn = by_kind.get("gnss", [])
    if gn:
        season = ctx.ground_temp(np.full(len(gn), 0.5))
        x = moving(gn) * cos_a + season * rng.uniform(0.05, 0.2, len(gn))
        x += _process_noise(ctx, gn, 0.5, rng.uniform(0.5, 1.5, len(gn)))
        _put(sig, col, gn, x)
    sg = by_kind.get("strain_gauge", [])
    if sg:
        d = np.array([s.depth for s in sg])
        x = moving(sg) * rng.uniform(5, 30, len(sg)) + ctx.ground_temp(d) * rng.uniform(
            1, 4, len(sg)
        )
        x += _process_noise(ctx, sg, 2.0, rng.uniform(0.5, 2.0, len(sg)))
        _put(sig, col, sg, x)


# ------------------------------------------------------------------ embankment


def terzaghi_u(tv: np.ndarray) -> np.ndarray:
    """Average degree of consolidation U(Tv) (one-dimensional, Terzaghi), in [0, 1)."""
    tv = np.maximum(np.asarray(tv, dtype=np.float64), 0.0)
    a = 4.0 * tv / math.pi
    return np.sqrt(a / (1.0 + a**2.8) ** 0.179)


def _consolidation_kernel(t90_steps: float, n: int, secondary: float) -> np.ndarray:
    """Settlement step response (n,): Terzaghi U plus secondary compression."""
    k = np.arange(n, dtype=np.float64)
    return terzaghi_u(0.848 * k / t90_steps) + secondary * np.log1p(k / t90_steps)


def _embankment(
    ctx: _Ctx,
    by_kind: dict[str, list[SensorSpec]],
    col: dict[str, int],
    sig: np.ndarray,
    truth: dict[str, Any],
) -> None:
    fam, rng, g = ctx.fam, ctx.rng, ctx.fam.geometry
    drv = ctx.drv
    fill = drv.fill if drv.fill is not None else np.zeros(ctx.n)
    q = g["fill_unit_weight"] * fill  # kPa
    dq = np.diff(q, prepend=0.0)  # (n,) load increments
    h_mean = g["clay_thickness"]
    consol: dict[str, Any] = {}

    def t90_of(s: SensorSpec) -> float:
        h = s.factors.get("clay", h_mean)
        return fam.t90_days * (h / h_mean) ** 2 * float(rng.uniform(0.8, 1.25)) * ctx.steps_day

    def settle(specs: list[SensorSpec]) -> np.ndarray:
        out = np.zeros((ctx.n, len(specs)))
        kerns = []
        for s in specs:
            t90 = t90_of(s)
            mm_kpa = (
                0.5
                * fam.mv_per_mpa
                * s.factors.get("clay", h_mean)
                * float(rng.uniform(0.85, 1.15))
            )
            kerns.append(mm_kpa * _consolidation_kernel(t90, ctx.n, float(rng.uniform(0.02, 0.06))))
            if s.kind == "settlement":
                consol[s.id] = {
                    "t90_days": round(t90 / ctx.steps_day, 3),
                    "mm_per_kpa": round(mm_kpa * s.factors.get("load", 1.0), 4),
                }
        if specs:
            out = causal_convolve(dq, np.stack(kerns, axis=1))  # (n, k)
        return out

    plates = by_kind.get("settlement", [])
    if plates:
        lam = np.array([s.factors.get("load", 1.0) for s in plates])
        s_true = settle(plates) * lam[None, :]
        for j, s in enumerate(plates):
            for ev in ctx.events_of("settlement_acceleration", s.id):
                s_out = ctx.out(s_true[:, j])
                sc = _scale(s_out, floor=5.0)
                amp = ev.intensity * max(0.3 * sc.spread, 20.0)
                s_true[ctx.n_warm :, j] += amp * event_shape(ev.kind, ctx.n_out, ev.start, ev.end)
        x = s_true + _process_noise(ctx, plates, 3.0, rng.uniform(0.1, 0.4, len(plates)))
        _put(sig, col, plates, x)
    piezos = by_kind.get("piezometer", [])
    if piezos:
        d = np.array([s.depth for s in piezos])
        lam = np.array([s.factors.get("load", 1.0) for s in piezos])
        u = GAMMA_W * (d - fam.water_table_depth)
        u = u + _piezo_rain(ctx, piezos, d, 0.3, truth)
        b = rng.uniform(0.8, 1.0, len(piezos))
        kerns = []
        for s in piezos:
            rel = s.factors.get("rel_depth", 0.5)
            t90 = t90_of(s) * (0.6 + 0.8 * (1.0 - abs(2.0 * rel - 1.0)))
            kerns.append(1.0 - terzaghi_u(0.848 * np.arange(ctx.n) / t90))
        excess = causal_convolve(dq, np.stack(kerns, axis=1)) * (b * lam)[None, :]
        u = u + excess + _process_noise(ctx, piezos, 3.0, rng.uniform(0.2, 0.6, len(piezos)))
        _apply_pore_rise(ctx, piezos, u)
        u = np.maximum(u, 0.0) + _vw_effects(ctx, piezos, d, truth)
        _put(sig, col, piezos, u)
    inc = by_kind.get("inclinometer", [])
    if inc:
        lat = np.array([s.factors.get("lateral", 0.2) for s in inc])
        x = settle(inc) * lat[None, :]
        x += _process_noise(ctx, inc, 1.0, rng.uniform(0.02, 0.08, len(inc)))
        _put(sig, col, inc, x)
    ext = by_kind.get("extensometer", [])
    if ext:
        frac = np.array([s.factors.get("fraction", 0.7) for s in ext])
        rod = np.array([s.depth for s in ext])
        x = settle(ext) * frac[None, :] + ctx.ground_temp(rod / 2) * (12e-3 * rod)[None, :]
        x += _process_noise(ctx, ext, 1.0, rng.uniform(0.01, 0.03, len(ext)))
        _put(sig, col, ext, x)
    sg = by_kind.get("strain_gauge", [])
    if sg:
        lam = np.array([s.factors.get("load", 1.0) for s in sg])
        x = settle(sg) * (lam * rng.uniform(0.5, 2.0, len(sg)))[None, :]
        x += ctx.ground_temp(np.full(len(sg), 0.5)) * rng.uniform(0.5, 2.0, len(sg))
        x += _process_noise(ctx, sg, 2.0, rng.uniform(0.5, 2.0, len(sg)))
        _put(sig, col, sg, x)
    gn = by_kind.get("gnss", [])
    if gn:
        x = -settle(gn) + ctx.ground_temp(np.full(len(gn), 0.5)) * rng.uniform(0.05, 0.2, len(gn))
        x += _process_noise(ctx, gn, 0.5, rng.uniform(0.5, 1.5, len(gn)))
        _put(sig, col, gn, x)
    truth["consolidation"] = consol
    truth["stages"] = [
        {
            "start_step": st.start,
            "top_step": st.top,
            "wait_end_step": st.wait_end,
            "height_m": st.height,
        }
        for st in drv.stages
    ]


# ------------------------------------------------------------------ dam


def _dam(
    ctx: _Ctx,
    by_kind: dict[str, list[SensorSpec]],
    col: dict[str, int],
    sig: np.ndarray,
    truth: dict[str, Any],
) -> None:
    fam, rng, drv = ctx.fam, ctx.rng, ctx.drv
    level = drv.reservoir if drv.reservoir is not None else np.zeros(ctx.n)
    tail = drv.tailwater
    l_mean = float(ctx.out(level).mean())
    truth["reservoir_lag_steps"] = {}

    def lagged_level(modes_days: np.ndarray) -> np.ndarray:
        modes = modes_days * ctx.steps_day
        length = min(ctx.n, max(gamma_kernel_length(float(m), 2.0) for m in modes))
        ks = [gamma_kernel(float(m), 2.0, length) for m in modes]
        kern = np.stack([k / k.sum() for k in ks], axis=1)  # unit-sum: steady level kept
        # prepend the initial level so the start has a steady history
        pad = np.full(length, level[0])
        full = causal_convolve(np.concatenate([pad, level]), kern)  # (n + K, k)
        return full[length:]

    piezos = by_kind.get("piezometer", [])
    if piezos:
        eta = np.array([s.factors.get("eta", 0.5) for s in piezos])
        upos = np.array([s.factors.get("u", 0.0) for s in piezos])
        lag_days = (1.0 + 25.0 * (upos + 1.0) / 2.0) * rng.uniform(0.7, 1.3, len(piezos))
        lag_days *= {"clay": 2.0, "silt": 1.3}.get(fam.soil, 1.0)
        lv = lagged_level(lag_days)  # (n, k)
        for s, m, e in zip(piezos, lag_days, eta, strict=True):
            truth["reservoir_lag_steps"][s.id] = round(float(m * ctx.steps_day), 3)
            truth.setdefault("head_ratio", {})[s.id] = round(float(e), 4)
        head = tail + eta[None, :] * (lv - tail)
        for j, s in enumerate(piezos):
            for ev in ctx.events_of("seepage_change", s.id):
                shape = event_shape(ev.kind, ctx.n_out, ev.start, ev.end)
                d_eta = ev.intensity * 0.04 * min(1.0, 1.0 - eta[j] + 0.2)
                head[ctx.n_warm :, j] += d_eta * shape * (ctx.out(lv[:, j]) - tail)
        z = np.array([s.z for s in piezos])
        u = GAMMA_W * (head - z[None, :])
        u += _piezo_rain(ctx, piezos, np.full(len(piezos), 3.0), 0.2, truth)
        u += _process_noise(ctx, piezos, 3.0, rng.uniform(0.2, 0.6, len(piezos)))
        _apply_pore_rise(ctx, piezos, u)
        u = np.maximum(u, 0.0) + _vw_effects(ctx, piezos, np.full(len(piezos), 5.0), truth)
        _put(sig, col, piezos, u)
    for s in by_kind.get("discharge", []):
        lv = lagged_level(np.array([float(rng.uniform(2, 10))]))[:, 0]
        span = fam.geometry["drawdown_range"]
        l_q = float(np.min(level)) - 0.2 * span
        c = float(rng.uniform(5, 30)) / max(span, 1.0) ** 1.5
        runoff = ctx.rain_response(np.array([6.0 / ctx.dt_h]), 3.0)[:, 0]
        qf = 0.5 + c * np.maximum(lv - l_q, 0.0) ** 1.5 + float(rng.uniform(0.05, 0.3)) * runoff
        for ev in ctx.events_of("seepage_change", s.id):
            shape = event_shape(ev.kind, ctx.n_out, ev.start, ev.end)
            qf[ctx.n_warm :] *= 1.0 + ev.intensity * 0.3 * shape
        qf = qf * (1.0 + ar1(rng, ctx.n, 2.0 * ctx.steps_day, 0.02))
        sig[:, col[s.id]] = qf
    days = (np.arange(ctx.n) - ctx.n_warm) / ctx.steps_day
    age = np.log1p(np.maximum(days + 400.0, 0.0) / 100.0)  # the dam is older than the record
    sg = by_kind.get("strain_gauge", [])
    if sg:
        k = len(sg)
        x = (level - l_mean)[:, None] * rng.uniform(-3, -1, k)
        x += ctx.ground_temp(rng.uniform(0.5, 2.0, k)) * rng.uniform(2, 6, k)
        x -= age[:, None] * rng.uniform(5, 20, k)
        x += _process_noise(ctx, sg, 2.0, rng.uniform(0.3, 1.0, k))
        _put(sig, col, sg, x)
    lv_struct = lagged_level(np.array([3.0]))[:, 0] - l_mean
    ext = by_kind.get("extensometer", [])
    if ext:
        k = len(ext)
        x = lv_struct[:, None] * rng.uniform(0.01, 0.05, k)
        x += ctx.ground_temp(np.full(k, 2.0)) * rng.uniform(0.002, 0.01, k)
        x += age[:, None] * rng.uniform(0.01, 0.05, k)
        x += _process_noise(ctx, ext, 1.0, rng.uniform(0.005, 0.02, k))
        _put(sig, col, ext, x)
    gn = by_kind.get("gnss", [])
    if gn:
        k = len(gn)
        x = lv_struct[:, None] * rng.uniform(0.1, 0.5, k)
        x += ctx.ground_temp(np.full(k, 2.0)) * rng.uniform(0.2, 0.5, k)
        x += age[:, None] * rng.uniform(0.5, 3.0, k)
        x += _process_noise(ctx, gn, 0.5, rng.uniform(0.5, 1.5, k))
        _put(sig, col, gn, x)
    inc = by_kind.get("inclinometer", [])
    if inc:
        k = len(inc)
        shp = np.array([s.factors.get("shape", 0.5) for s in inc])
        x = (lv_struct[:, None] * rng.uniform(0.05, 0.2, k) + age[:, None] * 2.0) * shp[None, :]
        x += _process_noise(ctx, inc, 1.0, rng.uniform(0.02, 0.08, k))
        _put(sig, col, inc, x)
    sp = by_kind.get("settlement", [])
    if sp:
        k = len(sp)
        x = age[:, None] * rng.uniform(2, 10, k) + lv_struct[:, None] * rng.uniform(0.05, 0.2, k)
        x += _process_noise(ctx, sp, 3.0, rng.uniform(0.1, 0.3, k))
        _put(sig, col, sp, x)
