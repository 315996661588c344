"""The edge side: streaming reader, grid ring, energy sweep (numpy), torch-free scorer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geojepa.edge.stream import GridRing, LineFollower, ReadingsChunk, StreamParser
from geojepa.energy import (
    EnergySpec,
    TokenInputs,
    frame_energy,
    row_max,
    scored_ends,
    sweep,
    window_energy,
)
from geojepa.errors import InputError
from geojepa.frame import to_frame
from geojepa.site import Sensor, Site, sensors_frame
from geojepa.windows import Normaliser, Window, WindowSpec, window_at

ROOT = Path(__file__).resolve().parents[1]
IDS = ["P1", "P2", "R1"]
STEP = pd.Timedelta("15min")

# Modules a gateway does not have. Blocking them proves the edge path never needs them.
BLOCKER = """
import importlib.abc, sys
BLOCKED = {"torch", "sklearn", "scipy", "typer", "click", "rich", "mlflow", "onnx",
           "onnxscript", "matplotlib", "pycatch22", "yaml"}
class _Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is not installed on the gateway (blocked by the test)")
        return None
sys.meta_path.insert(0, _Blocker())
"""


def torch_free_env(tmp_path: Path) -> dict[str, str]:
    """Environment whose Python cannot import torch (a sitecustomize on PYTHONPATH)."""
    block = tmp_path / "blocker"
    block.mkdir(exist_ok=True)
    (block / "sitecustomize.py").write_text(BLOCKER, encoding="utf-8")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(block), str(ROOT / "src")])
    return env


def run_torch_free(tmp_path: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        env=torch_free_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# ----------------------------------------------------------------------------- torch-free
def test_blocker_really_blocks_torch(tmp_path: Path) -> None:
    proc = run_torch_free(tmp_path, ["-c", "import torch"])
    assert proc.returncode != 0
    assert "not installed on the gateway" in proc.stderr


def test_edge_modules_import_without_torch(tmp_path: Path) -> None:
    code = (
        "import sys, geojepa.edge, geojepa.edge.app, geojepa.edge.score, geojepa.edge.stream, "
        "geojepa.edge.bundle, geojepa.energy, geojepa.alarms\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'sklearn'))\n"
        "print(bad)\n"
    )
    proc = run_torch_free(tmp_path, ["-c", code])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_edge_cli_help_runs_without_torch(tmp_path: Path) -> None:
    proc = run_torch_free(tmp_path, ["-m", "geojepa.edge", "--help"])
    assert proc.returncode == 0, proc.stderr
    assert "score" in proc.stdout and "watch" in proc.stdout


# ----------------------------------------------------------------------------- lines
def test_partial_last_line_is_waited_for(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_bytes(b"time,P1\n2024-01-01 00:00,1.5\n2024-01-01 00:15,2.")
    sleeps: list[float] = []

    def sleep(_: float) -> None:
        # the logger finishes the line while the follower waits
        if not sleeps:
            with open(path, "ab") as fh:
                fh.write(b"25\n2024-01-01 00:30,3.0\n")
        sleeps.append(_)

    follower = LineFollower(path, follow=True, poll=0.0, sleep=sleep, stop=lambda: len(sleeps) >= 3)
    lines = [ln for b in follower.batches() for ln in b.lines]
    assert lines == [
        "time,P1",
        "2024-01-01 00:00,1.5",
        "2024-01-01 00:15,2.25",
        "2024-01-01 00:30,3.0",
    ]


def test_partial_line_never_reaches_the_parser_while_following(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_bytes(b"time,P1\n2024-01-01 00:00,1.5\n2024-01-01 00:15,2.")
    follower = LineFollower(path, follow=True, poll=0.0, sleep=lambda _: None, idle_timeout=0.0)
    lines = [ln for b in follower.batches() for ln in b.lines]
    assert lines == ["time,P1", "2024-01-01 00:00,1.5"]
    once = LineFollower(path, follow=False)
    assert [ln for b in once.batches() for ln in b.lines][-1] == "2024-01-01 00:15,2."


def test_truncated_file_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_bytes(b"time,P1\n2024-01-01 00:00,1\n2024-01-01 00:15,2\n")
    calls: list[int] = []

    def sleep(_: float) -> None:
        if not calls:
            path.write_bytes(b"time,P1\n2024-02-01 00:00,9\n")  # rotated: shorter
        calls.append(1)

    follower = LineFollower(path, follow=True, poll=0.0, sleep=sleep, stop=lambda: len(calls) >= 3)
    lines = [ln for b in follower.batches() for ln in b.lines]
    assert lines[-2:] == ["time,P1", "2024-02-01 00:00,9"]
    assert follower.restarts == 1


def test_a_rotated_file_is_parsed_with_its_own_header(tmp_path: Path) -> None:
    """A logger that starts a new file (a new program) may write its columns in a new
    order: after a truncation or rotation the new header is read, not taken for data."""
    path = tmp_path / "log.csv"
    path.write_bytes(b"time,P1,P2\n2024-01-01 00:00,1,2\n2024-01-01 00:15,1,2\n")
    calls: list[int] = []

    def sleep(_: float) -> None:
        if not calls:
            path.write_bytes(b"time,P2,P1\n2024-01-01 00:30,20,10\n")  # rotated, reordered
        calls.append(1)

    parser = StreamParser(["P1", "P2"], file=path, strict=False)
    follower = LineFollower(path, follow=True, poll=0.0, sleep=sleep, stop=lambda: len(calls) >= 3)
    chunks = [parser.parse(b) for b in follower.batches()]
    assert follower.restarts == 1
    assert parser.stats.bad_lines == 0  # the new header is no garbled data line
    last = chunks[-1]
    t = pd.Timestamp("2024-01-01 00:30", tz="UTC").value
    rows = zip(last.time_ns, last.column, last.value, strict=True)
    got = {IDS[int(c)]: float(v) for tt, c, v in rows if tt == t}
    assert got == {"P1": 10.0, "P2": 20.0}


def test_a_file_truncated_in_place_keeps_its_header(tmp_path: Path) -> None:
    """A copy-and-truncate rotation leaves the logger appending data rows to the emptied
    file without a header: they are read with the header already known."""
    path = tmp_path / "log.csv"
    path.write_bytes(b"time,P1,P2\n2024-01-01 00:00,1,2\n2024-01-01 00:15,1,2\n")
    calls: list[int] = []

    def sleep(_: float) -> None:
        if not calls:
            path.write_bytes(b"2024-01-01 00:30,10,20\n")  # truncated, then appended to
        calls.append(1)

    parser = StreamParser(["P1", "P2"], file=path, strict=True)
    follower = LineFollower(path, follow=True, poll=0.0, sleep=sleep, stop=lambda: len(calls) >= 3)
    last = [parser.parse(b) for b in follower.batches()][-1]
    assert follower.restarts == 1 and parser.stats.bad_lines == 0
    assert dict(zip(np.asarray(IDS)[last.column], last.value, strict=True)) == {
        "P1": 10.0,
        "P2": 20.0,
    }


def test_overlong_line_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "blob.csv"
    path.write_bytes(b"x" * 5000)
    with pytest.raises(InputError, match="longer than"):
        list(LineFollower(path, max_line_bytes=1000).batches())


# ----------------------------------------------------------------------------- parsing
def _parse_all(path: Path, ids: list[str], **kw: object) -> tuple[ReadingsChunk, StreamParser]:
    parser = StreamParser(ids, file=path, **kw)  # type: ignore[arg-type]
    chunks = [parser.parse(b) for b in LineFollower(path).batches()]
    cat = ReadingsChunk(
        np.concatenate([c.time_ns for c in chunks]),
        np.concatenate([c.column for c in chunks]),
        np.concatenate([c.value for c in chunks]),
        np.concatenate([c.good for c in chunks]),
    )
    return cat, parser


def test_toa5_with_nan_inf_unknown_column(tmp_path: Path) -> None:
    path = tmp_path / "CR1000_Table1.dat"
    path.write_text(
        '"TOA5","STN1","CR1000","1234","CR1000.Std","CPU:x.CR1","1","Table1"\n'
        '"TIMESTAMP","RECORD","P1","P2","BattV"\n'
        '"TS","RN","kPa","kPa","V"\n'
        '"","","Smp","Smp","Smp"\n'
        '"2024-01-01 00:00:00",0,10.5,"NAN",12.6\n'
        '"2024-01-01 00:15:00",1,10.7,"INF",12.6\n',
        encoding="utf-8",
    )
    chunk, parser = _parse_all(path, ["P1", "P2"])
    assert parser.fmt == "toa5"
    assert len(chunk) == 4  # 2 rows x 2 known sensors; BattV counted, not silently dropped
    assert parser.stats.unknown_sensors == {"BattV": 2}
    assert parser.stats.missing == 1 and parser.stats.non_finite == 1
    assert chunk.good.tolist() == [True, False, True, False]
    assert chunk.value[0] == 10.5


def test_long_table_and_bad_number_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "readings.csv"
    path.write_text(
        "timestamp,sensor_id,value,quality,source\n"
        "2024-01-01T00:00:00+00:00,P1,1.0,ok,a.csv\n"
        "2024-01-01T00:00:00+00:00,P2,oops,ok,a.csv\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError) as err:
        _parse_all(path, IDS)
    assert err.value.line == 3 and err.value.column == "value"
    chunk, parser = _parse_all(path, IDS, strict=False)
    assert len(chunk) == 1 and parser.stats.bad_lines == 1


def test_repeated_dst_hour_is_resolved_in_time_order(tmp_path: Path) -> None:
    path = tmp_path / "dst.csv"
    local = ["2024-10-27 01:30", "2024-10-27 02:00", "2024-10-27 02:30", "2024-10-27 02:00"]
    local += ["2024-10-27 02:30", "2024-10-27 03:00"]
    path.write_text("time,P1\n" + "".join(f"{t},{i}\n" for i, t in enumerate(local)))
    chunk, _ = _parse_all(path, ["P1"], tz="Europe/Paris")
    utc = pd.to_datetime(chunk.time_ns, utc=True)
    assert (np.diff(chunk.time_ns) > 0).all()  # strictly increasing in UTC
    assert utc[0] == pd.Timestamp("2024-10-26 23:30", tz="UTC")
    assert utc[-1] == pd.Timestamp("2024-10-27 02:00", tz="UTC")


def test_a_time_in_the_daylight_saving_gap_is_a_bad_line_never_a_silent_drop(
    tmp_path: Path,
) -> None:
    path = tmp_path / "gap.csv"
    local = ["2024-03-31 01:30", "2024-03-31 02:30", "2024-03-31 03:30"]  # 02:30 never was
    path.write_text("time,P1\n" + "".join(f"{t},{i}\n" for i, t in enumerate(local)))
    with pytest.raises(InputError) as err:
        _parse_all(path, ["P1"], tz="Europe/Paris")
    assert err.value.line == 3
    chunk, parser = _parse_all(path, ["P1"], tz="Europe/Paris", strict=False)
    assert chunk.value.tolist() == [0.0, 2.0]
    assert parser.stats.bad_lines == 1  # counted, not dropped silently


@pytest.mark.parametrize("fmt", ["%d/%m/%Y %H:%M", "%d-%m-%Y %H:%M", "%m/%d/%Y %I:%M %p"])
def test_a_stream_reads_non_iso_times_in_the_file_format_as_ingest_does(
    tmp_path: Path, fmt: str
) -> None:
    # day-first dates with every day <= 12: a row-by-row guess reads 01/03 as 3 January
    path = tmp_path / "dayfirst.csv"
    local = pd.date_range("2024-03-01", periods=48, freq="6h")
    path.write_text("time,P1\n" + "".join(f"{t.strftime(fmt)},{i}\n" for i, t in enumerate(local)))
    chunk, parser = _parse_all(path, ["P1"])
    want = local.as_unit("ns").asi8
    assert chunk.time_ns.tolist() == want.tolist()
    assert parser.stats.bad_lines == 0


# ----------------------------------------------------------------------------- grid
def _wide_file(path: Path, n: int, rng: np.random.Generator, gap: tuple[int, int] = (0, 0)) -> None:
    times = pd.date_range("2024-03-01", periods=n, freq="5min")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("time,P1,P2,R1\n")
        for i, t in enumerate(times):
            if gap[0] <= i < gap[1]:
                continue
            v = rng.normal(size=3)
            p2 = "NAN" if rng.random() < 0.1 else f"{v[1]:.4f}"
            fh.write(f"{t:%Y-%m-%d %H:%M:%S},{v[0]:.4f},{p2},{v[2]:.4f}\n")


def test_ring_frames_equal_to_frame_of_the_whole_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    path = tmp_path / "wide.csv"
    _wide_file(path, 400, rng, gap=(100, 160))  # a 5 h outage
    length = 16
    parser = StreamParser(IDS, file=path)
    ring = GridRing(len(IDS), STEP, length, parser.stats)
    sensors = sensors_frame([Sensor(s) for s in IDS])
    got: dict[int, object] = {}
    for batch in LineFollower(path, max_lines=37).batches():  # odd batches: cells split
        for k in ring.add(parser.parse(batch)):
            got[k] = ring.frame(k, sensors, STEP)
    assert ring.current is not None
    for k in ring.close_through(ring.current):
        got[k] = ring.frame(k, sensors, STEP)
    # the same readings through the batch path
    chunk, _ = _parse_all(path, IDS)
    readings = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(chunk.time_ns, utc=True),
            "sensor_id": np.asarray(IDS)[chunk.column],
            "value": chunk.value,
            "quality": np.where(chunk.good, "ok", "missing"),
        }
    )
    frame = to_frame(Site("s", sensors, readings), interval=STEP)
    k0 = int(frame.time[0].astype(np.int64)) // STEP.value
    assert sorted(got) == list(range(k0, k0 + frame.n_times))  # every grid time, gaps too
    for k, f in got.items():
        row = k - k0
        lo = max(row - length + 1, 0)
        ref = frame.slice_time(lo, row + 1)
        sub = f.slice_time(length - (row + 1 - lo), length)  # type: ignore[attr-defined]
        np.testing.assert_array_equal(sub.observed, ref.observed)
        np.testing.assert_allclose(sub.values[sub.observed], ref.values[ref.observed], rtol=1e-6)
        np.testing.assert_array_equal(sub.time, ref.time)
        assert not f.observed[: length - (row + 1 - lo)].any()  # type: ignore[attr-defined]


def test_late_readings_are_counted_not_applied() -> None:
    ring = GridRing(1, STEP, 4)
    # the fourth reading falls in cell 1 (half a step in) after cell 2 opened: late
    t = (np.array([0, 1, 2, 1.5, 3]) * STEP.value).astype(
        np.int64
    ) + 10**18 // STEP.value * STEP.value
    chunk = ReadingsChunk(t, np.zeros(5, np.int64), np.arange(5.0), np.ones(5, bool))
    closed = list(ring.add(chunk))
    assert len(closed) == 3
    assert ring.stats.late == 1 and ring.stats.conflicts == 0


def test_a_repeated_reading_is_applied_once_and_a_conflicting_one_not_at_all() -> None:
    """Before, the ring averaged them: a re-sent line counted twice, and a second, different
    value for the same sensor and time (which `geojepa ingest` refuses) moved the cell's
    value silently."""
    base = 10**18 // STEP.value * STEP.value
    ring = GridRing(2, STEP, 8)
    t = base + np.array([0, 0, 0, 0, 1, 1], dtype=np.int64) * STEP.value
    col = np.array([0, 0, 1, 1, 0, 1])
    val = np.array([5.0, 5.0, 7.0, 9.0, 1.0, 2.0])  # S0 re-sent; S1 given 7 then 9
    list(ring.add(ReadingsChunk(t, col, val, np.ones(6, bool))))
    assert (ring.stats.duplicates, ring.stats.conflicts) == (1, 1)
    # the same time again in a later chunk: a repeat of the sensor's newest reading
    again = ReadingsChunk(
        np.array([base + STEP.value] * 2), np.array([0, 1]), np.array([1.0, 4.0]), np.ones(2, bool)
    )
    list(ring.add(again))
    assert (ring.stats.duplicates, ring.stats.conflicts) == (2, 2)
    f = ring.frame(ring.current, sensors_frame([Sensor("S0"), Sensor("S1")]), STEP)  # type: ignore[arg-type]
    np.testing.assert_array_equal(f.values[-2:], [[5.0, 7.0], [1.0, 2.0]])
    assert f.counts[-2:].tolist() == [[1, 1], [1, 1]]


def _stream_peak_bytes(path: Path, ids: list[str]) -> tuple[int, int]:
    parser = StreamParser(ids, file=path)
    ring = GridRing(len(ids), pd.Timedelta("1min"), 256, parser.stats)
    sensors = sensors_frame([Sensor(s) for s in ids])
    n = 0
    tracemalloc.start()
    try:
        for batch in LineFollower(path, max_lines=2000, read_bytes=1 << 16).batches():
            for k in ring.add(parser.parse(batch)):
                if k % 64 == 0:
                    ring.frame(k, sensors, pd.Timedelta("1min"))
                n += 1
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak, parser.stats.readings


def _long_file(path: Path, rows: int, n_sensors: int) -> None:
    t0 = pd.Timestamp("2024-01-01", tz="UTC").value
    minutes = np.arange(rows // n_sensors)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("timestamp,sensor_id,value,quality,source\n")
        for m in minutes:
            ts = pd.Timestamp(t0 + int(m) * 60_000_000_000, tz="UTC").isoformat()
            fh.write("".join(f"{ts},S{s},{(m * 7 + s) % 13}.5,ok,x\n" for s in range(n_sensors)))


def test_stream_memory_is_bounded(tmp_path: Path) -> None:
    ids = [f"S{i}" for i in range(8)]
    small, big = tmp_path / "small.csv", tmp_path / "big.csv"
    _long_file(small, 12_000, 8)
    _long_file(big, 60_000, 8)
    peak_small, n_small = _stream_peak_bytes(small, ids)
    peak_big, n_big = _stream_peak_bytes(big, ids)
    assert n_small == 12_000 and n_big == 60_000
    assert peak_big < 1.3 * peak_small + 256_000  # 5x the rows, not 5x the memory


@pytest.mark.slow
def test_stream_memory_is_bounded_over_a_million_rows(tmp_path: Path) -> None:
    ids = [f"S{i}" for i in range(8)]
    small, big = tmp_path / "small.csv", tmp_path / "big.csv"
    _long_file(small, 100_000, 8)
    _long_file(big, 1_000_000, 8)
    peak_small, _ = _stream_peak_bytes(small, ids)
    peak_big, n_big = _stream_peak_bytes(big, ids)
    assert n_big == 1_000_000
    assert peak_big < 1.3 * peak_small + 256_000


# ----------------------------------------------------------------------------- energy
class MeanEngine:
    """A numpy stand-in for the graphs: a token's representation is its patch mean; a hidden
    token is predicted by the mean of the context tokens of its patch, else of its sensor."""

    kinds: Mapping[str, int] = {"tube": 1, "future": 4}

    def __init__(self, patch: int) -> None:
        self.patch = patch
        self.calls = 0

    def _tokens(self, inputs: TokenInputs) -> np.ndarray:
        b, c, length = inputs.values.shape
        p = length // self.patch
        return inputs.values.reshape(b, c * p, self.patch).mean(axis=2, keepdims=True)

    def target_repr(self, inputs: TokenInputs) -> np.ndarray:
        return self._tokens(inputs).astype(np.float32)  # (B, N, 1)

    def predict(
        self,
        inputs: TokenInputs,
        context: np.ndarray,
        context_pad: np.ndarray,
        target: np.ndarray,
        target_pad: np.ndarray,
        mask_kind: np.ndarray,
    ) -> np.ndarray:
        self.calls += 1
        tok = self._tokens(inputs)[..., 0]  # (B, N)
        p = inputs.values.shape[2] // self.patch
        out = np.zeros((*target.shape, 1), np.float32)
        for i in range(target.shape[0]):
            ctx = context[i][~context_pad[i]]
            for j, n in enumerate(target[i]):
                same = ctx[ctx % p == n % p]  # other sensors, same patch
                if not len(same):
                    same = ctx[ctx // p == n // p]  # else the sensor's own history
                out[i, j, 0] = tok[i, same].mean() if len(same) else 0.0
        return out


def test_sweep_never_targets_missing_tokens_and_keeps_context() -> None:
    valid = np.ones((4, 3), bool)
    valid[2] = False  # a dead sensor
    valid[0, 2] = False
    plan = sweep(valid, EnergySpec(recent=1), MeanEngine.kinds)
    assert plan is not None
    flat = valid.reshape(-1)
    for m in range(plan.n_masks):
        tgt = plan.target[m][~plan.target_pad[m]]
        ctx = plan.context[m][~plan.context_pad[m]]
        assert flat[tgt].all() and flat[ctx].all() and len(ctx) > 0
        assert not set(tgt) & set(ctx)
    # sensor 2 (dead) and sensor 0 (nothing in the recent patch) get no tube mask
    assert plan.n_masks == 2 + 1
    assert sweep(np.zeros((3, 2), bool), EnergySpec(), MeanEngine.kinds) is None


def test_window_energy_points_at_the_odd_sensor() -> None:
    rng = np.random.default_rng(7)
    n, c = 64, 5
    base = np.cumsum(rng.normal(size=n))
    values = base[:, None] + 0.05 * rng.normal(size=(n, c))
    values[-8:, 3] += 6.0  # sensor 3 jumps in the last patch
    times = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")
    rows = [(t, f"S{j}", values[i, j]) for i, t in enumerate(times) for j in range(c)]
    readings = pd.DataFrame(rows, columns=["timestamp", "sensor_id", "value"])
    site = Site("s", sensors_frame([Sensor(f"S{j}") for j in range(c)]), readings)
    frame = to_frame(site)
    norm = Normaliser(tuple(frame.sensor_ids), np.zeros(c), np.ones(c))
    spec = WindowSpec(length=32, stride=8, patch=8)
    engine = MeanEngine(8)
    e = window_energy(engine, window_at(frame, norm, spec, n), 8, EnergySpec(recent=1))
    assert e.shape == (c, 1)
    assert int(np.nanargmax(e[:, 0])) == 3
    assert engine.calls == 1  # the whole sweep is one batched predictor call


def test_scored_ends_tile_every_cell() -> None:
    for first in (0, 5, 31, 1000):
        for n in (1, 7, 64, 100):
            ends = scored_ends(first, n, 16)
            assert ((ends + 1) % 16 == 0).all()
            covered = np.concatenate([np.arange(k - 15, k + 1) for k in ends])
            cells = np.arange(first, first + n)
            assert np.isin(cells, covered).all() and len(covered) - n < 32


def test_frame_energy_covers_every_observed_cell() -> None:
    rng = np.random.default_rng(11)
    n, c = 70, 3
    times = pd.date_range("2024-01-01 03:00", periods=n, freq="h", tz="UTC")
    rows = [(t, f"S{j}", rng.normal()) for t in times for j in range(c)]
    site = Site(
        "s",
        sensors_frame([Sensor(f"S{j}") for j in range(c)]),
        pd.DataFrame(rows, columns=["timestamp", "sensor_id", "value"]),
    )
    frame = to_frame(site)
    norm = Normaliser.fit(frame)
    raw = frame_energy(MeanEngine(8), frame, norm, WindowSpec(32, 8, 8), EnergySpec())
    assert raw.shape == (n, c)
    assert np.isfinite(raw[frame.observed]).all()
    assert np.isfinite(row_max(raw)).all()


def test_a_partial_last_stride_is_scored_by_the_window_ending_at_the_newest_row() -> None:
    """Data that end inside a stride (the newest rows of a live site) are scored by the
    window ending at the newest row, not by one whose last patch is half future rows:
    the stand-in, like the trained model, mispredicts a half-empty patch badly."""
    rng = np.random.default_rng(5)
    n, c = 68, 3  # from 00:00 hourly, stride 8: the last stride holds 4 rows
    values = 5.0 + 0.01 * rng.normal(size=(n, c))
    times = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")
    rows = [(t, f"S{j}", values[i, j]) for i, t in enumerate(times) for j in range(c)]
    site = Site(
        "s",
        sensors_frame([Sensor(f"S{j}") for j in range(c)]),
        pd.DataFrame(rows, columns=["timestamp", "sensor_id", "value"]),
    )
    frame = to_frame(site)
    norm = Normaliser(tuple(frame.sensor_ids), np.zeros(c), np.ones(c))
    spec, energy = WindowSpec(32, 8, 8), EnergySpec()
    assert energy.stride(spec) == 8 and n % 8 == 4
    raw = frame_energy(MeanEngine(8), frame, norm, spec, energy)  # (n, C)
    newest = window_energy(MeanEngine(8), window_at(frame, norm, spec, n), 8, energy)  # (C, 1)
    np.testing.assert_allclose(raw[64:], np.repeat(newest.T, 4, axis=0))
    # the aligned window would end 4 rows after the data: its last patch is half empty
    ahead = frame_energy(MeanEngine(8), frame.slice_time(0, 64), norm, spec, energy)
    np.testing.assert_allclose(raw[:64], ahead)  # complete strides are unchanged
    assert np.nanmax(raw[64:]) < 10 * np.nanmax(raw[32:64]) + 1e-3
    half = np.zeros((c, 32), np.float32)
    half[:, :28] = np.asarray(window_at(frame, norm, spec, n).values)[:, 4:]
    obs = np.zeros((c, 32), bool)
    obs[:, :28] = True
    w = window_at(frame, norm, spec, n)
    half_win = Window(half, obs, w.sensor_feats, w.time_feats, w.start)
    stale = window_energy(MeanEngine(8), half_win, 8, energy)
    assert np.nanmin(stale) > 100 * np.nanmax(newest)  # what the newest rows used to get


def test_json_lines_are_json() -> None:
    # guards the watch output format helper against NaN leaking into JSON
    from geojepa.edge.score import json_line

    line = json_line({"score": float("nan"), "x": 1.0})
    assert json.loads(line) == {"score": None, "x": 1.0}


def test_one_unreadable_time_costs_its_own_line_only(tmp_path: Path) -> None:
    # the stream's time format is chosen from the rows some format can read: one garbled
    # time in the first batch is one bad line, not a batch of them
    path = tmp_path / "dayfirst.csv"
    local = pd.date_range("2024-03-01", periods=24, freq="6h")
    texts = [t.strftime("%d/%m/%Y %H:%M") for t in local]
    texts[5] = "01/0#/2024 30:00"
    path.write_text("time,P1\n" + "".join(f"{t},{i}\n" for i, t in enumerate(texts)))
    chunk, parser = _parse_all(path, ["P1"], strict=False)
    assert parser.stats.bad_lines == 1
    assert chunk.time_ns.tolist() == np.delete(local.as_unit("ns").asi8, 5).tolist()


# ----------------------------------------------------------------------------- clock
def test_a_time_far_ahead_of_the_clock_is_a_counted_bad_line(tmp_path: Path) -> None:
    """One reading from a logger whose clock jumped to 2099 would close every grid cell up
    to 2099 and make every true reading after it late: with `max_ahead` it is a bad line."""
    path = tmp_path / "log.csv"
    path.write_text(
        "time,P1,P2\n"
        "2024-01-01 00:00,1,2\n"
        "2099-06-01 00:15,9,9\n"  # the jumped clock
        "2024-01-01 00:15,1,2\n"
        "2024-01-01 12:00,3,4\n",  # 11 h ahead of the clock below: within the day allowed
        encoding="utf-8",
    )
    clock = pd.Timestamp("2024-01-01 01:00", tz="UTC").value / 1e9  # the gateway's time
    chunk, parser = _parse_all(
        path, ["P1", "P2"], strict=False, max_ahead=pd.Timedelta("1D"), clock=lambda: clock
    )
    assert parser.stats.bad_lines == 1 and parser.stats.future == 1
    years = pd.DatetimeIndex(chunk.time_ns.astype("datetime64[ns]")).year
    assert set(years) == {2024} and len(chunk) == 6
    ring = GridRing(2, STEP, 8, parser.stats)
    closed = list(ring.add(chunk))
    assert ring.stats.late == 0 and len(closed) == 12 * 4  # 00:00 .. 11:45, not up to 2099
    with pytest.raises(InputError, match="ahead of this machine's clock") as info:
        _parse_all(path, ["P1", "P2"], max_ahead=pd.Timedelta("1D"), clock=lambda: clock)
    assert info.value.line == 3


def test_without_max_ahead_the_stream_reads_every_time(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("time,P1\n2099-06-01 00:15,9\n", encoding="utf-8")
    chunk, parser = _parse_all(path, ["P1"], strict=False)
    assert len(chunk) == 1 and parser.stats.future == 0


@pytest.mark.parametrize("text", ["soon", "-1h", "0s"])
def test_watch_refuses_a_max_ahead_that_is_no_positive_duration(
    tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from geojepa.edge.app import run

    code = run(["watch", str(tmp_path), str(tmp_path / "log.csv"), f"--max-ahead={text}"])
    assert code == 2
    assert "--max-ahead" in capsys.readouterr().err


def _gappy_frame(seed: int = 5, n: int = 150, c: int = 4) -> tuple[object, Normaliser]:
    rng = np.random.default_rng(seed)
    times = pd.date_range("2024-01-01 05:00", periods=n, freq="h", tz="UTC")
    rows = [
        (t, f"S{j}", rng.normal() + j)
        for i, t in enumerate(times)
        for j in range(c)
        if not (j == 2 and 40 <= i < 90) and rng.random() > 0.1  # a dead spell, gaps
    ]
    site = Site(
        "s",
        sensors_frame([Sensor(f"S{j}") for j in range(c)]),
        pd.DataFrame(rows, columns=["timestamp", "sensor_id", "value"]),
    )
    frame = to_frame(site)
    return frame, Normaliser.fit(frame)


@pytest.mark.parametrize("per_call", [2, 5, 64])
def test_several_windows_per_call_score_as_one_window_per_call(per_call: int) -> None:
    """Batching windows (one predictor pass over all their masks, padded to the widest) is
    how a GPU engine is fed; every window's energy must be what it is alone."""
    frame, norm = _gappy_frame()
    spec, win = EnergySpec(recent=2), WindowSpec(32, 8, 8)
    one = MeanEngine(8)
    many = MeanEngine(8)
    many.windows_per_call = per_call  # type: ignore[attr-defined]
    a = frame_energy(one, frame, norm, win, spec)  # type: ignore[arg-type]
    b = frame_energy(many, frame, norm, win, spec)  # type: ignore[arg-type]
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(a[~np.isnan(a)], b[~np.isnan(b)], rtol=1e-12)
    assert many.calls < one.calls


