"""Score readings with an exported model: numpy, pandas and onnxruntime only.

`EdgeModel.load(DIR)` reads what ``geojepa export`` wrote and checks it; `OnnxEngine` runs
the two graphs behind the `geojepa.energy.TokenEngine` interface, so the raw score is
computed by the same shared code as ``geojepa detect``: the energy for an energy bundle,
the embedding density (`geojepa.density_score`, its ``density.npz`` loaded by
`load_density`) for a bundle of ``geojepa export --score density``, as ``geojepa detect
--score density`` computes it; `score_frame` turns a `SensorFrame` into per-sensor and
per-time scores and TARP levels (`geojepa.alarms`); `write_scores_csv` writes
``timestamp,score,alarm,score:<sensor_id>...``, one row per grid time.

Guarantees: no torch import (nor scikit-learn: the density is scored with numpy);
per-sensor scores are the raw score (the bundle's: energy or density) centred and scaled
by the training-period statistics stored at export, the per-time score is their row
maximum (NaN only where nothing is observed), alarm levels come from one `AlarmTracker`
run over the rows in order, and a grid time without a score gets no alarm label (an
empty cell: `alarm_label`, as in ``geojepa detect``'s CSV, written by the same
`write_scores_csv`); readings of sensors the model does not know are counted and
reported, never silently used or dropped, and the model's sensors without a reading in
the file are named in a warning (`score_file`); bad input is an `InputError` whose advice
names what a gateway can do (`geojepa.edge.hints`); the CSV appears whole or not at all.
"""

from __future__ import annotations

import json
import logging
import math
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from geojepa.alarms import AlarmTracker, Level, TarpPolicy
from geojepa.atomic import atomic_path
from geojepa.density_score import DensityModel, density_stride, frame_density
from geojepa.edge.bundle import META_FILE, SCORE_GRAPHS, DataFile, ExportMeta, load_meta
from geojepa.edge.hints import for_edge
from geojepa.energy import (
    EnergySpec,
    TokenEngine,
    TokenInputs,
    frame_energy,
    scored_row_max,
    with_context,
)
from geojepa.errors import InputError
from geojepa.frame import SensorFrame, to_frame
from geojepa.site import Site
from geojepa.windows import Normaliser, WindowSpec

log = logging.getLogger(__name__)

__all__ = [
    "Calibration",
    "EdgeModel",
    "OnnxEngine",
    "Scores",
    "absent_sensors",
    "alarm_label",
    "alarm_labels",
    "json_line",
    "load_density",
    "score_frame",
    "score_with",
    "scores_table",
    "session_options",
    "write_scores_csv",
]


