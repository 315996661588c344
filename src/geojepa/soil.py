"""Soil-mechanics formulas shared by the simulator and the forecasters.

Guarantees: `terzaghi_u` is the average degree of one-dimensional (Terzaghi) consolidation
as a function of the time factor: ``sqrt(4 Tv / pi)`` up to Tv = 0.213 and the series'
first term ``1 - (8 / pi^2) exp(-pi^2 Tv / 4)`` beyond (the two meet there; within 0.001 of
the full series everywhere), 0 at ``Tv <= 0``, 0.90 at Tv = 0.848, rising towards 1 and never
above it; `consolidation_curve` is the settlement
step response to a unit load: primary consolidation reaching 90 % at `t90`, plus secondary
compression growing with the log of elapsed time, 0 before the load.
"""

from __future__ import annotations

import math

import numpy as np

TV90 = 0.848  # the time factor at 90 % average consolidation


TV_SWITCH = 0.2130  # where sqrt(4 Tv / pi) meets the series' first term


def terzaghi_u(tv: np.ndarray) -> np.ndarray:
    """Average degree of consolidation U(Tv) (one-dimensional, Terzaghi), in [0, 1)."""
    tv = np.maximum(np.asarray(tv, dtype=np.float64), 0.0)
    early = np.sqrt(4.0 * np.minimum(tv, TV_SWITCH) / math.pi)
    late = 1.0 - 8.0 / math.pi**2 * np.exp(-(math.pi**2) * tv / 4.0)
    return np.where(tv < TV_SWITCH, early, late)


def consolidation_curve(elapsed: np.ndarray, t90: float, secondary: float) -> np.ndarray:
    """Settlement per unit load after `elapsed` time (same unit as `t90`; 0 where <= 0):
    ``U(0.848 elapsed / t90) + secondary * log(1 + elapsed / t90)``."""
    e = np.maximum(np.asarray(elapsed, dtype=np.float64), 0.0)
    return terzaghi_u(TV90 * e / t90) + secondary * np.log1p(e / t90)
