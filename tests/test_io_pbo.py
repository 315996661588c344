"""GNSS position files in the PBO format (fixture written by the test)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from geojepa.errors import InputError
from geojepa.io import detect_format, read_file

HEAD = """PBO Station Position Time Series.
Format Version, 1.2.0
Reference Frame, NAM08
4-character ID, TEST
Station name, Test_Station
Begin Date, 2017-02-18
End Date, 2017-02-25
Reference position, 42.6058248275 North Latitude, -114.8750388773 East Longitude, 1119.19669 meters elevation
Date, North (mm), East (mm), Vertical (mm), North Std. Deviation (mm), East Std. Deviation (mm), Vertical Std. Deviation (mm), Quality,
"""


def _rows(n: int, big: int | None = None) -> str:
    out = []
    for i in range(n):
        sd = "88.2, 259.9, 115.9" if i == big else "1.9, 1.5, 6.2"
        out.append(f"2017-02-{18 + i:02d},{i * 0.5:.2f}, {-i:.2f}, 0.{i}0, {sd}, suppl,")
    return "\n".join(out) + "\n"


def test_pbo_reader(tmp_path: Path) -> None:
    p = tmp_path / "TEST.pbo.nam08.csv"
    p.write_text(HEAD + _rows(8, big=5))
    assert detect_format(p) == "pbo"
    r = read_file(p)
    assert set(r.sensors["id"]) == {"TEST_N", "TEST_E", "TEST_U"}
    assert set(r.sensors["kind"]) == {"gnss"} and set(r.sensors["unit"]) == {"mm"}
    meta = json.loads(r.sensors.set_index("id").loc["TEST_U", "meta"])
    assert meta["lat"] == pytest.approx(42.6058248275) and meta["component"] == "up"
    assert r.n_readings == 24
    assert r.quality == {"ok": 21, "outlier": 3}
    n = r.readings[r.readings["sensor_id"] == "TEST_N"]
    assert n["value"].tolist()[:3] == [0.0, 0.5, 1.0]
    assert n["timestamp"].iloc[0].isoformat() == "2017-02-18T00:00:00+00:00"


def test_pbo_without_column_line(tmp_path: Path) -> None:
    p = tmp_path / "x.pbo.csv"
    p.write_text("\n".join(HEAD.splitlines()[:5]) + "\n")
    with pytest.raises(InputError, match="no column line"):
        read_file(p)
