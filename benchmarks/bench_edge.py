"""Edge benchmark: one-window latency (onnxruntime vs PyTorch eager), model size, watch rate.

What it measures, for the tiny and small presets (random weights: speed does not depend on
training), on ONE thread, one window of 32 sensors x 256 steps (patch 16: 512 tokens):

- ``encoder``: one forward pass of the target encoder over the window (what embedding a
  window costs);
- ``energy``: one full energy score of the window as the gateway computes it (target
  encoder once + the sweep of 33 masks through context encoder and predictor, batched);
  it is computed once per stride (16 grid times), so per grid time it costs 1/16 of this.
  Few repeats (it is ~30 encoder passes): its p50 and max are reported.

Each engine is timed in ITS OWN PROCESS (torch's and onnxruntime's thread pools spin-wait
and slow each other when alternated in one process). Figures are medians and 99th
percentiles over repeats, and ratios against PyTorch eager measured in the same run;
timings on a shared machine are noisy: compare ratios, not milliseconds across runs.

Also: file sizes of the exported graphs (fp32 and int8); the throughput of ``watch``
(``geojepa-edge watch --once``'s code path) over a generated wide CSV of 32 sensors at one
row per grid time (rows per second, startup excluded), and of its reader alone (parse and
grid, no scoring), which bounds how fast a backlog of logger rows can be taken in.

Usage: python benchmarks/bench_edge.py [--quick] [--presets tiny,small] [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

N_SENSORS = 32
LENGTH = 256
PATCH = 16
HERE = Path(__file__).resolve()


# ----------------------------------------------------------------------------- set-up
def make_site(n_sensors: int, n_times: int, seed: int) -> object:
    from geojepa.site import Sensor, Site, sensors_frame

    rng = np.random.default_rng(seed)
    t = np.arange(n_times)
    base = np.cumsum(rng.normal(size=n_times)) * 0.1
    values = base[:, None] + np.sin(2 * np.pi * t / 1440.0)[:, None] * rng.uniform(
        0.5, 2, n_sensors
    )
    values = values + 0.05 * rng.normal(size=(n_times, n_sensors))
    times = pd.date_range("2024-01-01", periods=n_times, freq="min", tz="UTC")
    ids = [f"S{c:02d}" for c in range(n_sensors)]
    ii, cc = np.nonzero(np.ones_like(values, dtype=bool))
    readings = pd.DataFrame(
        {
            "timestamp": times[ii],
            "sensor_id": np.asarray(ids)[cc],
            "value": values[ii, cc],
            "quality": "ok",
            "source": "bench.csv",
        }
    )
    kinds = ["piezometer", "inclinometer", "settlement", "extensometer"]
    sensors = sensors_frame(
        [
            Sensor(ids[c], kinds[c % 4], "kPa", float(c % 8) * 10, float(c // 8) * 10, -1.0 * c)
            for c in range(n_sensors)
        ]
    )
    return Site("bench", sensors, readings)


def write_run(run_dir: Path, site: object, preset_name: str) -> None:
    from geojepa.checkpoint import save_untrained_run
    from geojepa.config import preset

    cfg = preset(preset_name)
    cfg = replace(cfg, window=replace(cfg.window, length=LENGTH, stride=64, patch=PATCH))
    save_untrained_run(run_dir, site, cfg, train_fraction=0.5)


def export(run_dir: Path, out: Path) -> dict[str, object]:
    import torch

    from geojepa.alarms import TarpPolicy
    from geojepa.edge.score import Calibration
    from geojepa.export import export_run

    torch.set_num_threads(1)
    cal = Calibration(np.zeros(N_SENSORS), np.ones(N_SENSORS), TarpPolicy(amber=1.0, red=2.0))
    t0 = time.perf_counter()
    report = export_run(run_dir, out, calibration=cal, int8="force", check_windows=2)
    from geojepa.checkpoint import load_run
    from geojepa.models import count_parameters

    return {
        "encoder_params": count_parameters(load_run(run_dir).model.encoder),
        "export_seconds": time.perf_counter() - t0,
        "bytes": dict(report.bytes),
        "quantization": dict(report.quantization),
        "parity": max(r.max_abs_diff for r in report.parity),
    }


# ----------------------------------------------------------------------------- timing (child)
def one_window(seed: int) -> object:
    """A 32 x 256 window of the benchmark site, normalised as the scorer does."""
    from geojepa.frame import to_frame
    from geojepa.windows import Normaliser, WindowSpec, window_at

    site = make_site(N_SENSORS, 2 * LENGTH, seed)
    frame = to_frame(site)  # type: ignore[arg-type]
    spec = WindowSpec(length=LENGTH, stride=64, patch=PATCH)
    return window_at(frame, Normaliser.fit(frame), spec, frame.n_times)


def child(engine: str, where: Path, repeats: int, energy_repeats: int) -> dict[str, object]:
    from geojepa.energy import EnergySpec, stack_windows, window_energy

    win = one_window(1)
    inputs = stack_windows([win], PATCH)  # type: ignore[list-item]
    if engine == "torch":
        import torch

        from geojepa.checkpoint import load_run
        from geojepa.export import TorchEngine

        torch.set_num_threads(1)
        eng: object = TorchEngine(load_run(where).model)
    else:
        from geojepa.edge.score import EdgeModel

        eng = EdgeModel.load(where, int8=engine == "ort-int8", threads=1).engine
    spec = EnergySpec()

    def encoder() -> object:
        return eng.target_repr(inputs)  # type: ignore[attr-defined]

    def energy() -> object:
        return window_energy(eng, win, PATCH, spec)  # type: ignore[arg-type]

    def timed(fn: object, n: int) -> tuple[list[float], list[float]]:
        """(wall seconds, CPU seconds of this thread) per call; one thread computes
        in the calling thread for both engines, so its CPU time is the call's work."""
        for _ in range(3):
            fn()  # type: ignore[operator]
        wall, cpu = [], []
        for _ in range(n):
            c0, t0 = time.thread_time(), time.perf_counter()
            fn()  # type: ignore[operator]
            wall.append(time.perf_counter() - t0)
            cpu.append(time.thread_time() - c0)
        return wall, cpu

    enc_wall, enc_cpu = timed(encoder, repeats)
    en_wall, en_cpu = timed(energy, energy_repeats)
    return {"encoder": enc_wall, "encoder_cpu": enc_cpu, "energy": en_wall, "energy_cpu": en_cpu}


