"""Loaders for the real public data sets kept beside the project (never inside it).

- ``soft-ground-settlement``: settlement plates under staged embankment fill. One CSV per
  plate, columns ``Time`` (days since the first reading, irregular 1-5 days), ``Settle``
  (settlement, unit undocumented: mm or cm) and ``Surcharge`` (fill height, presumably m).
- ``gw-challenge``: five wells; ``heads_full.csv`` (date, head in m a.s.l., daily or weekly),
  ``input_data.csv`` (daily forcing: rain, temperature, evaporation, ...) and a README giving
  the challenge's training and testing periods.

The root folder is passed in; the default is ``../shared/data`` beside the repository (or the
``GEOJEPA_DATA`` environment variable).

Guarantees: every value is read as written or the loader raises `InputError` naming the file,
line and column. Nothing is dropped silently: repeated times are kept and counted (plates:
the repeat is placed half a day later and flagged ``clock``; wells: exact duplicate rows are
removed and counted; conflicting ones keep the earlier row and are listed in
``GwWell.conflicts`` and logged, or raise with ``on_conflict="error"``). Timestamps are UTC. The plates
carry no calendar dates, so their `Site` uses a nominal origin, stated in its ``meta``.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from geojepa.errors import InputError
from geojepa.forecast.evaluate import Series
from geojepa.site import Quality, Sensor, Site, sensors_frame

log = logging.getLogger(__name__)

SETTLEMENT = "soft-ground-settlement"
GW = "gw-challenge"
NOMINAL_ORIGIN = pd.Timestamp("2000-01-01", tz="UTC")
"""Time zero of the plates' nominal calendar (their files give days since the first reading)."""
REPEAT_OFFSET_DAYS = 0.5


