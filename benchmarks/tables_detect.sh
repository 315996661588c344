#!/usr/bin/env sh
# Reproduce the README's detection table (docs/results/detect.md, "Training rows scored
# out of sample by every density estimator"): every baseline and GeoJEPA's scores on 18
# simulated cases (seeds 6-8, three scenarios, intensities 1 and 0.5, a drift injected
# into each test period). Run from the repository root with the project's environment (make setup). Two processes, one per
# core, then their runs merged into bench-out/detect/table (about 12 min on two cores;
# pretrained models cached in bench-out/detect/cache-table).
set -eu
PY="${PY:-.venv/bin/python}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
export GEOJEPA_DETECTOR_CACHE="${GEOJEPA_DETECTOR_CACHE:-bench-out/detect/cache-table}"
D=trigger,rate_of_change,robust_z,iforest_raw,catch22_iforest,catch22_knn,reconstruction
D=$D,geojepa_response,geojepa_density_response,trigger_response,iforest_raw_response
D=$D,reconstruction_response
run() {
  "$PY" benchmarks/bench_detect.py --main "bench-out/detect/table-$1" --source simulated \
    --scenarios slope,embankment,dam --seeds "$2" --intensities 1,0.5 --sensors 8 --days 60 \
    --inject drift --detectors "$D"
}
run a 6,7 &
A=$!
run b 8
wait "$A"
"$PY" benchmarks/bench_detect.py --merge bench-out/detect/table-a,bench-out/detect/table-b \
  --out bench-out/detect/table
"$PY" benchmarks/bench_detect.py --targets bench-out/detect/table/benchmark.json \
  --headline geojepa_density_response
