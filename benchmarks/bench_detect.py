"""Cost of each registered detector: fit and score time on one simulated site.

Prints, per detector, fit and score time as the median of 3 repeats and as a ratio to the
robust z-score measured in the same run (timings on a shared machine are noisy: read the
ratios, not the seconds). A GeoJEPA detector's fit includes pretraining its model (set
GEOJEPA_DETECTOR_CACHE to reuse runs). Usage: python benchmarks/bench_detect.py
[--sensors N] [--days D] [--detectors a,b,...]

``--ablations DIR`` instead runs the GeoJEPA ablations through the benchmark harness on one
case (``--scenario``, ``--seed``, intensity 1): the full model, each mask generator removed
in turn, the fusion modes and the reconstruction baseline, all at ``--steps`` steps;
``DIR/benchmark.json`` and ``benchmark.md`` are rewritten after each variant; ``--cases``
takes several ``scenario:seed`` cases instead of one.

``--merge A,B --out DIR`` merges runs split over processes (other seeds, or other detectors
on the same cases; one protocol) into one ``DIR/benchmark.json`` / ``.md``.

``--main DIR`` runs the detection benchmark itself (the harness of ``geojepa benchmark``)
case by case, rewriting ``DIR/benchmark.json`` / ``.md`` after each case so a long run
keeps what it has done: ``--source simulated`` draws the scenarios x intensities x seeds
with ``--inject`` fault kinds (default: drift) put into each test period;
``--source gw-challenge`` runs the real wells with injected faults.

``--jepa-steps N`` sets the pretraining steps of every registered GeoJEPA detector (default
200). ``--family-base DIR`` builds (or reuses) a base run for the ``geojepa_family`` detector and
points it there (``GEOJEPA_DETECTOR_INIT``): the detectors' configuration pretrained for
``--family-steps`` steps on simulated sites that are never cases (``--family-seeds``, each
scenario of ``--scenarios``, intensity 1, no injected fault, the same sensors, days and
event rate as the cases; whole records).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from geojepa.detectors import available_detectors, make_detector
from geojepa.evaluate import select_sensors
from geojepa.frame import to_frame


def overview(summary: list[dict[str, object]], detectors: list[str], levels: list[float]) -> str:
    """Mean AUC-PR and FA / month at recall 0.5 per detector, over scenarios, per intensity."""
    import math

    import numpy as np

    head = "| detector | " + " | ".join(f"AUC-PR i={lv:g} | FA/month@R i={lv:g}" for lv in levels)
    lines = [head + " | AUC-PR all |", "|---|" + "---|---|" * len(levels) + "---|"]
    for det in detectors:
        cells = []
        every = []
        for lv in levels:
            rows = [
                r
                for r in summary
                if r["detector"] == det and r["kind"] == "all" and float(r["intensity"]) == lv  # type: ignore[arg-type]
            ]
            auc = [float(r["auc_pr_mean"]) for r in rows]  # type: ignore[arg-type]
            fa = [float(r["fa_per_month_at_recall_mean"]) for r in rows]  # type: ignore[arg-type]
            fa = [x for x in fa if math.isfinite(x)]
            every += auc
            cells.append(f"{np.mean(auc):.3f}" if auc else "–")
            cells.append(f"{np.mean(fa):.2f}" if fa else "–")
        lines.append(f"| {det} | " + " | ".join(cells) + f" | {np.mean(every):.3f} |")
    return "\n".join(lines) + "\n"


def print_targets(path: str, headline: str) -> None:
    """The targets table of a written benchmark.json, over all groups and per intensity."""
    import json

    from geojepa.evaluate.targets import measure_targets, targets_markdown

    doc = json.load(open(path))
    summary = [
        {k: (float("nan") if v is None else v) for k, v in r.items()} for r in doc["summary"]
    ]
    levels = sorted({float(r["intensity"]) for r in summary}, reverse=True)
    sys.stdout.write(overview(summary, doc["detectors"], levels))
    for level in [None, *levels]:
        rows = measure_targets(summary, headline, doc["detectors"], intensity=level)
        sys.stdout.write(f"\nintensity: {'all' if level is None else level}\n")
        sys.stdout.write(targets_markdown(rows, headline))


def main_benchmark(args: argparse.Namespace) -> None:
    from geojepa.evaluate import Case, Protocol, run_benchmark, write_benchmark
    from geojepa.evaluate.benchmark import BenchmarkResult
    from geojepa.evaluate.sites import gw_builder, gw_cases, simulated_builder

    proto = Protocol()
    seeds = [int(x) for x in args.seeds.split(",")]
    levels = [float(x) for x in args.intensities.split(",")]
    inject = tuple(k for k in args.inject.split(",") if k)
    if args.source == "gw-challenge":
        cases = gw_cases(args.data_root, levels, seeds)
        build = gw_builder(
            args.data_root, with_forcing=args.with_forcing, train_fraction=proto.train_fraction
        )
        meta: dict[str, object] = {"source": "gw-challenge"}
        title = "Detectors on gw-challenge heads with injected faults"
    else:
        cases = [
            Case(sc, lv, s) for lv in levels for sc in args.scenarios.split(",") for s in seeds
        ]
        build = simulated_builder(
            n_sensors=args.sensors,
            days=args.days,
            event_rate=args.event_rate,
            inject=inject,
            train_fraction=proto.train_fraction,
        )
        meta = {
            "source": "simulated",
            "sensors": args.sensors,
            "days": args.days,
            "freq": "1h",
            "event_rate": args.event_rate,
            "injected": list(inject),
        }
        title = "Detectors on simulated sites"
    detectors = args.detectors.split(",") if args.detectors else available_detectors(opt_in=False)
    rows: list[dict[str, object]] = []
    names: list[str] = []
    for i, case in enumerate(cases):
        res = run_benchmark([case], detectors, build, proto, progress=False)
        rows.extend(res.rows)
        names = res.detectors
        result = BenchmarkResult(rows, proto, names)
        result.meta.update({**meta, "cases_done": i + 1, "cases": len(cases)})
        write_benchmark(args.main, result, title=title)
        sys.stdout.write(f"case {i + 1}/{len(cases)} {case}: done\n")
        sys.stdout.flush()


def ablations(
    out: str,
    cases: list[tuple[str, int]],
    steps: int,
    sensors: int,
    days: int,
    response: bool = False,
) -> None:
    """Each variant through the harness; `response`: every variant scored as `detect` scores
    (forcing sensors as context, `geojepa.detectors.response.ResponseOnly`)."""
    from geojepa.detectors import register_detector
    from geojepa.detectors.jepa import JepaEnergy
    from geojepa.detectors.reconstruction import Reconstruction
    from geojepa.evaluate import Case, Protocol, run_benchmark, write_benchmark
    from geojepa.evaluate.benchmark import BenchmarkResult
    from geojepa.evaluate.sites import simulated_builder
    from geojepa.masking import DEFAULT_WEIGHTS

    # the widest questions first (a run cut short keeps them): JEPA vs reconstruction,
    # fusion modes, then each mask generator removed in turn
    variants: dict[str, object] = {"jepa:full": {}, "reconstruction": None}
    variants["jepa:factorised"] = {"fusion": "factorised"}
    variants["jepa:per_kind"] = {"fusion": "per_kind"}
    for gen in DEFAULT_WEIGHTS:
        kept = {k: v for k, v in DEFAULT_WEIGHTS.items() if k != gen}
        variants[f"jepa:no_{gen}"] = {"mask_weights": kept}
    build = simulated_builder(n_sensors=sensors, days=days, inject=("drift",))
    todo = [Case(sc, 1.0, sd) for sc, sd in cases]
    rows: list[dict[str, object]] = []
    names: list[str] = []
    proto = Protocol()
    for name, kw in variants.items():

        def factory(s: int, kw: object = kw) -> object:
            from geojepa.detectors.response import ResponseOnly

            if kw is None:
                det: object = Reconstruction(steps=steps, seed=s)
            else:
                det = JepaEnergy(steps=steps, seed=s, **kw)  # type: ignore[arg-type]
            return ResponseOnly(det) if response else det  # type: ignore[arg-type]

        register_detector(f"ablation/{name}", factory)  # type: ignore[arg-type]
        res = run_benchmark(todo, [f"ablation/{name}"], build, proto, progress=False)
        rows.extend(r for r in res.rows if r["detector"] != "random" or not names)
        names.append(f"ablation/{name}")
        result = BenchmarkResult(rows, proto, [*names, "random"])
        result.meta.update(
            {
                "cases": [f"{sc}:{sd}" for sc, sd in cases],
                "steps": steps,
                "sensors": sensors,
                "days": days,
                "injected": ["drift"],
                "response_only": response,
            }
        )
        label = ", ".join(f"{sc} seed {sd}" for sc, sd in cases)
        write_benchmark(out, result, title=f"GeoJEPA ablations ({label})")
        sys.stdout.write(f"{name}: done\n")
        sys.stdout.flush()


def family_base(args: argparse.Namespace) -> Path:
    """The base run of ``geojepa_family`` in ``args.family_base`` (built when missing)."""
    from geojepa.checkpoint import checkpoint_path
    from geojepa.detectors.jepa import INIT_ENV, detector_config
    from geojepa.evaluate import Case
    from geojepa.evaluate.sites import simulated_builder
    from geojepa.train import pretrain

    run = Path(args.family_base)
    seeds = [int(x) for x in args.family_seeds.split(",")]
    cases = [int(x) for x in args.seeds.split(",")]
    if set(seeds) & set(cases):
        raise SystemExit(f"--family-seeds {seeds} overlap the cases' --seeds {cases}")
    if not checkpoint_path(run).exists():
        build = simulated_builder(
            n_sensors=args.sensors, days=args.days, event_rate=args.event_rate, inject=()
        )
        sites = [build(Case(sc, 1.0, s)) for sc in args.scenarios.split(",") for s in seeds]
        cfg = detector_config(0, args.family_steps)
        sys.stdout.write(f"pretraining the family base on {len(sites)} sites -> {run}\n")
        pretrain(sites, run, cfg, tracking_uri="none", progress=True)
    os.environ[INIT_ENV] = str(run)
    return run


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sensors", type=int, default=16)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--detectors", default=None, help="comma-separated names (default: all)")
    parser.add_argument("--ablations", default=None, help="write the ablation table here")
    parser.add_argument("--scenario", default="slope")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--cases", default=None, help="ablation cases scenario:seed,...")
    parser.add_argument(
        "--response",
        action="store_true",
        help="ablations scored as detect scores: forcing sensors as context",
    )
    parser.add_argument("--main", default=None, help="run the benchmark, write it here")
    parser.add_argument("--source", default="simulated", choices=["simulated", "gw-challenge"])
    parser.add_argument("--data-root", default=None)
    parser.add_argument(
        "--with-forcing",
        action="store_true",
        help="gw-challenge: keep each well's forcing series (rain, temperature, ...) "
        "beside its head",
    )
    parser.add_argument("--scenarios", default="slope,embankment,dam")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--intensities", default="1,0.5")
    parser.add_argument("--event-rate", type=float, default=3.0)
    parser.add_argument("--inject", default="drift", help="fault kinds put in each test period")
    parser.add_argument("--targets", default=None, help="print the targets of a benchmark.json")
    parser.add_argument(
        "--merge",
        default=None,
        help="comma-separated run folders (other seeds or detectors, one protocol) to merge "
        "into --out",
    )
    parser.add_argument("--out", default=None, help="with --merge: the merged run's folder")
    parser.add_argument("--headline", default="geojepa_fused")
    parser.add_argument("--family-base", default=None, help="base run of geojepa_family")
    parser.add_argument("--family-steps", type=int, default=1000)
    parser.add_argument("--family-seeds", default="100,101,102")
    parser.add_argument(
        "--jepa-steps",
        type=int,
        default=None,
        help="pretraining steps of every registered GeoJEPA detector (default: "
        "detectors.jepa.DETECTOR_STEPS)",
    )
    args = parser.parse_args(argv)
    if args.jepa_steps is not None:
        from geojepa.detectors import jepa

        jepa.DETECTOR_STEPS = int(args.jepa_steps)  # read by the registered factories
    if args.family_base:
        family_base(args)
    if args.merge:
        from geojepa.evaluate.benchmark import merge_benchmarks, write_benchmark

        if not args.out:
            parser.error("--merge needs --out")
        merged = merge_benchmarks(args.merge.split(","))
        write_benchmark(args.out, merged, title="Detection benchmark (merged runs)")
        print(f"merged {len(merged.meta['merged'])} runs, {len(merged.rows)} rows -> {args.out}")
        return 0
    if args.targets:
        print_targets(args.targets, args.headline)
        return 0
    if args.main:
        main_benchmark(args)
        return 0
    if args.ablations:
        cases = (
            [(c.split(":")[0], int(c.split(":")[1])) for c in args.cases.split(",")]
            if args.cases
            else [(args.scenario, args.seed)]
        )
        ablations(args.ablations, cases, args.steps, args.sensors, args.days, args.response)
        return 0
    from geojepa.simulate import simulate_site

    site = simulate_site("slope", args.sensors, args.days, "1h", 0).site
    frame = to_frame(site)
    frame, left_out = select_sensors(frame, frame.n_times // 2, 10)  # as the benchmark does
    cells = frame.n_times * frame.n_sensors
    sys.stdout.write(
        f"site: {frame.n_times} rows x {frame.n_sensors} sensors ({len(left_out)} sparse "
        f"ones left out), median of {args.repeats} runs\n"
    )
    results = {}
    names = args.detectors.split(",") if args.detectors else available_detectors(opt_in=False)
    if "robust_z" not in names:
        names = ["robust_z", *names]  # the baseline of the ratios
    for name in names:
        fits, scores = [], []
        for r in range(args.repeats):
            det = make_detector(name, r)
            t0 = time.perf_counter()
            det.fit(frame, frame.n_times // 2)
            t1 = time.perf_counter()
            det.score(frame)
            t2 = time.perf_counter()
            fits.append(t1 - t0)
            scores.append(t2 - t1)
        results[name] = (statistics.median(fits), statistics.median(scores))
    base_fit, base_score = results.get("robust_z", (1.0, 1.0))
    sys.stdout.write(
        f"{'detector':<16} {'fit s':>8} {'score s':>8} {'fit/robust_z':>13} "
        f"{'score/robust_z':>15} {'k cells/s':>10}\n"
    )
    for name, (f, s) in results.items():
        sys.stdout.write(
            f"{name:<16} {f:8.3f} {s:8.3f} {f / base_fit:13.1f} {s / base_score:15.1f} "
            f"{cells / max(s, 1e-9) / 1e3:10.1f}\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
