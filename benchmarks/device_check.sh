#!/bin/sh
# The GPU checks, in one go, on a machine whose torch sees a CUDA GPU (CI has none):
#   1. the CUDA tests (tests/test_devices.py: one step on the GPU against the CPU, a GPU run
#      read and embedded on the CPU, exact resume on the GPU, a GPU run resumed on the CPU);
#   2. training throughput on the GPU, batch 8 and 64, fp32 and bf16 (bench_throughput.py);
#   3. the tiny preset pretrained on a simulated slope on the GPU, then the first 60 steps
#      of the same run on this machine's CPU (all its cores) for a same-machine ratio.
# Figures and logs go to $OUT (default ./device-out). Run from the repository root:
#   OUT=device-out sh benchmarks/device_check.sh
set -u
OUT=${OUT:-device-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}

$PY - <<'EOF' 2>&1 | tee "$OUT/versions.txt"
import numpy, pandas, torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "numpy", numpy.__version__,
      "pandas", pandas.__version__)
print("gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")
EOF

timeout 300 $PY -m pytest -q -p no:cacheprovider tests/test_devices.py 2>&1 | tee "$OUT/pytest.log" | tail -25

for b in 8 64; do
  timeout 240 $PY benchmarks/bench_throughput.py --device cuda --fusion joint --batch $b \
    --steps 20 --repeats 3 --no-gather-check --json "$OUT/throughput-b$b.json" 2>&1 \
    | tee "$OUT/throughput-b$b.log"
done

timeout 400 $PY - "$OUT" <<'EOF' 2>&1 | tee "$OUT/pretrain.log"
import json, sys, time
from pathlib import Path
import torch
from geojepa.config import preset
from geojepa.simulate import simulate_site
from geojepa.train import pretrain

out = Path(sys.argv[1])
site = simulate_site("slope", 16, 365, "1h", 0).site
rows = {}
for device, steps in (("cuda", None), ("cpu", 60)):
    t0 = time.perf_counter()
    res = pretrain([site], out / f"run-{device}", preset("tiny"), steps=steps,
                   tracking_uri="none", progress=False, device=device, stop_after=steps)
    q = res.quality
    rows[device] = {"steps": res.step, "seconds": time.perf_counter() - t0,
                    "windows_per_s": res.windows_per_second,
                    "rankme_fraction": None if q is None else q.rankme / q.dim,
                    "threads": torch.get_num_threads()}
    print(device, rows[device], flush=True)
g, c = rows["cuda"], rows["cpu"]
print(f"tiny preset, windows/s: GPU {g['windows_per_s']:.1f}, CPU ({c['threads']} threads) "
      f"{c['windows_per_s']:.1f}: {g['windows_per_s'] / c['windows_per_s']:.1f}x")
(out / "pretrain.json").write_text(json.dumps(rows, indent=2))
EOF
rm -rf "$OUT"/run-*
