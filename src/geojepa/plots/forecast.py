"""A forecast beside the classic methods: the whole record and a zoom on the forecast window."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.dates import date2num
from matplotlib.figure import Figure

from geojepa.plots.base import (
    FIG_WIDTH,
    SPLIT_COLOUR,
    TIME_LABEL,
    empty_figure,
    naive_utc,
    new_figure,
    plain_text,
    thin,
    time_axis,
)


def forecast_plot(
    *,
    sensor_id: str,
    unit: str,
    name: str = "GeoJEPA",
    history_times: np.ndarray,
    history: np.ndarray,
    times: np.ndarray,
    prediction: np.ndarray,
    lower: np.ndarray | None = None,
    upper: np.ndarray | None = None,
    methods: Mapping[str, np.ndarray] | None = None,
    cutoff: pd.Timestamp | None = None,
    truth_times: np.ndarray | None = None,
    truth: np.ndarray | None = None,
    context: float = 3.0,
    max_points: int = 2000,
) -> Figure:
    """GeoJEPA's forecast with its band, classic methods beside it, and what happened.

    Left: the whole record (history, then the readings after the cutoff in grey) with the
    zoomed window shaded. Right: a zoom on the forecast window and `context` times its
    length of history before it.
    """
    fig = new_figure(FIG_WIDTH, 3.8)
    ft = naive_utc(times)
    if len(ft) == 0:
        return empty_figure(fig, "the forecast has no rows")
    ht, hv = naive_utc(history_times), np.asarray(history, dtype=float)
    tt = naive_utc(truth_times) if truth_times is not None else np.array([], "datetime64[ns]")
    tv = np.asarray(truth, dtype=float) if truth is not None else np.array([])
    has_history = len(ht) > 0
    grid = fig.add_gridspec(1, 3 if has_history else 1)
    ax = fig.add_subplot(grid[0, 1:] if has_history else grid[0, 0])
    span = ft[-1] - ft[0] if len(ft) > 1 else np.timedelta64(1, "D")
    lo = ft[0] - span * context
    if has_history:
        ov = fig.add_subplot(grid[0, 0])
        oht, ohv = thin(ht, hv, max_points)
        ov.plot(oht, ohv, color="#263238", lw=0.8)
        if len(tt):
            ov.plot(*thin(tt, tv, max_points), color="#9e9e9e", lw=0.8)
        ov.plot(ft, np.asarray(prediction, float), color="#1e88e5", lw=1.2)
        ov.axvspan(
            float(date2num(max(lo, ht[0]))),
            float(date2num(ft[-1])),
            color="#1e88e5",
            alpha=0.08,
            lw=0,
        )
        ov.set_title("whole record", fontsize=9)
        ov.set_xlabel(TIME_LABEL)
        ov.set_ylabel(plain_text(f"{sensor_id} ({unit or 'no unit'})"))
        time_axis(ov)
        ov.grid(True, color="#eeeeee", lw=0.5)
        near = ht >= lo
        if near.any():
            zt, zv = thin(ht[near], hv[near], max_points)
            ax.plot(zt, zv, color="#263238", lw=1.0, label="readings up to the cutoff")
    shown = (tt >= lo) & (tt <= ft[-1] + span * 0.05) if len(tt) else np.zeros(0, dtype=bool)
    if shown.any():
        zt, zv = thin(tt[shown], tv[shown], max_points)
        ax.plot(zt, zv, color="#9e9e9e", lw=1.0, label="readings after the cutoff")
    if lower is not None and upper is not None:
        ax.fill_between(
            ft,
            np.asarray(lower, float),
            np.asarray(upper, float),
            color="#1e88e5",
            alpha=0.2,
            lw=0,
            label=plain_text(f"{name} band"),
        )
    ax.plot(
        ft,
        np.asarray(prediction, float),
        color="#1e88e5",
        lw=1.8,
        label=plain_text(f"{name} forecast"),
    )
    styles = ["--", "-.", ":", (0, (5, 1, 1, 1)), (0, (3, 1))]
    colours = ["#e65100", "#6a1b9a", "#2e7d32", "#ad1457", "#00838f"]
    for k, (other, values) in enumerate((methods or {}).items()):
        ax.plot(
            ft,
            np.asarray(values, float),
            ls=styles[k % len(styles)],
            color=colours[k % len(colours)],
            lw=1.3,
            label=plain_text(other),
        )
    if cutoff is not None:
        ax.axvline(
            float(date2num(naive_utc([cutoff])[0])),
            color=SPLIT_COLOUR,
            ls="--",
            lw=1.0,
            label="cutoff",
        )
    ax.set_title("forecast window", fontsize=9)
    ax.set_ylabel(plain_text(f"{sensor_id} ({unit or 'no unit'})"))
    ax.set_xlabel(TIME_LABEL)
    time_axis(ax)
    ax.grid(True, color="#eeeeee", lw=0.5)
    ax.legend(fontsize=7, loc="best", frameon=True, framealpha=0.85)
    return fig
