"""Transfer: pretrain on some sites, probe or fine-tune on another with few labels.

The protocol, per target site S (leave one site out over site families):

- S's record is split in time at `TransferSite.split` (grid row): the **training period**
  before it, the **test period** after it.
- Encoders compared under the same head and budget: ``pretrained`` (a JEPA pretrained on
  the other sites only), optionally ``fine_tuned`` (that JEPA, then the same pretraining
  steps on S's training period: pretrain elsewhere, fine-tune on S), ``scratch`` (the same
  architecture, randomly initialised, not trained), optionally ``target_only`` (pretrained
  with the same steps on S's training period alone), and ``level`` (no encoder: the level
  features alone, as a reference).
- Heads transferred too (optional): ``<encoder>_src`` fits its head on the samples of
  source sites (other sites, each cut before S's test period begins), then corrects it on
  S's labelled samples (`CorrectedHead`: a ridge on the residual, kept only when its
  out-of-sample error on those labels beats the uncorrected head's).
- Labels: origins every `stride_train` days in S's training period, with the change of
  each target sensor after each horizon (targets inside the training period). A fraction
  p of them (1 %, 5 %, 10 %, 100 %) is drawn at random (seeded, at least `min_labels`);
  every encoder gets the same draw.
- Test: origins every `stride_test` days in the test period; features are causal (each
  origin reads rows up to itself), targets are the later readings. MAE per horizon in the
  sensor's units and relative to persistence on the same rows.

Guarantees: S's data never enters the ``pretrained`` encoder (its run is trained on other
sites; callers pass those, and `check_disjoint` refuses a run whose training sites include
S's name); the head never sees a target from the test period (a site without a training
period gives no training samples); the same label draw, head and features width serve
every encoder; `wins` compares two encoders on the same seeds, and an encoder without a
forecast where the baseline has one counts as a loss. Runs are cached in folders
(`pretrained_run`): a folder whose recorded sites, end times or configuration differ is
refused, not reused.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from geojepa.checkpoint import LoadedRun, build_model, load_run
from geojepa.config import RunConfig, preset, with_recipe
from geojepa.errors import InputError
from geojepa.forecast._threads import one_thread
from geojepa.forecast.features import N_LEVEL, EncoderFeatures
from geojepa.forecast.heads import MLPHead, RidgeHead, make_head
from geojepa.forecast.jepa_protocols import daily_frame
from geojepa.forecast.learned import Reducer, origin_rows
from geojepa.forecast.prior import CorrectedHead
from geojepa.forecast.tracks import Track, frame_track
from geojepa.frame import SensorFrame
from geojepa.site import Site
from geojepa.warmstart import InitSource
from geojepa.windows import Normaliser, WindowSpec

log = logging.getLogger(__name__)

FRACTIONS: tuple[float, ...] = (0.01, 0.05, 0.1, 1.0)
MANIFEST = "transfer.json"


def forecast_config(
    steps: int = 300, seed: int = 0, batch_size: int = 16, recipe: str = "ema"
) -> RunConfig:
    """The tiny preset on a daily grid for forecasting and transfer: patch 8, windows of
    64 days every 4 days, one torch thread, one evaluation at the end. `recipe`: "ema", the
    preset's own (what the forecasting and transfer tables were measured with), or "no_ema"
    (`config.no_ema_recipe`)."""
    cfg = with_recipe(preset("tiny"), recipe)
    return replace(
        cfg,
        seed=int(seed),
        model=replace(cfg.model, patch=8),
        window=WindowSpec(length=64, stride=4, patch=8),
        train=replace(
            cfg.train,
            steps=int(steps),
            batch_size=int(batch_size),
            interval="1D",
            eval_every=int(steps),
            checkpoint_every=int(steps),
            log_every=max(1, int(steps) // 10),
            threads=1,
        ),
    )


def config_tag(config: RunConfig) -> str:
    """Steps, seed and a short digest of the whole configuration, for cache folder names
    (a changed default gives a new folder instead of a refused one)."""
    import hashlib

    digest = hashlib.blake2b(json.dumps(config.to_dict(), sort_keys=True).encode(), digest_size=4)
    return f"s{config.train.steps}-seed{config.seed}-{digest.hexdigest()}"


def _manifest(
    sites: Sequence[Site],
    until: Sequence[pd.Timestamp | None],
    cfg: RunConfig,
    init: LoadedRun | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "sites": [s.name for s in sites],
        "until": [None if u is None else pd.Timestamp(u).isoformat() for u in until],
        "config": cfg.to_dict(),
    }
    if init is not None:  # the start: its training sites and ends, step and configuration
        out["init"] = {
            "sites": [r.name for r in init.sites],
            "until": [r.train_end.isoformat() for r in init.sites],
            "step": int(init.step),
            "config": init.config.to_dict(),
        }
    return out


def pretrained_run(
    sites: Sequence[Site],
    run_dir: str | Path,
    config: RunConfig,
    until: Sequence[pd.Timestamp | None] | None = None,
    init: LoadedRun | None = None,
) -> LoadedRun:
    """Pretrain on `sites` (each cut before its `until`), starting from `init`'s weights
    when given (`geojepa.warmstart`), or load the same run from `run_dir` when its manifest
    matches (sites, ends, configuration, start)."""
    from geojepa.train import pretrain

    run = Path(run_dir)
    ends = list(until) if until is not None else [None] * len(sites)
    if len(ends) != len(sites):
        raise ValueError("one `until` per site")
    want = _manifest(sites, ends, config, init)
    path = run / MANIFEST
    if path.is_file() and (run / "checkpoint.pt").is_file():
        have = json.loads(path.read_text(encoding="utf-8"))
        if have != json.loads(json.dumps(want)):
            raise InputError(
                "the cached run was trained on other sites or settings",
                file=run,
                hint="delete the folder to retrain, or choose another cache folder",
            )
        log.info("using cached run %s", run)
        return load_run(run)
    cut = [s.before(u) if u is not None else s for s, u in zip(sites, ends, strict=True)]
    pretrain(
        cut,
        run,
        config,
        tracking_uri="none",
        progress=False,
        init=None if init is None else InitSource.from_run(init),
    )
    path.write_text(json.dumps(want, indent=1), encoding="utf-8")
    return load_run(run)


def split_time(target: TransferSite) -> pd.Timestamp:
    """The first time of `target`'s test period (UTC)."""
    return pd.Timestamp(target.frame.time[target.split]).tz_localize("UTC")


