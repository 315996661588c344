"""`ingest`: read logger files and merge them into a site folder.

Builds a new site or extends one. Every file is read completely (and checked) before the
folder is touched; the folder is then replaced whole (`Site.save`), so a failed ingest
leaves it byte-identical.

Guarantees:

- re-ingesting a file adds nothing: a reading whose (sensor, time) is already stored with
  the same value is counted as ``already``; a file whose bytes were ingested before (same
  SHA-256) and adds nothing leaves the folder untouched;
- the parsing options of every file are recorded in ``site.json``; a file whose bytes were
  ingested before, read now with other options (``--tz``, ``--format``...) so that it would
  add readings (the same data at shifted times or under other ids), is refused
  (`InputError` naming both option sets);
- a reading whose (sensor, time) is stored with a different value is a conflict (another
  instrument under the same ids, most often): by default (``on_conflict="error"``) the whole
  ingest is refused, naming the sensors, the count, and the first conflicting time with
  both values and the file line; ``on_conflict="keep"`` keeps the stored value (never
  overwritten), adds the other readings and reports the conflicts (count and examples);
- a sensors-table row whose id names no sensor of the files or the site is refused when
  it is close to a sensor of the files without a row (a typo), naming the table's line,
  the close matches and the known ids; other such rows (sensors of files to come) are left
  out with a warning, never added as sensors without readings;
- every reading names its source, the file's name under ``raw/``, where the file is copied
  byte for byte (a different file with the same name gets its hash in the name);
- label columns become labels; a sensors table supplies kinds, units and positions; a unit
  contradicting the site's is a units mismatch (`InputError`); a calibration table adds
  vibrating-wire pressure sensors (`geojepa.io.vibrating_wire`).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from geojepa.errors import InputError, UsageError
from geojepa.io import vibrating_wire
from geojepa.io.labels import check_label_sensors, read_labels_file
from geojepa.io.reader import read_file
from geojepa.io.result import (
    QUALITY_DTYPE,
    ReadResult,
    as_categorical_readings,
    count_quality,
    present_ids,
)
from geojepa.io.sensors import merge_sensors, read_sensors_table
from geojepa.io.tabbed import ColumnMap, load_column_map
from geojepa.io.textfile import normalise_sep
from geojepa.io.times import check_tz
from geojepa.site import LABEL_COLUMNS, Site, _coerce_labels, empty_labels, empty_sensors

log = logging.getLogger(__name__)
MAX_CONFLICT_EXAMPLES = 20


@dataclass(frozen=True)
class FileReport:
    """What one file brought."""

    path: str
    source: str
    fmt: str
    rows: int
    readings: int
    new: int
    already: int
    conflicts: int
    sensors_new: tuple[str, ...]
    labels_new: int
    quality: Mapping[str, int]
    warnings: tuple[str, ...]
    first: str | None
    last: str | None


@dataclass(frozen=True)
class IngestReport:
    """What an ingest did to a site folder."""

    site: str
    created: bool
    changed: bool
    files: tuple[FileReport, ...]
    n_conflicts: int
    conflicts: pd.DataFrame = field(repr=False)  # up to 20 examples
    n_readings: int = 0  # in the site after the ingest
    n_sensors: int = 0

    @property
    def n_new(self) -> int:
        return sum(f.new for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "created": self.created,
            "changed": self.changed,
            "readings_added": self.n_new,
            "readings_in_site": self.n_readings,
            "sensors_in_site": self.n_sensors,
            "conflicts": self.n_conflicts,
            "conflict_examples": [
                {k: (v.isoformat() if isinstance(v, pd.Timestamp) else v) for k, v in r.items()}
                for r in self.conflicts.to_dict("records")
            ],
            "files": [f.__dict__ | {"quality": dict(f.quality)} for f in self.files],
        }

    def lines(self) -> list[str]:
        """A short human summary, one line per fact."""
        out = []
        for f in self.files:
            q = {k: v for k, v in f.quality.items() if k != "ok"}
            flags = ", ".join(f"{k} {v}" for k, v in q.items()) or "none"
            out.append(
                f"{f.path} [{f.fmt}]: {f.readings} readings ({f.new} new, {f.already} already "
                f"stored, {f.conflicts} conflicting), {len(f.sensors_new)} new sensors, "
                f"{f.labels_new} new labels; flags: {flags}"
            )
            out.extend(f"  warning: {w}" for w in f.warnings)
        if self.n_conflicts:
            out.append(
                f"{self.n_conflicts} conflicting readings kept their stored value "
                "(never overwritten); examples:"
            )
            for r in self.conflicts.head(5).to_dict("records"):
                out.append(
                    f"  {r['sensor_id']} at {pd.Timestamp(r['timestamp']).isoformat()}: stored "
                    f"{r['stored']} ({r['stored_source']}), new {r['new']} ({r['source']})"
                )
        verb = "created" if self.created else ("updated" if self.changed else "unchanged")
        out.append(f"site {self.site} {verb}: {self.n_sensors} sensors, {self.n_readings} readings")
        return out


@dataclass(frozen=True)
class _Read:
    """One file read for the ingest: result, its path, name under ``raw/``, SHA-256, and the
    parsing options (None for results a caller read itself)."""

    result: ReadResult
    path: Path
    raw: str
    sha: str
    options: dict[str, Any] | None = None


OPTION_FLAGS: dict[str, str] = {
    "format": "--format",
    "sep": "--sep",
    "time_col": "--time-col",
    "tz": "--tz",
    "time_format": "--time-format",
    "encoding": "--encoding",
    "missing_values": "--missing-value",
    "column_map": "--column-map",
    "clock_repeat": "--clock-repeat",
    "duplicate_times": "--duplicate-times",
    "label_cols": "--label-col",
    "rename": "--rename",
}


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def ingest(
    paths: Sequence[str | Path],
    site_dir: str | Path,
    *,
    fmt: str = "auto",
    sensors: pd.DataFrame | str | Path | None = None,
    sep: str | None = None,
    time_col: str | int | None = None,
    tz: str | None = "UTC",
    label_cols: Sequence[str] = (),
    encoding: str | None = None,
    time_format: str | None = None,
    missing_values: Sequence[str] = (),
    column_map: ColumnMap | str | Path | None = None,
    calibration: pd.DataFrame | str | Path | None = None,
    clock_repeat: bool = False,
    duplicate_times: str = "error",
    on_conflict: str = "error",
    name: str | None = None,
    labels: str | Path | None = None,
    results: Sequence[ReadResult] | None = None,
    rename: Mapping[str, str] | None = None,
) -> IngestReport:
    """Read `paths` and merge them into the site at `site_dir` (see the module docstring).

    `results` lets a caller that has already read files (a site builder using special
    readers) merge those `ReadResult`s instead; their `path` is copied into ``raw/``.
    `labels` is an events file (``start,end,kind,sensors,category``) whose rows become
    labels; it is copied into ``raw/`` too. `on_conflict` is "error" (refuse readings that
    contradict stored ones) or "keep" (keep the stored values, report the conflicts).
    `rename` maps columns of wide files to the sensor ids to store them under.
    """
    root = Path(site_dir)
    if on_conflict not in ("keep", "error"):
        raise UsageError(f"--on-conflict {on_conflict!r}", hint="use error or keep")
    existing = _existing(root)
    table = None
    if sensors is not None:
        table = sensors if isinstance(sensors, pd.DataFrame) else read_sensors_table(sensors)
    history: list[dict[str, Any]] = list(existing.meta.get("ingests", [])) if existing else []
    known_hashes = {h.get("sha256"): h.get("file") for h in history if h.get("sha256")}
    raw_dir = root / "raw"
    taken = {p.name for p in raw_dir.iterdir()} if raw_dir.is_dir() else set()
    reads: list[_Read] = []
    items: list[tuple[Path, ReadResult | None]] = [(Path(p), None) for p in paths]
    items += [(r.path, r) for r in (results or []) if r.path is not None]
    if not items and labels is None:
        raise UsageError("no files to ingest", hint="name one or more logger files")
    for path, given in items:
        if not path.is_file():
            raise InputError("no such file" if not path.exists() else "not a file", file=path)
        sha = sha256_of(path)
        raw_name = known_hashes.get(sha) or _raw_name(path, sha, taken, root)
        taken.add(raw_name)
        if given is None:
            r = read_file(
                path,
                fmt,
                sep=sep,
                time_col=time_col,
                tz=tz,
                label_cols=label_cols,
                encoding=encoding,
                time_format=time_format,
                missing_values=missing_values,
                column_map=column_map,
                sensors=table,
                clock_repeat=clock_repeat,
                duplicate_times=duplicate_times,
                source=raw_name,
                rename=rename,
            )
            opts: dict[str, Any] | None = _options(
                r.fmt,
                sep=sep,
                time_col=time_col,
                tz=tz,
                time_format=time_format,
                encoding=encoding,
                missing_values=missing_values,
                column_map=column_map if r.fmt == "tabbed" else None,
                clock_repeat=clock_repeat,
                duplicate_times=duplicate_times,
                label_cols=label_cols,
                rename=rename,
            )
        else:
            r = _with_source(given, raw_name)
            opts = None
        reads.append(_Read(r, path, raw_name, sha, opts))
        log.debug("read %s: %d readings", path, r.n_readings)
    if calibration is not None:
        reads = _add_vibrating_wire(reads, existing, calibration)
    if table is not None:
        table = check_table_ids(table, [rd.result for rd in reads], existing)
    if labels is not None:
        lp = Path(labels)
        sha = sha256_of(lp) if lp.is_file() else ""
        raw_name = known_hashes.get(sha) or _raw_name(lp, sha, taken, root)
        events = read_labels_file(lp, tz=tz, source=raw_name)
        reads.append(_Read(ReadResult(readings=as_categorical_readings(pd.DataFrame()),
                                      sensors=empty_sensors(), labels=events, source=raw_name,
                                      path=lp, fmt="events", n_rows=len(events)), lp, raw_name, sha))  # fmt: skip
    return _merge(root, existing, reads, history, table, on_conflict, name, tz)


def _options(
    fmt: str,
    *,
    sep: str | None,
    time_col: str | int | None,
    tz: str | None,
    time_format: str | None,
    encoding: str | None,
    missing_values: Sequence[str],
    column_map: ColumnMap | str | Path | None,
    clock_repeat: bool,
    duplicate_times: str,
    label_cols: Sequence[str],
    rename: Mapping[str, str] | None,
) -> dict[str, Any]:
    """The options a file was read with, as recorded in ``site.json`` (JSON values)."""
    cmap: str | None = None
    if column_map is not None:
        m = column_map if isinstance(column_map, ColumnMap) else load_column_map(column_map)
        cmap = "sha256:" + hashlib.sha256(repr(m.columns).encode()).hexdigest()[:16]
    return {
        "format": fmt,
        "sep": normalise_sep(sep),
        "time_col": None if time_col is None else str(time_col),
        "tz": check_tz(tz),
        "time_format": time_format,
        "encoding": encoding,
        "missing_values": sorted(set(map(str, missing_values))),
        "column_map": cmap,
        "clock_repeat": bool(clock_repeat),
        "duplicate_times": duplicate_times,
        "label_cols": sorted(set(map(str, label_cols))),
        "rename": dict(sorted((str(k), str(v)) for k, v in (rename or {}).items())),
    }


def _recorded_options(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The options of a history entry (older sites recorded only the format and zone)."""
    opts = entry.get("options")
    if isinstance(opts, dict):
        return opts
    return {"format": entry.get("format"), "tz": check_tz(entry.get("tz") or "UTC")}


