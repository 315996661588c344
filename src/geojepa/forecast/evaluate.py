"""The forecast evaluation harness: forecasts from a cutoff, scored per horizon.

One contract for every method, classic or learned: a *method factory* takes the training
series (other plates, other wells: whatever the protocol allows; classic methods ignore them)
and returns an unfitted `Forecaster`; the harness fits it on the evaluated series **truncated
at the cutoff** and asks for the later times.

Guarantees:

- `truncate` is the only way a history reaches a forecaster here: it copies the readings
  with ``t <= cutoff`` and nothing else, so data after the cutoff cannot change a forecast
  (a test changes them and checks).
- Forecast times are strictly after the cutoff.
- A forecaster with a ``bind(name, origin)`` method is told the evaluated series' name and
  time origin before `fit` (metadata to find its context, never values).
- Scores: MAE, RMSE, band coverage per group; ``*_vs_persistence`` divide by persistence's
  error on exactly the same rows (only rows where both predictions are finite). Rows where a
  method gives no finite prediction are counted in ``n_nan``, never silently scored.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from geojepa.forecast.base import Forecast, Forecaster, as_history, as_times
from geojepa.forecast.methods import CLASSIC
from geojepa.progress import track

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Series:
    """One target series with drivers on the same times.

    t (T,) days since `origin` (strictly increasing); y (T,) NaN where not observed;
    drivers name -> (T,).
    """

    name: str
    t: np.ndarray
    y: np.ndarray
    drivers: Mapping[str, np.ndarray] = field(default_factory=dict)
    origin: pd.Timestamp | None = None

    def __post_init__(self) -> None:
        t, y, drv = as_history(self.t, self.y, self.drivers)
        object.__setattr__(self, "t", t)
        object.__setattr__(self, "y", y)
        object.__setattr__(self, "drivers", drv)

    def observed_times(self) -> np.ndarray:
        return self.t[np.isfinite(self.y)]

    def timestamps(self, t: np.ndarray) -> pd.DatetimeIndex:
        """UTC times of day-offsets `t` (needs `origin`)."""
        if self.origin is None:
            raise ValueError(f"series {self.name!r} has no origin")
        return pd.DatetimeIndex(self.origin + pd.to_timedelta(np.asarray(t), unit="D"))


MethodFactory = Callable[[Sequence[Series]], Forecaster]
"""Training series -> a fresh, unfitted forecaster."""


def truncate(series: Series, cutoff: float) -> Series:
    """The series up to and including `cutoff` (days): copies, nothing after it."""
    keep = series.t <= cutoff
    return Series(
        name=series.name,
        t=series.t[keep].copy(),
        y=series.y[keep].copy(),
        drivers={k: v[keep].copy() for k, v in series.drivers.items()},
        origin=series.origin,
    )


def classic(name: str, **kwargs: Any) -> MethodFactory:
    """A factory for a classic method by name (training series ignored)."""
    cls = CLASSIC[name]

    def make(training: Sequence[Series]) -> Forecaster:
        return cls(**kwargs)

    make.__name__ = f"classic_{name}"
    return make


def forecast_from(
    make: MethodFactory,
    series: Series,
    cutoff: float,
    t_future: np.ndarray,
    training: Sequence[Series] = (),
) -> tuple[Forecast, Forecaster]:
    """Fit ``make(training)`` on `series` truncated at `cutoff`; forecast at `t_future`."""
    tf = as_times(t_future)
    if tf.size and float(tf.min()) <= cutoff:
        raise ValueError("forecast times must be strictly after the cutoff")
    history = truncate(series, cutoff)
    if not np.isfinite(history.y).any():
        raise ValueError(f"series {series.name!r} has no observed value before cutoff {cutoff:g}")
    model = make(training)
    bind = getattr(model, "bind", None)
    if callable(bind):  # learned methods: the series' name and time origin, never its values
        bind(series.name, series.origin)
    model = model.fit(history.t, history.y, history.drivers)
    return model.predict(tf), model


_RECORD_COLUMNS = (
    "series",
    "method",
    "cutoff_label",
    "cutoff",
    "t",
    "horizon",
    "truth",
    "prediction",
    "lower",
    "upper",
    "fallback",
)


def _rows(
    series: Series,
    method: str,
    label: str,
    cutoff: float,
    fc: Forecast,
    truth: np.ndarray,
    model: Forecaster,
) -> pd.DataFrame:
    fb = getattr(model, "fallback_", None)
    return pd.DataFrame(
        {
            "series": series.name,
            "method": method,
            "cutoff_label": label,
            "cutoff": cutoff,
            "t": fc.t,
            "horizon": fc.t - cutoff,
            "truth": truth,
            "prediction": fc.prediction,
            "lower": fc.lower,
            "upper": fc.upper,
            "fallback": "" if fb is None else str(fb),
        }
    )


def _training(series_list: Sequence[Series], i: int, leave_one_out: bool) -> list[Series]:
    return [s for j, s in enumerate(series_list) if j != i] if leave_one_out else []


def evaluate_rest(
    methods: Mapping[str, MethodFactory],
    series_list: Sequence[Series],
    fractions: Sequence[float] = (0.3, 0.5),
    leave_one_out: bool = True,
) -> pd.DataFrame:
    """Forecast every later reading of each series from the first `fractions` of its span.

    The cutoff is ``t0 + f * (t_end - t0)`` over the series' observed times. With
    `leave_one_out`, the factory gets all *other* series as training data.
    Returns one row per (series, method, cutoff, forecast time) (columns `_RECORD_COLUMNS`).
    """
    out: list[pd.DataFrame] = []
    for i, s in enumerate(track(series_list, "forecast (rest of record)")):
        obs_t = s.observed_times()
        if obs_t.size < 2:
            log.warning("series %s has fewer than two readings; skipped", s.name)
            continue
        training = _training(series_list, i, leave_one_out)
        for f in fractions:
            cutoff = float(obs_t[0] + f * (obs_t[-1] - obs_t[0]))
            later = obs_t > cutoff
            tf = obs_t[later]
            truth = s.y[np.isfinite(s.y)][later]
            for name, make in methods.items():
                fc, model = forecast_from(make, s, cutoff, tf, training)
                out.append(_rows(s, name, f"{round(100 * f)}%", cutoff, fc, truth, model))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=_RECORD_COLUMNS)


def targets_at(
    series: Series, cutoff: float, horizons: Sequence[float], tolerance: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each horizon, the observed reading nearest ``cutoff + h`` within `tolerance`.

    Returns (k,) horizons kept, their reading times and values; a horizon without such a
    reading after the cutoff is left out.
    """
    obs = np.isfinite(series.y)
    ot, oy = series.t[obs], series.y[obs]
    keep_h, keep_t, keep_y = [], [], []
    for h in horizons:
        want = cutoff + h
        j = int(np.searchsorted(ot, want))
        cands = [k for k in (j - 1, j) if 0 <= k < ot.size and ot[k] > cutoff]
        if not cands:
            continue
        k = min(cands, key=lambda c: abs(ot[c] - want))
        if abs(ot[k] - want) <= tolerance + 1e-9:
            keep_h.append(h)
            keep_t.append(ot[k])
            keep_y.append(oy[k])
    return np.array(keep_h, float), np.array(keep_t, float), np.array(keep_y, float)


