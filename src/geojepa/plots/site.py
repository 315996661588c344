"""Where the sensors are: plan view and a section along the site's main axis."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from geojepa.plots.base import (
    FIG_WIDTH,
    KIND_MARKERS,
    empty_figure,
    kind_colour,
    new_figure,
    plain_text,
)


def site_plan(sensors: pd.DataFrame) -> Figure:
    """Plan view: sensors at (x, y) in metres, colour and marker by kind, labelled by id or group."""
    fig = new_figure(FIG_WIDTH, 5.0)
    pos = sensors[np.isfinite(sensors["x"]) & np.isfinite(sensors["y"])]
    if pos.empty:
        return empty_figure(fig, "no sensor has a plan position (x, y)")
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
            label=plain_text(f"{kind} ({len(grp)})"),
            zorder=3,
        )
    # one label per position: the sensor ids there (a borehole's group name on big sites)
    labelled = 0
    by_id = len(pos) <= 40
    for (x, y), grp in pos.groupby(["x", "y"], sort=False):
        groups = sorted({str(g) for g in grp["group"] if str(g)})
        ids = ", ".join(str(s) for s in grp["id"])
        text = ids if by_id or not groups else ", ".join(groups)
        if len(text) > 24:
            text = text[:22] + "…"
        if labelled < 80:
            ax.annotate(
                plain_text(text),
                (x, y),
                xytext=(4, 4),
                textcoords="offset points",
                fontsize=7,
                color="#333",
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
    fig = new_figure(FIG_WIDTH, 4.2)
    z = sensors["z"].to_numpy(dtype=float)
    if not np.isfinite(z).any():
        return empty_figure(fig, "no sensor has an elevation (z)")
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
            plain_text(group),
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
            label=plain_text(kind),
            zorder=3,
        )
    ax.set_xlabel(label)
    ax.set_ylabel("elevation z (m)")
    ax.grid(True, color="#e0e0e0", lw=0.6)
    ax.legend(
        loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, title="kind", frameon=False
    )
    return fig