def _option_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    return [k for k in OPTION_FLAGS if k in old and old.get(k) != new.get(k)]


def describe_options(opts: Mapping[str, Any], keys: Sequence[str]) -> str:
    """Options as command-line flags, e.g. ``--tz Europe/Amsterdam, no --time-format``."""
    parts = []
    for k in keys:
        flag, v = OPTION_FLAGS[k], opts.get(k)
        if v is None or v is False or v == [] or v == {}:
            parts.append(f"no {flag}")
        elif v is True:
            parts.append(flag)
        elif isinstance(v, list):
            parts.append(" ".join(f"{flag} {shlex.quote(str(x))}" for x in v))
        elif isinstance(v, dict):
            parts.append(" ".join(f"{flag} {shlex.quote(f'{a}={b}')}" for a, b in v.items()))
        else:
            parts.append(f"{flag} {shlex.quote(str(v))}")
    return ", ".join(parts)


def check_table_ids(
    table: pd.DataFrame, results: Sequence[ReadResult], existing: Site | None
) -> pd.DataFrame:
    """The sensors-table rows that name a sensor of `results` or of the site.

    A row whose id names neither is refused when it is close to a sensor of the files that
    the table does not describe (a typo: that sensor would keep no kind, and the row would
    add a sensor without readings); other such rows describe sensors of files not ingested
    yet, and are left out with a warning (added when those files come with the table)."""
    files: set[str] = set()
    for r in results:
        files |= present_ids(r.readings)
    known = set(files)
    if existing is not None:
        known |= set(map(str, existing.sensors["id"]))
    lines: Mapping[str, int] = table.attrs.get("lines", {})
    unknown = [str(i) for i in table["id"] if str(i) not in known]
    if not unknown:
        return table
    unknown.sort(key=lambda i: lines.get(i, 0))
    undescribed = sorted(files - set(map(str, table["id"])))
    for sid in unknown:
        close = difflib.get_close_matches(sid, undescribed, n=3, cutoff=0.6)
        if not close:
            continue
        names = sorted(known)
        listed = ", ".join(names[:40]) + (f", ... ({len(names)} in all)" if len(names) > 40 else "")
        raise InputError(
            f"sensor {sid!r} of the sensors table is not a sensor of the files ingested nor of "
            f"the site, and {', '.join(repr(c) for c in close)} of the files has no row",
            file=table.attrs.get("file", "the sensors table"),
            line=lines.get(sid),
            column="id",
            hint=f"did you mean {' or '.join(repr(c) for c in close)}? fix the id or remove "
            "the row; known ids: " + (listed or "none"),
        )
    log.warning(
        "%s: %d row(s) name no sensor of these files or of the site (%s); left out, they "
        "apply when files with those sensors are ingested with the table",
        table.attrs.get("file", "the sensors table"),
        len(unknown),
        ", ".join(unknown[:10]) + (" ..." if len(unknown) > 10 else ""),
    )
    out = table[table["id"].astype(str).isin(known)]
    out.attrs.update(table.attrs)
    return out


