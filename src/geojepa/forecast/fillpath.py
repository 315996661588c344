"""What the fill will do next, learned from other sites' fill records (analog forecasting).

The classic settlement methods hold the load at its value at the cutoff, yet a staged
embankment is built in lifts: over a 90-day horizon the next lift, not the soil, sets most of
the settlement to come. `FillPath` learns the rhythm of construction from the load records
of other sites (the training sites, never the one forecast) and gives, at a cutoff, analog
futures: the daily load increments of the days after it in similar states elsewhere.

State of the fill at a cutoff (`fill_state`, from the load record up to the cutoff only):
whether a lift is in progress (the load rose on the last day), how many lifts have started,
the days since the last lift started or ended, the mean height of the lifts completed, the
mean wait between lifts and the current lift's rate of rise. A lift is a run of days with a
rising load.

Analogs: every day of every training record is a candidate state, with the increments its
record actually had in the following days. The analogs of a cutoff are the `k` candidates
with the same lift-in-progress flag and the same number of lifts started (capped at
`max_lifts`), nearest in the standardised continuous state; their future increments, in
units of their own mean lift height (absolute units while no lift has completed), are put
back in the cutoff's units. A consumer takes a statistic of the responses to them
(`geojepa.forecast.consolidation.ConsolidationFill`: their median or mean; settlement is
linear in the load increments for given soil parameters, so the mean response is the
response to the mean path).

`PlannedFill` is the other source of futures: the construction programme itself, when the
engineer knows it (`geojepa forecast --fill-plan`).

Guarantees: `fill_state` and `FillPath.analogs` read the load only up to the cutoff;
candidates only come from the records given to `fit`; with no analog in the same class
`analogs` gives none (A = 0), and a consumer holds the load, the classic assumption.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Self

import numpy as np

RISE_EPS = 1e-6
"""A day's load increment above this (load units) counts as the fill rising."""


@dataclass(frozen=True)
class FillState:
    """The fill at a cutoff, from its daily load record up to the cutoff."""

    in_lift: bool  # the load rose on the last day
    lifts: int  # lifts started so far
    since: float  # days since the current lift started (in a lift) or the last one ended
    height: float  # mean height of the completed lifts (NaN: none completed)
    wait: float  # mean days between a lift's end and the next one's start (NaN: none yet)
    rate: float  # rise per day of the lift in progress (0 when none)

    def unit(self) -> float:
        """The unit future increments are expressed in: the mean lift height, else 1."""
        return self.height if np.isfinite(self.height) and self.height > 0 else 1.0

    def vector(self) -> np.ndarray:
        """(4,) the continuous part, for nearest-neighbour matching (NaN -> -1)."""
        v = np.array([self.since, self.wait, self.rate / self.unit(), self.height])
        return np.where(np.isfinite(v), v, -1.0)


