"""Model throughput of the JEPA core: windows/s and achieved FLOP/s vs a dense matmul.

Shape: tiny preset, 16 sensors x 512 grid steps per window (patch 16: 32 patches, 512
tokens), batch 8, the default mask mixture; batches are collated beforehand (collation runs
in DataLoader workers during training and is reported on its own line). One step =
forward + backward + AdamW + EMA update. For each fusion mode, fp32 and bf16 autocast:

- windows/s (median over repeats of the mean over `--steps` steps);
- FLOPs of forward+backward counted by `torch.utils.flop_counter.FlopCounterMode` on each
  batch the timed steps use, averaged over those steps (matmuls and attention only;
  element-wise work is not counted). The counter has no formula for the CPU
  flash-attention kernels, so the dense attention formulas are registered for them here
  (otherwise attention, about half the work, counts as 0);
- achieved FLOP/s as a FRACTION of a dense square matmul's FLOP/s measured in this same
  process, on the same threads, in the same dtype (fp32 peak for fp32 steps, bf16 peak for
  bf16 autocast steps), measured just before and just after every repeat (their mean).

It also times the context encoder given only the context tokens (gather, the default)
against the same encoder run over the full sequence with non-context tokens masked out,
and reports the speed-up. The machine is shared: absolute figures are noisy; the
fractions and ratios, measured side by side in one process, much less so.

With ``--device cuda`` the same steps run on a GPU (batches moved there first, the clock read
after `torch.cuda.synchronize`), against that GPU's dense matmul (8192^3, the size that
reaches its peak) in the same dtype; the "CPU time" column means nothing there and is not
printed.

Usage: python benchmarks/bench_throughput.py [--steps K] [--repeats R] [--threads T]
       [--batch B] [--fusion joint,factorised,per_kind] [--no-bf16] [--device cpu|cuda]
       [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import (
    FlopCounterMode,
    flop_registry,
    register_flop_formula,
    sdpa_backward_flop_count,
    sdpa_flop_count,
)

from geojepa.frame import SensorFrame
from geojepa.jepa import JEPA, JEPAConfig
from geojepa.masking import Batch, MaskCollator, MaskConfig
from geojepa.models import FUSIONS, count_parameters, gather_tokens, preset
from geojepa.windows import Normaliser, WindowDataset, WindowSpec

N_SENSORS = 16
LENGTH = 512
PATCH = 16
KINDS = ("piezometer", "inclinometer", "gnss", "rain_gauge", "thermometer", "extensometer")


def make_frame(n_sensors: int, n_times: int, seed: int) -> SensorFrame:
    """Random-walk sensors of mixed kinds with positions, 3 % of cells missing."""
    rng = np.random.default_rng(seed)
    values = np.cumsum(rng.normal(size=(n_times, n_sensors)), axis=0).astype(np.float32)
    observed = rng.random(values.shape) >= 0.03
    values[~observed] = np.nan
    sensors = pd.DataFrame(
        {
            "id": [f"S{c:02d}" for c in range(n_sensors)],
            "kind": [KINDS[c % len(KINDS)] for c in range(n_sensors)],
            "unit": "mm",
            "x": rng.uniform(0, 100, n_sensors),
            "y": rng.uniform(0, 100, n_sensors),
            "z": rng.uniform(-20, 0, n_sensors),
            "group": [f"BH{c % 4}" for c in range(n_sensors)],
            "meta": "{}",
        }
    )
    time_ = np.datetime64("2024-01-01T00:00", "ns") + np.arange(n_times) * np.timedelta64(1, "h")
    return SensorFrame(values, observed, time_, sensors, pd.Timedelta("1h"))


def register_cpu_attention_flops() -> None:
    """Count the CPU flash-attention kernels too.

    `FlopCounterMode` knows the CUDA attention kernels only; on CPU, scaled_dot_product_
    attention dispatches to `_scaled_dot_product_flash_attention_for_cpu` (and its backward),
    which it would count as 0 FLOPs. The same dense formulas are registered for them
    (masked keys included: the kernel computes them).
    """
    aten = torch.ops.aten
    fwd = aten._scaled_dot_product_flash_attention_for_cpu
    bwd = aten._scaled_dot_product_flash_attention_for_cpu_backward
    if fwd not in flop_registry:

        @register_flop_formula(fwd)
        def _fwd(q: tuple, k: tuple, v: tuple, *args: object, **kwargs: object) -> int:
            return int(sdpa_flop_count(q, k, v))

    if bwd not in flop_registry:

        @register_flop_formula(bwd)
        def _bwd(g: tuple, q: tuple, k: tuple, v: tuple, *args: object, **kwargs: object) -> int:
            return int(sdpa_backward_flop_count(g, q, k, v))


@dataclass(frozen=True)
class Rate:
    """A rate measured two ways: per second of wall-clock and per CPU-second of this process
    (all its threads). On a loaded machine the wall-clock rate also counts waiting for a
    core; the CPU rate does not (spin-waiting threads still count)."""

    wall: float
    cpu: float


def sync(device: torch.device) -> None:
    """Wait for the GPU's queued work (the clock must not stop before it ends)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(
    dtype: torch.dtype, n: int = 1024, seconds: float = 0.6, device: torch.device | None = None
) -> Rate:
    """FLOP/s of a dense n x n @ n x n matmul in `dtype` on the current threads (or GPU)."""
    device = device or torch.device("cpu")
    a = torch.randn(n, n, generator=torch.Generator().manual_seed(0)).to(device, dtype)
    b = torch.randn(n, n, generator=torch.Generator().manual_seed(1)).to(device, dtype)
    for _ in range(3):
        a @ b
    sync(device)
    reps, t0, c0 = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
        if device.type == "cuda" and reps % 8 == 0:
            sync(device)
    sync(device)
    flops = 2.0 * n**3 * reps
    return Rate(flops / (time.perf_counter() - t0), flops / (time.process_time() - c0))


