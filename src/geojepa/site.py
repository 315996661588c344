"""The site data model: sensors, readings, labels and history, kept in one folder.

A site folder holds

- ``site.json``      name, time zone of origin, format version, ingest history
- ``sensors.csv``    one row per sensor: id, kind, unit, x, y, z, group, meta (JSON text)
- ``readings.parquet`` long table: timestamp (UTC), sensor_id, value, quality, source
- ``labels.csv``     events: start, end (UTC), kind, sensors (``;``-separated, empty = all),
                     category, source
- ``raw/``           every ingested file, byte for byte as it was read

Guarantees:

- timestamps are timezone-aware UTC; values are float64; every reading names its source file;
- `save` is atomic: the folder is replaced whole or left byte-identical;
- `Site` validates its tables on construction, so a loaded site is always well-formed.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from geojepa.errors import InputError

if TYPE_CHECKING:
    import pyarrow as pa

FORMAT_VERSION = 1

SENSOR_KINDS: tuple[str, ...] = (
    "piezometer",
    "strain_gauge",
    "inclinometer",
    "extensometer",
    "settlement",
    "gnss",
    "rain_gauge",
    "thermometer",
    "barometer",
    "tensiometer",
    "soil_moisture",
    "water_level",
    "load",
    "discharge",
    "other",
)
"""Known sensor kinds. ``water_level`` covers reservoirs, lakes, wells and creeks;
``load`` covers applied load and fill height; ``other`` is for anything else."""

MONITORING_KINDS: tuple[str, ...] = (
    "piezometer",
    "settlement",
    "inclinometer",
    "extensometer",
    "gnss",
    "strain_gauge",
    "discharge",
)
"""Kinds that watch the ground's response (not its drivers: rain, temperature, pressure,
load), in the order plots list them."""

SENSOR_COLUMNS: tuple[str, ...] = ("id", "kind", "unit", "x", "y", "z", "group", "meta")
READING_COLUMNS: tuple[str, ...] = ("timestamp", "sensor_id", "value", "quality", "source")
LABEL_COLUMNS: tuple[str, ...] = ("start", "end", "kind", "sensors", "category", "source")


class Quality(StrEnum):
    """Quality flag of one reading. Everything that is not ``ok`` is counted and reported."""

    OK = "ok"
    MISSING = "missing"  # empty cell or NAN/NaN text: kept as a NaN reading, never dropped
    NON_FINITE = "non_finite"  # INF/-INF text or overflow
    DST_REPEAT = "dst_repeat"  # local time in a daylight-saving repeated hour, resolved in order
    CLOCK = "clock"  # timestamp corrected or suspect (clock shift)
    OUTLIER = "outlier"  # flagged by a reader's physical range check
    CONVERTED = "converted"  # value computed from raw readings (e.g. vibrating-wire frequency)


def normalise_kind(kind: object, *, file: str | Path | None = None, line: int | None = None) -> str:
    """Return the canonical kind for `kind` or raise `InputError` naming the known kinds."""
    text = str(kind).strip().lower().replace(" ", "_").replace("-", "_")
    aliases = {
        "piezo": "piezometer",
        "pore_pressure": "piezometer",
        "strain": "strain_gauge",
        "straingauge": "strain_gauge",
        "inclino": "inclinometer",
        "shape_array": "inclinometer",
        "extenso": "extensometer",
        "settlement_plate": "settlement",
        "gps": "gnss",
        "rain": "rain_gauge",
        "raingauge": "rain_gauge",
        "precipitation": "rain_gauge",
        "temperature": "thermometer",
        "thermistor": "thermometer",
        "baro": "barometer",
        "level": "water_level",
        "reservoir": "water_level",
        "fill": "load",
        "fill_height": "load",
        "surcharge": "load",
    }
    text = aliases.get(text, text)
    if text not in SENSOR_KINDS:
        raise InputError(
            f"unknown sensor kind {kind!r}",
            file=file,
            line=line,
            column="kind",
            hint="use one of " + ", ".join(SENSOR_KINDS) + " (or 'other')",
        )
    return text


@dataclass(frozen=True)
class Sensor:
    """One instrument. Position in metres in a site frame; z is elevation (up is positive)."""

    id: str
    kind: str = "other"
    unit: str = ""
    x: float = float("nan")
    y: float = float("nan")
    z: float = float("nan")
    group: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)


def empty_sensors() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": pd.Series([], dtype="str"),
            "kind": pd.Series([], dtype="str"),
            "unit": pd.Series([], dtype="str"),
            "x": pd.Series([], dtype="float64"),
            "y": pd.Series([], dtype="float64"),
            "z": pd.Series([], dtype="float64"),
            "group": pd.Series([], dtype="str"),
            "meta": pd.Series([], dtype="str"),
        }
    )


def empty_readings() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "timestamp": pd.Series([], dtype="datetime64[ns, UTC]"),
            "sensor_id": pd.Series([], dtype="str"),
            "value": pd.Series([], dtype="float64"),
            "quality": pd.Series([], dtype="str"),
            "source": pd.Series([], dtype="str"),
        }
    )


def empty_labels() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "start": pd.Series([], dtype="datetime64[ns, UTC]"),
            "end": pd.Series([], dtype="datetime64[ns, UTC]"),
            "kind": pd.Series([], dtype="str"),
            "sensors": pd.Series([], dtype="str"),
            "category": pd.Series([], dtype="str"),
            "source": pd.Series([], dtype="str"),
        }
    )


def sensors_frame(sensors: Iterable[Sensor]) -> pd.DataFrame:
    """Build a sensors table from `Sensor` records."""
    rows = [
        {
            "id": s.id,
            "kind": s.kind,
            "unit": s.unit,
            "x": s.x,
            "y": s.y,
            "z": s.z,
            "group": s.group,
            "meta": json.dumps(dict(s.meta), sort_keys=True),
        }
        for s in sensors
    ]
    if not rows:
        return empty_sensors()
    return _coerce_sensors(pd.DataFrame(rows))


def _coerce_sensors(df: pd.DataFrame) -> pd.DataFrame:
    out = empty_sensors()
    n = len(df)
    data: dict[str, Any] = {}
    for col in SENSOR_COLUMNS:
        if col in df.columns:
            data[col] = df[col].to_numpy()
        elif col in ("x", "y", "z"):
            data[col] = np.full(n, np.nan)
        elif col == "meta":
            data[col] = ["{}"] * n
        elif col == "kind":
            data[col] = ["other"] * n
        else:
            data[col] = [""] * n
    out = pd.DataFrame(data)
    for col in ("x", "y", "z"):
        out[col] = pd.to_numeric(out[col], errors="coerce").astype("float64")
    for col in ("id", "kind", "unit", "group", "meta"):
        out[col] = out[col].fillna("").astype("str")
    out.loc[out["meta"] == "", "meta"] = "{}"
    return out.reset_index(drop=True)


def _text(s: pd.Series) -> pd.Series:
    """A text column as str; a categorical of str is kept (cheap for millions of rows)."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        cats = s.cat.categories
        if not cats.is_monotonic_increasing:
            s = s.cat.reorder_categories(sorted(cats))
        return s
    return s.astype("str")


