#!/usr/bin/env sh
# Reproduce the forecasting and transfer tables of docs/results/forecast.md and transfer.md.
# Run from the repository root with the project's environment (make setup). Long: pretraining
# runs are cached in bench-out/runs and reused by a rerun with the same settings.
# Both benchmarks read ../shared/data when present and skip those sections otherwise.
set -eu
PY="${PY:-.venv/bin/python}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
"$PY" benchmarks/bench_forecast.py --out bench-out/forecast --hybrid-bases linear consolidation "$@"
# the oracle floor beside the classic methods on the simulated embankments (about 3 min)
"$PY" benchmarks/bench_forecast_oracle.py --json bench-out/forecast/oracle.json
"$PY" benchmarks/bench_transfer.py --out bench-out/transfer --target-only \
  --seeds 0 1 2 --sim-seeds 0 --steps 60
