"""Score a site with a trained run: the library side of ``geojepa detect RUN SITE``.

`detect_run(run_dir, site, start=None, end=None) -> Scores` loads the run, puts the site
on the run's grid (its sensors, in the run's order), calibrates the energy thresholds on
the run's TRAINING PERIOD only (grid rows before the run's ``train_end``) and scores the
requested range through the one scoring path shared with the edge scorer
(`geojepa.export.TorchEngine` + `fit_calibration` + `geojepa.edge.score.score_with`).

Guarantees: one output row per grid time in ``[start, end]`` (both inclusive; None = the
site's first / last grid time); windows that end in the range still read up to one
window of history before it, so a range's scores equal the same rows of a whole-site run
where the alarm state has settled (rows up to one scoring stride after ``end`` are read,
since the window that scores the range's last rows ends there); no row at or after ``train_end`` influences the
thresholds; a site without the run's sensors, without rows before ``train_end`` or a
range holding no grid time raises `InputError` saying what to do.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from geojepa.density_score import DensityModel, fit_density
from geojepa.edge.score import Calibration, Scores
from geojepa.energy import EnergySpec
from geojepa.errors import InputError
from geojepa.frame import SensorFrame, to_frame
from geojepa.site import Site

if TYPE_CHECKING:
    import torch

    from geojepa.checkpoint import LoadedRun
    from geojepa.export import TorchEngine

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_SCORE",
    "SCORES",
    "DetectSetup",
    "detect_run",
    "parse_time",
    "prepare_detect",
    "write_scores",
]

SCORES: tuple[str, ...] = ("energy", "density")
"""What `detect` scores: the JEPA energy (latent prediction error under the mask sweep) or
the density of the target encoder's embeddings (`geojepa.density_score`)."""
DEFAULT_SCORE = "energy"


def parse_time(text: str | None, option: str) -> pd.Timestamp | None:
    """An ISO 8601 time (naive = UTC) -> UTC Timestamp; None stays None."""
    if text is None:
        return None
    try:
        t = pd.Timestamp(text)
    except (ValueError, TypeError):
        raise InputError(
            f"{option}: {text!r} is not a time",
            hint=f"use ISO 8601, e.g. {option} 2024-05-01T00:00",
        ) from None
    if t is pd.NaT:
        raise InputError(f"{option}: {text!r} is not a time", hint="use ISO 8601")
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


@dataclass(frozen=True)
class DetectSetup:
    """A site on a run's grid with the training-period calibration of the energy."""

    frame: SensorFrame
    train_end: int  # first grid row at or after the run's training end
    calibration: Calibration
    density: DensityModel | None = None  # the embedding density, when it is the score


def _site_frame(run_interval: pd.Timedelta, sensor_ids: list[str], site: Site) -> SensorFrame:
    known = {str(s) for s in site.sensor_ids}
    missing = [s for s in sensor_ids if s not in known]
    if missing:
        raise InputError(
            f"the site lacks {len(missing)} sensor(s) the run was trained on "
            f"(first: {missing[0]!r})",
            hint="score the site the run was trained on, or one with the same sensor ids",
        )
    return to_frame(site, interval=run_interval, sensor_ids=sensor_ids)


