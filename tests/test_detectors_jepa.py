"""The GeoJEPA detectors in the harness: registered, training rows only, scores where data
is, cached runs reused. Behaviour only (a very small model, a few steps), not quality."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from geojepa.detectors import available_detectors, make_detector
from geojepa.frame import SensorFrame, to_frame

torch = pytest.importorskip("torch")

from test_export import make_site  # noqa: E402

SMALL = {
    "dim": 32,
    "depth": 1,
    "heads": 2,
    "predictor_dim": 32,
    "predictor_depth": 1,
    "predictor_heads": 2,
    "patch": 8,
}


def _frame(seed: int = 5) -> SensorFrame:
    return to_frame(make_site(seed, n_times=24 * 6, n_sensors=4))


def _small_kw(cache: Path | None, **kw: object) -> dict[str, object]:
    """Settings of a detector small enough for a unit test (3 steps, a 32-step window)."""
    return {
        "steps": 3,
        "seed": 0,
        "cache_dir": None if cache is None else str(cache),
        "model_overrides": SMALL,
        "window_length": 32,
        **kw,
    }


def _make(name: str, cache: Path | None, **kw: object) -> object:
    from geojepa.detectors.jepa import JepaDensity, JepaEnergy, JepaWithTrigger
    from geojepa.detectors.reconstruction import Reconstruction

    classes = {
        "geojepa": JepaEnergy,
        "geojepa_density": JepaDensity,
        "geojepa_trigger": JepaWithTrigger,
    }
    cls = classes.get(name, Reconstruction)
    return cls(**_small_kw(cache, **kw))  # type: ignore[operator]


def test_registered_as_plugins() -> None:
    names = available_detectors()
    assert {"geojepa", "geojepa_density", "reconstruction"} <= set(names)
    det = make_detector("geojepa", seed=3)
    assert det.get_params()["seed"] == 3


@pytest.mark.parametrize(
    "name", ["geojepa", "geojepa_density", "geojepa_trigger", "reconstruction"]
)
def test_scores_where_data_is_and_training_rows_only(name: str, tmp_path: Path) -> None:
    frame = _frame()
    end = 96
    det = _make(name, tmp_path / "cache").fit(frame, end)  # type: ignore[attr-defined]
    scores = det.score(frame)
    assert scores.sensor_scores.shape == (frame.n_times, frame.n_sensors)
    scores.check_nan(frame)  # NaN only where unobserved
    assert np.isfinite(scores.score).mean() > 0.9
    # the same training rows with a changed test period: the same run (one cache entry)
    # and the same per-sensor normalisation
    values = frame.values.copy()
    values[end:] = values[end:] * 5.0 + 3.0
    changed = SensorFrame(values, frame.observed, frame.time, frame.sensors, frame.interval)
    det2 = _make(name, tmp_path / "cache").fit(changed, end)  # type: ignore[attr-defined]
    assert len(list((tmp_path / "cache").iterdir())) == 1
    np.testing.assert_allclose(det2.centre_, det.centre_)
    np.testing.assert_allclose(det2.scale_, det.scale_)


def test_different_training_rows_train_a_different_run(tmp_path: Path) -> None:
    frame = _frame()
    _make("geojepa", tmp_path / "c").fit(frame, 96)  # type: ignore[attr-defined]
    _make("geojepa", tmp_path / "c").fit(frame, 100)  # type: ignore[attr-defined]
    assert len(list((tmp_path / "c").iterdir())) == 2


def test_fusion_and_mask_weights_reach_the_config() -> None:
    from geojepa.detectors.jepa import detector_config

    cfg = detector_config(1, 7, fusion="factorised", mask_weights={"tube": 1.0})
    assert cfg.model.fusion == "factorised"
    assert cfg.mask.weights == {"tube": 1.0}
    assert cfg.train.steps == 7 and cfg.seed == 1


def test_reconstruction_engine_scores_values_not_representations() -> None:
    """Its targets are the windows' normalised values (0 where missing): sensor space."""
    from geojepa.detectors.jepa import detector_config
    from geojepa.detectors.reconstruction import ReconstructionEngine, _build
    from geojepa.energy import stack_windows
    from geojepa.windows import Normaliser, window_at

    cfg = detector_config(0, 1, model_overrides=SMALL, window_length=32)
    model, head = _build(cfg, 0)
    engine = ReconstructionEngine(model, head, 8)
    frame = _frame()
    win = window_at(frame, Normaliser.fit(frame), cfg.window, 64)
    inputs = stack_windows([win], 8)
    rep = engine.target_repr(inputs)  # (1, N, patch)
    assert rep.shape == (1, frame.n_sensors * 4, 8)
    expect = np.where(win.observed, win.values, 0.0)[:, :32].reshape(-1, 8)
    np.testing.assert_allclose(rep[0], expect, atol=1e-6)


