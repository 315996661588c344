"""Campbell TOA5 reader (fixtures written by the tests)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from geojepa.errors import InputError
from geojepa.io import detect_format, read_file

HEADER = (
    '"TOA5","Slope_A","CR1000","1234","CR1000.Std.32","CPU:slope.CR1","5678","Hourly"\n'
    '"TIMESTAMP","RECORD","BattV_Min","Piezo(1)","Piezo(2)","Rain_mm_Tot"\n'
    '"TS","RN","Volts","kPa","kPa","mm"\n'
    '"","","Min","Avg","Avg","Tot"\n'
)


def _rows(start: int, n: int, rec0: int = 0) -> str:
    out = []
    for i in range(n):
        h = start + i
        piezo2 = '"NAN"' if i == 1 else "NAN" if i == 2 else f"{20 + i}.5"
        out.append(f'"2024-05-01 {h:02d}:00:00",{rec0 + i},12.{i},{10 + i}.25,{piezo2},0')
    return "\n".join(out) + "\n"


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "CR1000_Hourly.dat"
    p.write_text(text, encoding="utf-8")
    return p


def test_toa5_basic(tmp_path: Path) -> None:
    p = _write(tmp_path, HEADER + _rows(0, 5))
    assert detect_format(p) == "toa5"
    r = read_file(p, tz="Etc/GMT+1")
    assert r.fmt == "toa5"
    assert set(r.sensors["id"]) == {"BattV_Min", "Piezo(1)", "Piezo(2)", "Rain_mm_Tot"}
    s = r.sensors.set_index("id")
    assert s.loc["Piezo(1)", "unit"] == "kPa"
    meta = json.loads(s.loc["Piezo(2)", "meta"])
    assert meta == {"processing": "Avg", "station": "Slope_A", "table": "Hourly"}
    assert r.quality["missing"] == 2  # "NAN" quoted and unquoted
    first = r.readings["timestamp"].min()
    assert first.hour == 1  # logger time UTC-1 -> 01:00 UTC


def test_header_repeated_mid_file_is_skipped_and_counted(tmp_path: Path) -> None:
    p = _write(tmp_path, HEADER + _rows(0, 3) + HEADER + _rows(3, 3, rec0=0))
    r = read_file(p)
    assert r.n_rows == 6
    assert any("repeated TOA5 header" in w for w in r.warnings)


def test_bad_row_after_repeated_header_names_the_original_line(tmp_path: Path) -> None:
    bad = '"2024-05-01 09:00:00",9,12.0,oops,1,0\n'
    p = _write(tmp_path, HEADER + _rows(0, 3) + HEADER + _rows(3, 3) + bad)
    with pytest.raises(InputError, match="oops") as err:
        read_file(p)
    assert err.value.line == 4 + 3 + 4 + 3 + 1


@pytest.mark.parametrize("keep", [1, 2, 3])
def test_truncated_header(tmp_path: Path, keep: int) -> None:
    lines = HEADER.splitlines(keepends=True)[:keep]
    p = _write(tmp_path, "".join(lines))
    with pytest.raises(InputError, match="truncated TOA5 header") as err:
        read_file(p, fmt="toa5")
    assert err.value.line == keep + 1


def test_header_lines_disagree(tmp_path: Path) -> None:
    lines = HEADER.splitlines(keepends=True)
    lines[2] = '"TS","RN","Volts","kPa"\n'
    p = _write(tmp_path, "".join(lines) + _rows(0, 2))
    with pytest.raises(InputError, match="line 3 has 4 fields") as err:
        read_file(p)
    assert err.value.line == 3


def test_not_toa5_when_forced(tmp_path: Path) -> None:
    p = _write(tmp_path, "t,a\n2024-01-01,1\n")
    with pytest.raises(InputError, match="not a TOA5 file"):
        read_file(p, fmt="toa5")


def test_header_only(tmp_path: Path) -> None:
    p = _write(tmp_path, HEADER)
    with pytest.raises(InputError, match="no data rows"):
        read_file(p)


def test_toa5_label_error_names_the_line_after_a_dropped_repeat(tmp_path: Path) -> None:
    head = HEADER.replace('"Rain_mm_Tot"', '"Event"')
    rows = [
        '"2024-05-01 00:00:00",0,12.0,10.25,20.5,0',
        '"2024-05-01 00:00:00",0,12.0,10.25,20.5,0',  # repeated exactly: left out
        '"2024-05-01 01:00:00",1,12.1,11.25,21.5,0',
        '"2024-05-01 02:00:00",2,12.2,12.25,22.5,2',  # not 0/1, on line 8
    ]
    p = _write(tmp_path, head + "\n".join(rows) + "\n")
    with pytest.raises(InputError, match="labels must be 0 or 1") as err:
        read_file(p, label_cols=["Event"])
    assert err.value.line == 8
