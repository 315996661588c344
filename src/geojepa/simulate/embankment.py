"""Embankment physics: staged fill on soft clay. Settlement superposes one Terzaghi
consolidation curve (plus secondary compression) per load increment; foundation
piezometers carry the excess pore pressure B * dq that dissipates as (1 - U); toe
inclinometers, extensometers, basal strain gauges and crest GNSS follow the settlement.

Guarantees: settlement is zero before the first lift; every lift restarts a fast,
slowing settlement; the consolidation parameters of every plate are recorded in truth.
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
    floor_scale,
    piezo_rain,
    process_noise,
    put_columns,
    vw_effects,
)
from geojepa.simulate.signals import (
    causal_convolve,
)
from geojepa.soil import TV90, consolidation_curve, terzaghi_u


def consolidation_kernel(t90_steps: float, n: int, secondary: float) -> np.ndarray:
    """Settlement step response (n,) on the grid: Terzaghi U plus secondary compression."""
    return consolidation_curve(np.arange(n, dtype=np.float64), t90_steps, secondary)


def embankment_physics(
    ctx: Ctx,
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
            secondary = float(rng.uniform(0.02, 0.06))
            kerns.append(mm_kpa * consolidation_kernel(t90, ctx.n, secondary))
            if s.kind == "settlement":
                consol[s.id] = {
                    "t90_days": round(t90 / ctx.steps_day, 3),
                    "mm_per_kpa": round(mm_kpa * s.factors.get("load", 1.0), 4),
                    "secondary": round(secondary, 5),
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
                sc = floor_scale(s_out, floor=5.0)
                amp = ev.intensity * max(0.3 * sc.spread, 20.0)
                s_true[ctx.n_warm :, j] += amp * event_shape(ev.kind, ctx.n_out, ev.start, ev.end)
        x = s_true + process_noise(ctx, plates, 3.0, rng.uniform(0.1, 0.4, len(plates)))
        put_columns(sig, col, plates, x)
    piezos = by_kind.get("piezometer", [])
    if piezos:
        d = np.array([s.depth for s in piezos])
        lam = np.array([s.factors.get("load", 1.0) for s in piezos])
        u = GAMMA_W * (d - fam.water_table_depth)
        u = u + piezo_rain(ctx, piezos, d, 0.3, truth)
        b = rng.uniform(0.8, 1.0, len(piezos))
        kerns = []
        for s in piezos:
            rel = s.factors.get("rel_depth", 0.5)
            t90 = t90_of(s) * (0.6 + 0.8 * (1.0 - abs(2.0 * rel - 1.0)))
            kerns.append(1.0 - terzaghi_u(TV90 * np.arange(ctx.n) / t90))
        excess = causal_convolve(dq, np.stack(kerns, axis=1)) * (b * lam)[None, :]
        u = u + excess + process_noise(ctx, piezos, 3.0, rng.uniform(0.2, 0.6, len(piezos)))
        apply_pore_rise(ctx, piezos, u)
        u = np.maximum(u, 0.0) + vw_effects(ctx, piezos, d, truth)
        put_columns(sig, col, piezos, u)
    inc = by_kind.get("inclinometer", [])
    if inc:
        lat = np.array([s.factors.get("lateral", 0.2) for s in inc])
        x = settle(inc) * lat[None, :]
        x += process_noise(ctx, inc, 1.0, rng.uniform(0.02, 0.08, len(inc)))
        put_columns(sig, col, inc, x)
    ext = by_kind.get("extensometer", [])
    if ext:
        frac = np.array([s.factors.get("fraction", 0.7) for s in ext])
        rod = np.array([s.depth for s in ext])
        x = settle(ext) * frac[None, :] + ctx.ground_temp(rod / 2) * (12e-3 * rod)[None, :]
        x += process_noise(ctx, ext, 1.0, rng.uniform(0.01, 0.03, len(ext)))
        put_columns(sig, col, ext, x)
    sg = by_kind.get("strain_gauge", [])
    if sg:
        lam = np.array([s.factors.get("load", 1.0) for s in sg])
        x = settle(sg) * (lam * rng.uniform(0.5, 2.0, len(sg)))[None, :]
        x += ctx.ground_temp(np.full(len(sg), 0.5)) * rng.uniform(0.5, 2.0, len(sg))
        x += process_noise(ctx, sg, 2.0, rng.uniform(0.5, 2.0, len(sg)))
        put_columns(sig, col, sg, x)
    gn = by_kind.get("gnss", [])
    if gn:
        x = -settle(gn) + ctx.ground_temp(np.full(len(gn), 0.5)) * rng.uniform(0.05, 0.2, len(gn))
        x += process_noise(ctx, gn, 0.5, rng.uniform(0.5, 1.5, len(gn)))
        put_columns(sig, col, gn, x)
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
    truth["fill_time_scale"] = drv.fill_time_scale
