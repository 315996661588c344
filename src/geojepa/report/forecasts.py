"""The forecasts section: each forecast file beside the classic methods, and their errors.

A forecast is named by its file's ``method`` column, else by the file itself (the CSV
contract records no method: `geojepa.report.artifacts.ForecastInput`). The classic methods
come from `geojepa.forecast.classic` (the library's own, tested on curves with known
answers), fitted here on the target's readings before the cutoff, unless the forecast file
already holds other methods' predictions as extra columns. The load they read is the one
`geojepa forecast` reads: `geojepa.forecast.apply.default_load_sensor` (the load in the
target's group, else the site's only load).

Guarantees: the forecast file does not record its cutoff, so the classic fits read only
readings at or before the forecast's first time less one step (the cutoff lies between
that time and the first forecast time: `geojepa.forecast.apply.future_times`), never a
reading after the cutoff; with a single forecast step, readings before its time. Later
readings are used only to draw what happened and to compute each method's error.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from geojepa import plots
from geojepa.report.artifacts import ForecastInput
from geojepa.report.html import Section, esc, figure_html, table_html
from geojepa.report.sections import Context
from geojepa.site import Site

log = logging.getLogger(__name__)


CURVE_KINDS = ("settlement", "extensometer")
DISPLACEMENT_KINDS = ("inclinometer", "gnss")
MAX_CLASSIC_POINTS = 1000
CLASSIC_BOOT = 10  # the classic methods' bands are not drawn: a few resamples suffice


def forecast_section(ctx: Context) -> Section:
    sec = Section(
        "forecasts",
        "Forecasts",
        "The forecast (blue, with its band; named by the file's method column, else by the "
        "file) beside the classic methods engineers use, "
        "from readings up to the cutoff; grey is what the sensor read afterwards, and the table "
        "gives each method's error against it.",
    )
    if not ctx.forecasts:
        sec.skipped = "no forecast file (run `geojepa forecast ... --out RUN/forecast_SENSOR.csv`)"
        return sec
    for fc in ctx.forecasts:
        sec.body.extend(_one_forecast(ctx, fc))
    return sec


def history_end(times: pd.Series) -> pd.Timestamp | None:
    """The last time certainly at or before the forecast's cutoff: its first time less
    one grid step (None with fewer than two forecast times: the step is unknown)."""
    if len(times) < 2:
        return None
    first, second = pd.Timestamp(times.iloc[0]), pd.Timestamp(times.iloc[1])
    return first - (second - first)


def _one_forecast(ctx: Context, fc: ForecastInput) -> list[str]:
    t = fc.table
    start = t["timestamp"].iloc[0]
    sid = fc.sensor_id
    site = ctx.site
    known = site is not None and sid is not None and sid in set(site.sensors["id"])
    title = f"{sid} — {fc.path.name}" if sid else fc.path.name
    out = [f"<h3>{esc(title)}</h3>"]
    hist_t = np.array([], dtype="datetime64[ns]")
    hist_v = np.array([])
    truth_t = truth_v = None
    unit, kind = "", "other"
    load: np.ndarray | None = None
    load_id: str | None = None
    if known:
        assert site is not None and sid is not None
        s = site.sensor(sid)
        unit, kind = s.unit, s.kind
        r = site.readings[(site.readings["sensor_id"] == sid) & np.isfinite(site.readings["value"])]
        known_by = history_end(t["timestamp"])
        before = (
            r[r["timestamp"] <= known_by] if known_by is not None else r[r["timestamp"] < start]
        )
        after = r[~r.index.isin(before.index)]
        hist_t, hist_v = plots.naive_utc(before["timestamp"]), before["value"].to_numpy()
        if len(after):
            truth_t, truth_v = plots.naive_utc(after["timestamp"]), after["value"].to_numpy()
        load_id = _load_sensor(site, sid)
        load = _load_on(site, load_id, hist_t) if load_id is not None else None
    else:
        out.append(
            '<p class="note">The target sensor is unknown (name the file '
            "forecast_SENSOR.csv or add a sensor_id column), so no history is drawn.</p>"
        )
    methods: dict[str, np.ndarray] = {m: t[m].to_numpy() for m in fc.methods}
    note = ""
    if not methods and len(hist_v) >= 4:
        methods, note = classic_forecasts(
            hist_t, hist_v, plots.naive_utc(t["timestamp"]), kind, load=load
        )
        methods = {m: v for m, v in methods.items() if m.lower() != fc.name.lower()}
        if load is not None and kind in CURVE_KINDS:
            note += f" Load: sensor {load_id}."
    cutoff = pd.Timestamp(hist_t[-1]).tz_localize("UTC") if len(hist_t) else None
    fig = plots.forecast_plot(
        sensor_id=sid or "target",
        name=fc.name,
        unit=unit,
        history_times=hist_t,
        history=hist_v,
        times=plots.naive_utc(t["timestamp"]),
        prediction=t["prediction"].to_numpy(),
        lower=t["lower"].to_numpy() if "lower" in t else None,
        upper=t["upper"].to_numpy() if "upper" in t else None,
        methods=methods,
        cutoff=cutoff,
        truth_times=truth_t,
        truth=truth_v,
    )
    out.append(
        figure_html(fig, f"{len(t)} forecast steps from {fc.path.name}.", f"forecast of {sid}")
    )
    if note:
        out.append(f'<p class="note">{esc(note)}</p>')
    if truth_t is not None and truth_v is not None:
        out.append(_error_table(t, fc.name, methods, truth_t, truth_v, unit))
    return out


def _load_sensor(site: Site, target: str) -> str | None:
    """The load sensor `geojepa forecast` reads for `target` (None when there is none, or
    several and none in the target's group)."""
    try:
        from geojepa.forecast.apply import default_load_sensor
    except ImportError as err:  # the classic methods are unavailable too: nothing reads it
        log.info("load sensor not chosen (%s)", err)
        return None
    return default_load_sensor(site, target)


def _load_on(site: Site, load_id: str, times: np.ndarray) -> np.ndarray | None:
    """The load (fill height) of sensor `load_id` at `times`: the last reading at or before
    each time (a load stage holds until the next one)."""
    if len(times) == 0:
        return None
    r = site.readings[(site.readings["sensor_id"] == load_id) & np.isfinite(site.readings["value"])]
    if r.empty:
        return None
    lt = plots.naive_utc(r["timestamp"])
    k = np.searchsorted(lt, times, side="right") - 1
    return np.where(k >= 0, r["value"].to_numpy()[np.clip(k, 0, None)], np.nan)


def classic_forecasts(
    hist_t: np.ndarray,
    hist_v: np.ndarray,
    future_t: np.ndarray,
    kind: str,
    *,
    load: np.ndarray | None = None,
) -> tuple[dict[str, np.ndarray], str]:
    """Classic methods' predictions at `future_t` from a history (library methods).

    With the site's `load` (fill height, on `hist_t`), hyperbolic and Asaoka start from the
    current load stage, as engineers fit them, and the consolidation back-analysis reads the
    whole load history; without it the first two use the whole history and the
    back-analysis is left out.
    """
    try:
        from geojepa.forecast import classic
        from geojepa.forecast.consolidation import Consolidation
    except ImportError as err:
        return {}, f"classic methods unavailable ({err})"
    t0 = hist_t[0]
    days = (hist_t - t0) / np.timedelta64(1, "D")
    fut = (future_t - t0) / np.timedelta64(1, "D")
    y = np.asarray(hist_v, dtype=float)
    stage = None if load is None else np.nan_to_num(np.asarray(load, dtype=float), nan=0.0)
    if len(days) > MAX_CLASSIC_POINTS:  # bucket means keep the curve, bound the fitting cost
        edges = np.linspace(days[0], days[-1], MAX_CLASSIC_POINTS + 1)
        k = np.clip(np.searchsorted(edges, days, side="right") - 1, 0, MAX_CLASSIC_POINTS - 1)
        cnt = np.bincount(k, minlength=MAX_CLASSIC_POINTS)
        keep = cnt > 0
        days = np.bincount(k, weights=days, minlength=MAX_CLASSIC_POINTS)[keep] / cnt[keep]
        y = np.bincount(k, weights=y, minlength=MAX_CLASSIC_POINTS)[keep] / cnt[keep]
        if stage is not None:  # the load at the bucket's last reading: stages stay steps
            last = np.full(MAX_CLASSIC_POINTS, np.nan)
            last[k] = stage
            stage = last[keep]
    chosen: list[Any] = [classic.Persistence(), classic.LinearTrend()]
    drivers = None if stage is None else {"load": stage}
    staged = None if stage is None else "load"
    if kind in CURVE_KINDS:
        chosen += [
            classic.Hyperbolic(load=staged, n_boot=CLASSIC_BOOT),
            classic.Asaoka(load=staged, n_boot=CLASSIC_BOOT),
        ]
        if staged:  # the back-analysis needs the load history
            chosen.append(Consolidation(load=staged, n_boot=CLASSIC_BOOT))
    if kind in DISPLACEMENT_KINDS:
        chosen.append(classic.Fukuzono(n_boot=CLASSIC_BOOT))
    out: dict[str, np.ndarray] = {}
    fell_back = []
    for method in chosen:
        name = getattr(method, "name", type(method).__name__.lower())
        try:
            fitted = method.fit(days, y, drivers)
            out[name] = np.asarray(fitted.predict(fut).prediction, dtype=float)
        except (ValueError, np.linalg.LinAlgError, FloatingPointError) as err:
            log.info("classic method %s failed: %s", name, err)
            fell_back.append(f"{name} ({err})")
            continue
        if getattr(fitted, "fallback_", None):
            fell_back.append(f"{name} fell back to persistence")
    note = "Classic methods computed here from the readings before the cutoff" + (
        ", hyperbolic and Asaoka from the current load stage, the consolidation"
        " back-analysis from the whole load history."
        if staged and kind in CURVE_KINDS
        else "."
    )
    if fell_back:
        note += " " + "; ".join(fell_back) + "."
    return out, note


def _error_table(
    t: pd.DataFrame,
    name: str,
    methods: Mapping[str, np.ndarray],
    truth_t: np.ndarray,
    truth_v: np.ndarray,
    unit: str,
) -> str:
    ft = plots.naive_utc(t["timestamp"])
    # nearest reading to each forecast time, within half a step
    step = np.median(np.diff(ft)) if len(ft) > 1 else np.timedelta64(1, "D")
    idx = np.searchsorted(truth_t, ft)
    lo = np.clip(idx - 1, 0, len(truth_t) - 1)
    hi = np.clip(idx, 0, len(truth_t) - 1)
    j = np.where(np.abs(truth_t[lo] - ft) <= np.abs(truth_t[hi] - ft), lo, hi)
    near = np.abs(truth_t[j] - ft) <= step / 2
    if not near.any():
        return (
            '<p class="note">No readings fall on the forecast times, so no error is computed.</p>'
        )
    y = truth_v[j][near]
    rows = []
    in_unit = f" ({unit})" if unit else ""  # no unit: "MAE" alone, never "MAE (unit)"
    preds = {name: t["prediction"].to_numpy()} | dict(methods)
    for method, p in preds.items():
        e = np.asarray(p, float)[near] - y
        ok = np.isfinite(e)
        rows.append(
            {
                "method": method,
                "MAE" + in_unit: float(np.mean(np.abs(e[ok]))) if ok.any() else float("nan"),
                "RMSE" + in_unit: float(np.sqrt(np.mean(e[ok] ** 2))) if ok.any() else float("nan"),
                "points": int(ok.sum()),
            }
        )
    df = pd.DataFrame(rows)
    if "lower" in t and "upper" in t:
        inside = (y >= t["lower"].to_numpy()[near]) & (y <= t["upper"].to_numpy()[near])
        cover = f"The {name} band holds {inside.mean() * 100:.0f} % of the {len(y)} later readings."
    else:
        cover = ""
    return table_html(df) + (f'<p class="note">{esc(cover)}</p>' if cover else "")