def target_only_run(
    site: Site,
    target: TransferSite,
    run_dir: str | Path,
    config: RunConfig,
    init: LoadedRun | None = None,
) -> LoadedRun:
    """The issue's "training from scratch on the target site alone" (``target_only``): the
    same pretraining on `site` cut before `target`'s test period, and nothing else; with
    `init`, that pretraining continues from another run's weights (``fine_tuned``).
    `site` is the site `target` was made from."""
    return pretrained_run([site], run_dir, config, [split_time(target)], init=init)


def random_run(config: RunConfig, seed: int = 0) -> LoadedRun:
    """An untrained JEPA of `config` (weights drawn from `seed`), wrapped as a run."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = build_model(config, seed=int(seed))
    model.eval()
    empty = Normaliser((), np.zeros(0), np.zeros(0))
    return LoadedRun(
        model=model,
        config=config,
        normaliser=empty,
        sensors=pd.DataFrame({"id": pd.Series([], dtype="str")}),
        interval=pd.Timedelta(config.train.interval or "1D"),
        train_end=pd.Timestamp("1970-01-01", tz="UTC"),
        step=0,
        metrics={},
    )


def check_disjoint(run: LoadedRun, site: str) -> None:
    """Refuse a run that was trained on `site`."""
    if any(r.name == site for r in run.sites):
        raise InputError(
            f"the pretrained run was trained on {site!r}, the transfer target",
            file=run.run_dir,
            hint="pretrain on the other sites only",
        )


# --------------------------------------------------------------------------- sites and runs
TASK_KINDS: dict[str, tuple[str, ...]] = {
    "embankment": ("settlement",),
    "slope": ("inclinometer", "extensometer", "gnss"),
    "dam": ("piezometer",),
    "gw": ("piezometer",),
}
"""The sensor kinds forecast on each site family."""


def transfer_site(
    site: Site, family: str, split: pd.Timestamp | None = None, name: str | None = None
) -> TransferSite:
    """A site as a transfer target: its sensors of the family's kinds, split at `split`
    (default: half-way through its daily grid)."""
    frame = daily_frame(site)
    kinds = TASK_KINDS[family]
    targets = tuple(
        str(i)
        for i, k in zip(frame.sensors["id"], frame.sensors["kind"], strict=True)
        if k in kinds
    )
    if not targets:
        raise InputError(f"site {site.name!r} has no sensor of kind {kinds}")
    row = frame.n_times // 2 if split is None else frame.index_of(split)
    return TransferSite(name or site.name, family, frame, targets, int(row))


def loso_run(
    sites: Mapping[str, Site],
    target: str,
    cache: str | Path,
    config: RunConfig,
    until: pd.Timestamp | None = None,
) -> LoadedRun:
    """A run pretrained on every site but `target` (each cut before `until` when given),
    cached in ``cache/loso-<target>-<config_tag>``. The held-out site is known by its key
    and its own name (`Site.name`, which may differ): another entry with either name is
    refused before training, and the run's training sites are checked against both."""
    held_out = {target, sites[target].name}
    others = [s for n, s in sites.items() if n != target]
    twice = [s.name for s in others if s.name in held_out]
    if twice:
        raise InputError(
            f"site {twice[0]!r} is the transfer target and one of the sites to pretrain on",
            hint="list each site once",
        )
    folder = Path(cache) / f"loso-{target}-{config_tag(config)}"
    run = pretrained_run(others, folder, config, [until] * len(others))
    for name in held_out:
        check_disjoint(run, name)
    return run


