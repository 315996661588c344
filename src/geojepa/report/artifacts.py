"""Readers for the run's products beside training: forecasts, benchmark tables, embeddings.

- ``forecast*.csv``, ``forecasts/*.csv``  ``timestamp,prediction[,lower,upper]`` and optionally
  more numeric columns, each another method's prediction; the target sensor is a
  ``sensor_id``/``target`` column, or the file name (``forecast_S3.csv``, ``forecasts/S3.csv``),
  or given explicitly; the method that made ``prediction`` is a ``method`` column, else
  unknown (the forecast is named after its file, never assumed to be GeoJEPA's)
- ``benchmark.md`` / ``benchmark.json``  the benchmark table(s)
- ``embeddings.npz`` / ``.parquet`` / ``.csv``  per-window embeddings with their start times

Guarantees (as `geojepa.report.inputs`): an unusable file raises `InputError` naming the
file, the line and column where known and what to do; times come back tz-aware UTC.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from geojepa.errors import InputError
from geojepa.report.inputs import (
    parse_numbers,
    parse_times,
    read_csv_text,
    require_columns,
)

TIME_COLUMNS: tuple[str, ...] = ("start", "window_start", "timestamp", "time", "times", "starts")
EMBEDDING_KEYS: tuple[str, ...] = ("vectors", "embeddings", "embedding", "z", "emb", "x")


# ----------------------------------------------------------------------------- forecasts
FORECAST_BASE: tuple[str, ...] = ("timestamp", "prediction", "lower", "upper")


@dataclass(frozen=True)
class ForecastInput:
    """One forecast file: the target sensor (None when unknown) and its table.

    `table` has timestamp (UTC), prediction, and lower/upper when given; `methods` names
    the further numeric columns (other methods' predictions on the same times). `name` is
    the method that made ``prediction``: a ``method`` column's value, else the file
    (``forecast a.csv``): the CSV contract records no method, and `geojepa forecast` writes
    the same columns for GeoJEPA and for every classic method, so no method is claimed.
    """

    path: Path
    sensor_id: str | None
    table: pd.DataFrame
    methods: tuple[str, ...]
    name: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", unnamed_forecast(self.path))


def unnamed_forecast(path: Path) -> str:
    """The name of a forecast whose file does not say which method made it."""
    return f"forecast {path.name}"


def read_forecast(
    path: Path, sensor_id: str | None = None, known_sensors: tuple[str, ...] = ()
) -> ForecastInput:
    """Read one forecast CSV; the target is `sensor_id`, else a column, else the file name."""
    if not path.is_file():
        raise InputError("no such forecast file", file=path, hint="check the path")
    df = read_csv_text(path)
    require_columns(df, ("timestamp", "prediction"), path, "forecast file")
    if df.empty:
        raise InputError(
            "the forecast file has no rows", file=path, line=2, hint="run `geojepa forecast` again"
        )
    table = pd.DataFrame({"timestamp": parse_times(df, "timestamp", path)})
    table["prediction"] = parse_numbers(df, "prediction", path)
    for col in ("lower", "upper"):
        if col in df.columns:
            table[col] = parse_numbers(df, col, path)
    target = sensor_id
    for col in ("sensor_id", "target", "sensor"):
        if target is None and col in df.columns:
            names = df[col].str.strip().unique()
            if len(names) != 1:
                raise InputError(
                    f"column {col!r} names {len(names)} sensors",
                    file=path,
                    column=col,
                    hint="write one forecast file per target sensor",
                )
            target = str(names[0])
    if target is None:
        target = _target_from_name(path, known_sensors)
    name = ""  # unknown: named after the file
    if "method" in df.columns:
        names = df["method"].str.strip().unique()
        if len(names) != 1 or not names[0]:
            raise InputError(
                f"column 'method' names {len(names)} methods",
                file=path,
                column="method",
                hint="one method per file (its other columns may hold other methods)",
            )
        name = str(names[0])
    methods = []
    for col in df.columns:
        if col in FORECAST_BASE or col in ("sensor_id", "target", "sensor", "method"):
            continue
        table[col] = parse_numbers(df, col, path)
        methods.append(col)
    return ForecastInput(
        path=path, sensor_id=target, table=table, methods=tuple(methods), name=name
    )


def _target_from_name(path: Path, known: tuple[str, ...]) -> str | None:
    stem = path.stem
    candidates = [stem, re.sub(r"^forecasts?[-_.]?", "", stem, flags=re.IGNORECASE)]
    for c in candidates:
        if c in known:
            return c
    return None


def find_forecasts(run_dir: Path) -> list[Path]:
    """Forecast files in a run folder: ``forecast*.csv`` and ``forecasts/*.csv``, sorted."""
    found = sorted(run_dir.glob("forecast*.csv"))
    sub = run_dir / "forecasts"
    if sub.is_dir():
        found += sorted(sub.glob("*.csv"))
    return found


# ----------------------------------------------------------------------------- benchmark
@dataclass(frozen=True)
class BenchmarkInput:
    """A benchmark file: Markdown text or parsed JSON."""

    path: Path
    markdown: str | None = None
    data: Any = None


def read_benchmark(path: Path) -> BenchmarkInput:
    if not path.is_file():
        raise InputError("no such benchmark file", file=path, hint="check the path")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        try:
            return BenchmarkInput(path=path, data=json.loads(text))
        except json.JSONDecodeError as err:
            raise InputError(
                f"not valid JSON ({err.msg})",
                file=path,
                line=err.lineno,
                column=err.colno,
                hint="run the benchmark again",
            ) from err
    return BenchmarkInput(path=path, markdown=text)


def find_benchmark(run_dir: Path) -> Path | None:
    for name in ("benchmark.md", "benchmark.json"):
        if (run_dir / name).is_file():
            return run_dir / name
    return None


# ----------------------------------------------------------------------------- embeddings
@dataclass(frozen=True)
class Embeddings:
    """Window embeddings (N, D) and window start times (N,)."""

    path: Path
    vectors: np.ndarray  # (N, D) float
    times: pd.DatetimeIndex  # (N,) UTC


def find_embeddings(run_dir: Path) -> Path | None:
    for name in ("embeddings.npz", "embeddings.parquet", "embeddings.csv"):
        if (run_dir / name).is_file():
            return run_dir / name
    return None


META_COLUMNS: tuple[str, ...] = ("scale", "scales", "start_index", "window", "sensor_id")


def _dimension_columns(table: pd.DataFrame, tcol: str, *, text: bool) -> list[str]:
    """Embedding columns: ``e0, e1, ...`` when present, else every other column except
    the time and known bookkeeping columns (scale, start_index, ...); of a typed table
    (Parquet) only the numeric ones, of a text table (CSV) all, checked cell by cell later."""
    named = [c for c in table.columns if re.fullmatch(r"e\d+", str(c))]
    if named:
        return named
    cols = [c for c in table.columns if c != tcol and c not in META_COLUMNS]
    return cols if text else [c for c in cols if pd.api.types.is_numeric_dtype(table[c])]


def read_embeddings(path: Path) -> Embeddings:
    """Embeddings from ``.npz`` (arrays named e.g. ``vectors`` and ``starts``, as
    `geojepa embed` writes), or a table (``.parquet``/``.csv``) with a time column and one
    numeric column per dimension (``e0, e1, ...``).

    Per-sensor embeddings (N, C, D) are averaged over sensors to (N, D).
    """
    if not path.is_file():
        raise InputError("no such embeddings file", file=path, hint="check the path")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            keys = list(z.keys())
            vkey = next((k for k in EMBEDDING_KEYS if k in keys), None)
            tkey = next((k for k in TIME_COLUMNS if k in keys), None)
            if vkey is None or tkey is None:
                raise InputError(
                    f"arrays {keys} hold no embeddings and times",
                    file=path,
                    hint="save arrays named 'embeddings' (N, D) and 'start' (N,)",
                )
            vectors = np.asarray(z[vkey], dtype=float)
            raw_times = z[tkey]
        times = pd.DatetimeIndex(pd.to_datetime(raw_times, utc=True))
    elif suffix in (".parquet", ".csv"):
        table = pd.read_parquet(path) if suffix == ".parquet" else read_csv_text(path)
        tcol = next((c for c in TIME_COLUMNS if c in table.columns), None)
        if tcol is None:
            raise InputError(
                f"no time column (one of {', '.join(TIME_COLUMNS)})",
                file=path,
                line=1 if suffix == ".csv" else None,
                hint="add the window start times",
            )
        if suffix == ".csv":
            times = pd.DatetimeIndex(parse_times(table, tcol, path))
            cols = _dimension_columns(table, tcol, text=True)
            vectors = (
                np.column_stack([parse_numbers(table, c, path).to_numpy() for c in cols])
                if cols
                else np.empty((len(table), 0))
            )
        else:
            times = pd.DatetimeIndex(pd.to_datetime(table[tcol], utc=True))
            vectors = table[_dimension_columns(table, tcol, text=False)].to_numpy(dtype=float)
    else:
        raise InputError(
            f"unknown embeddings format {suffix!r}", file=path, hint="use .npz, .parquet or .csv"
        )
    if vectors.ndim == 3:  # (N, C, D) -> (N, D)
        vectors = np.nanmean(vectors, axis=1)
    if vectors.ndim != 2 or vectors.shape[0] != len(times):
        raise InputError(
            f"embeddings of shape {vectors.shape} do not match {len(times)} times",
            file=path,
            hint="one embedding row per window start time",
        )
    if not np.isfinite(vectors).all():
        raise InputError(
            "embeddings hold NaN or infinite values",
            file=path,
            hint="embed again; a model that produces NaN has diverged",
        )
    return Embeddings(path=path, vectors=vectors, times=times)