def _existing(root: Path) -> Site | None:
    if (root / "site.json").is_file():
        return Site.load(root)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise InputError(
            "exists and is not a site folder (no site.json); refusing to replace it",
            file=root,
            hint="choose a new --out folder, or an existing site",
        )
    return None


def _raw_name(path: Path, sha: str, taken: set[str], root: Path) -> str:
    name = path.name
    if name not in taken:
        return name
    existing = root / "raw" / name
    if existing.is_file() and sha256_of(existing) == sha:
        return name
    return f"{path.stem}-{sha[:8]}{path.suffix}"


def _with_source(r: ReadResult, source: str) -> ReadResult:
    if r.source == source:
        return r
    rd = r.readings.copy()
    n = len(rd)
    rd["source"] = pd.Categorical.from_codes(
        np.zeros(n, dtype=np.int8), dtype=pd.CategoricalDtype(pd.Index([source], dtype="str"))
    )
    labels = r.labels.copy()
    if len(labels):
        labels["source"] = source
    return replace(r, readings=rd, labels=labels, source=source)


def _add_vibrating_wire(
    reads: list[_Read], existing: Site | None, calibration: pd.DataFrame | str | Path
) -> list[_Read]:
    cal = (
        vibrating_wire.check_calibration(calibration)
        if isinstance(calibration, pd.DataFrame)
        else vibrating_wire.load_calibration(calibration)
    )
    pool = [
        as_categorical_readings(rd.result.readings).astype({"sensor_id": "str"}) for rd in reads
    ]
    if existing is not None and len(existing.readings):
        pool.append(existing.readings)
    allr = pd.concat(pool, ignore_index=True)
    out = []
    for rd in reads:
        r, raw = rd.result, rd.raw
        gauges = present_ids(r.readings) & set(cal["sensor_id"])
        if not gauges:
            out.append(rd)
            continue
        mine = cal[cal["sensor_id"].isin(gauges)]
        new_r, new_s = vibrating_wire.convert(allr, mine)
        new_r = new_r[new_r["source"] == raw] if len(new_r) else new_r
        readings = as_categorical_readings(
            pd.concat([r.readings.astype({"sensor_id": "str", "source": "str"}), new_r])
        )
        sensors = merge_sensors(r.sensors, new_s) if len(new_s) else r.sensors
        out.append(
            replace(
                rd,
                result=replace(
                    r, readings=readings, sensors=sensors, quality=count_quality(readings)
                ),
            )
        )
    return out