# --------------------------------------------------------------------------- the protocol
@dataclass(frozen=True)
class TransferSite:
    """A target site: its daily frame, the sensors forecast, the split row."""

    name: str
    family: str
    frame: SensorFrame
    targets: tuple[str, ...]
    split: int  # first row of the test period

    def tracks(self) -> list[Track]:
        return [frame_track(self.frame, s, 0.0, name=f"{self.name}/{s}") for s in self.targets]


@dataclass(frozen=True)
class Bundle:
    """Samples of one site under one encoder: x (N, F), change (N, K) raw units,
    level (N,), scale (N,), sensor (N,) index."""

    x: np.ndarray
    change: np.ndarray
    level: np.ndarray
    scale: np.ndarray
    sensor: np.ndarray


def site_samples(
    features: EncoderFeatures,
    site: TransferSite,
    horizons: Sequence[float],
    test: bool,
    stride: float,
    min_rows: int | None = None,
) -> Bundle:
    """Training (test False: origins and targets before the split) or test samples;
    origins from `min_rows` rows in (default: one window span of `features`)."""
    hs = np.asarray(horizons, dtype=np.float64)
    xs, ch, lv, sc, se = [], [], [], [], []
    span = features.spec.span(1) if min_rows is None else int(min_rows)
    for j, tr in enumerate(site.tracks()):
        if test:
            rows = origin_rows(tr, stride, span)
            rows = rows[rows >= site.split]
            src = tr
        elif site.split < 1:
            continue  # no training period (row split - 1 would wrap round to the last row)
        else:
            src = tr.cut(float(tr.times()[site.split - 1]))
            rows = origin_rows(src, stride, span)
        if rows.size == 0:
            continue
        f = features.at(src, rows)
        future = src.value_at(src.times()[rows][:, None] + hs[None, :])  # (n, K)
        keep = f.ok & np.isfinite(future).any(axis=1)
        xs.append(f.x[keep])
        ch.append(future[keep] - f.level[keep, None])
        lv.append(f.level[keep])
        sc.append(f.scale[keep])
        se.append(np.full(int(keep.sum()), j, dtype=np.int64))
    if not xs:
        k = hs.size
        z = np.zeros(0)
        return Bundle(np.zeros((0, features.dim)), np.zeros((0, k)), z, z, z.astype(np.int64))
    return Bundle(
        np.concatenate(xs),
        np.concatenate(ch),
        np.concatenate(lv),
        np.concatenate(sc),
        np.concatenate(se),
    )


