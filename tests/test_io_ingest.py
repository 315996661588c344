"""Ingest into a site: re-ingest adds nothing, conflicts refused (or kept and reported with
on_conflict="keep"), failures atomic."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from geojepa.errors import InputError
from geojepa.io import ingest
from geojepa.site import Site


def _wide(
    path: Path, start: str, n: int, sensors: tuple[str, ...] = ("P1", "P2"), bump: float = 0.0
) -> Path:
    times = pd.date_range(start, periods=n, freq="h", tz="UTC")
    rows = [
        ",".join([t.isoformat()] + [f"{i + j + bump:.1f}" for j, _ in enumerate(sensors)])
        for i, t in enumerate(times)
    ]
    path.write_text("time," + ",".join(sensors) + "\n" + "\n".join(rows) + "\n")
    return path


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_new_site_and_raw_copy(tmp_path: Path) -> None:
    f = _wide(tmp_path / "a.csv", "2024-01-01", 5)
    rep = ingest([f], tmp_path / "site")
    assert rep.created and rep.changed and rep.n_new == 10
    site = Site.load(tmp_path / "site")
    assert len(site.readings) == 10
    assert (tmp_path / "site" / "raw" / "a.csv").read_bytes() == f.read_bytes()
    assert site.meta["ingests"][0]["file"] == "a.csv"
    assert set(site.readings["source"].astype(str)) == {"a.csv"}


def test_reingest_adds_nothing_and_leaves_folder_identical(tmp_path: Path) -> None:
    f = _wide(tmp_path / "a.csv", "2024-01-01", 5)
    ingest([f], tmp_path / "site")
    before = _snapshot(tmp_path / "site")
    rep = ingest([f], tmp_path / "site")
    assert not rep.changed
    assert rep.files[0].new == 0 and rep.files[0].already == 10
    assert _snapshot(tmp_path / "site") == before


def test_overlapping_file_adds_only_new_readings(tmp_path: Path) -> None:
    ingest([_wide(tmp_path / "a.csv", "2024-01-01", 5)], tmp_path / "site")
    rep = ingest([_wide(tmp_path / "b.csv", "2024-01-01 03:00", 5, bump=3)], tmp_path / "site")
    assert rep.files[0].new == 6 and rep.files[0].already == 4 and rep.n_conflicts == 0
    site = Site.load(tmp_path / "site")
    assert len(site.readings) == 16
    assert site.readings["timestamp"].is_monotonic_increasing is False  # sorted per sensor
    assert sorted(site.readings["source"].astype(str).unique()) == ["a.csv", "b.csv"]


def test_conflicts_with_keep_reported_never_overwritten(tmp_path: Path) -> None:
    ingest([_wide(tmp_path / "a.csv", "2024-01-01", 5)], tmp_path / "site")
    rep = ingest(
        [_wide(tmp_path / "c.csv", "2024-01-01 03:00", 3, bump=100)],
        tmp_path / "site",
        on_conflict="keep",
    )
    assert rep.n_conflicts == 4  # 2 sensors x 2 overlapping hours
    assert rep.files[0].new == 2
    c = rep.conflicts.iloc[0]
    assert c["stored"] != c["new"] and c["stored_source"] == "a.csv"
    site = Site.load(tmp_path / "site")
    p1 = site.readings[site.readings["sensor_id"] == "P1"].set_index("timestamp")["value"]
    assert p1[pd.Timestamp("2024-01-01 03:00", tz="UTC")] == 3.0  # stored value kept
    assert any("conflicting" in line for line in rep.lines())


def test_conflict_error_mode_leaves_folder_identical(tmp_path: Path) -> None:
    ingest([_wide(tmp_path / "a.csv", "2024-01-01", 5)], tmp_path / "site")
    before = _snapshot(tmp_path / "site")
    with pytest.raises(InputError, match="conflict"):
        ingest(
            [_wide(tmp_path / "c.csv", "2024-01-01", 2, bump=9)],
            tmp_path / "site",
            on_conflict="error",
        )
    assert _snapshot(tmp_path / "site") == before


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"time,P1\n",
        b"\x00\x01\x02binary",
        b"time,P1\n2024-01-01,1\n2024-01-01T05:00,abc\n",
        b"time;P1\n2024-01-01;1\n",
        b"time,P1\n2024-01-02,1\n2024-01-01,1\n",
        b"time,P1\n2024-01-01,1\nnot-a-time,2\n",
        b"time,P1\n2024-01-01T00:00Z,1\n2024-01-01T01:00,2\n",
        b"time,P1\n2024-01-01,\xff\n",
    ],
)
def test_failed_ingest_leaves_site_byte_identical(tmp_path: Path, bad: bytes) -> None:
    good = _wide(tmp_path / "a.csv", "2024-01-01", 5)
    ingest([good], tmp_path / "site")
    before = _snapshot(tmp_path / "site")
    mtime = os.stat(tmp_path / "site" / "readings.parquet").st_mtime_ns
    badf = tmp_path / "bad.csv"
    badf.write_bytes(bad)
    other = _wide(tmp_path / "ok2.csv", "2024-02-01", 3)
    with pytest.raises(InputError):
        ingest([other, badf], tmp_path / "site", sep="," if b";" in bad else None)
    assert _snapshot(tmp_path / "site") == before
    assert os.stat(tmp_path / "site" / "readings.parquet").st_mtime_ns == mtime
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_units_mismatch_with_site(tmp_path: Path) -> None:
    a = tmp_path / "a.csv"
    a.write_text("time,P1\n,kPa\n2024-01-01,1\n")
    ingest([a], tmp_path / "site")
    b = tmp_path / "b.csv"
    b.write_text("time,P1\n,m\n2024-01-02,1\n")
    with pytest.raises(InputError, match="units mismatch"):
        ingest([b], tmp_path / "site")


def test_same_name_different_file_kept_apart(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    ingest([_wide(tmp_path / "x" / "data.csv", "2024-01-01", 2)], tmp_path / "site")
    ingest([_wide(tmp_path / "y" / "data.csv", "2024-03-01", 2)], tmp_path / "site")
    raw = sorted(p.name for p in (tmp_path / "site" / "raw").iterdir())
    assert len(raw) == 2 and "data.csv" in raw
    srcs = set(Site.load(tmp_path / "site").readings["source"].astype(str))
    assert srcs == set(raw)


def test_refuses_to_replace_a_folder_that_is_not_a_site(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "precious.txt").write_text("keep me")
    with pytest.raises(InputError, match="not a site folder"):
        ingest([_wide(tmp_path / "a.csv", "2024-01-01", 2)], tmp_path / "docs")
    assert (tmp_path / "docs" / "precious.txt").read_text() == "keep me"


def test_labels_from_label_column_and_no_duplicates_on_reingest(tmp_path: Path) -> None:
    f = tmp_path / "l.csv"
    f.write_text(
        "time,P1,event\n"
        + "".join(f"2024-01-01T{h:02d}:00Z,{h},{int(4 <= h <= 6)}\n" for h in range(10))
    )
    ingest([f], tmp_path / "site", label_cols=["event"])
    site = Site.load(tmp_path / "site")
    assert len(site.labels) == 1 and site.labels["kind"].iloc[0] == "event"
    assert "event" not in set(site.sensors["id"])
    rep = ingest([f], tmp_path / "site", label_cols=["event"])
    assert not rep.changed and len(Site.load(tmp_path / "site").labels) == 1


def test_events_file_becomes_labels(tmp_path: Path) -> None:
    f = _wide(tmp_path / "a.csv", "2024-01-01", 5)
    ev = tmp_path / "events.csv"
    ev.write_text(
        "start,end,kind,sensors,category\n2024-01-01T01:00Z,2024-01-01T02:00Z,spike,P1,sensor_fault\n"
    )
    rep = ingest([f], tmp_path / "site", labels=ev)
    assert rep.files[-1].labels_new == 1
    lab = Site.load(tmp_path / "site").labels
    assert (lab["kind"].iloc[0], lab["sensors"].iloc[0], lab["source"].iloc[0]) == (
        "spike",
        "P1",
        "events.csv",
    )
    assert not ingest([], tmp_path / "site", labels=ev).changed
    bad = tmp_path / "bad_events.csv"
    bad.write_text("start,end,kind,sensors\n2024-01-01T01:00Z,2024-01-01T00:00Z,x,P1\n")
    with pytest.raises(InputError, match="ends before it starts") as err:
        ingest([], tmp_path / "site", labels=bad)
    assert err.value.line == 2
    ghost = tmp_path / "ghost.csv"
    ghost.write_text("start,end,kind,sensors\n2024-01-01T01:00Z,2024-01-01T02:00Z,x,P9\n")
    with pytest.raises(InputError, match="'P9'"):
        ingest([], tmp_path / "site", labels=ghost)
