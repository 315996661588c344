"""Time series: per-sensor panels with triggers and score strips, the site score on its alarm
states, and the per-sensor attribution of alarms."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from geojepa.plots.base import (
    ALARM_COLOURS,
    EVENT_COLOUR,
    FIG_WIDTH,
    SPLIT_COLOUR,
    TIME_LABEL,
    empty_figure,
    hatch_events,
    naive_utc,
    new_figure,
    plain_text,
    shade_spans,
    split_line,
    thin,
    time_axis,
)


@dataclass(frozen=True)
class SensorPanel:
    """What one sensor's panel draws. Times are any datetime-like (T,) arrays."""

    sensor_id: str
    unit: str
    times: np.ndarray  # (T,) readings' times
    values: np.ndarray  # (T,) readings' values, NaN allowed
    triggers: Mapping[str, float] | None = None  # level name -> value
    score_times: np.ndarray | None = None  # (S,) times of this sensor's anomaly score
    score: np.ndarray | None = None  # (S,) this sensor's anomaly score
    alarms: pd.DataFrame | None = None  # start, end, level: alarms attributed to it
    events: pd.DataFrame | None = None  # start, end: labelled events covering it


SCORE_STRIP = 0.22
"""Height of the anomaly-score strip at the bottom of each sensor panel (axes fraction)."""


def sensor_series(
    panels: Sequence[SensorPanel],
    *,
    split: pd.Timestamp | None = None,
    score_top: float | None = None,
    max_points: int = 1500,
) -> Figure:
    """One panel per sensor on a shared time axis, with its anomaly score as a grey strip.

    Trigger levels are dashed lines in their alarm colour; alarms attributed to the sensor
    are shaded amber/red; labelled events are hatched; the end of training data is a dashed
    vertical line. The score strip at the bottom of each panel has one scale for all
    panels: its full height is `score_top` (default: the largest score in the figure; pass
    one value for several figures to compare them), and the readings are drawn above it.
    """
    n = len(panels)
    if n == 0:
        return empty_figure(new_figure(FIG_WIDTH, 1.5), "no sensors to draw")
    peaks = [
        float(np.nanmax(p.score))
        for p in panels
        if p.score is not None and len(p.score) and np.isfinite(p.score).any()
    ]
    if score_top is None and peaks:
        score_top = max(max(peaks), 1e-12)
    if not peaks:
        score_top = None
    height = 0.95 + n * 1.3
    fig = new_figure(FIG_WIDTH, height, constrained=False)
    # fixed margins in inches: legend above, time labels below, sensor labels left
    grid = fig.add_gridspec(
        n,
        1,
        left=0.85 / FIG_WIDTH,
        right=1 - 0.15 / FIG_WIDTH,
        top=1 - 0.45 / height,
        bottom=0.5 / height,
        hspace=0.15,
    )
    first: Axes | None = None
    axes: list[Axes] = []
    for i, p in enumerate(panels):
        ax = fig.add_subplot(grid[i, 0], sharex=first)
        first = first or ax
        axes.append(ax)
        t = naive_utc(p.times)
        v = np.asarray(p.values, dtype=float)
        order = np.argsort(t, kind="stable")
        t, v = thin(t[order], v[order], max_points)
        shade_spans(ax, p.alarms, ALARM_COLOURS, 0.22)
        hatch_events(ax, p.events)
        ax.plot(t, v, color="#263238", lw=0.8)
        for level, value in (p.triggers or {}).items():
            ax.axhline(
                value, color=ALARM_COLOURS.get(level, "#6d4c41"), ls="--", lw=1.0, label=level
            )
        split_line(ax, split)
        if score_top is not None:
            lo, hi = ax.get_ylim()
            ticks = [y for y in ax.get_yticks() if lo <= y <= hi]
            span = hi - lo if hi > lo else 1.0
            ax.set_ylim(lo - span * SCORE_STRIP / (1 - SCORE_STRIP), hi)  # room for the strip
            ax.set_yticks(ticks)  # value ticks only beside the readings, not the strip
            strip = ax.get_xaxis_transform()  # x in data, y in axes fraction
            ax.plot([0, 1], [SCORE_STRIP] * 2, color="#cfd8dc", lw=0.6, transform=ax.transAxes)
            if p.score is not None and p.score_times is not None and len(p.score):
                st, sv = thin(naive_utc(p.score_times), np.asarray(p.score, float), max_points)
                frac = np.clip(np.nan_to_num(sv, nan=0.0) / score_top, 0, 1) * SCORE_STRIP
                ax.fill_between(st, 0, frac, color="#90a4ae", lw=0, transform=strip)
        ax.set_ylabel(plain_text(f"{p.sensor_id}\n({p.unit or 'no unit'})"), fontsize=8)
        ax.tick_params(labelsize=7, labelbottom=False)
        ax.grid(True, color="#eeeeee", lw=0.5)
    last = axes[-1]
    last.tick_params(labelbottom=True)
    time_axis(last)
    last.set_xlabel(TIME_LABEL)
    handles: list[Artist] = [Line2D([], [], color="#263238", lw=0.8, label="reading")]
    if score_top is not None:
        handles.append(Patch(color="#90a4ae", label=f"sensor score (strip top = {score_top:.3g})"))
    if any(p.triggers for p in panels):
        handles += [
            Line2D([], [], color=ALARM_COLOURS["amber"], ls="--", label="amber trigger"),
            Line2D([], [], color=ALARM_COLOURS["red"], ls="--", label="red trigger"),
        ]
    levels = {str(v) for p in panels if p.alarms is not None for v in p.alarms["level"]}
    for level in ("amber", "red"):
        if level in levels:
            handles.append(
                Patch(color=ALARM_COLOURS[level], alpha=0.3, label=f"{level} alarm (attributed)")
            )
    if any(p.events is not None and not p.events.empty for p in panels):
        handles.append(
            Patch(facecolor="none", edgecolor=EVENT_COLOUR, hatch="///", label="labelled event")
        )
    if split is not None:
        handles.append(Line2D([], [], color=SPLIT_COLOUR, ls="--", label="training data ends"))
    fig.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, 1.0),
        ncols=min(len(handles), 4),
        fontsize=7,
        frameon=False,
    )
    return fig