def test_a_batched_torch_sweep_matches_the_per_window_one() -> None:
    torch = pytest.importorskip("torch")
    from dataclasses import replace as dc_replace

    from geojepa.config import preset
    from geojepa.export import TorchEngine
    from geojepa.jepa import JEPA, JEPAConfig

    frame, norm = _gappy_frame()
    cfg = preset("tiny").model
    model = JEPA(
        JEPAConfig(dc_replace(cfg, dim=32, depth=1, heads=2, predictor_dim=16, patch=8)), seed=0
    ).eval()
    spec, win = EnergySpec(), WindowSpec(32, 8, 8)
    with torch.inference_mode():
        engine = TorchEngine(model)
        a = frame_energy(engine, frame, norm, win, spec)
        engine.windows_per_call = 8
        b = frame_energy(engine, frame, norm, win, spec)
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(a[~np.isnan(a)], b[~np.isnan(b)], rtol=1e-4, atol=1e-7)


def test_an_energy_memo_scores_each_window_once_with_the_same_result() -> None:
    """`geojepa detect` scores the training period for its thresholds, then the range: with
    the engine's memo the windows they share are scored once, and every energy is the same."""
    frame, norm = _gappy_frame()
    spec, win = EnergySpec(), WindowSpec(32, 8, 8)
    plain, memo = MeanEngine(8), MeanEngine(8)
    memo.energy_memo = {}  # type: ignore[attr-defined]
    head = frame.slice_time(0, 100)  # type: ignore[attr-defined]
    a = [frame_energy(plain, f, norm, win, spec) for f in (head, frame)]  # type: ignore[arg-type]
    b = [frame_energy(memo, f, norm, win, spec) for f in (head, frame)]  # type: ignore[arg-type]
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert memo.calls < plain.calls  # the shared windows were not predicted again
    other = EnergySpec(recent=2)  # other settings: nothing reused
    calls = memo.calls
    frame_energy(memo, head, norm, win, other)  # type: ignore[arg-type]
    assert memo.calls > calls
