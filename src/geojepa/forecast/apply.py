"""Forecast one sensor of a `Site` from a cutoff: the library side of ``geojepa forecast``.

`forecast_site_jepa` does the same with a head on a trained run's frozen features (the
default of the verb). `site_series` turns a sensor's readings (up to a cutoff) into a forecasting `Series`:
days since the sensor's first reading, the values of usable readings, and optionally a load
driver taken as the last load reading at or before each reading (a load stays until changed).
`forecast_site` fits a method on it and forecasts ``horizon`` grid steps after the cutoff.

Guarantees: readings after the cutoff are never read (the site is cut before anything else);
the forecast times are the next ``horizon`` times of the sensor's grid strictly after the
cutoff; readings flagged missing or non-finite are not used, and several readings at one
time are averaged (logged). Bad names and times raise `InputError` saying what to do.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from geojepa.errors import InputError
from geojepa.forecast.base import Forecast, Forecaster
from geojepa.forecast.evaluate import Series
from geojepa.forecast.methods import CLASSIC
from geojepa.frame import infer_interval, to_frame
from geojepa.site import Quality, Site
from geojepa.timeformats import time_step

if TYPE_CHECKING:
    from geojepa.checkpoint import LoadedRun

log = logging.getLogger(__name__)

LOAD_METHODS = ("hyperbolic", "asaoka", "consolidation")
"""Methods that read a load sensor when one is known: the current load stage (hyperbolic,
Asaoka) or the whole load history (consolidation)."""


def utc(when: pd.Timestamp | str) -> pd.Timestamp:
    """A UTC timestamp; naive times are read as UTC."""
    try:
        t = pd.Timestamp(when)
    except (ValueError, TypeError) as err:
        raise InputError(
            f"cannot read time {when!r}", hint="write ISO 8601, e.g. 2024-05-01T12:00"
        ) from err
    if t is pd.NaT:
        raise InputError(f"cannot read time {when!r}", hint="write ISO 8601")
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def _usable_rows(site: Site, sensor: str, cutoff: pd.Timestamp) -> pd.DataFrame:
    """`sensor`'s readings at or before `cutoff` that are neither missing nor non-finite."""
    r = site.readings
    r = r[(r["sensor_id"] == sensor) & (r["timestamp"] <= cutoff)]
    bad = r["quality"].isin([Quality.MISSING.value, Quality.NON_FINITE.value])
    return r[~bad & np.isfinite(r["value"].to_numpy())]


def _usable(site: Site, sensor: str, cutoff: pd.Timestamp) -> pd.DataFrame:
    r = _usable_rows(site, sensor, cutoff)
    g = r.groupby("timestamp", sort=True)["value"].agg(["mean", "size"])
    if (g["size"] > 1).any():
        log.info("%s: %d times with several readings averaged", sensor, int((g["size"] > 1).sum()))
    return g


def default_load_sensor(site: Site, target: str) -> str | None:
    """The site's one ``load`` sensor (preferring the target's group), or None."""
    s = site.sensors
    loads = s[s["kind"] == "load"]
    group = s.loc[s["id"] == target, "group"]
    if len(group) and str(group.iloc[0]):
        same = loads[loads["group"] == group.iloc[0]]
        if len(same) == 1:
            return str(same["id"].iloc[0])
    return str(loads["id"].iloc[0]) if len(loads) == 1 else None


def site_series(
    site: Site, target: str, cutoff: pd.Timestamp | str, load: str | None = None
) -> Series:
    """`target`'s readings at or before `cutoff` as a `Series` (driver ``load`` if given)."""
    cut = utc(cutoff)
    site.sensor(target)  # raises InputError naming the known sensors' command
    g = _usable(site, target, cut)
    if g.empty:
        raise InputError(
            f"sensor {target!r} has no usable reading at or before {cut.isoformat()}",
            hint="choose a later --cutoff",
        )
    origin = pd.Timestamp(g.index[0])
    t = ((pd.DatetimeIndex(g.index) - origin) / pd.Timedelta("1D")).to_numpy(dtype=np.float64)
    drivers: dict[str, np.ndarray] = {}
    if load is not None:
        site.sensor(load)
        lg = _usable(site, load, cut)
        if lg.empty:
            raise InputError(
                f"load sensor {load!r} has no usable reading at or before {cut.isoformat()}",
                hint="choose another --load sensor or leave it out",
            )
        pos = np.searchsorted(lg.index.to_numpy(), g.index.to_numpy(), side="right") - 1
        vals = lg["mean"].to_numpy(dtype=np.float64)
        drivers["load"] = np.where(pos >= 0, vals[np.clip(pos, 0, None)], np.nan)
    return Series(target, t, g["mean"].to_numpy(dtype=np.float64), drivers, origin)


@dataclass(frozen=True)
class SiteForecast:
    """A forecast table (timestamp, prediction, lower, upper) and the fitted method."""

    table: pd.DataFrame
    model: Forecaster
    method: str
    load: str | None
    origin: pd.Timestamp  # time of t = 0 days for the model's fitted attributes

    def at(self, days: float) -> pd.Timestamp | None:
        """The UTC time `days` after `origin` (None when not finite, e.g. no failure)."""
        if not np.isfinite(days):
            return None
        return self.origin + pd.to_timedelta(days, unit="D")


