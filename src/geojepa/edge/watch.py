"""Follow a growing logger file and report scores and alarms as each grid time completes.

`watch` reads FILE with `LineFollower` (a partial last line is waited for), parses it with
`StreamParser`, keeps the last window in a `GridRing` and, whenever an aligned scoring
point completes (`geojepa.energy.scored_ends`' rule: absolute cell k with (k + 1) a
multiple of the model's stride), scores that window with the same shared code as
``geojepa detect`` and emits one JSON line per grid time it covers. The score is the
bundle's: the energy (`geojepa.energy.window_energy`, stride `recent` patches), or for a
density bundle the embedding density of each sensor's newest patch
(`geojepa.density_score.window_embeddings` and `DensityModel.score`, stride one patch, the
windows `geojepa.density_score.frame_density` scores; cells without a reading get null,
as there):

    {"timestamp": ISO UTC, "score": float|null, "alarm": "green|amber|red"|null,
     "changed": bool, "sensors": [ranked ids when amber or red], "scores": {id: float|null}}

A grid time without a score has no alarm level ("alarm": null, "sensors": []; the TARP
state holds through it, as in ``detect``, whose CSV leaves that cell empty). The model's
sensors without a reading so far are named in a warning when the first window is scored,
and in the summary (``stream: {..., 'absent_sensors': [...]}``) at the end.

Guarantees: memory is bounded by the ring (history x sensors) and one batch of lines,
whatever the stream's length; alarm levels come from one `AlarmTracker` stepped in grid
order (the same hysteresis and attribution as ``detect``); with ``once=True`` the file is
read to its end and the last, partial stride is scored as ``score`` scores it (by the
window ending at the newest cell), so the lines equal the rows of ``geojepa-edge score``
for a time-ordered file.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np
import pandas as pd

from geojepa.density_score import window_embeddings
from geojepa.edge.score import EdgeModel, alarm_label, json_line, ranked
from geojepa.edge.stream import GridRing, LineFollower, StreamParser, StreamStats
from geojepa.energy import window_energy
from geojepa.frame import SensorFrame
from geojepa.windows import window_at

log = logging.getLogger(__name__)

# a reading timed further ahead of the gateway's clock than this is a clock error (a logger's
# clock set to the wrong zone is at most 14 h ahead)
DEFAULT_MAX_AHEAD = pd.Timedelta("1D")


@dataclass(frozen=True)
class WatchResult:
    """What a watch run did: grid times emitted, windows scored, seconds, stream counters
    (`stats.absent_sensors`: the model's sensors never read), and the grid times emitted
    without a score (their alarm null)."""

    emitted: int
    windows: int
    seconds: float
    stats: StreamStats
    unscored: int = 0


class Watcher:
    """The scoring state of one stream: ring, alarm tracker and emitter."""

    def __init__(
        self,
        model: EdgeModel,
        emit: Callable[[str], None],
        stats: StreamStats,
        source: str | Path = "stream",
    ) -> None:
        self.model = model
        self.source = str(source)  # the file followed, for messages
        self.emit = emit
        self.ring = GridRing(len(model.sensor_ids), model.meta.interval, model.history, stats)
        self.tracker = model.tracker()
        self.sensors = model.meta.sensors_frame()
        self.stride = model.stride
        self.scale = model.window.scales[0]
        self.stats = stats
        self.emitted = 0
        self.unscored = 0  # grid times emitted without a score (no alarm level)
        self.windows = 0
        self._warned_absent = False

    def on_closed(self, k: int) -> None:
        """Cell k is closed; score if it ends an aligned stride."""
        if (k + 1) % self.stride:
            return
        self._score(k, k - self.stride + 1)

    def _raw(self, frame: SensorFrame) -> np.ndarray:
        """Raw scores (stride, C) of the last `stride` cells of `frame` (the ring's window
        ending at the cell being scored): the energy of its recent patches, or the density
        of each sensor's last patch, NaN on cells without a reading (as
        `geojepa.density_score.spread` leaves them)."""
        m = self.model
        win = window_at(frame, m.normaliser, m.window, frame.n_times, scale=self.scale)
        if m.density is not None:
            emb = window_embeddings(m.engine, [win], m.window.patch)  # (1, C, D)
            raw = np.repeat(m.density.score(emb), self.stride, axis=0)  # (1, C) -> (stride, C)
            return np.where(frame.observed[-self.stride :], raw, np.nan)
        energy = window_energy(m.engine, win, m.window.patch, m.energy)  # (C, recent)
        return np.repeat(energy, m.window.patch * self.scale, axis=1).T  # (stride, C)

    def _score(self, k: int, emit_from: int) -> None:
        """Score the window ending at cell k; emit grid times emit_from .. k."""
        m = self.model
        if not self._warned_absent and self.stats.absent_sensors:
            self._warned_absent = True  # once: the summary at the end lists them again
            log.warning(
                "%s: no reading yet of %d of the model's %d sensors (%s): their scores are "
                "null and the per-time score reads the others only",
                self.source,
                len(self.stats.absent_sensors),
                len(m.sensor_ids),
                ", ".join(self.stats.absent_sensors),
            )
        frame = self.ring.frame(k, self.sensors, m.meta.interval)  # (history, C)
        raw = self._raw(frame)  # (stride, C)
        sensor = m.calibration.sensor_scores(raw)  # (stride, C): cells k - stride + 1 .. k
        per_time = m.calibration.per_time(sensor)  # (stride,)
        self.windows += 1
        first = self.ring.first if self.ring.first is not None else k
        interval = int(m.meta.interval.value)
        for i, cell in enumerate(range(k - self.stride + 1, k + 1)):
            if cell < first or cell < emit_from:
                continue  # before the stream began, or already emitted
            row = sensor[i]
            score = float(per_time[i])
            step = self.tracker.step(score)
            alarm = alarm_label(score, step.level)  # None (null): nothing scored this time
            scored = alarm is not None
            if not scored:
                self.unscored += 1
            top = (
                ranked(row, m.sensor_ids, m.calibration.top_k) if scored and step.level > 0 else []
            )
            self.emit(
                json_line(
                    {
                        "timestamp": pd.Timestamp(cell * interval, tz="UTC").isoformat(),
                        "score": score,
                        "alarm": alarm,
                        "changed": bool(step.changed),
                        "sensors": top,
                        "scores": {s: float(v) for s, v in zip(m.sensor_ids, row, strict=True)},
                    }
                )
            )
            self.emitted += 1

    def flush(self) -> None:
        """End of a file: close the open cells and score the last, partial stride with the
        window ending at the newest cell (`geojepa.energy.tail_window_end`'s rule)."""
        current = self.ring.current
        if current is None:
            return
        for k in self.ring.close_through(current):
            self.on_closed(k)
            if k == current and (current + 1) % self.stride:
                # while the ring is suspended at `current`: once past it, the slot of the
                # window's oldest cell is cleared for the next cell and would read empty
                self._score(current, (current // self.stride) * self.stride)


def watch(
    folder: str | Path,
    file: str | Path,
    out: TextIO,
    *,
    fmt: str = "auto",
    tz: str = "UTC",
    sep: str | None = None,
    time_col: str | None = None,
    poll: float = 1.0,
    idle_timeout: float | None = None,
    once: bool = False,
    int8: bool | None = None,
    threads: int = 1,
    stop: Callable[[], bool] | None = None,
    max_ahead: pd.Timedelta | None = DEFAULT_MAX_AHEAD,
) -> WatchResult:
    """Follow FILE and write one JSON line per completed grid time to `out`.

    A reading timed more than `max_ahead` ahead of this machine's clock is a counted bad
    line (None: no such check): one would otherwise close every grid cell up to it."""
    model = EdgeModel.load(folder, int8=int8, threads=threads)
    parser = StreamParser(
        model.sensor_ids,
        file=file,
        fmt=fmt,
        tz=tz,
        sep=sep,
        time_col=time_col,
        strict=False,
        max_ahead=max_ahead,
    )

    def emit(line: str) -> None:
        out.write(line + "\n")
        out.flush()

    watcher = Watcher(model, emit, parser.stats, file)
    follower = LineFollower(file, follow=not once, poll=poll, idle_timeout=idle_timeout, stop=stop)
    t0 = time.perf_counter()
    for batch in follower.batches():
        for k in watcher.ring.add(parser.parse(batch)):
            watcher.on_closed(k)
    if once:
        watcher.flush()
    seconds = time.perf_counter() - t0
    stats = parser.stats
    if stats.absent_sensors and watcher.emitted:
        log.warning(
            "%s: no reading of %d of the model's %d sensors (%s): their scores were null",
            file,
            len(stats.absent_sensors),
            len(model.sensor_ids),
            ", ".join(stats.absent_sensors),
        )
    if watcher.unscored:
        log.warning(
            "%s: %d of %d grid times had no score (no reading of a scored sensor there): "
            "their alarm was null",
            file,
            watcher.unscored,
            watcher.emitted,
        )
    log.info(
        "watch: %d grid times (%d without a score), %d windows scored in %.1f s; stream: %s",
        watcher.emitted,
        watcher.unscored,
        watcher.windows,
        seconds,
        stats.to_dict(),
    )
    return WatchResult(watcher.emitted, watcher.windows, seconds, stats, watcher.unscored)
