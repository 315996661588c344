"""Training curves, collapse measures and the embedding projection."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure

from geojepa.plots.base import (
    ALARM_COLOURS,
    FIG_WIDTH,
    SEASON_COLOURS,
    SEASONS,
    empty_figure,
    naive_utc,
    new_figure,
    plain_text,
)


def training_curves(metrics: pd.DataFrame) -> Figure:
    """Loss (log scale when positive) and learning rate against the optimiser step."""
    fig = new_figure(FIG_WIDTH, 3.0)
    has_lr = "lr" in metrics.columns and metrics["lr"].notna().any()
    ncols = 2 if has_lr else 1
    ax = fig.add_subplot(1, ncols, 1)
    loss_cols = sorted(
        (
            c
            for c in metrics.columns
            if c == "loss" or c.endswith(("_loss", "/loss")) or c.startswith("loss")
        ),
        key=lambda c: c != "loss",  # the training loss first, under its own name
    )
    drawn = False
    positive = True
    drawn_values: list[pd.Series] = []
    for col in loss_cols:
        d = metrics[["step", col]].dropna()
        if d.empty or any(d[col].equals(v) for v in drawn_values):
            continue  # e.g. `latent_loss` equal to `loss` when no other term is on
        drawn_values.append(d[col])
        sparse = len(d) < 0.5 * len(metrics)  # evaluation-only rows: draw the points
        ax.plot(
            d["step"], d[col], lw=1.0, label=plain_text(col), marker="o" if sparse else None, ms=3
        )
        drawn = True
        positive = positive and bool((d[col] > 0).all())
    if drawn and positive:
        ax.set_yscale("log")
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("loss (see legend)")
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
        return empty_figure(new_figure(8.0, 1.5), "no collapse metrics logged")
    fig = new_figure(min(3.1 * len(present) + 0.3, FIG_WIDTH), 2.9)
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
        return empty_figure(new_figure(8.0, 1.5), "no embeddings to project")
    fig = new_figure(FIG_WIDTH, 4.0)
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