STALE_STEPS = 3
"""A cutoff may fall at most this many grid steps after the target's last usable reading
before it (a logger down, a cutoff past the end of the record or inside a gap is refused)."""


def future_times(
    site: Site, target: str, cut: pd.Timestamp, horizon: int, interval: pd.Timedelta | str | None
) -> pd.DatetimeIndex:
    """The `horizon` times of the target's grid strictly after `cut`: steps of `interval`
    (default: the target's reading interval, inferred from its readings up to `cut` only)
    from its first reading, floored to the step where the step is at most a day (so an
    hourly or daily grid falls on whole hours or days) and to the day where it is longer
    (a weekly grid keeps the weekday of the first reading)."""
    mine = site.readings[site.readings["sensor_id"] == target]
    mine = mine[pd.to_datetime(mine["timestamp"], utc=True) <= cut]  # nothing after the cutoff
    if mine.empty:
        raise InputError(
            f"sensor {target!r} has no reading at or before {cut.isoformat()}",
            hint="choose a later --cutoff",
        )
    step = time_step(interval, "--interval") if interval is not None else infer_interval(mine)
    usable = _usable_rows(site, target, cut)["timestamp"]
    if len(usable):
        last = pd.Timestamp(usable.max())
        if cut - last > STALE_STEPS * step:
            raise InputError(
                f"the last usable reading of sensor {target!r} at or before the cutoff is "
                f"{last.isoformat()}, {cut - last} before it ({(cut - last) / step:.0f} grid "
                f"steps of {step}): a forecast would start from it across a gap it never saw",
                hint=f"choose a --cutoff at most {STALE_STEPS} grid steps after "
                f"{last.isoformat()} (e.g. that time) and a longer --horizon to reach later times",
            )
    day = pd.Timedelta(1, unit="D")
    first = pd.Timestamp(mine["timestamp"].min()).floor(min(step, day))
    k = int((cut - first) // step) + 1
    return pd.DatetimeIndex([first + (k + i) * step for i in range(horizon)])


def _table(times: pd.DatetimeIndex, fc: Forecast) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "timestamp": [ts.isoformat() for ts in times],
            "prediction": fc.prediction,
            "lower": fc.lower,
            "upper": fc.upper,
        }
    )


def make_classic(method: str, load: str | None, **kwargs: Any) -> Forecaster:
    if method not in CLASSIC:
        raise InputError(
            f"unknown forecasting method {method!r}", hint="use one of " + ", ".join(CLASSIC)
        )
    if method in LOAD_METHODS and load is not None:
        kwargs.setdefault("load", "load")
    return CLASSIC[method](**kwargs)


def forecast_site(
    site: Site,
    target: str,
    cutoff: pd.Timestamp | str,
    horizon: int,
    method: str = "hyperbolic",
    load: str | None = None,
    interval: pd.Timedelta | str | None = None,
    fill_plan: pd.DataFrame | None = None,
    **kwargs: Any,
) -> SiteForecast:
    """Forecast `horizon` grid steps of `target` after `cutoff` with a classic `method`.

    `load` None picks the site's single load sensor for the load-stage methods (if any).
    `interval` None: the target's own reading interval (`geojepa.frame.infer_interval`).
    `fill_plan`: the construction programme after the cutoff (``timestamp``, ``load``;
    `geojepa.io.plan.read_fill_plan`), for ``consolidation`` only: the back-analysis is
    fitted on the past as usual and its forecast follows the planned load instead of
    holding the last one (`geojepa.forecast.consolidation.ConsolidationFill`).
    """
    if horizon < 1:
        raise InputError(f"--horizon must be at least 1, got {horizon}")
    cut = utc(cutoff)
    if load is None and method in LOAD_METHODS:
        load = default_load_sensor(site, target)
        if load is not None:
            log.info("load stages from sensor %s", load)
    series = site_series(site, target, cut, load if method in LOAD_METHODS else None)
    times = future_times(site, target, cut, horizon, interval)
    assert series.origin is not None
    t_future = ((times - series.origin) / pd.Timedelta("1D")).to_numpy(dtype=np.float64)
    if fill_plan is None:
        model = make_classic(method, load if method in LOAD_METHODS else None, **kwargs)
    else:
        model = _planned(method, load, fill_plan, series, t_future, **kwargs)
    fc = model.fit(series.t, series.y, series.drivers).predict(t_future)
    fb = getattr(model, "fallback_", None)
    if fb is not None:
        log.warning("%s could not be fitted (%s): the forecast is persistence", method, fb)
    return SiteForecast(
        table=_table(times, fc), model=model, method=method, load=load, origin=series.origin
    )


