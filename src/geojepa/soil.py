"""Soil-mechanics formulas shared by the simulator and the forecasters.

Guarantees: `terzaghi_u` is the average degree of one-dimensional (Terzaghi) consolidation
as a function of the time factor, by the closed-form approximation
``U = sqrt((4 Tv / pi) / (1 + (4 Tv / pi)^2.8)^0.179)`` (within about 1 % of the series
solution), 0 at ``Tv <= 0`` and increasing towards 1; `consolidation_curve` is the settlement
step response to a unit load: primary consolidation reaching 90 % at `t90`, plus secondary
compression growing with the log of elapsed time, 0 before the load.
"""

from __future__ import annotations

import math

import numpy as np

TV90 = 0.848  # the time factor at 90 % average consolidation


def terzaghi_u(tv: np.ndarray) -> np.ndarray:
    """Average degree of consolidation U(Tv) (one-dimensional, Terzaghi), in [0, 1)."""
    tv = np.maximum(np.asarray(tv, dtype=np.float64), 0.0)
    a = 4.0 * tv / math.pi
    return np.sqrt(a / (1.0 + a**2.8) ** 0.179)


def consolidation_curve(elapsed: np.ndarray, t90: float, secondary: float) -> np.ndarray:
    """Settlement per unit load after `elapsed` time (same unit as `t90`; 0 where <= 0):
    ``U(0.848 elapsed / t90) + secondary * log(1 + elapsed / t90)``."""
    e = np.maximum(np.asarray(elapsed, dtype=np.float64), 0.0)
    return terzaghi_u(TV90 * e / t90) + secondary * np.log1p(e / t90)
