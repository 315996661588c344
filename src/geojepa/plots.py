"""Matplotlib figures for the report, drawn from plain inputs (arrays and DataFrames).

Every function returns a `matplotlib.figure.Figure` built without pyplot (no global state,
the Agg canvas, safe in threads and on machines without a display). Nothing here imports
the model code, so each figure can be tested alone.

Guarantees:

- every data axis has an x and a y label, with units where the quantity has one;
- times are drawn in UTC (naive ``datetime64[ns]`` on the axis, labelled "time (UTC)");
- long series are thinned by a min/max envelope to at most `max_points` points, so a spike
  of one sample is still visible and the PNG stays small;
- an input with nothing to draw gives a figure that says so in words, never an exception.

Alarm colours follow a monitoring system's TARP: green, amber, red.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

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


# ----------------------------------------------------------------------------- helpers
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


def _time_axis(ax: Axes) -> None:
    locator = AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))


def _empty(fig: Figure, message: str) -> Figure:
    ax = fig.add_subplot(1, 1, 1)
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=11, color="#555555")
    return fig


def _new_figure(width: float, height: float, *, constrained: bool = True) -> Figure:
    """A figure; `constrained` layout fits labels automatically but costs a layout pass per
    draw, so the tall many-panel figures place their axes with fixed margins instead."""
    return Figure(figsize=(width, height), layout="constrained" if constrained else None)


def _spans(
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


def _events(ax: Axes, events: pd.DataFrame | None) -> None:
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


def _split(ax: Axes, split: pd.Timestamp | None) -> None:
    if split is None:
        return
    x = float(date2num(naive_utc([split])[0]))
    ax.axvline(x, color=SPLIT_COLOUR, ls="--", lw=1.0)


# ----------------------------------------------------------------------------- site
def site_plan(sensors: pd.DataFrame) -> Figure:
    """Plan view: sensors at (x, y) in metres, colour and marker by kind, labelled by id or group."""
    fig = _new_figure(FIG_WIDTH, 5.0)
    pos = sensors[np.isfinite(sensors["x"]) & np.isfinite(sensors["y"])]
    if pos.empty:
        return _empty(fig, "no sensor has a plan position (x, y)")
    ax = fig.add_subplot(1, 1, 1)
    for kind, grp in pos.groupby("kind", sort=True):
        ax.scatter(
            grp["x"],
            grp["y"],
            s=46,
            c=kind_colour(str(kind)),
            marker=KIND_MARKERS.get(str(kind), "o"),
            edgecolors="white",
            linewidths=0.6,
            label=f"{kind} ({len(grp)})",
            zorder=3,
        )
    # one label per position: a borehole's group name, else the sensor ids there
    labelled = 0
    for (x, y), grp in pos.groupby(["x", "y"], sort=False):
        groups = sorted({str(g) for g in grp["group"] if str(g)})
        text = ", ".join(groups) if groups else ", ".join(str(s) for s in grp["id"])
        if len(text) > 24:
            text = text[:22] + "…"
        if labelled < 80:
            ax.annotate(
                text, (x, y), xytext=(4, 4), textcoords="offset points", fontsize=7, color="#333"
            )
            labelled += 1
    ax.set_xlabel("easting x (m)")
    ax.set_ylabel("northing y (m)")
    ax.set_aspect("equal", adjustable="datalim")
    ax.grid(True, color="#e0e0e0", lw=0.6)
    ax.legend(
        loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, title="kind", frameon=False
    )
    return fig


def section_axis(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, str]:
    """Distance (m) of plan points along their main direction, and a label for that axis.

    The direction is the first principal axis of the positions, so a line of boreholes
    becomes a section along it; points without a plan position get NaN.
    """
    ok = np.isfinite(x) & np.isfinite(y)
    out = np.full(len(x), np.nan)
    if ok.sum() == 0:
        return out, "distance along section (m)"
    pts = np.column_stack([x[ok], y[ok]])
    centre = pts.mean(axis=0)
    if ok.sum() >= 2 and np.ptp(pts, axis=0).max() > 0:
        _, _, vt = np.linalg.svd(pts - centre, full_matrices=False)
        d = vt[0]
        if d[0] < 0 or (d[0] == 0 and d[1] < 0):
            d = -d
    else:
        d = np.array([1.0, 0.0])
    along = (pts - centre) @ d
    out[ok] = along - along.min()
    bearing = (np.degrees(np.arctan2(d[0], d[1])) + 360.0) % 360.0
    return out, f"distance along section, bearing {bearing:.0f}° (m)"


def depth_section(sensors: pd.DataFrame) -> Figure:
    """Section: elevation z (m) against distance along the site's main axis, boreholes drawn."""
    fig = _new_figure(FIG_WIDTH, 4.2)
    z = sensors["z"].to_numpy(dtype=float)
    if not np.isfinite(z).any():
        return _empty(fig, "no sensor has an elevation (z)")
    along, label = section_axis(
        sensors["x"].to_numpy(dtype=float), sensors["y"].to_numpy(dtype=float)
    )
    along = np.where(np.isfinite(along), along, 0.0)
    ax = fig.add_subplot(1, 1, 1)
    frame = sensors.assign(_along=along)
    frame = frame[np.isfinite(z)]
    for group, grp in frame.groupby("group", sort=False):
        if not str(group) or len(grp) < 1:
            continue
        xa = float(grp["_along"].mean())
        top = float(grp["z"].max())
        ax.plot([xa, xa], [top, float(grp["z"].min())], color="#9e9e9e", lw=2.5, zorder=1)
        ax.annotate(
            str(group),
            (xa, top),
            xytext=(0, 4),
            textcoords="offset points",
            ha="center",
            fontsize=7,
            color="#333",
        )
    for kind, grp in frame.groupby("kind", sort=True):
        ax.scatter(
            grp["_along"],
            grp["z"],
            s=40,
            c=kind_colour(str(kind)),
            marker=KIND_MARKERS.get(str(kind), "o"),
            edgecolors="white",
            linewidths=0.6,
            label=str(kind),
            zorder=3,
        )
    ax.set_xlabel(label)
    ax.set_ylabel("elevation z (m)")
    ax.grid(True, color="#e0e0e0", lw=0.6)
    ax.legend(
        loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, title="kind", frameon=False
    )
    return fig