def score_timeline(
    times: np.ndarray,
    score: np.ndarray,
    alarm: Sequence[str] | np.ndarray,
    *,
    events: pd.DataFrame | None = None,
    split: pd.Timestamp | None = None,
    max_points: int = 3000,
) -> Figure:
    """Site anomaly score over time on a band coloured by the alarm state at each time.

    The lower strip shows the alarm state alone (green/amber/red); labelled events are
    hatched in both.
    """
    fig = new_figure(FIG_WIDTH, 3.6)
    t = naive_utc(times)
    s = np.asarray(score, dtype=float)
    if len(t) == 0:
        return empty_figure(fig, "the scores file has no rows")
    grid = fig.add_gridspec(2, 1, height_ratios=[4, 0.7])
    ax = fig.add_subplot(grid[0, 0])
    bx = fig.add_subplot(grid[1, 0], sharex=ax)
    levels = np.asarray([str(a) for a in alarm])
    code = np.select([levels == "amber", levels == "red"], [1, 2], 0).astype(float)
    step = np.median(np.diff(t)) if len(t) > 1 else np.timedelta64(1, "h")
    edges = np.concatenate([t, [t[-1] + step]])
    cmap = ListedColormap([ALARM_COLOURS["green"], ALARM_COLOURS["amber"], ALARM_COLOURS["red"]])
    norm = BoundaryNorm([-0.5, 0.5, 1.5, 2.5], cmap.N)
    bx.pcolormesh(edges, [0, 1], code[None, :], cmap=cmap, norm=norm, shading="flat")
    bx.set_yticks([])
    bx.set_ylabel("alarm", rotation=0, ha="right", va="center", fontsize=8)
    hatch_events(ax, events)
    hatch_events(bx, events)
    # shade alarm periods lightly behind the score, then draw the score itself; each time
    # covers [its time, the next) as in the strip below: both ends of every time's interval
    # (2T,) go in, so a one-time alarm has a width and a run ends one interval after its last
    bounds = np.column_stack([edges[:-1], edges[1:]]).ravel()
    for value, colour in ((1, ALARM_COLOURS["amber"]), (2, ALARM_COLOURS["red"])):
        on = code == value
        if on.any():
            ax.fill_between(
                bounds,
                0,
                1,
                where=np.repeat(on, 2),
                color=colour,
                alpha=0.18,
                transform=ax.get_xaxis_transform(),
                lw=0,
            )
    tt, ss = thin(t, s, max_points)
    ax.plot(tt, ss, color="#263238", lw=0.8)
    split_line(ax, split)
    split_line(bx, split)
    ax.set_ylabel("anomaly score\n(higher = more anomalous)", fontsize=8)
    ax.tick_params(labelbottom=False, labelsize=7)
    ax.grid(True, color="#eeeeee", lw=0.5)
    time_axis(bx)
    bx.set_xlabel(TIME_LABEL)
    bx.tick_params(labelsize=7)
    handles: list[Artist] = [
        Line2D([], [], color="#263238", lw=0.8, label="site score"),
        Patch(color=ALARM_COLOURS["green"], label="green"),
        Patch(color=ALARM_COLOURS["amber"], label="amber"),
        Patch(color=ALARM_COLOURS["red"], label="red"),
    ]
    if events is not None and not events.empty:
        handles.append(
            Patch(facecolor="none", edgecolor=EVENT_COLOUR, hatch="///", label="labelled event")
        )
    if split is not None:
        handles.append(Line2D([], [], color=SPLIT_COLOUR, ls="--", label="training data ends"))
    fig.legend(
        handles=handles, loc="outside upper center", ncols=len(handles), fontsize=7, frameon=False
    )
    return fig


def attribution_bars(table: pd.DataFrame, *, max_episodes: int = 6) -> Figure:
    """Per-sensor share of each alarm's score: small multiples of horizontal bars.

    `table` has columns episode (label), sensor_id, share (0–1) and level (amber/red),
    sorted as they should appear; the first `max_episodes` episodes are drawn.
    """
    episodes = list(dict.fromkeys(table["episode"]))[:max_episodes] if len(table) else []
    if not episodes:
        return empty_figure(new_figure(8.0, 1.5), "no alarms to attribute")
    ncols = min(3, len(episodes))
    nrows = int(np.ceil(len(episodes) / ncols))
    fig = new_figure(min(3.1 * ncols + 0.3, FIG_WIDTH), 2.1 * nrows + 0.3)
    for k, ep in enumerate(episodes):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        rows = table[table["episode"] == ep].iloc[::-1]
        colour = ALARM_COLOURS.get(str(rows["level"].iloc[0]), "#777777")
        ax.barh(rows["sensor_id"].map(plain_text), rows["share"] * 100.0, color=colour)
        ax.set_xlim(0, 100)
        ax.set_title(plain_text(ep), fontsize=8)
        ax.set_xlabel("share of alarm score (%)", fontsize=7)
        ax.set_ylabel("sensor", fontsize=7)
        ax.tick_params(labelsize=7)
        ax.set_axisbelow(True)
        ax.grid(True, axis="x", color="#eeeeee", lw=0.5)
    return fig
