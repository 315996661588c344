"""The ingest fast paths give exactly what the general paths give.

Each shortcut taken for speed (value block reused as the long table's column, counts from
code runs, Parquet written from Arrow arrays with required columns, the all-``Z`` time
path, parser blocks sized to the longest line) is checked against a plain computation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from geojepa.errors import InputError
from geojepa.io import csvcore, ingest, read_file
from geojepa.io.csvcore import LineMap, float_block, read_delimited
from geojepa.io.result import (
    QUALITY_DTYPE,
    count_quality,
    long_from_columns,
    present_ids,
    used_codes,
)
from geojepa.io.textfile import inspect_text
from geojepa.io.times import parse_times
from geojepa.site import Sensor, Site, readings_table, sensors_frame, write_readings


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_used_codes_match_unique(seed: int) -> None:
    rng = np.random.default_rng(seed)
    sorted_codes = np.repeat(rng.choice(40, size=12, replace=False), rng.integers(1, 50, 12))
    shuffled = rng.permutation(sorted_codes)
    with_missing = np.where(rng.random(len(shuffled)) < 0.1, -1, shuffled)
    for codes in (sorted_codes, shuffled, with_missing):
        codes = codes.astype(np.int8)
        expected = np.unique(codes[codes >= 0])
        np.testing.assert_array_equal(used_codes(codes), expected)
    assert len(used_codes(np.zeros(0, dtype=np.int8))) == 0


def test_present_ids_ignore_unused_categories() -> None:
    sid = pd.Categorical(["B", "B", "D"], categories=["A", "B", "C", "D"])
    df = pd.DataFrame({"sensor_id": sid})
    assert present_ids(df) == {"B", "D"}
    assert present_ids(pd.DataFrame({"sensor_id": ["x", "y", "x"]})) == {"x", "y"}


@pytest.mark.parametrize("seed", [0, 1])
def test_count_quality_matches_value_counts(seed: int) -> None:
    rng = np.random.default_rng(seed)
    flags = rng.choice(list(QUALITY_DTYPE.categories), size=500, p=[0.9] + [0.1 / 6] * 6)
    q = pd.Series(flags, dtype="str").astype(QUALITY_DTYPE)
    got = count_quality(pd.DataFrame({"quality": q}))
    expected = {str(k): int(v) for k, v in pd.Series(flags).value_counts().items()}
    assert got == expected
    assert list(got) == [k for k in QUALITY_DTYPE.categories if k in got]  # flag order
    none_ok = pd.DataFrame({"quality": pd.Series(["clock"] * 3, dtype="str").astype(QUALITY_DTYPE)})
    assert count_quality(none_ok) == {"clock": 3}


def _times(n: int) -> np.ndarray:
    return pd.date_range("2024-01-01", periods=n, freq="h").to_numpy(dtype="datetime64[ns]")


def test_long_from_block_shares_memory_and_equals_list_path() -> None:
    rng = np.random.default_rng(3)
    block = rng.normal(size=(3, 5))  # (C, T)
    block[1, 2] = np.nan
    block[2, 4] = np.inf
    t = _times(5)
    ids = ["A", "B", "C"]
    fast = long_from_columns(t, block, ids, "f.csv")
    slow = long_from_columns(t, [block[i].copy() for i in range(3)], ids, "f.csv")
    pd.testing.assert_frame_equal(fast, slow)
    no_inf = rng.normal(size=(3, 5))
    shared = long_from_columns(t, no_inf, ids, "f.csv")
    assert np.shares_memory(shared["value"].to_numpy(), no_inf)
    assert count_quality(fast) == {"ok": 13, "missing": 1, "non_finite": 1}
    # ids out of order: rows still come out sorted by id, values follow their ids
    mixed = long_from_columns(t, block, ["C", "A", "B"], "f.csv")
    assert list(mixed["sensor_id"].astype(str))[::5] == ["A", "B", "C"]
    np.testing.assert_array_equal(mixed["value"].to_numpy()[:5], block[1])


def test_float_block_over_chunks_and_nulls() -> None:
    a = pa.table({"x": pa.array([1.0, None, 3.0]), "y": pa.array([4.0, 5.0, None])})
    b = pa.table({"x": pa.array([7.0]), "y": pa.array([8.0])})
    table = pa.concat_tables([a, b])
    assert table.column("x").num_chunks == 2
    got = float_block(table, ["y", "x"])
    expected = np.array([[4.0, 5.0, np.nan, 8.0], [1.0, np.nan, 3.0, 7.0]])
    np.testing.assert_array_equal(got, expected)
    assert got.flags.c_contiguous


def test_long_line_fits_a_parser_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A line longer than the default block is parsed by pyarrow, not the slow fallback."""
    long_note = "n" * (csvcore.PARSE_BLOCK + 1000)
    p = tmp_path / "long.csv"
    rows = ["2024-01-01T00:00:00Z,1.0,a", f"2024-01-01T01:00:00Z,2.0,{long_note}"]
    p.write_text("time,P1,note\n" + "\n".join(rows) + "\n", encoding="utf-8")
    info = inspect_text(p, max_line_bytes=4 << 20)
    assert info.max_line > csvcore.PARSE_BLOCK
    assert csvcore.parse_block_size(info) > info.max_line

    def no_fallback(*args: object, **kwargs: object) -> None:
        raise AssertionError("fell back to the row-by-row parser")

    monkeypatch.setattr(csvcore, "_read_slow", no_fallback)
    table, _ = read_delimited(
        info,
        names=["time", "P1", "note"],
        first_line=2,
        sep=",",
        numeric=["P1"],
        text=["time", "note"],
        lines=LineMap(p, info.encoding, 2),
    )
    assert table.num_rows == 2
    assert table.column("note")[1].as_py() == long_note


