"""Wide CSV reader (fixtures written by the tests)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geojepa.errors import InputError, UsageError
from geojepa.io import read_file
from geojepa.site import Quality


def _csv(tmp_path: Path, text: str, name: str = "w.csv") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def _values(r: object, sid: str) -> list[float]:
    rd = r.readings  # type: ignore[attr-defined]
    return rd.loc[rd["sensor_id"] == sid, "value"].tolist()


def test_basic_wide_with_unit_row(tmp_path: Path) -> None:
    p = _csv(
        tmp_path,
        "timestamp,P2,P1\n,kPa,kPa\n2024-01-01T00:00:00Z,1.5,10\n2024-01-01T01:00:00Z,2.5,11\n",
    )
    r = read_file(p)
    assert r.fmt == "wide"
    assert r.n_readings == 4 and r.n_rows == 2
    assert list(r.readings["sensor_id"].astype(str)) == ["P1", "P1", "P2", "P2"]  # sorted
    assert _values(r, "P2") == [1.5, 2.5]
    assert dict(zip(r.sensors["id"], r.sensors["unit"], strict=True)) == {"P1": "kPa", "P2": "kPa"}
    assert r.readings["source"].astype(str).unique().tolist() == ["w.csv"]
    assert r.readings["timestamp"].dt.tz is not None
    assert r.quality == {"ok": 4}


def test_semicolon_tab_and_pipe(tmp_path: Path) -> None:
    for sep in (";", "\t", "|"):
        p = _csv(tmp_path, f"time{sep}a{sep}b\n2024-01-01{sep}1{sep}2\n2024-01-02{sep}3{sep}4\n")
        assert read_file(p).n_readings == 4


def test_missing_and_non_finite_are_flagged_not_dropped(tmp_path: Path) -> None:
    p = _csv(tmp_path, 't,a,b\n2024-01-01,,"NAN"\n2024-01-02,NaN,INF\n2024-01-03,1,-inf\n')
    r = read_file(p)
    assert r.n_readings == 6
    assert r.quality == {"ok": 1, "missing": 3, "non_finite": 2}
    assert np.isnan(r.readings["value"].to_numpy()).sum() == 5  # inf stored as NaN + flag


def test_text_in_numeric_column_names_line_and_column(tmp_path: Path) -> None:
    p = _csv(tmp_path, "t,a,b\n2024-01-01,1,2\n2024-01-02,1,oops\n")
    with pytest.raises(InputError, match="oops") as err:
        read_file(p)
    assert (err.value.line, err.value.column) == (3, "b")


def test_decimal_comma_gets_a_hint(tmp_path: Path) -> None:
    p = _csv(tmp_path, "t;a\n2024-01-01;1,5\n")
    with pytest.raises(InputError, match="numeric") as err:
        read_file(p)
    assert "decimal commas" in err.value.render()


def test_ragged_row(tmp_path: Path) -> None:
    p = _csv(tmp_path, "t,a,b\n2024-01-01,1,2\n2024-01-02,1\n")
    with pytest.raises(InputError, match="2 fields") as err:
        read_file(p)
    assert err.value.line == 3


def test_wrong_separator_given(tmp_path: Path) -> None:
    p = _csv(tmp_path, "t;a;b\n2024-01-01;1;2\n")
    with pytest.raises(InputError, match="seems to use ';'"):
        read_file(p, sep=",")


def test_header_only_and_duplicate_names(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no data rows"):
        read_file(_csv(tmp_path, "t,a,b\n"))
    with pytest.raises(InputError, match="appears twice"):
        read_file(_csv(tmp_path, "t,a,a\n2024-01-01,1,2\n"))


def test_duplicate_rows_identical_dropped_and_counted(tmp_path: Path) -> None:
    p = _csv(tmp_path, "t,a\n2024-01-01,1\n2024-01-01,1\n2024-01-02,2\n")
    r = read_file(p)
    assert r.n_readings == 2
    assert any("left out" in w for w in r.warnings)


def test_duplicate_time_different_values(tmp_path: Path) -> None:
    p = _csv(tmp_path, "t,a\n2024-01-01,1\n2024-01-01,5\n2024-01-02,2\n")
    with pytest.raises(InputError, match="repeats the time of line 2") as err:
        read_file(p)
    assert err.value.line == 3
    r = read_file(p, duplicate_times="keep_first")
    assert _values(r, "a") == [1.0, 2.0]
    assert r.quality == {"ok": 1, "clock": 1}


def test_backwards_time(tmp_path: Path) -> None:
    p = _csv(tmp_path, "t,a\n2024-01-02,1\n2024-01-01,1\n")
    with pytest.raises(InputError, match="backwards") as err:
        read_file(p)
    assert err.value.line == 3


def test_time_col_and_tz(tmp_path: Path) -> None:
    p = _csv(tmp_path, "a,when,b\n1,2024-06-01 12:00,2\n")
    r = read_file(p, time_col="when", tz="Europe/Oslo")
    assert r.readings["timestamp"].iloc[0] == pd.Timestamp("2024-06-01 10:00", tz="UTC")
    with pytest.raises(UsageError, match="no time column"):
        read_file(p, time_col="nope")


def test_label_columns_become_labels(tmp_path: Path) -> None:
    rows = "\n".join(f"2024-01-01T{h:02d}:00Z,{h},{int(h in (2, 3, 7))}" for h in range(10))
    p = _csv(tmp_path, "t,a,slip\n" + rows + "\n")
    r = read_file(p, label_cols=["slip"])
    assert set(r.sensors["id"]) == {"a"}
    assert len(r.labels) == 2
    first = r.labels.iloc[0]
    assert (first["start"].hour, first["end"].hour, first["kind"]) == (2, 3, "slip")


def test_labels_must_be_zero_or_one(tmp_path: Path) -> None:
    p = _csv(tmp_path, "t,a,slip\n2024-01-01,1,0\n2024-01-02,1,2\n")
    with pytest.raises(InputError, match="labels must be 0 or 1") as err:
        read_file(p, label_cols=["slip"])
    assert (err.value.line, err.value.column) == (3, "slip")


def test_sensors_table_gives_kinds_and_checks_units(tmp_path: Path) -> None:
    p = _csv(tmp_path, "t,P1,R1\n,kPa,mm\n2024-01-01,1,0\n")
    table = _csv(
        tmp_path, "id,kind,unit,x,y,z,group,serial\nP1,piezo,kPa,1,2,-5,BH1,123\n", "s.csv"
    )
    r = read_file(p, sensors=table)
    s = r.sensors.set_index("id")
    assert s.loc["P1", "kind"] == "piezometer" and s.loc["P1", "z"] == -5.0
    assert json.loads(s.loc["P1", "meta"])["serial"] == "123"
    bad = _csv(tmp_path, "id,kind,unit\nP1,piezometer,m\n", "bad.csv")
    with pytest.raises(InputError, match="units mismatch"):
        read_file(p, sensors=bad)
    unknown = _csv(tmp_path, "id,kind\nP1,warp_coil\n", "unk.csv")
    with pytest.raises(InputError, match="piezometer") as err:
        read_file(p, sensors=unknown)
    assert err.value.line == 2


def test_option_that_does_not_apply_is_refused(tmp_path: Path) -> None:
    p = _csv(tmp_path, "timestamp,sensor_id,value\n2024-01-01,a,1\n")
    with pytest.raises(UsageError, match="--label-col does not apply"):
        read_file(p, label_cols=["x"])
    with pytest.raises(UsageError, match="unknown format"):
        read_file(p, fmt="xml")


def test_quality_flags_use_the_site_vocabulary(tmp_path: Path) -> None:
    p = _csv(tmp_path, "t,a\n2024-01-01,1\n")
    r = read_file(p)
    assert set(r.readings["quality"].cat.categories) == {q.value for q in Quality}


def test_numeric_missing_value_matches_the_number_however_written(tmp_path: Path) -> None:
    # --missing-value -9999: a logger writing -9999.0 or -9999.00 means the same sentinel
    text = (
        "time,p,q\n2024-01-01 00:00,1.0,-9999.0\n2024-01-01 01:00,-9999,2\n"
        "2024-01-01 02:00,-9999.00,-9999.5\n"
    )
    r = read_file(_csv(tmp_path, text, "s.csv"), missing_values=["-9999"])
    got = r.readings.set_index(["sensor_id", "timestamp"])["value"]
    assert got.isna().sum() == 3
    assert (got == -9999.0).sum() == 0
    assert r.quality == {"ok": 3, "missing": 3}


def test_sensors_table_error_line_counts_blank_lines(tmp_path: Path) -> None:
    from geojepa.io.sensors import read_sensors_table

    p = tmp_path / "sensors.csv"
    p.write_text("\nid,kind,unit\nP1,piezometer,kPa\n\nP2,warp,kPa\n", encoding="utf-8")
    with pytest.raises(InputError, match="warp") as err:
        read_sensors_table(p)
    assert err.value.line == 5
