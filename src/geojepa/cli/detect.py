"""Verbs of group detect (DESIGN §6); each is a thin layer over the library.

``geojepa detect RUN SITE --out scores.csv [--from TIME] [--to TIME] [--device D]`` writes
``timestamp,score,alarm,score:<sensor_id>...``, one row per grid time in the range, with
thresholds calibrated on the run's training period only (`geojepa.detect.detect_run`).

``geojepa benchmark --out DIR [--scenarios ...] [--seeds ...] [--intensities ...]
[--detectors ...] [--source simulated|gw-challenge] [--quick]`` runs every detector (by
registry name; the random score is always added) under the §5 protocol and writes
``benchmark.json`` and ``benchmark.md`` into DIR.
"""

from __future__ import annotations

from pathlib import Path

import typer

from geojepa.cli._app import app, check_score_options
from geojepa.devices import DEVICE_HELP
from geojepa.errors import UsageError

SCENARIOS = ("slope", "embankment", "dam")
SOURCES = ("simulated", "gw-challenge")


def _split(text: str, option: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise UsageError(f"{option} is empty", hint=f"give a comma-separated list to {option}")
    return items


def _numbers(text: str, option: str, kind: type[float] | type[int]) -> list[float] | list[int]:
    out = []
    for item in _split(text, option):
        try:
            out.append(kind(item))
        except ValueError:
            raise UsageError(
                f"{option}: {item!r} is not a{'n integer' if kind is int else ' number'}",
                hint=f"e.g. {option} " + ("0,1,2" if kind is int else "0.5,1,2"),
            ) from None
    return out


@app.command("benchmark")
def benchmark(
    out: Path = typer.Option(..., "--out", help="Folder for benchmark.json and benchmark.md."),
    scenarios: str = typer.Option(
        ",".join(SCENARIOS), "--scenarios", help="Simulated scenarios, comma-separated."
    ),
    seeds: str = typer.Option("0,1,2", "--seeds", help="Seeds, comma-separated."),
    intensities: str = typer.Option(
        "0.5,1,2", "--intensities", help="Event intensities (subtle to obvious), comma-separated."
    ),
    detectors: str | None = typer.Option(
        None, "--detectors", help="Detector names, comma-separated (default: all registered)."
    ),
    source: str = typer.Option(
        "simulated", "--source", help="simulated, or gw-challenge (real wells, faults injected)."
    ),
    data_root: Path | None = typer.Option(
        None, "--data-root", help="Folder holding gw-challenge (default: ../shared/data)."
    ),
    sensors: int = typer.Option(16, "--sensors", min=1, help="Sensors per simulated site."),
    days: int = typer.Option(120, "--days", min=2, help="Days per simulated site."),
    freq: str = typer.Option("1h", "--freq", help="Reading interval of simulated sites."),
    event_rate: float = typer.Option(
        3.0, "--event-rate", min=0.0, help="Multiplier of the simulator's event counts."
    ),
    threshold: str = typer.Option("quantile", "--threshold", help="quantile or pot."),
    train_fraction: float = typer.Option(
        0.5, "--train-fraction", min=0.05, max=0.95, help="Share of time used for training."
    ),
    quick: bool = typer.Option(
        False, "--quick", help="A small smoke run: 6 sensors, 40 days, one seed and intensity."
    ),
) -> None:
    """Run the detectors and baselines under the honest protocol; write JSON and Markdown."""
    from geojepa.detectors import available_detectors
    from geojepa.evaluate import Case, Protocol, run_benchmark, write_benchmark

    if source not in SOURCES:
        raise UsageError(f"unknown --source {source!r}", hint="use one of " + ", ".join(SOURCES))
    if threshold not in ("quantile", "pot"):
        raise UsageError(f"unknown --threshold {threshold!r}", hint="use quantile or pot")
    known = available_detectors()
    defaults = [d for d in available_detectors(opt_in=False) if d != "random"]
    names = _split(detectors, "--detectors") if detectors else defaults
    unknown = [d for d in names if d not in known]
    if unknown:
        raise UsageError(f"unknown detector {unknown[0]!r}", hint="choose from " + ", ".join(known))
    seed_list = [int(s) for s in _numbers(seeds, "--seeds", int)]
    levels = [float(i) for i in _numbers(intensities, "--intensities", float)]
    if any(i < 0 for i in levels):
        raise UsageError("--intensities must be >= 0")
    if quick:
        sensors, days, seed_list, levels = min(sensors, 6), min(days, 40), seed_list[:1], [1.0]
    protocol = Protocol(train_fraction=train_fraction, threshold=threshold)
    if source == "simulated":
        from geojepa.evaluate.sites import simulated_builder

        scen = _split(scenarios, "--scenarios")
        bad = [s for s in scen if s not in SCENARIOS]
        if bad:
            raise UsageError(
                f"unknown scenario {bad[0]!r}", hint="use one of " + ", ".join(SCENARIOS)
            )
        cases = [Case(s, i, k) for s in scen for i in levels for k in seed_list]
        build = simulated_builder(n_sensors=sensors, days=days, freq=freq, event_rate=event_rate)
        title = f"Detectors on simulated sites ({sensors} sensors, {days} days, {freq})"
        meta = {
            "source": source,
            "sensors": sensors,
            "days": days,
            "freq": freq,
            "event_rate": event_rate,
        }
    else:
        from geojepa.evaluate.sites import gw_builder, gw_cases

        cases = gw_cases(data_root, levels, seed_list)
        build = gw_builder(data_root, train_fraction=train_fraction)
        title = "Detectors on gw-challenge heads with injected faults"
        meta = {"source": source}
    result = run_benchmark(cases, names, build, protocol)
    result.meta.update(meta)
    write_benchmark(out, result, title=title)
    typer.echo(f"wrote {out / 'benchmark.json'} and {out / 'benchmark.md'} ({len(cases)} cases)")


@app.command("detect")
def detect(
    run: Path = typer.Argument(..., help="Run folder written by `geojepa pretrain`."),
    site: Path = typer.Argument(..., help="Site folder (the run's sensors, on its grid)."),
    out: Path = typer.Option(..., "--out", help="Scores CSV to write."),
    start: str | None = typer.Option(None, "--from", help="First time to score (ISO 8601)."),
    end: str | None = typer.Option(None, "--to", help="Last time to score (ISO 8601)."),
    recent: int = typer.Option(
        1, "--recent", min=1, help="Patches scored per window (the energy only)."
    ),
    score: str = typer.Option(
        "energy",
        "--score",
        help="energy (the latent prediction error under the mask sweep) or density (the "
        "Mahalanobis distance of each sensor's newest embedding from its training "
        "embeddings). `geojepa export --score` makes the edge scorer score the same.",
    ),
    device: str = typer.Option("auto", "--device", envvar="GEOJEPA_DEVICE", help=DEVICE_HELP),
) -> None:
    """Score every grid time of SITE with RUN's energy (or density); alarms from training-period
    thresholds."""
    from geojepa.detect import detect_run, parse_time

    check_score_options(score, recent)
    from geojepa.edge.score import write_scores_csv
    from geojepa.energy import EnergySpec
    from geojepa.site import Site

    t0, t1 = parse_time(start, "--from"), parse_time(end, "--to")
    if t0 is not None and t1 is not None and t1 < t0:
        raise UsageError("--to is before --from", hint="give --from TIME earlier than --to TIME")
    from geojepa.progress import shown

    with shown():  # the sweep over the site's windows shows its progress
        scores = detect_run(
            run, Site.load(site), t0, t1, spec=EnergySpec(recent=recent), score=score, device=device
        )
    write_scores_csv(scores, out)
    n_alarm = int((scores.level > 0).sum())
    typer.echo(f"wrote {out}: {len(scores.time)} grid times, {n_alarm} in amber or red")