def wide_csv(path: Path, rows: int, seed: int) -> None:
    site = make_site(N_SENSORS, rows, seed)
    wide = site.readings.pivot(index="timestamp", columns="sensor_id", values="value")  # type: ignore[attr-defined]
    wide.index = wide.index.strftime("%Y-%m-%d %H:%M:%S")
    wide.to_csv(path, index_label="time", float_format="%.4f")


def watch_rate(export_dir: Path, rows: int, seed: int) -> dict[str, float]:
    """Throughput of `watch --once` over a wide CSV of `rows` lines x 32 sensors."""
    import io as _io

    from geojepa.edge.watch import watch

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "logger.csv"
        wide_csv(path, rows, seed)
        res = watch(export_dir, path, _io.StringIO(), once=True, int8=False, threads=1)
    return {
        "rows": float(rows),
        "seconds": res.seconds,
        "rows_per_s": rows / res.seconds,
        "grid_times": float(res.emitted),
        "windows": float(res.windows),
    }


def reader_rate(rows: int, seed: int) -> dict[str, float]:
    """Rows per second of the streaming reader alone (parse + grid ring, no scoring)."""
    from geojepa.edge.stream import GridRing, LineFollower, StreamParser

    ids = [f"S{c:02d}" for c in range(N_SENSORS)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "logger.csv"
        wide_csv(path, rows, seed)
        t0 = time.perf_counter()
        parser = StreamParser(ids, file=path)
        ring = GridRing(N_SENSORS, pd.Timedelta("1min"), LENGTH, parser.stats)
        closed = 0
        for batch in LineFollower(path).batches():
            for _ in ring.add(parser.parse(batch)):
                closed += 1
        seconds = time.perf_counter() - t0
    return {
        "reader_rows": float(rows),
        "reader_seconds": seconds,
        "reader_rows_per_s": rows / seconds,
    }


# ----------------------------------------------------------------------------- main
def run_child(args: list[str]) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, str(HERE), *args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def pct(x: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(x) * 1e3, q))


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="tiny only, fewer repeats")
    ap.add_argument("--presets", default="tiny,small")
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3, help="processes per engine")
    ap.add_argument("--energy-repeats", type=int, default=5)
    ap.add_argument("--watch-rows", type=int, default=1024)
    ap.add_argument("--reader-rows", type=int, default=100_000)
    ap.add_argument("--child", nargs=2, metavar=("ENGINE", "DIR"))
    ap.add_argument("--watch", metavar="DIR")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.child:
        res = child(args.child[0], Path(args.child[1]), args.repeats, args.energy_repeats)
        sys.stdout.write(json.dumps(res) + "\n")
        return 0
    if args.watch:
        res = watch_rate(Path(args.watch), args.watch_rows, 2)
        res.update(reader_rate(args.reader_rows, 3))
        sys.stdout.write(json.dumps(res) + "\n")
        return 0
    load_start = os.getloadavg()
    presets = ["tiny"] if args.quick else args.presets.split(",")
    rounds = 1 if args.quick else args.rounds
    reps = ["--repeats", str(50 if args.quick else args.repeats)]
    reps += ["--energy-repeats", str(3 if args.quick else args.energy_repeats)]
    out: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        site = make_site(N_SENSORS, 4 * LENGTH, 0)
        for name in presets:
            run_dir, exp = root / f"run-{name}", root / f"edge-{name}"
            write_run(run_dir, site, name)
            info = export(run_dir, exp)
            where = {"torch": run_dir, "ort-fp32": exp, "ort-int8": exp}
            keys = ("encoder", "energy", "encoder_cpu", "energy_cpu")
            timings: dict[str, dict[str, list[float]]] = {
                e: {k: [] for k in (*keys, *(k + "_medians" for k in keys))} for e in where
            }
            for _ in range(rounds):  # fresh processes, engines alternated: drift hits all
                for eng, path in where.items():
                    res = run_child([*reps, "--child", eng, str(path)])
                    for k in keys:
                        timings[eng][k].extend(res[k])  # type: ignore[arg-type]
                        timings[eng][k + "_medians"].append(float(np.median(res[k])))  # type: ignore[arg-type]
            out[name] = {"export": info, "timings": timings}
        rows = 512 if args.quick else args.watch_rows
        reader = 20_000 if args.quick else args.reader_rows
        out["watch"] = run_child(
            [
                "--watch-rows",
                str(rows),
                "--reader-rows",
                str(reader),
                "--watch",
                str(root / "edge-tiny"),
            ]
        )
    out["load"] = {"start": load_start, "end": os.getloadavg()}
    report(out, presets)
    return 0