def session_options(threads: int = 1) -> Any:
    """onnxruntime CPU session options of every GeoJEPA session (export checks, edge scorer).

    `threads` intra-op threads (a gateway scores on one), one inter-op thread, sequential
    execution, and every graph optimisation (constant folding, MatMul+scale, LayerNorm and
    activation fusions; the default, written out so it cannot drift). Measured on the tiny
    encoder (one 32 x 256 window, one thread): onnxruntime's own MultiHeadAttention kernel
    was no faster than the exported MatMul/Softmax attention, so the plain ONNX ops stay.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    return opts


class OnnxEngine:
    """`TokenEngine` on onnxruntime sessions of the bundle's graphs: ``encoder.onnx`` and,
    in an energy bundle, ``predictor.onnx`` (`SCORE_GRAPHS`). A density bundle has no
    predictor: `predict` refuses there."""

    def __init__(
        self,
        folder: str | Path,
        meta: ExportMeta,
        *,
        int8: bool = False,
        threads: int = 1,
    ) -> None:
        import onnxruntime as ort

        root = Path(folder)
        opts = session_options(threads)
        self.sessions: dict[str, Any] = {}
        self.inputs: dict[str, list[str]] = {}
        self.root = root
        for name in SCORE_GRAPHS[meta.score]:
            if name not in meta.graphs:
                raise InputError(
                    f"the export has no {name} graph", file=root, hint="re-export the run"
                )
        for name, g in meta.graphs.items():
            file = g.int8_file if int8 and g.int8_file else g.file
            if int8 and not g.int8_file:
                log.warning("no int8 %s graph in this export: using fp32", name)
            sess = ort.InferenceSession(str(root / file), opts, providers=["CPUExecutionProvider"])
            self.sessions[name] = sess
            self.inputs[name] = [i.name for i in sess.get_inputs()]
        self.kinds: Mapping[str, int] = {k: int(v) for k, v in meta.energy["kinds"].items()}

    @staticmethod
    def _feed(inputs: TokenInputs) -> dict[str, np.ndarray]:
        return {
            "values": np.ascontiguousarray(inputs.values, dtype=np.float32),
            "observed": np.ascontiguousarray(inputs.observed, dtype=bool),
            "sensor_feats": np.ascontiguousarray(inputs.sensor_feats, dtype=np.float32),
            "time_feats": np.ascontiguousarray(inputs.time_feats, dtype=np.float32),
            "token_valid": np.ascontiguousarray(inputs.token_valid, dtype=bool),
        }

    def target_repr(self, inputs: TokenInputs) -> np.ndarray:
        feed = self._feed(inputs)
        out = self.sessions["encoder"].run(None, {k: feed[k] for k in self.inputs["encoder"]})
        return np.asarray(out[0])  # (B, N, D)

    def predict(
        self,
        inputs: TokenInputs,
        context: np.ndarray,
        context_pad: np.ndarray,
        target: np.ndarray,
        target_pad: np.ndarray,
        mask_kind: np.ndarray,
    ) -> np.ndarray:
        if "predictor" not in self.sessions:
            raise InputError(
                "this bundle has no predictor graph (a density bundle scores without one)",
                file=self.root,
                hint="export the run with --score energy to score the energy at the edge",
            )
        feed = self._feed(inputs)
        feed.update(
            context=np.ascontiguousarray(context, dtype=np.int64),
            context_pad=np.ascontiguousarray(context_pad, dtype=bool),
            target=np.ascontiguousarray(target, dtype=np.int64),
            target_pad=np.ascontiguousarray(target_pad, dtype=bool),
            mask_kind=np.ascontiguousarray(mask_kind, dtype=np.int64),
        )
        out = self.sessions["predictor"].run(None, {k: feed[k] for k in self.inputs["predictor"]})
        return np.asarray(out[0])  # (B, Nt, D)


@dataclass(frozen=True)
class Calibration:
    """Training-period statistics of the energy: per-sensor centre and scale (C,), and the
    TARP policy whose thresholds were calibrated on training-period per-time scores.

    `context_score` (C,): NaN for a sensor that is scored; for a forcing sensor (rain,
    temperature, pressure, load: `geojepa.detectors.response.FORCING_KINDS`), which the
    model reads as context only, the score every one of its observed cells gets (its
    training-period median: no evidence either way). None: every sensor is scored (bundles
    exported before forcing sensors became context)."""

    centre: np.ndarray
    scale: np.ndarray
    policy: TarpPolicy
    top_k: int = 3
    context_score: np.ndarray | None = None

    def to_dict(self) -> dict[str, Any]:
        p = self.policy
        out: dict[str, Any] = {
            "centre": [float(v) for v in self.centre],
            "scale": [float(v) for v in self.scale],
            "policy": {
                "amber": p.amber,
                "red": p.red,
                "n_on": p.n_on,
                "n_off": p.n_off,
                "amber_clear": p.amber_clear,
                "red_clear": p.red_clear,
            },
            "top_k": self.top_k,
        }
        if self.context_score is not None:
            out["context_score"] = [None if np.isnan(v) else float(v) for v in self.context_score]
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], n_sensors: int) -> Calibration:
        centre = np.asarray(d["centre"], dtype=np.float64)
        scale = np.asarray(d["scale"], dtype=np.float64)
        if centre.shape != (n_sensors,) or scale.shape != (n_sensors,) or (scale <= 0).any():
            raise InputError(
                "energy calibration does not match the sensors (or a scale is not positive)",
                hint="re-export the run",
            )
        context = None
        if d.get("context_score") is not None:
            context = np.array(
                [np.nan if v is None else float(v) for v in d["context_score"]], dtype=np.float64
            )
            if context.shape != (n_sensors,):
                raise InputError(
                    "the energy calibration's context scores do not match the sensors",
                    hint="re-export the run",
                )
        pol = dict(d["policy"])
        return cls(centre, scale, TarpPolicy(**pol), int(d.get("top_k", 3)), context)

    def sensor_scores(self, raw: np.ndarray) -> np.ndarray:
        """Raw energy (T, C) -> per-sensor scores (T, C) on the training scale; a context
        sensor's cells get its `context_score` (NaN stays NaN: nothing to score)."""
        return with_context((raw - self.centre[None, :]) / self.scale[None, :], self.context_score)

    def per_time(self, sensor: np.ndarray) -> np.ndarray:
        """Per-time scores (T,) from per-sensor scores (T, C): the row maximum over the
        scored sensors (`geojepa.energy.scored_row_max`)."""
        scored = None if self.context_score is None else np.isnan(self.context_score)
        return scored_row_max(sensor, scored)