# ----------------------------------------------------------------------------- series
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
        return _empty(_new_figure(FIG_WIDTH, 1.5), "no sensors to draw")
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
    fig = _new_figure(FIG_WIDTH, height, constrained=False)
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
        _spans(ax, p.alarms, ALARM_COLOURS, 0.22)
        _events(ax, p.events)
        ax.plot(t, v, color="#263238", lw=0.8)
        for level, value in (p.triggers or {}).items():
            ax.axhline(
                value, color=ALARM_COLOURS.get(level, "#6d4c41"), ls="--", lw=1.0, label=level
            )
        _split(ax, split)
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
        ax.set_ylabel(f"{p.sensor_id}\n({p.unit or 'no unit'})", fontsize=8)
        ax.tick_params(labelsize=7, labelbottom=False)
        ax.grid(True, color="#eeeeee", lw=0.5)
    last = axes[-1]
    last.tick_params(labelbottom=True)
    _time_axis(last)
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
    fig = _new_figure(FIG_WIDTH, 3.6)
    t = naive_utc(times)
    s = np.asarray(score, dtype=float)
    if len(t) == 0:
        return _empty(fig, "the scores file has no rows")
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
    _events(ax, events)
    _events(bx, events)
    # shade alarm periods lightly behind the score, then draw the score itself
    for value, colour in ((1, ALARM_COLOURS["amber"]), (2, ALARM_COLOURS["red"])):
        on = code == value
        if on.any():
            ax.fill_between(
                edges[:-1],
                0,
                1,
                where=on,
                step="post",
                color=colour,
                alpha=0.18,
                transform=ax.get_xaxis_transform(),
                lw=0,
            )
    tt, ss = thin(t, s, max_points)
    ax.plot(tt, ss, color="#263238", lw=0.8)
    _split(ax, split)
    _split(bx, split)
    ax.set_ylabel("anomaly score\n(higher = more anomalous)", fontsize=8)
    ax.tick_params(labelbottom=False, labelsize=7)
    ax.grid(True, color="#eeeeee", lw=0.5)
    _time_axis(bx)
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
        return _empty(_new_figure(8.0, 1.5), "no alarms to attribute")
    ncols = min(3, len(episodes))
    nrows = int(np.ceil(len(episodes) / ncols))
    fig = _new_figure(min(3.1 * ncols + 0.3, FIG_WIDTH), 2.1 * nrows + 0.3)
    for k, ep in enumerate(episodes):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        rows = table[table["episode"] == ep].iloc[::-1]
        colour = ALARM_COLOURS.get(str(rows["level"].iloc[0]), "#777777")
        ax.barh(rows["sensor_id"].astype(str), rows["share"] * 100.0, color=colour)
        ax.set_xlim(0, 100)
        ax.set_title(str(ep), fontsize=8)
        ax.set_xlabel("share of alarm score (%)", fontsize=7)
        ax.set_ylabel("sensor", fontsize=7)
        ax.tick_params(labelsize=7)
        ax.set_axisbelow(True)
        ax.grid(True, axis="x", color="#eeeeee", lw=0.5)
    return fig


