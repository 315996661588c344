"""Readers for the run folder's training and detection files, and the CSV checks they share.

Files read (names relative to the run folder unless given explicitly):

- ``config.yaml``     the resolved training configuration (YAML mapping)
- ``checkpoint.pt``   only its metadata: the end of the training data, the embedding width
- ``metrics.jsonl``   one JSON object per line: ``step`` and numbers (loss, lr, val/rankme, ...)
- ``scores.csv``      ``timestamp,score,alarm,score:<sensor_id>...`` as `geojepa detect` writes
- ``triggers.json``   ``{"<sensor_id>": {"amber": 1.5, "red": 2.0}}`` trigger levels in sensor
                      units (levels in a sensor's ``meta`` — ``triggers``, ``amber``, ``red`` —
                      are read as well)

Forecasts, benchmark tables and embeddings are read by `geojepa.report.artifacts`.

Guarantees: a file that is absent gives None (the section is skipped with a note); a file
that is present but unusable raises `InputError` naming the file, the line (and column where
known) and what to do — nothing is silently dropped. Times come back tz-aware UTC.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from geojepa.errors import InputError
from geojepa.io.smalltable import require_columns as _require

log = logging.getLogger(__name__)

ALARM_LEVELS: tuple[str, ...] = ("green", "amber", "red")


def line_of_row(i: int) -> int:
    """CSV line number (1-based, header on line 1) of data row `i` (0-based)."""
    return int(i) + 2


def read_csv_text(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError as err:
        raise InputError("the file is empty", file=path, hint="write it again") from err
    except pd.errors.ParserError as err:
        m = re.search(r"line (\d+)", str(err))
        raise InputError(
            f"not a readable CSV ({str(err).strip()})",
            file=path,
            line=int(m.group(1)) if m else None,
            hint="check the delimiter (a comma) and that every row has the header's fields",
        ) from err
    except UnicodeDecodeError as err:
        raise InputError("not UTF-8 text", file=path, hint="save it as UTF-8 CSV") from err


def parse_times(df: pd.DataFrame, col: str, path: Path) -> pd.Series:
    text = df[col].str.strip()
    parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if len(bad):
        i = int(bad[0])
        raise InputError(
            f"cannot read time {text.iloc[i]!r}",
            file=path,
            line=line_of_row(i),
            column=col,
            hint="write times as ISO 8601, e.g. 2024-05-01T12:00:00Z",
        )
    return parsed.astype("datetime64[ns, UTC]")


def parse_numbers(df: pd.DataFrame, col: str, path: Path, *, allow_empty: bool = True) -> pd.Series:
    text = df[col].str.strip()
    empty = text.str.lower().isin(["", "nan"]).to_numpy()
    values = pd.to_numeric(text.where(~empty, "nan"), errors="coerce")
    missing = values.isna().to_numpy()
    bad_cells = (missing & ~empty) | np.isinf(values.to_numpy(dtype=float))
    if not allow_empty:
        bad_cells |= missing
    bad = np.flatnonzero(bad_cells)
    if len(bad):
        i = int(bad[0])
        raise InputError(
            f"not a number: {text.iloc[i]!r}",
            file=path,
            line=line_of_row(i),
            column=col,
            hint="finite numbers only (an empty cell or NaN where there is no value)",
        )
    return values.astype("float64")


def require_columns(df: pd.DataFrame, cols: tuple[str, ...], path: Path, what: str) -> None:
    """The report's files: `geojepa.io.smalltable.require_columns` with its hint."""
    _require(df, cols, path, f"the {what}", f"a {what} needs the columns {', '.join(cols)}")


# ----------------------------------------------------------------------------- config
def read_config(path: Path) -> dict[str, Any] | None:
    """The run's resolved configuration, or None when the file is absent."""
    if not path.is_file():
        return None
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        raise InputError(
            f"not valid YAML ({err.problem})",
            file=path,
            line=None if mark is None else mark.line + 1,
            column=None if mark is None else mark.column + 1,
            hint="fix the YAML or run `geojepa pretrain` again to rewrite it",
        ) from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(
            "the configuration is not a YAML mapping",
            file=path,
            line=1,
            hint="it should hold `key: value` lines",
        )
    return data


