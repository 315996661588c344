"""Vibrating-wire conversion: formula, calibration as data, signs as data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geojepa.errors import InputError
from geojepa.io import ingest
from geojepa.io.vibrating_wire import digits, load_calibration, pressure
from geojepa.site import Site


def test_digits_and_pressure_formula() -> None:
    f = np.array([2000.0, 2500.0])
    r = digits(f)
    assert r.tolist() == [4000.0, 6250.0]
    p = pressure(
        r,
        gauge_factor=-0.05,
        zero_reading=6000.0,
        thermal_factor=0.1,
        t1=np.array([20.0, 25.0]),
        zero_temperature=20.0,
        baro_factor=-1.0,
        s1=np.array([101.0, 99.0]),
        baro_zero=100.0,
    )
    # G(R1-R0) + K(T1-T0) + B(S1-S0)
    assert p.tolist() == pytest.approx([-0.05 * -2000 + 0 - 1.0, -0.05 * 250 + 0.5 + 1.0])


def test_signs_are_data_not_code() -> None:
    r = np.array([5000.0])
    a = pressure(
        r, gauge_factor=0.02, zero_reading=4000.0, baro_factor=-1.0, s1=101.0, baro_zero=100.0
    )
    b = pressure(
        r, gauge_factor=0.02, zero_reading=4000.0, baro_factor=+1.0, s1=101.0, baro_zero=100.0
    )
    assert a[0] == pytest.approx(19.0) and b[0] == pytest.approx(21.0)


def _calib(tmp_path: Path, text: str, name: str = "cal.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


CAL = (
    "sensor_id,reading_unit,gauge_factor,zero_reading,out_unit,out_id,"
    "thermal_factor,zero_temperature,temp_sensor,baro_factor,baro_zero,baro_sensor\n"
    "VW1,Hz,-0.05,6000,kPa,VW1_kPa,0.1,20,T1,-1,100,BARO\n"
)


def test_calibration_table_checks(tmp_path: Path) -> None:
    assert len(load_calibration(_calib(tmp_path, CAL))) == 1
    with pytest.raises(InputError, match="given in part") as err:
        load_calibration(
            _calib(
                tmp_path,
                "sensor_id,reading_unit,gauge_factor,zero_reading,out_unit,thermal_factor\nA,Hz,1,0,kPa,0.1\n",
            )
        )
    assert err.value.line == 2
    with pytest.raises(InputError, match="not a number"):
        load_calibration(
            _calib(
                tmp_path,
                "sensor_id,reading_unit,gauge_factor,zero_reading,out_unit\nA,Hz,x,0,kPa\n",
            )
        )
    with pytest.raises(InputError, match="no 'gauge_factor' column"):
        load_calibration(_calib(tmp_path, "sensor_id,reading_unit\nA,Hz\n"))
    with pytest.raises(InputError, match="neither Hz nor digits"):
        load_calibration(
            _calib(
                tmp_path,
                "sensor_id,reading_unit,gauge_factor,zero_reading,out_unit\nA,kHz,1,0,kPa\n",
            )
        )
    js = tmp_path / "cal.json"
    js.write_text(
        '[{"sensor_id": "A", "reading_unit": "digits", "gauge_factor": 1, "zero_reading": 0, "out_unit": "kPa"}]'
    )
    assert load_calibration(js)["gauge_factor"].iloc[0] == 1.0


def test_ingest_with_calibration_adds_a_pressure_sensor(tmp_path: Path) -> None:
    data = tmp_path / "vw.csv"
    times = pd.date_range("2024-01-01", periods=3, freq="h", tz="UTC")
    rows = [
        f"{t.isoformat()},{f},{tc},{b}"
        for t, f, tc, b in zip(times, [2000, 2500, 2400], [20, 25, 22], [101, 99, 100], strict=True)
    ]
    data.write_text("t,VW1,T1,BARO\n" + "\n".join(rows) + "\n")
    rep = ingest([data], tmp_path / "site", calibration=_calib(tmp_path, CAL))
    site = Site.load(tmp_path / "site")
    assert "VW1_kPa" in set(site.sensors["id"])
    got = site.readings[site.readings["sensor_id"] == "VW1_kPa"]
    assert got["quality"].astype(str).unique().tolist() == ["converted"]
    expect = -0.05 * (2500**2 / 1000 - 6000) + 0.1 * (25 - 20) - 1.0 * (99 - 100)
    assert got["value"].iloc[1] == pytest.approx(expect)
    assert site.readings[site.readings["sensor_id"] == "VW1"]["value"].tolist() == [
        2000,
        2500,
        2400,
    ]
    assert rep.n_new == 12


def test_calibration_error_line_counts_blank_lines(tmp_path: Path) -> None:
    text = CAL + "\n" + CAL.splitlines()[1].replace("VW1", "VW2").replace("Hz", "Herz") + "\n"
    with pytest.raises(InputError, match="neither Hz nor digits") as err:
        load_calibration(_calib(tmp_path, text))
    assert err.value.line == 4
