"""Numbers the report shows, computed from the run's outputs (never from a model).

- `alarm_episodes`: contiguous runs of non-green alarm states, with their peak level.
- `episodes_in`: the episodes that overlap a period (the header counts only those).
- `attribution`: each episode's per-sensor share of the anomaly score, i.e. which gauge.
- `match_events`: which labelled events an alarm caught, and which alarms caught none.
- `collapse_columns`: RankMe / LiDAR / embedding-std columns found under their logged names.
- `pca_2d`: a 2-D principal-component projection of embeddings.

Guarantees: pure functions of their inputs; ground-truth labels are used only to display
hits and misses of alarms that were already raised, never to choose a threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

LEVEL_RANK: dict[str, int] = {"green": 0, "amber": 1, "red": 2}

ATTRIBUTED_SHARE = 0.2
"""A sensor is held responsible for an alarm when it carries at least this share of the
alarm's score, or the largest share."""


def alarm_episodes(table: pd.DataFrame, interval: pd.Timedelta) -> pd.DataFrame:
    """Contiguous runs of amber/red rows in a scores table.

    Returns one row per episode: episode (1-based), start, end (exclusive: last alarmed
    time plus one `interval`, so a one-row alarm has a width), last (the last alarmed time,
    inclusive: the one to show), level (the highest reached), peak_score, peak_time, rows.
    """
    cols = ["episode", "start", "end", "last", "level", "peak_score", "peak_time", "rows"]
    if table.empty:
        return pd.DataFrame(columns=cols)
    rank = table["alarm"].map(LEVEL_RANK).fillna(0).to_numpy(dtype=np.int64)
    on = rank > 0
    if not on.any():
        return pd.DataFrame(columns=cols)
    # (T,) -> boundaries of runs of True
    padded = np.concatenate([[False], on, [False]])
    change = np.flatnonzero(np.diff(padded.astype(np.int8)))
    starts, stops = change[0::2], change[1::2]
    times = table["timestamp"]
    score = table["score"].to_numpy(dtype=float)
    rows = []
    for k, (a, b) in enumerate(zip(starts, stops, strict=True), start=1):
        seg = score[a:b]
        i_peak = int(a + (np.nanargmax(seg) if np.isfinite(seg).any() else 0))
        rows.append(
            {
                "episode": k,
                "start": times.iloc[a],
                "end": times.iloc[b - 1] + interval,
                "last": times.iloc[b - 1],
                "level": "red" if rank[a:b].max() >= 2 else "amber",
                "peak_score": float(score[i_peak]),
                "peak_time": times.iloc[i_peak],
                "rows": int(b - a),
            }
        )
    return pd.DataFrame(rows, columns=cols)


def responsible(att: pd.DataFrame) -> pd.DataFrame:
    """The rows of an `attribution` table whose sensor is held responsible for its alarm:
    the largest share of each episode, and every share of at least `ATTRIBUTED_SHARE`."""
    if att.empty:
        return att
    first = att.groupby("episode", sort=False)["share"].transform("max") == att["share"]
    return att[first | (att["share"] >= ATTRIBUTED_SHARE)]


def attribution(
    per_sensor: pd.DataFrame, table: pd.DataFrame, episodes: pd.DataFrame, *, top: int = 5
) -> pd.DataFrame:
    """Per-sensor share of each episode's score (the sensors responsible).

    A sensor's weight is its mean per-sensor score over the episode's rows, clipped at zero
    (a score below zero says "less odd than usual", not "responsible"); shares are weights
    over their sum. Returns episode, sensor_id, mean_score, share, level for the `top`
    sensors of each episode, largest share first; empty when there are no per-sensor scores.
    """
    cols = ["episode", "sensor_id", "mean_score", "share", "level"]
    if per_sensor.empty or per_sensor.shape[1] == 0 or episodes.empty:
        return pd.DataFrame(columns=cols)
    times = table["timestamp"]
    out = []
    for ep in episodes.to_dict("records"):
        rows = (times >= ep["start"]) & (times < ep["end"])
        means = per_sensor.loc[rows.to_numpy()].mean(axis=0, skipna=True)
        weights = means.clip(lower=0).fillna(0.0)
        total = float(weights.sum())
        if total <= 0:
            continue
        share = (weights / total).sort_values(ascending=False, kind="stable")
        for sid in share.index[:top]:
            if share[sid] <= 0:
                break
            out.append(
                {
                    "episode": int(ep["episode"]),
                    "sensor_id": str(sid),
                    "mean_score": float(means[sid]),
                    "share": float(share[sid]),
                    "level": str(ep["level"]),
                }
            )
    return pd.DataFrame(out, columns=cols)