def find_key(tree: object, names: tuple[str, ...]) -> object | None:
    """First value under any of `names` in a nested mapping (depth first, top level first)."""
    if isinstance(tree, Mapping):
        for name in names:
            if name in tree and tree[name] is not None:
                return tree[name]
        for value in tree.values():
            found = find_key(value, names)
            if found is not None:
                return found
    return None


# ----------------------------------------------------------------------------- checkpoint
@dataclass(frozen=True)
class RunMeta:
    """What the report takes from a run's checkpoint: the end of its training data (the
    first training site's), the training sites' names, the step and the embedding width."""

    train_end: pd.Timestamp | None
    sites: tuple[str, ...]
    step: int | None
    width: int | None


def read_run_meta(path: Path) -> tuple[RunMeta | None, str | None]:
    """(metadata, note): the checkpoint's metadata, or None and why it could not be read.

    The checkpoint is loaded safely (``weights_only=True``, by `geojepa.checkpoint`); an
    unreadable one gives a note on the page rather than no report at all.
    """
    if not path.is_file():
        return None, None
    try:
        from geojepa.checkpoint import read_checkpoint
    except ImportError as err:  # a torch-free install: the report still works without it
        return None, f"checkpoint not read ({err})"
    try:
        state = read_checkpoint(path)
    except InputError as err:
        return None, f"checkpoint not read: {err.render()}"
    sites = [s for s in state.get("sites") or [] if isinstance(s, Mapping)]
    train_end = None
    if sites and sites[0].get("train_end"):
        train_end = pd.Timestamp(str(sites[0]["train_end"]))
        train_end = (
            train_end.tz_localize("UTC")
            if train_end.tzinfo is None
            else train_end.tz_convert("UTC")
        )
    model = (state.get("config") or {}).get("model") or {}
    width = model.get("dim") if isinstance(model, Mapping) else None
    step = state.get("step")
    return (
        RunMeta(
            train_end=train_end,
            sites=tuple(str(s.get("name", "")) for s in sites),
            step=int(step) if isinstance(step, int | float) else None,
            width=int(width) if isinstance(width, int) and width > 0 else None,
        ),
        None,
    )


# ----------------------------------------------------------------------------- metrics
def read_metrics(path: Path) -> pd.DataFrame | None:
    """Training metrics: one row per JSON line, numeric fields only, sorted by ``step``.

    Nested objects are flattened with ``/`` (``{"val": {"rankme": 3}}`` → ``val/rankme``).
    A line without ``step`` takes its line number as the step.
    """
    if not path.is_file():
        return None
    rows: list[dict[str, float]] = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            text = line.strip()
            if not text:
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as err:
                raise InputError(
                    f"not a JSON object ({err.msg})",
                    file=path,
                    line=n,
                    column=err.colno,
                    hint="each line of metrics.jsonl must be one JSON object",
                ) from err
            if not isinstance(obj, dict):
                raise InputError(
                    "not a JSON object",
                    file=path,
                    line=n,
                    column=1,
                    hint="each line of metrics.jsonl must be one JSON object",
                )
            row = _flatparse_numbers(obj)
            row.setdefault("step", float(n))
            rows.append(row)
    if not rows:
        return None
    df = pd.DataFrame(rows)
    return df.sort_values("step", kind="stable", ignore_index=True)


def _flatparse_numbers(obj: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatparse_numbers(value, prefix=f"{name}/"))
        elif isinstance(value, bool):
            continue
        elif isinstance(value, int | float) and value is not None:
            out[name] = float(value)
    return out


# ----------------------------------------------------------------------------- scores
@dataclass(frozen=True)
class Scores:
    """A scores table: time (T,), site score (T,), alarm (T,) and per-sensor scores (T, C)."""

    path: Path
    table: pd.DataFrame  # timestamp (UTC), score, alarm
    per_sensor: pd.DataFrame  # (T, C) columns = sensor ids, same index as `table`

    @property
    def interval(self) -> pd.Timedelta:
        t = self.table["timestamp"]
        if len(t) < 2:
            return pd.Timedelta(0)
        return pd.Timedelta(int(np.median(np.diff(pd.DatetimeIndex(t).asi8))), unit="ns")