@dataclass(frozen=True)
class Scores:
    """Scores of T grid times: time (T,) datetime64[ns] UTC, score (T,), sensor (T, C),
    level (T,) int8 (0 green, 1 amber, 2 red), sensors ranked at each alarm onset."""

    time: np.ndarray
    score: np.ndarray
    sensor: np.ndarray
    level: np.ndarray
    sensor_ids: tuple[str, ...]


def load_density(
    folder: str | Path, record: DataFile, n_sensors: int, dim: int | None
) -> DensityModel:
    """The density of a density bundle (`record`: its file in `folder`), checked to hold
    one Gaussian per sensor over `dim`-wide embeddings (None: any width); `InputError`
    naming the file if it cannot be read or does not fit the model."""
    path = Path(folder) / record.file
    try:
        model = DensityModel.load(path)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        raise InputError(
            f"density file {record.file} cannot be read ({type(err).__name__}: {err})",
            file=path,
            hint="re-export the run with `geojepa export RUN --out DIR --score density`",
        ) from err
    c, d = model.mean.shape if model.mean.ndim == 2 else (-1, -1)
    shapes = {
        "std": ((c, d), model.std.shape),
        "location": ((c, d), model.location.shape),
        "precision": ((c, d, d), model.precision.shape),
        "fitted": ((c,), model.fitted.shape),
    }
    bad = [k for k, (want, got) in shapes.items() if want != got]
    if c != n_sensors or (dim is not None and d != dim) or bad:
        raise InputError(
            f"density file {record.file} does not fit the model (mean {model.mean.shape}, "
            f"{n_sensors} sensors, width {dim}; {', '.join(bad) or 'shapes agree'})",
            file=path,
            hint="re-export the run with `geojepa export RUN --out DIR --score density`",
        )
    return model


@dataclass(frozen=True)
class EdgeModel:
    """An export folder, loaded: engine, normaliser, window, energy and alarm settings, and
    for a density bundle the density (`density`; None for an energy bundle)."""

    folder: Path
    meta: ExportMeta
    engine: OnnxEngine
    normaliser: Normaliser
    window: WindowSpec
    energy: EnergySpec
    calibration: Calibration
    density: DensityModel | None = None

    @classmethod
    def load(cls, folder: str | Path, *, int8: bool | None = None, threads: int = 1) -> EdgeModel:
        """Load DIR. `int8` None: use the int8 graphs when the export recommends them."""
        root = Path(folder)
        meta = load_meta(root)
        normaliser, window, energy, calibration = _settings(root, meta)
        use_int8 = bool(meta.quantization.get("recommended", False)) if int8 is None else int8
        engine = OnnxEngine(root, meta, int8=use_int8, threads=threads)
        density = None
        if meta.density is not None:
            dim = meta.model.get("dim")
            density = load_density(
                root, meta.density, len(meta.sensor_ids), None if dim is None else int(dim)
            )
        return cls(
            folder=root,
            meta=meta,
            engine=engine,
            normaliser=normaliser,
            window=window,
            energy=energy,
            calibration=calibration,
            density=density,
        )

    @property
    def sensor_ids(self) -> list[str]:
        return self.meta.sensor_ids

    @property
    def history(self) -> int:
        """Grid steps of data one scored window needs."""
        return self.window.span(self.window.scales[0])

    @property
    def score(self) -> str:
        """What the alarms are calibrated on: "energy" or "density"."""
        return self.meta.score

    @property
    def stride(self) -> int:
        """Grid steps between scoring windows: the energy's stride, or one patch for the
        density (`geojepa.density_score.density_stride`)."""
        if self.density is not None:
            return density_stride(self.window)
        return self.energy.stride(self.window)

    def tracker(self) -> AlarmTracker:
        return AlarmTracker(self.calibration.policy, self.sensor_ids, self.calibration.top_k)


