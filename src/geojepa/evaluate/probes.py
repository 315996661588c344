"""Linear probes on frozen embeddings of simulated slopes: does pretraining capture more
than a randomly initialised encoder of the same shape, or than raw window statistics?

`slope_probe_experiment` pretrains a run on the first 70 % of a simulated 16-sensor slope
(hourly, a year; optionally beside other slopes), embeds every window with the target
encoder, and scores two probes trained before the split on the windows after it (AUC):
whether a labelled event touches a sensor in a window (per sensor) and whether the next
day's rain exceeds 1 mm (per window). With `probe_sites` > 1 the probes pool the windows
of that many slopes (the probed one and the first extra slopes, pretrained on or not), so
that an AUC rests on several sites' events instead of one site's few.

Guarantees: probes see only windows that end (with their label horizon) before the split
for training; the test windows start after it; every site is normalised by statistics of
its own rows before the split; the random encoder has the run's config and a fixed seed;
hyper-parameters are chosen by time-series CV on the training windows only (pooled
windows ordered by time).
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from geojepa.config import RunConfig, preset
from geojepa.site import Site

if TYPE_CHECKING:
    from geojepa.checkpoint import LoadedRun
    from geojepa.simulate.api import SimulatedSite

log = logging.getLogger(__name__)

SIM_DAYS, SIM_SPLIT = 365, 0.7
EXTRA_SEED = 10_000  # seeds of the extra slopes: EXTRA_SEED + 100 * seed + k


def extra_slopes(seed: int, count: int) -> list[Site]:
    """`count` simulated 16-sensor slopes beside the probed slope of `seed`: seeds
    EXTRA_SEED + 100 * seed + k, so their weather and events are their own."""
    return [s.site for s in _extra_simulations(seed, count)]


def _extra_simulations(seed: int, count: int) -> list[SimulatedSite]:
    from geojepa.simulate import simulate_site

    return [
        simulate_site("slope", 16, SIM_DAYS, "1h", EXTRA_SEED + 100 * seed + k)
        for k in range(count)
    ]


PROBE_ENCODERS: tuple[str, ...] = ("target", "context")


def context_as_target(run: LoadedRun) -> LoadedRun:
    """A copy of `run` whose target encoder holds the context (online) encoder's weights,
    so that every embedding path reads the online encoder; `run` itself is not changed."""
    import copy

    model = copy.deepcopy(run.model)
    model.target_encoder.load_state_dict(model.encoder.state_dict())
    return replace(run, model=model.eval())


def probe_config(base: RunConfig, seed: int, fusion: str | None = None) -> RunConfig:
    """`base` made ready for the probe experiment: window stride 16, one thread, `seed`,
    and `fusion` when given (the settings every row of the probe tables in
    docs/results/training.md used)."""
    model = base.model if fusion is None else replace(base.model, fusion=fusion)
    return replace(
        base,
        model=model,
        seed=seed,
        window=replace(base.window, stride=16),
        train=replace(base.train, threads=1),
    )


@dataclass
class _SiteProbeData:
    """One probed site's windows: features of each encoder and the probes' labels.
    Shapes: N windows, C sensors, D width, F raw statistics."""

    start: np.ndarray  # (N,) window start, ns since the epoch
    train: np.ndarray  # (N,) bool: the window and its label horizon end before the split
    test: np.ndarray  # (N,) bool: the window starts after the split
    wet: np.ndarray  # (N,) int: next day's rain > 1 mm
    event: np.ndarray  # (N, C) bool: a labelled event touches the sensor in the window
    features: dict[str, tuple[np.ndarray, np.ndarray]]
    """encoder name -> (per-sensor features (N, C, D), per-window features (N, X))"""


def _site_probe_data(
    run: LoadedRun, rand: LoadedRun, sim: SimulatedSite, split: pd.Timestamp
) -> _SiteProbeData:
    """Windows of one simulated slope embedded by `run` and `rand` (stride 8) with labels.
    Normalised by the run's record of this site (by name) where it pretrained on it, else
    by statistics of the site's rows before `split` (the rule pretraining applies)."""
    from geojepa.embed import embed_frame, normaliser_for
    from geojepa.frame import label_mask, to_frame

    site, times = sim.site, sim.drivers.index
    frame = to_frame(site, interval=run.interval)
    split_row = int(np.searchsorted(frame.time, np.datetime64(split.tz_convert(None))))
    record = next((r for r in run.sites if r.name == site.name), None)
    # the embedder reads the first record that knows the sensors: only this site's, or none
    mine = () if record is None else (record,)
    run, rand = replace(run, sites=mine), replace(rand, sites=mine)
    normaliser = normaliser_for(run, frame, split_row)  # the one the embeddings see
    emb = embed_frame(run, frame, stride=8, fit_end=split_row)
    rnd = embed_frame(rand, frame, stride=8, fit_end=split_row)
    length = run.config.window.length
    starts = pd.DatetimeIndex(emb.starts).tz_localize("UTC")
    ends = starts + length * frame.interval
    end_row = times.get_indexer(ends, method="bfill")
    ok = (end_row >= 1) & (end_row + 24 < len(times))
    # (1) rain of the next day > 1 mm
    csum = np.concatenate([[0.0], np.cumsum(sim.drivers["rain"].to_numpy())])
    rain = np.zeros(len(ends))
    rain[ok] = csum[end_row[ok] + 24] - csum[end_row[ok]]
    # (2) per (window, sensor): a labelled event touches this sensor in this window
    z, obs = normaliser.transform(frame), frame.observed
    marks = label_mask(site.labels, frame)
    c = frame.n_sensors
    event = np.array([[marks[s : s + length, j].any() for j in range(c)] for s in emb.start_index])

    def stats(s: int, j: int) -> list[float]:
        v = z[s : s + length, j][obs[s : s + length, j]]
        v = v if v.size > 1 else np.zeros(2)
        d = np.abs(np.diff(v))
        return [v.mean(), v.std(), d.max(), float(np.median(d)), obs[s : s + length, j].mean()]

    raw = np.array([[stats(s, j) for j in range(c)] for s in emb.start_index])  # (N, C, 5)
    return _SiteProbeData(
        start=starts.asi8,
        train=ok & (ends + pd.Timedelta("1D") <= split),
        test=ok & (starts >= split),
        wet=(rain > 1.0).astype(int),
        event=event,
        features={
            "jepa": (emb.per_sensor, emb.last.reshape(len(emb.last), -1)),
            "random": (rnd.per_sensor, rnd.last.reshape(len(rnd.last), -1)),
            "raw": (raw, raw.reshape(len(raw), -1)),
        },
    )


