"""The export folder: ONNX graphs plus one small JSON that says how to use them.

`geojepa export RUN --out DIR` writes DIR with

- ``geojepa-export.json``  this module's `ExportMeta`: format version, opset, each graph's
  file name, SHA-256, size, input and output names; the normaliser; the sensors table;
  the grid interval; the window spec; the model's geometry; which score the bundle
  alarms on (``score``: ``energy`` or ``density``, `SCORES`); the energy-score and alarm
  settings (thresholds fitted on training-period scores of that score); the parity
  figures measured at export time; whether an int8 variant is offered and why;
- one single-file ``.onnx`` per graph (no ``.onnx.data`` sidecar), and optionally an
  ``.int8.onnx`` variant of each: ``encoder.onnx`` and ``predictor.onnx`` for an energy
  bundle, ``encoder.onnx`` alone for a density bundle (`SCORE_GRAPHS`);
- for a density bundle (``geojepa export --score density``), ``density.npz``: the
  training embeddings' Gaussians (`geojepa.density_score.DensityModel`), its name, size
  and SHA-256 recorded under ``density`` in the JSON.

Format versions: a bundle is written with the oldest version that reads it correctly
(`SCORE_VERSIONS`). An energy bundle stays version 1, which every gateway reads; a
density bundle is version 2, so a gateway from before density bundles refuses it ("newer
than this scorer reads") instead of scoring it with the energy against the density's
thresholds. A bundle without ``score`` is an energy bundle.

Guarantees: `load_meta` rejects (with `InputError` naming the file and what to do) a
folder whose JSON is malformed, of a newer format version, of an unknown score, or whose
graph (int8 variants included) or density files are missing, lack a recorded SHA-256
or differ from it, so the gateway
never scores with a graph (or density) other than the one the export checked.
numpy/pandas only: no torch, no onnx.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from geojepa.errors import InputError

META_FILE = "geojepa-export.json"
FORMAT = "geojepa-edge-export"
FORMAT_VERSION = 2
"""The newest format version this reader reads."""
SCORES: tuple[str, ...] = ("energy", "density")
"""What a bundle's alarms are calibrated on (as ``geojepa detect --score``)."""
SCORE_VERSIONS: Mapping[str, int] = {"energy": 1, "density": 2}
"""The format version a bundle of each score is written with: the oldest a reader must
know to score it correctly (version 1 readers know only the energy)."""
SCORE_GRAPHS: Mapping[str, tuple[str, ...]] = {
    "energy": ("encoder", "predictor"),
    "density": ("encoder",),
}
"""The graphs a bundle of each score carries: the density needs only the target encoder's
embeddings, so a density bundle ships no predictor graph."""
DENSITY_FILE = "density.npz"
SENSOR_FIELDS: tuple[str, ...] = ("id", "kind", "unit", "x", "y", "z", "group")


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class GraphFile:
    """One ONNX graph of the export: file name (relative to the folder) and its interface."""

    name: str
    file: str
    sha256: str
    bytes: int
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    int8_file: str | None = None
    int8_sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "file": self.file,
            "sha256": self.sha256,
            "bytes": self.bytes,
            "inputs": list(self.inputs),
            "outputs": list(self.outputs),
            "int8_file": self.int8_file,
            "int8_sha256": self.int8_sha256,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GraphFile:
        return cls(
            name=str(d["name"]),
            file=str(d["file"]),
            sha256=str(d["sha256"]),
            bytes=int(d["bytes"]),
            inputs=tuple(str(x) for x in d["inputs"]),
            outputs=tuple(str(x) for x in d["outputs"]),
            int8_file=None if d.get("int8_file") is None else str(d["int8_file"]),
            int8_sha256=None if d.get("int8_sha256") is None else str(d["int8_sha256"]),
        )