def prepare_detect(
    run: LoadedRun,
    site: Site,
    spec: EnergySpec | None = None,
    score: str = DEFAULT_SCORE,
    device: torch.device | None = None,
    engine: TorchEngine | None = None,
) -> DetectSetup:
    """Grid SITE for a loaded run and fit the calibration on rows before its train_end.
    `score`: "energy" or "density" (`SCORES`); the density is fitted on the embeddings of
    training windows (rows before train_end) only, and its thresholds on cross-fitted
    training scores (`geojepa.density_score.fit_density`). `device`: where the model runs
    (None: where it is; the run's model is moved there); `engine`: the run's engine to use
    instead of a new one (`detect_run` shares one, with its memo, with the scoring)."""
    if score not in SCORES:
        raise InputError(f"unknown score {score!r}", hint="use " + " or ".join(SCORES))
    from geojepa.export import TorchEngine, fit_calibration

    sensor_ids = [str(s) for s in run.normaliser.sensor_ids]
    frame = _site_frame(run.interval, sensor_ids, site)
    train_end = frame.index_of(run.train_end)
    if train_end < 2:
        raise InputError(
            f"the site has {train_end} grid rows before the run's training end "
            f"{run.train_end.isoformat()}; thresholds are calibrated on that period only",
            file=run.run_dir,
            hint="score the site the run was trained on (it holds the training period)",
        )
    engine = engine if engine is not None else TorchEngine(run.model.eval(), device)
    window = run.config.window
    density, train_raw = None, None
    if score == "density":
        train = frame.slice_time(0, train_end)  # later rows never reach the fit
        density, train_raw = fit_density(engine, train, run.normaliser, window)
    calibration = fit_calibration(
        engine,
        frame,
        run.normaliser,
        window,
        spec or EnergySpec(),
        train_end,
        density=density,
        train_raw=train_raw,
    )
    return DetectSetup(frame, train_end, calibration, density)


def detect_run(
    run_dir: str | Path,
    site: Site,
    start: pd.Timestamp | str | None = None,
    end: pd.Timestamp | str | None = None,
    spec: EnergySpec | None = None,
    score: str = DEFAULT_SCORE,
    device: str | None = "cpu",
) -> Scores:
    """Scores and TARP levels of every grid time of `site` in ``[start, end]``; `score`
    "energy" (the latent prediction error) or "density" (the embedding density). `device`
    ("cpu", "auto", "cuda", "cuda:N"; `geojepa.devices`): where the networks run; the
    thresholds, alarms and the CSV are computed on the CPU from their outputs."""
    from geojepa.checkpoint import load_run
    from geojepa.devices import resolve_device
    from geojepa.edge.score import score_with
    from geojepa.export import TorchEngine

    spec = spec or EnergySpec()
    dev = resolve_device(device)
    run = load_run(run_dir)
    engine = TorchEngine(run.model.eval(), dev)
    # the windows of the training period are scored for the thresholds, then again when
    # the range holds them: the memo scores each window once (the same inputs, the same
    # energy; per-window on the CPU, so bit for bit)
    engine.energy_memo = {}
    setup = prepare_detect(run, site, spec, score, engine=engine)
    frame = setup.frame
    a = 0 if start is None else frame.index_of(start)
    times = frame.time
    if end is None:
        b = frame.n_times
    else:
        ts = pd.Timestamp(end)
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        b = int(np.searchsorted(times, ts.tz_localize(None).to_datetime64(), side="right"))
    if a >= b:
        raise InputError(
            f"no grid time of the site lies in the range {start or 'its start'} .. "
            f"{end or 'its end'}",
            hint=f"the site spans {frame.times()[0].isoformat()} .. "
            f"{frame.times()[-1].isoformat()}",
        )
    window = run.config.window
    history = window.span(window.scales[0]) + max(spec.stride(window), window.patch)
    lo = max(a - history, 0)  # scored windows ending in the range read their history
    # the window scoring the range's last rows may end up to one stride after it: read
    # those rows too (when the site has them) so `--to` does not make the data end early
    hi = min(b + spec.stride(window), frame.n_times)
    part = frame.slice_time(lo, hi)
    scores = score_with(
        engine,
        part,
        run.normaliser,
        window,
        spec,
        setup.calibration,
        setup.density,
    )
    k = a - lo
    log.info("scored %d grid times (%d rows of history before the range)", b - a, k)
    n = b - a
    return Scores(
        scores.time[k : k + n],
        scores.score[k : k + n],
        scores.sensor[k : k + n],
        scores.level[k : k + n],
        scores.sensor_ids,
    )


def write_scores(scores: Scores, out: str | Path) -> None:
    """Write the scores CSV of ``geojepa detect`` (whole or not at all)."""
    from geojepa.edge.score import write_scores_csv

    write_scores_csv(scores, out)