def _coerce_readings(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with the readings schema; columns already in the target dtype are taken as they
    are (no copy: the frames share memory under copy-on-write)."""
    ts = df["timestamp"]
    if not _is_utc_ns(ts):
        ts = pd.to_datetime(ts, utc=True).astype("datetime64[ns, UTC]")
    value = df["value"]
    if value.dtype != np.float64:
        value = pd.to_numeric(value, errors="raise").astype("float64")
    out = pd.DataFrame(
        {
            "timestamp": ts,
            "sensor_id": _text(df["sensor_id"]),
            "value": value,
            "quality": _text(df["quality"])
            if "quality" in df
            else pd.Series(Quality.OK.value, index=df.index, dtype="str"),
            "source": _text(df["source"])
            if "source" in df
            else pd.Series("", index=df.index, dtype="str"),
        },
        copy=False,
    )
    return out.reset_index(drop=True)


def _is_utc_ns(s: pd.Series) -> bool:
    dt = s.dtype
    return isinstance(dt, pd.DatetimeTZDtype) and dt.unit == "ns" and str(dt.tz) == "UTC"


def _epoch_ns(ts: pd.Series) -> np.ndarray:
    """(N,) int64 nanoseconds since the epoch of a UTC timestamp column (NaT: int64 min);
    a view, not a copy, when the column is datetime64[ns, UTC] already."""
    if _is_utc_ns(ts):
        return np.asarray(ts.array.asi8)
    return np.asarray(ts.to_numpy(dtype="datetime64[ns]")).view(np.int64)


def _sorted_readings(df: pd.DataFrame) -> pd.DataFrame:
    """`df` sorted by (sensor_id, timestamp); skips the sort when it already is (cheap check
    for categorical ids with sorted categories, the ingest path)."""
    sid = df["sensor_id"]
    if len(df) < 2:
        return df.reset_index(drop=True)
    if isinstance(sid.dtype, pd.CategoricalDtype) and _is_sorted(
        sid.cat.codes.to_numpy(), _epoch_ns(df["timestamp"]).view("datetime64[ns]")
    ):  # a datetime64 view: NaT compares False, as before, so it is never taken as sorted
        return df.reset_index(drop=True)
    return df.sort_values(["sensor_id", "timestamp"], kind="stable", ignore_index=True)


def _is_sorted(codes: np.ndarray, times: np.ndarray) -> bool:
    """Whether rows (N,) are in (code, time) order; compares neighbours in place, in chunks
    (no N-long int64 copies)."""
    n = len(codes)
    step = 1 << 20
    for a in range(0, n - 1, step):
        b = min(a + step, n - 1)
        c0, c1 = codes[a:b], codes[a + 1 : b + 1]
        t0, t1 = times[a:b], times[a + 1 : b + 1]
        if not bool(((c1 > c0) | ((c1 == c0) & (t1 >= t0))).all()):
            return False
    return True


def _unknown_ids(sid: pd.Series, known: set[Any]) -> set[Any]:
    """Values of the text column `sid` that are not in `known`. For a categorical whose
    categories are all known, nothing is counted; otherwise only the categories in use."""
    if isinstance(sid.dtype, pd.CategoricalDtype):
        cats = sid.cat.categories
        if set(cats) <= known:
            return set()
        codes = sid.cat.codes.to_numpy()
        used = np.bincount(codes[codes >= 0] if (codes < 0).any() else codes,
                           minlength=len(cats))  # fmt: skip
        return {c for c, k in zip(cats, used, strict=True) if k} - known
    return set(sid.unique()) - known


def _coerce_labels(df: pd.DataFrame) -> pd.DataFrame:
    if len(df) == 0:
        return empty_labels()
    out = pd.DataFrame(
        {
            "start": pd.to_datetime(df["start"], utc=True).astype("datetime64[ns, UTC]"),
            "end": pd.to_datetime(df["end"], utc=True).astype("datetime64[ns, UTC]"),
            "kind": df["kind"].fillna("").astype("str") if "kind" in df else "event",
            "sensors": df["sensors"].fillna("").astype("str") if "sensors" in df else "",
            "category": df["category"].fillna("").astype("str") if "category" in df else "",
            "source": df["source"].fillna("").astype("str") if "source" in df else "",
        }
    )
    return out.reset_index(drop=True)


@dataclass(frozen=True)
class Site:
    """A monitoring site: sensors, readings, labels and metadata.

    `readings` is sorted by (sensor_id, timestamp); every reading's sensor is in `sensors`.
    Text columns (sensor_id, quality, source) are str, or categoricals of str (sorted
    categories) when the site comes from `geojepa ingest` or `load`: compare, `isin`,
    `groupby` and `astype(str)` work alike on both; do not assume an object array.
    """

    name: str
    sensors: pd.DataFrame
    readings: pd.DataFrame
    labels: pd.DataFrame = field(default_factory=empty_labels)
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        sensors = _coerce_sensors(self.sensors)
        readings = _sorted_readings(
            _coerce_readings(self.readings) if len(self.readings) else empty_readings()
        )
        labels = _coerce_labels(self.labels)
        dup = sensors["id"][sensors["id"].duplicated()]
        if len(dup):
            raise InputError(
                f"sensor id {dup.iloc[0]!r} appears twice in the sensors table",
                hint="give every sensor a unique id",
            )
        unknown = _unknown_ids(readings["sensor_id"], set(sensors["id"]))
        if unknown:
            raise InputError(
                f"readings name sensors missing from the sensors table: {sorted(unknown)[:5]}",
                hint="add them to sensors.csv",
            )
        object.__setattr__(self, "sensors", sensors)
        object.__setattr__(self, "readings", readings)
        object.__setattr__(self, "labels", labels)
        meta = {"name": self.name, "version": FORMAT_VERSION, "timezone": "UTC", "ingests": []}
        meta.update(dict(self.meta))
        object.__setattr__(self, "meta", meta)

    # ---------------------------------------------------------------- queries
    @property
    def sensor_ids(self) -> list[str]:
        return list(self.sensors["id"])

    def sensor(self, sensor_id: str) -> Sensor:
        row = self.sensors[self.sensors["id"] == sensor_id]
        if row.empty:
            raise InputError(
                f"no sensor {sensor_id!r} in site {self.name!r}",
                hint="run `geojepa info SITE` to list the sensors",
            )
        r = row.iloc[0]
        return Sensor(
            id=str(r["id"]),
            kind=str(r["kind"]),
            unit=str(r["unit"]),
            x=float(r["x"]),
            y=float(r["y"]),
            z=float(r["z"]),
            group=str(r["group"]),
            meta=json.loads(str(r["meta"]) or "{}"),
        )

    def span(self) -> tuple[pd.Timestamp, pd.Timestamp] | None:
        if self.readings.empty:
            return None
        ts = self.readings["timestamp"]
        return ts.min(), ts.max()

    def before(self, until: pd.Timestamp | str | None) -> Site:
        """The same site with readings strictly before `until` (UTC) only; labels kept."""
        if until is None:
            return self
        t = pd.Timestamp(until)
        t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
        return replace(self, readings=self.readings[self.readings["timestamp"] < t])

    def select(self, sensor_ids: Iterable[str]) -> Site:
        keep = list(sensor_ids)
        return replace(
            self,
            sensors=self.sensors[self.sensors["id"].isin(keep)],
            readings=self.readings[self.readings["sensor_id"].isin(keep)],
        )

    # ---------------------------------------------------------------- storage
    @classmethod
    def load(cls, path: str | Path) -> Site:
        """Load a site folder written by `save` (or by `geojepa ingest`)."""
        root = Path(path)
        meta_path = root / "site.json"
        if not meta_path.is_file():
            raise InputError(
                "not a site folder (no site.json)",
                file=root,
                hint="create one with `geojepa ingest FILE --out SITE` or `geojepa simulate`",
            )
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise InputError(
                f"site.json is not valid JSON ({err.msg})",
                file=meta_path,
                line=err.lineno,
                column=err.colno,
                hint="restore it from a backup or re-ingest the raw files",
            ) from err
        if int(meta.get("version", 0)) > FORMAT_VERSION:
            raise InputError(
                f"site format version {meta.get('version')} is newer than this GeoJEPA reads",
                file=meta_path,
                hint="upgrade geojepa",
            )
        sensors = pd.read_csv(
            root / "sensors.csv",
            dtype={"id": "str", "kind": "str", "unit": "str", "group": "str", "meta": "str"},
            keep_default_na=False,
            na_values={"x": [""], "y": [""], "z": [""]},
        )
        rpath = root / "readings.parquet"
        readings = pd.read_parquet(rpath) if rpath.is_file() else empty_readings()
        lpath = root / "labels.csv"
        labels = pd.read_csv(lpath, dtype="str", keep_default_na=False) if lpath.is_file() else None
        return cls(
            name=str(meta.get("name", root.name)),
            sensors=sensors,
            readings=readings,
            labels=labels if labels is not None else empty_labels(),
            meta=meta,
        )

    def save(self, path: str | Path, raw_files: Mapping[str, Path] | None = None) -> None:
        """Write the site folder atomically.

        `raw_files` maps a name under ``raw/`` to a file to copy there byte for byte.
        Raw files already in an existing folder are kept. The folder is written beside
        `path` under a temporary name and swapped in; on any failure the old folder is
        left exactly as it was.
        """
        root = Path(path)
        root.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o777 & ~mask)  # mkdtemp makes it private; a site folder is ordinary
        try:
            (tmp / "raw").mkdir()
            if (root / "raw").is_dir():
                for f in (root / "raw").iterdir():
                    if _same_fs(f, tmp):
                        os.link(f, tmp / "raw" / f.name)
                    else:
                        shutil.copy2(f, tmp / "raw" / f.name)
            for name, src in (raw_files or {}).items():
                dst = tmp / "raw" / name
                if not dst.exists():
                    shutil.copyfile(src, dst)
            (tmp / "site.json").write_text(
                json.dumps(dict(self.meta), indent=2, sort_keys=True, default=str) + "\n",
                encoding="utf-8",
            )
            self.sensors.to_csv(tmp / "sensors.csv", index=False)
            write_readings(self.readings, tmp / "readings.parquet")
            labels = self.labels.copy()
            for col in ("start", "end"):
                labels[col] = labels[col].map(lambda t: t.isoformat())
            labels.to_csv(tmp / "labels.csv", index=False)
            backup = None
            if root.exists():
                backup = root.parent / f".{root.name}.old-{os.getpid()}"
                os.rename(root, backup)
            os.rename(tmp, root)
            if backup is not None:
                shutil.rmtree(backup)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def readings_table(readings: pd.DataFrame) -> pa.Table:
    """The readings as an Arrow table, built column by column without a pandas round trip:
    categoricals become dictionary arrays over their categories (codes reused), float64 values
    and UTC timestamps are shared without a copy, other columns are converted as
    `pyarrow.Table.from_pandas` would; the pandas metadata is kept so `pandas.read_parquet`
    gives back the same dtypes and values."""
    import pyarrow as pa  # here, not at module level: the torch-free edge scorer imports
    # this module and must run without pyarrow

    arrays = []
    with warnings.catch_warnings():
        # pyarrow reads tz-aware columns through `Series.values` (deprecated in pandas 3);
        # pandas' own `to_parquet` silences the same warning
        warnings.filterwarnings("ignore", message=r"Series\.values returning an ndarray")
        for col in readings.columns:
            s = readings[col]
            if isinstance(s.dtype, pd.CategoricalDtype) and pd.api.types.is_string_dtype(
                s.cat.categories.dtype
            ):
                codes = s.cat.codes.to_numpy()
                missing = codes < 0
                idx = pa.array(codes, mask=missing) if missing.any() else pa.array(codes)
                cats = pa.array(s.cat.categories.to_numpy(dtype=object), type=pa.large_string())
                arrays.append(pa.DictionaryArray.from_arrays(idx, cats))
            elif s.dtype == np.float64:
                arrays.append(pa.array(s.to_numpy()))  # zero-copy; NaN stays NaN (reads back alike)
            elif _is_utc_ns(s):
                ns = _epoch_ns(s)  # (N,) int64 view
                nat = ns == np.iinfo(np.int64).min
                arr = pa.array(ns, mask=nat) if nat.any() else pa.array(ns)  # zero-copy
                arrays.append(arr.view(pa.timestamp("ns", tz="UTC")))
            else:
                arrays.append(pa.Array.from_pandas(s))
        meta = pa.Table.from_pandas(readings.iloc[:0], preserve_index=False).schema.metadata
    # columns without nulls are stored as required (no definition levels to write or read)
    fields = [
        pa.field(str(c), a.type, nullable=a.null_count > 0)
        for c, a in zip(readings.columns, arrays, strict=True)
    ]
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=meta))


def write_readings(readings: pd.DataFrame, path: Path) -> None:
    """Write the readings table to Parquet (what `Site.load` reads back, dtypes included).

    Encodings chosen for a long table sorted by (sensor, time): timestamps delta-encoded
    (regular steps cost almost nothing), sensor/quality/source dictionary-encoded, values
    plain and uncompressed (measured values do not compress much, and compressing them was
    the slowest part of an ingest); min/max statistics on timestamps only (cheap; statistics
    on the dictionary-encoded sensor ids cost more than the rest of the column).
    """
    import pyarrow.parquet as pq

    table = readings_table(readings)
    dictionary = [c for c in ("sensor_id", "quality", "source") if c in table.column_names]
    encoding = {"timestamp": "DELTA_BINARY_PACKED"} if "timestamp" in table.column_names else {}
    pq.write_table(
        table,
        path,
        use_dictionary=dictionary,
        column_encoding=encoding,
        compression={c: ("none" if c == "value" else "snappy") for c in table.column_names},
        write_statistics=["timestamp"] if "timestamp" in table.column_names else False,
    )


def _same_fs(a: Path, b: Path) -> bool:
    try:
        return os.stat(a).st_dev == os.stat(b).st_dev
    except OSError:
        return False


def quality_counts(readings: pd.DataFrame) -> dict[str, int]:
    """Counts of each quality flag, ``ok`` included."""
    counts = readings["quality"].value_counts()
    return {str(k): int(v) for k, v in counts.items()}
