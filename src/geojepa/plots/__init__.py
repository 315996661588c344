"""Matplotlib figures for the report, drawn from plain inputs (arrays and DataFrames).

Every function returns a `matplotlib.figure.Figure` built without pyplot (no global state,
the Agg canvas, safe in threads and on machines without a display). Nothing here imports
the model code, so each figure can be tested alone.

Guarantees:

- every data axis has an x and a y label, with units where the quantity has one;
- times are drawn in UTC (naive ``datetime64[ns]`` on the axis, labelled "time (UTC)");
- long series are thinned by a min/max envelope to at most `max_points` points, so a spike
  of one sample is still visible and the PNG stays small;
- an input with nothing to draw gives a figure that says so in words, never an exception.
- text from the data (sensor ids, units, groups, method names) is drawn as written, never
  parsed as a mathtext formula (`base.plain_text`).

Alarm colours follow a monitoring system's TARP: green, amber, red.

Modules: `base` (colours, time axes, thinning), `site`, `series`, `forecast`, `training`.
"""

from __future__ import annotations

from geojepa.plots.base import (
    ALARM_COLOURS,
    FIG_WIDTH,
    KIND_COLOURS,
    SEASONS,
    TIME_LABEL,
    kind_colour,
    naive_utc,
    thin,
)
from geojepa.plots.forecast import forecast_plot
from geojepa.plots.series import (
    SCORE_STRIP,
    SensorPanel,
    attribution_bars,
    score_timeline,
    sensor_series,
)
from geojepa.plots.site import depth_section, section_axis, site_plan
from geojepa.plots.training import (
    COLLAPSE_METRICS,
    collapse_metrics,
    embedding_projection,
    season_of,
    training_curves,
)

__all__ = [
    "ALARM_COLOURS",
    "COLLAPSE_METRICS",
    "FIG_WIDTH",
    "KIND_COLOURS",
    "SCORE_STRIP",
    "SEASONS",
    "TIME_LABEL",
    "SensorPanel",
    "attribution_bars",
    "collapse_metrics",
    "depth_section",
    "embedding_projection",
    "forecast_plot",
    "kind_colour",
    "naive_utc",
    "score_timeline",
    "season_of",
    "section_axis",
    "sensor_series",
    "site_plan",
    "thin",
    "training_curves",
]
