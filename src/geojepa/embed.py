"""Frozen embeddings of a site from a trained run (the TARGET encoder), and their files.

`embed_frame(run, frame)` cuts the frame into windows with the run's geometry (stride
overridable), encodes every window with the target encoder over all its tokens and returns
per-window vectors (mean over valid tokens), per-sensor vectors (mean over the sensor's
valid patches) and each sensor's last valid patch, with each window's start time.

Guarantees:

- the normaliser is the run's own when the frame's sensors were in a training site; for an
  unseen site it is fitted on the frame's rows before `fit_end` (default: all rows), and the
  choice is logged;
- windows with too little observed data are skipped (counted, logged), never padded with
  invented values; a sensor without any valid patch in a window gets a zero vector and
  `sensor_observed` False;
- the model is used in eval mode under no_grad; nothing is written unless asked
  (`write_embeddings`, atomic; Parquet, .npz or CSV by suffix);
- `device` ("cpu" by default, "auto", "cuda", "cuda:N"; `geojepa.devices`) is where the
  windows are encoded; the run's model is back on the device it came on afterwards, and
  the arrays returned are NumPy arrays whatever the device.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from geojepa.atomic import atomic_path
from geojepa.checkpoint import LoadedRun
from geojepa.errors import InputError
from geojepa.frame import SensorFrame, to_frame
from geojepa.site import Site
from geojepa.windows import Normaliser, WindowDataset

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

SUFFIXES: tuple[str, ...] = (".parquet", ".npz", ".csv")


@dataclass(frozen=True)
class Embeddings:
    """Per-window embeddings. N windows, C sensors, D width."""

    starts: np.ndarray  # (N,) datetime64[ns] UTC: first grid time of each window
    vectors: np.ndarray  # (N, D) float32: mean over the window's valid tokens
    per_sensor: np.ndarray  # (N, C, D) float32: mean over each sensor's valid patches
    last: np.ndarray  # (N, C, D) float32: each sensor's last valid patch (the freshest state)
    sensor_observed: np.ndarray  # (N, C) bool: the sensor has a valid patch in the window
    sensor_ids: tuple[str, ...]
    start_index: np.ndarray  # (N,) int64: grid index of each window start
    scales: np.ndarray  # (N,) int64: grid steps per window step

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    def table(self) -> pd.DataFrame:
        """One row per window: start, scale, e0..e{D-1}."""
        d = self.vectors.shape[1] if self.vectors.ndim == 2 else 0
        df = pd.DataFrame(self.vectors, columns=[f"e{i}" for i in range(d)])
        df.insert(0, "scale", self.scales)
        df.insert(0, "start", pd.DatetimeIndex(self.starts).tz_localize("UTC"))
        return df


def normaliser_for(run: LoadedRun, frame: SensorFrame, fit_end: int | None = None) -> Normaliser:
    """The run's normaliser for these sensors, or one fitted on this frame (logged)."""
    rec = run.site_record(frame.sensor_ids)
    if rec is not None:
        return rec.normaliser
    log.warning(
        "embed: sensors unknown to the run's training sites; fitting a normaliser on this "
        "site's rows before index %s",
        fit_end if fit_end is not None else frame.n_times,
    )
    return Normaliser.fit(frame, fit_end)


def embed_frame(
    run: LoadedRun,
    frame: SensorFrame,
    stride: int | None = None,
    *,
    batch_size: int = 64,
    start: int = 0,
    end: int | None = None,
    fit_end: int | None = None,
    device: str | None = "cpu",
) -> Embeddings:
    """Embed every window of `frame` in grid rows [start, end) with the target encoder."""
    from geojepa.devices import resolve_device

    dev = resolve_device(device)
    home = next(run.model.parameters()).device
    try:
        return _embed_frame(run, frame, stride, batch_size, start, end, fit_end, dev)
    finally:
        run.model.to(home)


