"""Headerless logger files with a column map."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from geojepa.errors import InputError, UsageError
from geojepa.io import ColumnMap, load_column_map, read_file

MAP = """column,role,sensor_id,kind,unit,scale,offset,conversion,note
0,time,,,,,,,
1,skip,,,,,,,record counter
2,sensor,batt,other,V,1,0,linear,
3,sensor,rain,rain_gauge,mm,0.254,0,linear,tips
4,sensor,vw1,piezometer,digits,1,0,vw_digits,frequency in Hz
"""


def _files(tmp_path: Path, rows: str, cmap: str = MAP) -> tuple[Path, Path]:
    d = tmp_path / "st_14d.txt"
    d.write_bytes(rows.encode())
    m = tmp_path / "map.csv"
    m.write_text(cmap)
    return d, m


def test_column_map_conversions_and_flags(tmp_path: Path) -> None:
    d, m = _files(
        tmp_path,
        "2015-12-18 00:00:00\t10231\t12.86\t1\t2000\r\n2015-12-18 00:15:00\t10232\t12.67\t0\t\r\n",
    )
    r = read_file(d, column_map=m, tz="Etc/GMT+8")
    assert r.fmt == "tabbed"
    v = r.readings.set_index(["sensor_id", "timestamp"])["value"]
    assert v["rain"].tolist() == pytest.approx([0.254, 0.0])
    assert v["vw1"].iloc[0] == pytest.approx(2000.0**2 / 1000)
    assert np.isnan(v["vw1"].iloc[1])
    q = r.readings.groupby("sensor_id", observed=True)["quality"].apply(
        lambda s: sorted(set(s.astype(str)))
    )
    assert (
        q["batt"] == ["ok"] and q["rain"] == ["converted"] and q["vw1"] == ["converted", "missing"]
    )
    assert r.readings["timestamp"].min().hour == 8  # PST -> UTC
    assert any("record counter" in w for w in r.warnings)


def test_unmapped_column_is_an_error(tmp_path: Path) -> None:
    d, m = _files(tmp_path, "2015-12-18 00:00:00\t1\t2\t3\t4\t5\n")
    with pytest.raises(InputError, match="column 5 of the file is not in the column map"):
        read_file(d, column_map=m)


def test_time_from_parts_and_whitespace(tmp_path: Path) -> None:
    cmap = ColumnMap.from_rows(
        [
            {"column": 0, "role": "year"},
            {"column": 1, "role": "month"},
            {"column": 2, "role": "day"},
            {"column": 3, "role": "hour"},
            {"column": 4, "role": "minute"},
            {"column": 5, "role": "sensor", "sensor_id": "r", "kind": "rain", "unit": "in"},
        ]
    )
    d = tmp_path / "rain.txt"
    d.write_text("2015 \t 09 \t 02 \t 11 \t 15 \t 0\n2015 \t 09 \t 02 \t 11 \t 30 \t 0.01\n")
    r = read_file(d, column_map=cmap)
    assert r.readings["timestamp"].dt.minute.tolist() == [15, 30]
    bad = tmp_path / "bad.txt"
    bad.write_text("2015 \t 13 \t 02 \t 11 \t 15 \t 0\n")
    with pytest.raises(InputError, match="month 13"):
        read_file(bad, column_map=cmap)


@pytest.mark.parametrize(
    ("cmap", "match", "line"),
    [
        ("column,role\n0,time\n1,spin\n", "unknown role", 3),
        ("column,role,sensor_id,kind\n0,time,,\n1,sensor,a,warp\n", "use one of", 3),
        ("column,role,sensor_id\n0,time,\n1,sensor,a\n1,sensor,b\n", "mapped twice", 4),
        ("column,role,sensor_id,scale\n0,time,,\n1,sensor,a,x2\n", "not a number", 3),
        ("column,role,sensor_id\n1,sensor,a\n", "no time", None),
    ],
)
def test_bad_column_maps(tmp_path: Path, cmap: str, match: str, line: int | None) -> None:
    m = tmp_path / "map.csv"
    m.write_text(cmap)
    with pytest.raises(InputError, match=match) as err:
        load_column_map(m)
    assert err.value.line == line


def test_tabbed_needs_a_map(tmp_path: Path) -> None:
    d = tmp_path / "x.txt"
    d.write_text("2015-01-01\t1\n")
    with pytest.raises(UsageError, match="column map"):
        read_file(d, fmt="tabbed")


def test_bad_column_map_line_counts_blank_lines(tmp_path: Path) -> None:
    # pandas skips blank lines: the line named must still be the file's
    m = tmp_path / "map.csv"
    m.write_text("column,role,sensor_id\n0,time,\n\n1,sensor,a\n\n2,spin,b\n")
    with pytest.raises(InputError, match="unknown role") as err:
        load_column_map(m)
    assert err.value.line == 6
