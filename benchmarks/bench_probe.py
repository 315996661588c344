"""Probes on frozen embeddings over several seeds: GeoJEPA vs a random encoder vs raw features.

Runs `geojepa.evaluate.probes.slope_probe_experiment` (tiny preset, a simulated 16-sensor
slope, a year hourly, pretrained before 70 % of the time) once per seed and prints, per seed
and on average, RankMe as a fraction of the width, the pretraining time, and the test AUC of
the event probe and the next-day-rain probe for the pretrained encoder, a randomly
initialised encoder of the same shape and raw window statistics, with the differences
(pretrained minus random). No timing ratio is claimed: the seconds are for the record.

With `--fusion joint,factorised,per_kind` it repeats all of it for each fusion mode (equal
parameter count) and adds a row of means per mode.

With `--extra-sites K`, K other simulated slopes (their own weather, cut at the same split)
join each pretraining run: the founding note's "do we have enough data?" question.

With `--probe-sites N` the probes pool the windows of N slopes (the probed one and the
first N - 1 extra slopes, whether pretrained on or not): one site's test period holds few
events, so single-site AUCs swing by +-0.2 from seed to seed.

With `--encoder context` the pretrained run's embeddings come from its online (context)
encoder instead of the target encoder that `embed` uses: a diagnostic of how far the
target encoder has moved from its initial weights.

With `--config FILE` the runs take a YAML configuration (as `geojepa pretrain --config`)
instead of the tiny preset; the probe settings (window stride 16, one thread, the seed and
the fusion mode given by `--fusion`) are applied on top; without `--fusion` each run keeps
the configuration's own fusion mode.

Usage: python benchmarks/bench_probe.py [--seeds 0 1 2] [--fusion MODES] [--extra-sites K]
       [--probe-sites N] [--config FILE] [--encoder target|context] [--out DIR]
Writes OUT/probes.json and OUT/probes.md (default OUT: bench-out/probes).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import pandas as pd

from _tables import md_table
from geojepa.config import load_config
from geojepa.evaluate.probes import PROBE_ENCODERS, probe_config, slope_probe_experiment

COLUMNS = (
    "fusion",
    "seed",
    "rankme_fraction",
    "train_seconds",
    "event_auc_jepa",
    "event_auc_random",
    "event_auc_raw",
    "rain_auc_jepa",
    "rain_auc_random",
    "rain_auc_raw",
)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument(
        "--fusion",
        default=None,
        help="comma-separated fusion modes (default: the configuration's own)",
    )
    ap.add_argument(
        "--extra-sites",
        type=int,
        default=0,
        help="other simulated slopes joining the pretraining (cut at the same split)",
    )
    ap.add_argument(
        "--probe-sites",
        type=int,
        default=1,
        help="slopes whose windows the probes pool (the probed one and N - 1 extra slopes)",
    )
    ap.add_argument("--config", type=Path, help="a YAML run configuration (default: tiny)")
    ap.add_argument(
        "--encoder",
        choices=PROBE_ENCODERS,
        default="target",
        help="embed with the target encoder (as `embed` does) or the online context encoder",
    )
    ap.add_argument("--out", type=Path, default=Path("bench-out/probes"))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    base = load_config(args.config)
    fusions = args.fusion.split(",") if args.fusion else [base.model.fusion]
    rows = []
    for fusion in fusions:
        for seed in args.seeds:
            run_dir = args.out / f"run-{fusion}-x{args.extra_sites}-seed{seed}"
            config = probe_config(base, seed, fusion)
            res = slope_probe_experiment(
                run_dir,
                seed=seed,
                config=config,
                extra_sites=args.extra_sites,
                probe_sites=args.probe_sites,
                encoder=args.encoder,
            )
            rows.append({"fusion": fusion, "seed": seed, **res})
    df = pd.DataFrame(rows)
    df["event_gain"] = df["event_auc_jepa"] - df["event_auc_random"]
    df["rain_gain"] = df["rain_auc_jepa"] - df["rain_auc_random"]
    table = df[[*COLUMNS, "event_gain", "rain_gain"]].astype({"seed": str})
    parts = []
    for fusion, part in table.groupby("fusion", sort=False):
        mean = part.drop(columns=["fusion", "seed"]).mean().to_frame().T
        parts += [part, mean.assign(fusion=fusion, seed="mean")[part.columns]]
    shown = pd.concat(parts, ignore_index=True)
    md = md_table(shown, "{:.3f}") + "\n"
    (args.out / "probes.md").write_text(md, encoding="utf-8")
    (args.out / "probes.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    sys.stdout.write(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
