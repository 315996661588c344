"""Property-based tests: readers given random or mutated files either return a valid table
or raise InputError — never another exception, never hang."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geojepa.errors import InputError
from geojepa.io import ColumnMap, read_file
from geojepa.io.result import QUALITY_ORDER, ReadResult

TIME_LIMIT_S = 10.0

WIDE = "timestamp,P1,P2\n,kPa,m\n" + "".join(
    f"2024-01-01T{h:02d}:00:00Z,{h}.25,{-h}\n" for h in range(6)
)
TOA5 = (
    '"TOA5","st","CR1000","1","os","prog","sig","Hourly"\n'
    '"TIMESTAMP","RECORD","A","B(1)"\n"TS","RN","kPa","mm"\n"","","Avg","Tot"\n'
    + "".join(f'"2024-01-01 {h:02d}:00:00",{h},{h}.5,"NAN"\n' for h in range(6))
)
LONG = "timestamp,sensor_id,value,quality\n" + "".join(
    f"2024-01-0{1 + h % 3}T0{h}:00:00Z,S{h % 2},{h},ok\n" for h in range(6)
)
TABBED = "".join(f"2015-12-18 0{h}:00:00\t{h}\t12.{h}\t{h % 2}\n" for h in range(6))
CMAP = ColumnMap.from_rows(
    [
        {"column": 0, "role": "time"},
        {"column": 1, "role": "skip"},
        {"column": 2, "role": "sensor", "sensor_id": "batt", "unit": "V"},
        {"column": 3, "role": "sensor", "sensor_id": "rain", "kind": "rain", "scale": 0.254},
    ]
)
PBO = (
    "PBO Station Position Time Series.\n4-character ID, ABCD\n"
    "Reference position, 42.6 North Latitude, -114.8 East Longitude, 1119.1 meters elevation\n"
    "Date, North (mm), East (mm), Vertical (mm), North Std. Deviation (mm), "
    "East Std. Deviation (mm), Vertical Std. Deviation (mm), Quality,\n"
    + "".join(f"2017-02-{10 + d},{d}.1, -{d}.2, 0.{d}, 1.9, 1.5, 6.2, suppl,\n" for d in range(6))
)
SEEDS = {"wide": WIDE, "toa5": TOA5, "long": LONG, "tabbed": TABBED, "pbo": PBO}
ALPHABET = b',;\t\n\r"\x00\xff\xb09.-:TZ+ eNAInf'


def check_result(r: ReadResult) -> None:
    rd = r.readings
    assert list(rd.columns) == ["timestamp", "sensor_id", "value", "quality", "source"]
    assert str(rd["timestamp"].dt.tz) == "UTC"
    assert set(rd["quality"].astype(str)) <= set(QUALITY_ORDER)
    ids = rd["sensor_id"].astype(str)
    assert set(ids) <= set(r.sensors["id"])
    key = pd.DataFrame({"s": ids, "t": rd["timestamp"]})
    assert not key.duplicated().any()
    # sorted by sensor then time
    order = key.sort_values(["s", "t"], kind="stable").index
    assert (order == np.arange(len(rd))).all()
    v = rd["value"].to_numpy()
    q = rd["quality"].astype(str).to_numpy()
    assert np.isfinite(v[q == "ok"]).all()
    assert sum(r.quality.values()) == len(rd)


def read_contract(data: bytes, fmt: str = "auto", **kw: object) -> None:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "f.csv"
        p.write_bytes(data)
        t0 = time.perf_counter()
        try:
            r = read_file(p, fmt, **kw)  # type: ignore[arg-type]
        except InputError as err:
            assert err.render()  # a message the user can read
            assert err.file is not None or "unknown" in err.message or "column map" in err.message
        else:
            check_result(r)
        assert time.perf_counter() - t0 < TIME_LIMIT_S


def mutate(seed: bytes, ops: list[tuple[int, int, int]]) -> bytes:
    b = bytearray(seed)
    for kind, pos, val in ops:
        if not b:
            b.extend(ALPHABET[val % len(ALPHABET) : val % len(ALPHABET) + 1])
            continue
        i = pos % len(b)
        ch = ALPHABET[val % len(ALPHABET)]
        if kind == 0:
            del b[i]
        elif kind == 1:
            b.insert(i, ch)
        elif kind == 2:
            b[i] = ch
        elif kind == 3:  # duplicate a line
            lines = bytes(b).split(b"\n")
            j = pos % len(lines)
            lines.insert(j, lines[j])
            b = bytearray(b"\n".join(lines))
        elif kind == 4:  # swap two lines
            lines = bytes(b).split(b"\n")
            j, k = pos % len(lines), val % len(lines)
            lines[j], lines[k] = lines[k], lines[j]
            b = bytearray(b"\n".join(lines))
        else:  # truncate
            del b[i:]
    return bytes(b)


OPS = st.lists(
    st.tuples(st.integers(0, 5), st.integers(0, 10_000), st.integers(0, 10_000)),
    min_size=1,
    max_size=6,
)
FAST = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)


@FAST
@given(st.binary(max_size=400))
def test_random_bytes(data: bytes) -> None:
    read_contract(data)


@FAST
@given(st.sampled_from(sorted(SEEDS)), OPS)
def test_mutated_files_auto(name: str, ops: list[tuple[int, int, int]]) -> None:
    read_contract(mutate(SEEDS[name].encode(), ops))


@FAST
@given(st.sampled_from(["wide", "long", "toa5"]), st.sampled_from(sorted(SEEDS)), OPS)
def test_mutated_files_forced_format(fmt: str, name: str, ops: list[tuple[int, int, int]]) -> None:
    read_contract(mutate(SEEDS[name].encode(), ops), fmt)


@FAST
@given(OPS)
def test_mutated_headerless_with_map(ops: list[tuple[int, int, int]]) -> None:
    read_contract(mutate(TABBED.encode(), ops), "tabbed", column_map=CMAP)


@FAST
@given(OPS, st.sampled_from(["UTC", "Europe/Oslo", "America/Los_Angeles"]))
def test_mutated_wide_in_zones(ops: list[tuple[int, int, int]], tz: str) -> None:
    text = WIDE.replace("Z,", ",").encode()
    read_contract(mutate(text, ops), tz=tz)


FLOATS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=32, min_value=-1e6, max_value=1e6),
    st.just(float("nan")),
)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(
    st.integers(1, 4).flatmap(
        lambda c: st.tuples(
            st.just(c),
            st.lists(st.lists(FLOATS, min_size=c, max_size=c), min_size=1, max_size=20),
            st.sampled_from([",", ";", "\t"]),
        )
    )
)
def test_valid_wide_files_read_back_exactly(case: tuple[int, list[list[float]], str]) -> None:
    c, rows, sep = case
    times = pd.date_range("2024-01-01", periods=len(rows), freq="15min", tz="UTC")
    names = [f"S{j}" for j in range(c)]
    lines = [sep.join(["time", *names])]
    for t, row in zip(times, rows, strict=True):
        lines.append(sep.join([t.isoformat(), *("" if np.isnan(x) else repr(x) for x in row)]))
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "w.csv"
        p.write_text("\n".join(lines) + "\n")
        r = read_file(p)
    check_result(r)
    got = r.readings.pivot(index="timestamp", columns="sensor_id", values="value")
    want = np.array(rows, dtype=np.float64)
    assert np.array_equal(got[names].to_numpy(), want, equal_nan=True)
    assert r.quality.get("missing", 0) == int(np.isnan(want).sum())
