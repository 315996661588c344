#!/bin/sh
# The GPU checks, in one go, on a machine whose torch sees a CUDA GPU (CI has none):
#   1. the CUDA tests (tests/test_devices.py: one step on the GPU against the CPU, a GPU run
#      read and embedded on the CPU, exact resume on the GPU, a GPU run resumed on the CPU);
#   2. training throughput on the GPU, batch 8 and 64, fp32 and bf16 (bench_throughput.py);
#   3. the tiny preset pretrained on a simulated slope on the GPU, then the first 60 steps
#      of the same run on this machine's CPU (all its cores) for a same-machine ratio;
#   4. `detect` (energy, then density) of a year-long simulated embankment on the GPU and on
#      the CPU (all its cores): time and agreement of the scores.
# Figures and logs go to $OUT (default ./device-out). STAGES picks stages (default all:
# "tests throughput pretrain detect"). Run from the repository root:
#   OUT=device-out sh benchmarks/device_check.sh
set -u
OUT=${OUT:-device-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}
STAGES=${STAGES:-tests throughput pretrain detect}
has() { case " $STAGES " in *" $1 "*) return 0 ;; esac; return 1; }

$PY - <<'EOF' 2>&1 | tee "$OUT/versions.txt"
import numpy, pandas, torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "numpy", numpy.__version__,
      "pandas", pandas.__version__)
print("gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")
EOF

has tests && timeout 300 $PY -m pytest -q -p no:cacheprovider tests/test_devices.py 2>&1 | tee "$OUT/pytest.log" | tail -25

has throughput && for b in 8 64; do
  timeout 240 $PY benchmarks/bench_throughput.py --device cuda --fusion joint --batch $b \
    --steps 20 --repeats 3 --no-gather-check --json "$OUT/throughput-b$b.json" 2>&1 \
    | tee "$OUT/throughput-b$b.log"
done

has pretrain && timeout 400 $PY - "$OUT" <<'EOF' 2>&1 | tee "$OUT/pretrain.log"
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

has detect && timeout 400 $PY - "$OUT" <<'EOF' 2>&1 | tee "$OUT/detect.log"
import json, sys, time
from pathlib import Path
import numpy as np
import pandas as pd
from geojepa.config import preset
from geojepa.detect import detect_run
from geojepa.simulate import simulate_site
from geojepa.train import pretrain

out = Path(sys.argv[1])
site = simulate_site("embankment", 16, 365, "1h", 1).site
until = pd.Timestamp(site.readings["timestamp"].min()) + pd.Timedelta("180D")
pretrain([site], out / "run-detect", preset("tiny"), steps=100, until=until,
         tracking_uri="none", progress=False, device="cuda")
rows = {}
for score in ("energy", "density"):
    got = {}
    for device in ("cuda", "cpu", "cuda"):  # the GPU twice: the first call warms it up
        t0 = time.perf_counter()
        got[device] = detect_run(out / "run-detect", site, score=score, device=device)
        rows[f"{score}_{device}_seconds"] = time.perf_counter() - t0
    a, b = got["cuda"].score, got["cpu"].score
    ok = ~np.isnan(a) & ~np.isnan(b)
    rel = np.abs(a[ok] - b[ok]) / np.maximum(np.abs(b[ok]), 1e-9)
    rows[f"{score}_max_rel_diff"] = float(rel.max())
    rows[f"{score}_level_agreement"] = float(np.mean(got["cuda"].level == got["cpu"].level))
    rows[f"{score}_rows"] = int(len(a))
    print(score, {k: v for k, v in rows.items() if k.startswith(score)}, flush=True)
(out / "detect.json").write_text(json.dumps(rows, indent=2))
EOF
rm -rf "$OUT"/run-*