def default_data_root() -> Path:
    """``$GEOJEPA_DATA`` if set, else ``../shared/data`` beside the repository."""
    env = os.environ.get("GEOJEPA_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _root(root: str | Path | None, name: str) -> Path:
    base = Path(root) if root is not None else default_data_root()
    path = base / name if (base / name).is_dir() else base
    if not (path / "data").is_dir():
        raise InputError(
            f"no {name} data folder here",
            file=path,
            hint=f"pass the folder that holds {name}/ (default ../shared/data)",
        )
    return path / "data"


# --------------------------------------------------------------------------- settlement plates
@dataclass(frozen=True)
class PlateRecord:
    """One settlement plate. `table`: time_days (strictly increasing), settlement, surcharge,
    repeated (True where the file repeats the previous row's time; moved half a day later)."""

    name: str
    table: pd.DataFrame
    source: str

    @property
    def n_repeated(self) -> int:
        return int(self.table["repeated"].sum())


def read_settlement_plate(path: str | Path) -> PlateRecord:
    """Read one plate CSV (``Time,Settle,Surcharge``), checking every cell."""
    path = Path(path)
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        raise InputError("empty file", file=path, hint="expected a header Time,Settle,Surcharge")
    header = [h.strip() for h in rows[0]]
    want = ("Time", "Settle", "Surcharge")
    missing = [w for w in want if w not in header]
    if missing:
        raise InputError(
            f"missing column(s) {', '.join(missing)} in header {header}",
            file=path,
            line=1,
            hint="the plate files have columns Time,Settle,Surcharge",
        )
    cols = [header.index(w) for w in want]
    data = np.full((len(rows) - 1, 3), np.nan)
    for i, row in enumerate(rows[1:]):
        line = i + 2
        if len(row) != len(header):
            raise InputError(
                f"{len(row)} fields, header has {len(header)}",
                file=path,
                line=line,
                hint="check the delimiter (comma) and for a truncated row",
            )
        for j, c in enumerate(cols):
            text = row[c].strip()
            try:
                val = float(text)
            except ValueError:
                raise InputError(
                    f"{want[j]} value {text!r} is not a number",
                    file=path,
                    line=line,
                    column=c + 1,
                    hint="fix or remove the row",
                ) from None
            if not np.isfinite(val):
                raise InputError(
                    f"{want[j]} value {text!r} is not finite",
                    file=path,
                    line=line,
                    column=c + 1,
                    hint="a plate record has no gaps; remove the row",
                )
            data[i, j] = val
    if data.shape[0] < 2:
        raise InputError("fewer than two readings", file=path, hint="nothing to forecast")
    t = data[:, 0].copy()
    repeated = np.zeros(t.size, dtype=bool)
    for i in range(1, t.size):
        if data[i, 0] < data[i - 1, 0]:
            raise InputError(
                f"time {data[i, 0]:g} goes backwards (previous {data[i - 1, 0]:g})",
                file=path,
                line=i + 2,
                column=cols[0] + 1,
                hint="sort the rows by time",
            )
        if data[i, 0] == data[i - 1, 0]:
            repeated[i] = True
            t[i] = t[i - 1] + REPEAT_OFFSET_DAYS
    if repeated.any():
        log.warning(
            "%s: %d reading(s) repeat the previous time; placed %.1f day later and flagged",
            path.name,
            int(repeated.sum()),
            REPEAT_OFFSET_DAYS,
        )
    table = pd.DataFrame(
        {
            "time_days": t,
            "settlement": data[:, 1],
            "surcharge": data[:, 2],
            "repeated": repeated,
        }
    )
    return PlateRecord(name=path.stem, table=table, source=path.name)


def load_settlement_plates(root: str | Path | None = None) -> list[PlateRecord]:
    """All plates of ``soft-ground-settlement``, sorted by name."""
    folder = _root(root, SETTLEMENT)
    files = sorted(folder.glob("*.csv"))
    if not files:
        raise InputError("no plate CSV files", file=folder, hint="expected NAME.csv per plate")
    return [read_settlement_plate(f) for f in files]


def plate_series(plate: PlateRecord) -> Series:
    """A plate as a forecasting series: t days, y settlement, driver ``surcharge``."""
    tab = plate.table
    return Series(
        name=plate.name,
        t=tab["time_days"].to_numpy(dtype=np.float64),
        y=tab["settlement"].to_numpy(dtype=np.float64),
        drivers={"surcharge": tab["surcharge"].to_numpy(dtype=np.float64)},
        origin=NOMINAL_ORIGIN,
    )


def plates_site(plates: Sequence[PlateRecord], name: str = SETTLEMENT) -> Site:
    """Plates as one `Site`: per plate a ``settlement`` sensor and a ``load`` sensor
    (``<plate>_fill``), grouped by plate, on the nominal calendar from 2000-01-01 UTC."""
    sensors: list[Sensor] = []
    frames: list[pd.DataFrame] = []
    for p in plates:
        sensors.append(
            Sensor(p.name, "settlement", "", group=p.name, meta={"unit_note": "mm or cm"})
        )
        sensors.append(Sensor(f"{p.name}_fill", "load", "m", group=p.name))
        ts = NOMINAL_ORIGIN + pd.to_timedelta(p.table["time_days"].to_numpy(), unit="D")
        quality = np.where(p.table["repeated"], Quality.CLOCK.value, Quality.OK.value)
        for sid, col in ((p.name, "settlement"), (f"{p.name}_fill", "surcharge")):
            frames.append(
                pd.DataFrame(
                    {
                        "timestamp": ts,
                        "sensor_id": sid,
                        "value": p.table[col].to_numpy(),
                        "quality": quality,
                        "source": p.source,
                    }
                )
            )
    readings = pd.concat(frames, ignore_index=True)
    meta = {"time_origin": "nominal: day 0 of each plate is 2000-01-01 UTC", "dataset": SETTLEMENT}
    return Site(name=name, sensors=sensors_frame(sensors), readings=readings, meta=meta)


# --------------------------------------------------------------------------- gw-challenge wells
_CANONICAL = {
    "rain": ("rr", "PRCP"),
    "evaporation": ("et", "ET"),
}
_KINDS = {
    "rr": ("rain_gauge", "mm/d"),
    "PRCP": ("rain_gauge", "mm/d"),
    "tg": ("thermometer", "degC"),
    "tn": ("thermometer", "degC"),
    "tx": ("thermometer", "degC"),
    "TMAX": ("thermometer", "degC"),
    "TMIN": ("thermometer", "degC"),
    "pp": ("barometer", "hPa"),
    "hu": ("other", "%"),
    "fg": ("other", "m/s"),
    "qq": ("other", "W/m2"),
    "et": ("other", "mm/d"),
    "ET": ("other", "mm/d"),
    "Stage_m": ("water_level", "m"),
}
_PERIOD = re.compile(
    r"\*\*(Training|Testing) period:\*\*\s*(\d{4}-\d{2}-\d{2})\s*to\s*(\d{4}-\d{2}-\d{2})"
)


@dataclass(frozen=True)
class GwWell:
    """One well: daily-or-weekly heads, daily forcing and the challenge's periods (UTC).

    `forcing` has the file's columns plus canonical ``rain``, ``evaporation`` and
    ``temperature`` (daily mean; where only min and max are given, their average).
    """

    name: str
    heads: pd.Series  # UTC DatetimeIndex -> head (m a.s.l.)
    forcing: pd.DataFrame  # UTC daily DatetimeIndex
    train_start: pd.Timestamp
    train_end: pd.Timestamp
    test_start: pd.Timestamp
    test_end: pd.Timestamp
    duplicates_dropped: int = 0
    conflicts: tuple[str, ...] = ()


def _read_dated_csv(path: Path) -> pd.DataFrame:
    """A CSV whose first column is a YYYY-MM-DD date; every other cell numeric or empty."""
    if not path.is_file():
        raise InputError("file not found", file=path, hint="check the data folder")
    df = pd.read_csv(path, dtype="str", keep_default_na=False)
    if df.shape[1] < 2 or len(df) == 0:
        raise InputError("expected a date column and at least one value column", file=path)
    dates = pd.to_datetime(df.iloc[:, 0], format="%Y-%m-%d", errors="coerce", utc=True)
    bad = np.flatnonzero(dates.isna().to_numpy())
    if bad.size:
        raise InputError(
            f"date {df.iloc[bad[0], 0]!r} is not YYYY-MM-DD",
            file=path,
            line=int(bad[0]) + 2,
            column=1,
            hint="fix the date",
        )
    out = pd.DataFrame(index=pd.DatetimeIndex(dates, name="time"))
    for j, col in enumerate(df.columns[1:], start=2):
        text = df[col].str.strip()
        empty = (text == "").to_numpy()
        vals = pd.to_numeric(text.where(~empty, "nan"), errors="coerce")
        bad = np.flatnonzero(np.isnan(vals.to_numpy(dtype=np.float64)) & ~empty)
        if bad.size:
            raise InputError(
                f"{col} value {text.iloc[bad[0]]!r} is not a number",
                file=path,
                line=int(bad[0]) + 2,
                column=j,
                hint="leave the cell empty for a missing value",
            )
        out[str(col)] = vals.to_numpy(dtype=np.float64)
    return out


def _periods(readme: Path) -> dict[str, tuple[pd.Timestamp, pd.Timestamp]]:
    text = readme.read_text(encoding="utf-8") if readme.is_file() else ""
    found = {
        m.group(1): (pd.Timestamp(m.group(2), tz="UTC"), pd.Timestamp(m.group(3), tz="UTC"))
        for m in _PERIOD.finditer(text)
    }
    if set(found) != {"Training", "Testing"}:
        raise InputError(
            "training and testing periods not found",
            file=readme,
            hint="expected lines '**Training period:** YYYY-MM-DD to YYYY-MM-DD' and Testing",
        )
    return found


def read_gw_well(
    folder: str | Path, full: bool = True, on_conflict: Literal["first", "error"] = "first"
) -> GwWell:
    """One well folder; `full` reads ``heads_full.csv`` (calibration + test), else ``heads.csv``.

    Two rows for one date: identical ones count as ``duplicates_dropped``; different ones
    raise with ``on_conflict="error"``, or keep the earlier row and are listed in
    ``conflicts`` (and logged) with ``"first"``.
    """
    folder = Path(folder)
    hpath = folder / ("heads_full.csv" if full else "heads.csv")
    hdf = _read_dated_csv(hpath)
    heads = hdf.iloc[:, 0].rename("head")
    dup = heads.index.duplicated(keep="first")
    n_dup = 0
    conflicts: list[str] = []
    if dup.any():
        first = heads[~dup]
        for k in (int(v) for v in np.flatnonzero(dup)):
            when = heads.index[k]
            kept, other = float(first.loc[when]), float(heads.iloc[k])
            if kept != other:
                if on_conflict == "error":
                    raise InputError(
                        f"two different heads for {when.date()} ({kept:g}, {other:g})",
                        file=hpath,
                        line=int(k) + 2,
                        hint="keep one of the readings, or load with on_conflict='first'",
                    )
                conflicts.append(
                    f"{hpath.name}:{int(k) + 2}: {when.date()} head {other:g} dropped, "
                    f"{kept:g} (the earlier row) kept"
                )
            else:
                n_dup += 1
        if n_dup:
            log.warning("%s: %d exact duplicate row(s) removed", hpath, n_dup)
        for c in conflicts:
            log.warning("conflicting duplicate: %s", c)
        heads = first
    if not heads.index.is_monotonic_increasing:
        stamps = heads.index.to_numpy(dtype="datetime64[ns]").astype(np.int64)
        k = int(np.flatnonzero(np.diff(stamps) < 0)[0]) + 1
        raise InputError("dates go backwards", file=hpath, line=k + 2, hint="sort by date")
    fpath = folder / "input_data.csv"
    forcing = _read_dated_csv(fpath)
    if not forcing.index.is_monotonic_increasing or forcing.index.has_duplicates:
        raise InputError("forcing dates repeat or go backwards", file=fpath, hint="sort by date")
    for canon, names in _CANONICAL.items():
        have = [n for n in names if n in forcing.columns]
        if not have:
            raise InputError(f"no {canon} column ({' or '.join(names)})", file=fpath, line=1)
        forcing[canon] = forcing[have[0]]
    if "tg" in forcing.columns:
        forcing["temperature"] = forcing["tg"]
    elif {"TMAX", "TMIN"} <= set(forcing.columns):
        forcing["temperature"] = 0.5 * (forcing["TMAX"] + forcing["TMIN"])
    else:
        raise InputError("no temperature column (tg, or TMAX and TMIN)", file=fpath, line=1)
    periods = _periods(folder / "README.md")
    return GwWell(
        name=folder.name,
        heads=heads,
        forcing=forcing,
        train_start=periods["Training"][0],
        train_end=periods["Training"][1],
        test_start=periods["Testing"][0],
        test_end=periods["Testing"][1],
        duplicates_dropped=n_dup,
        conflicts=tuple(conflicts),
    )


def load_gw_wells(
    root: str | Path | None = None,
    full: bool = True,
    on_conflict: Literal["first", "error"] = "first",
) -> list[GwWell]:
    """All five wells of ``gw-challenge``, sorted by name (see `read_gw_well`)."""
    folder = _root(root, GW)
    wells = sorted(p for p in folder.iterdir() if p.is_dir())
    if not wells:
        raise InputError("no well folders", file=folder, hint="expected one folder per well")
    return [read_gw_well(w, full=full, on_conflict=on_conflict) for w in wells]


GW_DRIVERS: tuple[str, ...] = ("rain", "evaporation", "temperature")


def gw_series(well: GwWell, drivers: Sequence[str] = GW_DRIVERS) -> Series:
    """A well on a daily grid from its first head to the end of forcing and heads.

    y is NaN on days without a head reading (weekly wells); drivers are the named forcing
    columns. t is days since the first head's date (the series' `origin`).
    """
    start = well.heads.index[0]
    end = min(well.forcing.index[-1], max(well.heads.index[-1], start))
    days = pd.date_range(start, end, freq="D")
    y = well.heads.reindex(days).to_numpy(dtype=np.float64)
    f = well.forcing.reindex(days)
    t = ((days - start) / pd.Timedelta("1D")).to_numpy(dtype=np.float64)
    return Series(
        name=well.name,
        t=t,
        y=y,
        drivers={d: f[d].to_numpy(dtype=np.float64) for d in drivers},
        origin=start,
    )


def gw_site(well: GwWell) -> Site:
    """A well as a `Site`: ``head`` (piezometer) plus one sensor per forcing column."""
    src_h, src_f = "heads_full.csv", "input_data.csv"
    sensors = [Sensor("head", "piezometer", "m a.s.l.", group=well.name)]
    frames = [
        pd.DataFrame(
            {
                "timestamp": well.heads.index,
                "sensor_id": "head",
                "value": well.heads.to_numpy(),
                "quality": Quality.OK.value,
                "source": src_h,
            }
        )
    ]
    for col, (kind, unit) in _KINDS.items():
        if col not in well.forcing.columns:
            continue
        sensors.append(Sensor(col, kind, unit, group="forcing"))
        vals = well.forcing[col].to_numpy(dtype=np.float64)
        frames.append(
            pd.DataFrame(
                {
                    "timestamp": well.forcing.index,
                    "sensor_id": col,
                    "value": vals,
                    "quality": np.where(np.isfinite(vals), Quality.OK.value, Quality.MISSING.value),
                    "source": src_f,
                }
            )
        )
    readings = pd.concat(frames, ignore_index=True)
    meta = {
        "dataset": GW,
        "train_period": [str(well.train_start.date()), str(well.train_end.date())],
        "test_period": [str(well.test_start.date()), str(well.test_end.date())],
    }
    return Site(name=well.name, sensors=sensors_frame(sensors), readings=readings, meta=meta)
