"""Vibrating-wire gauges: from frequency (or digits) to pressure, with calibration as data.

A vibrating-wire piezometer reports the resonant frequency f (Hz) of a wire; loggers often
report "digits" R = f² / 1000 instead. The linear calibration is

    P = G (R1 - R0) + K (T1 - T0) + B (S1 - S0)

with R1, T1, S1 the current digits, temperature and barometric pressure and R0, T0, S0 their
values at the zero reading. G (gauge factor), K (thermal factor) and B (barometric factor,
usually -1 when P and S share a unit) carry their signs: signs and constants are data, one
row per gauge, never code.

A calibration table (CSV, or JSON: a list of objects) has the columns

- ``sensor_id`` (the raw gauge), ``reading_unit`` (``Hz`` or ``digits``), ``gauge_factor``,
  ``zero_reading``, ``out_unit``;
- optional ``out_id`` (default ``<sensor_id>_P``), ``kind`` (default ``piezometer``);
- optional thermal term: ``thermal_factor``, ``zero_temperature``, ``temp_sensor``;
- optional barometric term: ``baro_factor``, ``baro_zero``, ``baro_sensor``;
- optional ``align`` (default ``30min``): how far a temperature or barometer reading may be
  from the gauge reading it corrects.

Guarantees: the raw gauge readings are kept; the pressure is a new sensor whose readings are
flagged ``converted`` (or keep the raw reading's non-ok flag; ``missing`` where an input is
missing or no correction reading lies within `align`); a table with a missing column, a
non-number or a term given in part raises `InputError` naming the file and line.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from geojepa.errors import InputError
from geojepa.io.result import QUALITY_DTYPE
from geojepa.io.smalltable import require_columns, row_lines
from geojepa.io.textfile import inspect_text
from geojepa.site import Quality, normalise_kind

REQUIRED = ("sensor_id", "reading_unit", "gauge_factor", "zero_reading", "out_unit")
THERMAL = ("thermal_factor", "zero_temperature", "temp_sensor")
BARO = ("baro_factor", "baro_zero", "baro_sensor")
NUMERIC = (
    "gauge_factor",
    "zero_reading",
    "thermal_factor",
    "zero_temperature",
    "baro_factor",
    "baro_zero",
)


def digits(frequency_hz: np.ndarray) -> np.ndarray:
    """Vibrating-wire digits from frequency: R = f² / 1000."""
    f = np.asarray(frequency_hz, dtype=np.float64)
    return f * f / 1000.0


def pressure(
    r1: np.ndarray,
    *,
    gauge_factor: float,
    zero_reading: float,
    thermal_factor: float = 0.0,
    t1: np.ndarray | float = 0.0,
    zero_temperature: float = 0.0,
    baro_factor: float = 0.0,
    s1: np.ndarray | float = 0.0,
    baro_zero: float = 0.0,
) -> np.ndarray:
    """P = G (R1 - R0) + K (T1 - T0) + B (S1 - S0), elementwise."""
    return (
        gauge_factor * (np.asarray(r1, dtype=np.float64) - zero_reading)
        + thermal_factor * (np.asarray(t1, dtype=np.float64) - zero_temperature)
        + baro_factor * (np.asarray(s1, dtype=np.float64) - baro_zero)
    )


def load_calibration(path: str | Path) -> pd.DataFrame:
    """Read and check a calibration table (CSV or JSON), one row per gauge."""
    p = Path(path)
    info = inspect_text(p, header_lines=1)
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise InputError(
                f"not valid JSON ({err.msg})", file=p, line=err.lineno, column=err.colno
            ) from err
        if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
            raise InputError("a JSON calibration table is a list of objects", file=p)
        df = pd.DataFrame(data).astype("str").replace({"None": "", "nan": ""})
        lines: list[int | None] = [None] * len(df)
    else:
        df = pd.read_csv(p, dtype="str", keep_default_na=False, skipinitialspace=True)
        lmap = row_lines(info)  # file line of each row (blank lines skipped)
        lines = [lmap[i] for i in range(len(df))]
    df.columns = [str(c).strip().lower() for c in df.columns]
    hint = "columns: " + ", ".join(REQUIRED) + " (+ thermal and baro terms)"
    require_columns(df, REQUIRED, p, "the calibration table", hint)
    return check_calibration(df, file=p, lines=lines)


def check_calibration(
    df: pd.DataFrame, *, file: str | Path = "calibration", lines: list[int | None] | None = None
) -> pd.DataFrame:
    """Validate a calibration table; numbers become float, absent terms become zero."""
    lines = lines or [None] * len(df)
    out = df.copy()
    for col in (*THERMAL, *BARO, "out_id", "kind", "align"):
        if col not in out.columns:
            out[col] = ""
    for i in range(len(out)):
        row = out.iloc[i]
        line = lines[i]
        sid = str(row["sensor_id"]).strip()
        if not sid:
            raise InputError("empty sensor_id", file=file, line=line, column="sensor_id")
        unit = str(row["reading_unit"]).strip().lower()
        if unit not in ("hz", "digits"):
            raise InputError(
                f"reading_unit {row['reading_unit']!r} is neither Hz nor digits",
                file=file,
                line=line,
                column="reading_unit",
            )
        for group in (THERMAL, BARO):
            given = [bool(str(row[c]).strip()) for c in group]
            if any(given) and not all(given):
                missing = [c for c, g in zip(group, given, strict=True) if not g]
                raise InputError(
                    f"the term is given in part: {', '.join(missing)} missing",
                    file=file,
                    line=line,
                    hint="give all of " + ", ".join(group) + " or none",
                )
        normalise_kind(str(row["kind"]).strip() or "piezometer", file=file, line=line)
        if str(row["align"]).strip():
            try:
                pd.Timedelta(str(row["align"]).strip())
            except ValueError as err:
                raise InputError(
                    f"align {row['align']!r} is not a duration", file=file, line=line
                ) from err
    for col in NUMERIC:
        vals = out[col].astype("str").str.strip()
        num = pd.to_numeric(vals.replace("", "0"), errors="coerce")
        if num.isna().any():
            i = int(np.flatnonzero(num.isna().to_numpy())[0])
            raise InputError(
                f"{col} {vals.iloc[i]!r} is not a number", file=file, line=lines[i], column=col
            )
        out[col] = num.astype(float)
    dup = out["sensor_id"].duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise InputError("the gauge appears twice", file=file, line=lines[i], column="sensor_id")
    return out.reset_index(drop=True)


def convert(readings: pd.DataFrame, calibration: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pressure readings and their sensors for every calibrated gauge found in `readings`.

    `readings` is a long table (the gauges and their temperature/barometer sensors).
    Returns (readings, sensors) of the new pressure sensors; empty when no gauge is present.
    """
    out_rows: list[pd.DataFrame] = []
    sensors: list[dict[str, object]] = []
    by_sensor = {str(k): g for k, g in readings.groupby("sensor_id", sort=False, observed=True)}
    ok = Quality.OK.value
    for _, cal in calibration.iterrows():
        sid = str(cal["sensor_id"]).strip()
        if sid not in by_sensor:
            continue
        g = by_sensor[sid].sort_values("timestamp")
        raw = g["value"].to_numpy(dtype=np.float64)
        r1 = digits(raw) if str(cal["reading_unit"]).strip().lower() == "hz" else raw
        align = pd.Timedelta(str(cal["align"]).strip() or "30min")
        t1 = _aligned(g, by_sensor, str(cal["temp_sensor"]).strip(), align)
        s1 = _aligned(g, by_sensor, str(cal["baro_sensor"]).strip(), align)
        p = pressure(
            r1,
            gauge_factor=float(cal["gauge_factor"]),
            zero_reading=float(cal["zero_reading"]),
            thermal_factor=float(cal["thermal_factor"]),
            t1=t1,
            zero_temperature=float(cal["zero_temperature"]),
            baro_factor=float(cal["baro_factor"]),
            s1=s1,
            baro_zero=float(cal["baro_zero"]),
        )
        q_raw = g["quality"].astype("str").to_numpy()
        q = np.where(q_raw == ok, Quality.CONVERTED.value, q_raw)
        q = np.where(np.isfinite(p), q, Quality.MISSING.value)
        out_id = str(cal["out_id"]).strip() or f"{sid}_P"
        out_rows.append(
            pd.DataFrame(
                {
                    "timestamp": g["timestamp"].to_numpy(),
                    "sensor_id": out_id,
                    "value": np.where(np.isfinite(p), p, np.nan),
                    "quality": pd.Categorical(q, dtype=QUALITY_DTYPE),
                    "source": g["source"].astype("str").to_numpy(),
                }
            )
        )
        meta = {
            "from": sid,
            "formula": "G(R1-R0)+K(T1-T0)+B(S1-S0)",
            "G": float(cal["gauge_factor"]),
            "R0": float(cal["zero_reading"]),
            "K": float(cal["thermal_factor"]),
            "T0": float(cal["zero_temperature"]),
            "B": float(cal["baro_factor"]),
            "S0": float(cal["baro_zero"]),
            "temp_sensor": str(cal["temp_sensor"]).strip(),
            "baro_sensor": str(cal["baro_sensor"]).strip(),
        }
        sensors.append(
            {
                "id": out_id,
                "kind": normalise_kind(str(cal["kind"]).strip() or "piezometer"),
                "unit": str(cal["out_unit"]).strip(),
                "meta": json.dumps(meta, sort_keys=True),
            }
        )
    if not out_rows:
        return pd.DataFrame(), pd.DataFrame()
    return pd.concat(out_rows, ignore_index=True), pd.DataFrame(sensors)


def _aligned(
    g: pd.DataFrame, by_sensor: dict[str, pd.DataFrame], other: str, align: pd.Timedelta
) -> np.ndarray | float:
    """Values of sensor `other` at the gauge's times (nearest within `align`; NaN if none)."""
    if not other:
        return 0.0
    if other not in by_sensor:
        raise InputError(
            f"the calibration names correction sensor {other!r}, which has no readings",
            hint="ingest its file in the same command or before",
        )
    o = by_sensor[other].sort_values("timestamp")
    o = o[np.isfinite(o["value"].to_numpy(dtype=np.float64))]
    left = pd.DataFrame({"timestamp": g["timestamp"].to_numpy()})
    right = pd.DataFrame({"timestamp": o["timestamp"].to_numpy(), "v": o["value"].to_numpy()})
    m = pd.merge_asof(left, right, on="timestamp", direction="nearest", tolerance=align)
    return np.asarray(m["v"].to_numpy(dtype=np.float64))
