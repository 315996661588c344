"""Verbs of group forecast (DESIGN §6); each is a thin layer over the library.

``geojepa forecast RUN SITE --target SENSOR --cutoff TIME --horizon H --out forecast.csv``
writes ``timestamp,prediction,lower,upper`` for the H grid steps after the cutoff, using only
readings up to it. ``--method jepa`` (the default) forecasts with a head (``--head ridge``,
``mlp`` or ``median``) on the frozen features of the trained RUN. The classic methods (``--method
hyperbolic|asaoka|consolidation|linear|persistence|fukuzono``) need no run: RUN may be given (it is not
read), written ``-``, or left out (``forecast SITE ...``). ``--fill-plan PLAN.csv``
(``timestamp,load``) drives ``consolidation`` with the construction programme after the
cutoff instead of holding the current load.
"""

from __future__ import annotations

from pathlib import Path

import typer

from geojepa.cli._app import app
from geojepa.errors import UsageError

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
        None, "--interval", help="Grid step, e.g. 1D (default: the target's reading interval)."
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
    from geojepa.forecast.apply import SiteForecast, forecast_site, forecast_site_jepa
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
        from geojepa.forecast.apply import utc
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
        under = "the current load" if plan is None else "the load so far"
        note += (
            f", {t90}, end of primary consolidation "
            f"{model.primary_final_:.4g} under {under}"  # type: ignore[attr-defined]
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
    typer.echo(f"forecast: {len(result.table)} steps of {target} by {result.method}{note} -> {out}")