def source_samples(
    features: EncoderFeatures,
    sources: Sequence[TransferSite],
    horizons: Sequence[float],
    stride: float,
    min_rows: int | None = None,
) -> Bundle:
    """Training samples of every source site (origins and targets before each one's
    split), concatenated; `sensor` holds the source site's index (one group per site)."""
    parts = [site_samples(features, s, horizons, False, stride, min_rows) for s in sources]
    parts = [b for b in parts if b.x.shape[0]]
    if not parts:
        raise ValueError("the source sites have no training samples")
    return Bundle(
        np.concatenate([b.x for b in parts]),
        np.concatenate([b.change for b in parts]),
        np.concatenate([b.level for b in parts]),
        np.concatenate([b.scale for b in parts]),
        np.concatenate([np.full(b.x.shape[0], i, dtype=np.int64) for i, b in enumerate(parts)]),
    )


def check_sources(target: TransferSite, sources: Sequence[TransferSite]) -> None:
    """Refuse a source that is the target, or whose labelled rows reach past the start of
    the target's test period (source heads must see only what precedes it)."""
    for s in sources:
        if s.name == target.name:
            raise ValueError(f"the target {target.name!r} cannot be its own source")
    if target.split >= target.frame.n_times:
        return  # no test period: nothing a source could reach into
    start = target.frame.time[target.split]
    for s in sources:
        if s.split > 0 and s.frame.time[s.split - 1] >= start:
            raise ValueError(
                f"source {s.name!r} holds rows up to {s.frame.time[s.split - 1]}, at or after "
                f"the start of {target.name!r}'s test period ({start}); cut it there"
            )


def draw_labels(n: int, fraction: float, seed: int, min_labels: int = 4) -> np.ndarray:
    """Indices of a random `fraction` of n samples (at least `min_labels`), sorted."""
    k = min(n, max(int(min_labels), round(fraction * n)))
    rng = np.random.default_rng([int(seed), round(fraction * 1e6), 0x7452])
    return np.sort(rng.choice(n, size=k, replace=False))


def _head(kind: str, seed: int) -> RidgeHead | MLPHead:
    if kind == "ridge":
        return make_head(kind, min_samples=3)
    return make_head(kind, seed, min_samples=3, epochs=150, batch_size=512)


def probe(
    train: Bundle,
    test: Bundle,
    labels: np.ndarray,
    head: str,
    seed: int,
    components: int | None = 16,
) -> tuple[np.ndarray, np.ndarray]:
    """Fit `head` on the labelled training samples; (mae (K,), persistence mae (K,)) on test.

    As the forecasters do: the embedding block reduced to `components` principal components
    of all training-period features (no targets), targets asinh(change / local scale),
    penalty chosen on held-out sensors, predictions clipped to the labels' range.
    """
    y = _target(train, labels)
    reducer = Reducer(train.x.shape[1] - N_LEVEL, components).fit(train.x)
    model = _head(head, seed).fit(reducer.transform(train.x[labels]), y, train.sensor[labels])
    return _score(test, model.predict(reducer.transform(test.x)))


