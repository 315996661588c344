"""GNSS station position time series in the UNAVCO/PBO ``.pbo.*.csv`` format (v1.2).

The file opens with ``PBO Station Position Time Series.`` and ``Key, value`` header lines
(4-character ID, station name, reference frame, reference position as latitude, longitude
and elevation), then a column line ``Date, North (mm), East (mm), Vertical (mm), North Std.
Deviation (mm), ..., Quality,`` and one row per day.

Each station gives three sensors, ``<ID>_N``, ``<ID>_E``, ``<ID>_U`` (kind ``gnss``, unit
mm, displacement from the first day). Each day is stored at 00:00 UTC. A day whose formal
standard deviation for a component exceeds `std_limit` times that component's median (and
`std_floor_mm`) is kept and flagged ``outlier``; the solution type (final/suppl/suppf) of
each day is counted in the warnings.

Guarantees: the reference position goes into each sensor's metadata (``lat``, ``lon``,
``elevation_m``, ``station``, ``frame``); a file without the column line, or with a row
that cannot be read, raises `InputError` naming the line; the standard deviations are used
for the outlier flag only (said in the warnings), never silently lost from a reading.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from geojepa.errors import InputError
from geojepa.io.csvcore import float_columns, read_delimited, text_column
from geojepa.io.result import (
    ReadResult,
    TimeRowLines,
    code_of,
    count_quality,
    long_from_columns,
    quality_codes,
    sensors_for,
)
from geojepa.io.textfile import TextInfo, inspect_text, split_line
from geojepa.io.times import check_increasing, parse_times
from geojepa.site import Quality

MAGIC = "PBO Station Position Time Series"
_NUM = r"(-?\d+(?:\.\d+)?)"
_REF_RE = re.compile(
    rf"{_NUM}\s*North Latitude,\s*{_NUM}\s*East Longitude,\s*{_NUM}\s*meters", re.IGNORECASE
)


def is_pbo(first_line: str) -> bool:
    return first_line.lstrip("\ufeff").strip().startswith(MAGIC)


def read_pbo(
    path: str | Path,
    *,
    source: str | None = None,
    std_limit: float = 5.0,
    std_floor_mm: float = 10.0,
    info: TextInfo | None = None,
) -> ReadResult:
    """Read a PBO position file (see the module docstring)."""
    p = Path(path)
    info = info or inspect_text(p, header_lines=20)
    head = list(info.head)
    if not head or not is_pbo(head[0]):
        raise InputError(
            f"not a PBO position file: the first line must be {MAGIC!r}", file=p, line=1
        )
    meta: dict[str, str] = {}
    col_line = None
    for i, line in enumerate(head):
        if line.strip().lower().startswith("date,"):
            col_line = i
            break
        if "," in line:
            key, _, val = line.partition(",")
            meta[key.strip()] = val.strip()
    if col_line is None:
        raise InputError(
            "no column line ('Date, North (mm), ...') in the PBO header",
            file=p,
            hint="the file is truncated or not a PBO position file",
        )
    station = meta.get("4-character ID", "").strip() or p.name.split(".")[0].split(" ")[0]
    names = [c.strip() for c in split_line(head[col_line], ",")]
    if names and names[-1] == "":
        names[-1] = "_trailing"
    want = ["North (mm)", "East (mm)", "Vertical (mm)"]
    stds = ["North Std. Deviation (mm)", "East Std. Deviation (mm)", "Vertical Std. Deviation (mm)"]
    for w in [*want, *stds, "Quality"]:
        if w not in names:
            raise InputError(f"the PBO column line has no {w!r} column", file=p, line=col_line + 1)
    table, lmap = read_delimited(
        info,
        names=names,
        first_line=col_line + 2,
        sep=",",
        numeric=[*want, *stds],
        text=[n for n in names if n not in want and n not in stds],
    )
    if table.num_rows == 0:
        raise InputError("the PBO file has no data rows", file=p, line=col_line + 2)
    pt = parse_times(text_column(table, names[0]), file=p, lines=lmap, column="Date", tz="UTC")
    dup = check_increasing(pt.utc, file=p, lines=lmap, column="Date")
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise InputError("the day repeats the previous row's day", file=p, line=lmap[i])
    vals = float_columns(table, want)
    sds = float_columns(table, stds)
    codes = []
    out_code = code_of(Quality.OUTLIER)
    ok_code = code_of(Quality.OK)
    n_out = 0
    for v, sd in zip(vals, sds, strict=True):
        q = quality_codes(v, pt.flags)
        med = float(np.nanmedian(sd)) if np.isfinite(sd).any() else np.nan
        bad = np.isfinite(sd) & (sd > max(std_limit * med, std_floor_mm))
        q = np.where((q == ok_code) & bad, out_code, q).astype(np.int8)
        n_out += int(bad.sum())
        codes.append(q)
    ids = [f"{station}_N", f"{station}_E", f"{station}_U"]
    src = source or p.name
    readings = long_from_columns(pt.utc, vals, ids, src, codes=codes)
    sol = text_column(table, "Quality")
    kinds, counts = np.unique(np.char.strip(sol.astype(str)), return_counts=True)
    warnings = [
        *info.warnings,
        f"{p}: solution types {dict(zip(kinds.tolist(), counts.tolist(), strict=True))}; "
        f"standard deviations used only to flag {n_out} outlier reading(s)",
    ]
    ref = _REF_RE.search(meta.get("Reference position", ""))
    base: dict[str, object] = {
        "station": station,
        "station_name": meta.get("Station name", "").strip(),
        "frame": meta.get("Reference Frame", ""),
    }
    if ref:
        base |= {
            "lat": float(ref.group(1)),
            "lon": float(ref.group(2)),
            "elevation_m": float(ref.group(3)),
        }
    comp = {"N": "north", "E": "east", "U": "up"}
    sensor_meta = {i: json.dumps(base | {"component": comp[i[-1]]}, sort_keys=True) for i in ids}
    sensors = sensors_for(
        ids, units=dict.fromkeys(ids, "mm"), kinds=dict.fromkeys(ids, "gnss"), meta=sensor_meta
    )
    sensors["group"] = station
    if ref:
        sensors["z"] = float(ref.group(3))
    return ReadResult(
        readings=readings,
        sensors=sensors,
        quality=count_quality(readings),
        warnings=tuple(warnings),
        source=src,
        path=p,
        fmt="pbo",
        n_rows=table.num_rows,
        line_of=TimeRowLines(pt.utc, lmap),
    )
