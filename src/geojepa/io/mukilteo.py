"""Build one site from the USGS Mukilteo bluff stations (``../shared/data/mukilteo-ralhs``).

Files (``data/RALHS``): ``wa<STATION>_14d.txt``, headerless tab-separated raw logger rows
(15 min, two weeks), and ``wa<STATION>_rain.txt``, whitespace-separated
``year month day hour minute rainfall`` (inches per 15 min, four months). Both keep local
standard time, taken as UTC-8 (``Etc/GMT+8``); two rain files show the logger clock set
back by one hour by hand (a daylight-saving repeat away from the calendar date): it is
resolved in order and the repeated readings are flagged ``dst_repeat``.

The column maps below are data (one row per file column), written from the station
scripts of the USGS repository (``src/pyth_scripts``): conversions given there and in the
data README are applied (volumetric water content 2.975 V - 0.4; tensiometer pressure
-0.1 x + 100 kPa; tensiometer temperature 0.05 x - 30 °C; barometer 0.024 x + 50 kPa; rain
0.254 mm per tip) and flagged ``converted``. Vibrating-wire frequencies, thermistor
resistances and raw air-temperature signals stay in raw units (their calibrations are
nonlinear; see the sensors' notes). Unused channels are mapped ``skip`` with a note.
"""

from __future__ import annotations

from pathlib import Path

from geojepa.errors import InputError
from geojepa.io.ingest import IngestReport, ingest
from geojepa.io.result import ReadResult
from geojepa.io.tabbed import ColumnMap, read_tabbed

TZ = "Etc/GMT+8"
VWC = (2.975, -0.4)
TENS_P = (-0.1, 100.0)
TENS_T = (0.05, -30.0)
BARO = (0.024, 50.0)
TIP_MM = 0.254


def _row(col: int, role: str, sid: str = "", kind: str = "other", unit: str = "",
         scale: float = 1.0, offset: float = 0.0, note: str = "") -> dict[str, object]:  # fmt: skip
    return {"column": col, "role": role, "sensor_id": sid, "kind": kind, "unit": unit,
            "scale": scale, "offset": offset, "note": note}  # fmt: skip


def _head(st: str, *, panel: bool) -> list[dict[str, object]]:
    rows = [_row(0, "time"), _row(1, "skip", note="record counter"),
            _row(2, "sensor", f"{st}_battery", "other", "V")]  # fmt: skip
    if panel:
        rows.append(_row(3, "sensor", f"{st}_panel_temp", "thermometer", "degC",
                         note="logger panel temperature (assumed from its range)"))  # fmt: skip
    return rows


def _hill(st: str, first: int) -> list[dict[str, object]]:
    """VWC x5, tensiometer pressure x3, tensiometer temperature x3, 2 VW piezometers."""
    rows = []
    c = first
    for i in range(1, 6):
        rows.append(_row(c, "sensor", f"{st}_vwc{i}", "soil_moisture", "m3/m3", *VWC))
        c += 1
    for i in range(1, 4):
        rows.append(_row(c, "sensor", f"{st}_tens{i}", "tensiometer", "kPa", *TENS_P))
        c += 1
    for i in range(1, 4):
        rows.append(_row(c, "sensor", f"{st}_tens{i}_temp", "thermometer", "degC", *TENS_T))
        c += 1
    for i in (1, 2):
        rows.append(_row(c, "sensor", f"{st}_vw{i}", "piezometer", "Hz",
                         note="vibrating-wire frequency; USGS calibration is polynomial"))  # fmt: skip
        rows.append(_row(c + 1, "sensor", f"{st}_vw{i}_therm", "thermometer", "ohm",
                         note="thermistor resistance (Steinhart-Hart in the USGS scripts)"))  # fmt: skip
        c += 2
    return rows


def column_maps() -> dict[str, ColumnMap]:
    """Column map of each ``*_14d.txt`` station file and of the rain files."""
    air_cr200 = "raw signal; degC = -39.17 ln(23100 r/(1-r)) + 410.43 with r = x/2500"
    air_cr1000 = "raw ratio; degC = -39.17 ln(23100 x/(1-x)) + 410.43"
    maps: dict[str, list[dict[str, object]]] = {}
    for st in ("MLP", "MWWD"):
        maps[st] = [*_head(st, panel=False),
                    _row(3, "sensor", f"{st}_rain", "rain_gauge", "mm", TIP_MM, 0.0,
                         "tips of 0.01 inch"),
                    _row(4, "sensor", f"{st}_air_raw", "thermometer", "raw", note=air_cr200)]  # fmt: skip
    maps["MVD116"] = [*_head("MVD116", panel=True),
                      _row(4, "sensor", "MVD116_air_raw", "thermometer", "raw", note=air_cr1000),
                      _row(5, "sensor", "MVD116_rain", "rain_gauge", "mm", TIP_MM, 0.0,
                           "tips of 0.01 inch"),
                      *_hill("MVD116", 6)]  # fmt: skip
    maps["WatertonA"] = [*_head("WatertonA", panel=True),
                         _row(4, "sensor", "WatertonA_air_raw", "thermometer", "raw",
                              note=air_cr1000),
                         _row(5, "sensor", "WatertonA_baro", "barometer", "kPa", *BARO),
                         _row(6, "sensor", "WatertonA_rain", "rain_gauge", "mm", TIP_MM, 0.0,
                              "tips of 0.01 inch"),
                         *_hill("WatertonA", 7)]  # fmt: skip
    maps["WatertonB"] = [*_head("WatertonB", panel=True),
                         _row(4, "skip", note="unused channel (zeros)"),
                         _row(5, "skip", note="unused channel (zeros)"),
                         *_hill("WatertonB", 6)]  # fmt: skip
    out = {st: ColumnMap.from_rows(rows, name=f"mukilteo {st}") for st, rows in maps.items()}
    return out


def rain_map(station: str) -> ColumnMap:
    rows = [_row(0, "year"), _row(1, "month"), _row(2, "day"), _row(3, "hour"),
            _row(4, "minute"),
            _row(5, "sensor", f"{station}_rain15", "rain_gauge", "in",
                 note="rainfall per 15 min (threshold-program input)")]  # fmt: skip
    return ColumnMap.from_rows(rows, name=f"mukilteo {station} rain")


def read_station_files(data_dir: str | Path) -> list[ReadResult]:
    """Read every station and rain file with its column map."""
    root = Path(data_dir)
    folder = next((p for p in (root / "data" / "RALHS", root / "RALHS", root) if p.is_dir()
                   and any(p.glob("wa*_14d.txt"))), None)  # fmt: skip
    if folder is None:
        raise InputError("no wa*_14d.txt station files", file=root)
    maps = column_maps()
    results = []
    for st, cmap in maps.items():
        f = folder / f"wa{st}_14d.txt"
        if f.is_file():
            r = read_tabbed(f, cmap, sep="\t", tz=TZ, clock_repeat=True)
            results.append(_grouped(r, st))
    for f in sorted(folder.glob("wa*_rain.txt")):
        st = f.name[2:].split("_")[0]
        r = read_tabbed(f, rain_map(st), sep="\t", tz=TZ, clock_repeat=True)
        results.append(_grouped(r, st))
    return results


def _grouped(r: ReadResult, station: str) -> ReadResult:
    from dataclasses import replace

    s = r.sensors.copy()
    s["group"] = station
    return replace(r, sensors=s)


def build_mukilteo(data_dir: str | Path, site_dir: str | Path) -> IngestReport:
    """Ingest all Mukilteo station files into one site."""
    return ingest([], site_dir, results=read_station_files(data_dir), name="mukilteo", tz=TZ)
