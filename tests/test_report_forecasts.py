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


def test_the_classic_fits_read_no_reading_after_the_forecasts_cutoff(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A forecast file holds no cutoff: a reading after it but before the first forecast
    time (here 18:00 on day 49, cutoff 12:00, daily forecasts from day 50) must not enter
    the classic fits the report draws beside it."""
    from pathlib import Path

    import pandas as pd

    import geojepa.report.forecasts as rf
    from geojepa.report.artifacts import ForecastInput
    from geojepa.report.sections import Context
    from geojepa.site import Sensor, Site, sensors_frame

    t0 = pd.Timestamp("2024-01-01", tz="UTC")
    stamps = list(t0 + pd.to_timedelta(np.arange(100), unit="D"))
    stamps.append(t0 + pd.Timedelta(days=49, hours=18))
    r = pd.DataFrame(
        {
            "timestamp": stamps,
            "sensor_id": "SP1",
            "value": np.linspace(0.0, 50.0, len(stamps)),
            "quality": "ok",
            "source": "x",
        }
    ).sort_values("timestamp", ignore_index=True)
    site = Site("s", sensors_frame([Sensor("SP1", "settlement", "mm")]), r)
    table = pd.DataFrame(
        {
            "timestamp": t0 + pd.to_timedelta([50, 51, 52], unit="D"),
            "prediction": [1.0, 2.0, 3.0],
        }
    )
    seen: list[np.ndarray] = []

    def spy(hist_t, hist_v, times, kind, load=None):  # type: ignore[no-untyped-def]
        seen.append(hist_t)
        return {}, ""

    monkeypatch.setattr(rf, "classic_forecasts", spy)
    fc = ForecastInput(Path("forecast_SP1.csv"), "SP1", table, ())
    ctx = Context(site, None, None, None, (fc,), None, None, {}, None, None)
    rf.forecast_section(ctx)
    assert len(seen) == 1
    last = pd.Timestamp(seen[0].max()).tz_localize("UTC")
    assert last == t0 + pd.Timedelta(days=49)  # the day-49 reading, not the one at 18:00
    assert rf.history_end(table["timestamp"].iloc[:1]) is None
