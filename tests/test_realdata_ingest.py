"""Real public data (../shared/data): skipped cleanly when the folder is absent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import shared_data
from geojepa.frame import to_frame
from geojepa.io import ingest, read_file
from geojepa.io.gw_challenge import build_well
from geojepa.io.mukilteo import build_mukilteo
from geojepa.io.salmon_falls import build_salmon_falls
from geojepa.site import Site

pytestmark = pytest.mark.realdata


def test_gw_challenge_germany_counts_and_span(tmp_path: Path) -> None:
    data = shared_data("gw-challenge")
    rep = build_well(data, "Germany", tmp_path / "de")
    site = Site.load(tmp_path / "de")
    head = site.readings[site.readings["sensor_id"] == "head"]
    assert len(head) == 7185  # heads_full.csv rows
    assert head["timestamp"].min() == pd.Timestamp("2002-05-01", tz="UTC")
    assert head["timestamp"].max() == pd.Timestamp("2021-12-31", tz="UTC")
    assert len(site.sensors) == 10
    assert site.sensors.set_index("id").loc["rr", "kind"] == "rain_gauge"
    assert rep.n_conflicts == 0
    frame = to_frame(site)
    assert frame.interval == pd.Timedelta("1D")


def test_gw_challenge_calibration_then_full_adds_only_the_test_period(tmp_path: Path) -> None:
    folder = shared_data("gw-challenge") / "data" / "Netherlands"
    first = ingest([folder / "heads.csv"], tmp_path / "nl")
    assert first.n_new == 5696
    rep = ingest([folder / "heads_full.csv"], tmp_path / "nl")
    f = rep.files[0]
    assert (f.already, f.new, f.conflicts) == (5696, 7223 - 5696, 0)
    again = ingest([folder / "heads_full.csv"], tmp_path / "nl")
    assert not again.changed


def test_gw_challenge_sweden_repeated_date_is_counted(tmp_path: Path) -> None:
    data = shared_data("gw-challenge")
    folder = data / "data" / "Sweden_1"
    with pytest.raises(Exception, match="repeats the time"):
        read_file(folder / "heads_full.csv")
    r = read_file(folder / "heads_full.csv", duplicate_times="keep_first")
    assert r.quality.get("clock") == 1 and r.n_readings == 1044


def test_mukilteo_counts_spans_and_clock_repeat(tmp_path: Path) -> None:
    data = shared_data("mukilteo-ralhs")
    rep = build_mukilteo(data, tmp_path / "muk")
    site = Site.load(tmp_path / "muk")
    r = site.readings
    # five 14-day station files of 1344 rows each, four rain files
    rain = r[r["sensor_id"] == "MLP_rain15"]
    assert len(rain) == 11575
    # the hand-set clock repeat (12:00 -> 11:15 on 2015-09-15) is resolved in order
    assert (rain["quality"] == "dst_repeat").sum() == 8
    assert rain["timestamp"].is_monotonic_increasing and rain["timestamp"].is_unique
    steps = np.diff(rain["timestamp"].to_numpy(dtype="datetime64[ns]").astype(np.int64))
    assert (steps == 15 * 60 * 10**9).all()
    mvd = r[r["sensor_id"] == "MVD116_rain15"]
    assert (mvd["quality"] == "dst_repeat").sum() == 8
    for st in ("MLP", "MWWD", "MVD116", "WatertonA", "WatertonB"):
        bat = r[r["sensor_id"] == f"{st}_battery"]
        assert len(bat) == 1344
        assert bat["timestamp"].min() == pd.Timestamp("2015-12-18 08:00", tz="UTC")  # PST
        assert bat["timestamp"].max() == pd.Timestamp("2016-01-01 07:45", tz="UTC")
    vwc = r[r["sensor_id"] == "MVD116_vwc1"]
    assert (vwc["quality"] == "converted").all()
    assert vwc["value"].between(0.2, 0.3).all()  # 2.975 V - 0.4 on ~0.21 V
    baro = r[r["sensor_id"] == "WatertonA_baro"]["value"]
    assert baro.between(95, 105).all()  # kPa
    assert rep.n_sensors == len(site.sensors) == 66


def test_salmon_falls_builds_one_site(tmp_path: Path) -> None:
    data = shared_data("salmon-falls")
    rep, notes = build_salmon_falls(data, tmp_path / "sf")
    site = Site.load(tmp_path / "sf")
    kinds = site.sensors["kind"].value_counts().to_dict()
    assert len(site.sensors) == 40
    assert kinds["gnss"] == 21  # 7 stations x N/E/U
    assert {"piezometer", "water_level", "thermometer", "rain_gauge", "discharge"} <= set(kinds)
    q = site.readings["quality"].astype(str).value_counts().to_dict()
    assert q["missing"] >= 67  # NOAA -9999 days kept as missing readings
    assert q["outlier"] > 0 and q["clock"] == 4  # the repeated well time, flagged not dropped
    base = site.sensors.set_index("id").loc["BASE_N"]
    assert (base["x"], base["y"]) == (0.0, 0.0)
    blkm = site.sensors.set_index("id").loc["BLKM_E"]
    assert -1400 < blkm["x"] < -1100 and 600 < blkm["y"] < 900  # metres from BASE
    r = site.readings
    noaa = r[r["sensor_id"] == "noaa_PRCP"]
    assert noaa["timestamp"].min() == pd.Timestamp("2016-01-01", tz="UTC")
    well = r[r["sensor_id"] == "well_pressure"]
    assert well["timestamp"].min() == pd.Timestamp("2017-03-17 23:30", tz="UTC")  # 16:30 UTC-7
    assert len(well) == 45141  # 45142 rows, one repeated time left out and counted
    assert notes["logger_tz"] == "Etc/GMT+7"
    assert not rep.n_conflicts
