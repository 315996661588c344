"""Training throughput of the tiny preset and its achieved FLOP/s against a dense matmul.

Shape: 16 sensors x 512 grid steps per window (patch 16: 32 patches, 512 tokens), batch 8,
the default mask mixture. For each fusion mode and for fp32 / bf16 autocast it reports
windows per second of full training steps (`geojepa.train.train_step`: forward, backward,
clipping, AdamW, EMA; the tiny preset's SIGReg term included), the FLOPs of one forward +
backward counted by `torch.utils.flop_counter` (matmuls and attention, the CPU attention
kernels registered as in bench_throughput; element-wise work and SIGReg's cos/sin are not
counted), and the achieved FLOP/s as a FRACTION of a dense square matmul's FLOP/s measured
in this same run, on the same threads and dtype, per wall-clock second and per CPU-second;
beside it the same fraction for forward + backward alone (what the loop adds around the
model) and the mask collate's share. Figures are medians over repeats; on a shared machine
absolute numbers are noisy, the ratios less so.

Usage: python benchmarks/bench_train.py [--steps K] [--repeats R] [--threads T]
       [--fusion joint,factorised,per_kind] [--no-bf16]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from geojepa.checkpoint import build_model
from geojepa.config import preset
from geojepa.frame import SensorFrame
from geojepa.masking import Batch, MaskCollator
from geojepa.site import Sensor, sensors_frame
from geojepa.train import _make_optimizer, train_step
from geojepa.windows import Normaliser, WindowDataset, WindowSpec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_throughput import Rate, matmul_peak, register_cpu_attention_flops

KINDS = ("piezometer", "inclinometer", "gnss", "rain_gauge", "thermometer", "extensometer")


def synthetic_frame(n_sensors: int, n_times: int, seed: int) -> SensorFrame:
    rng = np.random.default_rng(seed)
    values = np.cumsum(rng.normal(size=(n_times, n_sensors)), axis=0).astype(np.float32)
    observed = rng.random((n_times, n_sensors)) > 0.05
    values[~observed] = np.nan
    sensors = sensors_frame(
        Sensor(f"S{i:02d}", KINDS[i % len(KINDS)], "", 10.0 * i, 5.0 * (i % 4), -float(i % 3))
        for i in range(n_sensors)
    )
    time_ = pd.date_range("2024-01-01", periods=n_times, freq="1h").to_numpy("datetime64[ns]")
    return SensorFrame(values, observed, time_, sensors, pd.Timedelta("1h"))


def batches(spec: WindowSpec, n: int, batch: int, seed: int) -> list[Batch]:
    frame = synthetic_frame(16, spec.length * 4, seed)
    ds = WindowDataset(frame, Normaliser.fit(frame), spec)
    cfg = preset("tiny")
    collate = MaskCollator(cfg.mask, spec.patch, seed)
    return [collate([(s, ds[(s * batch + i) % len(ds)]) for i in range(batch)]) for s in range(n)]


def step_flops(model: torch.nn.Module, batch: Batch, bf16: bool) -> float:
    """FLOPs of one forward + backward (matmuls and attention, the CPU flash-attention
    kernels included: see bench_throughput.register_cpu_attention_flops)."""
    from torch.utils.flop_counter import FlopCounterMode

    register_cpu_attention_flops()
    counter = FlopCounterMode(display=False)
    with counter, torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = model(batch)
        out.loss.float().backward()
    model.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


def clocked(fn: Callable[[], None], n: int) -> Rate:
    """Mean (wall, CPU) seconds of fn over n calls."""
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        fn()
    return Rate((time.perf_counter() - t0) / n, (time.process_time() - c0) / n)


def run(fusion: str, bf16: bool, steps: int, repeats: int, batch: int) -> dict[str, float]:
    cfg = preset("tiny")
    cfg = replace(
        cfg,
        model=replace(cfg.model, fusion=fusion),
        window=replace(cfg.window, length=512, stride=64),
        train=replace(cfg.train, bf16=bf16),
    )
    model = build_model(cfg, seed=0)
    model.train()
    opt = _make_optimizer(model, cfg)
    params = [p for p in model.parameters() if p.requires_grad]
    frame = synthetic_frame(16, cfg.window.length * 4, 1)
    ds = WindowDataset(frame, Normaliser.fit(frame), cfg.window)
    collate = MaskCollator(cfg.mask, cfg.window.patch, 1)
    items = [[(s, ds[(s * batch + i) % len(ds)]) for i in range(batch)] for s in range(steps + 2)]
    c0 = time.process_time()
    data = [collate(it) for it in items]
    collate_cpu = (time.process_time() - c0) / len(items)
    flops = step_flops(model, data[0], bf16)
    dtype = torch.bfloat16 if bf16 else torch.float32
    it = iter(range(1 << 30))

    def full() -> None:
        i = next(it)
        train_step(
            model,
            model,
            opt,
            data[i % len(data)],
            params,
            lr=1e-4,
            weight_decay=0.04,
            momentum=0.996,
            grad_clip=1.0,
            bf16=bf16,
            seed=i,
            stats=False,
        )

    def model_only() -> None:
        b = data[next(it) % len(data)]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(b, stats=False)
        out.loss.float().backward()
        model.zero_grad(set_to_none=True)

    for _ in range(2):
        full()
    walls, cpus, fwall, fcpu, mcpu = [], [], [], [], []
    for _ in range(repeats):
        before = matmul_peak(dtype)
        dt = clocked(full, steps)
        dm = clocked(model_only, steps)
        after = matmul_peak(dtype)
        peak_wall, peak_cpu = 0.5 * (before.wall + after.wall), 0.5 * (before.cpu + after.cpu)
        walls.append(dt.wall)
        cpus.append(dt.cpu)
        fwall.append(flops / dt.wall / peak_wall)
        fcpu.append(flops / dt.cpu / peak_cpu)
        mcpu.append(flops / dm.cpu / peak_cpu)
    return {
        "windows_per_s": batch / statistics.median(walls),
        "windows_per_cpu_s": batch / statistics.median(cpus),
        "gflop_per_step": flops / 1e9,
        "fraction_wall": statistics.median(fwall),
        "fraction_cpu": statistics.median(fcpu),
        "fraction_cpu_model_only": statistics.median(mcpu),
        "collate_share": collate_cpu / (collate_cpu + statistics.median(cpus)),
        "params_m": sum(p.numel() for p in params) / 1e6,
    }


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description="tiny-preset training throughput")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--fusion", default="joint,factorised,per_kind")
    ap.add_argument("--no-bf16", action="store_true")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    print("load average (1, 5, 15 min): " + ", ".join(f"{x:.1f}" for x in os.getloadavg()))
    print(f"threads {threads}; window 16 sensors x 512 steps, batch {args.batch}")
    print(
        "fractions: achieved FLOP/s of the step / a dense 1024^3 matmul's FLOP/s in the same "
        "dtype, measured just before and after each repeat in this run; 'wall' per second "
        "of wall-clock, 'CPU' per CPU-second of this process (robust to a loaded machine); "
        "'model only' = forward + backward alone, the rest of the step (clipping, AdamW, EMA) "
        "excluded; collate = the mask collate's share of (collate + step) in CPU time"
    )
    print(
        f"{'fusion':<11}{'dtype':<6}{'params M':>9}{'windows/s':>11}{'GFLOP/step':>12}"
        f"{'wall':>7}{'CPU':>7}{'model only':>12}{'collate':>9}"
    )
    for fusion in args.fusion.split(","):
        for bf16 in (False,) if args.no_bf16 else (False, True):
            r = run(fusion, bf16, args.steps, args.repeats, args.batch)
            print(
                f"{fusion:<11}{'bf16' if bf16 else 'fp32':<6}{r['params_m']:>9.2f}"
                f"{r['windows_per_s']:>11.1f}{r['gflop_per_step']:>12.1f}"
                f"{r['fraction_wall']:>7.0%}{r['fraction_cpu']:>7.0%}"
                f"{r['fraction_cpu_model_only']:>12.0%}{r['collate_share']:>9.1%}",
                flush=True,
            )
    print("targets: >= 60% of the fp32 matmul in fp32, >= 50% of the bf16 matmul in bf16")
    print("load average (1, 5, 15 min): " + ", ".join(f"{x:.1f}" for x in os.getloadavg()))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
