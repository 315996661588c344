"""The `forecast` verb with the classic methods (no RUN needed), and its library side."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geojepa.cli import main
from geojepa.forecast.apply import forecast_site, site_series
from geojepa.site import Sensor, Site, sensors_frame

T0 = pd.Timestamp("2024-01-01", tz="UTC")


def embankment_site(seed: int = 0) -> Site:
    """One plate read every 2 days under two fill stages (stage 2 from day 60), and its fill."""
    rng = np.random.default_rng(seed)
    days = np.arange(0.0, 200.0, 2.0)
    x2 = np.clip(days - 60.0, 0.0, None)
    s = days / (4.0 + 0.02 * days) + np.where(days >= 60, x2 / (2.0 + 0.025 * x2), 0.0)
    s = s + rng.normal(0, 0.2, days.size)
    fill = np.where(days >= 60, 4.0, 2.0)
    ts = T0 + pd.to_timedelta(days, unit="D")
    readings = pd.concat(
        [
            pd.DataFrame({"timestamp": ts, "sensor_id": "SP1", "value": s}),
            pd.DataFrame({"timestamp": ts, "sensor_id": "FILL", "value": fill}),
        ],
        ignore_index=True,
    )
    readings["quality"] = "ok"
    readings["source"] = "fixture.csv"
    sensors = sensors_frame(
        [Sensor("SP1", "settlement", "mm", group="A"), Sensor("FILL", "load", "m", group="A")]
    )
    return Site(name="emb", sensors=sensors, readings=readings)


@pytest.fixture
def site_dir(tmp_path: Path) -> Path:
    path = tmp_path / "site"
    embankment_site().save(path)
    return path


def run(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exc:
        main(args)
    return int(exc.value.code or 0)


@pytest.mark.parametrize("method", ["hyperbolic", "asaoka", "linear", "persistence", "fukuzono"])
def test_forecast_verb_writes_h_grid_steps_after_the_cutoff(
    site_dir: Path, tmp_path: Path, method: str
) -> None:
    out = tmp_path / "f.csv"
    cutoff = "2024-04-10T12:00"
    args = ["forecast", str(site_dir), "--target", "SP1", "--cutoff", cutoff]
    assert run([*args, "--horizon", "6", "--out", str(out), "--method", method]) == 0
    table = pd.read_csv(out)
    assert list(table.columns) == ["timestamp", "prediction", "lower", "upper"]
    times = pd.to_datetime(table["timestamp"], utc=True)
    assert len(times) == 6
    assert times.iloc[0] > pd.Timestamp(cutoff, tz="UTC")
    assert (times.diff().dropna() == pd.Timedelta("2D")).all()  # the plate's 2-day grid
    assert (times.iloc[0] - pd.Timestamp(cutoff, tz="UTC")) <= pd.Timedelta("2D")
    ok = np.isfinite(table["prediction"])
    assert ok.all()
    assert (table["lower"] <= table["prediction"]).all()
    assert (table["prediction"] <= table["upper"]).all()


def test_hyperbolic_on_a_site_uses_the_load_stage_and_ignores_later_readings() -> None:
    site = embankment_site(1)
    cutoff = T0 + pd.Timedelta("150D")
    a = forecast_site(site, "SP1", cutoff, 10, "hyperbolic")
    assert a.load == "FILL"
    assert a.model.window_start_ == pytest.approx(60.0)  # type: ignore[attr-defined]
    # wreck every reading after the cutoff: the forecast is unchanged
    r = site.readings.copy()
    later = r["timestamp"] > cutoff
    r.loc[later, "value"] = 1e6
    tampered = Site(name=site.name, sensors=site.sensors, readings=r)
    b = forecast_site(tampered, "SP1", cutoff, 10, "hyperbolic")
    pd.testing.assert_frame_equal(a.table, b.table)
    s = site_series(site, "SP1", cutoff, load="FILL")
    assert s.t.max() <= 150.0 and set(s.drivers) == {"load"}


def test_forecast_verb_errors_exit_2(site_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "f.csv"
    base = ["--cutoff", "2024-03-01", "--horizon", "3", "--out", str(out)]
    # the JEPA default needs a RUN
    assert run(["forecast", str(site_dir), "--target", "SP1", *base]) == 2
    assert run(["forecast", str(site_dir), "--target", "NOPE", "--method", "linear", *base]) == 2
    assert run(["forecast", str(site_dir), "--target", "SP1", "--method", "magic", *base]) == 2
    bad_time = ["--cutoff", "not-a-time", "--horizon", "3", "--out", str(out)]
    assert run(["forecast", str(site_dir), "--target", "SP1", "--method", "linear", *bad_time]) == 2
    early = ["--cutoff", "2023-01-01", "--horizon", "3", "--out", str(out)]
    assert run(["forecast", str(site_dir), "--target", "SP1", "--method", "linear", *early]) == 2
    assert (
        run(["forecast", str(tmp_path / "nosite"), "--target", "SP1", "--method", "linear", *base])
        == 2
    )
    assert not out.exists()  # nothing half-written