def daily_load(t: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(days (G,), load (G,)): the load read at times t (days), linear between readings,
    on whole days from the first reading to the last; NaN readings are skipped."""
    t = np.asarray(t, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    ok = np.isfinite(t) & np.isfinite(q)
    t, q = t[ok], q[ok]
    if t.size == 0:
        return np.zeros(0), np.zeros(0)
    days = np.arange(np.floor(t[0]), np.floor(t[-1]) + 1.0)  # (G,)
    return days, np.interp(days, t, q)


def _lifts(load: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) day indices of each run of rising days (end exclusive: the first day
    the load did not rise)."""
    rising = np.diff(load, prepend=load[:1]) > RISE_EPS  # (G,)
    edges = np.diff(rising.astype(np.int8), prepend=0, append=0)
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def fill_state(load: np.ndarray) -> FillState:
    """The state at the last day of a daily load record (`daily_load`)."""
    load = np.asarray(load, dtype=np.float64)
    runs = _lifts(load) if load.size else []
    last = load.size - 1
    in_lift = bool(runs) and runs[-1][1] == last + 1
    done = runs[:-1] if in_lift else runs
    heights = [float(load[min(e, last)] - load[max(s - 1, 0)]) for s, e in done]
    waits = [float(runs[i + 1][0] - runs[i][1]) for i in range(len(runs) - 1)]
    if in_lift:
        s = runs[-1][0]
        since = float(last - s + 1)
        rate = float(load[last] - load[max(s - 1, 0)]) / since
    else:
        since = float(last - runs[-1][1] + 1) if runs else float(load.size)
        rate = 0.0
    return FillState(
        in_lift=in_lift,
        lifts=len(runs),
        since=since,
        height=float(np.mean(heights)) if heights else float("nan"),
        wait=float(np.mean(waits)) if waits else float("nan"),
        rate=rate,
    )


class FillPath:
    """Expected daily load increments after a cutoff, from analogs in other sites' records.

    ``fit(records)`` with records a sequence of (t, load) pairs (days, any load unit shared
    by all records); ``analogs(t, load, days)`` -> (A, days) the analogs' increments on
    days 1..days after the last reading of the history (t, load).
    `k` analogs per cutoff; lift counts above `max_lifts` share a class; `horizon` days of
    future kept per candidate. Fitted attributes: ``classes_`` (the (in_lift, lifts)
    classes seen), ``n_candidates_``, ``scale_`` (the continuous state's spread).
    """

    def __init__(self, k: int = 25, max_lifts: int = 4, horizon: int = 120) -> None:
        self.k = k
        self.max_lifts = max_lifts
        self.horizon = horizon

    def _key(self, s: FillState) -> tuple[bool, int]:
        return (s.in_lift, min(s.lifts, self.max_lifts))

    def fit(self, records: Sequence[tuple[np.ndarray, np.ndarray]]) -> Self:
        states: dict[tuple[bool, int], list[np.ndarray]] = {}
        paths: dict[tuple[bool, int], list[np.ndarray]] = {}
        h = self.horizon
        for t, q in records:
            _, load = daily_load(t, q)
            if load.size < h + 2:
                continue
            inc = np.diff(load)  # (G-1,) increment from day i to i+1
            for i in range(1, load.size - h):
                s = fill_state(load[: i + 1])
                if s.lifts == 0:
                    continue  # nothing to back-analyse before the first lift
                key = self._key(s)
                states.setdefault(key, []).append(s.vector())
                paths.setdefault(key, []).append(inc[i : i + h] / s.unit())  # (h,)
        self.states_ = {k: np.stack(v) for k, v in states.items()}
        self.paths_ = {k: np.stack(v) for k, v in paths.items()}
        all_v = np.concatenate(list(self.states_.values())) if self.states_ else np.zeros((0, 4))
        sd = all_v.std(axis=0) if all_v.shape[0] else np.ones(4)  # (4,)
        self.scale_ = np.where(sd > 0, sd, 1.0)
        self.classes_ = sorted(self.states_)
        self.n_candidates_ = int(all_v.shape[0])
        return self

    def analogs(self, t: np.ndarray, load: np.ndarray, days: int) -> np.ndarray:
        """(A, days) the analogs' increments on days 1..days after the last reading, in the
        record's unit; A = 0 when there is no analog."""
        _, q = daily_load(t, load)
        if q.size == 0:
            return np.zeros((0, days))
        s = fill_state(q)
        key = self._key(s)
        if s.lifts == 0 or key not in self.states_:
            return np.zeros((0, days))
        cand = self.states_[key]  # (M, 4)
        d = np.sqrt((((cand - s.vector()) / self.scale_) ** 2).sum(axis=1))  # (M,)
        near = np.argsort(d, kind="stable")[: self.k]
        paths = self.paths_[key][near] * s.unit()  # (A, h)
        out = np.zeros((near.size, days))
        n = min(days, paths.shape[1])
        out[:, :n] = paths[:, :n]
        return out


class PlannedFill:
    """One future of the load: a construction programme.

    `t` (P,) days (on the history's clock, increasing) and `load` (P,) the load the
    programme reaches then; linear between them and from the history's last known load at
    its last time (the back-analysis holds that load from then on), held after the last. ``analogs(t, load, days)`` -> (1, days) its daily
    increments on days 1..days after the history's last day.
    """

    def __init__(self, t: np.ndarray, load: np.ndarray) -> None:
        t = np.asarray(t, dtype=np.float64)
        load = np.asarray(load, dtype=np.float64)
        if t.shape != load.shape or t.ndim != 1 or t.size == 0:
            raise ValueError("a plan needs matching 1-D times and loads, at least one row")
        if not (np.all(np.isfinite(t)) and np.all(np.isfinite(load))):
            raise ValueError("plan times and loads must be finite")
        if np.any(np.diff(t) <= 0):
            raise ValueError("plan times must increase")
        self.t = t
        self.load = load

    def analogs(self, t: np.ndarray, load: np.ndarray, days: int) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        q = np.asarray(load, dtype=np.float64)
        known = np.isfinite(t) & np.isfinite(q)
        if not known.any():
            raise ValueError("the history has no load reading to start the plan from")
        q0 = float(q[known][-1])  # held to the history's last time, as the back-analysis holds it
        t_last = float(t[-1])
        if self.t[0] <= t_last:
            raise ValueError(f"the plan starts on day {self.t[0]:g}, not after the history")
        last = float(np.floor(t_last))
        grid = last + np.arange(0.0, days + 1.0)  # (days + 1,) the last day, then the future
        xp = np.concatenate([[t_last], self.t])  # the ramp starts at the last reading's time
        level = np.interp(grid, xp, np.concatenate([[q0], self.load]))  # (days + 1,)
        return np.diff(level)[None, :]  # (1, days)


__all__ = ["FillPath", "FillState", "PlannedFill", "daily_load", "fill_state"]
