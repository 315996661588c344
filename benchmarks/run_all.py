"""Run every benchmark (benchmarks/bench_*.py), each in its own process.

Each benchmark prints its own figures as ratios against a baseline measured in the same
run. Engines are timed in separate processes because torch's and onnxruntime's thread
pools spin-wait and slow each other when alternated in one process.

Usage: python benchmarks/run_all.py [NAME ...]   (NAME matches bench_NAME.py)
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    wanted = set(argv)
    scripts = sorted(HERE.glob("bench_*.py"))
    if wanted:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in wanted]
    failed = []
    for script in scripts:
        sys.stdout.write(f"\n=== {script.stem} ===\n")
        sys.stdout.flush()
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, str(script)])
        sys.stdout.write(f"--- {script.stem}: exit {rc} in {time.perf_counter() - t0:.1f} s\n")
        if rc != 0:
            failed.append(script.stem)
    if failed:
        sys.stdout.write(f"\nfailed: {', '.join(failed)}\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
