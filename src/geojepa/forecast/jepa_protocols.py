"""GeoJEPA methods for the forecasting protocols: what each learned forecaster may read.

Method factories for `geojepa.forecast.protocols` (real data) and
`geojepa.forecast.simulated` (simulated sites), beside the classic ones:

- plates: the plate (settlement + fill height) on a daily grid; training tracks are the
  other plates the protocol hands over (leave one plate out);
- wells: the well (head + rain, evaporation, temperature) on a daily grid; training tracks
  are the other wells the protocol hands over (cut before the held-out well's test period);
  features may differ per well (a run pretrained on the four others);
- simulated embankments: the whole site on a daily grid (every sensor, the fill height
  included) with the target's column; training tracks are the settlement sensors of other
  simulated sites (whole records) and, cut at the cutoff, the other settlement sensors of
  the same site;
- simulated creep: a time-of-failure head (`failure_protocol_jepa`) trained on creep events
  of other simulated slopes.

Guarantees: every learned method sees the evaluated history only up to the cutoff (the
harness truncates it; `JepaForecaster` cuts its tracks at the history's end); records of
the same site after the cutoff are never training data (a simulated pool site is never
forecast); the true failure times of the evaluated slopes are used to choose cutoffs and
to score only (no training event comes from an evaluated slope; both checked by name).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from geojepa.forecast.classic import Fukuzono
from geojepa.forecast.evaluate import MethodFactory, Series, truncate
from geojepa.forecast.features import EncoderFeatures
from geojepa.forecast.heads import RidgeHead
from geojepa.forecast.learned import JepaForecaster, SampleBank
from geojepa.forecast.simulated import CreepCase
from geojepa.forecast.tracks import Track, frame_track, series_track
from geojepa.frame import SensorFrame, to_frame
from geojepa.site import Sensor, Site, sensors_frame

log = logging.getLogger(__name__)

PLATE_ANCHORS: tuple[float, ...] = (7, 14, 30, 60, 90, 180, 270, 365, 540, 730)
GW_ANCHORS: tuple[float, ...] = (1, 7, 30)
SIM_ANCHORS: tuple[float, ...] = (7, 30, 90)
DAY = pd.Timedelta("1D")

Features = EncoderFeatures | Mapping[str, EncoderFeatures]


def plate_layout(name: str) -> pd.DataFrame:
    """Sensors of a plate's track: the plate (settlement) and its fill height (load)."""
    return sensors_frame(
        [Sensor(name, "settlement", "mm", group=name), Sensor("surcharge", "load", "m", group=name)]
    )


def gw_layout(name: str) -> pd.DataFrame:
    """Sensors of a well's track: head (piezometer) and its daily forcing."""
    return sensors_frame(
        [
            Sensor(name, "piezometer", "m", group=name),
            Sensor("rain", "rain_gauge", "mm", group="forcing"),
            Sensor("evaporation", "other", "mm", group="forcing"),
            Sensor("temperature", "thermometer", "degC", group="forcing"),
        ]
    )


class SeriesTracks:
    """Tracks of whole training series, built once per series name (stable objects, so
    their samples are computed once)."""

    def __init__(self, layout: Any) -> None:
        self.layout = layout
        self._memo: dict[tuple[str, int, float], Track] = {}

    def __call__(self, series: Sequence[Series]) -> list[Track]:
        out = []
        for s in series:
            key = (s.name, int(s.t.size), float(s.t[-1]) if s.t.size else 0.0)
            if key not in self._memo:
                self._memo[key] = series_track(s, self.layout(s.name), origin=s.origin)
            out.append(self._memo[key])
        return out


def _head_factories(
    features: Mapping[str, Features],
    heads: Sequence[str],
    build: Callable[[Features, str, SampleBank, Sequence[Series]], JepaForecaster],
) -> dict[str, MethodFactory]:
    """One factory ``<prefix>_<head>`` per features and head; the heads of one features
    share a `SampleBank` (their samples are computed once). `build(feats, head, bank,
    training_series)` makes the forecaster."""
    out: dict[str, MethodFactory] = {}
    for prefix, feats in features.items():
        bank = SampleBank()
        for head in heads:

            def make(
                training: Sequence[Series],
                feats: Features = feats,
                head: str = head,
                bank: SampleBank = bank,
            ) -> JepaForecaster:
                return build(feats, head, bank, training)

            out[f"{prefix}_{head}"] = make
    return out


