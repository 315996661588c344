"""Verbs of group forecast (DESIGN §6); each is a thin layer over the library.

``geojepa forecast RUN SITE --target SENSOR --cutoff TIME --horizon H --out forecast.csv``
writes ``timestamp,prediction,lower,upper`` for the H grid steps after the cutoff, using only
readings up to it. ``--method jepa`` (the default) forecasts with a head (``--head ridge``,
``mlp`` or ``median``) on the frozen features of the trained RUN. The classic methods (``--method
hyperbolic|asaoka|consolidation|linear|persistence|fukuzono``) need no run: RUN may be given (it is not
read), written ``-``, or left out (``forecast SITE ...``). ``--fill-plan PLAN.csv``
(``timestamp,load``) drives ``consolidation`` with the construction programme after the
cutoff instead of holding the current load.

The grid step (``--interval``; default: the target's median reading spacing up to the
cutoff, rounded to a common logger interval by `geojepa.frame.infer_interval`) is printed
with the result, and so is the rounding when it changed the spacing (4 days -> 7 days),
with the ``--interval`` that gives steps of the spacing itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from geojepa.cli._app import app
from geojepa.errors import UsageError

if TYPE_CHECKING:
    import pandas as pd

    from geojepa.site import Site

METHODS = ("jepa", "hyperbolic", "asaoka", "consolidation", "linear", "persistence", "fukuzono")


@app.command("forecast")
def forecast(
    paths: list[Path] = typer.Argument(
        ..., help="RUN SITE: run folder and site (RUN may be '-' or left out for a classic method)."
    ),
    target: str = typer.Option(..., "--target", help="Sensor id to forecast."),
    cutoff: str = typer.Option(
        ...,
        "--cutoff",
        help="ISO 8601 time; only readings at or before it are used (UTC if naive).",
    ),
    horizon: int = typer.Option(..., "--horizon", min=1, help="Grid steps to forecast."),
    out: Path = typer.Option(..., "--out", help="CSV to write: timestamp,prediction,lower,upper."),
    method: str = typer.Option(
        "jepa", "--method", help="jepa (needs RUN) or a classic: " + ", ".join(METHODS[1:])
    ),
    load: str | None = typer.Option(
        None,
        "--load",
        help="Load / fill-height sensor: the stages of hyperbolic and asaoka, the load history "
        "of consolidation (default: the site's only load sensor, if one).",
    ),
    interval: str | None = typer.Option(
        None,
        "--interval",
        help="Grid step, e.g. 1D (default: the target's median reading spacing up to the "
        "cutoff, rounded to a common logger interval: 1h, 1D, 2D, 7D, ...; the output says "
        "which step was used).",
    ),
    head: str = typer.Option(
        "ridge",
        "--head",
        help="jepa head: ridge (probe), mlp, or median (an MLP fitted to the median change).",
    ),
    fill_plan: Path | None = typer.Option(
        None,
        "--fill-plan",
        help="consolidation: CSV of the construction programme after the cutoff "
        "(timestamp,load: the load reached at each time, linear between rows, held after "
        "the last); the forecast follows it instead of holding the current load. A "
        "scenario: beyond the loads the record has seen it extrapolates (warned), and on "
        "real plates it erred more than holding the load.",
    ),
    base: str = typer.Option(
        "none",
        "--base",
        help="jepa: a classic forecast the head learns to correct (it also reads it): none, "
        "linear, or consolidation (the back-analysis; reads the site's load sensor).",
    ),
) -> None:
    """Forecast one sensor after a cutoff, with an uncertainty band."""
    if len(paths) > 2:
        raise UsageError(f"expected RUN SITE, got {len(paths)} paths")
    run, site_path = (paths[0], paths[1]) if len(paths) == 2 else (None, paths[0])
    if run is not None and str(run) == "-":
        run = None
    if method not in METHODS:
        raise UsageError(f"unknown --method {method!r}", hint="use one of " + ", ".join(METHODS))
    if head not in ("ridge", "mlp", "median"):
        raise UsageError(f"unknown --head {head!r}", hint="use ridge, mlp or median")
    if base not in ("none", "linear", "consolidation"):
        raise UsageError(f"unknown --base {base!r}", hint="use none, linear or consolidation")
    if fill_plan is not None and method != "consolidation":
        raise UsageError(
            f"--fill-plan drives the consolidation back-analysis, not --method {method}",
            hint="add --method consolidation",
        )
    if method == "jepa" and run is None:
        raise UsageError(
            "the jepa forecaster needs a RUN folder before SITE",
            hint="give RUN SITE (train one with `geojepa pretrain`), or pick a classic "
            "--method (" + ", ".join(METHODS[1:]) + ")",
        )

    from geojepa.atomic import atomic_path
    from geojepa.forecast.apply import SiteForecast, forecast_site, forecast_site_jepa, utc
    from geojepa.site import Site

    result: SiteForecast
    plan = None
    if method == "jepa":
        from geojepa.checkpoint import load_run

        assert run is not None
        loaded = load_run(run)
        site = Site.load(site_path)
        result = forecast_site_jepa(
            loaded,
            site,
            target,
            cutoff,
            horizon,
            head=head,
            interval=interval,
            base=None if base == "none" else base,
        )
    else:
        from geojepa.io.plan import read_fill_plan

        site = Site.load(site_path)
        plan = None if fill_plan is None else read_fill_plan(fill_plan, after=utc(cutoff))
        result = forecast_site(
            site, target, cutoff, horizon, method, load=load, interval=interval, fill_plan=plan
        )
    with atomic_path(out) as tmp:
        result.table.to_csv(tmp, index=False)
    model = result.model
    note = ""
    if method != "jepa" and run is not None:
        note = " (RUN not read by a classic method)"
    if getattr(model, "fallback_", None) is not None:
        note += f" (could not fit: {model.fallback_}; persistence used)"  # type: ignore[attr-defined]
    elif method == "jepa":
        note += f", {head} head on {model.n_samples_} training origins"  # type: ignore[attr-defined]
    elif method in ("hyperbolic", "asaoka"):
        note += f", final settlement {model.final_:.4g}"  # type: ignore[attr-defined]
    elif method == "consolidation":
        t90 = f"t90 {model.t90_:.0f} days"  # type: ignore[attr-defined]
        if not model.t90_identified_:  # type: ignore[attr-defined]
            t90 += " (at the end of its search range: the record does not pin it down)"
        note += f", {t90}"
        under = "the current load" if plan is None else "the load so far"
        end = result.at(model.primary_end_)  # type: ignore[attr-defined]
        if end is not None:
            note += (
                f", end of primary consolidation under {under} "
                f"{model.primary_final_:.4g} around {end.date().isoformat()}"  # type: ignore[attr-defined]
            )
        elif model.t90_identified_:  # type: ignore[attr-defined]
            note += (
                ", no end of primary consolidation: the fit reads all the settlement as "
                "secondary compression"
            )
        if plan is not None:
            note += (
                f"; following the fill plan to {plan['load'].iloc[-1]:.4g} "
                f"by {plan['timestamp'].iloc[-1].isoformat()} ({len(plan)} rows)"
            )
    elif method == "fukuzono":
        when = result.at(model.time_of_failure_)  # type: ignore[attr-defined]
        note += (
            ", no failure predicted" if when is None else f", time of failure {when.isoformat()}"
        )
    step, spacing = grid_step(site, target, utc(cutoff), interval)
    typer.echo(
        f"forecast: {len(result.table)} steps of {target} every {step_text(step)} by "
        f"{result.method}{note} -> {out}"
    )
    if spacing is not None:
        own = step_text(spacing)
        hint = f"; --interval {own} for steps of {own}" if whole(spacing) else ""
        typer.echo(
            f"grid step {step_text(step)}: the median reading spacing of {target} ({own}) "
            f"rounded to a common logger interval{hint}"
        )


def grid_step(
    site: Site, target: str, cut: pd.Timestamp, interval: str | None
) -> tuple[pd.Timedelta, pd.Timedelta | None]:
    """The forecast's grid step (as `geojepa.forecast.apply.future_times` chooses it) and,
    when it was inferred and rounding changed it, the target's median reading spacing up to
    `cut` (else None)."""
    import numpy as np
    import pandas as pd

    from geojepa.frame import infer_interval
    from geojepa.timeformats import time_step

    if interval is not None:
        return time_step(interval, "--interval"), None
    r = site.readings
    mine = r[(r["sensor_id"] == target) & (pd.to_datetime(r["timestamp"], utc=True) <= cut)]
    step = infer_interval(mine)
    v = np.sort(mine["timestamp"].to_numpy(dtype="datetime64[ns]").astype(np.int64))
    d = np.diff(v)
    d = d[d > 0]
    if not d.size:
        return step, None
    spacing = pd.Timedelta(int(np.median(d)), unit="ns")
    return step, None if spacing == step else spacing


def whole(step: pd.Timedelta) -> bool:
    """A whole, positive number of hours (or days)."""
    import pandas as pd

    hour = pd.Timedelta(1, unit="h")
    return step >= hour and step % hour == pd.Timedelta(0)


def step_text(step: pd.Timedelta) -> str:
    """A time step as ``--interval`` reads it when it is whole (7D, 6h, 15min, 30s), else
    about how long it is (3.99 days)."""
    import pandas as pd

    units: tuple[str, ...] = ("D", "h", "min", "s")  # minutes under a day, seconds under an hour
    units = units[: 2 + (step < pd.Timedelta("1D")) + (step < pd.Timedelta("1h"))]
    for name in units:
        size = pd.Timedelta(f"1{name}")
        if step >= size and step % size == pd.Timedelta(0):
            return f"{step // size}{name}"
    days = step / pd.Timedelta("1D")
    return f"{days:.3g} days" if days >= 1.0 else str(step)
