"""Slope creep: displacement forecasts through accelerating-creep events, GeoJEPA beside the
classic methods (the issue's simulated-slope half of the forecasting target).

The protocol of the forecasting benchmark's slope section
(`geojepa.forecast.simulated.creep_displacement_protocol`): every displacement sensor
(inclinometer, extensometer, GNSS) moved by a labelled accelerating-creep event on the
simulated slopes of `--seeds` (365 days at 1 h, daily means), cutoffs at 50, 70 and 90 % of
each event, displacement 1, 3 and 7 days later. Classic methods: persistence, the linear
trend and Fukuzono's inverse velocity (which gives no displacement after its predicted
failure: `n_nan`). GeoJEPA: heads (ridge, MLP, median MLP) on the frozen features of the
forecasting benchmark's pooled run (`bench_forecast.pool_run`: simulated sites with seeds
>= 100, never evaluated), trained on every displacement sensor of 12 other simulated
slopes (seeds 100-111) with origins every 3 days, plus the same site's other displacement
sensors up to the cutoff; `level_*` rows are the same heads without the encoder;
`--hybrid` adds the same heads as corrections of the linear trend (`hybrid_*`,
`geojepa.forecast.hybrid`). MAE is
pooled over forecasts (as in the forecasting benchmark's slope table) and, per horizon,
given as a ratio to the best classic method; the target is 0.8x.

Usage: python benchmarks/bench_creep.py [--seeds 0 1 2 3 4 5] [--steps 200]
       [--runs bench-out/runs] [--json FILE] [--hybrid]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from _tables import md_table
from bench_forecast import SIM_HEADS, hybrid, level_features, pool_run, sim_site
from geojepa.forecast.evaluate import MethodFactory, classic, summarise
from geojepa.forecast.features import EncoderFeatures
from geojepa.forecast.jepa_protocols import SimContext, daily_frame, sim_methods
from geojepa.forecast.simulated import DISPLACEMENT_KINDS, creep_cases, creep_displacement_protocol

HORIZONS = (1.0, 3.0, 7.0)
CLASSIC = ("persistence", "linear", "fukuzono")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="*", default=list(range(6)))
    ap.add_argument("--pool", type=int, nargs="*", default=list(range(100, 112)))
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--runs", type=Path, default=Path("bench-out/runs"))
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument(
        "--hybrid",
        action="store_true",
        help="add hybrid heads on the linear trend (hybrid_jepa_*, hybrid_level_*)",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    t0 = time.perf_counter()
    cases, frames = [], {}
    for s in args.seeds:
        sim = sim_site("slope", s)
        cases += creep_cases(f"slope-{s}", sim.site, sim.truth)
        frames[f"slope-{s}"] = daily_frame(sim.site)
    pool = []
    for s in args.pool:
        name = f"pool-slope-{s}"
        frames[name] = daily_frame(sim_site("slope", s).site)
        pool.append(name)
    context = SimContext(frames, kind=DISPLACEMENT_KINDS)
    run = pool_run(args.runs, args.steps)
    feats: dict[str, Any] = {"level": level_features(), "jepa": EncoderFeatures(run)}
    methods: dict[str, MethodFactory] = {k: classic(k) for k in CLASSIC}
    methods.update(
        sim_methods(feats, context, pool, horizons=HORIZONS, stride=3.0, heads=SIM_HEADS)
    )
    if args.hybrid:
        methods.update(
            sim_methods(
                hybrid(feats, "linear"),
                context,
                pool,
                horizons=HORIZONS,
                stride=3.0,
                heads=SIM_HEADS,
                base="linear",
            )
        )
    rec = creep_displacement_protocol(methods, cases, horizons=HORIZONS)
    mae = summarise(rec, by=("method", "horizon")).pivot(
        index="method", columns="horizon", values="mae"
    )
    n_nan = summarise(rec, by=("method", "horizon")).pivot(
        index="method", columns="horizon", values="n_nan"
    )
    best = mae.loc[list(CLASSIC)].min()
    best_name = mae.loc[list(CLASSIC)].idxmin()
    ratio = mae / best
    n = int((rec["method"] == "linear").sum())
    print(
        f"slopes {args.seeds}: {len(cases)} sensor records through creep events, {n} "
        f"forecasts per method; heads trained on {len(pool)} pool slopes; pooled run "
        f"{args.steps} steps; {time.perf_counter() - t0:.0f} s"
    )
    print("\nDisplacement MAE (mm), pooled over forecasts:\n")
    print(md_table(mae.reset_index(), "{:.2f}"))
    print(
        "\nRatio to the best classic method ("
        + ", ".join(f"{h:g} d: {best_name[h]}" for h in mae.columns)
        + "); the target is 0.8:\n"
    )
    print(md_table(ratio.reset_index(), "{:.2f}"))
    print("\nForecasts with no value (n_nan):\n")
    print(md_table(n_nan.reset_index(), "{:.0f}"))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "seeds": args.seeds,
                    "mae": {m: {str(h): v for h, v in r.items()} for m, r in mae.iterrows()},
                    "best_classic": {str(h): str(v) for h, v in best_name.items()},
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