def series_methods(
    features: Mapping[str, Features],
    layout: Any,
    horizons: Sequence[float],
    stride: float,
    heads: Sequence[str] = ("ridge", "mlp"),
    seed: int = 0,
    base: str | None = None,
) -> dict[str, MethodFactory]:
    """Factories ``<name>_<head>`` for series whose context is their own drivers.

    `features`: method-name prefix -> features (e.g. ``{"jepa": ..., "level": ...}``);
    `layout(name)` the sensors table of a series' track; `base`: a classic base forecast
    whose residual the heads learn (`geojepa.forecast.hybrid`), None for none.
    """
    tracks = SeriesTracks(layout)

    def build(
        feats: Features, head: str, bank: SampleBank, training: Sequence[Series]
    ) -> JepaForecaster:
        return JepaForecaster(
            feats,
            lambda h: series_track(h, layout(h.name), origin=h.origin),
            tracks(training),
            horizons=horizons,
            stride=stride,
            head=head,
            seed=seed,
            bank=bank,
            base=base,
        )

    return _head_factories(features, heads, build)


# --------------------------------------------------------------------------- simulated sites
def daily_frame(site: Site) -> SensorFrame:
    """Daily means of every sensor; row r is the day whose mean is stamped r days after the
    first stamp (`geojepa.forecast.simulated.daily_series` convention: row r is t = r)."""
    start = pd.Timestamp(site.readings["timestamp"].min()).floor("1D")
    return to_frame(site, interval=DAY, start=start)


@dataclass(frozen=True)
class SimContext:
    """Daily frames of simulated sites by name, and the kind (or kinds) of sensor forecast:
    the pool's training tracks and a site's other tracks are the sensors of those kinds."""

    frames: Mapping[str, SensorFrame]
    kind: str | tuple[str, ...] = "settlement"

    def ids(self, site: str) -> list[str]:
        f = self.frames[site]
        kinds = (self.kind,) if isinstance(self.kind, str) else self.kind
        return [
            str(i) for i, k in zip(f.sensors["id"], f.sensors["kind"], strict=True) if k in kinds
        ]

    def track(self, name: str) -> Track:
        """Track of series ``site/sensor``."""
        site, sensor = name.split("/", 1)
        return frame_track(self.frames[site], sensor, 0.0, name=name)

    def tracks(self, sites: Sequence[str]) -> list[Track]:
        return [self.track(f"{s}/{i}") for s in sites for i in self.ids(s)]

    def others(self, name: str) -> list[Track]:
        """The same site's other sensors of the kind (to be cut at the cutoff)."""
        site, sensor = name.split("/", 1)
        return [self.track(f"{site}/{i}") for i in self.ids(site) if i != sensor]


def sim_methods(
    features: Mapping[str, Features],
    context: SimContext,
    pool: Sequence[str],
    horizons: Sequence[float] = SIM_ANCHORS,
    stride: float = 7.0,
    heads: Sequence[str] = ("ridge", "mlp"),
    same_site: bool = True,
    seed: int = 0,
    base: str | None = None,
) -> dict[str, MethodFactory]:
    """Factories for simulated series named ``site/sensor`` (the harness's training
    series are ignored: the pool sites and the same site's other sensors are used);
    `base` as in `series_methods`. Forecasting a series of a pool site is refused."""
    training = context.tracks(pool)
    pooled = set(pool)

    def track_of(h: Series) -> Track:
        site = h.name.split("/", 1)[0]
        if site in pooled:  # its whole record, after the cutoff too, would be training data
            raise ValueError(f"series {h.name!r} is of site {site!r}, one of the pool's")
        return context.track(h.name)

    def build(feats: Features, head: str, bank: SampleBank, _: Sequence[Series]) -> JepaForecaster:
        return JepaForecaster(
            feats,
            track_of,
            training,
            context_of=(lambda h: context.others(h.name)) if same_site else None,
            horizons=horizons,
            stride=stride,
            head=head,
            seed=seed,
            bank=bank,
            base=base,
        )

    return _head_factories(features, heads, build)


# --------------------------------------------------------------------------- time of failure
TRAIN_FRACTIONS: tuple[float, ...] = tuple(
    float(f) for f in np.round(np.arange(0.3, 0.96, 0.05), 2)
)


def _case_rows(
    case: CreepCase, track: Track, fractions: Sequence[float]
) -> list[tuple[float, int]]:
    out = []
    for f in fractions:
        cutoff = case.onset + f * (case.end - case.onset)
        r = track.row_of(cutoff)
        if 0 <= r < track.n_rows:
            out.append((float(f), r))
    return out


FUKUZONO_WINDOW = 14.0
FUKUZONO_SPAN = 3.0
MAX_DAYS = 365.0


