"""Cost of each registered detector: fit and score time on one simulated site.

Prints, per detector, fit and score time as the median of 3 repeats and as a ratio to the
robust z-score measured in the same run (timings on a shared machine are noisy: read the
ratios, not the seconds). A GeoJEPA detector's fit includes pretraining its model (set
GEOJEPA_DETECTOR_CACHE to reuse runs). Usage: python benchmarks/bench_detect.py
[--sensors N] [--days D] [--detectors a,b,...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from geojepa.detectors import available_detectors, make_detector
from geojepa.evaluate import select_sensors
from geojepa.frame import to_frame


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sensors", type=int, default=16)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--detectors", default=None, help="comma-separated names (default: all)")
    args = parser.parse_args(argv)
    from geojepa.simulate import simulate_site

    site = simulate_site("slope", args.sensors, args.days, "1h", 0).site
    frame = to_frame(site)
    frame, left_out = select_sensors(frame, frame.n_times // 2, 10)  # as the benchmark does
    cells = frame.n_times * frame.n_sensors
    sys.stdout.write(
        f"site: {frame.n_times} rows x {frame.n_sensors} sensors ({len(left_out)} sparse "
        f"ones left out), median of {args.repeats} runs\n"
    )
    results = {}
    names = args.detectors.split(",") if args.detectors else available_detectors()
    if "robust_z" not in names:
        names = ["robust_z", *names]  # the baseline of the ratios
    for name in names:
        fits, scores = [], []
        for r in range(args.repeats):
            det = make_detector(name, r)
            t0 = time.perf_counter()
            det.fit(frame, frame.n_times // 2)
            t1 = time.perf_counter()
            det.score(frame)
            t2 = time.perf_counter()
            fits.append(t1 - t0)
            scores.append(t2 - t1)
        results[name] = (statistics.median(fits), statistics.median(scores))
    base_fit, base_score = results.get("robust_z", (1.0, 1.0))
    sys.stdout.write(
        f"{'detector':<16} {'fit s':>8} {'score s':>8} {'fit/robust_z':>13} "
        f"{'score/robust_z':>15} {'k cells/s':>10}\n"
    )
    for name, (f, s) in results.items():
        sys.stdout.write(
            f"{name:<16} {f:8.3f} {s:8.3f} {f / base_fit:13.1f} {s / base_score:15.1f} "
            f"{cells / max(s, 1e-9) / 1e3:10.1f}\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
