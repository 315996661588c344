"""The export folder: ONNX graphs plus one small JSON that says how to use them.

`geojepa export RUN --out DIR` writes DIR with

- ``geojepa-export.json``  this module's `ExportMeta`: format version, opset, each graph's
  file name, SHA-256, size, input and output names; the normaliser; the sensors table;
  the grid interval; the window spec; the model's geometry; the energy-score and alarm
  settings (thresholds fitted on training-period scores); the parity figures measured at
  export time; whether an int8 variant is offered and why;
- one single-file ``.onnx`` per graph (no ``.onnx.data`` sidecar), and optionally an
  ``.int8.onnx`` variant of each.

Guarantees: `load_meta` rejects (with `InputError` naming the file and what to do) a
folder whose JSON is malformed, of a newer format version, or whose graph files are
missing or differ from the recorded SHA-256, so the gateway never scores with a graph
other than the one the parity check passed. numpy/pandas only: no torch, no onnx.
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
FORMAT_VERSION = 1
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
class ExportMeta:
    """Everything the edge scorer needs besides the graphs (JSON-able, see module doc)."""

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
    format_version: int = FORMAT_VERSION

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
        return {
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
        }

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
                format_version=version,
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
    """Read and validate an export folder's metadata (and, with `verify`, its graph hashes)."""
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
            pairs = [(g.file, g.sha256)]
            if g.int8_file is not None and g.int8_sha256 is not None:
                pairs.append((g.int8_file, g.int8_sha256))
            for name, digest in pairs:
                f = root / name
                if not f.is_file():
                    raise InputError(
                        f"graph file {name} is missing", file=root, hint="copy the whole folder"
                    )
                if sha256_file(f) != digest:
                    raise InputError(
                        f"graph file {name} differs from the one exported (SHA-256 mismatch)",
                        file=f,
                        hint="copy the export folder again; do not edit graphs by hand",
                    )
    return meta
