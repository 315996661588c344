"""Loaders of the real data sets: small fixtures made here, and the real files when present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import shared_data
from geojepa.datasets import (
    gw_series,
    gw_site,
    load_gw_wells,
    load_settlement_plates,
    plate_series,
    plates_site,
    read_gw_well,
    read_settlement_plate,
)
from geojepa.errors import InputError

README = """# Monitoring well X

- **Training period:** 2001-01-01 to 2001-01-04
- **Testing period:** 2001-01-05 to 2001-01-06
"""


def write_plate(tmp_path: Path, text: str, name: str = "SP-1.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def write_well(tmp_path: Path, heads: str, forcing: str | None = None) -> Path:
    folder = tmp_path / "Wellx"
    folder.mkdir()
    (folder / "README.md").write_text(README, encoding="utf-8")
    (folder / "heads_full.csv").write_text(heads, encoding="utf-8")
    (folder / "input_data.csv").write_text(
        forcing
        or "time,rr,tg,et\n" + "".join(f"2001-01-0{d},{d * 0.5},{d},0.2\n" for d in range(1, 8)),
        encoding="utf-8",
    )
    return folder


# --------------------------------------------------------------------------- plates
def test_plate_is_read_and_repeated_times_are_kept_flagged(tmp_path: Path) -> None:
    path = write_plate(tmp_path, "Time,Settle,Surcharge\n0,0,1.5\n3,5.0,1.5\n3,7.0,2.5\n6,9,2.5\n")
    rec = read_settlement_plate(path)
    assert rec.name == "SP-1"
    np.testing.assert_allclose(rec.table["time_days"], [0.0, 3.0, 3.5, 6.0])
    assert rec.n_repeated == 1
    s = plate_series(rec)
    assert s.drivers["surcharge"].tolist() == [1.5, 1.5, 2.5, 2.5]
    site = plates_site([rec])
    assert set(site.sensor_ids) == {"SP-1", "SP-1_fill"}
    assert (site.readings["quality"] == "clock").sum() == 2  # settlement and fill rows
    assert len(site.readings) == 8  # nothing dropped


@pytest.mark.parametrize(
    ("text", "line", "column", "what"),
    [
        ("Time,Settle,Surcharge\n0,0,1\n2,abc,1\n", 3, 2, "not a number"),
        ("Time,Settle,Surcharge\n0,0,1\n2,1,inf\n", 3, 3, "not finite"),
        ("Time,Settle,Surcharge\n0,0,1\n5,1,1\n4,2,1\n", 4, 1, "backwards"),
        ("Time,Settle,Surcharge\n0,0,1\n5,1\n", 3, None, "fields"),
        ("Time,Settlement,Surcharge\n0,0,1\n", 1, None, "missing column"),
    ],
)
def test_bad_plate_files_name_line_and_column(
    tmp_path: Path, text: str, line: int, column: int | None, what: str
) -> None:
    path = write_plate(tmp_path, text)
    with pytest.raises(InputError, match=what) as err:
        read_settlement_plate(path)
    assert err.value.file == str(path)
    assert err.value.line == line
    assert err.value.column == column


def test_missing_data_folder_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no soft-ground-settlement"):
        load_settlement_plates(tmp_path)


# --------------------------------------------------------------------------- wells
def test_well_is_read_with_periods_duplicates_and_canonical_drivers(tmp_path: Path) -> None:
    heads = "Date,head\n2001-01-01,10.0\n2001-01-03,10.5\n2001-01-03,10.5\n2001-01-05,10.2\n"
    well = read_gw_well(write_well(tmp_path, heads))
    assert well.duplicates_dropped == 1 and well.conflicts == ()
    assert well.train_end == pd.Timestamp("2001-01-04", tz="UTC")
    assert well.test_start == pd.Timestamp("2001-01-05", tz="UTC")
    assert {"rain", "evaporation", "temperature"} <= set(well.forcing.columns)
    s = gw_series(well)
    assert s.t.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]  # daily grid from the first head
    assert np.isnan(s.y[1]) and s.y[2] == 10.5  # unobserved days stay NaN
    assert s.drivers["rain"].tolist() == [0.5, 1.0, 1.5, 2.0, 2.5]
    site = gw_site(well)
    assert site.sensor("head").kind == "piezometer"
    assert site.sensor("rr").kind == "rain_gauge"


def test_conflicting_heads_are_listed_or_refused(tmp_path: Path) -> None:
    heads = "Date,head\n2001-01-01,10.0\n2001-01-02,10.5\n2001-01-02,9.0\n"
    folder = write_well(tmp_path, heads)
    well = read_gw_well(folder)
    assert well.heads.loc[pd.Timestamp("2001-01-02", tz="UTC")] == 10.5
    assert len(well.conflicts) == 1 and "9 dropped" in well.conflicts[0]
    with pytest.raises(InputError, match="two different heads") as err:
        read_gw_well(folder, on_conflict="error")
    assert err.value.line == 4


def test_bad_well_files_name_line_and_column(tmp_path: Path) -> None:
    folder = write_well(tmp_path, "Date,head\n2001-01-01,10.0\n2001-13-02,10.5\n")
    with pytest.raises(InputError, match="YYYY-MM-DD") as err:
        read_gw_well(folder)
    assert (err.value.line, err.value.column) == (3, 1)
    (folder / "heads_full.csv").write_text("Date,head\n2001-01-01,ten\n", encoding="utf-8")
    with pytest.raises(InputError, match="not a number") as err:
        read_gw_well(folder)
    assert (err.value.line, err.value.column) == (2, 2)
    (folder / "heads_full.csv").write_text("Date,head\n2001-01-01,10\n", encoding="utf-8")
    (folder / "README.md").write_text("# no periods\n", encoding="utf-8")
    with pytest.raises(InputError, match="periods"):
        read_gw_well(folder)


# --------------------------------------------------------------------------- real data
@pytest.mark.realdata
def test_real_settlement_plates_load() -> None:
    plates = load_settlement_plates(shared_data("soft-ground-settlement").parent)
    assert [p.name for p in plates] == ["1_SP-11", "1_SP-17", "1_SP-23", "3_SP3-65", "4_S-11"]
    for p in plates:
        s = plate_series(p)
        assert np.all(np.diff(s.t) > 0)
        assert 300 < s.t[-1] < 1000 and np.nanmax(s.y) > 300
    assert sum(p.n_repeated for p in plates) == 2  # two same-day repeats in 4_S-11


@pytest.mark.realdata
def test_real_wells_load() -> None:
    wells = load_gw_wells(shared_data("gw-challenge").parent)
    assert [w.name for w in wells] == ["Germany", "Netherlands", "Sweden_1", "Sweden_2", "USA"]
    by = {w.name: w for w in wells}
    assert by["Germany"].test_start == pd.Timestamp("2017-01-01", tz="UTC")
    assert len(by["Sweden_1"].conflicts) == 1  # 2017-06-13 is given twice with two heads
    for w in wells:
        s = gw_series(w)
        assert np.isfinite(s.y).sum() == len(w.heads)
        assert all(np.isfinite(v).all() for v in s.drivers.values())
