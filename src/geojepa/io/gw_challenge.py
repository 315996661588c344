"""Build sites from the Groundwater Time Series Modelling Challenge (``../shared/data/gw-challenge``).

Five wells (Netherlands, Germany, Sweden_1, Sweden_2, USA), one site each: the hydraulic
head (``heads_full.csv``: calibration and test periods, daily or weekly, m a.s.l.) and the
daily forcing (``input_data.csv``: precipitation, temperatures, pressure, humidity, wind,
radiation, evaporation; the USA well also has a river stage). Both are wide CSVs read by the
wide reader; this module only supplies kinds and units (from each well's README) and the
well's latitude/longitude (``locations.csv``, written with ``;`` and decimal commas).

Guarantees: the head is sensor ``head`` (kind piezometer, unit m); every forcing column is a
sensor with its kind and unit; empty cells are ``missing`` readings; a well folder without
its two files raises `InputError`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from geojepa.errors import InputError
from geojepa.io.ingest import IngestReport, ingest

WELLS: tuple[str, ...] = ("Netherlands", "Germany", "Sweden_1", "Sweden_2", "USA")
# column -> (kind, unit), from the wells' READMEs
FORCING: dict[str, tuple[str, str]] = {
    "head": ("piezometer", "m"),
    "rr": ("rain_gauge", "mm/d"),
    "tg": ("thermometer", "degC"),
    "tn": ("thermometer", "degC"),
    "tx": ("thermometer", "degC"),
    "pp": ("barometer", "hPa"),
    "hu": ("other", "%"),
    "fg": ("other", "m/s"),
    "qq": ("other", "W/m2"),
    "et": ("other", "mm/d"),
    "PRCP": ("rain_gauge", "mm/d"),
    "TMAX": ("thermometer", "degC"),
    "TMIN": ("thermometer", "degC"),
    "Stage_m": ("water_level", "m"),
    "ET": ("other", "mm/d"),
}


def locations(data: Path) -> dict[str, tuple[float, float]]:
    """Well -> (lat, lon) from ``locations.csv`` (``;``-separated, decimal commas)."""
    path = data / "locations.csv"
    if not path.is_file():
        return {}
    df = pd.read_csv(path, sep=";", dtype="str")
    out = {}
    for _, r in df.iterrows():
        out[str(r["location"])] = (
            float(str(r["lat"]).replace(",", ".")),
            float(str(r["lon"]).replace(",", ".")),
        )
    return out


def sensors_table(columns: list[str], latlon: tuple[float, float] | None) -> pd.DataFrame:
    rows = []
    for c in columns:
        kind, unit = FORCING.get(c, ("other", ""))
        meta = {"lat": latlon[0], "lon": latlon[1]} if latlon else {}
        rows.append(
            {"id": c, "kind": kind, "unit": unit, "group": "well" if c == "head" else "forcing",
             "meta": json.dumps(meta, sort_keys=True)}
        )  # fmt: skip
    return pd.DataFrame(rows)


def build_well(data_dir: str | Path, well: str, site_dir: str | Path) -> IngestReport:
    """Ingest one well's forcing and full head record into the site at `site_dir`."""
    root = Path(data_dir)
    data = root / "data" if (root / "data").is_dir() else root
    folder = data / well
    head = folder / "heads_full.csv"
    forcing = folder / "input_data.csv"
    for f in (head, forcing):
        if not f.is_file():
            raise InputError("missing challenge file", file=f)
    cols = ["head"]
    with forcing.open(encoding="utf-8") as fh:
        cols += [c.strip() for c in fh.readline().split(",")[1:]]
    table = sensors_table(cols, locations(data).get(well))
    return ingest(
        [forcing, head],
        site_dir,
        sensors=table,
        name=f"gw-challenge-{well}",
        duplicate_times="keep_first",  # Sweden_1 repeats a date with another head
    )


def build_gw_challenge(data_dir: str | Path, out_dir: str | Path) -> dict[str, IngestReport]:
    """One site per well under `out_dir` (``out_dir/<well>``)."""
    out = Path(out_dir)
    return {w: build_well(data_dir, w, out / w) for w in WELLS}
