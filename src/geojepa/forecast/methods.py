"""The classic forecasting methods by name: the ``--method`` choices of ``geojepa forecast``
and the names the evaluation harness knows (`geojepa.forecast.evaluate.classic`).

Guarantees: every entry is a `Forecaster` class whose constructor takes keyword arguments
only beyond its own documented ones; names are stable (tables and records carry them).
"""

from __future__ import annotations

from geojepa.forecast.base import Forecaster
from geojepa.forecast.classic import Asaoka, Fukuzono, Hyperbolic, LinearTrend, Persistence
from geojepa.forecast.consolidation import Consolidation

CLASSIC: dict[str, type[Forecaster]] = {
    "persistence": Persistence,
    "linear": LinearTrend,
    "hyperbolic": Hyperbolic,
    "asaoka": Asaoka,
    "fukuzono": Fukuzono,
    "consolidation": Consolidation,
}
"""The classic methods by name."""