def test_relative_and_fused_forms_share_one_run(tmp_path: Path) -> None:
    from geojepa.detectors.jepa import JepaDensity, JepaEnergy, JepaFused

    frame = _frame()
    end = 96
    kw = _small_kw(tmp_path / "cache", relative=True)
    energy = JepaEnergy(**kw).fit(frame, end)  # type: ignore[arg-type]
    density = JepaDensity(**kw).fit(frame, end)  # type: ignore[arg-type]
    fused = JepaFused(**kw).fit(frame, end)  # type: ignore[arg-type]
    assert len(list((tmp_path / "cache").iterdir())) == 1  # one pretraining for all three
    scores = fused.score(frame)
    scores.check_nan(frame)
    # the fused cell is the mean of the two parts on their own training scales
    e = energy.score(frame).sensor_scores
    d = density.score(frame).sensor_scores
    both = np.isfinite(e) & np.isfinite(d)
    mean = (e + d) / 2.0
    raw = scores.sensor_scores * fused.scale_[None, :] + fused.centre_[None, :]
    np.testing.assert_allclose(raw[both], mean[both], rtol=1e-6, atol=1e-9)
    # the window-relative energy is not the plain one
    plain = JepaEnergy(**{**kw, "relative": False}).fit(frame, end)  # type: ignore[arg-type]
    assert not np.allclose(
        np.nan_to_num(plain.score(frame).sensor_scores), np.nan_to_num(e), atol=1e-6
    )


def test_with_trigger_is_the_mean_of_energy_and_trigger_levels_on_training_scales(
    tmp_path: Path,
) -> None:
    from geojepa.detectors.baselines import TriggerLevels
    from geojepa.detectors.jepa import JepaEnergy, JepaWithTrigger, JepaWithTriggerMax

    frame = _frame()
    end = 96
    kw = _small_kw(tmp_path / "cache")
    energy = JepaEnergy(**kw).fit(frame, end)  # type: ignore[arg-type]
    both_det = JepaWithTrigger(**kw).fit(frame, end)  # type: ignore[arg-type]
    assert len(list((tmp_path / "cache").iterdir())) == 1  # the energy's run, reused
    scores = both_det.score(frame)
    scores.check_nan(frame)
    e = energy.score(frame).sensor_scores
    t = TriggerLevels().fit(frame, end).score(frame).sensor_scores
    # the trigger part is put on its training scale: median 0, q99 1, per sensor
    t_train = t[:end]
    for c in range(frame.n_sensors):
        col = t_train[np.isfinite(t_train[:, c]), c]
        med, q99 = np.median(col), np.quantile(col, 0.99)
        t[:, c] = (t[:, c] - med) / (q99 - med)
    ok = np.isfinite(e) & np.isfinite(t)
    raw = scores.sensor_scores * both_det.scale_[None, :] + both_det.centre_[None, :]
    np.testing.assert_allclose(raw[ok], ((e + t) / 2.0)[ok], rtol=1e-6, atol=1e-9)
    # the max form: the larger of the two, from the same run
    larger = JepaWithTriggerMax(**kw).fit(frame, end)  # type: ignore[arg-type]
    assert len(list((tmp_path / "cache").iterdir())) == 1
    raw_max = larger.score(frame).sensor_scores * larger.scale_[None, :] + larger.centre_
    np.testing.assert_allclose(raw_max[ok], np.maximum(e, t)[ok], rtol=1e-6, atol=1e-9)
    # a reading far beyond the training range raises the combined score where the
    # window-level energy alone may not see it
    bumped = frame.values.copy()
    row = end + 40
    bumped[row, 0] = np.nanmax(frame.values[:end, 0]) + 50 * np.nanstd(frame.values[:end, 0])
    far = SensorFrame(bumped, frame.observed, frame.time, frame.sensors, frame.interval)
    assert both_det.score(far).sensor_scores[row, 0] > scores.sensor_scores[row, 0] + 1.0


