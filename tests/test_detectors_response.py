"""ResponseOnly: forcing sensors inform the model but are never scored, ranked or named."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from geojepa.detectors import RobustZ, TriggerLevels, available_detectors, make_detector
from geojepa.detectors.response import FORCING_KINDS, ResponseOnly, forcing_mask
from geojepa.errors import InputError
from geojepa.frame import SensorFrame


def _frame(kinds: list[str], seed: int = 0) -> SensorFrame:
    rng = np.random.default_rng(seed)
    t, c = 400, len(kinds)
    values = rng.normal(size=(t, c))
    values[300:310, 0] += 40.0  # a storm on sensor 0 in the test period
    values[350:360, 1] += 6.0  # a real excursion on sensor 1
    return SensorFrame(
        values.astype(np.float32),
        np.isfinite(values),
        pd.date_range("2024-01-01", periods=t, freq="h").to_numpy(),
        pd.DataFrame({"id": [f"S{i}" for i in range(c)], "kind": kinds}),
        pd.Timedelta("1h"),
    )


def test_forcing_cells_have_no_score_and_response_cells_are_unchanged() -> None:
    frame = _frame(["rain_gauge", "piezometer", "settlement"])
    assert forcing_mask(frame).tolist() == [True, False, False]
    plain = RobustZ().fit(frame, 200)
    wrapped = ResponseOnly(RobustZ()).fit(frame, 200)
    a, b = plain.score(frame), wrapped.score(frame)
    np.testing.assert_allclose(b.sensor_scores[:, 1:], a.sensor_scores[:, 1:])
    assert np.isnan(b.sensor_scores[:, 0]).all()  # context: read as input, never scored
    assert b.scored is not None and b.scored.tolist() == [False, True, True]
    b.check_nan(frame)  # NaN only where nothing scored is observed
    np.testing.assert_allclose(b.score, np.max(b.sensor_scores[:, 1:], axis=1))  # response only
    # the plain detector's top cell is the storm; the wrapped one's is the excursion
    assert int(np.argmax(a.score)) in range(300, 310)
    assert int(np.argmax(b.score)) in range(350, 360)
    assert int(np.nanargmax(b.sensor_scores[int(np.argmax(b.score))])) == 1


def test_the_wrapper_follows_the_estimator_contract_and_refuses_all_forcing_sites() -> None:
    frame = _frame(["rain_gauge", "piezometer"])
    det = ResponseOnly(TriggerLevels())
    assert clone(det).get_params()["inner"].__class__ is TriggerLevels
    with pytest.raises(RuntimeError, match="not fitted"):
        det.score(frame)
    assert det.fit(frame, 200) is det and hasattr(det, "median_")
    with pytest.raises(InputError, match="nothing would be scored"):
        ResponseOnly(TriggerLevels()).fit(_frame(["rain_gauge", "load"]), 200)


def test_response_variants_are_registered() -> None:
    names = [f"{n}_response" for n in ("geojepa_density", "trigger", "iforest_raw", "catch22_knn")]
    assert set(names) <= set(available_detectors())
    assert not set(names) & set(available_detectors(opt_in=False))
    assert "geojepa_response" in available_detectors(opt_in=False)  # the path of `detect`
    det = make_detector("trigger_response", 0)
    assert isinstance(det, ResponseOnly) and isinstance(det.inner, TriggerLevels)
    assert "water_level" not in FORCING_KINDS


def test_the_calibration_carries_context_scores_and_reads_older_bundles() -> None:
    from geojepa.alarms import TarpPolicy
    from geojepa.edge.score import Calibration

    ctx = np.array([np.nan, -0.1, np.nan])
    cal = Calibration(np.zeros(3), np.ones(3), TarpPolicy(amber=1.0, red=2.0), 3, ctx)
    again = Calibration.from_dict(cal.to_dict(), 3)
    np.testing.assert_array_equal(again.context_score, ctx)
    raw = np.array([[0.5, 9.0, 0.2], [np.nan, np.nan, 3.0], [0.1, 9.0, np.nan]])
    sensor = again.sensor_scores(raw)
    assert np.isnan(sensor[:, 1]).all()  # context: no score
    np.testing.assert_allclose(again.per_time(sensor), [0.5, 3.0, 0.1])  # response sensors
    old = cal.to_dict()
    del old["context_score"]  # a bundle exported before forcing sensors became context
    plain = Calibration.from_dict(old, 3)
    assert plain.context_score is None
    np.testing.assert_allclose(plain.per_time(plain.sensor_scores(raw)), [9.0, 3.0, 9.0])


def test_a_time_when_only_forcing_sensors_report_has_no_score() -> None:
    # before: such a time took the forcing sensors' resting score (0.0) and was green, e.g.
    # the years of weather records before a well's piezometer was installed
    frame = _frame(["rain_gauge", "piezometer"])
    observed = frame.observed.copy()
    observed[380:, 1] = False  # the piezometer stops; the rain gauge goes on
    values = np.where(observed, frame.values, np.nan).astype(np.float32)
    gap = SensorFrame(values, observed, frame.time, frame.sensors, frame.interval)
    det = ResponseOnly(RobustZ()).fit(gap, 200)
    out = det.score(gap)
    assert np.isnan(out.score[380:]).all() and np.isfinite(out.score[:380]).all()
    out.check_nan(gap)
    from geojepa.alarms import TarpPolicy, alarm_levels

    levels = alarm_levels(out.score, TarpPolicy(amber=-10.0, red=-5.0))  # all red while scored
    assert (levels[:380] == 2).all() and (levels[380:] == 2).all()  # NaN holds the level