def masked_full_loss(model: JEPA, batch: Batch) -> torch.Tensor:
    """The same loss, but the context encoder runs over ALL tokens with non-context masked
    (the alternative to gathering): what the gather saves."""
    b, n = batch.token_valid.shape
    ctx_mask = torch.zeros(b, n + 1, dtype=torch.bool, device=batch.context.device)
    slot = torch.where(batch.context_pad, torch.full_like(batch.context, n), batch.context)
    ctx_mask.scatter_(1, slot, True)
    full = model.encoder.encode(batch, None, ~ctx_mask[:, :n])  # (B, N, D)
    ctx = gather_tokens(full, batch.context)  # (B, Nc, D)
    pred = model.predictor(
        ctx, batch.context_pad, batch.target, batch.target_pad, batch.mask_kind, batch
    )
    target = gather_tokens(model.target_repr(batch), batch.target)
    w = ~batch.target_pad
    per = F.smooth_l1_loss(pred.float(), target, reduction="none").mean(-1)
    return torch.where(w, per, 0.0).sum() / w.sum().clamp_min(1)


def default_loss(model: JEPA, batch: Batch) -> torch.Tensor:
    """The loss of a training step that is not logged (`geojepa.train` asks for the
    diagnostic statistics only every `log_every` steps)."""
    return model(batch, stats=False).loss