@pytest.mark.parametrize("name", ["geojepa", "reconstruction"])
def test_single_gauge_first_patches_are_neutral_not_nan(tmp_path: Path, name: str) -> None:
    # the masked reconstruction had no such rule: the benchmark stopped on the real wells
    # (one head series each) with "NaN score at row 0"
    full = _frame()
    frame = SensorFrame(  # one gauge: no other sensor gives context to its first patches
        full.values[:, 1:2],
        full.observed[:, 1:2],
        full.time,
        full.sensors.iloc[1:2].reset_index(drop=True),
        full.interval,
    )
    det = _make(name, tmp_path / "cache").fit(frame, 96)  # type: ignore[attr-defined]
    scores = det.score(frame)
    scores.check_nan(frame)  # no context before the first patch: scored 0, not NaN
    first = scores.sensor_scores[:8, 0]
    assert np.all(first[frame.observed[:8, 0]] == 0.0)
    assert np.isfinite(scores.sensor_scores[frame.observed]).all()


def test_the_recipe_option_trains_the_preset_or_the_no_ema_recipe() -> None:
    """ "ema" (the default, the preset's) and "no_ema" differ only in the target EMA and
    SIGReg; the no-EMA detectors are registered with it; an unknown recipe is refused."""
    from geojepa.config import no_ema_recipe, preset
    from geojepa.detectors.jepa import detector_config

    ema, other = detector_config(0, 20), detector_config(0, 20, recipe="no_ema")
    assert (ema.train.ema_start, other.train.ema_start) == (0.999, 0.0)
    assert ema.method == preset("tiny").method
    assert other.method == no_ema_recipe(preset("tiny")).method
    assert replace(ema, train=other.train, method=other.method) == other
    det = make_detector("geojepa_noema", seed=1)
    assert det.get_params()["recipe"] == "no_ema"
    fact = make_detector("geojepa_density_factorised", seed=1)
    assert fact.get_params()["recipe"] == "factorised_sigreg"
    assert detector_config(0, 20, recipe="factorised_sigreg").model.fusion == "factorised"
    assert make_detector("geojepa", seed=1).get_params()["recipe"] == "ema"
    with pytest.raises(ValueError, match="unknown recipe"):
        detector_config(0, 20, recipe="ema-ish")


def test_family_detector_starts_from_a_base_run_and_is_opt_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """geojepa_family: per-site pretraining from a base run's weights (its own cache entry,
    recorded in init.json); named only, never in a default list; without a base, a clear
    error naming what to set."""
    from geojepa.detectors.jepa import INIT_ENV, JepaEnergy, detector_config, pretrained_run
    from geojepa.errors import InputError

    base_frame = _frame(seed=11)
    cfg = detector_config(5, 3, model_overrides=SMALL, window_length=32)  # not seed 0
    base = pretrained_run(base_frame, cfg, tmp_path / "base")
    base_dir = next((tmp_path / "base").iterdir())

    frame, end = _frame(), 96
    kw = _small_kw(tmp_path / "cache")
    own = JepaEnergy(**kw).fit(frame, end)  # type: ignore[arg-type]
    fam = JepaEnergy(**kw, init=str(base_dir)).fit(frame, end)  # type: ignore[arg-type]
    runs = sorted((tmp_path / "cache").iterdir())
    assert len(runs) == 2  # the base changes the cache key
    started = [r for r in runs if (r / "init.json").is_file()]
    assert len(started) == 1 and str(base_dir) in (started[0] / "init.json").read_text()
    # three small steps from the base stay near it, far from the run from random weights
    a = fam.run_.model.state_dict()
    b = base.model.state_dict()
    c = own.run_.model.state_dict()
    near = max(float((a[k] - b[k]).abs().max()) for k in a)
    far = max(float((c[k] - b[k]).abs().max()) for k in a)
    assert near < far / 5
    fam.score(frame).check_nan(frame)

    assert "geojepa_family" in available_detectors()
    assert "geojepa_family" not in available_detectors(opt_in=False)
    monkeypatch.delenv(INIT_ENV, raising=False)
    with pytest.raises(InputError, match=INIT_ENV):
        make_detector("geojepa_family")
    monkeypatch.setenv(INIT_ENV, str(base_dir))
    det = make_detector("geojepa_family", seed=2)
    assert det.get_params()["init"] == str(base_dir)