# ----------------------------------------------------------------------------- forecasts
def forecast_plot(
    *,
    sensor_id: str,
    unit: str,
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
    fig = _new_figure(FIG_WIDTH, 3.8)
    ft = naive_utc(times)
    if len(ft) == 0:
        return _empty(fig, "the forecast has no rows")
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
        ov.set_ylabel(f"{sensor_id} ({unit or 'no unit'})")
        _time_axis(ov)
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
            label="GeoJEPA band",
        )
    ax.plot(ft, np.asarray(prediction, float), color="#1e88e5", lw=1.8, label="GeoJEPA forecast")
    styles = ["--", "-.", ":", (0, (5, 1, 1, 1)), (0, (3, 1))]
    colours = ["#e65100", "#6a1b9a", "#2e7d32", "#ad1457", "#00838f"]
    for k, (name, values) in enumerate((methods or {}).items()):
        ax.plot(
            ft,
            np.asarray(values, float),
            ls=styles[k % len(styles)],
            color=colours[k % len(colours)],
            lw=1.3,
            label=name,
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
    ax.set_ylabel(f"{sensor_id} ({unit or 'no unit'})")
    ax.set_xlabel(TIME_LABEL)
    _time_axis(ax)
    ax.grid(True, color="#eeeeee", lw=0.5)
    ax.legend(fontsize=7, loc="best", frameon=True, framealpha=0.85)
    return fig


# ----------------------------------------------------------------------------- training
def training_curves(metrics: pd.DataFrame) -> Figure:
    """Loss (log scale when positive) and learning rate against the optimiser step."""
    fig = _new_figure(FIG_WIDTH, 3.0)
    has_lr = "lr" in metrics.columns and metrics["lr"].notna().any()
    ncols = 2 if has_lr else 1
    ax = fig.add_subplot(1, ncols, 1)
    loss_cols = [
        c
        for c in metrics.columns
        if c == "loss" or c.endswith(("_loss", "/loss")) or c.startswith("loss")
    ]
    drawn = False
    positive = True
    for col in loss_cols:
        d = metrics[["step", col]].dropna()
        if d.empty:
            continue
        sparse = len(d) < 0.5 * len(metrics)  # evaluation-only rows: draw the points
        ax.plot(d["step"], d[col], lw=1.0, label=col, marker="o" if sparse else None, ms=3)
        drawn = True
        positive = positive and bool((d[col] > 0).all())
    if drawn and positive:
        ax.set_yscale("log")
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("loss (latent smooth-L1)")
    ax.grid(True, color="#eeeeee", lw=0.5)
    if drawn:
        ax.legend(fontsize=7, frameon=False)
    if has_lr:
        bx = fig.add_subplot(1, ncols, 2)
        d = metrics[["step", "lr"]].dropna()
        bx.plot(d["step"], d["lr"], color="#6a1b9a", lw=1.0)
        bx.set_xlabel("optimiser step")
        bx.set_ylabel("learning rate")
        bx.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
        bx.grid(True, color="#eeeeee", lw=0.5)
    return fig


COLLAPSE_METRICS: Mapping[str, str] = {
    "rankme": "RankMe (effective rank)",
    "lidar": "LiDAR (effective rank)",
    "std": "embedding std (per dimension)",
}


def collapse_metrics(metrics: pd.DataFrame, *, width: int | None = None) -> Figure:
    """RankMe, LiDAR and embedding std against the step; the collapse floor where known.

    With the embedding `width` D, the RankMe panel shows 0.3·D (below it the run is
    close to collapse) and D (full rank).
    """
    present = [c for c in COLLAPSE_METRICS if c in metrics.columns and metrics[c].notna().any()]
    if not present:
        return _empty(_new_figure(8.0, 1.5), "no collapse metrics logged")
    fig = _new_figure(min(3.1 * len(present) + 0.3, FIG_WIDTH), 2.9)
    for k, col in enumerate(present):
        ax = fig.add_subplot(1, len(present), k + 1)
        d = metrics[["step", col]].dropna()
        ax.plot(d["step"], d[col], marker="o", ms=2.5, lw=1.0, color="#00695c")
        if col in ("rankme", "lidar") and width:
            ax.axhline(0.3 * width, color=ALARM_COLOURS["red"], ls="--", lw=1.0, label="0.3·D")
            ax.axhline(width, color="#9e9e9e", ls=":", lw=1.0, label=f"D = {width}")
            ax.legend(fontsize=7, frameon=False)
        if col == "std":
            ax.set_ylim(bottom=0)
        ax.set_xlabel("optimiser step")
        ax.set_ylabel(COLLAPSE_METRICS[col], fontsize=8)
        ax.grid(True, color="#eeeeee", lw=0.5)
    return fig


# ----------------------------------------------------------------------------- embeddings
def season_of(times: np.ndarray) -> np.ndarray:
    """Season index (N,) 0–3 from the month: Dec–Feb, Mar–May, Jun–Aug, Sep–Nov."""
    months = pd.DatetimeIndex(naive_utc(times)).month.to_numpy()
    return ((months % 12) // 3).astype(np.int64)


def embedding_projection(
    points: np.ndarray, times: np.ndarray, *, explained: Sequence[float] | None = None
) -> Figure:
    """2-D projection (N, 2) of window embeddings, coloured by window start time and by season."""
    pts = np.asarray(points, dtype=float)
    if pts.ndim != 2 or pts.shape[0] == 0 or pts.shape[1] < 2:
        return _empty(_new_figure(8.0, 1.5), "no embeddings to project")
    fig = _new_figure(FIG_WIDTH, 4.0)
    ev = list(explained or [])
    xl = f"PC 1 ({ev[0] * 100:.0f} % of variance)" if len(ev) > 0 else "PC 1"
    yl = f"PC 2 ({ev[1] * 100:.0f} % of variance)" if len(ev) > 1 else "PC 2"
    t = naive_utc(times)
    ax = fig.add_subplot(1, 2, 1)
    tnum = date2num(t)
    sc = ax.scatter(pts[:, 0], pts[:, 1], c=tnum, cmap="viridis", s=10, lw=0)
    cb = fig.colorbar(sc, ax=ax, fraction=0.05)
    locator = AutoDateLocator(minticks=3, maxticks=6)
    cb.ax.yaxis.set_major_locator(locator)
    cb.ax.yaxis.set_major_formatter(ConciseDateFormatter(locator))
    cb.set_label("window start (UTC)", fontsize=8)
    ax.set_title("coloured by time", fontsize=9)
    bx = fig.add_subplot(1, 2, 2, sharex=ax, sharey=ax)
    season = season_of(t)
    for k, name in enumerate(SEASONS):
        on = season == k
        if on.any():
            bx.scatter(pts[on, 0], pts[on, 1], s=10, lw=0, color=SEASON_COLOURS[k], label=name)
    bx.legend(fontsize=7, frameon=False, title="season (month)", title_fontsize=7)
    bx.set_title("coloured by season", fontsize=9)
    for a in (ax, bx):
        a.set_xlabel(xl)
        a.set_ylabel(yl)
        a.grid(True, color="#eeeeee", lw=0.5)
    return fig
