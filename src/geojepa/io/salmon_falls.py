"""Build ONE site from the Salmon Falls landslide data (``../shared/data/salmon-falls``).

Inputs (under ``data/``), each with its own reader:

- ``gps/*.pbo.nam08.csv``: 7 continuous GNSS stations (PBO format, daily N/E/U in mm);
  BASE is the off-slide reference. Positions become metres east/north of BASE (x, y) and
  elevation (z); each station is a sensor group.
- ``water/well.csv``, ``lake.csv``, ``creek.csv``, ``canal.csv``: HOBO-style level loggers
  (US dates ``3/17/17 16:30``, a Latin-1 degree sign in the header, 10-15 min): absolute
  pressure, temperature, sensor depth and adjusted depth. The ``Adjust`` column is the
  difference of the two depths and is not stored (said in the warnings).
- ``water/NOAA_Castleford (1).txt``: daily precipitation (in) and maximum temperature (°F),
  ``-9999`` = missing.
- ``water/creek_usgs.txt``: daily discharge of Salmon Falls Creek (ft³/s).

Assumptions (parameters, stated in the site's metadata): the loggers keep a fixed offset
without daylight saving (no repeated or skipped hour in their records), taken as UTC-7
(``Etc/GMT+7``); GNSS and daily tables are UTC days.

Guarantees: every reading of every file is stored or counted: missing values as ``missing``,
isolated logger spikes as ``outlier`` (Hampel check, `geojepa.io.spikes`), GNSS days with a
formal error far above the usual as ``outlier``, a logger row repeating a time with other
values is left out and counted with the kept row flagged ``clock``. Gaps stay gaps (no
filling); the report lists the longest gap per logger.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from geojepa.errors import InputError
from geojepa.io.ingest import IngestReport, ingest
from geojepa.io.noaa import read_noaa_daily, read_usgs_daily
from geojepa.io.pbo import read_pbo
from geojepa.io.result import ReadResult
from geojepa.io.spikes import flag_spikes
from geojepa.io.wide import read_wide

LOGGER_TZ = "Etc/GMT+7"
LOGGERS: dict[str, str] = {
    "well": "piezometer",
    "lake": "water_level",
    "creek": "water_level",
    "canal": "water_level",
}
_EARTH_R = 6_371_000.0


def _logger_columns(
    path: Path, name: str, kind: str
) -> tuple[dict[str, str], dict[str, tuple[str, str]], list[str]]:
    """Rename map, (kind, unit) per new id, and skipped columns for one logger file."""
    with path.open("rb") as fh:
        header = fh.readline().decode("latin-1").strip()
    cols = [c.strip() for c in header.split(",")]
    rename: dict[str, str] = {}
    meta: dict[str, tuple[str, str]] = {}
    skip: list[str] = []
    for c in cols[1:]:
        low = c.lower()
        if low.startswith("abs pres"):
            rename[c], meta[f"{name}_pressure"] = f"{name}_pressure", (kind, "kPa")
        elif low.startswith("temp"):
            rename[c], meta[f"{name}_temp"] = f"{name}_temp", ("thermometer", "degC")
        elif low.startswith("sensor depth"):
            rename[c], meta[f"{name}_sensor_depth"] = f"{name}_sensor_depth", ("water_level", "m")
        elif low.startswith("depth"):
            rename[c], meta[f"{name}_depth"] = f"{name}_depth", ("water_level", "m")
        elif low.startswith("adjust"):
            skip.append(c)
        else:
            raise InputError(
                f"unexpected logger column {c!r}",
                file=path,
                line=1,
                hint="the Salmon Falls builder knows Abs Pres, Temp, Sensor Depth, Adjust, Depth",
            )
    return rename, meta, skip


def read_logger(path: Path, name: str, *, tz: str = LOGGER_TZ) -> tuple[ReadResult, dict[str, int]]:
    """One level logger file, with kinds/units set and spikes flagged."""
    kind = LOGGERS.get(name, "water_level")
    rename, meta, skip = _logger_columns(path, name, kind)
    r = read_wide(path, tz=tz, rename=rename, skip_cols=skip, duplicate_times="keep_first")
    sensors = r.sensors.copy()
    sensors["kind"] = [meta[str(i)][0] for i in sensors["id"]]
    sensors["unit"] = [meta[str(i)][1] for i in sensors["id"]]
    sensors["group"] = name
    r = replace(
        r,
        sensors=sensors,
        warnings=(
            *r.warnings,
            *(f"{path}: column {c!r} is Depth(m) - Sensor Depth; not stored" for c in skip),
        ),
    )
    return flag_spikes(r)


def _local_xy(lat: float, lon: float, lat0: float, lon0: float) -> tuple[float, float]:
    x = math.radians(lon - lon0) * _EARTH_R * math.cos(math.radians(lat0))
    y = math.radians(lat - lat0) * _EARTH_R
    return x, y


def read_gnss(folder: Path, reference: str = "BASE") -> list[ReadResult]:
    """All PBO files in `folder`, positioned in metres relative to the `reference` station."""
    files = sorted(folder.glob("*.pbo.*.csv"))
    if not files:
        raise InputError("no PBO position files (*.pbo.*.csv)", file=folder)
    results = [read_pbo(f) for f in files]
    ref = None
    for r in results:
        m = json.loads(str(r.sensors["meta"].iloc[0]))
        if m.get("station") == reference and "lat" in m:
            ref = (float(m["lat"]), float(m["lon"]))
    if ref is None:
        raise InputError(f"no reference station {reference!r} among the GNSS files", file=folder)
    out = []
    for r in results:
        s = r.sensors.copy()
        xs, ys = [], []
        for meta in s["meta"]:
            m = json.loads(str(meta))
            if "lat" in m:
                x, y = _local_xy(float(m["lat"]), float(m["lon"]), *ref)
            else:
                x, y = float("nan"), float("nan")
            xs.append(round(x, 2))
            ys.append(round(y, 2))
            m["reference_station"] = reference
        s["x"], s["y"] = xs, ys
        s["meta"] = [
            json.dumps(json.loads(str(mt)) | {"reference_station": reference}, sort_keys=True)
            for mt in s["meta"]
        ]
        out.append(replace(r, sensors=s))
    return out


def longest_gaps(r: ReadResult) -> dict[str, str]:
    """Longest time between consecutive readings, per sensor (for the report)."""
    out = {}
    for sid, g in r.readings.groupby("sensor_id", observed=True):
        t = g["timestamp"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
        if len(t) > 1:
            out[str(sid)] = str(pd.Timedelta(int(np.diff(t).max()), unit="ns"))
    return out


def build_salmon_falls(
    data_dir: str | Path, site_dir: str | Path, *, logger_tz: str = LOGGER_TZ
) -> tuple[IngestReport, dict[str, object]]:
    """Ingest every Salmon Falls file into the site at `site_dir`.

    Returns the ingest report and notes (spike counts, longest gaps, assumptions).
    """
    root = Path(data_dir)
    data = root / "data" if (root / "data").is_dir() else root
    water = data / "water"
    results: list[ReadResult] = list(read_gnss(data / "gps"))
    spikes: dict[str, int] = {}
    gaps: dict[str, str] = {}
    for name in LOGGERS:
        path = water / f"{name}.csv"
        if not path.is_file():
            raise InputError("missing logger file", file=path)
        r, counts = read_logger(path, name, tz=logger_tz)
        spikes |= counts
        gaps |= longest_gaps(r)
        results.append(r)
    noaa = sorted(water.glob("NOAA*.txt"))
    usgs = sorted(water.glob("*usgs*.txt"))
    if not noaa or not usgs:
        raise InputError("missing the NOAA or USGS daily table", file=water)
    results.append(read_noaa_daily(noaa[0], prefix="noaa_"))
    results.append(read_usgs_daily(usgs[0], prefix="usgs_"))
    report = ingest([], site_dir, results=results, name="salmon-falls", tz=logger_tz)
    notes: dict[str, object] = {
        "logger_tz": logger_tz,
        "spikes_flagged": spikes,
        "longest_gap": gaps,
        "gnss_reference": "BASE",
    }
    return report, notes
