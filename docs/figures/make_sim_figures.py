"""Make docs/figures/sim-<scenario>.png: one simulated site per scenario.

Usage: python docs/figures/make_sim_figures.py [--seed S] [--days D] [--sensors N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from geojepa.simulate import simulate_site
from geojepa.simulate.figures import plot_simulated_site

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--days", type=float, default=730.0)
    parser.add_argument("--sensors", type=int, default=24)
    args = parser.parse_args(argv)
    for scenario in ("slope", "embankment", "dam"):
        sim = simulate_site(scenario, args.sensors, args.days, "1h", args.seed)
        out = plot_simulated_site(sim, HERE / f"sim-{scenario}.png", dpi=90)
        sys.stdout.write(f"wrote {out.name}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