def evaluate_horizons(
    methods: Mapping[str, MethodFactory],
    series_list: Sequence[Series],
    cutoffs: Mapping[str, Iterable[float]],
    horizons: Sequence[float],
    tolerance: float | Mapping[str, float] = 0.0,
    leave_one_out: bool = False,
    training_for: Callable[[int], Sequence[Series]] | None = None,
) -> pd.DataFrame:
    """Rolling-origin forecasts: at each cutoff of each series, forecast ``cutoff + h``.

    `cutoffs` maps a series name to its cutoffs (days). The truth for horizon h is the reading
    nearest ``cutoff + h`` within the series' `tolerance` (days); the forecast is made at that
    reading's time. The ``horizon`` column holds the nominal h. Training series for the
    factory: `training_for(i)` for series i when given, else the others with
    `leave_one_out`, else none.
    """
    out: list[pd.DataFrame] = []
    work = [(i, s, float(c)) for i, s in enumerate(series_list) for c in cutoffs.get(s.name, ())]
    for i, s, cutoff in track(work, "forecast (rolling origin)"):
        tol = tolerance if isinstance(tolerance, int | float) else tolerance.get(s.name, 0.0)
        hs, ts, ys = targets_at(s, cutoff, horizons, float(tol))
        if hs.size == 0:
            continue
        training = (
            training_for(i)
            if training_for is not None
            else _training(series_list, i, leave_one_out)
        )
        for name, make in methods.items():
            fc, model = forecast_from(make, s, cutoff, ts, training)
            rows = _rows(s, name, "rolling", cutoff, fc, ys, model)
            rows["horizon"] = hs
            out.append(rows)
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=_RECORD_COLUMNS)


