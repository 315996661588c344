"""How low can the settlement error go? Bounds beside the classic methods on simulated
embankments.

The forecasting benchmark's simulated-embankment protocol (`settlement_protocol_sim`: every
settlement plate, rolling origin every 14 days after 60, horizons 7, 30 and 90 days; sites
``simulate_site("embankment", 16, 365, "1h", seed)``), with three forecasters that read the
simulator's hidden truth (`geojepa.forecast.oracle`; yardsticks, not contenders):

- ``oracle_bayes``: true physics of every plate, the fill so far and the fill generator; the
  median over futures of the fill drawn from the generator. Its expected MAE is a floor for
  any forecaster that does not know the future lifts;
- ``oracle_plan``: true physics and the actual future fill (error = the readings' noise);
- ``oracle_no_lift``: true physics, the fill frozen after the lift in progress.

Printed per horizon: the mean over sites of each method's MAE (the forecasting benchmark's
figure), its ratio to the best classic method, the bayes band's coverage, and the share of
forecasts whose horizon reaches a lift not yet started at the cutoff.

Usage: python benchmarks/bench_forecast_oracle.py [--seeds 0 1 2] [--draws 400]
       [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from _tables import md_table
from geojepa.forecast.evaluate import MethodFactory, classic, summarise
from geojepa.forecast.oracle import EmbankmentTruth, OracleForecaster, OracleMode
from geojepa.forecast.protocols import classic_settlement_methods
from geojepa.forecast.simulated import settlement_protocol_sim
from geojepa.simulate import simulate_site

CLASSIC = ("linear", "hyperbolic", "asaoka", "fukuzono", "consolidation", "consolidation_huber")
MODES: tuple[OracleMode, ...] = ("bayes", "plan", "no_lift")


def oracle(truth: EmbankmentTruth, mode: OracleMode, draws: int) -> MethodFactory:
    def make(training: Any) -> OracleForecaster:
        return OracleForecaster(truth, mode=mode, draws=draws)

    return make


def lift_ahead(truth: EmbankmentTruth, cutoff: float, t: float) -> bool:
    """Does a lift not yet started at the cutoff start before day `t`?"""
    last = (cutoff + 1.0) * truth.steps_day - 1
    end = (t + 1.0) * truth.steps_day
    return any(last < s.start < end for s in truth.stages)


def run_site(seed: int, draws: int) -> pd.DataFrame:
    sim = simulate_site("embankment", 16, 365, "1h", seed)
    truth = EmbankmentTruth.from_simulated(sim)
    methods = classic_settlement_methods(load="load")
    # the band is not scored here: few bootstrap refits (each reweights 40 t90 six times)
    methods["consolidation_huber"] = classic("consolidation", load="load", loss="huber", n_boot=10)
    for mode in MODES:
        methods[f"oracle_{mode}"] = oracle(truth, mode, draws)
    name = f"embankment-{seed}"
    rec = settlement_protocol_sim(methods, [(name, sim.site)])
    rec["lift_ahead"] = [
        lift_ahead(truth, c, t) for c, t in zip(rec["cutoff"], rec["t"], strict=True)
    ]
    plate = rec["series"].str.rsplit("/", n=1).str[-1]
    rec["event_plate"] = plate.isin(truth.event_plates)  # an acceleration event on the plate
    rec["stages"] = len(truth.stages)
    rec["scale"] = truth.scale
    return rec


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--draws", type=int, default=400)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    t0 = time.perf_counter()
    rec = pd.concat([run_site(s, args.draws) for s in args.seeds], ignore_index=True)
    per_site = summarise(rec, by=("site", "method", "horizon"))
    agg = per_site.groupby(["method", "horizon"])["mae"].mean().unstack("horizon")
    best_name = agg.loc[list(CLASSIC)].idxmin()
    best = agg.loc[list(CLASSIC)].min()
    ratio = agg / best
    bayes = rec[rec["method"] == "oracle_bayes"]
    inside = (bayes["truth"] >= bayes["lower"]) & (bayes["truth"] <= bayes["upper"])
    coverage = inside.groupby(bayes["horizon"]).mean()
    ahead = bayes.groupby("horizon")["lift_ahead"].mean()
    table = pd.DataFrame(
        {
            "method": list(agg.index),
            **{f"MAE {h:g} d": agg[h].to_numpy() for h in agg.columns},
            **{f"ratio {h:g} d": ratio[h].to_numpy() for h in agg.columns},
        }
    ).sort_values(f"ratio {agg.columns[-1]:g} d")
    print(
        f"sites: embankment seeds {args.seeds}; {rec['series'].nunique()} plates; "
        f"{len(bayes)} forecasts per method; {args.draws} fill futures per cutoff"
    )
    print(
        "mean over sites of each site's MAE (mm), and its ratio to the best classic method "
        "at that horizon (" + ", ".join(f"{h:g} d: {best_name[h]}" for h in agg.columns) + "):"
    )
    print(md_table(table))
    print(
        "oracle_bayes band (90 %) coverage by horizon: "
        + ", ".join(f"{h:g} d {c:.2f}" for h, c in coverage.items())
    )
    print(
        "share of forecasts whose horizon reaches a lift not started at the cutoff: "
        + ", ".join(f"{h:g} d {a:.2f}" for h, a in ahead.items())
    )
    split = (
        rec.assign(err=(rec["prediction"] - rec["truth"]).abs())
        .groupby(["method", "horizon", "lift_ahead"])["err"]
        .mean()
        .unstack(["horizon", "lift_ahead"])
    )
    print(
        "MAE (mm) pooled over forecasts, split by whether a new lift comes within the "
        "horizon (False / True):"
    )
    print(
        md_table(
            split.reset_index().rename(
                columns=lambda c: " ".join(map(str, c)) if isinstance(c, tuple) else c
            )
        )
    )
    quiet = rec[~rec["event_plate"]]
    quiet_sites = summarise(quiet, by=("site", "method", "horizon"))
    q_agg = quiet_sites.groupby(["method", "horizon"])["mae"].mean().unstack("horizon")
    q_best = q_agg.loc[list(CLASSIC)].min()
    print(
        f"plates without a settlement-acceleration event only ({quiet['series'].nunique()} of "
        f"{rec['series'].nunique()}; the oracles know an event's future, a forecaster cannot): "
        "mean over sites of each site's MAE (mm) and ratio to the best classic method there:"
    )
    q_table = pd.DataFrame(
        {
            "method": list(q_agg.index),
            **{f"MAE {h:g} d": q_agg[h].to_numpy() for h in q_agg.columns},
            **{f"ratio {h:g} d": (q_agg[h] / q_best[h]).to_numpy() for h in q_agg.columns},
        }
    ).sort_values(f"ratio {q_agg.columns[-1]:g} d")
    print(md_table(q_table))
    print(f"{time.perf_counter() - t0:.0f} s")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "seeds": args.seeds,
                    "draws": args.draws,
                    "mae": {
                        m: {str(h): float(v) for h, v in row.items()} for m, row in agg.iterrows()
                    },
                    "best_classic": {str(h): str(v) for h, v in best_name.items()},
                    "bayes_coverage": {str(h): float(v) for h, v in coverage.items()},
                    "lift_ahead_share": {str(h): float(v) for h, v in ahead.items()},
                    "per_site": per_site.to_dict("records"),
                    "quiet_plates_mae": {
                        m: {str(h): float(v) for h, v in row.items()} for m, row in q_agg.iterrows()
                    },
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
