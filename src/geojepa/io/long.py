"""Long CSV reader: one reading per row (``timestamp,sensor_id,value[,quality][,source]``).

This is also the layout `geojepa readings` writes, so an exported table reads back.
Header names are matched loosely: time/timestamp/datetime/date, sensor_id/sensor/id/name,
value/reading.

Guarantees (beyond `ReadResult`'s):

- rows may come in any order; the result is sorted by (sensor_id, timestamp); naive local
  times in a zone with daylight saving are resolved per sensor in file order (each sensor's
  rows go through a repeated autumn hour twice, summer time first);
- a repeated (sensor, time) with the same value is dropped and counted in the warnings,
  with a different value it raises `InputError` naming both lines;
- a ``quality`` column, when present, must hold known flags (else `InputError` at the line);
  a NaN value is always flagged ``missing`` whatever the column says;
- a line repeating the header (concatenated exports) is skipped and its line named in the
  warnings;
- the ``source`` of every reading is this file (kept whole under the site's ``raw/``); a
  ``source`` column in the file is noted in the warnings, not copied.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from geojepa.errors import InputError, UsageError
from geojepa.io.csvcore import float_columns, read_delimited_skipping_headers
from geojepa.io.result import (
    QUALITY_DTYPE,
    QUALITY_ORDER,
    KeyRowLines,
    ReadResult,
    code_of,
    count_quality,
    flag_codes,
    sensors_for,
)
from geojepa.io.textfile import TextInfo, inspect_text, sniff_delimiter, split_line
from geojepa.io.times import parse_times_factorized
from geojepa.io.wide import check_names
from geojepa.site import Quality

TIME_NAMES = ("timestamp", "time", "datetime", "date_time", "date")
SENSOR_NAMES = ("sensor_id", "sensor", "id", "name", "sensor_name")
VALUE_NAMES = ("value", "reading", "val")


def looks_long(names: Sequence[str]) -> bool:
    low = [n.strip().lower() for n in names]
    return (
        any(n in low for n in SENSOR_NAMES)
        and any(n in low for n in VALUE_NAMES)
        and any(n in low for n in TIME_NAMES)
    )


def _find(names: list[str], wanted: Sequence[str], given: str | None, what: str, p: Path) -> str:
    if given is not None:
        if given not in names:
            raise UsageError(
                f"no {what} column {given!r} in the header",
                file=p,
                line=1,
                hint="columns are: " + ", ".join(names),
            )
        return given
    low = {n.strip().lower(): n for n in names}
    for w in wanted:
        if w in low:
            return low[w]
    raise InputError(
        f"a long file needs a {what} column (one of {', '.join(wanted)})",
        file=p,
        line=1,
        hint="or use --format wide for one column per sensor",
    )


def read_long(
    path: str | Path,
    *,
    sep: str | None = None,
    time_col: str | None = None,
    tz: str | None = "UTC",
    encoding: str | None = None,
    time_format: str | None = None,
    missing_values: Sequence[str] = (),
    source: str | None = None,
    info: TextInfo | None = None,
) -> ReadResult:
    """Read a long CSV file (see the module docstring)."""
    p = Path(path)
    info = info or inspect_text(p, encoding=encoding, header_lines=1)
    head = list(info.head)
    delim = sniff_delimiter(p, head, sep=sep)
    names = [n.strip() for n in split_line(head[0], delim)]
    check_names(names, p, 1)
    tcol = _find(names, TIME_NAMES, time_col, "time", p)
    scol = _find(names, SENSOR_NAMES, None, "sensor", p)
    vcol = _find(names, VALUE_NAMES, None, "value", p)
    qcol = next((n for n in names if n.strip().lower() == "quality"), None)
    srccol = next((n for n in names if n.strip().lower() == "source"), None)
    others = [n for n in names if n not in (tcol, scol, vcol, qcol, srccol)]
    if info.n_lines < 2 or all(not h.strip() for h in head[1:]):
        raise InputError("the file has a header but no data rows", file=p, line=2)
    text_cols = [tcol, scol, *([qcol] if qcol else []), *([srccol] if srccol else []), *others]
    table, lmap, repeats = read_delimited_skipping_headers(
        info,
        header=head[0],
        trigger=tcol,
        names=names,
        first_line=2,
        sep=delim,
        numeric=[vcol],
        text=text_cols,
        missing_values=missing_values,
    )
    n = table.num_rows
    if n == 0:
        raise InputError("the file has a header but no data rows", file=p, line=2)
    s_codes, s_uniq = _dict(table.column(scol))
    ids = [str(s).strip() for s in s_uniq]
    if any(not s for s in ids):
        i = int(np.flatnonzero(np.isin(s_codes, [k for k, s in enumerate(ids) if not s]))[0])
        raise InputError("empty sensor id", file=p, line=lmap[i], column=scol)
    # merge ids that differ only by surrounding spaces
    uniq_ids = sorted(set(ids))
    remap = np.array([uniq_ids.index(s) for s in ids], dtype=np.int32)
    sid = remap[s_codes]
    t_codes, t_uniq = _dict(table.column(tcol))
    # each sensor is its own series: a repeated autumn hour is resolved in its file order
    pt = parse_times_factorized(
        t_uniq, t_codes, file=p, lines=lmap, column=tcol, tz=tz, fmt=time_format, groups=sid
    )
    (value,) = float_columns(table, [vcol])
    flags = flag_codes(pt.flags)
    if qcol is not None:
        q_codes, q_uniq = _dict(table.column(qcol))
        known = set(QUALITY_ORDER)
        for k, q in enumerate(q_uniq):
            if str(q).strip() not in known:
                i = int(np.flatnonzero(q_codes == k)[0])
                raise InputError(
                    f"unknown quality flag {q!r}",
                    file=p,
                    line=lmap[i],
                    column=qcol,
                    hint="flags are " + ", ".join(QUALITY_ORDER),
                )
        given = np.array([code_of(str(q).strip()) for q in q_uniq], dtype=np.int8)[q_codes]
        ok = code_of(Quality.OK)
        flags = np.where(flags != ok, flags, given)
    flags = np.where(np.isinf(value), code_of(Quality.NON_FINITE), flags)
    flags = np.where(np.isnan(value), code_of(Quality.MISSING), flags).astype(np.int8)
    value = np.where(np.isinf(value), np.nan, value)
    t_ns = pt.utc.astype("datetime64[ns]").astype(np.int64)
    order = np.lexsort((t_ns, sid))
    sid, t_ns, value, flags = sid[order], t_ns[order], value[order], flags[order]
    rows = order
    warnings = list(info.warnings)
    if repeats.lines:
        warnings.append(repeats.warning(p))
    same_key = np.concatenate(([False], (np.diff(sid) == 0) & (np.diff(t_ns) == 0)))
    if same_key.any():
        idx = np.flatnonzero(same_key)
        a, b = value[idx - 1], value[idx]
        differ = ~((a == b) | (np.isnan(a) & np.isnan(b)))
        if differ.any():
            j = int(idx[np.flatnonzero(differ)[0]])
            first, second = sorted((int(rows[j - 1]), int(rows[j])))
            raise InputError(
                f"sensor {uniq_ids[sid[j]]!r} has two values at "
                f"{pd.Timestamp(t_ns[j]).isoformat()}Z (also on line {lmap[first]})",
                file=p,
                line=lmap[second],
                hint="remove one of the two rows",
            )
        warnings.append(
            f"{p}: {len(idx)} repeated (sensor, time) row(s) with the same value were left out"
        )
        keep = ~same_key
        sid, t_ns, value, flags = sid[keep], t_ns[keep], value[keep], flags[keep]
        rows = rows[keep]
    if srccol is not None:
        warnings.append(f"{p}: the 'source' column is not copied; readings name this file")
    if others:
        warnings.append(f"{p}: columns not read: {', '.join(others)}")
    src = source or p.name
    readings = pd.DataFrame(
        {
            "timestamp": pd.DatetimeIndex(t_ns.astype("datetime64[ns]"), tz="UTC"),
            "sensor_id": pd.Categorical.from_codes(
                sid, dtype=pd.CategoricalDtype(pd.Index(uniq_ids, dtype="str"))
            ),
            "value": value,
            "quality": pd.Categorical.from_codes(flags, dtype=QUALITY_DTYPE),
            "source": pd.Categorical.from_codes(
                np.zeros(len(sid), dtype=np.int8),
                dtype=pd.CategoricalDtype(pd.Index([src], dtype="str")),
            ),
        }
    )
    return ReadResult(
        readings=readings,
        sensors=sensors_for(uniq_ids),
        quality=count_quality(readings),
        warnings=tuple(warnings),
        source=src,
        path=p,
        fmt="long",
        n_rows=n,
        line_of=KeyRowLines(uniq_ids, sid, t_ns, rows, lmap),
    )


def _dict(col: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Codes (N,) int64 (-1 for null) and distinct values (U,) of a string column."""
    enc = pc.dictionary_encode(col.combine_chunks())
    codes = enc.indices.to_numpy(zero_copy_only=False)
    codes = np.where(pd.isna(codes), -1, codes).astype(np.int64)
    return codes, np.asarray(enc.dictionary.to_pylist(), dtype=object)
