"""GeoJEPA as a harness detector: the JEPA's energy ("geojepa") and a kNN density on its
per-sensor target-encoder embeddings ("geojepa_density"); their window-relative forms
("geojepa_wr", "geojepa_density_wr": each window's per-sensor level removed before the
model sees it, `geojepa.energy.relative_window`); and "geojepa_fused", the mean of the
window-relative energy and density after each is put on its training scale. All of these
train with the tiny preset's recipe (a target EMA), the one `geojepa pretrain` gives;
"geojepa_noema" and "geojepa_density_noema" are the energy and the density of a model
trained without a target EMA and with a strong SIGReg (`config.no_ema_recipe`);
"geojepa_factorised" and "geojepa_density_factorised" those of a model with factorised
attention and a strong SIGReg (`config.factorised_sigreg_recipe`); "geojepa_trigger" the
mean of the energy and fixed trigger levels, each on its training scale, and
"geojepa_trigger_max" the larger of the two. "geojepa_family" is the energy of a model whose
per-site pretraining starts from a base run (`init`; the ``GEOJEPA_DETECTOR_INIT``
environment variable names it for the registered detector) instead of random weights.
"geojepa_mask_heavy" and "geojepa_density_mask_heavy" (opt-in) train with heavier masks
(`config.heavy_mask_recipe`: about 64 % of the tokens are targets instead of 40 %);
"geojepa_ema_fast" and "geojepa_density_ema_fast" (opt-in) with the target EMA's momentum
starting at 0.99 instead of 0.999 (`config.fast_ema_recipe`); "geojepa_missing_flag" and
"geojepa_density_missing_flag" (opt-in) with the patch embedding flagging missing cells
(`config.missing_flag_recipe`).

``fit(frame, train_end)`` pretrains the tiny preset on the frame's TRAINING ROWS only
(``frame.slice_time(0, train_end)``: later rows do not exist for the model), for `steps`
steps, then scores the training rows to learn each sensor's centre and spread
(`SensorwiseDetector`). ``score(frame)`` is the energy sweep of `geojepa.energy`
(`frame_energy` with `geojepa.export.TorchEngine`): the scoring path of ``geojepa detect``
and the edge scorer, which then score forcing sensors (rain, temperature, pressure, load)
as context only: that form is "geojepa_response" (`geojepa.detectors.response`).

Runs are cached under `cache_dir` (default: the ``GEOJEPA_DETECTOR_CACHE`` environment
variable, else no cache: a temporary folder per fit) keyed by a hash of the training rows,
the sensors and the resolved configuration (and, with `init`, a digest of the base run's
checkpoint file), so a rerun of a benchmark does not retrain.

Within one process, a loaded run and the raw scores of a frame are memoised (a few
entries), so the variants of one case share one pretraining and one sweep per input form.

Guarantees: fitting reads rows < train_end only (the hash and the training both see the
cut frame); the same frame, config and seed give the same cache key; scores are NaN only
where a cell is unobserved (an observed cell no window could score gets 0, the training
median); the window-relative and the fused
forms use the same pretrained model as the plain ones (no extra training, nothing learned
from the test period).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from geojepa.detectors.base import (
    PLUGIN_MODULES,
    DetectorScores,
    SensorwiseDetector,
    register_detector,
    zero_unscored,
)
from geojepa.detectors.baselines import TriggerLevels
from geojepa.detectors.density import EmbeddingDensity
from geojepa.frame import SensorFrame

if TYPE_CHECKING:
    from geojepa.checkpoint import LoadedRun
    from geojepa.config import RunConfig

log = logging.getLogger(__name__)

__all__ = [
    "JepaDensity",
    "JepaEnergy",
    "JepaFused",
    "detector_config",
    "frame_hash",
    "pretrained_run",
    "run_key",
    "sensor_embeddings",
]

CACHE_ENV = "GEOJEPA_DETECTOR_CACHE"
INIT_ENV = "GEOJEPA_DETECTOR_INIT"
_MEMO_SIZE = 12
_RUNS: dict[str, LoadedRun] = {}
_RAW: dict[tuple[str, str, str], np.ndarray] = {}


def _remember(memo: dict[Any, Any], key: Any, value: Any) -> None:
    """Keep at most `_MEMO_SIZE` entries, dropping the oldest."""
    memo[key] = value
    while len(memo) > _MEMO_SIZE:
        memo.pop(next(iter(memo)))


def detector_config(
    seed: int,
    steps: int,
    *,
    fusion: str | None = None,
    mask_weights: Mapping[str, float] | None = None,
    batch_size: int = 16,
    model_overrides: Mapping[str, Any] | None = None,
    window_length: int | None = None,
    recipe: str = "ema",
) -> RunConfig:
    """The tiny preset for a detector fit: `steps` steps, evaluation only at the end.
    `recipe`: one of `config.RECIPES` ("ema", the preset's own; "no_ema"; "factorised_sigreg").
    `model_overrides` / `window_length` shrink it further (tests)."""
    from geojepa.config import preset, with_recipe

    cfg = with_recipe(preset("tiny"), recipe)
    model = cfg.model if fusion is None else replace(cfg.model, fusion=fusion)
    if model_overrides:
        model = replace(model, **dict(model_overrides))
    window = replace(cfg.window, patch=model.patch)
    if window_length is not None:
        window = replace(window, length=window_length, stride=max(window_length // 4, 1))
    mask = cfg.mask if mask_weights is None else replace(cfg.mask, weights=dict(mask_weights))
    train = replace(
        cfg.train,
        steps=steps,
        batch_size=batch_size,
        eval_every=max(steps, 1),
        checkpoint_every=max(steps, 1),
        threads=1,
    )
    return replace(cfg, model=model, mask=mask, window=window, train=train, seed=seed)


def frame_hash(frame: SensorFrame, config: Mapping[str, Any]) -> str:
    """A short hex digest of the frame's values, observed cells, times, sensors and `config`."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(np.where(frame.observed, frame.values, 0.0)).tobytes())
    h.update(np.ascontiguousarray(frame.observed).tobytes())
    h.update(np.ascontiguousarray(frame.time.astype("datetime64[ns]")).tobytes())
    h.update(frame.sensors.to_csv(index=False).encode())
    h.update(json.dumps(config, sort_keys=True, default=str).encode())
    return h.hexdigest()[:20]


def run_key(train: SensorFrame, config: RunConfig, init: str | Path | None = None) -> str:
    """The cache key of a detector's run: training rows, configuration and, with `init`, a
    digest of the base run's checkpoint file (a retrained base gives new keys)."""
    from geojepa.checkpoint import checkpoint_path

    extra: dict[str, Any] = {}
    if init is not None:
        h = hashlib.sha256()
        with checkpoint_path(init).open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        extra["init"] = h.hexdigest()[:20]
    return frame_hash(train, {**config.to_dict(), **extra})


def _cache_root(cache_dir: str | Path | None) -> str | Path | None:
    """The run cache folder: `cache_dir`, else the ``GEOJEPA_DETECTOR_CACHE`` variable."""
    return cache_dir if cache_dir is not None else os.environ.get(CACHE_ENV)


def _memo_key(cache_dir: str | Path | None, key: str) -> str:
    """The in-process memo key of a run: its cache folder and its `run_key`."""
    return f"{_cache_root(cache_dir)}|{key}"


def pretrained_run(
    train: SensorFrame,
    config: RunConfig,
    cache_dir: str | Path | None,
    init: str | Path | None = None,
    key: str | None = None,
) -> LoadedRun:
    """Pretrain on `train` (every row of it), from `init`'s weights when given, or reuse a
    cached run with the same key. `key`: `run_key(train, config, init)` when the caller
    already has it (it hashes the rows and the base checkpoint)."""
    from geojepa.checkpoint import checkpoint_path, load_run
    from geojepa.train import pretrain

    key = run_key(train, config, init) if key is None else key
    root = _cache_root(cache_dir)
    memo = _memo_key(cache_dir, key)
    if memo in _RUNS:
        return _RUNS[memo]
    if root:
        run_dir = Path(root) / key
        if checkpoint_path(run_dir).exists():
            log.info("reusing cached JEPA run %s", run_dir)
        else:
            pretrain([train], run_dir, config, tracking_uri="none", progress=False, init=init)
        run = load_run(run_dir)
    else:
        with tempfile.TemporaryDirectory(prefix="geojepa-det-") as tmp:
            pretrain(
                [train], Path(tmp) / "run", config, tracking_uri="none", progress=False, init=init
            )
            run = load_run(Path(tmp) / "run")
    _remember(_RUNS, memo, run)
    return run


@contextmanager
def _one_thread() -> Iterator[None]:
    """Torch on one thread inside (a shared machine's cores; spinning pools slow all)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class _JepaBase(SensorwiseDetector):
    """Shared fit: pretrain (or reuse) the JEPA on the training rows."""

    def __init__(
        self,
        steps: int = 300,
        seed: int = 0,
        fusion: str | None = None,
        mask_weights: Mapping[str, float] | None = None,
        cache_dir: str | None = None,
        model_overrides: Mapping[str, Any] | None = None,
        window_length: int | None = None,
        relative: bool = False,
        recipe: str = "ema",
        init: str | None = None,
    ) -> None:
        self.steps = steps
        self.seed = seed
        self.fusion = fusion
        self.mask_weights = mask_weights
        self.cache_dir = cache_dir
        self.model_overrides = model_overrides
        self.window_length = window_length
        self.relative = relative
        self.recipe = recipe
        self.init = init

    def score(self, frame: SensorFrame) -> DetectorScores:
        """Scores as `SensorwiseDetector` gives them, except that an observed cell no window
        could score (no context: a single gauge's first patches) gets 0, the training
        median: no evidence either way, never NaN where there is a reading."""
        return zero_unscored(super().score(frame), frame)

    def _memo_raw(self, what: str, frame: SensorFrame, compute: Any) -> np.ndarray:
        """Raw scores (T, C) of `frame` by `compute()`, memoised per run, input form and frame."""
        key = (self.run_key_, f"{what}:relative={self.relative}", frame_hash(frame, {}))
        if key not in _RAW:
            _remember(_RAW, key, compute())
        return _RAW[key].copy()

    def _load(self, train: SensorFrame) -> None:
        cfg = detector_config(
            self.seed,
            self.steps,
            fusion=self.fusion,
            mask_weights=self.mask_weights,
            model_overrides=self.model_overrides,
            window_length=self.window_length,
            recipe=self.recipe,
        )
        key = run_key(train, cfg, self.init)
        with _one_thread():
            run = pretrained_run(train, cfg, self.cache_dir, self.init, key=key)
        self.run_key_ = _memo_key(self.cache_dir, key)
        self.run_ = run
        self.window_ = run.config.window
        self.normaliser_ = run.normaliser


class JepaEnergy(_JepaBase):
    """Per-sensor score = the JEPA energy (latent prediction error under the mask sweep)."""

    def _engine(self) -> Any:
        from geojepa.export import TorchEngine

        return TorchEngine(self.run_.model.eval())

    def _fit_train(self, train: SensorFrame) -> np.ndarray:
        self._load(train)
        return self._raw(train)

    def lookahead_rows(self) -> int:
        """A window's energy fills the stride of rows it ends with: stride - 1 rows ahead."""
        from geojepa.energy import EnergySpec

        return EnergySpec(relative=self.relative).stride(self.window_) - 1

    def _raw(self, frame: SensorFrame) -> np.ndarray:
        from geojepa.energy import EnergySpec, frame_energy

        def compute() -> np.ndarray:
            spec = EnergySpec(relative=self.relative)
            with _one_thread():
                return frame_energy(
                    self._engine(), frame, self.normaliser_, self.window_, spec
                )  # (T, C)

        return self._memo_raw("energy", frame, compute)


def sensor_embeddings(
    run: LoadedRun, frame: SensorFrame, stride: int, relative: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Target-encoder embedding of each sensor's last patch in windows ending every `stride`
    rows: ends (W,) exclusive row indices, emb (W, C, D); a sensor whose last patch holds no
    reading gets NaN (`geojepa.density_score.last_patch_embeddings`). The windows count
    from the frame's first row; `detect --score density` aligns them to the absolute grid.
    `relative`: windows made window-relative first (`relative_window`)."""
    from geojepa.density_score import last_patch_embeddings, window_ends
    from geojepa.export import TorchEngine

    ends = window_ends(frame.n_times, stride)
    engine = TorchEngine(run.model.eval())
    emb = last_patch_embeddings(engine, frame, run.normaliser, run.config.window, ends, relative)
    return ends, emb  # (W,), (W, C, D)


class JepaDensity(_JepaBase):
    """Per-sensor score = density score of the sensor's latest-patch embedding against its
    own training embeddings (one `EmbeddingDensity` per sensor, fitted on training
    windows): the Mahalanobis distance under a Ledoit-Wolf shrunk covariance here;
    `JepaDensityKnn` and `JepaDensityIForest` use the other two density methods. A
    training window, embedded again when a frame is scored, is scored by a density fitted
    without its block of training windows (`EmbeddingDensity`), so the training scale and
    thresholds come from out-of-sample scores.

    Mahalanobis since a rule judged on 18 detection cases (`docs/results/detect.md`, "The
    three density methods"): with forcing sensors as context it beat the kNN distance, the
    earlier default, on 15 of 18 cases (mean AUC-PR 0.461 against 0.373)."""

    density_method: ClassVar[str] = "mahalanobis"

    def _fit_train(self, train: SensorFrame) -> None:
        self._load(train)
        stride = self.window_.patch
        with _one_thread():
            _, emb = sensor_embeddings(self.run_, train, stride, self.relative)  # (W, C, D)
        self.density_: list[EmbeddingDensity | None] = []
        for c in range(train.n_sensors):
            x = emb[:, c]
            x = x[np.isfinite(x).all(axis=1)]
            self.density_.append(
                EmbeddingDensity(self.density_method, n_neighbors=5, seed=self.seed).fit(x)
                if len(x) >= 3
                else None
            )
        return None

    def _raw(self, frame: SensorFrame) -> np.ndarray:
        return self._memo_raw(
            f"density-{self.density_method}", frame, lambda: self._density_raw(frame)
        )

    def lookahead_rows(self) -> int:
        """A window's density fills the patch of rows it ends with: patch - 1 rows ahead."""
        return int(self.window_.patch) - 1

    def _density_raw(self, frame: SensorFrame) -> np.ndarray:
        stride = self.window_.patch
        with _one_thread():
            ends, emb = sensor_embeddings(
                self.run_, frame, stride, self.relative
            )  # (W,), (W, C, D)
        out = np.full((frame.n_times, frame.n_sensors), np.nan)
        starts = np.concatenate([[0], ends[:-1]])
        for c, dens in enumerate(self.density_):
            if dens is None:
                continue
            x = emb[:, c]
            ok = np.isfinite(x).all(axis=1)
            s = np.full(len(ends), np.nan)
            if ok.any():
                s[ok] = dens.score(x[ok])
            for w in range(len(ends)):  # each window scores the rows since the previous one
                out[starts[w] : ends[w], c] = s[w]
        return np.where(frame.observed, out, np.nan)  # (T, C)


class JepaDensityKnn(JepaDensity):
    """`JepaDensity` with the mean distance to the 5 nearest training embeddings (the
    density detector's method until the Mahalanobis distance replaced it)."""

    density_method: ClassVar[str] = "knn"


class JepaDensityIForest(JepaDensity):
    """`JepaDensity` with IsolationForest on the embeddings."""

    density_method: ClassVar[str] = "iforest"


def _mean_of_finite(scores: np.ndarray) -> np.ndarray:
    """Mean over the first axis of the finite values: (K, T, C) -> (T, C); NaN where none is."""
    ok = np.isfinite(scores)
    total = np.where(ok, scores, 0.0).sum(axis=0)
    count = ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


class JepaFused(_JepaBase):
    """Per-sensor score = mean of the energy and the embedding density, each centred and
    scaled on its own training scores (`SensorwiseDetector`'s normalisation), from one
    pretrained model; a cell scored by only one of them keeps that one's value."""

    def _parts(self) -> list[SensorwiseDetector]:
        kw = self.get_params()
        return [JepaEnergy(**kw), JepaDensity(**kw)]

    def _fit_train(self, train: SensorFrame) -> np.ndarray:
        self.parts_ = [p.fit(train, train.n_times) for p in self._parts()]
        return self._raw(train)

    def lookahead_rows(self) -> int:
        return max(p.lookahead_rows() for p in self.parts_)

    def _raw(self, frame: SensorFrame) -> np.ndarray:
        scores = np.stack([p.score(frame).sensor_scores for p in self.parts_])  # (2, T, C)
        return _mean_of_finite(scores)


class _ScaledTriggerLevels(TriggerLevels):
    """Trigger levels put on their training scale (`SensorwiseDetector`'s normalisation:
    centred on the training median, divided by q99 - median), as the JEPA scores are."""

    normalise: ClassVar[bool] = True


class JepaWithTrigger(_JepaBase):
    """Per-sensor score = the mean of the JEPA energy and fixed trigger levels
    (`TriggerLevels`: the training 0.5 / 99.5 percentiles), each centred on its training
    median and divided by its training spread (q99 - median), so that both read 1 at their
    own training q99; a cell scored by only one of them keeps that one's value.

    At window level the energy reads each window from its own level and so cannot see a
    gauge leave its usual range; trigger levels see nothing else. Combining them asks
    whether the learned score adds to the check monitoring already runs. The energy part
    is the `geojepa` detector's, from the same pretrained run."""

    combine: ClassVar[str] = "mean"

    def _fit_train(self, train: SensorFrame) -> np.ndarray:
        self.energy_ = JepaEnergy(**self.get_params()).fit(train, train.n_times)
        self.trigger_ = _ScaledTriggerLevels().fit(train, train.n_times)
        return self._raw(train)

    def lookahead_rows(self) -> int:
        return self.energy_.lookahead_rows()  # trigger levels read row t only

    def _raw(self, frame: SensorFrame) -> np.ndarray:
        energy = self.energy_.score(frame).sensor_scores  # (T, C), on its training scale
        trigger = self.trigger_.score(frame).sensor_scores  # (T, C), on its training scale
        if self.combine == "max":
            return np.fmax(energy, trigger)  # (T, C); NaN only where both are
        return _mean_of_finite(np.stack([energy, trigger]))  # (T, C)


class JepaWithTriggerMax(JepaWithTrigger):
    """`JepaWithTrigger` with the larger of the two scores instead of their mean: the energy
    as a second trigger, an alarm when either would raise one (as a TARP raises one when
    any instrument crosses its level)."""

    combine: ClassVar[str] = "max"


DETECTOR_STEPS = 200


def _energy(seed: int) -> JepaEnergy:
    return JepaEnergy(steps=DETECTOR_STEPS, seed=seed)


def _density(seed: int) -> JepaDensity:
    return JepaDensity(steps=DETECTOR_STEPS, seed=seed)


def _density_knn(seed: int) -> JepaDensity:
    return JepaDensityKnn(steps=DETECTOR_STEPS, seed=seed)


def _density_iforest(seed: int) -> JepaDensity:
    return JepaDensityIForest(steps=DETECTOR_STEPS, seed=seed)


def _energy_wr(seed: int) -> JepaEnergy:
    return JepaEnergy(steps=DETECTOR_STEPS, seed=seed, relative=True)


def _density_wr(seed: int) -> JepaDensity:
    return JepaDensity(steps=DETECTOR_STEPS, seed=seed, relative=True)


def _fused(seed: int) -> JepaFused:
    return JepaFused(steps=DETECTOR_STEPS, seed=seed, relative=True)


def _energy_density(seed: int) -> JepaFused:
    return JepaFused(steps=DETECTOR_STEPS, seed=seed)


class _RecipeFactory:
    """``seed -> detector`` of `kind` (JepaEnergy or JepaDensity) trained with `recipe`
    (`config.RECIPES`) for `DETECTOR_STEPS` steps, read when called."""

    def __init__(self, kind: type[JepaEnergy] | type[JepaDensity], recipe: str) -> None:
        self.kind = kind
        self.recipe = recipe

    def __call__(self, seed: int) -> JepaEnergy | JepaDensity:
        return self.kind(steps=DETECTOR_STEPS, seed=seed, recipe=self.recipe)


RECIPE_DETECTORS: dict[str, tuple[str, bool]] = {
    "noema": ("no_ema", False),
    "factorised": ("factorised_sigreg", False),
    # the masking-ratio sweep's variants (docs/results/masking.md): named, never a default
    "mask_heavy": ("heavy_mask", True),
    "ema_fast": ("fast_ema", True),
    "missing_flag": ("missing_flag", True),
}
"""name suffix -> (recipe, opt-in): "geojepa_<suffix>" (energy) and
"geojepa_density_<suffix>" are registered for each."""


def _register_recipe_detectors(opt_in: bool) -> None:
    """Register the energy and density detectors of the `RECIPE_DETECTORS` whose opt-in
    status is `opt_in` (the defaults first, the study variants after the others)."""
    for suffix, (recipe, variant) in RECIPE_DETECTORS.items():
        if variant is opt_in:
            register_detector(
                f"geojepa_{suffix}", _RecipeFactory(JepaEnergy, recipe), opt_in=opt_in
            )
            register_detector(
                f"geojepa_density_{suffix}", _RecipeFactory(JepaDensity, recipe), opt_in=opt_in
            )


def _with_trigger(seed: int) -> JepaWithTrigger:
    return JepaWithTrigger(steps=DETECTOR_STEPS, seed=seed)


def _with_trigger_max(seed: int) -> JepaWithTriggerMax:
    return JepaWithTriggerMax(steps=DETECTOR_STEPS, seed=seed)


def _family(seed: int) -> JepaEnergy:
    from geojepa.errors import InputError

    base = os.environ.get(INIT_ENV)
    if not base:
        raise InputError(
            f"geojepa_family needs a base run: set {INIT_ENV} to its folder",
            hint="benchmarks/bench_detect.py --family-base FOLDER builds one from simulated "
            "sites that are not cases, or pass any run of the detectors' configuration",
        )
    return JepaEnergy(steps=DETECTOR_STEPS, seed=seed, init=base)


register_detector("geojepa", _energy)
register_detector("geojepa_density", _density)
register_detector("geojepa_wr", _energy_wr)
register_detector("geojepa_density_wr", _density_wr)
register_detector("geojepa_fused", _fused)
_register_recipe_detectors(opt_in=False)
register_detector("geojepa_trigger", _with_trigger)
register_detector("geojepa_trigger_max", _with_trigger_max)
register_detector("geojepa_family", _family, opt_in=True)  # needs a base run
# the two other density methods on the same embeddings (docs/results/detect.md)
register_detector("geojepa_density_knn", _density_knn, opt_in=True)
# the energy and the (Mahalanobis) density averaged on their training scales, on the
# model's own inputs (geojepa_fused is the same on window-relative inputs)
register_detector("geojepa_energy_density", _energy_density, opt_in=True)
register_detector("geojepa_density_iforest", _density_iforest, opt_in=True)
_register_recipe_detectors(opt_in=True)
if __name__ not in PLUGIN_MODULES:
    PLUGIN_MODULES.append(__name__)
