"""Shared pieces of the report's figures: colours, time axes, thinning, shading.

Guarantees: `naive_utc` turns any datetime-like input (tz-aware or naive) into naive UTC
``datetime64[ns]``; `thin` keeps each bucket's minimum and maximum, so a one-sample spike
survives; `plain_text` makes text from the data (sensor ids, units, names) draw as written,
never as a mathtext formula; figures are made without pyplot (no global state, the Agg
canvas).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure

ALARM_COLOURS: Mapping[str, str] = {"green": "#2e7d32", "amber": "#f0a30a", "red": "#c62828"}
EVENT_COLOUR = "#5c6bc0"
SPLIT_COLOUR = "#455a64"

KIND_COLOURS: Mapping[str, str] = {
    "piezometer": "#1f77b4",
    "strain_gauge": "#8c564b",
    "inclinometer": "#d62728",
    "extensometer": "#ff7f0e",
    "settlement": "#9467bd",
    "gnss": "#e377c2",
    "rain_gauge": "#17becf",
    "thermometer": "#bcbd22",
    "barometer": "#7f7f7f",
    "tensiometer": "#2ca02c",
    "soil_moisture": "#98df8a",
    "water_level": "#aec7e8",
    "load": "#c49c94",
    "discharge": "#9edae5",
    "other": "#555555",
}
KIND_MARKERS: Mapping[str, str] = {
    "piezometer": "v",
    "inclinometer": "s",
    "extensometer": "D",
    "settlement": "P",
    "gnss": "^",
    "rain_gauge": "o",
    "thermometer": "o",
    "water_level": "h",
    "load": "X",
}

SEASONS: tuple[str, ...] = ("Dec–Feb", "Mar–May", "Jun–Aug", "Sep–Nov")
SEASON_COLOURS: tuple[str, ...] = ("#1565c0", "#43a047", "#f9a825", "#d84315")

TIME_LABEL = "time (UTC)"
FIG_WIDTH = 9.6
"""Figure width in inches: 960 px at the report's 100 dpi."""


def kind_colour(kind: str) -> str:
    return KIND_COLOURS.get(kind, KIND_COLOURS["other"])


def plain_text(text: object) -> str:
    """`text` for a figure, drawn literally: its dollar signs escaped, so a sensor id such
    as ``PZ$1$`` is not set as a formula (nor one like ``A$\\x$`` fails to draw)."""
    return str(text).replace("$", r"\$")


def naive_utc(times: object) -> np.ndarray:
    """Times as naive UTC ``datetime64[ns]`` (T,), from tz-aware or naive input."""
    values = times if isinstance(times, pd.Series | pd.Index) else np.asarray(times).ravel()
    idx = pd.DatetimeIndex(pd.to_datetime(values))
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    return idx.to_numpy(dtype="datetime64[ns]")


def thin(times: np.ndarray, values: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Min/max envelope of (T,) series down to at most `max_points` points, time order kept."""
    n = len(values)
    if n <= max_points or max_points < 4:
        return times, values
    n_buckets = max_points // 2
    edges = np.linspace(0, n, n_buckets + 1).astype(np.int64)
    keep: list[int] = []
    for a, b in itertools.pairwise(edges):
        if b <= a:
            continue
        seg = values[a:b]
        if np.all(np.isnan(seg)):
            keep.append(int(a))
            continue
        i_min = int(a + np.nanargmin(seg))
        i_max = int(a + np.nanargmax(seg))
        keep.extend(sorted({i_min, i_max}))
    idx = np.asarray(keep, dtype=np.int64)
    return times[idx], values[idx]


def time_axis(ax: Axes) -> None:
    locator = AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))


def empty_figure(fig: Figure, message: str) -> Figure:
    ax = fig.add_subplot(1, 1, 1)
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=11, color="#555555")
    return fig


def new_figure(width: float, height: float, *, constrained: bool = True) -> Figure:
    """A figure; `constrained` layout fits labels automatically but costs a layout pass per
    draw, so the tall many-panel figures place their axes with fixed margins instead."""
    return Figure(figsize=(width, height), layout="constrained" if constrained else None)


def shade_spans(
    ax: Axes, spans: pd.DataFrame | None, colour_of: Mapping[str, str], alpha: float
) -> None:
    """Shade [start, end] spans; `spans` has start, end and level columns."""
    if spans is None or spans.empty:
        return
    starts = naive_utc(spans["start"])
    ends = naive_utc(spans["end"])
    for a, b, level in zip(starts, ends, spans["level"], strict=True):
        colour = colour_of.get(str(level), "#999999")
        # an edge of its own colour keeps a one-sample alarm visible on a long axis
        ax.axvspan(
            float(date2num(a)),
            float(date2num(b)),
            facecolor=colour,
            edgecolor=colour,
            alpha=alpha,
            lw=0.8,
        )


def hatch_events(ax: Axes, events: pd.DataFrame | None) -> None:
    if events is None or events.empty:
        return
    for a, b in zip(naive_utc(events["start"]), naive_utc(events["end"]), strict=True):
        ax.axvspan(
            float(date2num(a)),
            float(date2num(b)),
            facecolor="none",
            edgecolor=EVENT_COLOUR,
            hatch="///",
            lw=0.6,
            alpha=0.7,
        )


def split_line(ax: Axes, split: pd.Timestamp | None) -> None:
    if split is None:
        return
    x = float(date2num(naive_utc([split])[0]))
    ax.axvline(x, color=SPLIT_COLOUR, ls="--", lw=1.0)
