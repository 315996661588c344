"""Daily climate and discharge tables: NOAA GHCN-Daily exports and USGS daily values.

NOAA: tab- or comma-separated ``DATE PRCP TMAX ...`` with dates as ``YYYYMMDD`` (or ISO) and
``-9999`` for a missing value. USGS: ``datetime<TAB>cfs`` with US-style dates. Both are
wide tables; these readers only add what the formats imply: the missing-value sentinel,
the units and kinds of the usual NOAA element codes, and a station prefix on sensor ids
(so two stations' ``PRCP`` do not collide).

Guarantees: ``-9999`` cells are kept as NaN readings flagged ``missing`` (counted), never
dropped; daily dates are read as 00:00 UTC of that day; anything else follows the wide
reader.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from geojepa.io.result import ReadResult
from geojepa.io.wide import read_wide

NOAA_MISSING = ("-9999", "-9999.0", "-9999.00")
NOAA_ELEMENTS: Mapping[str, tuple[str, str]] = {
    # element: (kind, unit) in the standard (US customary) GHCN-Daily export
    "PRCP": ("rain_gauge", "in"),
    "SNOW": ("rain_gauge", "in"),
    "SNWD": ("other", "in"),
    "TMAX": ("thermometer", "degF"),
    "TMIN": ("thermometer", "degF"),
    "TAVG": ("thermometer", "degF"),
    "TOBS": ("thermometer", "degF"),
}


def read_noaa_daily(
    path: str | Path,
    *,
    prefix: str = "",
    units: Mapping[str, str] | None = None,
    source: str | None = None,
) -> ReadResult:
    """Read a NOAA daily export. `units` overrides the assumed unit per element."""
    r = read_wide(path, missing_values=NOAA_MISSING, source=source)
    return _dress(r, prefix, NOAA_ELEMENTS, units or {})


def read_usgs_daily(
    path: str | Path, *, prefix: str = "", unit: str = "ft3/s", source: str | None = None
) -> ReadResult:
    """Read a USGS daily-values table (discharge in cubic feet per second by default)."""
    r = read_wide(path, source=source)
    elements = {c: ("discharge", unit) for c in r.sensors["id"]}
    return _dress(r, prefix, elements, {})


def _dress(
    r: ReadResult,
    prefix: str,
    elements: Mapping[str, tuple[str, str]],
    units: Mapping[str, str],
) -> ReadResult:
    from dataclasses import replace

    sensors = r.sensors.copy()
    for i, sid in enumerate(list(sensors["id"])):
        key = str(sid).upper() if str(sid).upper() in elements else str(sid)
        kind, unit = elements.get(key, ("other", ""))
        sensors.loc[i, "kind"] = kind
        sensors.loc[i, "unit"] = units.get(str(sid), unit)
    readings = r.readings
    if prefix:
        new_ids = {str(s): f"{prefix}{s}" for s in sensors["id"]}
        sensors["id"] = [new_ids[str(s)] for s in sensors["id"]]
        readings = readings.copy()
        readings["sensor_id"] = readings["sensor_id"].cat.rename_categories(new_ids)
    return replace(r, sensors=sensors, readings=readings)