def _settings(
    root: Path, meta: ExportMeta
) -> tuple[Normaliser, WindowSpec, EnergySpec, Calibration]:
    """The bundle's normaliser, window, energy and alarm settings, checked against each
    other and the model's geometry; `InputError` naming the metadata file when one is
    missing, malformed, of a newer geojepa or does not fit (never an internal error)."""
    path = root / META_FILE
    hint = "re-export the run with `geojepa export RUN --out DIR` (or upgrade geojepa here)"
    try:
        normaliser = Normaliser.from_dict(meta.normaliser)
        window = WindowSpec.from_dict(meta.window)
        energy = EnergySpec.from_dict(meta.energy["spec"])
        calibration = Calibration.from_dict(meta.alarms, len(meta.sensor_ids))
        kinds = {str(k): int(v) for k, v in meta.energy["kinds"].items()}
    except InputError as err:
        raise InputError(f"export metadata: {err.message}", file=path, hint=hint) from err
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise InputError(
            f"export metadata is incomplete or malformed ({type(err).__name__}: {err})",
            file=path,
            hint=hint,
        ) from err
    problems = []
    if list(normaliser.sensor_ids) != meta.sensor_ids:
        problems.append("the normaliser's sensors differ from the sensors table")
    if not {"tube", "future"} <= set(kinds):
        problems.append(f"the mask kinds {sorted(kinds)} lack tube or future")
    patch = meta.model.get("patch")
    if patch is not None and int(patch) != window.patch:
        problems.append(f"the window's patch {window.patch} is not the model's {patch}")
    if problems:
        raise InputError("export metadata: " + "; ".join(problems), file=path, hint=hint)
    return normaliser, window, energy, calibration


def score_with(
    engine: TokenEngine,
    frame: SensorFrame,
    normaliser: Normaliser,
    window: WindowSpec,
    energy: EnergySpec,
    calibration: Calibration,
    density: DensityModel | None = None,
) -> Scores:
    """Scores and TARP levels of every grid time of `frame` with any engine (torch or
    onnxruntime): the one scoring path ``geojepa detect`` and the edge scorer share. The
    raw score is the energy, or with `density` the embedding density
    (`geojepa.density_score`), put on the training scale by `calibration` either way."""
    if density is not None:
        raw = frame_density(engine, frame, normaliser, window, density)  # (T, C)
    else:
        raw = frame_energy(engine, frame, normaliser, window, energy)  # (T, C)
    sensor = calibration.sensor_scores(raw)  # (T, C)
    score = calibration.per_time(sensor)  # (T,)
    tracker = AlarmTracker(calibration.policy, frame.sensor_ids, calibration.top_k)
    level = np.array([int(tracker.step(s).level) for s in score], dtype=np.int8)
    return Scores(frame.time, score, sensor, level, tuple(frame.sensor_ids))


def score_frame(model: EdgeModel, frame: SensorFrame) -> Scores:
    """Scores and alarm levels of every grid time of `frame` (the model's sensors, in order),
    with the bundle's score (the energy, or the density of a density bundle)."""
    if frame.sensor_ids != model.sensor_ids:
        raise InputError(
            "the frame's sensors differ from the exported model's",
            hint="build the frame with the model's sensor list",
        )
    return score_with(
        model.engine,
        frame,
        model.normaliser,
        model.window,
        model.energy,
        model.calibration,
        model.density,
    )


def read_site(
    model: EdgeModel,
    path: str | Path,
    *,
    fmt: str = "auto",
    tz: str = "UTC",
    sep: str | None = None,
    time_col: str | None = None,
) -> Site:
    """Read FILE into a site over the model's sensors.

    With pyarrow installed this is `geojepa.io.read_file`, the reader behind ``geojepa
    ingest`` (every format it reads); without it, the streaming parser (long table, wide
    CSV, TOA5). Readings of sensors the model does not know are counted and reported.
    """
    try:
        from geojepa.io.reader import read_file
    except ImportError:  # no pyarrow on this gateway
        log.info("pyarrow is not installed: reading %s with the streaming parser", path)
        readings = _read_streaming(model, path, fmt=fmt, tz=tz, sep=sep, time_col=time_col)
    else:
        try:
            readings = read_file(path, fmt, sep=sep, time_col=time_col, tz=tz).readings
        except InputError as err:  # ingest's reader: its advice in the gateway's terms
            raise for_edge(err) from err
    known = readings["sensor_id"].astype(str).isin(model.sensor_ids)
    if not known.all():
        counts = readings.loc[~known, "sensor_id"].astype(str).value_counts()
        for name, n in counts.items():
            log.warning(
                "%s: %d reading(s) of sensor %r not known to the model: not used", path, n, name
            )
        readings = readings[known]
    if readings.empty:
        raise InputError(
            "no readings of the model's sensors in the file",
            file=path,
            hint="the model knows " + ", ".join(model.sensor_ids[:12]),
        )
    return Site(name=Path(path).stem, sensors=model.meta.sensors_frame(), readings=readings)