def _embed_frame(
    run: LoadedRun,
    frame: SensorFrame,
    stride: int | None,
    batch_size: int,
    start: int,
    end: int | None,
    fit_end: int | None,
    dev: torch.device,
) -> Embeddings:
    import torch

    from geojepa.masking import full_batch

    if stride is not None and stride < 1:
        raise InputError(f"stride {stride} must be >= 1", hint="use e.g. --stride 16")
    spec = run.config.window if stride is None else replace(run.config.window, stride=stride)
    ds = WindowDataset(frame, normaliser_for(run, frame, fit_end), spec, start, end)
    model = run.model.to(dev)
    model.eval()
    c, d = frame.n_sensors, int(run.config.model.dim)
    n = len(ds)
    vectors = np.zeros((n, d), dtype=np.float32)
    per_sensor = np.zeros((n, c, d), dtype=np.float32)
    last = np.zeros((n, c, d), dtype=np.float32)
    seen = np.zeros((n, c), dtype=bool)
    from geojepa.progress import Progress

    # shown by a command (`geojepa.progress.shown`), quiet when a benchmark calls it
    with torch.no_grad(), Progress("embed (windows)", n, enabled=None) as bar:
        for lo in range(0, n, batch_size):
            hi = min(lo + batch_size, n)
            batch = full_batch([ds[i] for i in range(lo, hi)], spec.patch)
            # back on the CPU: the sums and the arrays below are the same on every device
            tokens = model.embed(batch.to(dev)).cpu()  # (b, C, P, D)
            valid = batch.token_valid.reshape(tokens.shape[:3]).to(tokens.dtype)  # (b, C, P)
            count = valid.sum(dim=2)  # (b, C)
            sens = tokens.sum(dim=2) / count.clamp_min(1.0)[..., None]  # (b, C, D)
            pooled = tokens.sum(dim=(1, 2)) / valid.sum(dim=(1, 2)).clamp_min(1.0)[:, None]
            vectors[lo:hi] = pooled.float().numpy()
            per_sensor[lo:hi] = sens.float().numpy()
            seen[lo:hi] = (count > 0).numpy()
            p = valid.shape[2]
            order = torch.arange(p, dtype=tokens.dtype)  # (P,)
            newest = (valid * (order + 1)).argmax(dim=2)  # (b, C) last valid patch
            pick = newest[..., None, None].expand(-1, -1, 1, tokens.shape[-1])
            last[lo:hi] = tokens.gather(2, pick)[:, :, 0].float().numpy()  # (b, C, D)
            bar.advance(hi - lo)
    step = np.timedelta64(int(frame.interval.value), "ns")
    t0 = frame.time[0].astype("datetime64[ns]") if frame.n_times else np.datetime64(0, "ns")
    starts = t0 + step * ds.starts
    log.info("embed: %d windows (%d skipped for missing data)", n, ds.skipped)
    return Embeddings(
        starts=np.asarray(starts, dtype="datetime64[ns]"),
        vectors=vectors,
        per_sensor=per_sensor,
        last=last,
        sensor_observed=seen,
        sensor_ids=tuple(frame.sensor_ids),
        start_index=ds.starts.copy(),
        scales=ds.scales_of.copy(),
    )


def site_frame(run: LoadedRun, site: Site) -> SensorFrame:
    """`site` on the run's grid interval (grid starting at its first reading)."""
    return to_frame(site, interval=run.interval)


def embed_site(
    run: LoadedRun, site: Site, stride: int | None = None, device: str | None = "cpu"
) -> Embeddings:
    """`embed_frame` on the site put on the run's grid (on `device`).

    For a site the run never saw, the normaliser is fitted on the readings before the run's
    training end when the site has any there, else on all of them.
    """
    frame = site_frame(run, site)
    fit_end = None
    if run.site_record(frame.sensor_ids) is None:
        cut = frame.index_of(run.train_end)
        fit_end = cut if cut > 0 else None
    return embed_frame(run, frame, stride, fit_end=fit_end, device=device)


def write_embeddings(emb: Embeddings, path: str | Path) -> None:
    """Write `emb` by suffix: .parquet / .csv (start, scale, e0..), .npz (all arrays)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(
            f"unknown output type {p.suffix!r}",
            file=p,
            hint="name the file .parquet, .npz or .csv",
        )
    with atomic_path(p) as tmp:
        if suffix == ".npz":
            with tmp.open("wb") as f:
                np.savez_compressed(
                    f,
                    starts=emb.starts.astype("datetime64[ns]"),
                    vectors=emb.vectors,
                    per_sensor=emb.per_sensor,
                    last=emb.last,
                    sensor_observed=emb.sensor_observed,
                    sensor_ids=np.asarray(emb.sensor_ids, dtype=str),
                    start_index=emb.start_index,
                    scales=emb.scales,
                )
        elif suffix == ".parquet":
            emb.table().to_parquet(tmp, index=False)
        else:
            table = emb.table()
            table["start"] = table["start"].map(lambda t: t.isoformat())
            table.to_csv(tmp, index=False)
