"""`build_report`: one self-contained HTML page from a run folder and a site folder.

The page opens with the site's name, period and headline numbers, then a table of contents
and one section per piece of evidence (sensors, alarms, attribution, series, forecasts,
benchmark, training, embeddings, run details). Each section is drawn from the files that
exist; a missing piece leaves a one-line note in its place, so a run without scores, or
with no site, still gives a report.

Guarantees: the output is written atomically (whole or not at all); it references nothing
outside itself; bad input files raise `InputError` naming the file and line; labelled
events are shown and counted against alarms already raised, never used to set anything.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from geojepa import __version__
from geojepa.atomic import atomic_path
from geojepa.errors import InputError
from geojepa.report import analysis, artifacts, inputs
from geojepa.report.forecasts import forecast_section
from geojepa.report.html import Section, esc, page, table_html
from geojepa.report.sections import (
    Context,
    alarm_section,
    attribution_section,
    benchmark_section,
    embedding_section,
    series_section,
    site_section,
    training_section,
)
from geojepa.site import Site

log = logging.getLogger(__name__)

PathLike = str | Path
Forecasts = PathLike | Sequence[PathLike] | Mapping[str, PathLike | Sequence[PathLike]]

WIDTH_KEYS: tuple[str, ...] = ("embed_dim", "d_model", "width", "dim", "embed_width")


def build_report(
    run_dir: PathLike,
    site_dir: PathLike | None,
    out_path: PathLike,
    *,
    scores: PathLike | None = None,
    forecasts: Forecasts | None = None,
    benchmark: PathLike | None = None,
    embeddings: PathLike | None = None,
    max_series_sensors: int = 60,
) -> Path:
    """Write the HTML report of `run_dir` on the site at `site_dir` to `out_path`.

    Explicit files override the run folder's defaults (``scores.csv``, ``forecast*.csv``
    and ``forecasts/*.csv``, ``benchmark.md``/``.json``, ``embeddings.*``). `forecasts`
    may map target sensor ids to a file or to several (each is drawn). With `site_dir`
    None, the site named in the run's configuration (``site``/``sites``) is used when it
    exists, else site sections are skipped. Returns the path written.
    """
    run = Path(run_dir)
    if not run.is_dir():
        raise InputError(
            "not a run folder", file=run, hint="pass the folder `geojepa pretrain --run RUN` wrote"
        )
    config = inputs.read_config(run / "config.yaml")
    site_path = Path(site_dir) if site_dir is not None else site_from_config(config, run)
    site = Site.load(site_path) if site_path is not None else None
    known = tuple(str(s) for s in site.sensors["id"]) if site is not None else ()

    metrics = inputs.read_metrics(run / "metrics.jsonl")
    score_path = Path(scores) if scores is not None else run / "scores.csv"
    if scores is not None and not score_path.is_file():
        raise InputError("no such scores file", file=score_path, hint="check --scores")
    score_data = inputs.read_scores(score_path)
    fcs = tuple(_read_forecasts(run, forecasts, known))
    bench_path = Path(benchmark) if benchmark is not None else artifacts.find_benchmark(run)
    bench = artifacts.read_benchmark(bench_path) if bench_path is not None else None
    emb_path = Path(embeddings) if embeddings is not None else artifacts.find_embeddings(run)
    emb = artifacts.read_embeddings(emb_path) if emb_path is not None else None
    triggers = _triggers(site, run)

    meta, meta_note = inputs.read_run_meta(run / "checkpoint.pt")
    found = (config, metrics, score_data, bench, emb, meta, meta_note)
    if all(x is None for x in found) and not fcs and site is not None:
        log.warning("%s holds no run files: only the site's sections are drawn", run)
    elif all(x is None for x in found) and not fcs:
        raise InputError(
            "the folder holds nothing a report shows (no checkpoint.pt, config.yaml, "
            "metrics.jsonl, scores.csv, forecasts, benchmark or embeddings)",
            file=run,
            hint="pass a run folder written by `geojepa pretrain`, or the files with "
            "--scores/--forecast/--benchmark/--embeddings",
        )
    notes: list[str] = [meta_note] if meta_note else []
    split = meta.train_end if meta is not None and meta.train_end is not None else _split(config)
    width = _width(config, metrics) or (meta.width if meta is not None else None)
    episodes = pd.DataFrame()
    att = pd.DataFrame()
    if score_data is not None:
        episodes = analysis.alarm_episodes(score_data.table, score_data.interval)
        att = analysis.attribution(score_data.per_sensor, score_data.table, episodes)
        unknown = sorted(set(score_data.per_sensor.columns) - set(known)) if site else []
        if unknown:
            notes.append(f"scores name sensors not in the site: {', '.join(unknown[:10])}")
    ctx = Context(
        site=site,
        config=config,
        metrics=metrics,
        scores=score_data,
        forecasts=fcs,
        benchmark=bench,
        embeddings=emb,
        triggers=triggers,
        split=split,
        width=width,
        episodes=episodes,
        attribution=att,
        max_series_sensors=max_series_sensors,
    )
    match = _match(ctx)
    sections = [
        site_section(ctx),
        alarm_section(ctx),
        attribution_section(ctx, match),
        series_section(ctx),
        forecast_section(ctx),
        benchmark_section(ctx),
        training_section(ctx),
        embedding_section(ctx),
    ]
    sections.append(run_section(ctx, run, site_path, sections, notes, match))
    for s in sections:
        if s.skipped:
            log.info("report: %s skipped: %s", s.title, s.skipped)
    name = site.name if site is not None else run.name
    html = page(
        title=f"{name} — GeoJEPA monitoring report",
        subtitle=_subtitle(ctx, run),
        cards=headline(ctx, match),
        sections=sections,
        footer=f"GeoJEPA {__version__} · generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC · "
        "times are UTC · self-contained page: no external resources.",
    )
    out = Path(out_path)
    with atomic_path(out) as tmp:
        tmp.write_text(html, encoding="utf-8")
        tmp.chmod(0o644)  # a page to share, not a private temporary file
    log.info("report written to %s (%.1f MB)", out, out.stat().st_size / 1e6)
    return out


def site_from_config(config: Mapping[str, Any] | None, run: Path) -> Path | None:
    """The site folder named in a run's configuration (``site`` or first of ``sites``)."""
    value = inputs.find_key(config or {}, ("site", "sites", "site_dir", "site_dirs"))
    if isinstance(value, list | tuple) and value:
        value = value[0]
    if not isinstance(value, str):
        return None
    for base in (Path.cwd(), run, run.parent):
        p = (base / value) if not Path(value).is_absolute() else Path(value)
        if (p / "site.json").is_file():
            return p
    return None


def _read_forecasts(
    run: Path, given: Forecasts | None, known: tuple[str, ...]
) -> list[artifacts.ForecastInput]:
    if given is None:
        return [artifacts.read_forecast(p, None, known) for p in artifacts.find_forecasts(run)]
    if isinstance(given, Mapping):
        return [
            artifacts.read_forecast(Path(p), str(s), known)
            for s, ps in given.items()
            for p in ([ps] if isinstance(ps, str | Path) else ps)
        ]
    if isinstance(given, str | Path):
        return [artifacts.read_forecast(Path(given), None, known)]
    return [artifacts.read_forecast(Path(p), None, known) for p in given]


def _triggers(site: Site | None, run: Path) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    if site is not None:
        for sid, meta in zip(site.sensors["id"], site.sensors["meta"], strict=True):
            levels = inputs.triggers_from_meta(str(meta))
            if levels:
                out[str(sid)] = levels
    for sid, levels in inputs.read_triggers(run / "triggers.json").items():
        out[sid] = {**out.get(sid, {}), **levels}
    return out


def _split(config: Mapping[str, Any] | None) -> pd.Timestamp | None:
    until = inputs.find_key(config or {}, ("until",))
    if until is None:
        return None
    try:
        t = pd.Timestamp(str(until))
    except ValueError:
        log.warning("config `until` %r is not a time; the training split is not drawn", until)
        return None
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def _width(config: Mapping[str, Any] | None, metrics: pd.DataFrame | None) -> int | None:
    model = (config or {}).get("model")
    value = inputs.find_key(model if isinstance(model, Mapping) else (config or {}), WIDTH_KEYS)
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if metrics is not None:
        v = analysis.last_value(metrics, ("dim", "val/dim", "width"))
        if v is not None and v > 0:
            return int(v)
    return None


def period_label(ctx: Context) -> str:
    """What the header's alarm figures count: the scored times after training data ends
    when that end is known, else every scored time (said so, never "after training")."""
    return "after training" if ctx.split is not None else "all scored times"


def _scored_period(ctx: Context) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    if ctx.scores is None or ctx.scores.table.empty:
        return None
    t = ctx.scores.table["timestamp"]
    lo, hi = t.iloc[0], t.iloc[-1] + ctx.scores.interval
    if ctx.split is not None:
        lo = max(lo, ctx.split)
    return (lo, hi) if hi > lo else None


def _match(ctx: Context) -> analysis.EventMatch | None:
    period = _scored_period(ctx)
    if period is None or ctx.site is None or ctx.site.labels.empty:
        return None
    return analysis.match_events(ctx.episodes, ctx.site.labels, period)


def _subtitle(ctx: Context, run: Path) -> str:
    parts = []
    if ctx.site is not None:
        span = ctx.site.span()
        if span is not None:
            parts.append(f"{span[0]:%Y-%m-%d} → {span[1]:%Y-%m-%d} (UTC)")
    parts.append(f"run {run.resolve().name}")
    if ctx.split is not None:
        parts.append(f"trained on data before {ctx.split:%Y-%m-%d %H:%M}")
    return " · ".join(parts)


def alarm_share(ctx: Context) -> float | None:
    """Fraction of scored times after training data ends (of all scored times when that end
    is unknown) that are amber or red: the price of the events caught (a site always in
    alarm catches every event). Times without a score count neither way."""
    period = _scored_period(ctx)
    if ctx.scores is None or period is None:
        return None
    t = ctx.scores.table
    after = t[(t["timestamp"] >= period[0]) & (t["timestamp"] < period[1])]
    after = after[after["alarm"] != ""]  # times without a score have no level
    if after.empty:
        return None
    return float(after["alarm"].isin(("amber", "red")).mean())


def headline(ctx: Context, match: analysis.EventMatch | None) -> list[tuple[str, str]]:
    """The header's (label, value) cards, from whatever the run holds.

    Every alarm figure says the period it counts (`period_label`), and they all count the
    same one: alarms, time in alarm, events caught and false alarms after training data
    ends (every scored time when that end is unknown); alarms raised in the training
    period get a card of their own."""
    cards: list[tuple[str, str]] = []
    when = period_label(ctx)
    if ctx.site is not None:
        kinds = ctx.site.sensors["kind"].nunique()
        cards.append((f"sensors · {kinds} kinds", str(len(ctx.site.sensors))))
        cards.append(("readings", f"{len(ctx.site.readings):,}".replace(",", " ")))
        cards.append(("labelled events", str(len(ctx.site.labels))))
    if ctx.metrics is not None:
        m = ctx.metrics
        cards.append(("training steps", f"{int(m['step'].max()):,}".replace(",", " ")))
        loss = analysis.last_value(m, ("loss", "train/loss"))
        if loss is not None:
            cards.append(("final loss", f"{loss:.3g}"))
        rank = analysis.last_value(m, analysis.COLLAPSE_NAMES["rankme"])
        if rank is not None:
            cards.append(("RankMe", f"{rank:.1f}" + (f" / {ctx.width}" if ctx.width else "")))
    if ctx.scores is not None:
        period = _scored_period(ctx)
        eps = ctx.episodes
        if period is not None:
            counted = analysis.episodes_in(eps, period)
        else:  # nothing scored after training (or a one-row table without a split)
            counted = eps.iloc[:0] if ctx.split is not None else eps
        cards.append((f"alarms red · amber ({when})", _red_amber(counted)))
        if ctx.split is not None and len(eps):
            training = eps[~eps.index.isin(counted.index)]
            if len(training):
                cards.append(("alarms red · amber (training period)", _red_amber(training)))
        share = alarm_share(ctx)
        if share is not None:
            cards.append((f"time in alarm ({when})", f"{share * 100:.0f} %"))
    if match is not None:
        cards.append((f"events caught ({when})", f"{match.caught} / {match.events}"))
        cards.append((f"false alarms / month ({when})", f"{match.false_alarms_per_month:.2f}"))
    return cards


def _red_amber(episodes: pd.DataFrame) -> str:
    if episodes.empty:
        return "0 · 0"
    level = episodes["level"]
    return f"{int((level == 'red').sum())} · {int((level == 'amber').sum())}"


def run_section(
    ctx: Context,
    run: Path,
    site_path: Path | None,
    sections: Sequence[Section],
    notes: list[str],
    match: analysis.EventMatch | None,
) -> Section:
    sec = Section(
        "run",
        "Run details",
        "What this page was drawn from: the run's files, its "
        "configuration and how the headline numbers are counted.",
    )
    files = sorted(p for p in run.iterdir() if p.is_file())
    listing = pd.DataFrame(
        {
            "file": [p.name for p in files],
            "size (kB)": [round(p.stat().st_size / 1024, 1) for p in files],
        }
    )
    sec.body.append(
        f"<p>Run folder <code>{esc(run.name)}</code>"
        + (f", site folder <code>{esc(site_path.name)}</code>" if site_path else "")
        + ".</p>"
    )
    if len(listing):
        sec.body.append(table_html(listing))
    if ctx.config is not None:
        import yaml

        text = yaml.safe_dump(dict(ctx.config), sort_keys=False, default_flow_style=False)
        sec.body.append(
            f"<details><summary>Resolved configuration</summary><pre>{esc(text)}</pre></details>"
        )
    if match is not None:
        sec.body.append(
            '<p class="note">Events caught: labelled events overlapping the scored period '
            + ("after training data ends" if ctx.split is not None else "(every scored time)")
            + f" ({match.months:.1f} months) that an amber or red alarm overlaps, "
            f"with no point adjustment; false alarms: alarms there that overlap no labelled event "
            f"({match.false_alarms} of {match.alarms}).</p>"
        )
    skipped = [f"{s.title}: {s.skipped}" for s in sections if s.skipped]
    for line in skipped + notes:
        sec.body.append(f'<p class="note">{esc(line)}</p>')
    return sec
