"""The engineer's view of a run: one self-contained HTML report (`build_report`).

Modules: `inputs` and `artifacts` (readers for the run folder's files), `analysis` (alarm
episodes, attribution, event matching, PCA), `html` (page building blocks), `sections` and
`forecasts` (one function per section), `build` (assembly and the atomic write).
"""

from __future__ import annotations

from geojepa.report.build import build_report

__all__ = ["build_report"]
