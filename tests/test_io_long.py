"""Long CSV reader and the readings export it must read back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geojepa.errors import InputError
from geojepa.io import detect_format, ingest, read_file
from geojepa.io.export import write_readings_csv
from geojepa.site import Site


def _csv(tmp_path: Path, text: str, name: str = "long.csv") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_long_any_order_sorted_out(tmp_path: Path) -> None:
    p = _csv(
        tmp_path,
        "time,sensor,value\n2024-01-02,B,2\n2024-01-01,A,1\n2024-01-01,B,\n2024-01-02,A,INF\n",
    )
    assert detect_format(p) == "long"
    r = read_file(p)
    assert r.fmt == "long"
    assert r.readings["sensor_id"].astype(str).tolist() == ["A", "A", "B", "B"]
    assert r.readings["timestamp"].is_monotonic_increasing is False  # per sensor only
    assert r.quality == {"ok": 2, "missing": 1, "non_finite": 1}


def test_long_duplicates(tmp_path: Path) -> None:
    same = _csv(tmp_path, "timestamp,sensor_id,value\n2024-01-01,A,1\n2024-01-01,A,1\n")
    r = read_file(same)
    assert r.n_readings == 1 and any("left out" in w for w in r.warnings)
    diff = _csv(
        tmp_path, "timestamp,sensor_id,value\n2024-01-01,A,1\n2024-01-02,A,1\n2024-01-01,A,3\n"
    )
    with pytest.raises(InputError, match="two values") as err:
        read_file(diff)
    assert err.value.line == 4
    assert "line 2" in err.value.render()


def test_long_unknown_quality_flag(tmp_path: Path) -> None:
    p = _csv(
        tmp_path, "timestamp,sensor_id,value,quality\n2024-01-01,A,1,ok\n2024-01-02,A,1,great\n"
    )
    with pytest.raises(InputError, match="unknown quality flag") as err:
        read_file(p)
    assert err.value.line == 3


def test_export_reads_back_identically(tmp_path: Path, small_site: Site) -> None:
    rd = small_site.readings.copy()
    rd.loc[3, "value"] = np.nan
    rd.loc[3, "quality"] = "missing"
    rd.loc[4, "quality"] = "outlier"
    site = Site(name="x", sensors=small_site.sensors, readings=rd)
    out = tmp_path / "readings.csv"
    n = write_readings_csv(site, out)
    assert n == len(rd)
    text = out.read_text().splitlines()
    assert text[0] == "timestamp,sensor_id,value,quality,source"
    assert text[1].startswith("2024-01-01T00:00:00Z,P1,")
    back = read_file(out)
    assert back.n_readings == len(rd)
    a = site.readings
    b = back.readings
    pd.testing.assert_series_equal(
        a["timestamp"].reset_index(drop=True), b["timestamp"].reset_index(drop=True)
    )
    assert np.allclose(a["value"], b["value"], equal_nan=True)
    assert a["quality"].astype(str).tolist() == b["quality"].astype(str).tolist()


def test_cli_roundtrip_site_to_site(tmp_path: Path, small_site: Site) -> None:
    small_site.save(tmp_path / "a")
    write_readings_csv(Site.load(tmp_path / "a"), tmp_path / "r.csv")
    ingest([tmp_path / "r.csv"], tmp_path / "b")
    a, b = Site.load(tmp_path / "a"), Site.load(tmp_path / "b")
    assert np.allclose(a.readings["value"], b.readings["value"])
    assert set(b.readings["source"].astype(str)) == {"r.csv"}


def _dst_hour_texts() -> list[str]:
    """Local times across the US autumn change (2023-11-05): 01:00-01:45 happens twice."""
    first = pd.date_range("2023-11-05 00:30", "2023-11-05 01:45", freq="15min")
    second = pd.date_range("2023-11-05 01:00", "2023-11-05 02:15", freq="15min")
    return [str(t) for t in first] + [str(t) for t in second]


@pytest.mark.parametrize("by", ["time", "sensor"])
def test_long_dst_repeat_resolved_per_sensor(tmp_path: Path, by: str) -> None:
    # two sensors in local time across the repeated hour: each sensor's rows, in file order,
    # go through the hour twice (a row of another sensor at the same time is not a repeat)
    texts = _dst_hour_texts()
    if by == "time":
        rows = [f"{t},{s},{i}" for i, t in enumerate(texts) for s in ("A", "B")]
    else:
        rows = [f"{t},{s},{i}" for s in ("A", "B") for i, t in enumerate(texts)]
    p = _csv(tmp_path, "timestamp,sensor_id,value\n" + "\n".join(rows) + "\n")
    r = read_file(p, tz="America/Los_Angeles")
    assert r.n_readings == 2 * len(texts)
    for _, g in r.readings.groupby("sensor_id", observed=True):
        t = g["timestamp"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
        assert (np.diff(t) == 15 * 60 * 10**9).all()  # one regular series in UTC
        assert g["value"].tolist() == list(range(len(texts)))
        assert (g["quality"].astype(str) == "dst_repeat").sum() == 8
