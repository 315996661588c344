"""The report's sections, each drawn from whatever inputs exist and skipped with a reason.

Every function takes the `Context` (site, run outputs already read and validated) and
returns `Section`s whose lede says in one line what is shown and how to read it.

Guarantees: a missing input gives a skipped section with a one-line reason, never an
exception; ground-truth labels are only drawn and counted, never used to choose anything.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from geojepa import plots
from geojepa.report import analysis
from geojepa.report.artifacts import BenchmarkInput, Embeddings, ForecastInput
from geojepa.report.html import (
    Section,
    esc,
    figure_html,
    json_tables,
    markdown_html,
    pill,
    table_html,
)
from geojepa.report.inputs import Scores
from geojepa.site import Quality, Site

log = logging.getLogger(__name__)

MAX_PANELS_PER_FIGURE = 10


@dataclass(frozen=True)
class Context:
    """Everything the sections draw from. Absent pieces are None (or empty)."""

    site: Site | None
    config: Mapping[str, Any] | None
    metrics: pd.DataFrame | None
    scores: Scores | None
    forecasts: tuple[ForecastInput, ...]
    benchmark: BenchmarkInput | None
    embeddings: Embeddings | None
    triggers: Mapping[str, Mapping[str, float]]
    split: pd.Timestamp | None  # end of training data, from the config's `until`
    width: int | None  # embedding width D, from the config or metrics
    episodes: pd.DataFrame = field(default_factory=pd.DataFrame)
    attribution: pd.DataFrame = field(default_factory=pd.DataFrame)
    max_series_sensors: int = 60


def _labels(ctx: Context) -> pd.DataFrame:
    if ctx.site is None:
        return pd.DataFrame(columns=["start", "end", "kind", "sensors", "category"])
    return ctx.site.labels


def _events_for(labels: pd.DataFrame, sensor_id: str) -> pd.DataFrame:
    if labels.empty:
        return labels
    names = labels["sensors"].fillna("").astype(str)
    on = names.eq("") | names.map(lambda s: sensor_id in s.split(";"))
    return labels[on.to_numpy()]


# ----------------------------------------------------------------------------- site
def site_section(ctx: Context) -> Section:
    sec = Section(
        "site",
        "Site and sensors",
        "Where each instrument is: plan view (x, y) and a section (elevation against distance "
        "along the site's main axis), coloured by kind; the table lists every sensor's record.",
    )
    if ctx.site is None:
        sec.skipped = "no site folder given (pass --site SITE)"
        return sec
    sensors = ctx.site.sensors
    if sensors.empty:
        sec.skipped = "the site has no sensors"
        return sec
    sec.body.append(
        figure_html(
            plots.site_plan(sensors),
            "Plan view; labels are sensor ids (borehole names on sites of more than 40 sensors).",
            "plan view of sensors",
        )
    )
    sec.body.append(
        figure_html(
            plots.depth_section(sensors),
            "Section; grey bars join the sensors of one borehole.",
            "depth section of sensors",
        )
    )
    sec.body.append("<h3>Sensors</h3>" + table_html(sensor_table(ctx)))
    return sec


def sensor_table(ctx: Context) -> pd.DataFrame:
    assert ctx.site is not None
    site = ctx.site
    r = site.readings
    ok = r["quality"].eq(Quality.OK.value)
    per = r.groupby("sensor_id", sort=False)
    stats = pd.DataFrame(
        {
            "readings": per.size(),
            "first": per["timestamp"].min(),
            "last": per["timestamp"].max(),
            "flagged": (~ok).groupby(r["sensor_id"], sort=False).sum(),
        }
    )
    out = site.sensors[["id", "kind", "unit", "x", "y", "z", "group"]].copy()
    out = out.join(stats, on="id")
    out["readings"] = out["readings"].fillna(0).astype(int)
    out["flagged"] = out["flagged"].fillna(0).astype(int)
    out["triggers"] = [
        ", ".join(f"{k} {v:g}" for k, v in ctx.triggers.get(str(s), {}).items()) for s in out["id"]
    ]
    return out.rename(
        columns={"x": "x (m)", "y": "y (m)", "z": "z (m)", "flagged": "flagged (not ok)"}
    )


# ----------------------------------------------------------------------------- alarms
def alarm_section(ctx: Context) -> Section:
    sec = Section(
        "alarms",
        "Anomaly score and alarms",
        "The site's anomaly score over time (higher = more anomalous) on its alarm state: "
        "green, amber, red; hatched spans are labelled events, the dashed line is where "
        "training data ends — alarms after it are the ones that count.",
    )
    if ctx.scores is None:
        sec.skipped = "no scores file (run `geojepa detect RUN SITE --out RUN/scores.csv`)"
        return sec
    t = ctx.scores.table
    fig = plots.score_timeline(
        plots.naive_utc(t["timestamp"]),
        t["score"].to_numpy(),
        t["alarm"].to_numpy(),
        events=_labels(ctx),
        split=ctx.split,
    )
    sec.body.append(
        figure_html(
            fig, f"{len(t)} scored times from {ctx.scores.path.name}.", "anomaly score timeline"
        )
    )
    sec.body.append(f'<p class="note">{esc(state_shares(t, ctx.split))}</p>')
    return sec


def state_shares(table: pd.DataFrame, split: pd.Timestamp | None) -> str:
    """Time spent in each alarm state, saying which times it counts: after training data
    ends and in the training period when that end is known, else every scored time. Times
    without a score (an empty alarm cell) count in no state."""
    scored = table[table["alarm"] != ""]

    def shares(part: pd.DataFrame) -> str:
        counts = part["alarm"].value_counts()
        return (
            ", ".join(
                f"{lvl} {counts.get(lvl, 0) / len(part) * 100:.1f} %"
                for lvl in ("green", "amber", "red")
            )
            + f" of {len(part)} scored times"
        )

    if split is None:
        parts = [("every scored time", scored)]
    else:
        after = scored["timestamp"] >= split
        parts = [
            ("after training data ends", scored[after]),
            ("in the training period", scored[~after]),
        ]
    text = "Time spent in each state, " + "; ".join(
        f"{name}: {shares(part)}" for name, part in parts if len(part)
    )
    if scored.empty:
        text = "No time has a score"
    unscored = len(table) - len(scored)
    if unscored:
        text += f" ({unscored} times without a score are not counted)"
    return text + "."


def attribution_section(ctx: Context, match: analysis.EventMatch | None) -> Section:
    sec = Section(
        "attribution",
        "Which gauge: alarm attribution",
        "Each alarm (a run of amber/red times) with the sensors ranked highest when it was "
        "raised and their share of its score over its whole duration; a large share on one "
        "gauge points at that gauge (a fault, or a local movement).",
    )
    if ctx.scores is None:
        sec.skipped = "no scores file"
        return sec
    eps = ctx.episodes
    if eps.empty:
        sec.skipped = "no amber or red alarm in the scored period"
        return sec
    att = ctx.attribution
    labels = _labels(ctx).reset_index(drop=True)
    rows = []
    for ep in eps.to_dict("records"):
        top = att[att["episode"] == ep["episode"]] if len(att) else att
        who = ", ".join(
            f"{r['sensor_id']} {float(r['share']) * 100:.0f} %"
            for r in top.head(3).to_dict("records")
        )
        hits = match.episode_events.get(int(ep["episode"]), []) if match else []
        ev = "; ".join(
            f"{labels['kind'].iloc[i]} ({labels['sensors'].iloc[i] or 'all'})" for i in hits
        )
        rows.append(
            {
                "#": int(ep["episode"]),
                "level": pill(str(ep["level"])),
                "start (UTC)": ep["start"],
                "last in alarm (UTC)": ep["last"],  # inclusive: `end` is the next time
                "period": _period(ctx, ep),
                "peak score": float(ep["peak_score"]),
                "named at onset": _onset_sensors(ctx.scores, ep["start"]),
                "share of the alarm's score": who or "(no per-sensor scores)",
                "labelled event overlapped": ev if match else "",
            }
        )
    table = pd.DataFrame(rows)
    if match is None or labels.empty:
        table = table.drop(columns=["labelled event overlapped"])
    if ctx.split is None:
        table = table.drop(columns=["period"])
    sec.body.append(table_html(table, raw_columns=["level"], max_rows=200))
    if att.empty:
        sec.body.append(
            '<p class="note">The scores file has no score:&lt;sensor&gt; columns, so '
            "alarms cannot be attributed to sensors.</p>"
        )
        return sec
    order = (
        eps.assign(_r=eps["level"].map(analysis.LEVEL_RANK))
        .sort_values(["_r", "peak_score"], ascending=False, kind="stable")["episode"]
        .tolist()
    )
    shown = order[:6]
    label = {
        int(
            e["episode"]
        ): f"#{e['episode']} {e['level']} from {pd.Timestamp(e['start']):%Y-%m-%d %H:%M}"
        for e in eps.to_dict("records")
    }
    position = {e: k for k, e in enumerate(shown)}
    bars = att[att["episode"].isin(shown)].copy()
    bars["_pos"] = bars["episode"].map(position)
    bars = bars.sort_values(["_pos", "share"], ascending=[True, False], kind="stable")
    bars["episode"] = bars["episode"].map(label)
    sec.body.append(
        figure_html(
            plots.attribution_bars(bars, max_episodes=6),
            f"Share of each alarm's score per sensor, for the {len(shown)} "
            "strongest alarms (red first).",
            "alarm attribution bar charts",
        )
    )
    return sec


def _period(ctx: Context, episode: Mapping[Any, Any]) -> str:
    """ "after training" for an alarm with a time at or after the end of training data
    (counted in the header's "after training" figures), else "training"."""
    if ctx.split is None:
        return ""
    return "after training" if episode["end"] > ctx.split else "training"


def _onset_sensors(scores: Scores, start: pd.Timestamp) -> str:
    """The sensors `geojepa detect` and the edge scorer name for an alarm: ranked by their
    score at its onset (shared code: `geojepa.alarms.attribute`)."""
    from geojepa.alarms import attribute

    per = scores.per_sensor
    if per.shape[1] == 0:
        return ""
    row = np.flatnonzero((scores.table["timestamp"] == start).to_numpy())
    if len(row) == 0:
        return ""
    return ", ".join(attribute(per.iloc[int(row[0])].to_numpy(dtype=float), list(per.columns), 3))


# ----------------------------------------------------------------------------- series
def series_section(ctx: Context) -> Section:
    sec = Section(
        "series",
        "Sensor time series",
        "Readings per sensor, grouped by kind, in the sensor's unit: dashed horizontal lines "
        "are trigger levels, amber/red shading marks alarms that sensor is held responsible for "
        "(the largest share of the alarm's score, or at least a fifth of it), hatching marks "
        "labelled events; the grey strip at the bottom is the sensor's own anomaly score, on "
        "one scale for every sensor.",
    )
    if ctx.site is None or ctx.site.readings.empty:
        sec.skipped = "no site readings"
        return sec
    site = ctx.site
    sensors = site.sensors
    labels = _labels(ctx)
    held = analysis.responsible(ctx.attribution)
    attributed = set(held["sensor_id"]) if len(held) else set()
    with_events = {
        s
        for names in labels.get("sensors", pd.Series([], dtype=str))
        for s in str(names).split(";")
        if s
    }
    ids = list(sensors["id"])
    ranked = sorted(ids, key=lambda s: (s not in attributed, s not in with_events))
    chosen = set(ranked[: ctx.max_series_sensors])
    if len(ids) > len(chosen):
        sec.body.append(
            f'<p class="note">Showing {len(chosen)} of {len(ids)} sensors: those with attributed '
            "alarms or labelled events first.</p>"
        )
    readings = site.readings
    usable = readings[np.isfinite(readings["value"])]
    by_sensor = {str(k): g for k, g in usable.groupby("sensor_id", sort=False)}
    scores = ctx.scores
    score_top = None
    if scores is not None and scores.per_sensor.shape[1]:
        top = float(np.nanmax(scores.per_sensor.to_numpy(dtype=float), initial=0.0))
        score_top = top if top > 0 else None
    for kind, grp in sensors.groupby("kind", sort=True):
        sids = [str(s) for s in grp["id"] if s in chosen]
        for part, start in enumerate(range(0, len(sids), MAX_PANELS_PER_FIGURE)):
            panels = [
                _panel(ctx, sid, by_sensor, scores, labels)
                for sid in sids[start : start + MAX_PANELS_PER_FIGURE]
            ]
            n_parts = -(-len(sids) // MAX_PANELS_PER_FIGURE)
            title = f"{kind}" + (f" ({part + 1}/{n_parts})" if n_parts > 1 else "")
            fig = plots.sensor_series(panels, split=ctx.split, score_top=score_top)
            sec.body.append(f"<h3>{esc(title)}</h3>")
            sec.body.append(
                figure_html(fig, f"{len(panels)} {kind} sensor(s).", f"{kind} time series")
            )
    return sec


def _panel(
    ctx: Context,
    sid: str,
    by_sensor: Mapping[str, pd.DataFrame],
    scores: Scores | None,
    labels: pd.DataFrame,
) -> plots.SensorPanel:
    assert ctx.site is not None
    row = ctx.site.sensors.set_index("id").loc[sid]
    g = by_sensor.get(sid)
    times = g["timestamp"] if g is not None else pd.Series([], dtype="datetime64[ns, UTC]")
    values = g["value"].to_numpy() if g is not None else np.array([])
    score_t = score_v = None
    alarms = None
    if scores is not None and sid in scores.per_sensor.columns:
        score_t = scores.table["timestamp"]
        score_v = scores.per_sensor[sid].to_numpy()
    if len(ctx.attribution):
        held = analysis.responsible(ctx.attribution)
        eps = set(held.loc[held["sensor_id"] == sid, "episode"])
        alarms = ctx.episodes[ctx.episodes["episode"].isin(eps)]
    return plots.SensorPanel(
        sensor_id=sid,
        unit=str(row["unit"]),
        times=np.asarray(plots.naive_utc(times)),
        values=values,
        triggers=ctx.triggers.get(sid) or None,
        score_times=None if score_t is None else plots.naive_utc(score_t),
        score=score_v,
        alarms=alarms,
        events=_events_for(labels, sid),
    )


# ----------------------------------------------------------------------------- benchmark
def benchmark_section(ctx: Context) -> Section:
    sec = Section(
        "benchmark",
        "Benchmark",
        "GeoJEPA beside every baseline on the same time-ordered splits (higher AUC-PR and F1 "
        "are better; fewer false alarms per month are better), as the benchmark wrote it.",
    )
    b = ctx.benchmark
    if b is None:
        sec.skipped = "no benchmark file (run `geojepa benchmark` and pass --benchmark FILE)"
        return sec
    body = markdown_html(b.markdown) if b.markdown is not None else json_tables(b.data)
    sec.body.append(body)
    sec.body.append(f'<p class="note">From {esc(b.path.name)}.</p>')
    return sec


# ----------------------------------------------------------------------------- training
def training_section(ctx: Context) -> Section:
    sec = Section(
        "training",
        "Training and collapse checks",
        "Loss and learning rate per optimiser step, and the collapse measures on a fixed "
        "validation set: RankMe and LiDAR should stay well above 0.3·D and the embedding std "
        "above zero; a fall toward 1 or 0 means the representations collapsed.",
    )
    m = ctx.metrics
    if m is None:
        sec.skipped = "no metrics.jsonl in the run folder"
        return sec
    sec.body.append(
        figure_html(
            plots.training_curves(m), f"{len(m)} logged steps.", "training loss and learning rate"
        )
    )
    cm = analysis.collapse_columns(m)
    if cm.shape[1] > 1:
        sec.body.append(
            figure_html(
                plots.collapse_metrics(cm, width=ctx.width),
                "Collapse measures on the validation set.",
                "collapse metrics",
            )
        )
        last = {
            c: float(cm[c].dropna().iloc[-1])
            for c in cm.columns
            if c != "step" and cm[c].notna().any()
        }
        text = ", ".join(f"{k} {v:.3g}" for k, v in last.items())
        if ctx.width and "rankme" in last:
            text += f" (RankMe = {last['rankme'] / ctx.width:.2f}·D, D = {ctx.width})"
        sec.body.append(f'<p class="note">Last values: {esc(text)}.</p>')
    else:
        sec.body.append(
            '<p class="note">No collapse measures (RankMe, LiDAR, std) were logged.</p>'
        )
    return sec


# ----------------------------------------------------------------------------- embeddings
def embedding_section(ctx: Context) -> Section:
    sec = Section(
        "embeddings",
        "Embedding projection",
        "Each dot is one window's embedding projected on its two main axes (PCA); colours show "
        "its start time and season. Smooth drifts follow slow site changes, separate clusters "
        "are regimes (wet and dry seasons, load stages); isolated dots are odd windows.",
    )
    e = ctx.embeddings
    if e is None:
        sec.skipped = "no embeddings file (run `geojepa embed RUN SITE --out RUN/embeddings.npz`)"
        return sec
    proj = analysis.pca_2d(e.vectors)
    fig = plots.embedding_projection(
        proj.points, plots.naive_utc(e.times), explained=proj.explained
    )
    sec.body.append(
        figure_html(
            fig,
            f"{e.vectors.shape[0]} windows, D = {e.vectors.shape[1]}, from {e.path.name}.",
            "PCA projection of window embeddings",
        )
    )
    return sec