def test_all_z_times_equal_explicit_offsets() -> None:
    z = ["2024-03-31T00:00:00Z", "2024-03-31T01:30:00Z", " 2024-03-31T02:00:00Z "]
    off = ["2024-03-31T00:00:00+00:00", "2024-03-31T01:30:00+00:00", "2024-03-31T02:00:00+00:00"]
    lines = [2, 3, 4]
    a = parse_times(z, file="t.csv", lines=lines, column="t")
    b = parse_times(off, file="t.csv", lines=lines, column="t")
    np.testing.assert_array_equal(a.utc, b.utc)
    assert a.had_offset and list(a.flags) == ["ok"] * 3
    with pytest.raises(InputError, match="mixed time offsets"):
        parse_times(
            ["2024-01-01T00:00:00Z", "2024-01-01 01:00:00"], file="t", lines=lines, column="t"
        )


def _sensors(*ids: str) -> pd.DataFrame:
    return sensors_frame([Sensor(i) for i in ids])


def test_parquet_roundtrip_of_ingested_readings(tmp_path: Path) -> None:
    p = tmp_path / "w.csv"
    p.write_text(
        "timestamp,B,A\n2024-01-01T00:00:00Z,1.5,NAN\n2024-01-01T01:00:00Z,INF,2\n"
        "2024-01-01T02:00:00Z,,3\n",
        encoding="utf-8",
    )
    r = read_file(p)
    path = tmp_path / "r.parquet"
    write_readings(r.readings, path)
    back = pd.read_parquet(path)
    pd.testing.assert_frame_equal(back, r.readings)
    schema = pq.read_schema(path)
    assert not any(f.nullable for f in schema)  # no nulls: every column required
    assert np.isnan(back["value"]).sum() == 3  # NAN, INF (flagged non_finite), empty


def test_parquet_keeps_nulls_and_str_columns(tmp_path: Path) -> None:
    ts = pd.Series(pd.to_datetime(["2024-01-01", None, "2024-01-02"], utc=True))
    df = pd.DataFrame(
        {
            "timestamp": ts.astype("datetime64[ns, UTC]"),
            "sensor_id": pd.Categorical(["A", None, "B"], categories=["A", "B"]),
            "value": [1.0, np.nan, 3.0],
            "quality": pd.Series(["ok", "ok", "missing"], dtype="str"),
            "source": pd.Series(["s", "s", "s"], dtype="str"),
        }
    )
    table = readings_table(df)
    assert table.schema.field("timestamp").nullable and table.schema.field("sensor_id").nullable
    assert not table.schema.field("value").nullable
    path = tmp_path / "r.parquet"
    write_readings(df, path)
    pd.testing.assert_frame_equal(pd.read_parquet(path), df)


def test_site_checks_unknown_sensors_in_use_only(tmp_path: Path) -> None:
    t = pd.Timestamp("2024-01-01", tz="UTC")
    readings = pd.DataFrame(
        {
            "timestamp": [t, t],
            "sensor_id": pd.Categorical(["A", "A"], categories=["A", "Z"]),
            "value": [1.0, 2.0],
        }
    )
    Site(name="s", sensors=_sensors("A"), readings=readings)  # "Z" is a category, unused
    readings["sensor_id"] = pd.Categorical(["A", "Z"], categories=["A", "Z"])
    with pytest.raises(InputError, match="missing from the sensors table"):
        Site(name="s", sensors=_sensors("A"), readings=readings)


def test_ingested_site_loads_back_identical(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    times = pd.date_range("2024-01-01", periods=50, freq="h", tz="UTC")
    vals = rng.normal(size=(50, 4)).round(3)
    vals[3, 1] = np.nan
    df = pd.DataFrame(vals, columns=["S3", "S1", "S4", "S2"])
    df.insert(0, "timestamp", times.strftime("%Y-%m-%dT%H:%M:%SZ"))
    p = tmp_path / "w.csv"
    df.to_csv(p, index=False)
    ingest([p], tmp_path / "site")
    site = Site.load(tmp_path / "site")
    r = read_file(p)
    got = site.readings.astype({"sensor_id": "str", "quality": "str", "source": "str"})
    want = r.readings.astype({"sensor_id": "str", "quality": "str", "source": "str"})
    pd.testing.assert_frame_equal(got, want)
    assert site.readings["sensor_id"].astype(str).iloc[::50].tolist() == ["S1", "S2", "S3", "S4"]
