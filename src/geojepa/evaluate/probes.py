"""Linear probes on frozen embeddings of a simulated slope: does pretraining capture more
than a randomly initialised encoder of the same shape, or than raw window statistics?

`slope_probe_experiment` pretrains a run on the first 70 % of a simulated 16-sensor slope
(hourly, a year), embeds every window with the target encoder, and scores two probes
trained before the split on the windows after it (AUC): whether a labelled event touches a
sensor in a window (per sensor) and whether the next day's rain exceeds 1 mm (per window).

Guarantees: probes see only windows that end (with their label horizon) before the split
for training; the test windows start after it; the random encoder has the run's config and
a fixed seed; hyper-parameters are chosen by time-series CV on the training windows only.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from geojepa.config import RunConfig, preset
from geojepa.site import Site

log = logging.getLogger(__name__)

SIM_DAYS, SIM_SPLIT = 365, 0.7
EXTRA_SEED = 10_000  # seeds of the extra pretraining sites: EXTRA_SEED + 100 * seed + k


def extra_slopes(seed: int, count: int) -> list[Site]:
    """`count` simulated 16-sensor slopes for pretraining beside the probed slope of `seed`:
    seeds EXTRA_SEED + 100 * seed + k, so their weather and events are their own."""
    from geojepa.simulate import simulate_site

    return [
        simulate_site("slope", 16, SIM_DAYS, "1h", EXTRA_SEED + 100 * seed + k).site
        for k in range(count)
    ]


def slope_probe_experiment(
    run_dir: str | Path,
    seed: int = 0,
    config: RunConfig | None = None,
    fusion: str = "joint",
    extra_sites: int = 0,
) -> dict[str, float]:
    """Pretrain on a simulated 16-sensor slope (hourly, a year, `seed`) before 70 % of its
    time, then linear probes on frozen embeddings of every window, trained before the split
    and scored after it, against a randomly initialised encoder of the same shape and raw
    window statistics. `config`: the run's settings (default: the tiny preset with window
    stride 16, one thread, `seed`). `extra_sites`: that many other simulated slopes (their
    own seeds, their own weather) join the pretraining, cut at the same time, so that the
    run sees more data but nothing of the probed site's test period. Returns the figures
    (also logged)."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import TimeSeriesSplit
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from geojepa.checkpoint import build_model, load_run
    from geojepa.embed import embed_frame
    from geojepa.frame import label_mask, to_frame
    from geojepa.simulate import simulate_site
    from geojepa.train import pretrain

    sim = simulate_site("slope", 16, SIM_DAYS, "1h", seed)
    site, times = sim.site, sim.drivers.index
    split = times[int(SIM_SPLIT * len(times))]
    cfg = config
    if cfg is None:
        base = preset("tiny")
        cfg = replace(
            base,
            model=replace(base.model, fusion=fusion),
            seed=seed,
            window=replace(base.window, stride=16),
            train=replace(base.train, threads=1),
        )
    t0 = time.perf_counter()
    others = extra_slopes(seed, extra_sites)
    res = pretrain(
        [site, *others], Path(run_dir), cfg, until=split, tracking_uri="none", progress=False
    )
    seconds = time.perf_counter() - t0
    if res.quality is None:
        raise RuntimeError("the run has no validation report (quality) to read RankMe from")
    run = load_run(run_dir)
    frame = to_frame(site, interval=run.interval)
    emb = embed_frame(run, frame, stride=8)
    rand = embed_frame(replace(run, model=build_model(run.config, seed=1000).eval()), frame, 8)
    length = run.config.window.length
    starts = pd.DatetimeIndex(emb.starts).tz_localize("UTC")
    ends = starts + length * frame.interval
    end_row = times.get_indexer(ends, method="bfill")
    ok = (end_row >= 1) & (end_row + 24 < len(times))
    train = ok & (ends + pd.Timedelta("1D") <= split)
    test = ok & (starts >= split)
    # (1) rain of the next day > 1 mm
    csum = np.concatenate([[0.0], np.cumsum(sim.drivers["rain"].to_numpy())])
    rain = np.zeros(len(ends))
    rain[ok] = csum[end_row[ok] + 24] - csum[end_row[ok]]
    wet = (rain > 1.0).astype(int)
    # (2) per (window, sensor): a labelled event touches this sensor in this window
    z, obs = run.normaliser.transform(frame), frame.observed
    marks = label_mask(site.labels, frame)
    c = frame.n_sensors
    event = np.array([[marks[s : s + length, j].any() for j in range(c)] for s in emb.start_index])

    def stats(s: int, j: int) -> list[float]:
        v = z[s : s + length, j][obs[s : s + length, j]]
        v = v if v.size > 1 else np.zeros(2)
        d = np.abs(np.diff(v))
        return [v.mean(), v.std(), d.max(), float(np.median(d)), obs[s : s + length, j].mean()]

    raw = np.array([[stats(s, j) for j in range(c)] for s in emb.start_index])  # (N, C, 5)
    raw_window = raw.reshape(len(raw), -1)

    def auc(x: np.ndarray, y: np.ndarray, tr: np.ndarray, te: np.ndarray) -> float:
        m = make_pipeline(
            StandardScaler(),
            LogisticRegressionCV(Cs=np.logspace(-3, 1, 5), cv=TimeSeriesSplit(3), max_iter=3000),
        )
        with warnings.catch_warnings():
            # scikit-learn >= 1.9 announces a change to LogisticRegressionCV's fitted
            # attributes; only predict_proba is used here
            warnings.filterwarnings("ignore", category=FutureWarning, module="sklearn")
            m.fit(x[tr], y[tr])
        return float(roc_auc_score(y[te], m.predict_proba(x[te])[:, 1]))

    tr_c, te_c = np.repeat(train, c), np.repeat(test, c)
    out = {
        "train_seconds": seconds,
        "windows_per_second": res.windows_per_second,
        "rankme": res.quality.rankme,
        "rankme_fraction": res.quality.rankme / res.quality.dim,
        "lidar": res.quality.lidar,
        "std_ratio": res.quality.std_ratio,
        "test_event_cells": float(event.reshape(-1)[te_c].mean()),
        "extra_sites": float(extra_sites),
    }
    for name, e in (("jepa", emb), ("random", rand)):
        out[f"event_auc_{name}"] = auc(
            e.per_sensor.reshape(-1, e.per_sensor.shape[-1]), event.reshape(-1), tr_c, te_c
        )
        out[f"rain_auc_{name}"] = auc(e.last.reshape(len(e.last), -1), wet, train, test)
    out["event_auc_raw"] = auc(raw.reshape(-1, raw.shape[-1]), event.reshape(-1), tr_c, te_c)
    out["rain_auc_raw"] = auc(raw_window, wet, train, test)
    log.info("simulated slope probes: %s", {k: round(v, 3) for k, v in out.items()})
    return out
