"""The report's classic forecasts beside GeoJEPA's (`geojepa.report.forecasts`)."""

from __future__ import annotations

import numpy as np

from geojepa.report.forecasts import classic_forecasts
from geojepa.soil import consolidation_curve


def _plate() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    days = np.arange(0.0, 200.0)
    load = np.where(days >= 100, 4.0, np.where(days >= 5, 2.0, 0.0))
    y = sum(
        dq * 40.0 * consolidation_curve(days - d0, 50.0, 0.03)
        for d0, dq in ((5.0, 2.0), (100.0, 2.0))
    )
    t0 = np.datetime64("2024-01-01T00:00")
    hist_t = t0 + (days * 86400).astype("timedelta64[s]")
    future_t = t0 + (np.array([230.0, 290.0]) * 86400).astype("timedelta64[s]")
    return hist_t, np.asarray(y), future_t, load


def test_the_back_analysis_is_shown_when_the_load_is_known() -> None:
    hist_t, y, future_t, load = _plate()
    with_load, note = classic_forecasts(hist_t, y, future_t, "settlement", load=load)
    assert "consolidation" in with_load and "whole load history" in note
    # noise-free two-stage record: the back-analysis is the closest classic method
    truth = sum(
        dq * 40.0 * consolidation_curve(np.array([230.0, 290.0]) - d0, 50.0, 0.03)
        for d0, dq in ((5.0, 2.0), (100.0, 2.0))
    )
    errs = {k: float(np.abs(v - truth).mean()) for k, v in with_load.items()}
    assert min(errs, key=errs.__getitem__) == "consolidation", errs
    without, _ = classic_forecasts(hist_t, y, future_t, "settlement")
    assert "consolidation" not in without and "hyperbolic" in without
