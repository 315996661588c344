"""Benchmark: ingest a wide CSV of 100 sensors x 3 years hourly (~2.6 M readings).

Measures, in one run on this machine:

- `geojepa.io.ingest` of the file into a new site (library call; includes reading, checks,
  the long table, the Parquet write and the raw copy);
- loading the site back as a grid (`Site.load` + `to_frame`);
- a bare `pandas.read_csv` of the same file, the baseline: the ratio ingest / read_csv is
  the figure that travels between machines (absolute seconds do not);
- where the ingest time goes: reading the file into a checked long table (`read_file`)
  and the rest (merging into the site, writing Parquet, copying the raw file);
- peak resident memory of a fresh process doing ingest + load + grid.

Each timing is the median of `--repeats` runs, interleaved so load on a shared machine hits
both sides alike. Wall-clock ratios are the target figure; CPU-time ratios (this process's
user + system time, all threads) are printed beside them because they move less when other
work shares the machine. Targets: wall ratio <= 3, peak memory <= 1.5 GB. Prints a table;
exits non-zero only if something crashes (a missed target is reported, not fatal).

    python benchmarks/bench_ingest.py [--repeats 3] [--sensors 100] [--years 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

TARGET_RATIO = 3.0
TARGET_PEAK_GB = 1.5


def make_file(path: Path, n_sensors: int, years: int, seed: int = 0) -> int:
    """Write the wide CSV; return the number of readings it holds."""
    rng = np.random.default_rng(seed)
    times = pd.date_range("2021-01-01", periods=int(years * 365 * 24), freq="h", tz="UTC")
    values = rng.normal(size=(len(times), n_sensors)).cumsum(axis=0).round(3)
    df = pd.DataFrame(values, columns=[f"P{i:03d}" for i in range(n_sensors)])
    df.insert(0, "timestamp", times.strftime("%Y-%m-%dT%H:%M:%SZ"))
    df.to_csv(path, index=False)
    return int(values.size)


def _time(fn: object) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) for one call."""
    t0, c0 = time.perf_counter(), time.process_time()
    fn()  # type: ignore[operator]
    return time.perf_counter() - t0, time.process_time() - c0


_CHILD = """
import resource, sys, time
from geojepa.io import ingest
from geojepa.site import Site
from geojepa.frame import to_frame
csv, site = sys.argv[1], sys.argv[2]
ingest([csv], site)
frame = to_frame(Site.load(site))
peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(peak_kb, frame.values.shape[0], frame.values.shape[1])
"""


def peak_memory_gb(csv: Path, site: Path) -> tuple[float, tuple[int, int]]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(csv), str(site)],
        check=True,
        capture_output=True,
        text=True,
    )
    kb, t, c = out.stdout.split()
    return int(kb) / 1024**2, (int(t), int(c))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sensors", type=int, default=100)
    ap.add_argument("--years", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args(argv)

    from geojepa.frame import to_frame
    from geojepa.io import ingest, read_file
    from geojepa.site import Site

    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    try:
        csv = tmp / "wide.csv"
        n = make_file(csv, args.sensors, args.years)
        size_mb = csv.stat().st_size / 1e6
        runs: dict[str, list[tuple[float, float]]] = {
            "read_csv": [],
            "read": [],
            "ingest": [],
            "load": [],
        }
        for k in range(args.repeats):
            site = tmp / f"site{k}"
            runs["read_csv"].append(_time(lambda: pd.read_csv(csv)))
            runs["read"].append(_time(lambda: read_file(csv)))
            runs["ingest"].append(_time(lambda site=site: ingest([csv], site)))  # type: ignore[misc]
            runs["load"].append(_time(lambda site=site: to_frame(Site.load(site))))  # type: ignore[misc]
            shutil.rmtree(site)
        peak, shape = peak_memory_gb(csv, tmp / "site-mem")
        wall = {name: statistics.median(w for w, _ in r) for name, r in runs.items()}
        cpu = {name: statistics.median(c for _, c in r) for name, r in runs.items()}
        b, i, ld = wall["read_csv"], wall["ingest"], wall["load"]
        ratio = i / b
        cpu_ratio = cpu["ingest"] / cpu["read_csv"]
        rest_wall = max(wall["ingest"] - wall["read"], 0.0)
        rest_cpu = max(cpu["ingest"] - cpu["read"], 0.0)
        rows = [
            (
                "file",
                f"{args.sensors} sensors x {args.years} y hourly, {n:,} readings, {size_mb:.0f} MB",
            ),
            ("pandas.read_csv (baseline)", f"{b:.2f} s  (CPU {cpu['read_csv']:.2f} s)"),
            ("geojepa ingest", f"{i:.2f} s  (CPU {cpu['ingest']:.2f} s)"),
            ("ratio ingest / read_csv", f"{ratio:.2f}  (target <= {TARGET_RATIO:g})"),
            ("  same, in CPU time", f"{cpu_ratio:.2f}"),
            (
                "  of which read_file",
                f"{wall['read'] / b:.2f} x read_csv  (CPU {cpu['read'] / cpu['read_csv']:.2f})",
            ),
            (
                "  of which site + Parquet",
                f"{rest_wall / b:.2f} x read_csv  (CPU {rest_cpu / cpu['read_csv']:.2f})",
            ),
            ("load site + to_frame", f"{ld:.2f} s  (grid {shape[0]} x {shape[1]})"),
            ("peak memory (ingest+grid)", f"{peak:.2f} GB  (target <= {TARGET_PEAK_GB:g})"),
        ]
        w = max(len(r[0]) for r in rows)
        print(f"bench_ingest (median of {args.repeats}; ratios measured in this run)")
        for name, val in rows:
            print(f"  {name:<{w}}  {val}")
        verdict = []
        if ratio > TARGET_RATIO:
            verdict.append(f"MISSED ratio target ({ratio:.2f} > {TARGET_RATIO:g})")
        if peak > TARGET_PEAK_GB:
            verdict.append(f"MISSED memory target ({peak:.2f} GB > {TARGET_PEAK_GB:g})")
        print("  " + ("; ".join(verdict) if verdict else "targets met"))
        if args.json:
            args.json.write_text(
                json.dumps(
                    {
                        "readings": n,
                        "read_csv_s": b,
                        "ingest_s": i,
                        "ratio": ratio,
                        "cpu_ratio": cpu_ratio,
                        "read_file_s": wall["read"],
                        "load_grid_s": ld,
                        "peak_gb": peak,
                        "runs": {name: [w for w, _ in r] for name, r in runs.items()},
                        "cpu_runs": {name: [c for _, c in r] for name, r in runs.items()},
                    },
                    indent=2,
                )
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
