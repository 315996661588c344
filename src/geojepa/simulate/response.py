"""Shared pieces of the sensor physics: the per-site context (drivers, grid, cached
ground temperatures, rain responses), spatially correlated process noise, the piezometer
rain response, vibrating-wire effects and event helpers.

Guarantees: every function is deterministic given the context's generator and causal in
time; arrays are on the simulation grid (warm-up included) unless named `out`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from geojepa.simulate.drivers import Drivers
from geojepa.simulate.events import PlannedEvent, SeriesScale, inject_fault
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


class Ctx:
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


def process_noise(
    ctx: Ctx, specs: list[SensorSpec], tau_days: float, sigma: np.ndarray
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


def piezo_rain(
    ctx: Ctx, specs: list[SensorSpec], depths: np.ndarray, gain_scale: float, truth: dict[str, Any]
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


def vw_effects(
    ctx: Ctx, specs: list[SensorSpec], depths: np.ndarray, truth: dict[str, Any]
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


def apply_pore_rise(ctx: Ctx, specs: list[SensorSpec], u: np.ndarray) -> None:
    """Pore-pressure rises not explained by rain: added to `u` (n, k) in place."""
    for j, s in enumerate(specs):
        for ev in ctx.events_of("pore_pressure_rise", s.id):
            u_out = ctx.out(u[:, j])
            sc = floor_scale(u_out, floor=1.5)
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


def floor_scale(x: np.ndarray, floor: float) -> SeriesScale:
    q75, q25 = np.percentile(x, [75, 25])
    spread = max(float(q75 - q25) / 1.349, floor)
    return SeriesScale(noise=floor / 10.0, spread=spread)


def put_columns(
    sig: np.ndarray, col: dict[str, int], specs: list[SensorSpec], x: np.ndarray
) -> None:
    for j, s in enumerate(specs):
        sig[:, col[s.id]] = x[:, j]