def step_fn(
    model: JEPA, loss_fn: Callable[[JEPA, Batch], torch.Tensor], bf16: bool
) -> Callable[[Batch], None]:
    opt = torch.optim.AdamW(model.param_groups(0.04), lr=1e-4, fused=True)
    kind = next(model.parameters()).device.type

    def step(batch: Batch) -> None:
        with torch.autocast(kind, dtype=torch.bfloat16, enabled=bf16):
            loss = loss_fn(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        model.update_target(0.996)

    return step


def count_flops(
    model: JEPA, loss_fn: Callable[[JEPA, Batch], torch.Tensor], batch: Batch, bf16: bool
) -> int:
    kind = next(model.parameters()).device.type
    with FlopCounterMode(display=False) as counter:
        with torch.autocast(kind, dtype=torch.bfloat16, enabled=bf16):
            loss = loss_fn(model, batch)
        loss.backward()
    model.zero_grad(set_to_none=True)
    return int(counter.get_total_flops())


def mean_step_flops(
    model: JEPA,
    loss_fn: Callable[[JEPA, Batch], torch.Tensor],
    batches: list[Batch],
    steps: int,
    bf16: bool,
) -> float:
    """Mean FLOPs of the steps `time_steps` times (batch ``i % len(batches)`` for step i):
    each batch's masks give it its own number of context and target tokens, so one batch's
    count stands for the others only approximately."""
    used = sorted({i % len(batches) for i in range(steps)})
    per = {i: count_flops(model, loss_fn, batches[i], bf16) for i in used}
    return statistics.fmean(per[i % len(batches)] for i in range(steps))


def time_steps(step: Callable[[Batch], None], batches: list[Batch], steps: int) -> Rate:
    """Mean seconds per step over `steps` steps (after 2 warm-up steps): wall, CPU."""
    device = batches[0].values.device
    for b in batches[:2]:
        step(b)
    sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(steps):
        step(batches[i % len(batches)])
    sync(device)
    return Rate((time.perf_counter() - t0) / steps, (time.process_time() - c0) / steps)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--fusion", default=",".join(FUSIONS))
    ap.add_argument("--no-bf16", action="store_true")
    ap.add_argument("--no-gather-check", action="store_true")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    on_gpu = device.type == "cuda"
    peak_n = 8192 if on_gpu else 1024
    register_cpu_attention_flops()

    frame = make_frame(N_SENSORS, LENGTH * 4, seed=0)
    spec = WindowSpec(length=LENGTH, stride=64, patch=PATCH)
    ds = WindowDataset(frame, Normaliser.fit(frame), spec)
    collate = MaskCollator(MaskConfig(), PATCH, seed=0)
    t0 = time.perf_counter()
    batches = [
        collate([(s, ds[(s * args.batch + i) % len(ds)]) for i in range(args.batch)])
        for s in range(8)
    ]
    batches = [b.to(device) for b in batches]
    collate_wps = 8 * args.batch / (time.perf_counter() - t0)
    ctx_frac = float((~batches[0].context_pad).sum() / batches[0].token_valid.sum())
    print("load average (1, 5, 15 min): " + ", ".join(f"{x:.1f}" for x in os.getloadavg()))
    if on_gpu:
        print(f"device: {torch.cuda.get_device_name(device)} (torch {torch.__version__})")
    print(
        f"shape: {N_SENSORS} sensors x {LENGTH} steps, patch {PATCH} -> "
        f"{N_SENSORS * LENGTH // PATCH} tokens/window, batch {args.batch}, "
        f"threads {args.threads}; context = {ctx_frac:.0%} of valid tokens (batch 0)"
    )
    print(f"collate (masks + padding, one process): {collate_wps:.0f} windows/s")

    precisions = [False] if args.no_bf16 else [False, True]
    rows = []
    for fusion in args.fusion.split(","):
        for bf16 in precisions:
            for loss_name, loss_fn in [("gather", default_loss)] + (
                []
                if args.no_gather_check or fusion != "joint"
                else [("masked-full", masked_full_loss)]
            ):
                model = JEPA(JEPAConfig(preset("tiny", fusion=fusion)), seed=0).to(device)
                flops = mean_step_flops(model, loss_fn, batches, args.steps, bf16)
                step = step_fn(model, loss_fn, bf16)
                times, fracs, peaks, cpu_fracs = [], [], [], []
                dtype = torch.bfloat16 if bf16 else torch.float32
                for _ in range(args.repeats):
                    before = matmul_peak(dtype, peak_n, device=device)
                    dt = time_steps(step, batches, args.steps)
                    after = matmul_peak(dtype, peak_n, device=device)  # bracket the steps
                    peak = 0.5 * (before.wall + after.wall)
                    times.append(dt.wall)
                    peaks.append(peak)
                    fracs.append(flops / dt.wall / peak)
                    cpu_fracs.append(flops / dt.cpu / (0.5 * (before.cpu + after.cpu)))
                dt_med = statistics.median(times)
                row = {
                    "fusion": fusion,
                    "precision": "bf16" if bf16 else "fp32",
                    "context_encoder": loss_name,
                    "params": count_parameters(model.encoder) + count_parameters(model.predictor),
                    "windows_per_s": args.batch / dt_med,
                    "step_ms": dt_med * 1e3,
                    "gflop_per_step": flops / 1e9,
                    "peak_fraction": statistics.median(fracs),
                    "peak_fraction_best": flops / min(times) / max(peaks),
                    "peak_fraction_cpu": statistics.median(cpu_fracs),
                    "matmul_peak_gflops": statistics.median(peaks) / 1e9,
                    "peak_fraction_all": [round(f, 3) for f in fracs],
                    "peak_fraction_cpu_all": [round(f, 3) for f in cpu_fracs],
                }
                rows.append(row)
                print(
                    f"{fusion:>10} {row['precision']} {loss_name:>11}: "
                    f"{row['windows_per_s']:6.2f} windows/s, {row['step_ms']:7.0f} ms/step, "
                    f"{row['gflop_per_step']:6.2f} GFLOP/step, "
                    f"{row['peak_fraction']:.0%} of the {row['precision']} matmul peak "
                    f"(repeats: {', '.join(f'{f:.0%}' for f in fracs)}; "
                    f"fastest step / highest peak: {row['peak_fraction_best']:.0%})"
                    + (
                        ""
                        if on_gpu
                        else f"; in CPU time {row['peak_fraction_cpu']:.0%} "
                        f"(repeats: {', '.join(f'{f:.0%}' for f in cpu_fracs)})"
                    ),
                    flush=True,
                )
    by = {(r["fusion"], r["precision"], r["context_encoder"]): r for r in rows}
    for prec in ("fp32", "bf16"):
        g, m = by.get(("joint", prec, "gather")), by.get(("joint", prec, "masked-full"))
        if g and m:
            print(
                f"gather vs masked full sequence ({prec}): "
                f"{m['step_ms'] / g['step_ms']:.2f}x faster step with the gather"
            )
    if ("joint", "fp32", "gather") in by and ("joint", "bf16", "gather") in by:
        a, b = by[("joint", "fp32", "gather")], by[("joint", "bf16", "gather")]
        print(f"bf16 autocast vs fp32 (joint): {a['step_ms'] / b['step_ms']:.2f}x")
    print("targets: >= 60% of the fp32 peak in fp32, >= 50% of the bf16 peak in bf16.")
    print(
        "figures are medians over repeats on a shared machine: noisy, compare ratios. "
        "'in CPU time': FLOPs per CPU-second of the step / per CPU-second of the matmul "
        "(robust to waiting for a core on a loaded machine)."
    )
    print("load average (1, 5, 15 min): " + ", ".join(f"{x:.1f}" for x in os.getloadavg()))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
