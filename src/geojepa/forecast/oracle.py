"""Forecast bounds on simulated embankments: what a forecaster that knew the site's hidden
physics could do. A yardstick, not a method: it reads the simulator's truth, so no command
offers it and no benchmark counts it as a contender.

Settlement on a simulated embankment is a sum of one consolidation curve per load increment
(`geojepa.simulate.embankment`): ``s(h) = sum_tau dq(tau) K(h - tau)``, with ``dq`` the fill's
load increments (kPa) and ``K`` the plate's step response (mm per kPa). Given every plate's
true ``K``, the noise-free settlement up to the cutoff and the generator of the fill schedule
(`geojepa.simulate.drivers._fill`: lifts ramp over U(5, 20) days, then the site waits
U(40, 140) days; every duration times one scale; stage heights U(0.8, 1.2) x the design
height), what is left unknown at a cutoff is the timing and height of the lifts still to come
and the readings' noise. Three bounds:

- ``bayes``: the median, over futures of the fill drawn from that generator conditioned on
  the schedule so far (a lift in progress shows its slope; its length and height are drawn,
  at least as long as what has been seen), of the noise-free settlement. The median is the forecast with the least expected absolute error, so on
  average no forecaster that knows less (no true ``K``, no generator, only the readings) can
  have a smaller MAE, up to Monte-Carlo error and the schedule's rounding to grid steps.
- ``plan``: the noise-free settlement under the actual future fill: a forecaster told the
  construction plan and the true physics; its error is the readings' noise alone.
- ``no_lift``: the noise-free settlement with the fill held at its value at the cutoff: the
  true physics under the assumption the classic methods make (no more load).
- ``analog``: the median, over the futures of the fill a `FuturePaths` gives from the load
  record up to the cutoff (e.g. `geojepa.forecast.fillpath.FillPath`'s analogs from other
  sites), of the noise-free settlement: the true physics with the programme unknown and
  the lifts to come forecast from the fill record alone. Unlike ``bayes`` it does not know
  how many lifts the site will get, their time scale or their height.

Guarantees: the noise-free settlement rebuilt from ``K`` and the actual fill equals the
simulator's noise-free signal wherever no event was added (`EmbankmentTruth.rebuild`, tested);
futures agree with the actual fill up to the cutoff; every draw satisfies the generator's
constraints (durations in their ranges, the total scaled to the scale the site used); the
actual schedule is calibrated against the draws (tested over many sites). What the bounds
still know that a forecaster cannot: each plate's true response, the schedule's scale, the
readings' noise-free past and the future of labelled settlement-acceleration events (the
benchmark also reports the plates without one).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from geojepa.forecast.base import Drivers, Forecast, Forecaster
from geojepa.forecast.consolidation import FuturePaths
from geojepa.simulate.embankment import consolidation_kernel

log = logging.getLogger(__name__)

OracleMode = Literal["bayes", "plan", "no_lift", "analog"]
RAMP_DAYS = (5.0, 20.0)  # the generator's ranges, before the schedule's scale
WAIT_DAYS = (40.0, 140.0)
HEIGHT_FACTOR = (0.8, 1.2)
SPAN_FRACTION = 0.8  # the schedule ends by this fraction of the output span


@dataclass(frozen=True)
class Stage:
    """One lift in grid steps: ramp from `start` to `top`, wait until `wait_end`; `height` is
    the fill height after it (m)."""

    start: int
    top: int
    wait_end: int
    height: float


@dataclass
class EmbankmentTruth:
    """What the bounds read from one simulated embankment (hourly or finer grid)."""

    steps_day: float
    fill: np.ndarray  # (n,) m on the output grid
    unit_weight: float  # kN/m3: load increment = unit_weight * fill increment
    stages: tuple[Stage, ...]
    scale: float
    stage_height: float
    kernels: dict[str, np.ndarray]  # plate id -> (n,) mm per kPa
    signal: pd.DataFrame  # (n, plates) noise-free readings on the output grid
    event_plates: frozenset[str]  # plates whose settlement has an acceleration event added
    _fft: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @classmethod
    def from_simulated(cls, sim: Any) -> EmbankmentTruth:
        """From a `geojepa.simulate.SimulatedSite` of the embankment scenario."""
        truth = sim.truth
        if "consolidation" not in truth or "fill" not in sim.drivers:
            raise ValueError("not a simulated embankment: no consolidation truth or fill driver")
        if "fill_time_scale" not in truth:
            raise ValueError("the site's truth has no fill_time_scale: simulate it again")
        geo = truth["family"]["geometry"]
        times = pd.DatetimeIndex(truth["signal"].index)
        step_h = float(np.median(np.diff(times.asi8))) / 3.6e12
        steps_day = 24.0 / step_h
        n = len(times)
        kernels = {}
        for pid, c in truth["consolidation"].items():
            if "secondary" not in c:
                raise ValueError("the site's truth has no secondary compression: simulate again")
            kernels[pid] = float(c["mm_per_kpa"]) * consolidation_kernel(
                float(c["t90_days"]) * steps_day, n, float(c["secondary"])
            )
        stages = tuple(
            Stage(
                int(s["start_step"]),
                int(s["top_step"]),
                int(s["wait_end_step"]),
                float(s["height_m"]),
            )
            for s in truth["stages"]
        )
        event_plates = frozenset(
            sid
            for ev in truth.get("events", [])
            if ev.get("kind") == "settlement_acceleration"  # faults do not touch the signal
            for sid in ev.get("sensors", [])
            if sid in kernels
        )
        return cls(
            steps_day=steps_day,
            fill=sim.drivers["fill"].to_numpy(dtype=np.float64),
            unit_weight=float(geo["fill_unit_weight"]),
            stages=stages,
            scale=float(truth["fill_time_scale"]),
            stage_height=float(geo["stage_height"]),
            kernels=kernels,
            signal=truth["signal"][list(kernels)],
            event_plates=event_plates,
        )

    @property
    def n(self) -> int:
        return int(self.fill.size)

    def _kernel_fft(self, plate: str) -> np.ndarray:
        if plate not in self._fft:
            self._fft[plate] = np.fft.rfft(self.kernels[plate], 2 * self.n)
        return self._fft[plate]

    def response(self, plate: str, fills: np.ndarray) -> np.ndarray:
        """Settlement (mm) of `plate` under fill histories `fills` (m, n) -> (m, n)."""
        dq = self.unit_weight * np.diff(fills, axis=-1, prepend=0.0)  # (m, n) kPa
        spec = np.fft.rfft(dq, 2 * self.n, axis=-1) * self._kernel_fft(plate)  # (m, n + 1)
        return np.fft.irfft(spec, 2 * self.n, axis=-1)[..., : self.n]

    def rebuild(self, plate: str) -> np.ndarray:
        """The plate's noise-free settlement under the actual fill (n,)."""
        return self.response(plate, self.fill[None, :])[0]

    def current_stage(self, last_step: int) -> int:
        """Index of the last lift started at or before `last_step` (-1: none yet)."""
        started = [i for i, s in enumerate(self.stages) if s.start <= last_step]
        return started[-1] if started else -1

    def fill_futures(
        self, last_step: int, mode: OracleMode, draws: int, rng: np.random.Generator
    ) -> np.ndarray:
        """Fill histories (m, n) that agree with the actual fill up to `last_step`; after
        it: drawn from the generator (``bayes``: the rest of a lift in progress too), the
        actual fill (``plan``) or held at its value at `last_step` (``no_lift``)."""
        if mode == "plan":
            return self.fill[None, :].copy()
        if mode == "no_lift":
            frozen = self.fill.copy()
            frozen[last_step + 1 :] = self.fill[last_step]
            return frozen[None, :]
        i = max(self.current_stage(last_step), 0)  # before the first lift: its start is given
        mid_ramp = last_step < self.stages[i].top
        if i == len(self.stages) - 1 and not mid_ramp:  # the last lift is in place
            return self.fill[None, :].copy()
        rows = self._draw_durations(i, last_step, draws, rng)  # (m, 2 * (k - i))
        return np.stack([self._fill_from(i, last_step, r, rng) for r in rows])

    def _ramp_slope(self, i: int) -> float:
        """Fill added per grid step by lift i (what its first steps show)."""
        st = self.stages[i]
        prev = self.stages[i - 1].height if i > 0 else 0.0
        return (st.height - prev) / max(st.top - st.start, 1)

    def _draw_durations(
        self, i: int, last_step: int, draws: int, rng: np.random.Generator
    ) -> np.ndarray:
        """Rows of [ramp_i, wait_i, ramp_i+1, wait_i+1, ...] in the generator's units (days
        before the scale), conditioned on the schedule up to `last_step`: a ramp in progress
        lasts at least what has been seen, and its height (its slope times its length) stays
        in the generator's range; no lift starts before `last_step`."""
        sd, sc, k = self.steps_day, self.scale, len(self.stages)
        st = self.stages
        past = sum((s.wait_end - s.start) / sd / sc for s in st[:i])
        seen_ramp = (st[i].top - st[i].start) / sd / sc  # the actual ramp, when complete
        ramp_lo = ramp_hi = seen_ramp
        if last_step < st[i].top:  # mid-ramp: its length and height are still unknown
            per_day = self._ramp_slope(i) * sc * sd  # fill added per ramp day (prior units)
            ramp_lo = max(
                RAMP_DAYS[0],
                (last_step - st[i].start + 1) / sd / sc,
                HEIGHT_FACTOR[0] * self.stage_height / per_day,
            )
            ramp_hi = min(RAMP_DAYS[1], HEIGHT_FACTOR[1] * self.stage_height / per_day)
            if ramp_lo > ramp_hi:  # rounding of the grid steps: keep the actual ramp
                ramp_lo = ramp_hi = seen_ramp
        avail = SPAN_FRACTION * self.n / sd - st[0].start / sd
        n_later = k - i - 1
        out: list[np.ndarray] = []
        got = 0
        for _ in range(400):
            m = 4 * draws
            ramp_i = rng.uniform(ramp_lo, ramp_hi, m) if ramp_hi > ramp_lo else np.full(m, ramp_lo)
            # the next lift starts after the last given step: start_i + (ramp + wait) > last
            lower = np.maximum(WAIT_DAYS[0], (last_step - st[i].start) / sd / sc - ramp_i)
            later = np.empty((m, 2 * n_later))
            later[:, 0::2] = rng.uniform(*RAMP_DAYS, (m, n_later))
            later[:, 1::2] = rng.uniform(*WAIT_DAYS, (m, n_later))
            known = past + ramp_i
            if sc < 1.0 - 1e-12:
                # the durations were scaled to sum to avail / scale: wait_i closes the sum
                wait_i = avail / sc - known - later.sum(axis=1)
                ok = (wait_i >= lower) & (wait_i <= WAIT_DAYS[1])
            else:
                # unscaled: the durations summed to at most avail
                wait_i = rng.uniform(np.minimum(lower, WAIT_DAYS[1]), WAIT_DAYS[1])
                ok = known + wait_i + later.sum(axis=1) <= avail + 1e-9
            rows = np.column_stack([ramp_i, wait_i, later])[ok]
            out.append(rows)
            got += len(rows)
            if got >= draws:
                break
        rows = np.concatenate(out)[:draws] if got else np.empty((0, 2 * n_later + 2))
        if len(rows) < draws:
            log.warning(
                "fill futures: %d of %d draws met the schedule's constraints at step %d; "
                "the rest are drawn without the total-duration constraint",
                len(rows),
                draws,
                last_step,
            )
            extra = draws - len(rows)
            free = np.empty((extra, 2 * n_later + 2))
            free[:, 0] = rng.uniform(ramp_lo, ramp_hi, extra) if ramp_hi > ramp_lo else ramp_lo
            free[:, 1] = rng.uniform(*WAIT_DAYS, extra)
            free[:, 2::2] = rng.uniform(*RAMP_DAYS, (extra, n_later))
            free[:, 3::2] = rng.uniform(*WAIT_DAYS, (extra, n_later))
            rows = np.concatenate([rows, free])
        return rows

    def _fill_from(
        self, i: int, last_step: int, durations: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """One fill history: the actual one up to `last_step`, then the rest of lift i (its
        slope, the drawn length) and lifts i+1.. as drawn."""
        sd, sc, n = self.steps_day, self.scale, self.n
        st = self.stages[i]
        fill = self.fill.copy()
        prev = self.stages[i - 1].height if i > 0 else 0.0
        top = min(max(st.start + 1, round(st.start + durations[0] * sc * sd)), n - 1)
        total = prev + self._ramp_slope(i) * (top - st.start)  # the fill when lift i ends
        if last_step < top:
            tail = np.arange(last_step + 1, top + 1)
            fill[last_step + 1 : top + 1] = prev + self._ramp_slope(i) * (tail - st.start)
        fill[max(top, last_step) + 1 :] = total
        day = (st.start + (durations[0] + durations[1]) * sc * sd) / sd  # next lift's start
        for j in range(len(self.stages) - i - 1):
            ramp = durations[2 + 2 * j] * sc
            s = round(day * sd)
            if s >= n:
                break
            t = min(max(s + 1, round((day + ramp) * sd)), n - 1)
            new = total + self.stage_height * float(rng.uniform(*HEIGHT_FACTOR))
            fill[s : t + 1] = np.linspace(total, new, t - s + 1)
            fill[t + 1 :] = new
            total = new
            day += ramp + durations[3 + 2 * j] * sc
        return fill


def daily_means(hourly: np.ndarray, steps_day: float) -> np.ndarray:
    """(..., n) on the output grid -> (..., days): the mean of each whole day."""
    per = round(steps_day)
    days = hourly.shape[-1] // per
    return hourly[..., : days * per].reshape(*hourly.shape[:-1], days, per).mean(axis=-1)


class OracleForecaster(Forecaster):
    """A bound (see the module docstring) on one simulated embankment's settlement plates.

    Series are matched to plates by the part of their name after the last ``/``; times are
    days whose stamp ``d`` holds the mean of output-grid day ``d`` (as
    `geojepa.forecast.simulated.daily_series` stamps them), so a cutoff at ``d`` has seen
    the grid up to the end of day ``d``.
    """

    name = "oracle"

    def __init__(
        self,
        truth: EmbankmentTruth,
        mode: OracleMode = "bayes",
        draws: int = 400,
        seed: int = 0,
        level: float = 0.9,
        futures: FuturePaths | None = None,
    ) -> None:
        if mode == "analog" and futures is None:
            raise ValueError("the analog bound needs futures of the fill (e.g. a fitted FillPath)")
        self.truth = truth
        self.futures = futures
        self.mode = mode
        self.draws = draws
        self.seed = seed
        self.level = level

    def get_params(self) -> dict[str, Any]:
        return {"mode": self.mode, "draws": self.draws, "seed": self.seed, "level": self.level}

    def bind(self, series_name: str, origin: pd.Timestamp) -> None:
        self.plate_ = series_name.rsplit("/", 1)[-1]
        if self.plate_ not in self.truth.kernels:
            raise ValueError(f"series {series_name!r} is no settlement plate of this site")

    def fit(self, t: np.ndarray, y: np.ndarray, drivers: Drivers | None = None) -> OracleForecaster:
        if not hasattr(self, "plate_"):
            raise ValueError("OracleForecaster needs bind(series_name, origin) before fit")
        self.cutoff_ = float(np.asarray(t, dtype=np.float64)[-1])
        self.history_ = (np.asarray(t, dtype=np.float64), dict(drivers or {}))
        return self

    def _analog_fills(self, last: int, days: int) -> np.ndarray:
        """(A, n) the actual fill up to step `last`, then held plus each analog's daily
        increments, spread linearly over their day (day j's increment is reached in full
        ``j * steps_day`` steps after `last`)."""
        tr = self.truth
        assert self.futures is not None
        t, drivers = self.history_
        if "load" not in drivers:
            raise ValueError("the analog bound reads the load driver of the history")
        inc = self.futures.analogs(t, drivers["load"], days)  # (A, days)
        held = tr.fill.copy()
        held[last + 1 :] = tr.fill[last]
        if inc.shape[0] == 0:
            return held[None, :]
        x = np.clip((np.arange(tr.n) - last) / tr.steps_day, 0.0, float(days))  # (n,) days after
        cum = np.concatenate([np.zeros((inc.shape[0], 1)), np.cumsum(inc, axis=1)], axis=1)
        grid = np.arange(days + 1.0)  # (days + 1,)
        add = np.stack([np.interp(x, grid, c) for c in cum])  # (A, n); 0 up to the cutoff
        return held[None, :] + add

    def predict(self, t_future: np.ndarray) -> Forecast:
        tr = self.truth
        tf = np.asarray(t_future, dtype=np.float64)
        last = round((self.cutoff_ + 1.0) * tr.steps_day) - 1
        # one stream per (seed, cutoff): every plate of a site sees the same futures
        rng = np.random.default_rng([self.seed, round(self.cutoff_ * 24)])
        if self.mode == "analog":
            days = int(np.ceil(float(np.max(tf)) - self.cutoff_)) + 2
            fills = self._analog_fills(last, days)  # (A, n)
        else:
            fills = tr.fill_futures(last, self.mode, self.draws, rng)  # (m, n)
        base = tr.signal[self.plate_].to_numpy(dtype=np.float64)  # (n,) actual, noise-free
        shift = tr.response(self.plate_, fills) - tr.rebuild(self.plate_)[None, :]  # (m, n)
        paths = daily_means(base[None, :] + shift, tr.steps_day)  # (m, days)
        idx = np.clip(np.round(tf).astype(int), 0, paths.shape[1] - 1)
        at = paths[:, idx]  # (m, H)
        a = (1.0 - self.level) / 2.0
        return Forecast(
            t=tf,
            prediction=np.median(at, axis=0),
            lower=np.quantile(at, a, axis=0),
            upper=np.quantile(at, 1.0 - a, axis=0),
            level=self.level,
            method=f"oracle_{self.mode}",
        )
