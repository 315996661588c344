"""Forecasting protocols on simulated sites (`geojepa.simulate`), where the truth is known.

- Embankment settlement: every ``settlement`` sensor of a simulated embankment, put on daily
  means (explicitly: the classic methods are daily-data methods, and Asaoka on hourly steps
  would fit ``b1`` within noise of 1), with the fill height as the ``load`` driver (last daily
  value at or before each day). Rolling origin: a cutoff every `stride` days from day
  `warmup`; forecasts `horizons` days ahead; survey plates read every ~2 weeks take the
  reading nearest ``cutoff + h`` within half their spacing.
- Slope creep to failure: for each simulated ``accelerating_creep`` event and each
  displacement sensor it moves (inclinometer, extensometer, GNSS), cutoffs at `fractions` of
  the event; Fukuzono's predicted time of failure against the simulator's true one.

Guarantees: methods see only data up to each cutoff (`geojepa.forecast.evaluate`); the
event labels and true failure times are used only to choose cutoffs and to score, except by
the method named ``fukuzono_onset``, which is told the labelled onset (an oracle advantage,
stated in its name) to choose its fitting window.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from geojepa.forecast.classic import Fukuzono
from geojepa.forecast.evaluate import MethodFactory, Series, evaluate_horizons, truncate
from geojepa.site import Quality, Site

log = logging.getLogger(__name__)

DAY = pd.Timedelta("1D")
DISPLACEMENT_KINDS = ("inclinometer", "extensometer", "gnss")


def daily_series(
    site: Site, sensor: str, load: str | None = None, origin: pd.Timestamp | None = None
) -> Series:
    """Daily means of one sensor's usable readings (days with none are left out), each
    stamped at the end of its day, with the daily-mean `load` as driver ``load`` (carried
    forward from the last day that has one). `origin` is t = 0 (default: the first stamp)."""
    r = site.readings
    bad = r["quality"].isin([Quality.MISSING.value, Quality.NON_FINITE.value])
    r = r[~bad & np.isfinite(r["value"].to_numpy())]

    def daily(sid: str) -> pd.Series:
        # each day's mean is stamped at the end of the day, when it is complete: a cutoff
        # inside a day never sees that day's mean
        x = r[r["sensor_id"] == sid]
        return x.groupby(x["timestamp"].dt.floor("1D") + DAY)["value"].mean()

    y = daily(sensor)
    if y.empty:
        raise ValueError(f"sensor {sensor!r} has no usable readings")
    t0 = origin if origin is not None else pd.Timestamp(y.index[0])
    t = ((pd.DatetimeIndex(y.index) - t0) / DAY).to_numpy(dtype=np.float64)
    drivers: dict[str, np.ndarray] = {}
    if load is not None:
        ld = daily(load).reindex(pd.DatetimeIndex(y.index)).ffill()
        drivers["load"] = ld.to_numpy(dtype=np.float64)
    return Series(sensor, t, y.to_numpy(dtype=np.float64), drivers, t0)


def embankment_series(site: Site) -> list[Series]:
    """Every settlement sensor of a simulated embankment as a daily `Series` with ``load``."""
    s = site.sensors
    loads = list(s.loc[s["kind"] == "load", "id"])
    load = str(loads[0]) if loads else None
    t0 = pd.Timestamp(site.readings["timestamp"].min()).floor("1D") + DAY
    return [
        daily_series(site, str(sid), load, t0) for sid in s.loc[s["kind"] == "settlement", "id"]
    ]


def settlement_protocol_sim(
    methods: Mapping[str, MethodFactory],
    sites: Sequence[tuple[str, Site]],
    horizons: Sequence[float] = (7.0, 30.0, 90.0),
    stride: float = 14.0,
    warmup: float = 60.0,
) -> pd.DataFrame:
    """Rolling-origin records over every settlement sensor of every (name, site)."""
    frames = []
    for name, site in sites:
        series = [
            Series(f"{name}/{x.name}", x.t, x.y, x.drivers, x.origin)
            for x in embankment_series(site)
        ]
        cutoffs: dict[str, list[float]] = {}
        tol: dict[str, float] = {}
        for s in series:
            obs = s.observed_times()
            step = float(np.median(np.diff(obs))) if obs.size > 1 else 1.0
            tol[s.name] = 0.0 if step <= 1.0 + 1e-9 else step / 2.0
            last = obs[-1] - max(horizons) if obs.size else -np.inf
            grid = np.arange(warmup, last + 1e-9, stride)
            # cut at the last reading at or before each grid time (the plate's own clock)
            cutoffs[s.name] = sorted({float(obs[obs <= g][-1]) for g in grid if (obs <= g).any()})
        rec = evaluate_horizons(methods, series, cutoffs, horizons, tol)
        rec.insert(0, "site", name)
        frames.append(rec)
    return pd.concat(frames, ignore_index=True)


@dataclass(frozen=True)
class CreepCase:
    """One displacement record through a simulated accelerating-creep event (days)."""

    site: str
    sensor: str
    series: Series
    onset: float  # labelled event start
    end: float  # labelled event end (the creep stabilises there)
    failure: float  # the simulator's time of failure (where its inverse velocity reaches 0)


def creep_cases(name: str, site: Site, truth: Mapping[str, Any]) -> list[CreepCase]:
    """The creep events of one simulated slope, per displacement sensor they move."""
    kinds = dict(zip(site.sensors["id"], site.sensors["kind"], strict=True))
    t0 = pd.Timestamp(site.readings["timestamp"].min()).floor("1D") + DAY
    out = []
    for ev in truth.get("events", []):
        if ev.get("kind") != "accelerating_creep" or not ev.get("failure_time"):
            continue
        when = {k: (pd.Timestamp(ev[k]) - t0) / DAY for k in ("start", "end", "failure_time")}
        for sid in ev.get("sensors", []):
            if kinds.get(sid) not in DISPLACEMENT_KINDS:
                continue
            s = daily_series(site, sid, origin=t0)
            s = Series(f"{name}/{sid}", s.t, s.y, s.drivers, s.origin)
            out.append(CreepCase(name, sid, s, when["start"], when["end"], when["failure_time"]))
    return out


def failure_protocol_sim(
    cases: Sequence[CreepCase],
    fractions: Sequence[float] = (0.5, 0.7, 0.9),
    window: float = 14.0,
    span: float = 3.0,
) -> pd.DataFrame:
    """Fukuzono's time-of-failure error at cutoffs through each event.

    Two variants, both with velocities smoothed over `span` days: ``fukuzono_onset`` fits
    from the labelled onset (oracle), ``fukuzono`` fits the last `window` days (no oracle). Columns: site, sensor, fraction, cutoff, method,
    predicted, lower, upper, failure, error (predicted - true, days; inf when no failure is
    predicted), fallback.
    """
    rows = []
    for c in cases:
        for f in fractions:
            cutoff = c.onset + f * (c.end - c.onset)
            hist = truncate(c.series, cutoff)
            if np.isfinite(hist.y).sum() < 5:
                continue
            variants = {
                "fukuzono_onset": Fukuzono(window=max(cutoff - c.onset, 1.0), span=span),
                "fukuzono": Fukuzono(window=window, span=span),
            }
            for name, model in variants.items():
                model.fit(hist.t, hist.y)
                pred = float(model.time_of_failure_)
                rows.append(
                    {
                        "site": c.site,
                        "sensor": c.sensor,
                        "fraction": f,
                        "cutoff": cutoff,
                        "method": name,
                        "predicted": pred,
                        "lower": float(model.failure_lower_),
                        "upper": float(model.failure_upper_),
                        "failure": c.failure,
                        "error": pred - c.failure,
                        "fallback": model.fallback_ or "",
                    }
                )
    return pd.DataFrame(rows)


def creep_displacement_protocol(
    methods: Mapping[str, MethodFactory],
    cases: Sequence[CreepCase],
    fractions: Sequence[float] = (0.5, 0.7, 0.9),
    horizons: Sequence[float] = (1.0, 3.0, 7.0),
) -> pd.DataFrame:
    """Displacement `horizons` days after cutoffs at `fractions` of each creep event."""
    series = [c.series for c in cases]
    cutoffs: dict[str, list[float]] = {}
    for c in cases:
        obs = c.series.observed_times()
        # the last daily mean at or before each cutoff, so horizons land on daily stamps
        cuts = [obs[obs <= c.onset + f * (c.end - c.onset)] for f in fractions]
        cutoffs[c.series.name] = [float(x[-1]) for x in cuts if x.size]
    return evaluate_horizons(methods, series, cutoffs, horizons)


def failure_summary(records: pd.DataFrame) -> pd.DataFrame:
    """Per method and cutoff fraction: median and mean absolute time-of-failure error (days,
    over cases with a finite prediction), how many predicted no failure, band coverage;
    and over **all** cases (a predicted "no failure" counted as an infinite error): the
    median absolute error and how many missed or erred by more than 7 days."""
    out = []
    for (method, frac), g in records.groupby(["method", "fraction"]):
        err = g["error"].to_numpy(dtype=np.float64)
        fin = np.isfinite(err)
        inside = (g["failure"] >= g["lower"]) & (g["failure"] <= g["upper"])
        out.append(
            {
                "method": method,
                "fraction": frac,
                "n": len(g),
                "n_no_failure": int((~fin).sum()),
                "median_abs_error_days": float(np.median(np.abs(err[fin])))
                if fin.any()
                else float("nan"),
                "mean_abs_error_days": float(np.mean(np.abs(err[fin])))
                if fin.any()
                else float("nan"),
                "coverage": float(inside.mean()),
                "median_abs_error_all_days": float(np.median(np.where(fin, np.abs(err), np.inf))),
                "miss_or_error_gt_7d": int((~fin | (np.abs(err) > 7.0)).sum()),
            }
        )
    return pd.DataFrame(out)