def fukuzono_features(series: Series, t_cut: float) -> np.ndarray:
    """(2,) Fukuzono's estimate from `series` up to `t_cut` as head features: whether it
    predicts a failure after the cutoff (0/1), and log of its days to it (clipped to
    0.5..`MAX_DAYS`; 0 when none). Fitted as the ``fukuzono`` row of the failure table
    (the last `FUKUZONO_WINDOW` days, velocities over `FUKUZONO_SPAN` days), no bootstrap."""
    hist = truncate(series, t_cut)
    if np.isfinite(hist.y).sum() < 5:
        return np.zeros(2)
    model = Fukuzono(window=FUKUZONO_WINDOW, span=FUKUZONO_SPAN, n_boot=0).fit(hist.t, hist.y)
    days = float(model.time_of_failure_) - t_cut
    if not np.isfinite(days) or days <= 0:
        return np.zeros(2)
    return np.array([1.0, float(np.log(np.clip(days, 0.5, MAX_DAYS)))])


def failure_protocol_jepa(
    features: Mapping[str, EncoderFeatures],
    context: SimContext,
    train_cases: Sequence[CreepCase],
    cases: Sequence[CreepCase],
    fractions: Sequence[float] = (0.5, 0.7, 0.9),
    train_fractions: Sequence[float] = TRAIN_FRACTIONS,
    level: float = 0.9,
    fukuzono: bool = False,
) -> pd.DataFrame:
    """Time of failure from a ridge on features at the cutoff, trained on `train_cases`.

    Target: log(days from the cutoff's grid row to the simulator's failure time), at
    `train_fractions` of each training event. The ridge's penalty is chosen by group K-fold
    with one group per training event (its cutoffs are near-copies of one another: a
    leave-one-out penalty would be too small for a new event). Prediction: row time +
    exp(ridge); band: exp of the out-of-group residual quantiles. Same columns as
    `geojepa.forecast.simulated.failure_protocol_sim` (method ``<prefix>_tof``).
    `fukuzono`: the hybrid, whose ridge also reads Fukuzono's own estimate at the cutoff
    (`fukuzono_features`, from the record's readings up to the cutoff row's time).
    A training event on a site of `cases` is refused (its failure time would train the head).
    """
    shared = sorted({c.site for c in train_cases} & {c.site for c in cases})
    if shared:
        raise ValueError(f"training events on evaluated sites {shared}: use other slopes")
    rows: list[dict[str, Any]] = []

    def extra(c: CreepCase, times: np.ndarray) -> np.ndarray:
        if not fukuzono:
            return np.zeros((times.size, 0))
        return np.stack([fukuzono_features(c.series, float(t)) for t in times])  # (n, 2)

    for prefix, feats in features.items():
        xs, ys, gs = [], [], []
        for i, c in enumerate(train_cases):
            tr = context.track(f"{c.site}/{c.sensor}")
            pts = _case_rows(c, tr, train_fractions)
            if not pts:
                continue
            r = np.array([p[1] for p in pts])
            fx = feats.at(tr, r)
            t_row = tr.times()[r]
            keep = fx.ok & (c.failure - t_row > 0)
            xs.append(np.concatenate([fx.x, extra(c, t_row)], axis=1)[keep])
            ys.append(np.log(c.failure - t_row[keep]))
            gs.append(np.full(int(keep.sum()), i))
        x, y, g = np.concatenate(xs), np.concatenate(ys), np.concatenate(gs)
        head = RidgeHead(level=level).fit(x, y[:, None], groups=g)
        log.info("%s time of failure: %d training cutoffs", prefix, x.shape[0])
        lo_q, hi_q = head.band_[0]
        for c in cases:
            tr = context.track(f"{c.site}/{c.sensor}")
            for frac, row in _case_rows(c, tr, fractions):
                cut = tr.cut(float(tr.times()[row]))  # nothing after the cutoff row
                ft = feats.at(cut, np.array([row]))
                t_cut = float(cut.times()[row])
                if not ft.ok[0]:
                    pred = lo = hi = float("inf")
                else:
                    x_now = np.concatenate([ft.x, extra(c, np.array([t_cut]))], axis=1)
                    u = float(head.predict(x_now)[0, 0])
                    pred, lo, hi = (t_cut + float(np.exp(u + d)) for d in (0.0, lo_q, hi_q))
                rows.append(
                    {
                        "site": c.site,
                        "sensor": c.sensor,
                        "fraction": frac,
                        "cutoff": c.onset + frac * (c.end - c.onset),
                        "method": f"{prefix}_tof",
                        "predicted": pred,
                        "lower": lo,
                        "upper": hi,
                        "failure": c.failure,
                        "error": pred - c.failure,
                        "fallback": "" if ft.ok[0] else "no reading in the window",
                    }
                )
    return pd.DataFrame(rows)
