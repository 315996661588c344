"""Training throughput of the tiny preset and its achieved FLOP/s against a dense matmul.

Shape: 16 sensors x 512 grid steps per window (patch 16: 32 patches, 512 tokens), batch 8,
the default mask mixture. For each fusion mode and for fp32 / bf16 autocast it reports
windows per second of full training steps (forward, backward, clipping, AdamW, EMA), the
FLOPs of one step counted by `torch.utils.flop_counter` (matmuls and attention, forward and
backward), and the achieved FLOP/s as a FRACTION of a dense square matmul's FLOP/s measured
in this same run, on the same threads and dtype. Figures are medians over repeats; on a
shared machine absolute numbers are noisy, the ratios less so.

Usage: python benchmarks/bench_train.py [--steps K] [--repeats R] [--threads T]
       [--fusion joint,factorised,per_kind] [--no-bf16]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace

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


def matmul_flops(dtype: torch.dtype, n: int = 1024, seconds: float = 1.0) -> float:
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    for _ in range(3):
        a @ b
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
    return 2.0 * n**3 * reps / (time.perf_counter() - t0)


def step_flops(model: torch.nn.Module, batch: Batch, bf16: bool) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = model(batch)
        out.loss.float().backward()
    model.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


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
    data = batches(cfg.window, steps + 2, batch, seed=1)
    flops = step_flops(model, data[0], bf16)

    def one(b: Batch, i: int) -> None:
        train_step(
            model,
            model,
            opt,
            b,
            params,
            lr=1e-4,
            weight_decay=0.04,
            momentum=0.996,
            grad_clip=1.0,
            bf16=bf16,
            seed=i,
        )

    for i in range(2):
        one(data[i], i)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i in range(steps):
            one(data[2 + i], i)
        times.append((time.perf_counter() - t0) / steps)
    per_step = statistics.median(times)
    return {
        "windows_per_s": batch / per_step,
        "gflop_per_step": flops / 1e9,
        "achieved_gflops": flops / per_step / 1e9,
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
    peak = {False: matmul_flops(torch.float32), True: matmul_flops(torch.bfloat16)}
    print(f"threads {threads}; window 16 sensors x 512 steps, batch {args.batch}")
    print(
        f"dense 1024^3 matmul, this run: fp32 {peak[False] / 1e9:.0f} GFLOP/s, "
        f"bf16 {peak[True] / 1e9:.0f} GFLOP/s (baselines for the fractions below)"
    )
    print(
        f"{'fusion':<11}{'dtype':<6}{'params M':>9}{'windows/s':>11}{'GFLOP/step':>12}"
        f"{'GFLOP/s':>9}{'of matmul':>11}"
    )
    for fusion in args.fusion.split(","):
        for bf16 in (False,) if args.no_bf16 else (False, True):
            r = run(fusion, bf16, args.steps, args.repeats, args.batch)
            frac = r["achieved_gflops"] * 1e9 / peak[bf16]
            print(
                f"{fusion:<11}{'bf16' if bf16 else 'fp32':<6}{r['params_m']:>9.2f}"
                f"{r['windows_per_s']:>11.1f}{r['gflop_per_step']:>12.1f}"
                f"{r['achieved_gflops']:>9.0f}{frac:>10.0%}"
            )
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