@dataclass(frozen=True)
class DataFile:
    """A non-graph file of the export (the density): name in the folder, SHA-256, size."""

    file: str
    sha256: str
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "sha256": self.sha256, "bytes": self.bytes}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DataFile:
        return cls(file=str(d["file"]), sha256=str(d["sha256"]), bytes=int(d["bytes"]))

    @classmethod
    def of(cls, path: str | Path) -> DataFile:
        """The record of the file at `path` (its name, relative to its folder)."""
        p = Path(path)
        return cls(file=p.name, sha256=sha256_file(p), bytes=p.stat().st_size)


@dataclass(frozen=True)
class ExportMeta:
    """Everything the edge scorer needs besides the graphs (JSON-able, see module doc).

    `score`: what the alarms are calibrated on (`SCORES`); `density`: the density file's
    record, present exactly when `score` is ``density``."""

    graphs: Mapping[str, GraphFile]
    opset: int
    normaliser: Mapping[str, Any]
    sensors: Sequence[Mapping[str, Any]]
    interval_seconds: float
    window: Mapping[str, Any]
    model: Mapping[str, Any]
    energy: Mapping[str, Any] = field(default_factory=dict)
    alarms: Mapping[str, Any] = field(default_factory=dict)
    train_end: str | None = None
    parity: Sequence[Mapping[str, Any]] = ()
    quantization: Mapping[str, Any] = field(default_factory=dict)
    geojepa_version: str = ""
    score: str = "energy"
    density: DataFile | None = None

    def __post_init__(self) -> None:
        if self.score not in SCORES:
            raise ValueError(f"unknown export score {self.score!r}")
        if (self.score == "density") != (self.density is not None):
            raise ValueError(f"a {self.score} export with density={self.density}")

    @property
    def format_version(self) -> int:
        """The version this bundle is written with (`SCORE_VERSIONS`)."""
        return SCORE_VERSIONS[self.score]

    @property
    def interval(self) -> pd.Timedelta:
        return pd.Timedelta(seconds=self.interval_seconds)

    @property
    def sensor_ids(self) -> list[str]:
        return [str(s["id"]) for s in self.sensors]

    def sensors_frame(self) -> pd.DataFrame:
        """The sensors table in the model's column order (NaN where a position is unknown)."""
        rows = [{k: s.get(k) for k in SENSOR_FIELDS} for s in self.sensors]
        df = pd.DataFrame(rows, columns=list(SENSOR_FIELDS))
        for col in ("x", "y", "z"):
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
        for col in ("id", "kind", "unit", "group"):
            df[col] = df[col].fillna("").astype("str")
        df["meta"] = "{}"
        return df

    def to_dict(self) -> dict[str, Any]:
        out = {
            "format": FORMAT,
            "format_version": self.format_version,
            "geojepa_version": self.geojepa_version,
            "opset": self.opset,
            "graphs": {k: g.to_dict() for k, g in self.graphs.items()},
            "normaliser": dict(self.normaliser),
            "sensors": [_json_safe(dict(s)) for s in self.sensors],
            "interval_seconds": self.interval_seconds,
            "window": dict(self.window),
            "model": dict(self.model),
            "energy": dict(self.energy),
            "alarms": dict(self.alarms),
            "train_end": self.train_end,
            "parity": [dict(p) for p in self.parity],
            "quantization": dict(self.quantization),
            "score": self.score,
        }
        if self.density is not None:
            out["density"] = self.density.to_dict()
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, file: str | Path | None = None) -> ExportMeta:
        if d.get("format") != FORMAT:
            raise InputError(
                f"not a GeoJEPA export (format {d.get('format')!r})",
                file=file,
                hint="create one with `geojepa export RUN --out DIR`",
            )
        version = int(d.get("format_version", 0))
        if version > FORMAT_VERSION:
            raise InputError(
                f"export format version {version} is newer than this scorer reads",
                file=file,
                hint="upgrade geojepa on the gateway",
            )
        score = str(d.get("score", "energy"))  # older bundles: the energy
        if score not in SCORES:
            raise InputError(
                f"export score {score!r} is not one this scorer knows",
                file=file,
                hint="upgrade geojepa on the gateway, or export with --score energy",
            )
        if score != "energy" and version < SCORE_VERSIONS[score]:
            raise InputError(
                f"a {score} export needs format version {SCORE_VERSIONS[score]}, "
                f"this one says {version}",
                file=file,
                hint="re-export the run with `geojepa export RUN --out DIR`",
            )
        if (score == "density") != (d.get("density") is not None):
            raise InputError(
                "a density export must record its density file, an energy export none "
                f"(score {score!r}, density {d.get('density')!r})",
                file=file,
                hint="re-export the run with `geojepa export RUN --out DIR`",
            )
        try:
            return cls(
                graphs={str(k): GraphFile.from_dict(g) for k, g in d["graphs"].items()},
                opset=int(d["opset"]),
                normaliser=dict(d["normaliser"]),
                sensors=[dict(s) for s in d["sensors"]],
                interval_seconds=float(d["interval_seconds"]),
                window=dict(d["window"]),
                model=dict(d["model"]),
                energy=dict(d.get("energy", {})),
                alarms=dict(d.get("alarms", {})),
                train_end=d.get("train_end"),
                parity=[dict(p) for p in d.get("parity", [])],
                quantization=dict(d.get("quantization", {})),
                geojepa_version=str(d.get("geojepa_version", "")),
                score=score,
                density=None if d.get("density") is None else DataFile.from_dict(d["density"]),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise InputError(
                f"export metadata is incomplete or malformed ({type(err).__name__}: {err})",
                file=file,
                hint="re-export the run with `geojepa export RUN --out DIR`",
            ) from err


def _json_safe(d: dict[str, Any]) -> dict[str, Any]:
    """NaN positions become null: JSON has no NaN."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


def write_meta(folder: str | Path, meta: ExportMeta) -> Path:
    path = Path(folder) / META_FILE
    path.write_text(json.dumps(meta.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def load_meta(folder: str | Path, *, verify: bool = True) -> ExportMeta:
    """Read and validate an export folder's metadata (and, with `verify`, the hashes of its
    graphs and density file)."""
    root = Path(folder)
    path = root / META_FILE
    if not path.is_file():
        raise InputError(
            f"no {META_FILE} here: not an export folder",
            file=root,
            hint="create one with `geojepa export RUN --out DIR`",
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise InputError(
            f"export metadata is not valid JSON ({err.msg})",
            file=path,
            line=err.lineno,
            column=err.colno,
            hint="re-export the run",
        ) from err
    meta = ExportMeta.from_dict(raw, file=path)
    if verify:
        for g in meta.graphs.values():
            _verify_file(root, g.file, g.sha256, "graph file")
            if g.int8_file is not None:
                if g.int8_sha256 is None:  # it would be run unchecked
                    raise InputError(
                        f"graph file {g.int8_file} has no recorded SHA-256",
                        file=path,
                        hint="re-export the run with `geojepa export RUN --out DIR`",
                    )
                _verify_file(root, g.int8_file, g.int8_sha256, "graph file")
        if meta.density is not None:
            _verify_file(root, meta.density.file, meta.density.sha256, "density file")
    return meta


def _verify_file(root: Path, name: str, digest: str, what: str) -> None:
    """Refuse (`InputError` naming the file) a missing `root / name` or one whose SHA-256
    differs from `digest`; `what` says which kind of file it is ("graph file")."""
    f = root / name
    if not f.is_file():
        raise InputError(f"{what} {name} is missing", file=root, hint="copy the whole folder")
    if sha256_file(f) != digest:
        raise InputError(
            f"{what} {name} differs from the one exported (SHA-256 mismatch)",
            file=f,
            hint="copy the export folder again; do not edit its files by hand",
        )