def slope_probe_experiment(
    run_dir: str | Path,
    seed: int = 0,
    config: RunConfig | None = None,
    fusion: str = "joint",
    extra_sites: int = 0,
    probe_sites: int = 1,
    encoder: str = "target",
) -> dict[str, float]:
    """Pretrain on a simulated 16-sensor slope (hourly, a year, `seed`) before 70 % of its
    time, then linear probes on frozen embeddings of every window, trained before the split
    and scored after it, against a randomly initialised encoder of the same shape and raw
    window statistics. `config`: the run's settings (default: the tiny preset through
    `probe_config`). `extra_sites`: that many other simulated slopes (their own seeds, their
    own weather) join the pretraining, cut at the same time, so that the run sees more data
    but nothing of any site's test period. `probe_sites`: the probes pool the windows of the
    probed slope and the first `probe_sites - 1` extra slopes (those beyond `extra_sites`
    were not pretrained on). `encoder`: "target" (what `embed` uses) or "context", the
    online encoder's weights in its place (a diagnostic: after a short run with a slow
    target EMA the target encoder is still mostly its initial weights). The random encoder
    is the same either way (both encoders start equal). Returns the figures (also logged)."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import TimeSeriesSplit
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from geojepa.checkpoint import build_model, load_run
    from geojepa.simulate import simulate_site
    from geojepa.train import pretrain

    if encoder not in PROBE_ENCODERS:
        raise ValueError(f"encoder must be one of {PROBE_ENCODERS}, got {encoder!r}")
    if probe_sites < 1 or extra_sites < 0:
        raise ValueError(
            f"need probe_sites >= 1 and extra_sites >= 0, got {probe_sites}, {extra_sites}"
        )
    sim = simulate_site("slope", 16, SIM_DAYS, "1h", seed)
    times = sim.drivers.index
    split = times[int(SIM_SPLIT * len(times))]
    cfg = config if config is not None else probe_config(preset("tiny"), seed, fusion)
    t0 = time.perf_counter()
    others = _extra_simulations(seed, max(extra_sites, probe_sites - 1))
    res = pretrain(
        [sim.site, *(o.site for o in others[:extra_sites])],
        Path(run_dir),
        cfg,
        until=split,
        tracking_uri="none",
        progress=False,
    )
    seconds = time.perf_counter() - t0
    if res.quality is None:
        raise RuntimeError("the run has no validation report (quality) to read RankMe from")
    run = load_run(run_dir)
    if encoder == "context":
        run = context_as_target(run)
    rand = replace(run, model=build_model(run.config, seed=1000).eval())
    probed = [sim, *others[: probe_sites - 1]]
    data = [_site_probe_data(run, rand, s, split) for s in probed]
    # pooled windows in time order (the CV folds are time-ordered), sites interleaved
    order = np.argsort(np.concatenate([d.start for d in data]), kind="stable")

    def pool(parts: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(parts)[order]

    train, test = pool([d.train for d in data]), pool([d.test for d in data])
    wet, event = pool([d.wet for d in data]), pool([d.event for d in data])  # (N,), (N, C)
    c = event.shape[1]

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
        "test_windows": float(test.sum()),
        "extra_sites": float(extra_sites),
        "probe_sites": float(probe_sites),
        "context_encoder": float(encoder == "context"),
    }
    for name in ("jepa", "random", "raw"):
        per_sensor = pool([d.features[name][0] for d in data])  # (N, C, F)
        window = pool([d.features[name][1] for d in data])  # (N, X)
        flat = per_sensor.reshape(-1, per_sensor.shape[-1])  # (N * C, F)
        out[f"event_auc_{name}"] = auc(flat, event.reshape(-1), tr_c, te_c)
        out[f"rain_auc_{name}"] = auc(window, wet, train, test)
    log.info("simulated slope probes: %s", {k: round(v, 3) for k, v in out.items()})
    return out
