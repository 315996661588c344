"""Ingest integrity: what a site already holds is never mixed with another instrument, the
same file read another way, a typo'd sensor id, a header taken for data or a repeated header.

Each test names the defect of the ingest audit it holds fixed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from conftest import shared_data
from geojepa.errors import InputError, UsageError
from geojepa.io import ingest, read_file
from geojepa.site import Site
from test_cli_data import run
from test_io_ingest import _snapshot, _wide

# 1. a file whose readings conflict with the stored ones (another instrument) -----------------


def test_conflicting_file_is_refused_by_default_and_site_unchanged(tmp_path: Path) -> None:
    site = tmp_path / "site"
    ingest([_wide(tmp_path / "a.csv", "2024-01-01", 5)], site)
    before = _snapshot(site)
    c = _wide(tmp_path / "c.csv", "2024-01-01 03:00", 3, bump=100)
    with pytest.raises(InputError) as err:
        ingest([c], site)
    e = err.value
    assert e.file == str(c) and e.line == 2  # 03:00 is the first data row of c.csv
    msg = e.render()
    assert "4 readings" in msg and "'P1'" in msg and "'P2'" in msg
    assert "2024-01-01T03:00:00+00:00" in msg and "stored 3.0" in msg and "new 100.0" in msg
    assert "--rename" in msg and "--on-conflict keep" in msg
    assert _snapshot(site) == before


def test_exact_duplicates_still_accepted_and_counted(tmp_path: Path) -> None:
    site = tmp_path / "site"
    ingest([_wide(tmp_path / "a.csv", "2024-01-01", 5)], site)
    rep = ingest([_wide(tmp_path / "b.csv", "2024-01-01 03:00", 5, bump=3)], site)
    assert (rep.files[0].already, rep.files[0].new, rep.n_conflicts) == (4, 6, 0)


def test_conflicts_between_files_of_one_ingest_are_refused(tmp_path: Path) -> None:
    a = _wide(tmp_path / "a.csv", "2024-01-01", 5)
    c = _wide(tmp_path / "c.csv", "2024-01-01 02:00", 3, bump=50)
    with pytest.raises(InputError, match="conflict") as err:
        ingest([a, c], tmp_path / "site")
    assert err.value.file == str(c) and err.value.line == 2
    assert not (tmp_path / "site").exists()


def test_rename_gives_a_second_instrument_its_own_sensors(tmp_path: Path) -> None:
    site = tmp_path / "site"
    ingest([_wide(tmp_path / "a.csv", "2024-01-01", 5)], site)
    c = _wide(tmp_path / "c.csv", "2024-01-01 03:00", 3, bump=100)
    rep = ingest([c], site, rename={"P1": "P1b", "P2": "P2b"})
    assert rep.n_conflicts == 0 and rep.files[0].new == 6
    assert set(rep.files[0].sensors_new) == {"P1b", "P2b"}
    ids = set(Site.load(site).readings["sensor_id"].astype(str))
    assert ids == {"P1", "P2", "P1b", "P2b"}


def test_rename_refuses_an_unknown_column(tmp_path: Path) -> None:
    c = _wide(tmp_path / "c.csv", "2024-01-01", 2)
    with pytest.raises(UsageError, match="--rename") as err:
        read_file(c, rename={"P9": "x"})
    assert "P1" in err.value.render()
    with pytest.raises(UsageError, match="P2"):
        read_file(c, rename={"P1": "P2"})  # would give two columns one id


def test_cli_conflict_exit_2_and_explicit_keep(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = tmp_path / "site"
    run(["ingest", str(_wide(tmp_path / "a.csv", "2024-01-01", 5)), "--out", str(site)], capsys)
    before = _snapshot(site)
    c = _wide(tmp_path / "c.csv", "2024-01-01 03:00", 3, bump=100)
    code, _, err = run(["ingest", str(c), "--out", str(site)], capsys)
    assert code == 2 and "c.csv:2:" in err and "conflict" in err and "Traceback" not in err
    assert _snapshot(site) == before
    code, out, _ = run(["ingest", str(c), "--out", str(site), "--on-conflict", "keep"], capsys)
    assert code == 0 and "4 conflicting" in out and "kept their stored value" in out
    site_p1 = Site.load(site).readings.query("sensor_id == 'P1'").set_index("timestamp")
    assert site_p1.loc[pd.Timestamp("2024-01-01 03:00", tz="UTC"), "value"] == 3.0


def test_cli_rename_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = tmp_path / "site"
    run(["ingest", str(_wide(tmp_path / "a.csv", "2024-01-01", 5)), "--out", str(site)], capsys)
    c = _wide(tmp_path / "c.csv", "2024-01-01 03:00", 3, bump=100)
    code, out, err = run(
        ["ingest", str(c), "--out", str(site), "--rename", "P1=P1b", "--rename", "P2=P2b"],
        capsys,
    )
    assert code == 0, err
    assert "6 new" in out and "0 conflicting" in out
    code, _, err = run(["ingest", str(c), "--out", str(site), "--rename", "P1"], capsys)
    assert code == 2 and "--rename" in err and "COLUMN=ID" in err


def test_realdata_another_well_is_not_merged_into_head(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = shared_data("gw-challenge") / "data"
    site = tmp_path / "nl"
    code, _, err = run(["ingest", str(data / "Netherlands" / "heads_full.csv"), "--out", str(site)], capsys)  # fmt: skip
    assert code == 0, err
    before = _snapshot(site)
    code, _, err = run(["ingest", str(data / "Germany" / "heads_full.csv"), "--out", str(site)], capsys)  # fmt: skip
    assert code == 2 and "6383 readings" in err and "'head'" in err
    assert "heads_full.csv:2:" in err and "stored 11.31" in err and "new 374.76" in err
    assert _snapshot(site) == before


# 2. a headerless file read as a wide CSV ----------------------------------------------------


def test_headerless_tabbed_file_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "waX_14d.txt"
    f.write_text(
        "2015-12-18 00:00:00\t10231\t12.86776\t1\t1426.756\r\n"
        "2015-12-18 00:15:00\t10232\t12.67049\t0\t1421.353\r\n"
    )
    with pytest.raises(InputError) as err:
        read_file(f)
    assert err.value.file == str(f) and err.value.line == 1
    msg = err.value.render()
    assert "header" in msg and "--format tabbed --column-map" in msg


@pytest.mark.parametrize(
    "content",
    [
        "1450425600,10231,12.86776\n1450426500,10232,12.67049\n",  # epoch seconds, numbers
        "MLP,12.86776,1426.756,0.5\nMLP,12.67049,1421.353,0.6\n",  # shaped like the data
        "2024-01-01T00:00:00Z,1.5\n2024-01-01T01:00:00Z,1.6\n",  # a timestamp as time header
        "01/03/2024 10:00,5,6\n01/03/2024 11:00,5,6\n",
    ],
)
def test_header_that_looks_like_data_is_refused(tmp_path: Path, content: str) -> None:
    f = tmp_path / "h.csv"
    f.write_text(content)
    with pytest.raises(InputError, match="looks like data") as err:
        read_file(f)
    assert err.value.line == 1


@pytest.mark.parametrize(
    ("header", "ids"),
    [("time,101,102", ["101", "102"]), ("depth_time,0.5,1.5", ["0.5", "1.5"])],
)
def test_number_sensor_names_under_a_named_time_column_are_a_header(
    tmp_path: Path, header: str, ids: list[str]
) -> None:
    f = tmp_path / "ok.csv"
    f.write_text(header + "\n2024-01-01,1,2\n2024-01-02,1,2\n")
    r = read_file(f)
    assert sorted(map(str, r.sensors["id"])) == ids and r.n_readings == 4


def test_realdata_mukilteo_headerless_file_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = shared_data("mukilteo-ralhs") / "data" / "RALHS" / "waMLP_14d.txt"
    code, _, err = run(["ingest", str(f), "--out", str(tmp_path / "mk")], capsys)
    assert code == 2 and "waMLP_14d.txt:1:" in err and "--column-map" in err
    assert not (tmp_path / "mk").exists()


# 3. the same file content ingested again with other parsing options -------------------------


def _daily(path: Path, n: int = 10) -> Path:
    t = pd.date_range("2024-01-01", periods=n, freq="D")
    path.write_text(
        "time,head\n" + "".join(f"{x:%Y-%m-%d %H:%M},{1 + i / 100:.2f}\n" for i, x in enumerate(t))
    )
    return path


def test_same_content_other_tz_is_refused(tmp_path: Path) -> None:
    f = _daily(tmp_path / "daily.csv")
    site = tmp_path / "site"
    ingest([f], site, tz="Europe/Amsterdam")
    before = _snapshot(site)
    with pytest.raises(InputError) as err:
        ingest([f], site, tz="UTC")
    msg = err.value.render()
    assert "--tz Europe/Amsterdam" in msg and "--tz UTC" in msg and "new" in msg.lower()
    assert "re-create the site" in msg
    assert _snapshot(site) == before
    # a copy under another name is the same content
    g = tmp_path / "copy.csv"
    g.write_bytes(f.read_bytes())
    with pytest.raises(InputError, match="--tz Europe/Amsterdam"):
        ingest([g], site, tz="UTC")


def test_same_content_same_options_stays_idempotent(tmp_path: Path) -> None:
    f = _daily(tmp_path / "daily.csv")
    site = tmp_path / "site"
    ingest([f], site, tz="Europe/Amsterdam")
    before = _snapshot(site)
    rep = ingest([f], site, tz="Europe/Amsterdam")
    assert not rep.changed and rep.files[0].already == 10
    rep = ingest([f], site, tz="Europe/Amsterdam", fmt="wide")  # auto found wide: the same
    assert not rep.changed
    assert _snapshot(site) == before


def test_site_recorded_before_options_compares_the_zone(tmp_path: Path) -> None:
    f = _daily(tmp_path / "daily.csv")
    site = tmp_path / "site"
    ingest([f], site, tz="Europe/Amsterdam")
    meta_path = site / "site.json"
    meta = json.loads(meta_path.read_text())
    for h in meta["ingests"]:
        del h["options"]  # as sites written before options were recorded
    meta_path.write_text(json.dumps(meta))
    assert not ingest([f], site, tz="Europe/Amsterdam").changed
    with pytest.raises(InputError, match="--tz Europe/Amsterdam"):
        ingest([f], site, tz="UTC")


def test_options_are_recorded_in_the_site(tmp_path: Path) -> None:
    f = _daily(tmp_path / "daily.csv")
    ingest([f], tmp_path / "site", tz="Europe/Amsterdam", missing_values=["-9999"])
    meta = json.loads((tmp_path / "site" / "site.json").read_text())
    opts = meta["ingests"][0]["options"]
    assert opts["tz"] == "Europe/Amsterdam" and opts["missing_values"] == ["-9999"]
    assert opts["format"] == "wide"


def test_cli_same_content_other_tz_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = _daily(tmp_path / "daily.csv")
    site = str(tmp_path / "site")
    code, _, _ = run(["ingest", str(f), "--out", site, "--tz", "Europe/Amsterdam"], capsys)
    assert code == 0
    code, _, err = run(["ingest", str(f), "--out", site, "--tz", "UTC"], capsys)
    assert code == 2 and "daily.csv" in err and "--tz UTC" in err and "Traceback" not in err
    code, out, _ = run(["ingest", str(f), "--out", site, "--tz", "Europe/Amsterdam"], capsys)
    assert code == 0 and "unchanged" in out


# 4. a sensors-table row naming no sensor ----------------------------------------------------


def test_sensors_table_typo_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "h.csv"
    f.write_text("time,head,rain\n2024-01-01,1,0\n2024-01-02,2,0\n")
    sens = tmp_path / "sens.csv"
    sens.write_text("id,kind,unit\nrain,rain_gauge,mm\nhaed,piezometer,m\n")
    with pytest.raises(InputError) as err:
        ingest([f], tmp_path / "site", sensors=sens)
    e = err.value
    assert e.file == str(sens) and e.line == 3
    msg = e.render()
    assert "'haed'" in msg and "did you mean 'head'" in msg and "head, rain" in msg
    assert not (tmp_path / "site").exists()


def test_sensors_table_may_name_sensors_of_the_site(tmp_path: Path) -> None:
    site = tmp_path / "site"
    ingest([_wide(tmp_path / "a.csv", "2024-01-01", 3)], site)
    sens = tmp_path / "sens.csv"
    sens.write_text("id,kind,unit\nP1,piezometer,kPa\nQ1,piezometer,kPa\n")
    q = _wide(tmp_path / "q.csv", "2024-02-01", 3, sensors=("Q1",))
    rep = ingest([q], site, sensors=sens)
    kinds = Site.load(site).sensors.set_index("id")["kind"]
    assert rep.changed and kinds["P1"] == "piezometer" and kinds["Q1"] == "piezometer"


def test_cli_sensors_table_typo_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "h.csv"
    f.write_text("time,head\n2024-01-01,1\n")
    sens = tmp_path / "sens.csv"
    sens.write_text("id,kind,unit\nhaed,piezometer,m\n")
    code, _, err = run(
        ["ingest", str(f), "--out", str(tmp_path / "s"), "--sensors", str(sens)], capsys
    )
    assert code == 2 and "sens.csv:2:id:" in err and "'head'" in err
    assert not (tmp_path / "s").exists()


# 5. a header line repeated in the file -----------------------------------------------------


@pytest.mark.parametrize(
    ("content", "lines"),
    [
        ("time,head\ntime,head\n2024-01-01 00:00,1\n2024-01-01 01:00,2\n", "2"),
        ("time,head\n2024-01-01 00:00,1\ntime,head\n2024-01-01 01:00,2\n", "3"),
        ("time,head\ntime,head\n2024-01-01 00:00,1\ntime,head\n2024-01-01 01:00,2\n", "2, 4"),
    ],
)
def test_repeated_header_skipped_and_reported(tmp_path: Path, content: str, lines: str) -> None:
    f = tmp_path / "rep.csv"
    f.write_text(content)
    r = read_file(f)
    assert r.n_readings == 2 and list(r.readings["value"]) == [1.0, 2.0]
    assert str(r.sensors.set_index("id").loc["head", "unit"]) == ""  # not taken for units
    n = lines.count(",") + 1
    assert any(
        f"{n} line(s) repeating the header" in w and f"(lines {lines})" in w for w in r.warnings
    )


def test_repeated_header_with_units_row_block_skipped(tmp_path: Path) -> None:
    f = tmp_path / "rep.csv"
    f.write_text(
        "time,P1,P2\n,kPa,kPa\n2024-01-01 00:00,1,2\n"
        "time,P1,P2\n,kPa,kPa\n2024-01-01 01:00,3,4\n2024-01-01 02:00,5,6\n"
    )
    r = read_file(f)
    assert r.n_readings == 6 and "kPa" in set(r.sensors["unit"])
    assert any("(lines 4)" in w for w in r.warnings)


def test_repeated_header_with_integer_sensor_names(tmp_path: Path) -> None:
    f = tmp_path / "rep.csv"
    f.write_text("time,101\n2024-01-01 00:00,1\ntime,101\n2024-01-01 01:00,2\n")
    r = read_file(f)
    assert r.n_readings == 2 and any("(lines 3)" in w for w in r.warnings)


def test_repeated_header_in_a_long_file(tmp_path: Path) -> None:
    f = tmp_path / "long.csv"
    f.write_text(
        "timestamp,sensor_id,value\n2024-01-01T00:00Z,P1,1\n"
        "timestamp,sensor_id,value\n2024-01-01T01:00Z,P1,2\n"
    )
    r = read_file(f)
    assert r.fmt == "long" and r.n_readings == 2
    assert any("(lines 3)" in w for w in r.warnings)


def test_repeated_header_line_numbers_in_later_errors(tmp_path: Path) -> None:
    f = tmp_path / "rep.csv"
    f.write_text("time,head\n2024-01-01 00:00,1\ntime,head\n2024-01-01 01:00,x\n")
    with pytest.raises(InputError) as err:
        read_file(f)
    assert err.value.line == 4


def test_cli_repeated_header_warned_in_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "rep.csv"
    f.write_text("time,head\ntime,head\n2024-01-01 00:00,1\ntime,head\n2024-01-01 01:00,2\n")
    code, out, err = run(["ingest", str(f), "--out", str(tmp_path / "s"), "--json"], capsys)
    assert code == 0, err
    w = json.loads(out)["files"][0]["warnings"]
    assert len(w) == 1 and "2 line(s) repeating the header" in w[0] and "lines 2, 4" in w[0]


# 6. --sep must be one character -------------------------------------------------------------


@pytest.mark.parametrize("sep", [";;", "", '"'])
def test_cli_sep_must_be_one_character(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sep: str
) -> None:
    f = tmp_path / "inp.csv"
    f.write_text("time;a\n2024-01-01;1\n")
    code, _, err = run(["ingest", str(f), "--out", str(tmp_path / "s"), "--sep", sep], capsys)
    assert code == 2 and "--sep" in err and "internal error" not in err
    assert "Traceback" not in err and not (tmp_path / "s").exists()


def test_sep_tab_alias_still_works(tmp_path: Path) -> None:
    f = tmp_path / "t.csv"
    f.write_text("time\ta\n2024-01-01\t1\n")
    assert read_file(f, sep="tab").n_readings == 1


def test_repeated_header_with_byte_order_mark_and_crlf(tmp_path: Path) -> None:
    f = tmp_path / "cat.csv"
    part = "\ufefftime,head\r\n2024-01-01 0{h}:00,{h}\r\n"
    f.write_bytes("".join(part.format(h=h) for h in range(3)).encode("utf-8"))
    r = read_file(f)
    assert r.n_readings == 3 and any("(lines 3, 5)" in w for w in r.warnings)


def test_sensors_table_rows_of_files_to_come_are_left_out_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # one sensors table for the whole site, its loggers' files ingested one at a time: rows
    # of sensors not in this file are neither refused nor added as sensors without readings
    sens = tmp_path / "sens.csv"
    sens.write_text("id,kind,unit\nP1,piezometer,kPa\nrain,rain_gauge,mm\nSP9,settlement,mm\n")
    site = tmp_path / "site"
    with caplog.at_level("WARNING"):
        ingest([_wide(tmp_path / "a.csv", "2024-01-01", 3)], site, sensors=sens)
    ids = set(Site.load(site).sensors["id"])
    assert "P1" in ids and "rain" not in ids and "SP9" not in ids
    assert "2 row(s) name no sensor" in caplog.text and "rain, SP9" in caplog.text
    q = _wide(tmp_path / "q.csv", "2024-02-01", 3, sensors=("SP9",))
    ingest([q], site, sensors=sens)
    kinds = Site.load(site).sensors.set_index("id")["kind"]
    assert kinds["SP9"] == "settlement"
