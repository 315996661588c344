"""Can the next lifts be forecast from other sites' fill records, and would it help?

Simulated embankments (`geojepa.simulate`, 365 days, hourly, as in `bench_forecast.py`).
`FillPath` (`geojepa.forecast.fillpath`) learns the rhythm of construction from the load
records of the pool sites (seeds 100-111 by default, the forecasting benchmark's head pool;
never evaluated) and draws analog futures of the fill at each cutoff. Two measurements on
the evaluated sites (default: the validation embankments, seeds 200-202):

1. the fill itself: MAE of the fill's rise over the next 30 and 90 days, held (no more
   fill: the classic assumption) against the analogs' mean and median, at a cutoff every 7
   days from day 60 of every distinct load record;
2. settlement, on the forecasting benchmark's own protocol (`settlement_protocol_sim`:
   every plate, a cutoff every 14 days from day 60, horizons 7 / 30 / 90 days): the
   consolidation back-analysis with the load held (`consolidation`, the classic method),
   driven by the analogs' futures (`consolidation_fill`, median and mean), and driven by
   the **actual** future fill (`consolidation_actual_fill`: a yardstick that knows the
   construction plan, never a method), beside the linear trend; and three bounds that know
   each plate's true physics (`geojepa.forecast.oracle`): the fill held (`oracle_no_lift`),
   the analogs' futures (`oracle_analog`: the programme unknown, the lifts forecast from
   the fill record) and the generator's futures with the site's number of lifts known
   (`oracle_bayes`); on all plates and on the plates without a settlement-acceleration
   event (whose future the bounds know).

With ``--plates``, instead: the real settlement plates' protocol (leave one plate out, the
rest of each record from its first 30 % and 50 %), the back-analysis with the surcharge
held against told each plate's actual later surcharge.

Usage: python benchmarks/bench_fill_path.py [--seeds 200 201 202] [--pool 100 ... 111]
       [--k 25] [--json FILE] [--plates]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from _tables import md_table
from geojepa.forecast.classic import LinearTrend
from geojepa.forecast.consolidation import Consolidation, ConsolidationFill
from geojepa.forecast.evaluate import MethodFactory, summarise
from geojepa.forecast.fillpath import FillPath, daily_load
from geojepa.forecast.oracle import EmbankmentTruth, OracleForecaster, OracleMode
from geojepa.forecast.simulated import embankment_series, settlement_protocol_sim
from geojepa.simulate import simulate_site
from geojepa.site import Site

HORIZONS = (7.0, 30.0, 90.0)


def site(seed: int) -> Site:
    return simulate_site("embankment", 16, 365, "1h", seed).site


def load_records(sites: dict[int, Site]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each distinct (plate clock, load) record of the sites: plates read on the same days
    share one."""
    out, seen = [], set()
    for seed, s in sites.items():
        for x in embankment_series(s):
            key = (seed, x.t.tobytes())
            if key not in seen:
                seen.add(key)
                out.append((x.t, x.drivers["load"]))
    return out


def site_mean_mae(rec: pd.DataFrame) -> pd.DataFrame:
    """(method x horizon) the mean over sites of each site's MAE (the forecasting
    benchmarks' convention)."""
    per_site = summarise(rec, by=("site", "method", "horizon"))
    return per_site.groupby(["method", "horizon"])["mae"].mean().unstack("horizon")


def oracle(
    truth: EmbankmentTruth, mode: OracleMode, futures: FillPath | None = None
) -> MethodFactory:
    def make(_: object) -> OracleForecaster:
        return OracleForecaster(truth, mode=mode, draws=400, futures=futures)

    return make


class ActualFill:
    """The actual future increments of the record a history is a prefix of (a yardstick:
    it knows the construction plan)."""

    def __init__(self, records: list[tuple[np.ndarray, np.ndarray]]) -> None:
        self.records = records

    def analogs(self, t: np.ndarray, load: np.ndarray, days: int) -> np.ndarray:
        for tf, qf in self.records:
            if tf.size >= t.size and np.array_equal(tf[: t.size], t):
                d, q = daily_load(tf, qf)
                i = int(np.searchsorted(d, np.floor(t[-1])))
                inc = np.diff(q)[i : i + days]
                out = np.zeros((1, days))
                out[0, : inc.size] = inc
                return out
        raise ValueError("history is not a prefix of any record")


def fill_errors(fp: FillPath, records: list[tuple[np.ndarray, np.ndarray]]) -> pd.DataFrame:
    """MAE of the fill's rise over 30 and 90 days: held, analog mean, analog median."""
    rows = []
    for t, q in records:
        d, ql = daily_load(t, q)
        for c in range(60, d.size - 90, 7):
            seen = t <= d[c]
            a = fp.analogs(t[seen], q[seen], 90)  # (A, 90)
            for h in (30, 90):
                true = ql[c + h] - ql[c]
                rise = a[:, :h].sum(axis=1) if a.shape[0] else np.zeros(1)
                rows.append(
                    {
                        "horizon": h,
                        "held": abs(true),
                        "analog_mean": abs(float(rise.mean()) - true),
                        "analog_median": abs(float(np.median(rise)) - true),
                        "n_analogs": a.shape[0],
                    }
                )
    return pd.DataFrame(rows)


