"""RankMe of an untrained encoder, a run's target encoder and its online encoder, side by side.

For each pooled-probe run folder written by `bench_probe.py` (``RUNS/run-joint-x7-seedS``),
embeds 64 windows spread between 60 % and 70 % of the probed slope's record (the
simulated slope of seed S; the end of the probes' training period, before their split)
with each encoder and prints RankMe of the token embeddings as a fraction of the width:
the measure the training loop's collapse guard reads, here beside the encoder the probes
found better. Untrained encoders: the
probes' own (seed 1000) and a second draw (seed 7).

Usage: python benchmarks/bench_rankme.py [--runs bench-out/mask-preset] [--seeds 0 1]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from geojepa.checkpoint import LoadedRun, build_model, load_run
from geojepa.embed import normaliser_for
from geojepa.evaluate.probes import SIM_DAYS, SIM_SPLIT, context_as_target
from geojepa.frame import to_frame
from geojepa.jepa import JEPA
from geojepa.masking import Batch, full_batch
from geojepa.quality import rankme
from geojepa.simulate import simulate_site
from geojepa.windows import WindowDataset


def late_windows(run: LoadedRun, seed: int, n_windows: int = 64) -> Batch:
    """Up to `n_windows` full windows between 60 % and 70 % of the probed slope's record,
    normalised as `run` sees them (every encoder below shares `run`'s normaliser)."""
    sim = simulate_site("slope", 16, SIM_DAYS, "1h", seed)
    frame = to_frame(sim.site)
    split = int(SIM_SPLIT * frame.n_times)
    start = int((SIM_SPLIT - 0.1) * frame.n_times)
    ds = WindowDataset(frame, normaliser_for(run, frame, split), run.config.window, start, split)
    pick = np.unique(np.linspace(0, len(ds) - 1, min(n_windows, len(ds))).round().astype(int))
    return full_batch([ds[int(i)] for i in pick], run.config.window.patch)


def token_rankme(model: JEPA, batch: Batch) -> float:
    """RankMe / width of `model`'s target-encoder tokens on `batch`'s valid cells."""
    with torch.no_grad():
        emb = model.eval().embed(batch)  # (B, C, P, D)
    d = int(emb.shape[-1])
    tokens = emb.reshape(-1, d)[batch.token_valid.reshape(-1)].double().numpy()  # (n, D)
    return rankme(tokens) / d


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=Path, default=Path("bench-out/mask-preset"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    lines = ["| seed | untrained (1000) | untrained (7) | target encoder | online encoder |"]
    lines.append("|---|---|---|---|---|")
    for seed in args.seeds:
        run = load_run(args.runs / f"run-joint-x7-seed{seed}")
        batch = late_windows(run, seed)
        models = [
            build_model(run.config, seed=1000),
            build_model(run.config, seed=7),
            run.model,
            context_as_target(run).model,
        ]
        ranks = [token_rankme(m, batch) for m in models]
        lines.append(f"| {seed} | " + " | ".join(f"{x:.3f}" for x in ranks) + " |")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
