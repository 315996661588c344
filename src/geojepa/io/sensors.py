"""Sensor metadata: read a ``sensors.csv`` and merge sensor tables without losing facts.

A sensors file has a header with at least ``id``; ``kind``, ``unit``, ``x``, ``y``, ``z``
and ``group`` are optional and any other column goes into the sensor's ``meta`` JSON.

Guarantees:

- an unknown kind raises `InputError` naming the file, line and the known kinds;
- a duplicate id, a missing ``id`` column or a non-numeric position raises `InputError`;
- the table read from a file keeps its file (``attrs["file"]``) and the line of every id
  (``attrs["lines"]``), so a later check (an id naming no sensor) can point at the row;
- `merge_sensors` never silently replaces a known unit or kind with a different one: that is
  a units mismatch, reported with both values and what to do.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from geojepa.errors import InputError
from geojepa.io.smalltable import row_lines
from geojepa.io.textfile import inspect_text, sniff_delimiter
from geojepa.site import SENSOR_COLUMNS, _coerce_sensors, empty_sensors, normalise_kind

_ALIASES = {
    "sensor": "id",
    "sensor_id": "id",
    "name": "id",
    "type": "kind",
    "units": "unit",
    "elevation": "z",
    "depth": "depth",
    "borehole": "group",
}


def read_sensors_table(path: str | Path) -> pd.DataFrame:
    """Read a sensors file into the site's sensors schema (kinds canonical)."""
    p = Path(path)
    info = inspect_text(p, header_lines=1)
    sep = sniff_delimiter(p, list(info.head), candidates=(",", ";", "\t"))
    df = pd.read_csv(
        p,
        sep=sep,
        dtype="str",
        keep_default_na=False,
        encoding=info.encoding,
        skipinitialspace=True,
    )
    df.columns = [_ALIASES.get(str(c).strip().lower(), str(c).strip().lower()) for c in df.columns]
    lines = row_lines(info)  # file line of each row (blank lines skipped)
    if "id" not in df.columns:
        raise InputError(
            "the sensors file has no 'id' column",
            file=p,
            line=lines.first_line - 1,
            hint="give a header with id,kind,unit,x,y,z,group",
        )
    ids = df["id"].str.strip()
    if (ids == "").any():
        i = int(np.flatnonzero((ids == "").to_numpy())[0])
        raise InputError("empty sensor id", file=p, line=int(lines[i]), column="id")
    dup = ids.duplicated().to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise InputError(
            f"sensor id {ids.iloc[i]!r} appears twice", file=p, line=int(lines[i]), column="id"
        )
    kinds = []
    for i, k in enumerate(df["kind"] if "kind" in df.columns else ["other"] * len(df)):
        kinds.append(normalise_kind(k or "other", file=p, line=int(lines[i])))
    out: dict[str, object] = {"id": ids, "kind": kinds}
    out["unit"] = df["unit"].str.strip() if "unit" in df.columns else ""
    for col in ("x", "y", "z"):
        if col in df.columns:
            num = pd.to_numeric(df[col].replace("", np.nan), errors="coerce")
            bad = num.isna() & (df[col].str.strip() != "")
            if bad.any():
                i = int(np.flatnonzero(bad.to_numpy())[0])
                raise InputError(
                    f"position {col}={df[col].iloc[i]!r} is not a number",
                    file=p,
                    line=int(lines[i]),
                    column=col,
                    hint="positions are metres in the site frame; leave empty if unknown",
                )
            out[col] = num
    out["group"] = df["group"].str.strip() if "group" in df.columns else ""
    extra = [c for c in df.columns if c not in SENSOR_COLUMNS]
    base_meta = [_json(m, p, int(lines[i])) for i, m in enumerate(df.get("meta", [""] * len(df)))]
    metas = []
    for i in range(len(df)):
        m = dict(base_meta[i])
        for c in extra:
            if df[c].iloc[i] != "":
                m[c] = df[c].iloc[i]
        metas.append(json.dumps(m, sort_keys=True))
    out["meta"] = metas
    table = _coerce_sensors(pd.DataFrame(out))
    table.attrs["file"] = str(p)
    table.attrs["lines"] = {str(sid): int(lines[i]) for i, sid in enumerate(ids)}
    return table


def _json(text: str, p: Path, line: int) -> Mapping[str, object]:
    if not text or not str(text).strip():
        return {}
    try:
        val = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(
            f"meta is not valid JSON ({err.msg})", file=p, line=line, column="meta"
        ) from err
    if not isinstance(val, dict):
        raise InputError("meta must be a JSON object", file=p, line=line, column="meta")
    return val


def merge_sensors(
    base: pd.DataFrame,
    new: pd.DataFrame,
    *,
    file: str | Path | None = None,
    base_name: str = "the site",
) -> pd.DataFrame:
    """Sensors of `base` plus those of `new`; known facts of `base` fill unknowns in `new`.

    Where both give a unit (or a kind other than ``other``) and they differ, raise
    `InputError`: the same sensor cannot be read in two units.
    """
    if base is None or len(base) == 0:
        return _coerce_sensors(new) if len(new) else empty_sensors()
    if len(new) == 0:
        return _coerce_sensors(base)
    base = _coerce_sensors(base).set_index("id", drop=False)
    rows = {sid: dict(r) for sid, r in base.iterrows()}
    for _, r in _coerce_sensors(new).iterrows():
        sid = str(r["id"])
        if sid not in rows:
            rows[sid] = dict(r)
            continue
        old = rows[sid]
        if r["unit"] and old["unit"] and r["unit"] != old["unit"]:
            raise InputError(
                f"units mismatch for sensor {sid!r}: {r['unit']!r} here, {old['unit']!r} in "
                f"{base_name}",
                file=file,
                column=sid,
                hint="convert the values to one unit, or give the sensor a new id",
            )
        if r["kind"] != "other" and old["kind"] != "other" and r["kind"] != old["kind"]:
            raise InputError(
                f"sensor {sid!r} is a {r['kind']} here but a {old['kind']} in {base_name}",
                file=file,
                column=sid,
                hint="fix the kind in sensors.csv, or give the sensor a new id",
            )
        merged = dict(old)
        if not old["unit"]:
            merged["unit"] = r["unit"]
        if old["kind"] == "other":
            merged["kind"] = r["kind"]
        for col in ("x", "y", "z"):
            if pd.isna(old[col]) and not pd.isna(r[col]):
                merged[col] = r[col]
        if not old["group"]:
            merged["group"] = r["group"]
        m_old = json.loads(str(old["meta"]) or "{}")
        m_new = json.loads(str(r["meta"]) or "{}")
        merged["meta"] = json.dumps({**m_new, **m_old}, sort_keys=True)
        rows[sid] = merged
    return _coerce_sensors(pd.DataFrame(list(rows.values())))


def apply_sensor_table(
    found: pd.DataFrame, table: pd.DataFrame | None, *, file: str | Path, table_name: str
) -> pd.DataFrame:
    """Sensors found in a file, with kind/unit/position from a sensors table (its rows of
    other sensors are not the file's).

    A unit in the file that contradicts the table is a units mismatch (`InputError`).
    """
    if table is None or len(table) == 0:
        return found
    mine = table[table["id"].astype(str).isin(set(map(str, found["id"])))]
    mine.attrs.update(table.attrs)
    return merge_sensors(mine, found, file=file, base_name=table_name)