def _target(b: Bundle, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
    """The heads' target: asinh(change / local scale), (n, K)."""
    return np.asarray(np.arcsinh(b.change[rows] / b.scale[rows, None]))


@dataclass(frozen=True)
class SourceHead:
    """A head fitted on source sites' samples, with the reducer its features went through."""

    reducer: Reducer
    head: RidgeHead | MLPHead


def fit_source_head(
    source: Bundle, train: Bundle, head: str, seed: int, components: int | None = 16
) -> SourceHead:
    """Fit `head` on every sample of `source` (groups: its `sensor` column, one per source
    site), the embedding block reduced by principal components of the source and the
    target's training-period features (no targets of the target site)."""
    if source.x.shape[0] == 0:
        raise ValueError("no source samples to fit a head on")
    reducer = Reducer(train.x.shape[1] - N_LEVEL, components).fit(
        np.concatenate([source.x, train.x])
    )
    model = _head(head, seed).fit(reducer.transform(source.x), _target(source), source.sensor)
    return SourceHead(reducer, model)


def source_probe(
    fitted: SourceHead, train: Bundle, test: Bundle, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The source head corrected on the target's labelled samples (`CorrectedHead`);
    (mae (K,), persistence mae (K,)) on `test`, as `probe`."""
    r = fitted.reducer
    model = CorrectedHead(fitted.head).fit(
        r.transform(train.x[labels]), _target(train, labels), train.sensor[labels]
    )
    return _score(test, model.predict(r.transform(test.x)))


def _score(test: Bundle, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mae (K,), persistence mae (K,)) of head outputs u (M, K) in target units."""
    pred = test.level[:, None] + np.sinh(u) * test.scale[:, None]
    truth = test.level[:, None] + test.change
    err = np.abs(pred - truth)
    base = np.abs(test.change)
    ok = np.isfinite(truth)
    mae = np.array([_mean(err[ok[:, j], j]) for j in range(u.shape[1])])  # NaN: no model
    pers = np.array([_mean(base[ok[:, j], j]) for j in range(u.shape[1])])
    return mae, pers


def _mean(v: np.ndarray) -> float:
    """Mean of `v`, NaN when it is empty or holds a NaN (a horizon without a model)."""
    return float(np.mean(v)) if v.size else float("nan")


def transfer_records(
    site: TransferSite,
    encoders: Mapping[str, EncoderFeatures],
    horizons: Sequence[float],
    seed: int,
    fractions: Sequence[float] = FRACTIONS,
    heads: Sequence[str] = ("ridge", "mlp"),
    stride_train: float = 2.0,
    stride_test: float = 7.0,
    sources: Sequence[TransferSite] = (),
    source_encoders: Sequence[str] = (),
) -> pd.DataFrame:
    """One row per (encoder, head, fraction, horizon): mae, persistence mae, ratio, n.

    With `sources` (other sites, each cut at its own `split`), every encoder named in
    `source_encoders` also gives the arm ``<name>_src``: its head fitted on the sources'
    samples (`fit_source_head`), then corrected on the same target labels (`source_probe`).
    """
    rows: list[dict[str, Any]] = []
    span = max(f.spec.span(1) for f in encoders.values())  # one set of origins for all
    bundles = {
        name: (
            site_samples(f, site, horizons, False, stride_train, span),
            site_samples(f, site, horizons, True, stride_test, span),
        )
        for name, f in encoders.items()
    }
    sizes = {name: (b[0].x.shape[0], b[1].x.shape[0]) for name, b in bundles.items()}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"encoders gave different sample counts {sizes}")
    n = next(iter(sizes.values()), (0, 0))[0]
    if n == 0:
        log.warning("transfer: site %s has no training samples", site.name)
        return pd.DataFrame(rows)
    unknown = sorted(set(source_encoders) - set(encoders))
    if unknown:
        raise ValueError(f"source_encoders {unknown} are not among the encoders {sorted(encoders)}")
    check_sources(site, sources)
    fitted: dict[tuple[str, str], SourceHead] = {}
    for name in source_encoders if sources else ():
        src = source_samples(encoders[name], sources, horizons, stride_train, span)
        log.info("transfer: %s, %d source samples for %s", site.name, src.x.shape[0], name)
        for head in heads:
            with one_thread():
                fitted[(name, head)] = fit_source_head(src, bundles[name][0], head, seed)
    for frac in fractions:
        labels = draw_labels(n, frac, seed)
        arms: list[tuple[str, str, tuple[Bundle, Bundle], SourceHead | None]] = [
            (name, head, b, None) for name, b in bundles.items() for head in heads
        ]
        arms += [(f"{e}_src", h, bundles[e], f) for (e, h), f in fitted.items()]
        for name, head, (train, test), source in arms:
            with one_thread():
                if source is None:
                    mae, pers = probe(train, test, labels, head, seed)
                else:
                    mae, pers = source_probe(source, train, test, labels)
            for j, h in enumerate(horizons):
                rows.append(
                    {
                        "site": site.name,
                        "family": site.family,
                        "encoder": name,
                        "head": head,
                        "fraction": frac,
                        "labels": int(labels.size),
                        "horizon": float(h),
                        "seed": seed,
                        "mae": float(mae[j]),
                        "persistence_mae": float(pers[j]),
                        "mae_vs_persistence": float(mae[j] / pers[j])
                        if pers[j] > 0
                        else float("nan"),
                        "n_test": int(test.x.shape[0]),
                    }
                )
    return pd.DataFrame(rows)


def wins(
    records: pd.DataFrame,
    encoder: str = "pretrained",
    baseline: str = "scratch",
    max_fraction: float = 0.1,
) -> pd.DataFrame:
    """Per (site, horizon, head, fraction <= max_fraction): mean and std over seeds of the
    MAE of `encoder` and `baseline`, whether it wins, and whether it loses by more than one
    std (the larger of the two stds).

    Paired over seeds: both means are over the same seeds (``seeds``: those where both
    arms have a finite MAE; a seed run for one arm only is left out). A seed where
    `encoder` has no forecast (NaN) and `baseline` has one counts against the encoder: the
    pair is no win and is flagged worse. A tie is no win."""
    r = records[records["fraction"] <= max_fraction + 1e-12]
    keys = ["site", "family", "head", "fraction", "horizon"]
    a = r.loc[r["encoder"] == encoder, [*keys, "seed", "mae"]]
    b = r.loc[r["encoder"] == baseline, [*keys, "seed", "mae"]]
    p = a.merge(b, on=[*keys, "seed"], suffixes=("", "_base"))
    both = p["mae"].notna() & p["mae_base"].notna()
    p = p.assign(
        mae=p["mae"].where(both),
        mae_base=p["mae_base"].where(both),
        both=both,
        failed=p["mae"].isna() & p["mae_base"].notna(),
    )
    m = (
        p.groupby(keys)
        .agg(
            mean=("mae", "mean"),
            std=("mae", "std"),
            mean_base=("mae_base", "mean"),
            std_base=("mae_base", "std"),
            seeds=("both", "sum"),
            failed=("failed", "any"),
        )
        .reset_index()
    )
    std = np.fmax(m["std"].fillna(0.0), m["std_base"].fillna(0.0))
    m["wins"] = (m["mean"] < m["mean_base"]) & ~m["failed"]
    m["worse_by_more_than_1std"] = ((m["mean"] - m["mean_base"]) > std) | m["failed"]
    return m.drop(columns="failed")


__all__ = [
    "FRACTIONS",
    "TASK_KINDS",
    "Bundle",
    "SourceHead",
    "TransferSite",
    "check_disjoint",
    "check_sources",
    "config_tag",
    "daily_frame",
    "draw_labels",
    "fit_source_head",
    "forecast_config",
    "loso_run",
    "pretrained_run",
    "probe",
    "random_run",
    "site_samples",
    "source_probe",
    "source_samples",
    "split_time",
    "target_only_run",
    "transfer_records",
    "transfer_site",
    "wins",
]