def test_recipe_detectors_train_their_recipe_and_the_study_variants_are_opt_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each recipe of `RECIPE_DETECTORS` gives an energy and a density detector trained with
    it for DETECTOR_STEPS steps (read when made, so --jepa-steps reaches them); the study
    variants run only when named."""
    from geojepa.detectors import jepa

    monkeypatch.setattr(jepa, "DETECTOR_STEPS", 7)
    defaults = available_detectors(opt_in=False)
    for suffix, (recipe, opt_in) in jepa.RECIPE_DETECTORS.items():
        for name, kind in (
            (f"geojepa_{suffix}", jepa.JepaEnergy),
            (f"geojepa_density_{suffix}", jepa.JepaDensity),
        ):
            det = make_detector(name, seed=3)
            assert type(det) is kind and det.recipe == recipe and det.steps == 7
            assert (name in defaults) is (not opt_in), name
    assert {"geojepa_ema_fast", "geojepa_mask_heavy"} <= set(available_detectors())


def test_the_three_density_methods_score_the_same_embeddings(tmp_path: Path) -> None:
    from geojepa.detectors.jepa import JepaDensity, JepaDensityIForest, JepaDensityKnn

    frame = _frame()
    end = 96
    kw = _small_kw(tmp_path / "cache")
    dets = [cls(**kw).fit(frame, end) for cls in (JepaDensityKnn, JepaDensity, JepaDensityIForest)]  # type: ignore[arg-type]
    assert len(list((tmp_path / "cache").iterdir())) == 1  # one pretraining for all three
    methods = [d.density_[0].method for d in dets]
    assert methods == ["knn", "mahalanobis", "iforest"]
    scores = [d.score(frame) for d in dets]
    for s in scores:
        s.check_nan(frame)
    a, b = scores[0].sensor_scores, scores[1].sensor_scores
    assert not np.allclose(np.nan_to_num(a), np.nan_to_num(b))  # different methods
    assert np.array_equal(np.isfinite(a), np.isfinite(b))  # the same embedded cells
    for name in ("geojepa_density_knn", "geojepa_density_iforest"):
        assert name in available_detectors(opt_in=True)


def test_density_scores_training_windows_out_of_sample(tmp_path: Path) -> None:
    """Each training window, embedded again when the whole frame is scored, is recognised
    as that training window and scored by a density fitted without its block of windows;
    later windows by the density of all training windows."""
    from geojepa.detectors.jepa import JepaDensity, sensor_embeddings

    frame = _frame()
    end = 96
    det = JepaDensity(**_small_kw(tmp_path / "cache")).fit(frame, end)  # type: ignore[arg-type]
    ends, emb = sensor_embeddings(det.run_, frame, det.window_.patch)  # (W,), (W, C, D)
    train = ends <= end
    checked = 0
    for c, dens in enumerate(det.density_):
        assert dens is not None and dens.held_out_ is not None
        x = emb[:, c]
        ok = np.isfinite(x).all(axis=1)
        idx = dens._training_match((x[ok] - dens.mean_) / dens.std_)
        assert (idx[train[ok]] >= 0).all()  # every training window found again
        assert (idx[~train[ok]] < 0).all()  # no later window taken for one
        checked += int(train[ok].sum())
    assert checked > 0


def test_the_reconstruction_cache_write_does_not_share_a_temporary_name(tmp_path: Path) -> None:
    """Two benchmark processes training the same model wrote the same `<key>.tmp` and one
    failed renaming it ("No such file or directory"); a stand-in for the other process's
    half-written file must not matter now."""
    from geojepa.detectors.jepa import detector_config, frame_hash

    frame = _frame()
    det = _make("reconstruction", tmp_path / "cache")
    cfg = detector_config(
        0,
        det.steps,  # type: ignore[attr-defined]
        model_overrides=det.model_overrides,  # type: ignore[attr-defined]
        window_length=det.window_length,  # type: ignore[attr-defined]
    )
    key = frame_hash(frame.slice_time(0, 96), cfg.to_dict())
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / f"{key}-reconstruction.tmp").mkdir()  # the other writer's name
    det.fit(frame, 96)  # type: ignore[attr-defined]
    assert (tmp_path / "cache" / f"{key}-reconstruction.pt").is_file()