def episodes_in(episodes: pd.DataFrame, period: tuple[pd.Timestamp, pd.Timestamp]) -> pd.DataFrame:
    """The episodes with an alarmed time in `period` [lo, hi): those that overlap it (an
    episode's ``end`` is exclusive, so one that ends at ``lo`` is not in it)."""
    if episodes.empty:
        return episodes
    lo, hi = period
    return episodes[(episodes["end"] > lo) & (episodes["start"] < hi)]


@dataclass(frozen=True)
class EventMatch:
    """Alarms against labelled events over the scored period (after training data ends)."""

    events: int  # labelled events inside the scored period
    caught: int  # of them, overlapped by an alarm episode
    alarms: int  # alarm episodes in the scored period
    false_alarms: int  # of them, overlapping no labelled event
    months: float  # length of the scored period in months (30.44 days)
    caught_ids: tuple[int, ...]  # row positions (in `labels`) of the caught events
    episode_events: dict[int, list[int]]  # episode -> row positions of the events it overlaps

    @property
    def false_alarms_per_month(self) -> float:
        return self.false_alarms / self.months if self.months > 0 else float("nan")


def match_events(
    episodes: pd.DataFrame,
    labels: pd.DataFrame,
    period: tuple[pd.Timestamp, pd.Timestamp],
) -> EventMatch:
    """Event-wise hits (no point adjustment): an event is caught when any alarm episode
    overlaps it; an episode is false when it overlaps no event. Only events and episodes
    that overlap `period` count."""
    lo, hi = period
    labels = labels.reset_index(drop=True)
    inside = (labels["end"] >= lo) & (labels["start"] <= hi)
    eps = episodes_in(episodes, period)
    caught: set[int] = set()
    by_episode: dict[int, list[int]] = {}
    for e in eps.to_dict("records"):
        hit = inside & (labels["start"] < e["end"]) & (labels["end"] >= e["start"])
        hits = [int(i) for i in np.flatnonzero(hit.to_numpy())]
        by_episode[int(e["episode"])] = hits
        caught.update(hits)
    months = max((hi - lo) / pd.Timedelta(days=30.44), 0.0)
    return EventMatch(
        events=int(inside.sum()),
        caught=len(caught),
        alarms=len(eps),
        false_alarms=sum(1 for v in by_episode.values() if not v),
        months=float(months),
        caught_ids=tuple(sorted(caught)),
        episode_events=by_episode,
    )


# ----------------------------------------------------------------------------- training
COLLAPSE_NAMES: dict[str, tuple[str, ...]] = {
    "rankme": ("rankme", "val/rankme", "val_rankme", "quality/rankme"),
    "lidar": ("lidar", "val/lidar", "val_lidar", "quality/lidar"),
    "std": ("std", "embed_std", "val/embed_std", "val_embed_std", "embedding_std", "emb_std"),
}


def collapse_columns(metrics: pd.DataFrame) -> pd.DataFrame:
    """``step`` plus canonical ``rankme``, ``lidar``, ``std`` columns from their logged names."""
    out = pd.DataFrame({"step": metrics["step"]})
    for canon, names in COLLAPSE_NAMES.items():
        col = next((n for n in names if n in metrics.columns and metrics[n].notna().any()), None)
        if col is not None:
            out[canon] = metrics[col]
    return out


def last_value(metrics: pd.DataFrame, names: tuple[str, ...]) -> float | None:
    """The last logged value of the first of `names` present, or None."""
    for name in names:
        if name in metrics.columns:
            v = metrics[name].dropna()
            if len(v):
                return float(v.iloc[-1])
    return None


# ----------------------------------------------------------------------------- embeddings
@dataclass(frozen=True)
class Projection:
    points: np.ndarray  # (N, 2)
    explained: tuple[float, float]  # fraction of variance of PC 1 and PC 2


def pca_2d(vectors: np.ndarray) -> Projection:
    """Project (N, D) vectors on their first two principal components (N, 2)."""
    x = np.asarray(vectors, dtype=float)
    n, d = x.shape
    if n < 2 or d == 0:
        return Projection(points=np.zeros((n, 2)), explained=(0.0, 0.0))
    xc = x - x.mean(axis=0)
    u, s, _ = np.linalg.svd(xc, full_matrices=False)
    pts = u[:, :2] * s[:2]  # (N, min(2, D))
    if pts.shape[1] < 2:
        pts = np.column_stack([pts, np.zeros(n)])
    var = s**2
    total = float(var.sum())
    ex = [float(v / total) if total > 0 else 0.0 for v in var[:2]] + [0.0, 0.0]
    return Projection(points=pts, explained=(ex[0], ex[1]))