def _planned(
    method: str,
    load: str | None,
    plan: pd.DataFrame,
    series: Series,
    t_future: np.ndarray,
    **kwargs: Any,
) -> Forecaster:
    """The back-analysis driven by a fill plan (see `forecast_site`)."""
    from geojepa.forecast.consolidation import ConsolidationFill
    from geojepa.forecast.fillpath import PlannedFill

    if method != "consolidation":
        raise InputError(
            f"a fill plan drives the consolidation back-analysis, not {method!r}",
            hint="use --method consolidation with --fill-plan",
        )
    if load is None or "load" not in series.drivers:
        raise InputError(
            "a fill plan needs the site's load sensor (the load so far)",
            hint="name it with --load",
        )
    assert series.origin is not None
    days = ((pd.DatetimeIndex(plan["timestamp"]) - series.origin) / pd.Timedelta("1D")).to_numpy(
        dtype=np.float64
    )
    q = plan["load"].to_numpy(dtype=np.float64)
    seen = series.drivers["load"][np.isfinite(series.drivers["load"])]
    if seen.size and float(q.max()) > float(seen.max()):
        log.warning(
            "the fill plan goes beyond the largest load the record has seen (%.4g -> %.4g): "
            "the back-analysis extrapolates its settlement per unit load, which on the real "
            "settlement plates erred more than holding the load (docs/results/forecast.md)",
            float(seen.max()),
            float(q.max()),
        )
    last = float(np.floor(series.t[-1]))
    span = int(np.ceil(max(float(np.max(t_future)), float(days[-1])) - last)) + 1
    return ConsolidationFill(PlannedFill(days, q), load="load", days=span, **kwargs)


def anchor_steps(horizon: int, most: int = 8) -> list[int]:
    """Grid steps at which the learned heads are trained: 1, 2, 4, ... and `horizon`
    (at most `most` of them, always including 1 and `horizon`)."""
    steps = sorted({1, horizon, *(2**i for i in range(int(np.log2(max(horizon, 1))) + 1))})
    steps = [s for s in steps if s <= horizon]
    if len(steps) > most:
        keep = np.unique(np.round(np.geomspace(1, horizon, most)).astype(int))
        steps = sorted({1, horizon, *(int(v) for v in keep)})
    return steps


def forecast_site_jepa(
    run: LoadedRun,
    site: Site,
    target: str,
    cutoff: pd.Timestamp | str,
    horizon: int,
    head: str = "ridge",
    interval: pd.Timedelta | str | None = None,
    max_origins: int = 400,
    seed: int = 0,
    base: str | None = None,
) -> SiteForecast:
    """Forecast `horizon` grid steps of `target` after `cutoff` with a head on the run's
    frozen target-encoder features (`geojepa.forecast.learned.JepaForecaster`). `base`: a
    classic forecast the head corrects (`geojepa.forecast.hybrid.BASES`; the
    ``consolidation`` base reads the site's ``load`` sensor), or None.

    The site is cut at the cutoff first (readings after it are never read), put on the
    run's grid; the head is trained on earlier origins of the target and of the site's
    other sensors of the same kind (at most `max_origins` per sensor), with targets
    before the cutoff. Falls back to persistence (logged, ``model.fallback_``) when the
    history is too short to train on.
    """
    from geojepa.forecast.features import EncoderFeatures
    from geojepa.forecast.learned import JepaForecaster
    from geojepa.forecast.tracks import frame_track

    if horizon < 1:
        raise InputError(f"--horizon must be at least 1, got {horizon}")
    cut = utc(cutoff)
    info = site.sensor(target)  # InputError naming the known sensors
    past = site.before(cut + pd.Timedelta(1, unit="ns"))
    if _usable(past, target, cut).empty:
        raise InputError(
            f"sensor {target!r} has no usable reading at or before {cut.isoformat()}",
            hint="choose a later --cutoff",
        )
    frame = to_frame(past, interval=run.interval)
    origin = pd.Timestamp(frame.time[0]).tz_localize("UTC")
    kinds = dict(zip(frame.sensors["id"].astype(str), frame.sensors["kind"], strict=True))
    same = [s for s, k in kinds.items() if k == info.kind and s != target]
    track = frame_track(frame, target, 0.0, name=f"{site.name}/{target}")
    others = [frame_track(frame, s, 0.0, name=f"{site.name}/{s}") for s in same]
    times = future_times(site, target, cut, horizon, interval)
    t_future = ((times - origin) / pd.Timedelta("1D")).to_numpy(dtype=np.float64)
    step_days = float(track.step)
    span_days = track.n_rows * step_days
    stride = max(step_days, span_days / max_origins)
    leads = t_future - float(track.times()[-1])  # from the last grid row, as the head's
    anchors = [float(leads[s - 1]) for s in anchor_steps(horizon)]
    model = JepaForecaster(
        EncoderFeatures(run),
        lambda h: track,
        context_of=lambda h: others,
        horizons=anchors,
        stride=stride,
        head=head,
        seed=seed,
        base=base,
    )
    fc = model.fit(track.times(), track.target_values()).predict(t_future)
    if model.fallback_ is not None:
        log.warning("jepa could not be trained (%s): the forecast is persistence", model.fallback_)
    name = f"jepa_{head}" if base is None else f"hybrid_{base}_jepa_{head}"
    return SiteForecast(table=_table(times, fc), model=model, method=name, load=None, origin=origin)
