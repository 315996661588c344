"""The forecasting protocols on real data, shared by the benchmark and by learned methods.

- Settlement plates (``soft-ground-settlement``), leave one plate out: for each plate, cut at
  30 % and 50 % of its span and forecast every later reading; a method factory receives the
  other plates as training series. Classic methods use only the plate's own history.
- Wells (``gw-challenge``), rolling origin over each well's test period: a cutoff every
  `stride` days at a head reading, forecasts 1, 7 and 30 days ahead; weekly wells take the
  reading nearest ``cutoff + h`` within 3.5 days (so 1 day has no target there and 30 days is
  scored at 28). With `leave_one_out` the factory receives the four other wells, truncated to
  before the held-out well's test period (no shared-weather look-ahead).

Guarantees: cutoffs and targets come from the data alone, never from a method's output;
every method sees a history truncated at the cutoff (`geojepa.forecast.evaluate`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from geojepa.datasets import (
    GwWell,
    gw_series,
    load_gw_wells,
    load_settlement_plates,
    plate_series,
)
from geojepa.forecast.evaluate import (
    MethodFactory,
    Series,
    classic,
    evaluate_horizons,
    evaluate_rest,
    truncate,
)

PLATE_FRACTIONS: tuple[float, ...] = (0.3, 0.5)
PLATE_HORIZON_BINS: tuple[float, ...] = (0.0, 30.0, 90.0, 180.0, 365.0, float("inf"))
GW_HORIZONS: tuple[float, ...] = (1.0, 7.0, 30.0)
WEEKLY_TOLERANCE = 3.5


def classic_settlement_methods(load: str = "surcharge") -> dict[str, MethodFactory]:
    """Every classic method; the load methods read the driver named `load`."""
    return {
        "persistence": classic("persistence"),
        "linear": classic("linear"),
        "hyperbolic": classic("hyperbolic", load=load),
        "asaoka": classic("asaoka", load=load),
        "fukuzono": classic("fukuzono"),
        "consolidation": classic("consolidation", load=load),
    }


def same_stage(records: pd.DataFrame, series: Sequence[Series], load: str) -> pd.Series:
    """True for record rows before the next change of `load` after their cutoff.

    Used only to split scores (forecasts inside the load stage current at the cutoff, where
    the hyperbolic and Asaoka methods apply, versus after later fill lifts nobody announced).
    """
    by_name = {s.name: s for s in series}
    out = pd.Series(False, index=records.index)
    for key, idx in records.groupby(["series", "cutoff"]).groups.items():
        parts: tuple[Any, ...] = tuple(key)  # type: ignore[arg-type]
        s = by_name[str(parts[0])]
        cutoff = float(parts[1])
        vals = s.drivers[load]
        k = int(np.searchsorted(s.t, cutoff, side="right")) - 1
        now = vals[max(k, 0)]
        later = np.flatnonzero((s.t > cutoff) & (np.abs(vals - now) > 1e-9))
        t_change = s.t[later[0]] if later.size else np.inf
        out.loc[idx] = records.loc[idx, "t"].to_numpy() < t_change
    return out


def settlement_protocol(
    methods: Mapping[str, MethodFactory] | None = None,
    root: str | Path | None = None,
    fractions: Sequence[float] = PLATE_FRACTIONS,
) -> tuple[pd.DataFrame, list[Series]]:
    """Leave-one-plate-out records (see `geojepa.forecast.evaluate.evaluate_rest`), with a
    ``same_stage`` column; and the plates' series."""
    series = [plate_series(p) for p in load_settlement_plates(root)]
    rec = evaluate_rest(methods or classic_settlement_methods(), series, fractions, True)
    rec["same_stage"] = same_stage(rec, series, "surcharge")
    return rec, series


def gw_cutoffs(well: GwWell, series: Series, stride: float = 7.0) -> np.ndarray:
    """Cutoffs (days) in the well's test period: head-reading times at least `stride` apart,
    leaving 30 days of record after the last."""
    assert series.origin is not None
    day = pd.Timedelta("1D")
    t0 = (well.test_start - series.origin) / day
    t1 = (well.test_end - series.origin) / day
    ot = series.observed_times()
    ot = ot[(ot >= t0) & (ot <= min(t1, ot[-1]) - max(GW_HORIZONS))]
    chosen: list[float] = []
    for t in ot:
        if not chosen or t - chosen[-1] >= stride - 1e-9:
            chosen.append(float(t))
    return np.array(chosen)


def _is_weekly(series: Series) -> bool:
    return float(np.median(np.diff(series.observed_times()))) > 3.0


def gw_protocol(
    methods: Mapping[str, MethodFactory],
    root: str | Path | None = None,
    stride: float = 7.0,
    horizons: Sequence[float] = GW_HORIZONS,
    leave_one_out: bool = False,
) -> tuple[pd.DataFrame, list[Series]]:
    """Rolling-origin records over every well's test period; and the wells' series."""
    wells = load_gw_wells(root)
    series = [gw_series(w) for w in wells]
    cutoffs = {s.name: gw_cutoffs(w, s, stride) for w, s in zip(wells, series, strict=True)}
    tol = {s.name: (WEEKLY_TOLERANCE if _is_weekly(s) else 0.0) for s in series}

    def before_test(i: int) -> list[Series]:
        """The other wells, cut before well i's test period starts."""
        out = []
        for j, other in enumerate(series):
            if j != i:
                assert other.origin is not None
                limit = (wells[i].test_start - other.origin) / pd.Timedelta("1D")
                out.append(truncate(other, float(limit) - 1e-9))
        return out

    rec = evaluate_horizons(
        methods,
        series,
        cutoffs,
        horizons,
        tol,
        training_for=before_test if leave_one_out else (lambda i: []),
    )
    return rec, series
