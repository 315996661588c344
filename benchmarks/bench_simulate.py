"""Simulator benchmark: scale (time, peak memory), realism of difficulty, lag recovery.

1. Scale: 100 sensors x 3 years hourly (simulate + write the logger files), run in a child
   process so its peak resident memory is its own. Printed with the time of a baseline
   measured in the same run: pandas writing the same number of random values as CSV
   (timings on a shared machine are noisy: read the ratio, not the seconds).
2. Difficulty: a robust z-score detector (per sensor, |d - median(d)| / (1.4826 MAD(d)) of
   the first differences d of the sensor's own observed readings; a 'level' variant uses the
   readings themselves, like a fixed trigger level) scored by AUC-PR per event kind, pooled
   over sites of the three scenarios, at several intensities. The detector uses no labels;
   AUC-PR is computed on every (time, sensor) cell that has a reading, positives the cells
   of that kind's labels, negatives the cells of no label (cells of other kinds left out),
   on the sensors of the kinds that kind of event hits (spikes: every kind but rain gauges,
   which get no spikes; seepage change: dam piezometers and weirs; creep: displacement).
   The prevalence (a random score's AUC-PR) is printed beside it. Dropouts are left out:
   they are missing cells, seen by any detector that looks for gaps.
3. Lag recovery: the rain -> piezometer impulse response (least-squares deconvolution of
   the differenced piezometer on lagged differenced rain, barometer as co-regressor)
   peaks within +-1 step of the configured lag for what share of piezometers, hourly and
   3-hourly.

Usage: python benchmarks/bench_simulate.py [--quick] [--skip-scale] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score

from geojepa.frame import label_mask, to_frame
from geojepa.simulate import simulate_site

KINDS = (
    "spike",
    "step",
    "drift",
    "stuck",
    "noise_burst",
    "clock_shift",
    "pore_pressure_rise",
    "seepage_change",
    "accelerating_creep",
    "settlement_acceleration",
)


# ---------------------------------------------------------------- 1. scale


def _child_scale(scenario: str, sensors: int, days: float) -> None:
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        sim = simulate_site(scenario, sensors, days, "1h", 0)
        t1 = time.perf_counter()
        paths = sim.write(Path(d) / "out")
        t2 = time.perf_counter()
        size = sum(p.stat().st_size for p in paths)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        # baseline: pandas writing the same number of float cells as CSV
        cells = len(sim.site.readings)
        cols = sensors
        rows = max(1, cells // cols)
        frame = pd.DataFrame(np.random.default_rng(0).normal(size=(rows, cols)).round(3))
        t3 = time.perf_counter()
        frame.to_csv(Path(d) / "baseline.csv")
        t4 = time.perf_counter()
    out = {
        "scenario": scenario,
        "readings": cells,
        "simulate_s": t1 - t0,
        "write_s": t2 - t1,
        "total_s": t2 - t0,
        "baseline_csv_s": t4 - t3,
        "peak_rss_mb": peak_mb,
        "bytes_written": size,
    }
    sys.stdout.write(json.dumps(out) + "\n")


def scale(scenarios: list[str], sensors: int, days: float) -> list[dict[str, float]]:
    results = []
    for scenario in scenarios:
        cmd = [sys.executable, __file__, "--child-scale", scenario, str(sensors), str(days)]
        text = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        r = json.loads(text.strip().splitlines()[-1])
        results.append(r)
        sys.stdout.write(
            f"{scenario:<11} {r['readings']:>9,d} readings: simulate {r['simulate_s']:5.1f} s + "
            f"write {r['write_s']:5.1f} s = {r['total_s']:5.1f} s "
            f"({r['total_s'] / r['baseline_csv_s']:.1f}x pandas writing the same cells: "
            f"{r['baseline_csv_s']:.1f} s), peak RSS {r['peak_rss_mb']:.0f} MB, "
            f"{r['bytes_written'] / 1e6:.0f} MB of files\n"
        )
    return results


# ---------------------------------------------------------------- 2. difficulty


def robust_z(values: np.ndarray, observed: np.ndarray, level: bool) -> np.ndarray:
    """(T, C) scores; NaN where a cell has no reading (or no previous one, for diffs)."""
    out = np.full(values.shape, np.nan)
    for c in range(values.shape[1]):
        idx = np.flatnonzero(observed[:, c] & np.isfinite(values[:, c]))
        if len(idx) < 10:
            continue
        x = values[idx, c].astype(np.float64)
        d = x if level else np.diff(x)
        med = np.median(d)
        mad = 1.4826 * np.median(np.abs(d - med))
        if mad <= 0:
            nz = np.abs(d - med)
            mad = float(np.median(nz[nz > 0])) if (nz > 0).any() else 1.0
        z = np.abs(d - med) / mad
        out[idx if level else idx[1:], c] = z
    return out


def difficulty(quick: bool) -> dict[str, dict[str, dict[str, float]]]:
    seeds = (0,) if quick else (0, 1)
    intensities = (0.5, 1.0, 2.0)
    days, sensors = (150, 24) if quick else (365, 40)
    table: dict[str, dict[str, dict[str, float]]] = {}
    for intensity in intensities:
        pooled: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
        for scenario in ("slope", "embankment", "dam"):
            for seed in seeds:
                sim = simulate_site(
                    scenario, sensors, days, "1h", seed, intensity=intensity, event_rate=3.0
                )
                frame = to_frame(sim.site)
                zd = robust_z(frame.values, frame.observed, level=False)
                zl = robust_z(frame.values, frame.observed, level=True)
                labels = sim.site.labels
                anything = label_mask(labels, frame)
                kinds = frame.sensors["kind"].to_numpy()
                for kind in KINDS:
                    sel = labels[labels["kind"] == kind]
                    if sel.empty:
                        continue
                    pos = label_mask(sel, frame)
                    hit = np.isin(kinds, np.unique(kinds[pos.any(axis=0)]))  # (C,)
                    keep = (pos | ~anything) & np.isfinite(zd) & hit[None, :]
                    pooled.setdefault(kind, []).append((pos[keep], zd[keep], zl[keep]))
        row: dict[str, dict[str, float]] = {}
        for kind in KINDS:
            parts = pooled.get(kind, [])
            if not parts:
                continue
            y = np.concatenate([p[0] for p in parts])
            zd = np.concatenate([p[1] for p in parts])
            zl = np.concatenate([p[2] for p in parts])
            if y.sum() == 0:
                continue
            row[kind] = {
                "auc_pr_diff_z": float(average_precision_score(y, zd)),
                "auc_pr_level_z": float(average_precision_score(y, np.nan_to_num(zl))),
                "prevalence": float(y.mean()),
                "positive_cells": int(y.sum()),
            }
        table[f"{intensity:g}"] = row
    sys.stdout.write(
        f"robust z-score AUC-PR per event kind (3 scenarios x {len(seeds)} seed(s), "
        f"{sensors} sensors, {days} days hourly, event_rate 3); random = prevalence\n"
    )
    head = f"{'kind':<24}" + "".join(
        f"{'i=' + k + ' diff':>11}{'level':>7}{'random':>8}" for k in table
    )
    sys.stdout.write(head + "\n")
    for kind in KINDS:
        cells = []
        for k in table:
            r = table[k].get(kind)
            if r is None:
                cells.append(f"{'-':>11}{'-':>7}{'-':>8}")
            else:
                cells.append(
                    f"{r['auc_pr_diff_z']:11.3f}{r['auc_pr_level_z']:7.3f}{r['prevalence']:8.4f}"
                )
        sys.stdout.write(f"{kind:<24}" + "".join(cells) + "\n")
    return table


# ---------------------------------------------------------------- 3. lag recovery


def _impulse_peak(rain: np.ndarray, y: np.ndarray, k: int, baro: np.ndarray) -> int:
    y = pd.Series(y).interpolate(limit_direction="both").to_numpy()
    dx = np.diff(rain)
    n = len(dx)
    x = np.zeros((n, k + 2))
    for j in range(k + 1):
        x[j:, j] = dx[: n - j]
    x[:, k + 1] = np.diff(baro)
    coef, *_ = np.linalg.lstsq(x[k:], np.diff(y)[k:], rcond=None)
    return int(np.argmax(coef[: k + 1]))


def lag_recovery(quick: bool) -> dict[str, dict[str, float]]:
    out = {}
    seeds = range(3) if quick else range(10)
    for freq in ("1h", "3h"):
        errs = []
        for seed in seeds:
            sim = simulate_site("slope", 14, 365, freq, seed, events=False)
            frame = to_frame(sim.site)
            rain = frame.values[:, frame.column("RG01")].astype(np.float64)
            baro = frame.values[:, frame.column("BA01")].astype(np.float64)
            for pid, lag in sim.truth["lag_steps"].items():
                y = frame.values[:, frame.column(pid)].astype(np.float64)
                errs.append(_impulse_peak(rain, y, min(3 * lag + 8, 400), baro) - lag)
        e = np.abs(np.array(errs))
        out[freq] = {
            "piezometers": len(e),
            "within_1_step": float(np.mean(e <= 1)),
            "max_error_steps": int(e.max()),
        }
        sys.stdout.write(
            f"lag at {freq}: {np.mean(e <= 1):.0%} of {len(e)} piezometers within +-1 step "
            f"of the configured lag (max error {int(e.max())} steps, {len(seeds)} slope sites)\n"
        )
    return out


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child-scale"]:
        _child_scale(argv[1], int(argv[2]), float(argv[3]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sites, fewer seeds")
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--all-scenarios", action="store_true", help="scale test on all three")
    parser.add_argument("--json", type=Path, help="write the figures as JSON")
    args = parser.parse_args(argv)
    report: dict[str, object] = {}
    if not args.skip_scale:
        scen = ["slope", "embankment", "dam"] if args.all_scenarios else ["dam"]
        sensors, days = (40, 365.0) if args.quick else (100, 3 * 365.0)
        sys.stdout.write(f"scale: {sensors} sensors x {days:g} days hourly\n")
        report["scale"] = scale(scen, sensors, days)
    report["difficulty"] = difficulty(args.quick)
    report["lag"] = lag_recovery(args.quick)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