def real_plates(out: Path | None) -> int:
    """The real plates' protocol (30 % and 50 % cutoffs, the rest of each record): the
    back-analysis with the surcharge held, and told the plate's actual later surcharge."""
    from geojepa.datasets import load_settlement_plates, plate_series
    from geojepa.forecast.evaluate import classic
    from geojepa.forecast.protocols import settlement_protocol

    series = [plate_series(p) for p in load_settlement_plates(None)]
    actual = ActualFill([(x.t, x.drivers["surcharge"]) for x in series])
    methods: dict[str, MethodFactory] = {
        "consolidation": lambda _: Consolidation(load="surcharge", n_boot=0),
        "consolidation_actual_fill": lambda _: ConsolidationFill(
            actual, load="surcharge", days=2000, n_boot=0
        ),
        "hyperbolic": classic("hyperbolic", load="surcharge"),
        "linear": classic("linear"),
    }
    rec, _ = settlement_protocol(methods)
    per_plate = summarise(rec, by=("series", "method", "cutoff_label"))
    table = per_plate.groupby(["method", "cutoff_label"])["mae"].mean().unstack("cutoff_label")
    stage = rec.assign(err=(rec["prediction"] - rec["truth"]).abs())
    split = (
        stage.groupby(["method", "cutoff_label", "same_stage"])["err"]
        .mean()
        .unstack(["cutoff_label", "same_stage"])
    )
    print(f"real plates: {len(series)}; mean over plates of each plate's MAE:\n")
    print(md_table(table.reset_index(), "{:.1f}"))
    print(
        "\nMAE pooled over forecasts, inside the load stage current at the cutoff (True) or "
        "after a later lift (False):\n"
    )
    split.columns = [f"{c} {'same stage' if st else 'after a lift'}" for c, st in split.columns]
    print(md_table(split.reset_index(), "{:.1f}"))
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(
            json.dumps(
                {
                    "plates_mae": {m: dict(r.items()) for m, r in table.iterrows()},
                    "by_stage": {m: dict(r.items()) for m, r in split.iterrows()},
                },
                indent=2,
            )
        )
    return 0


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="*", default=[200, 201, 202])
    ap.add_argument("--pool", type=int, nargs="*", default=list(range(100, 112)))
    ap.add_argument("--k", type=int, default=25)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument(
        "--plates",
        action="store_true",
        help="instead: the real settlement plates, back-analysis with the fill held vs told "
        "the actual surcharge after the cutoff",
    )
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    if args.plates:
        return real_plates(args.json)
    pool = load_records({s: site(s) for s in args.pool})
    fp = FillPath(k=args.k).fit(pool)
    sims = {s: simulate_site("embankment", 16, 365, "1h", s) for s in args.seeds}
    records = load_records({s: sim.site for s, sim in sims.items()})
    fills = fill_errors(fp, records)
    fill_table = fills.groupby("horizon")[["held", "analog_mean", "analog_median"]].mean()
    print(
        f"pool: seeds {args.pool}, {len(pool)} load records, {fp.n_candidates_} candidate "
        f"states; evaluated: seeds {args.seeds}; k = {args.k}"
    )
    print(f"\nFill rise over the next h days, MAE (fill units), {len(fills) // 2} cutoffs:\n")
    print(md_table(fill_table.reset_index(), "{:.3f}"))
    frames = []
    for seed, sim in sims.items():
        truth = EmbankmentTruth.from_simulated(sim)
        methods: dict[str, MethodFactory] = {
            "consolidation": lambda _: Consolidation(load="load", n_boot=0),
            "consolidation_fill": lambda _: ConsolidationFill(fp, n_boot=0),
            "consolidation_fill_mean": lambda _: ConsolidationFill(fp, stat="mean", n_boot=0),
            "consolidation_actual_fill": lambda _: ConsolidationFill(ActualFill(records), n_boot=0),
            "linear": lambda _: LinearTrend(),
            "oracle_no_lift": oracle(truth, "no_lift"),
            "oracle_analog": oracle(truth, "analog", fp),
            "oracle_bayes": oracle(truth, "bayes"),
        }
        part = settlement_protocol_sim(methods, [(f"embankment-{seed}", sim.site)])
        plate = part["series"].str.rsplit("/", n=1).str[-1]
        part["event_plate"] = plate.isin(truth.event_plates)
        frames.append(part)
    rec = pd.concat(frames, ignore_index=True)
    mae = site_mean_mae(rec)
    quiet = rec[~rec["event_plate"]]
    q_mae = site_mean_mae(quiet)
    n = int((rec["method"] == "consolidation").sum())
    for title, table, k in (
        ("all plates", mae, n),
        (
            f"the {quiet['series'].nunique()} of {rec['series'].nunique()} plates without a "
            "settlement-acceleration event (whose future the oracles know)",
            q_mae,
            int((quiet["method"] == "consolidation").sum()),
        ),
    ):
        best = table.loc[["consolidation", "linear"]].min()  # the best classic of these two
        print(f"\nSettlement MAE (mm, mean over sites), {title}, {k} forecasts per method:\n")
        print(md_table(table.reset_index(), "{:.1f}"))
        print(
            "ratio to the better of consolidation and linear: "
            + ", ".join(
                f"{m} " + " / ".join(f"{v:.2f}" for v in table.loc[m] / best)
                for m in table.index
                if m.startswith("oracle")
            )
        )
    print(f"\n{time.perf_counter() - t0:.0f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        out = {
            "seeds": args.seeds,
            "pool": args.pool,
            "k": args.k,
            "fill_mae": {str(h): r.to_dict() for h, r in fill_table.iterrows()},
            "settlement_mae": {m: {str(h): v for h, v in r.items()} for m, r in mae.iterrows()},
            "quiet_plates_mae": {m: {str(h): v for h, v in r.items()} for m, r in q_mae.iterrows()},
        }
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