def _read_streaming(
    model: EdgeModel,
    path: str | Path,
    *,
    fmt: str,
    tz: str,
    sep: str | None,
    time_col: str | None,
) -> pd.DataFrame:
    from geojepa.edge.stream import LineFollower, StreamParser

    parser = StreamParser(
        model.sensor_ids, file=path, fmt=fmt, tz=tz, sep=sep, time_col=time_col, strict=True
    )
    times, cols, vals, good = [], [], [], []
    for batch in LineFollower(path, follow=False).batches():
        chunk = parser.parse(batch)
        times.append(chunk.time_ns)
        cols.append(chunk.column)
        vals.append(chunk.value)
        good.append(chunk.good)
    if parser.header is None:
        raise InputError("the file is empty", file=path, hint="point at a logger file")
    t = np.concatenate(times) if times else np.zeros(0, np.int64)
    ids = np.asarray(model.sensor_ids, dtype=object)
    g = np.concatenate(good) if good else np.zeros(0, bool)
    return pd.DataFrame(
        {
            "timestamp": pd.to_datetime(t, utc=True),
            "sensor_id": ids[np.concatenate(cols)].astype(str) if cols else [],
            "value": np.concatenate(vals) if vals else [],
            "quality": np.where(g, "ok", "missing"),
            "source": Path(path).name,
        }
    )


def alarm_label(score: float, level: int) -> str | None:
    """The alarm column's value of one grid time: the TARP level's label ("green", "amber",
    "red"), or None (an empty cell, JSON null) where the score is NaN: a time nothing
    scored has no alarm level, and calling it green would claim a reading was checked."""
    return Level(int(level)).label if np.isfinite(score) else None


def alarm_labels(scores: Scores) -> np.ndarray:
    """(T,) object: `alarm_label` of every grid time of `scores`."""
    labels = np.array([lv.label for lv in Level], dtype=object)
    out = labels[scores.level.astype(np.int64)]
    out[~np.isfinite(scores.score)] = None
    return out


def absent_sensors(frame: SensorFrame) -> list[str]:
    """The sensors of `frame` without one observed cell (no reading, or only missing ones)."""
    ids = list(frame.sensor_ids)
    return [ids[j] for j in np.flatnonzero(~frame.observed.any(axis=0))]  # (C,) -> names


def scores_table(scores: Scores) -> pd.DataFrame:
    """``timestamp,score,alarm,score:<sensor_id>...`` (ISO 8601 UTC, alarm as its label;
    empty where the score is NaN: `alarm_label`)."""
    table = pd.DataFrame(
        {
            "timestamp": pd.DatetimeIndex(scores.time)
            .tz_localize("UTC")
            .map(lambda t: t.isoformat()),
            "score": scores.score,
            "alarm": alarm_labels(scores),
        }
    )
    for j, sid in enumerate(scores.sensor_ids):
        table[f"score:{sid}"] = scores.sensor[:, j]
    return table


def write_scores_csv(scores: Scores, out: str | Path) -> None:
    with atomic_path(out) as tmp:
        scores_table(scores).to_csv(tmp, index=False)


def score_file(
    folder: str | Path,
    file: str | Path,
    out: str | Path | None = None,
    *,
    fmt: str = "auto",
    tz: str = "UTC",
    sep: str | None = None,
    time_col: str | None = None,
    int8: bool | None = None,
    threads: int = 1,
) -> Scores:
    """`geojepa-edge score`: read FILE, grid it like `to_frame`, score every grid time.

    The model's sensors without a reading in FILE (their score columns stay empty) and the
    grid times left without a score (no alarm level) are counted and logged as warnings."""
    model = EdgeModel.load(folder, int8=int8, threads=threads)
    site = read_site(model, file, fmt=fmt, tz=tz, sep=sep, time_col=time_col)
    frame = to_frame(site, interval=model.meta.interval, sensor_ids=model.sensor_ids)
    absent = absent_sensors(frame)
    if absent:
        log.warning(
            "%s: no reading of %d of the model's %d sensors (%s): their scores are empty "
            "and the per-time score reads the others only",
            file,
            len(absent),
            len(model.sensor_ids),
            ", ".join(absent),
        )
    scores = score_frame(model, frame)
    unscored = int(np.sum(~np.isfinite(scores.score)))
    if unscored:
        log.warning(
            "%s: %d of %d grid times have no score (no reading of a scored sensor there): "
            "their alarm is left empty",
            file,
            unscored,
            len(scores.score),
        )
    if out is not None:
        write_scores_csv(scores, out)
    return scores


def json_line(record: Mapping[str, Any]) -> str:
    """One JSON line; NaN and infinities become null (JSON has neither)."""

    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, Mapping):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v

    return json.dumps(clean(dict(record)), separators=(",", ":"))


def ranked(sensor_row: np.ndarray, ids: Sequence[str], top_k: int) -> list[str]:
    """Sensor ids by descending score (NaN left out), at most top_k."""
    from geojepa.alarms import attribute

    return list(attribute(sensor_row, ids, top_k))