def _combine(parts: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate categorical long tables (union of categories), sorted by sensor and time."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return as_categorical_readings(pd.DataFrame())
    if len(parts) == 1:
        return parts[0]
    cols: dict[str, Any] = {
        "timestamp": pd.DatetimeIndex(
            np.concatenate([p["timestamp"].to_numpy(dtype="datetime64[ns]") for p in parts]),
            tz="UTC",
        ),
        "value": np.concatenate([p["value"].to_numpy(dtype=np.float64) for p in parts]),
    }
    for c in ("sensor_id", "source"):
        u = union_categoricals([p[c].array for p in parts], sort_categories=True)
        cols[c] = u
    cols["quality"] = pd.Categorical.from_codes(
        np.concatenate([_quality_codes(p["quality"]) for p in parts]), dtype=QUALITY_DTYPE
    )
    df = pd.DataFrame(cols)[["timestamp", "sensor_id", "value", "quality", "source"]]
    order = np.lexsort(
        (
            df["timestamp"].to_numpy(dtype="datetime64[ns]").astype(np.int64),
            df["sensor_id"].cat.codes,
        )
    )
    return df.iloc[order].reset_index(drop=True)


def _quality_codes(q: pd.Series) -> np.ndarray:
    """int8 codes of a quality column in the site's flag order."""
    if isinstance(q.dtype, pd.CategoricalDtype) and list(q.cat.categories) == list(
        QUALITY_DTYPE.categories
    ):
        return np.asarray(q.cat.codes.to_numpy(), dtype=np.int8)
    return np.asarray(q.astype("str").astype(QUALITY_DTYPE).cat.codes.to_numpy(), dtype=np.int8)


def _only(readings: pd.DataFrame, ids: set[str]) -> pd.DataFrame:
    """Rows of `readings` whose sensor is in `ids` (cheap on categorical ids)."""
    sid = readings["sensor_id"]
    if isinstance(sid.dtype, pd.CategoricalDtype):
        wanted = [i for i, c in enumerate(sid.cat.categories) if str(c) in ids]
        if not wanted:
            return readings.iloc[:0]
        return readings[np.isin(sid.cat.codes.to_numpy(), wanted)]
    return readings[sid.astype("str").isin(ids)]


def _split_new(
    current: pd.DataFrame | None, new: pd.DataFrame
) -> tuple[pd.DataFrame, int, pd.DataFrame]:
    """Rows of `new` not in `current` (by sensor and time), the count already stored with the
    same value, and the conflicting rows (with the stored value and source)."""
    if current is None or current.empty or new.empty:
        return new, 0, pd.DataFrame()
    key_new = pd.DataFrame(
        {
            "sensor_id": new["sensor_id"].astype("str").to_numpy(),
            "timestamp": new["timestamp"].to_numpy(dtype="datetime64[ns]"),
            "new": new["value"].to_numpy(),
            "source": new["source"].astype("str").to_numpy(),
            "_row": np.arange(len(new)),
        }
    )
    ids = set(key_new["sensor_id"].unique())
    cur = current[current["sensor_id"].astype("str").isin(ids)]
    key_cur = pd.DataFrame(
        {
            "sensor_id": cur["sensor_id"].astype("str").to_numpy(),
            "timestamp": cur["timestamp"].to_numpy(dtype="datetime64[ns]"),
            "stored": cur["value"].to_numpy(),
            "stored_source": cur["source"].astype("str").to_numpy(),
        }
    )
    m = key_new.merge(key_cur, on=["sensor_id", "timestamp"], how="left", indicator=True)
    hit = (m["_merge"] == "both").to_numpy()
    a, b = m["new"].to_numpy(), m["stored"].to_numpy()
    same = hit & ((a == b) | (np.isnan(a) & np.isnan(b)))
    conflict = hit & ~same
    fresh_rows = m.loc[~hit, "_row"].to_numpy()
    conflicts = m.loc[
        conflict, ["sensor_id", "timestamp", "stored", "new", "stored_source", "source"]
    ]
    conflicts = conflicts.assign(timestamp=pd.DatetimeIndex(conflicts["timestamp"], tz="UTC"))
    return new.iloc[np.sort(fresh_rows)].reset_index(drop=True), int(same.sum()), conflicts


def _merge(
    root: Path,
    existing: Site | None,
    reads: list[_Read],
    history: list[dict[str, Any]],
    table: pd.DataFrame | None,
    on_conflict: str,
    name: str | None,
    tz: str | None,
) -> IngestReport:
    sensors = existing.sensors if existing is not None else empty_sensors()
    before_ids = set(map(str, sensors["id"]))
    if table is not None:
        sensors = merge_sensors(sensors, table, base_name="the site")
    labels = existing.labels if existing is not None else empty_labels()
    current: pd.DataFrame | None = (
        as_categorical_readings(existing.readings)
        if existing is not None and len(existing.readings)
        else None
    )
    added: list[pd.DataFrame] = []
    reports: list[FileReport] = []
    all_conflicts: list[pd.DataFrame] = []
    raw_files: dict[str, Path] = {}
    now = datetime.now(UTC).isoformat(timespec="seconds")
    recorded = list(history)  # before this ingest
    for rd in reads:
        r, path, raw, sha = rd.result, rd.path, rd.raw, rd.sha
        site_name = f"site {root}"
        sensors = merge_sensors(sensors, r.sensors, file=path, base_name=site_name)
        ids = present_ids(r.readings)
        parts = ([current] if current is not None else []) + added
        pool = _combine([_only(p, ids) for p in parts])
        fresh, already, conflicts = _split_new(pool, r.readings)
        new_labels = _new_labels(labels, r.labels)
        new_ids = tuple(sorted((ids | set(map(str, r.sensors["id"]))) - before_ids))
        if rd.options is not None and (len(fresh) or len(conflicts) or len(new_labels) or new_ids):
            _check_same_options(recorded, rd, len(fresh), len(conflicts))
        if len(conflicts) and on_conflict == "error":
            raise _conflict_error(conflicts, r, path)
        if len(new_labels):
            labels = _coerce_labels(pd.concat([labels, new_labels], ignore_index=True))
        if len(fresh):
            added.append(fresh)
        all_conflicts.append(conflicts)
        before_ids |= set(new_ids)
        span = r.span
        reports.append(
            FileReport(
                path=str(path),
                source=raw,
                fmt=r.fmt,
                rows=r.n_rows,
                readings=r.n_readings,
                new=len(fresh),
                already=already,
                conflicts=len(conflicts),
                sensors_new=new_ids,
                labels_new=len(new_labels),
                quality=dict(r.quality),
                warnings=r.warnings,
                first=None if span is None else span[0].isoformat(),
                last=None if span is None else span[1].isoformat(),
            )
        )
        seen_before = any(h.get("sha256") == sha for h in history)
        if len(fresh) or len(new_labels) or new_ids or not seen_before:
            raw_files[raw] = path
            history.append(
                {
                    "file": raw,
                    "sha256": sha,
                    "format": r.fmt,
                    "at": now,
                    "readings_added": len(fresh),
                    "conflicts": len(conflicts),
                    "tz": tz or "UTC",
                }
                | ({"options": rd.options} if rd.options is not None else {})
            )
    check_label_sensors(labels, sensors["id"], file=root / "labels.csv")
    conflicts_df = (
        pd.concat([c for c in all_conflicts if len(c)], ignore_index=True)
        if any(len(c) for c in all_conflicts)
        else pd.DataFrame(
            columns=["sensor_id", "timestamp", "stored", "new", "stored_source", "source"]
        )
    )
    sensors_changed = existing is None or not _same_sensors(existing.sensors, sensors)
    labels_changed = existing is None or len(labels) != len(existing.labels)
    changed = bool(added) or sensors_changed or labels_changed or bool(raw_files)
    readings = _combine([*([current] if current is not None else []), *added])
    n_readings = len(readings)
    if changed:
        meta: dict[str, Any] = dict(existing.meta) if existing is not None else {}
        meta["name"] = name or meta.get("name") or root.name
        meta.setdefault("timezone", tz or "UTC")
        meta["ingests"] = history
        site = Site(
            name=str(meta["name"]), sensors=sensors, readings=readings, labels=labels, meta=meta
        )
        site.save(root, raw_files=raw_files)
        log.debug("saved site %s (%d readings)", root, n_readings)
    return IngestReport(
        site=str(root),
        created=existing is None,
        changed=changed,
        files=tuple(reports),
        n_conflicts=len(conflicts_df),
        conflicts=conflicts_df.head(MAX_CONFLICT_EXAMPLES),
        n_readings=n_readings,
        n_sensors=len(sensors),
    )


def _check_same_options(
    recorded: Sequence[Mapping[str, Any]], rd: _Read, n_new: int, n_conflicts: int
) -> None:
    """Refuse a file whose bytes the site holds, read now with other options so that it would
    change the site (the same data at other times or under other ids)."""
    assert rd.options is not None
    prior = [h for h in recorded if h.get("sha256") == rd.sha]
    if not prior:
        return
    diffs = [_option_diff(_recorded_options(h), rd.options) for h in prior]
    if any(not d for d in diffs):
        return  # read as before: the readings are the site's own
    h, keys = prior[0], diffs[0]
    old = describe_options(_recorded_options(h), keys)
    new = describe_options(rd.options, keys)
    effect = f"{n_new} new readings" + (f" and {n_conflicts} conflicting" if n_conflicts else "")
    raise InputError(
        f"this file's content (sha256 {rd.sha[:12]}) was ingested before as {h.get('file')!r}"
        f" (at {h.get('at', '?')}) with {old}; read now with {new} it would add {effect}: the "
        "same data a second time, at shifted times or under other ids",
        file=rd.path,
        hint=f"ingest it with the recorded options ({old}), which adds nothing; if those "
        "options were wrong, re-create the site: ingest all its files into a new --out "
        "folder with the right options",
    )


def _conflict_error(conflicts: pd.DataFrame, r: ReadResult, path: Path) -> InputError:
    """The refusal of readings that contradict stored ones (see the module docstring)."""
    order = np.lexsort(
        (
            conflicts["sensor_id"].astype("str").to_numpy(),
            conflicts["timestamp"].to_numpy(dtype="datetime64[ns]").astype(np.int64),
        )
    )
    c = conflicts.iloc[int(order[0])]
    per = conflicts["sensor_id"].astype("str").value_counts().sort_index()
    named = ", ".join(f"{s!r} ({n})" for s, n in list(per.items())[:6])
    if len(per) > 6:
        named += f", ... ({len(per)} sensors)"
    when = pd.Timestamp(c["timestamp"])
    line = r.line_of(str(c["sensor_id"]), when) if r.line_of is not None else None
    return InputError(
        f"{len(conflicts)} readings conflict with stored readings of the same sensor and time "
        f"(other values), sensor{'s' if len(per) > 1 else ''} {named}; the first at {when.isoformat()}: sensor "
        f"{c['sensor_id']!r} stored {c['stored']} (from {c['stored_source']}), new {c['new']}"
        " (a different instrument under the same sensor ids?); nothing was changed",
        file=path,
        line=line,
        hint="if the file is another instrument, give its columns new sensor ids "
        "(--rename COLUMN=ID for a wide file, new ids in the --column-map of a headerless "
        "one); if it is another export of the same sensors, pass --on-conflict keep to keep "
        "the stored values, add only the other readings and report the conflicts",
    )


def _same_sensors(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    if len(a) != len(b):
        return False
    x = a.sort_values("id").reset_index(drop=True).astype("str")
    y = b.sort_values("id").reset_index(drop=True).astype("str")
    return bool(x.equals(y))


def _new_labels(stored: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    if new is None or len(new) == 0:
        return empty_labels()
    new = _coerce_labels(new)
    if len(stored) == 0:
        return new
    key = ["start", "end", "kind", "sensors"]
    have = {tuple(str(v) for v in row) for row in stored[key].itertuples(index=False)}
    keep = [tuple(str(v) for v in row) not in have for row in new[key].itertuples(index=False)]
    return new[keep].reset_index(drop=True)[list(LABEL_COLUMNS)]


def summary_json(report: IngestReport) -> str:
    return json.dumps(report.to_dict(), indent=2, default=str)