def summarise(
    records: pd.DataFrame,
    by: Sequence[str] = ("method", "cutoff_label", "horizon"),
    horizon_bins: Sequence[float] | None = None,
    baseline: str = "persistence",
) -> pd.DataFrame:
    """MAE, RMSE, coverage and n per group, with ratios to `baseline` on the same rows.

    `horizon_bins` (days, increasing) replaces ``horizon`` by its interval label, e.g.
    ``(0, 30, 90, 365, inf)`` -> ``(0, 30]``... (an ordered categorical). Columns: the `by` keys, n, n_nan, n_fallback,
    mae, rmse, coverage, mae_vs_<baseline>, rmse_vs_<baseline>.
    """
    rec = records.copy()
    labels: list[str] = []
    if horizon_bins is not None:
        labels = [f"({_fmt(a)}, {_fmt(b)}]" for a, b in itertools.pairwise(horizon_bins)]
        rec["horizon"] = pd.cut(rec["horizon"], list(horizon_bins), labels=labels)  # ordered
    key = ["series", "cutoff_label", "cutoff", "t"]
    base = rec[rec["method"] == baseline][[*key, "prediction"]]
    base = base.rename(columns={"prediction": "base_prediction"})
    if base.duplicated(key).any():
        raise ValueError(
            f"{baseline} has several rows for one (series, cutoff, t): give series unique names"
        )
    rec = rec.merge(base, on=key, how="left")
    rec["err"] = rec["prediction"] - rec["truth"]
    rec["base_err"] = rec["base_prediction"] - rec["truth"]
    rows = []
    for keys, g in rec.groupby(list(by), sort=True, observed=True):
        fin = np.isfinite(g["err"].to_numpy())
        err = g["err"].to_numpy()[fin]
        both = fin & np.isfinite(g["base_err"].to_numpy())
        e_b, b_b = g["err"].to_numpy()[both], g["base_err"].to_numpy()[both]
        inside = (g["truth"] >= g["lower"]) & (g["truth"] <= g["upper"])
        row: dict[str, Any] = dict(
            zip(by, keys if isinstance(keys, tuple) else (keys,), strict=True)
        )
        mae_b = float(np.mean(np.abs(b_b))) if b_b.size else float("nan")
        rmse_b = float(np.sqrt(np.mean(b_b**2))) if b_b.size else float("nan")
        row.update(
            n=len(g),
            n_nan=int((~fin).sum()),
            n_fallback=int((g["fallback"] != "").sum()),
            mae=float(np.mean(np.abs(err))) if err.size else float("nan"),
            rmse=float(np.sqrt(np.mean(err**2))) if err.size else float("nan"),
            coverage=float(inside[fin].mean()) if fin.any() else float("nan"),
        )
        row[f"mae_vs_{baseline}"] = (
            float(np.mean(np.abs(e_b))) / mae_b if b_b.size and mae_b > 0 else float("nan")
        )
        row[f"rmse_vs_{baseline}"] = (
            float(np.sqrt(np.mean(e_b**2))) / rmse_b if b_b.size and rmse_b > 0 else float("nan")
        )
        rows.append(row)
    out = pd.DataFrame(rows)
    if horizon_bins is not None and "horizon" in out.columns:
        out["horizon"] = pd.Categorical(out["horizon"], categories=labels, ordered=True)
        out = out.sort_values(list(by), kind="stable", ignore_index=True)
    return out


def _fmt(x: float) -> str:
    return "inf" if np.isinf(x) else f"{x:g}"
