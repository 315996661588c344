"""Thresholds: calibrated on training scores only (enforced), quantile and POT correctness."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import geojepa.evaluate.protocol as evaluate
import geojepa.thresholds as thresholds
from geojepa.detectors import RobustZ
from geojepa.evaluate import GroundTruth, Protocol, evaluate_detector, ground_truth, time_split
from geojepa.frame import to_frame
from geojepa.thresholds import (
    CALIBRATORS,
    TrainingScores,
    calibrate,
    fit_gpd,
    pot_threshold,
    quantile_threshold,
)
from test_detectors_synth import make_site

CALIBRATION_FUNCTIONS = [quantile_threshold, pot_threshold, calibrate, *CALIBRATORS.values()]
LABEL_WORDS = ("label", "truth", "event", "target", "mask", "y_", "gt")


@pytest.mark.parametrize("fn", CALIBRATION_FUNCTIONS, ids=lambda f: f.__name__)
def test_calibration_signature_admits_training_scores_only(fn: object) -> None:
    """Fails if any calibration function could be handed labels: one data argument, typed
    TrainingScores; every other argument a plain number or name with a default."""
    sig = inspect.signature(fn)  # type: ignore[arg-type]
    params = list(sig.parameters.values())
    assert params[0].annotation in ("TrainingScores", TrainingScores)
    for p in params:
        assert p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY), f"{p.name}: no *args/**kwargs"
        assert not any(w in p.name.lower() for w in LABEL_WORDS), p.name
    for p in params[1:]:
        assert p.default is not inspect.Parameter.empty, p.name
        assert p.annotation in ("float", "int", "str"), (p.name, p.annotation)


@pytest.mark.parametrize("fn", CALIBRATION_FUNCTIONS, ids=lambda f: f.__name__)
def test_calibration_refuses_anything_but_training_scores(fn: object) -> None:
    labels = np.zeros(100, dtype=bool)
    labels[40:50] = True
    scores = np.random.default_rng(0).normal(size=100)
    for bad in (labels, scores, labels.astype(float), {"scores": scores}):
        with pytest.raises(TypeError, match="TrainingScores"):
            fn(bad)  # type: ignore[operator]


def test_training_scores_refuse_label_masks_and_keep_the_training_rows() -> None:
    with pytest.raises(TypeError, match="labels are not scores"):
        TrainingScores.from_scores(np.ones(10, dtype=bool), 5)
    with pytest.raises(TypeError, match="labels are not scores"):
        TrainingScores(np.ones(10, dtype=bool))
    s = np.arange(10, dtype=float)
    s[2] = np.nan
    tr = TrainingScores.from_scores(s, 6)
    np.testing.assert_array_equal(tr.values, [0, 1, 3, 4, 5])
    assert tr.n_nan == 1
    with pytest.raises(ValueError):
        tr.values[0] = 99.0  # read-only


class _Spy:
    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []

    def __call__(self, *args: object, **kwargs: object) -> thresholds.Threshold:
        self.calls.append(args + tuple(kwargs.values()))
        return calibrate(*args, **kwargs)  # type: ignore[arg-type]


def test_harness_calibrates_on_training_scores_only(monkeypatch: pytest.MonkeyPatch) -> None:
    site = make_site(4, n_sensors=3, days=30, early_event=True)
    frame = to_frame(site)
    truth = ground_truth(site.labels, frame)
    split = time_split(frame, 0.5)
    spy = _Spy()
    monkeypatch.setattr(evaluate, "calibrate", spy)
    res = evaluate_detector(RobustZ(), frame, truth, split, Protocol())
    scores = RobustZ().fit(frame, split.train_end).score(frame).score
    assert len(spy.calls) == 2  # amber and red
    for call in spy.calls:
        train = call[0]
        assert isinstance(train, TrainingScores)
        np.testing.assert_array_equal(train.values, scores[: split.train_end])
        assert all(isinstance(a, (str, float, int)) for a in call[1:])
    # and the labels cannot move a threshold: no labels at all gives the same thresholds
    empty = GroundTruth((), frame.n_times)
    res2 = evaluate_detector(RobustZ(), frame, empty, split, Protocol())
    assert res.metrics["all"]["amber"] == res2.metrics["all"]["amber"]
    assert res.metrics["all"]["red"] == res2.metrics["all"]["red"]


def test_quantile_threshold() -> None:
    x = np.arange(1001, dtype=float)
    th = quantile_threshold(TrainingScores(x), 0.99)
    assert th.value == pytest.approx(990.0)
    assert th.method == "quantile"
    with pytest.raises(ValueError):
        quantile_threshold(TrainingScores(x), 1.0)


def _gpd_sample(rng: np.random.Generator, xi: float, sigma: float, n: int) -> np.ndarray:
    u = rng.random(n)
    return sigma / xi * ((1 - u) ** (-xi) - 1) if xi != 0 else -sigma * np.log(1 - u)


@pytest.mark.parametrize("xi", [-0.2, 0.0, 0.2])
def test_gpd_fit_recovers_parameters(xi: float) -> None:
    rng = np.random.default_rng(7)
    y = _gpd_sample(rng, xi, 2.0, 20000)
    xi_hat, sigma_hat = fit_gpd(y)
    assert xi_hat == pytest.approx(xi, abs=0.04)
    assert sigma_hat == pytest.approx(2.0, rel=0.05)


def test_pot_extrapolates_beyond_the_training_maximum() -> None:
    rng = np.random.default_rng(3)
    x = rng.exponential(size=5000)
    th = pot_threshold(TrainingScores(x), risk=1e-5)
    # exact exponential quantile at 1 - 1e-5 is ln(1e5) = 11.51; the sample max is ~8.5
    assert th.value > x.max()
    assert th.value == pytest.approx(np.log(1e5), rel=0.2)
    assert th.params["fallback"] == 0.0
    moderate = pot_threshold(TrainingScores(x), risk=1e-3)
    assert moderate.value == pytest.approx(np.log(1e3), rel=0.1)


def test_pot_falls_back_to_the_quantile_with_few_peaks() -> None:
    x = np.arange(100, dtype=float)
    th = pot_threshold(TrainingScores(x), risk=0.05, init_quantile=0.98)
    assert th.params["fallback"] == 1.0
    assert th.value == pytest.approx(np.quantile(x, 0.95))


def test_calibrate_dispatch() -> None:
    x = np.random.default_rng(0).normal(size=2000)
    tr = TrainingScores(x)
    assert calibrate(tr, "quantile", 0.95).value == pytest.approx(np.quantile(x, 0.95))
    assert calibrate(tr, "pot", 0.999).method == "pot"
    with pytest.raises(ValueError, match="unknown threshold method"):
        calibrate(tr, "magic", 0.9)


def test_refitting_a_detector_forgets_its_threshold() -> None:
    # before: fit on another site kept threshold_, labels_ and decision_scores_ of the first,
    # and predict used them silently
    from conftest import synthetic_frame
    from geojepa.detectors.baselines import RobustZ, TriggerLevels

    a = synthetic_frame(n_sensors=4, n_times=400, seed=1)
    b = synthetic_frame(n_sensors=4, n_times=800, seed=2)
    for det in (TriggerLevels(), RobustZ()):
        det.fit(a, 300).fit_threshold(a, 300)
        assert det.labels_.shape == (300,)
        det.fit(b, 600)
        for name in ("threshold_", "labels_", "decision_scores_"):
            assert not hasattr(det, name), name
        with pytest.raises(RuntimeError, match="fit_threshold"):
            det.predict(b)
        det.fit_threshold(b, 600)
        assert det.labels_.shape == (600,)
