"""Slope physics: piezometers, slip-surface pore pressure, creep and the displacement
sensors it moves (inclinometers, extensometers, GNSS, soil-nail strain gauges).

Guarantees: the creep rate grows only when the slip-surface pore pressure exceeds its
threshold (a quantile of its own record); accelerating-creep events add a velocity
v ~ (t_f - t_0) / (t_f - t), so inverse velocity falls linearly towards t_f; an event's
extra movement reaches exactly the sensors of its label (each by its ``slide`` factor).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

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


def slope_physics(
    ctx: Ctx,
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
        u = GAMMA_W * (d - wt) + piezo_rain(ctx, piezos, d, 1.0, truth)
        u += process_noise(ctx, piezos, float(rng.uniform(1, 4)), rng.uniform(0.05, 0.3, len(d)))
        apply_pore_rise(ctx, piezos, u)
        u = np.maximum(u, 0.0) + vw_effects(ctx, piezos, d, truth)
        put_columns(sig, col, piezos, u)

    # slip-surface pore pressure drives the creep rate
    slip = np.array([g["slip_depth"]])
    lag_truth: dict[str, Any] = {"lag_steps": {}, "lag_hours": {}}
    ref = SensorSpec("slip", "piezometer", "kPa", 0, 0, 0, "", float(slip[0]), "", "logger")
    u_slip = piezo_rain(ctx, [ref], slip, 1.0, lag_truth)[:, 0]
    thr = float(np.quantile(u_slip, g["creep_quantile"]))
    spread = float(np.std(u_slip)) or 1.0
    v0 = g["creep_mm_day"]
    excess = np.maximum(u_slip - thr, 0.0) / spread
    v = v0 * (0.3 + 3.0 * fam.creep_sensitivity * excess)  # mm/day, (n,)
    v_typ = float(np.mean(ctx.out(v)))
    failures: list[dict[str, Any]] = []
    base = np.cumsum(v) / ctx.steps_day  # mm, (n,) without events
    base -= base[ctx.n_warm]
    extra: list[tuple[frozenset[str], np.ndarray]] = []  # (labelled sensors, extra mm (n,))
    for ev in [e for e in ctx.events if e.kind == "accelerating_creep"]:
        s0, e0 = ev.start + ctx.n_warm, ev.end + ctx.n_warm
        tf = float(ev.failure_step if ev.failure_step is not None else ev.end) + ctx.n_warm
        t = np.arange(s0, e0, dtype=np.float64)
        dv = np.zeros(ctx.n)
        dv[s0:e0] = ev.intensity * max(v_typ, v0) * (tf - s0) / (tf - t)
        extra.append((frozenset(ev.sensors), np.cumsum(dv) / ctx.steps_day))
        failures.append({"start_step": ev.start, "failure_step": round(tf - ctx.n_warm, 3)})
    disp = base + sum((x for _, x in extra), np.zeros(ctx.n))  # the slide body
    truth["creep"] = {
        "threshold_kpa": round(thr, 4),
        "base_rate_mm_day": round(v0, 5),
        "slip_lag_steps": lag_truth["lag_steps"]["slip"],
        "failures": failures,
    }
    truth["slide_displacement_mm"] = ctx.out(disp).copy()
    cos_a = math.cos(math.radians(g["angle_deg"]))

    def moving(specs: list[SensorSpec]) -> np.ndarray:
        out = np.empty((ctx.n, len(specs)))
        for j, s in enumerate(specs):
            d = base + sum((x for ids, x in extra if s.id in ids), np.zeros(ctx.n))
            out[:, j] = d * s.factors.get("slide", 0.0)
        return out  # (n, k)

    inc = by_kind.get("inclinometer", [])
    if inc:
        d = np.array([s.depth for s in inc])
        x = moving(inc) + ctx.ground_temp(np.maximum(d, 0.3)) * rng.normal(0, 0.02, len(inc))
        x += process_noise(ctx, inc, 1.0, rng.uniform(0.02, 0.08, len(inc)))
        put_columns(sig, col, inc, x)
    ext = by_kind.get("extensometer", [])
    if ext:
        rod = np.array([s.factors.get("rod_length", s.depth) for s in ext])
        x = moving(ext) + ctx.ground_temp(rod / 2.0) * (12e-3 * rod)[None, :]
        x += ctx.ground_temp(np.zeros(len(ext))) * rng.uniform(0.005, 0.02, len(ext))
        x += process_noise(ctx, ext, 1.0, rng.uniform(0.01, 0.03, len(ext)))
        put_columns(sig, col, ext, x)
    gn = by_kind.get("gnss", [])
    if gn:
        season = ctx.ground_temp(np.full(len(gn), 0.5))
        x = moving(gn) * cos_a + season * rng.uniform(0.05, 0.2, len(gn))
        x += process_noise(ctx, gn, 0.5, rng.uniform(0.5, 1.5, len(gn)))
        put_columns(sig, col, gn, x)
    sg = by_kind.get("strain_gauge", [])
    if sg:
        d = np.array([s.depth for s in sg])
        x = moving(sg) * rng.uniform(5, 30, len(sg)) + ctx.ground_temp(d) * rng.uniform(
            1, 4, len(sg)
        )
        x += process_noise(ctx, sg, 2.0, rng.uniform(0.5, 2.0, len(sg)))
        put_columns(sig, col, sg, x)