def report(out: dict[str, object], presets: list[str]) -> None:
    w = sys.stdout.write
    ld: dict[str, tuple[float, ...]] = out["load"]  # type: ignore[assignment]
    w(
        "load average (1, 5, 15 min) at the start "
        + ", ".join(f"{x:.1f}" for x in ld["start"])
        + "; at the end "
        + ", ".join(f"{x:.1f}" for x in ld["end"])
        + f" on {os.cpu_count()} cores\n"
    )
    w(f"one window: {N_SENSORS} sensors x {LENGTH} steps (patch {PATCH}), 1 thread, each engine ")
    w("in its own processes (alternated); percentiles pool all processes' samples; ")
    w("x eager = median of eager's per-process medians / the engine's (same run)\n\n")
    w("| preset | engine | encoder p50 ms | encoder p99 ms | x eager | energy p50 ms | ")
    w("energy max ms | x eager |\n|---|---|---|---|---|---|---|---|\n")
    for clock, sfx in (("wall-clock", ""), ("CPU time of the calling thread", "_cpu")):
        if clock != "wall-clock":
            w(
                "\nthe same calls in CPU time (what they cost one idle core; wall-clock above "
                "also counts waiting for a core on a loaded machine):\n\n"
                "| preset | engine | encoder p50 ms | encoder p99 ms | x eager | energy p50 ms | "
                "energy max ms | x eager |\n|---|---|---|---|---|---|---|---|\n"
            )
        for name in presets:
            t = out[name]["timings"]  # type: ignore[index]
            base_e = np.median(t["torch"]["encoder" + sfx + "_medians"])
            base_s = np.median(t["torch"]["energy" + sfx + "_medians"])
            for eng in ("torch", "ort-fp32", "ort-int8"):
                e, s = t[eng]["encoder" + sfx], t[eng]["energy" + sfx]
                w(
                    f"| {name} | {eng} | {pct(e, 50):.1f} | {pct(e, 99):.1f} | "
                    f"{base_e / np.median(t[eng]['encoder' + sfx + '_medians']):.2f} | "
                    f"{pct(s, 50):.0f} | {pct(s, 100):.0f} | "
                    f"{base_s / np.median(t[eng]['energy' + sfx + '_medians']):.2f} |\n"
                )
    w(
        "\n| preset | encoder params M | encoder.onnx MB | predictor.onnx MB | fp32 total MB | "
        "int8 total MB | int8 Spearman | int8 energy speed-up | int8 recommended | "
        "parity max abs diff | export s |\n|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    for name in presets:
        info = out[name]["export"]  # type: ignore[index]
        b, q = info["bytes"], info["quantization"]
        fp32 = b["encoder.onnx"] + b["predictor.onnx"]
        w(
            f"| {name} | {info['encoder_params'] / 1e6:.2f} | {b['encoder.onnx'] / 1e6:.2f} | "
            f"{b['predictor.onnx'] / 1e6:.2f} | {fp32 / 1e6:.2f} | "
            f"{q.get('int8_bytes', 0) / 1e6:.2f} | {q.get('spearman', float('nan')):.4f} | "
            f"{q.get('speedup', float('nan')):.2f} | {q.get('recommended', False)} | "
            f"{info['parity']:.1e} | {info['export_seconds']:.0f} |\n"
        )
    w(
        "\nfiles: the gateway loads encoder + predictor (the predictor graph carries the "
        "context encoder, so the encoder's weights are there twice: target and context "
        "copies); target <= 10 MB for what it loads.\n"
    )
    wr: dict[str, float] = out["watch"]  # type: ignore[assignment]
    w(
        f"\nwatch (tiny, fp32, 1 thread, 32 sensors, one row per grid time): {wr['rows']:.0f} "
        f"rows in {wr['seconds']:.1f} s = {wr['rows_per_s']:.1f} rows/s with scoring "
        f"({wr['windows']:.0f} windows scored, one per {PATCH} rows); reader alone: "
        f"{wr['reader_rows_per_s']:.0f} rows/s ({wr['reader_rows']:.0f} rows)\n"
    )
    w("\nraw watch: " + json.dumps(wr) + "\n")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
