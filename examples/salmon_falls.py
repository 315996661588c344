"""Pretrain GeoJEPA on the real Salmon Falls landslide site and probe what it captured.

The question (the founding note's first next step): do frozen JEPA representations of the
water and weather sensors (groundwater well, lake / creek / canal loggers, NOAA rain and
temperature, USGS discharge) tell the next week's displacement rate of the GNSS stations on
the slide better than the same linear probe on raw features of those sensors?

Protocol (time split, nothing tuned on the test period):

1. build one site from ``../shared/data/salmon-falls`` (readers in `geojepa.io.salmon_falls`);
2. pretrain the tiny preset on a daily grid (windows of 32 days, patches of 4 days) on
   readings before ``--until`` (default 2018-01-01) only;
3. embed every daily window with the TARGET encoder, (a) on the water and weather sensors
   alone (GNSS hidden from the model) and (b) on every sensor;
4. target: mean over the on-slide stations of the next 7 days' displacement rate (mm/day,
   least-squares slope of the daily positions along each station's direction of motion;
   a station counts when it has >= 4 of the 8 days);
5. ridge probes (alpha by time-series CV on the training windows only) trained on windows
   whose target week ends before ``--until``, scored on windows starting after it:
   JEPA vs a randomly initialised encoder of the same shape vs raw window features, plus
   persistence (the past week's rate) for the every-sensor case.

Usage: ``python examples/salmon_falls.py [--data DIR] [--out DIR] [--steps N] [--seed S]``
Writes ``OUT/site`` (built once), ``OUT/run`` (the pretraining run) and ``OUT/results.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from geojepa.checkpoint import LoadedRun, build_model, load_run
from geojepa.config import RunConfig, preset
from geojepa.embed import Embeddings, embed_frame
from geojepa.frame import SensorFrame, to_frame
from geojepa.site import Site
from geojepa.train import pretrain

log = logging.getLogger("salmon_falls")

SLIDE = ("BLKM", "BLKS", "BLOK", "MIDB", "NTOE", "STOE")  # BASE is the off-slide reference
HORIZON_DAYS = 7


def build_site(data: Path, out: Path) -> Site:
    site_dir = out / "site"
    if not (site_dir / "site.json").is_file():
        from geojepa.io.salmon_falls import build_salmon_falls

        build_salmon_falls(data, site_dir)
    return Site.load(site_dir)


def run_config(steps: int, seed: int) -> RunConfig:
    cfg = preset("tiny")
    return replace(
        cfg,
        seed=seed,
        model=replace(cfg.model, patch=4),
        window=replace(cfg.window, length=32, stride=2, patch=4, min_observed=0.2),
        train=replace(
            cfg.train,
            steps=steps,
            interval="1D",
            batch_size=32,
            eval_every=max(steps // 5, 1),
            checkpoint_every=max(steps // 5, 1),
            threads=1,
        ),
    )


def displacement_rate(site: Site, grid: pd.DatetimeIndex) -> np.ndarray:
    """(T,) mean over slide stations of the next-week rate (mm/day) from each grid day."""
    r = site.readings[site.readings["quality"] == "ok"]
    rates = []
    for st in SLIDE:
        e = r[r["sensor_id"] == f"{st}_E"].set_index("timestamp")["value"]
        n = r[r["sensor_id"] == f"{st}_N"].set_index("timestamp")["value"]
        pos = pd.concat({"e": e, "n": n}, axis=1).dropna()
        if len(pos) < 10:
            continue
        d = pos.iloc[-1] - pos.iloc[0]
        unit = d.to_numpy() / max(float(np.hypot(*d.to_numpy())), 1e-9)  # direction of motion
        along = pd.Series(pos.to_numpy() @ unit, index=pos.index).reindex(grid)
        rate = np.full(len(grid), np.nan)
        vals = along.to_numpy()
        days = np.arange(HORIZON_DAYS + 1, dtype=float)
        for i in range(len(grid) - HORIZON_DAYS):
            y = vals[i : i + HORIZON_DAYS + 1]
            ok = np.isfinite(y)
            if ok.sum() >= 4:
                rate[i] = np.polyfit(days[ok], y[ok], 1)[0]
        rates.append(rate)
    stack = np.vstack(rates)  # (S, T)
    with np.errstate(invalid="ignore"):
        count = np.isfinite(stack).sum(axis=0)
        mean = np.nansum(stack, axis=0) / np.maximum(count, 1)
    return np.where(count >= 3, mean, np.nan)


def raw_features(frame: SensorFrame, run: LoadedRun, emb: Embeddings) -> np.ndarray:
    """Per sensor: window mean, last-patch mean, last-minus-first patch (normalised; 0 if none)."""
    rec = run.site_record(frame.sensor_ids)
    norm = rec.normaliser if rec is not None else run.normaliser
    z = norm.transform(frame)
    obs = frame.observed
    length, patch = run.config.window.length, run.config.window.patch
    rows = []
    for s in emb.start_index:
        w, o = z[s : s + length], obs[s : s + length]

        def mean(a: np.ndarray, m: np.ndarray) -> np.ndarray:
            return (a * m).sum(0) / np.maximum(m.sum(0), 1)

        first, last = mean(w[:patch], o[:patch]), mean(w[-patch:], o[-patch:])
        rows.append(np.concatenate([mean(w, o), last, last - first]))
    return np.asarray(rows)


def probe(x: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray) -> dict[str, float]:
    from sklearn.linear_model import RidgeCV
    from sklearn.metrics import mean_absolute_error, r2_score
    from sklearn.model_selection import TimeSeriesSplit
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(
        StandardScaler(), RidgeCV(alphas=np.logspace(-2, 5, 15), cv=TimeSeriesSplit(5))
    )
    model.fit(x[train], y[train])
    pred = model.predict(x[test])
    return {
        "r2": float(r2_score(y[test], pred)),
        "mae": float(mean_absolute_error(y[test], pred)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/salmon-falls"))
    ap.add_argument("--out", type=Path, default=Path("salmon-out"))
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--until", default="2018-01-01")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    until = pd.Timestamp(args.until, tz="UTC")

    site = build_site(args.data, args.out)
    run_dir = args.out / f"run-{args.steps}-{args.seed}"
    t0 = time.perf_counter()
    if not (run_dir / "checkpoint.pt").is_file():
        pretrain([site], run_dir, run_config(args.steps, args.seed), until=until)
        train_s = time.perf_counter() - t0
    else:
        train_s = float("nan")
    run = load_run(run_dir)
    rand = replace(run, model=build_model(run.config, seed=args.seed + 1000).eval())

    ids = list(site.sensors["id"])
    water = [s for s in ids if not any(s.startswith(st + "_") for st in (*SLIDE, "BASE"))]
    views = {"water+weather": site.select(water), "all sensors": site}
    grid_start = pd.Timestamp(run.sites[0].grid_start)
    results: dict[str, object] = {
        "steps": run.step,
        "train_seconds": train_s,
        "final_metrics": run.metrics,
        "until": until.isoformat(),
        "probes": {},
    }
    for name, sub in views.items():
        frame = to_frame(sub, interval=run.interval, start=grid_start)
        emb = embed_frame(run, frame, stride=1)
        emb_rand = embed_frame(rand, frame, stride=1)
        grid = frame.times()
        rate = displacement_rate(site, grid)
        end = emb.start_index + run.config.window.length  # first grid row after the window
        y = np.where(end < len(grid), rate[np.minimum(end, len(grid) - 1)], np.nan)
        past = np.where(end - HORIZON_DAYS >= 0, rate[np.maximum(end - HORIZON_DAYS, 0)], np.nan)
        ends = grid[np.minimum(end, len(grid) - 1)]
        ok = np.isfinite(y)
        train = ok & (ends + pd.Timedelta(days=HORIZON_DAYS) <= until)
        test = ok & (pd.DatetimeIndex(grid[emb.start_index]) >= until)
        raw = raw_features(frame, run, emb)
        scores = {
            "jepa": probe(emb.vectors, y, train, test),
            "random_encoder": probe(emb_rand.vectors, y, train, test),
            "raw_features": probe(raw, y, train, test),
            "jepa+raw": probe(np.hstack([emb.vectors, raw]), y, train, test),
        }
        has_past = test & np.isfinite(past)
        if name == "all sensors" and has_past.any():
            from sklearn.metrics import mean_absolute_error, r2_score

            scores["persistence (on its windows)"] = {
                "r2": float(r2_score(y[has_past], past[has_past])),
                "mae": float(mean_absolute_error(y[has_past], past[has_past])),
            }
        scores["_n"] = {"train": float(train.sum()), "test": float(test.sum())}
        scores["_target"] = {
            "train_mean": float(np.mean(y[train])),
            "test_mean": float(np.mean(y[test])),
            "test_std": float(np.std(y[test])),
        }
        results["probes"][name] = scores  # type: ignore[index]
        log.info("%s: %s", name, json.dumps(scores, indent=1))
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