def read_scores(path: Path) -> Scores | None:
    """The detection scores CSV, validated; None when absent."""
    if not path.is_file():
        return None
    df = read_csv_text(path)
    require_columns(df, ("timestamp", "score", "alarm"), path, "scores file")
    times = parse_times(df, "timestamp", path)
    backwards = np.flatnonzero(np.diff(pd.DatetimeIndex(times).asi8) <= 0)
    if len(backwards):
        raise InputError(
            "times are not strictly increasing",
            file=path,
            line=line_of_row(int(backwards[0]) + 1),
            column="timestamp",
            hint="one row per grid time, in time order, as `geojepa detect` writes",
        )
    score = parse_numbers(df, "score", path)
    alarm = df["alarm"].fillna("").astype(str).str.strip().str.lower()
    unscored = (alarm == "").to_numpy() & ~np.isfinite(score)  # no score, no alarm level
    bad = np.flatnonzero(~(alarm.isin(ALARM_LEVELS).to_numpy() | unscored))
    if len(bad):
        i = int(bad[0])
        raise InputError(
            f"unknown alarm state {df['alarm'].iloc[i]!r}",
            file=path,
            line=line_of_row(i),
            column="alarm",
            hint="alarm states are green, amber or red (empty only where the score is empty)",
        )
    per = {
        c.removeprefix("score:"): parse_numbers(df, c, path)
        for c in df.columns
        if c.startswith("score:")
    }
    table = pd.DataFrame({"timestamp": times, "score": score, "alarm": alarm.astype(str)})
    return Scores(path=path, table=table, per_sensor=pd.DataFrame(per, index=table.index))


# ----------------------------------------------------------------------------- triggers
TRIGGER_NAMES: tuple[str, ...] = ("amber", "red")


def read_triggers(path: Path) -> dict[str, dict[str, float]]:
    """Trigger levels per sensor from ``triggers.json``; {} when absent."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise InputError(
            f"not valid JSON ({err.msg})",
            file=path,
            line=err.lineno,
            column=err.colno,
            hint='write {"SENSOR": {"amber": 1.0, "red": 2.0}}',
        ) from err
    if not isinstance(data, dict):
        raise InputError(
            "not a JSON object",
            file=path,
            line=1,
            hint='write {"SENSOR": {"amber": 1.0, "red": 2.0}}',
        )
    out: dict[str, dict[str, float]] = {}
    for sid, levels in data.items():
        parsed = _levels(levels)
        if parsed is None:
            raise InputError(
                f"trigger levels of {sid!r} are not a mapping of numbers",
                file=path,
                hint='write {"SENSOR": {"amber": 1.0, "red": 2.0}}',
            )
        out[str(sid)] = parsed
    return out


def _levels(value: object) -> dict[str, float] | None:
    if not isinstance(value, Mapping):
        return None
    out: dict[str, float] = {}
    for k, v in value.items():
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(float(v)):
            return None
        out[str(k).lower()] = float(v)
    return out


def triggers_from_meta(meta_text: str) -> dict[str, float]:
    """Trigger levels held in a sensor's ``meta`` JSON: a ``triggers`` mapping, or
    ``amber``/``red``/``trigger_amber``/``trigger_red`` numbers."""
    try:
        meta = json.loads(meta_text or "{}")
    except json.JSONDecodeError:
        return {}
    if not isinstance(meta, dict):
        return {}
    nested = _levels(meta.get("triggers")) if "triggers" in meta else None
    if nested:
        return nested
    out: dict[str, float] = {}
    for level in TRIGGER_NAMES:
        for key in (level, f"trigger_{level}", f"{level}_trigger"):
            v = meta.get(key)
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(float(v)):
                out[level] = float(v)
                break
    return out
