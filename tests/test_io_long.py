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
