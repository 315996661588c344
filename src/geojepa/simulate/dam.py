"""Dam physics: piezometers follow the lagged reservoir level through a head ratio eta
that falls from the upstream face; a seepage weir follows the level; concrete strain
gauges, joint extensometers, crest GNSS, shell inclinometers and crest settlement carry
reservoir load, thermal and ageing terms.

Guarantees: a unit-sum lag kernel keeps a steady level steady; seepage-change events
raise eta (or the weir's flow) and restore it at their end.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from geojepa.simulate.events import event_shape
from geojepa.simulate.layout import SensorSpec
from geojepa.simulate.response import (
    GAMMA_W,
    Ctx,
    apply_pore_rise,
    piezo_rain,
    process_noise,
    put_columns,
    vw_effects,
)
from geojepa.simulate.signals import (
    ar1,
    causal_convolve,
    gamma_kernel,
    gamma_kernel_length,
)


def dam_physics(
    ctx: Ctx,
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
        u += piezo_rain(ctx, piezos, np.full(len(piezos), 3.0), 0.2, truth)
        u += process_noise(ctx, piezos, 3.0, rng.uniform(0.2, 0.6, len(piezos)))
        apply_pore_rise(ctx, piezos, u)
        u = np.maximum(u, 0.0) + vw_effects(ctx, piezos, np.full(len(piezos), 5.0), truth)
        put_columns(sig, col, piezos, u)
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
        x += process_noise(ctx, sg, 2.0, rng.uniform(0.3, 1.0, k))
        put_columns(sig, col, sg, x)
    lv_struct = lagged_level(np.array([3.0]))[:, 0] - l_mean
    ext = by_kind.get("extensometer", [])
    if ext:
        k = len(ext)
        x = lv_struct[:, None] * rng.uniform(0.01, 0.05, k)
        x += ctx.ground_temp(np.full(k, 2.0)) * rng.uniform(0.002, 0.01, k)
        x += age[:, None] * rng.uniform(0.01, 0.05, k)
        x += process_noise(ctx, ext, 1.0, rng.uniform(0.005, 0.02, k))
        put_columns(sig, col, ext, x)
    gn = by_kind.get("gnss", [])
    if gn:
        k = len(gn)
        x = lv_struct[:, None] * rng.uniform(0.1, 0.5, k)
        x += ctx.ground_temp(np.full(k, 2.0)) * rng.uniform(0.2, 0.5, k)
        x += age[:, None] * rng.uniform(0.5, 3.0, k)
        x += process_noise(ctx, gn, 0.5, rng.uniform(0.5, 1.5, k))
        put_columns(sig, col, gn, x)
    inc = by_kind.get("inclinometer", [])
    if inc:
        k = len(inc)
        shp = np.array([s.factors.get("shape", 0.5) for s in inc])
        x = (lv_struct[:, None] * rng.uniform(0.05, 0.2, k) + age[:, None] * 2.0) * shp[None, :]
        x += process_noise(ctx, inc, 1.0, rng.uniform(0.02, 0.08, k))
        put_columns(sig, col, inc, x)
    sp = by_kind.get("settlement", [])
    if sp:
        k = len(sp)
        x = age[:, None] * rng.uniform(2, 10, k) + lv_struct[:, None] * rng.uniform(0.05, 0.2, k)
        x += process_noise(ctx, sp, 3.0, rng.uniform(0.1, 0.3, k))
        put_columns(sig, col, sp, x)
