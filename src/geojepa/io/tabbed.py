"""Headerless tab-separated logger files, read through a column map.

Some loggers write bare rows (``2015-12-18 00:15:00<TAB>10232<TAB>12.67<TAB>0<TAB>1421.35``)
with no header: which column is which lives in the station's documentation. A `ColumnMap`
says it as data, one row per file column::

    column,role,sensor_id,kind,unit,scale,offset,conversion,note
    0,time,,,,,,,
    1,skip,,,,,,,record counter
    2,sensor,MLP_battery,other,V,1,0,linear,
    3,sensor,MLP_rain,rain_gauge,mm,0.254,0,linear,tips of 0.01 inch

Roles: ``time`` (one column with date and time), or ``year``/``month``/``day``/``hour``/
``minute``/``second`` (time split over columns), ``sensor``, ``skip``. Conversions:
``linear`` (value * scale + offset) and ``vw_digits`` (a vibrating-wire frequency f in Hz to
digits f²/1000, then * scale + offset). Readings changed by a conversion are flagged
``converted``.

Guarantees: every column of the file must be in the map (a column the map does not name is
an `InputError`, so nothing is dropped unseen; ``skip`` columns are listed in the
warnings); the map itself is checked (unknown role, kind or conversion, duplicate column or
sensor id -> `InputError` naming the map's line); times and values follow the wide reader's
rules (order, duplicates, missing and non-finite cells).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from geojepa.errors import InputError
from geojepa.io.csvcore import float_columns, read_delimited, text_column
from geojepa.io.result import (
    ReadResult,
    TimeRowLines,
    code_of,
    count_quality,
    flag_codes,
    long_from_columns,
    quality_codes,
    sensors_for,
)
from geojepa.io.smalltable import row_lines
from geojepa.io.textfile import TextInfo, inspect_text, split_line
from geojepa.io.times import ParsedTimes, check_increasing, from_naive, parse_times
from geojepa.io.wide import kept_lines, resolve_duplicate_rows
from geojepa.site import Quality, normalise_kind

ROLES = ("time", "year", "month", "day", "hour", "minute", "second", "sensor", "skip")
CONVERSIONS = ("linear", "vw_digits")
_PARTS = ("year", "month", "day", "hour", "minute", "second")


@dataclass(frozen=True)
class ColumnSpec:
    """What one file column holds (see the module docstring)."""

    column: int  # 0-based position in the file
    role: str
    sensor_id: str = ""
    kind: str = "other"
    unit: str = ""
    scale: float = 1.0
    offset: float = 0.0
    conversion: str = "linear"
    note: str = ""

    @property
    def changes_value(self) -> bool:
        return self.conversion != "linear" or self.scale != 1.0 or self.offset != 0.0


@dataclass(frozen=True)
class ColumnMap:
    """The columns of a headerless file, in file order."""

    columns: tuple[ColumnSpec, ...]
    name: str = "column map"

    def __post_init__(self) -> None:
        specs = sorted(self.columns, key=lambda c: c.column)
        object.__setattr__(self, "columns", tuple(specs))
        _validate(specs, self.name, None)

    @property
    def sensors(self) -> list[ColumnSpec]:
        return [c for c in self.columns if c.role == "sensor"]

    @classmethod
    def from_rows(cls, rows: Sequence[Mapping[str, object]], name: str = "column map") -> ColumnMap:
        return cls(tuple(_spec(r, name, None) for r in rows), name=name)


def load_column_map(path: str | Path) -> ColumnMap:
    """Read a column map CSV (header ``column,role,sensor_id,kind,unit,scale,offset,...``)."""
    p = Path(path)
    info = inspect_text(p, header_lines=1)
    df = pd.read_csv(p, dtype="str", keep_default_na=False, skipinitialspace=True)
    df.columns = [str(c).strip().lower() for c in df.columns]
    lmap = row_lines(info)  # file line of each row (blank lines skipped)
    for need in ("column", "role"):
        if need not in df.columns:
            raise InputError(
                f"the column map has no {need!r} column",
                file=p,
                line=lmap.first_line - 1,
                hint="header: column,role,sensor_id,kind,unit,scale,offset,conversion,note",
            )
    lines = [lmap[i] for i in range(len(df))]
    specs = [
        _spec({str(k): v for k, v in r.items()}, str(p), lines[i])
        for i, r in enumerate(df.to_dict("records"))
    ]
    _validate(specs, str(p), lines)
    return ColumnMap(tuple(specs), name=str(p))


def _spec(r: Mapping[str, object], name: str, line: int | None) -> ColumnSpec:
    def text(key: str, default: str = "") -> str:
        v = r.get(key, default)
        return default if v is None or (isinstance(v, float) and np.isnan(v)) else str(v).strip()

    try:
        col = int(text("column"))
    except ValueError as err:
        raise InputError(
            f"column {text('column')!r} is not a 0-based column number", file=name, line=line
        ) from err
    role = text("role").lower()
    if role not in ROLES:
        raise InputError(
            f"unknown role {role!r}", file=name, line=line, hint="roles are " + ", ".join(ROLES)
        )
    conv = text("conversion", "linear").lower() or "linear"
    if conv not in CONVERSIONS:
        raise InputError(
            f"unknown conversion {conv!r}",
            file=name,
            line=line,
            hint="conversions are " + ", ".join(CONVERSIONS),
        )
    nums = {}
    for key, default in (("scale", 1.0), ("offset", 0.0)):
        t = text(key)
        try:
            nums[key] = float(t) if t else default
        except ValueError as err:
            raise InputError(f"{key} {t!r} is not a number", file=name, line=line) from err
    kind = "other"
    if role == "sensor":
        kind = normalise_kind(text("kind", "other") or "other", file=name, line=line)
        if not text("sensor_id"):
            raise InputError("a sensor column needs a sensor_id", file=name, line=line)
    return ColumnSpec(
        column=col,
        role=role,
        sensor_id=text("sensor_id"),
        kind=kind,
        unit=text("unit"),
        scale=nums["scale"],
        offset=nums["offset"],
        conversion=conv,
        note=text("note"),
    )


def _validate(specs: Sequence[ColumnSpec], name: str, lines: list[int] | None) -> None:
    seen: dict[int, int] = {}
    ids: set[str] = set()
    for k, s in enumerate(specs):
        line = None if lines is None else lines[k]
        if s.column < 0:
            raise InputError("column numbers start at 0", file=name, line=line)
        if s.column in seen:
            raise InputError(f"column {s.column} is mapped twice", file=name, line=line)
        seen[s.column] = k
        if s.role == "sensor":
            if s.sensor_id in ids:
                raise InputError(f"sensor id {s.sensor_id!r} appears twice", file=name, line=line)
            ids.add(s.sensor_id)
    roles = [s.role for s in specs]
    if "time" in roles and any(r in _PARTS for r in roles):
        raise InputError("map either one time column or the time parts, not both", file=name)
    if "time" not in roles and not all(r in roles for r in _PARTS[:3]):
        raise InputError(
            "the column map has no time: give a 'time' column or year, month and day columns",
            file=name,
        )
    if roles.count("time") > 1:
        raise InputError("only one 'time' column", file=name)
    if not ids:
        raise InputError("the column map names no sensor column", file=name)


def read_tabbed(
    path: str | Path,
    column_map: ColumnMap,
    *,
    sep: str | None = None,
    tz: str | None = "UTC",
    time_format: str | None = None,
    encoding: str | None = None,
    missing_values: Sequence[str] = (),
    clock_repeat: bool = False,
    duplicate_times: str = "error",
    source: str | None = None,
    info: TextInfo | None = None,
) -> ReadResult:
    """Read a headerless file with `column_map` (see the module docstring)."""
    p = Path(path)
    info = info or inspect_text(p, encoding=encoding, header_lines=0)
    first = next((ln for ln in info.head if ln.strip()), "")
    delim = sep or ("\t" if "\t" in first else ",")
    n_fields = len(split_line(first, delim))
    specs = column_map.columns
    mapped = {s.column for s in specs}
    if max(mapped) >= n_fields:
        raise InputError(
            f"the column map names column {max(mapped)} but the rows have {n_fields} fields "
            f"(0..{n_fields - 1})",
            file=p,
            line=1,
            hint=f"check the column map {column_map.name} and the separator",
        )
    unmapped = [i for i in range(n_fields) if i not in mapped]
    if unmapped:
        raise InputError(
            f"column {unmapped[0]} of the file is not in the column map ({column_map.name})",
            file=p,
            line=1,
            hint="add a row for it (role 'skip' to leave it out on purpose)",
        )
    names = [f"c{i}" for i in range(n_fields)]
    time_specs = [s for s in specs if s.role == "time"]
    numeric = [names[s.column] for s in specs if s.role in (*_PARTS, "sensor")]
    text = [names[s.column] for s in specs if s.role in ("time", "skip")]
    table, lmap = read_delimited(
        info,
        names=names,
        first_line=1,
        sep=delim,
        numeric=numeric,
        text=text,
        missing_values=missing_values,
    )
    if table.num_rows == 0:
        raise InputError("the file has no data rows", file=p)
    if time_specs:
        tname = names[time_specs[0].column]
        pt: ParsedTimes = parse_times(
            text_column(table, tname),
            file=p,
            lines=lmap,
            column=time_specs[0].column,
            tz=tz,
            fmt=time_format,
            clock_repeat=clock_repeat,
        )
        tcol: str | int = time_specs[0].column
    else:
        pt = from_naive(_from_parts(table, specs, names, p, lmap), tz, clock_repeat=clock_repeat)
        tcol = "time"
    sensor_specs = column_map.sensors
    cols = float_columns(table, [names[s.column] for s in sensor_specs])
    warnings = list(info.warnings)
    dup = check_increasing(pt.utc, file=p, lines=lmap, column=tcol)
    flags = pt.flags
    keep = None
    if dup.any():
        keep, suspect = resolve_duplicate_rows(
            dup, cols, p, lmap, warnings, keep_first=duplicate_times == "keep_first"
        )
        flags = np.where(suspect, Quality.CLOCK.value, flags)
        cols = [c[keep] for c in cols]
        flags = flags[keep]
    times = pt.utc if keep is None else pt.utc[keep]
    tf = flag_codes(flags)
    out_cols, codes = [], []
    conv_code = code_of(Quality.CONVERTED)
    ok_code = code_of(Quality.OK)
    for s, v in zip(sensor_specs, cols, strict=True):
        q = quality_codes(v, tf)
        if s.conversion == "vw_digits":
            v = v * v / 1000.0
        v = v * s.scale + s.offset
        if s.changes_value:
            q = np.where(q == ok_code, conv_code, q).astype(np.int8)
        out_cols.append(v)
        codes.append(q)
    skipped = [s for s in specs if s.role == "skip"]
    if skipped:
        warnings.append(
            f"{p}: columns left out by the column map: "
            + ", ".join(f"{s.column}" + (f" ({s.note})" if s.note else "") for s in skipped)
        )
    src = source or p.name
    ids = [s.sensor_id for s in sensor_specs]
    readings = long_from_columns(times, out_cols, ids, src, codes=codes)
    meta = {
        s.sensor_id: json.dumps(
            {"column": s.column, "conversion": s.conversion, "scale": s.scale, "offset": s.offset}
            | ({"note": s.note} if s.note else {}),
            sort_keys=True,
        )
        for s in sensor_specs
    }
    sensors = sensors_for(
        ids,
        units={s.sensor_id: s.unit for s in sensor_specs},
        kinds={s.sensor_id: s.kind for s in sensor_specs},
        meta=meta,
    )
    return ReadResult(
        readings=readings,
        sensors=sensors,
        quality=count_quality(readings),
        warnings=tuple(warnings),
        source=src,
        path=p,
        fmt="tabbed",
        n_rows=table.num_rows,
        line_of=TimeRowLines(times, kept_lines(lmap, keep, table.num_rows)),
    )


def _from_parts(
    table: object, specs: Sequence[ColumnSpec], names: list[str], p: Path, lmap: object
) -> np.ndarray:
    """Naive times (N,) from year/month/day[/hour/minute/second] columns."""
    import pyarrow as pa

    assert isinstance(table, pa.Table)
    parts: dict[str, np.ndarray] = {}
    for s in specs:
        if s.role in _PARTS:
            (parts[s.role],) = float_columns(table, [names[s.column]])
    n = table.num_rows
    for key in _PARTS:
        if key not in parts:
            parts[key] = np.zeros(n)
    bounds = {"year": (1900, 2200), "month": (1, 12), "day": (1, 31), "hour": (0, 23)}
    bounds |= {"minute": (0, 59), "second": (0, 60)}
    for key, v in parts.items():
        lo, hi = bounds[key]
        bad = ~np.isfinite(v) | (v != np.round(v)) | (v < lo) | (v > hi)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            col = next(s.column for s in specs if s.role == key)
            raise InputError(
                f"{key} {float(v[i]):g} is not a whole number in {lo}..{hi}",
                file=p,
                line=lmap[i],  # type: ignore[index]
                column=col,
                hint="check the column map's time columns",
            )
    frame = pd.DataFrame({k: parts[k].astype(np.int64) for k in _PARTS})
    got = pd.to_datetime(frame, errors="coerce")
    if got.isna().any():
        i = int(np.flatnonzero(got.isna().to_numpy())[0])
        raise InputError(
            "the date does not exist (e.g. 31 April)",
            file=p,
            line=lmap[i],  # type: ignore[index]
        )
    return np.asarray(got.to_numpy(dtype="datetime64[ns]"))
