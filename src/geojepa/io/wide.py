"""Wide CSV reader: one time column, then one column per sensor (a logger export).

Layout: a header line with the column names (first column the time, unless `time_col`
names another), an optional second line of units (detected: its time cell is not a time and
its other cells are not numbers), then one row per time. Any delimiter (sniffed or `sep`).
Label columns (`label_cols`, 0/1) become labels, not sensors.

Guarantees (beyond `ReadResult`'s):

- rows must go forward in time; a row going backwards raises `InputError` at that line; a
  row repeating the previous time with identical values is dropped and counted in
  `warnings`, with different values it raises `InputError` naming both lines;
- column names must be unique and non-empty; a header without data rows is refused;
- a first line that is data (a headerless logger file: the time column's name is a
  timestamp or a number, or most sensor names are numbers and the line is shaped like the
  one below it) is refused at line 1 with the options that read headerless files
  (``--format tabbed --column-map``);
- a line repeating the header (concatenated exports), with the units line after it when the
  file has one, is skipped wherever it is and its line numbers are named in `warnings`;
- `rename` must name sensor columns and give distinct ids (`UsageError` naming
  ``--rename``);
- parsing is pyarrow's (in blocks), so memory follows the parsed numbers, not the text; the
  values are parsed into one (C, T) block that becomes the long table's value column
  without a copy when the sensor ids are in sorted order, and the long table is built
  without sorting T*C rows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from geojepa.errors import InputError, UsageError
from geojepa.io.csvcore import (
    NULL_VALUES,
    Lines,
    bare_line,
    float_block,
    read_delimited_skipping_headers,
    text_column,
)
from geojepa.io.result import (
    ReadResult,
    TimeRowLines,
    count_quality,
    labels_from_columns,
    long_from_columns,
    sensors_for,
)
from geojepa.io.textfile import TextInfo, inspect_text, sniff_delimiter, split_line
from geojepa.io.times import check_increasing, parse_times
from geojepa.site import Quality


def read_wide(
    path: str | Path,
    *,
    sep: str | None = None,
    time_col: str | int | None = None,
    tz: str | None = "UTC",
    label_cols: Sequence[str] = (),
    encoding: str | None = None,
    time_format: str | None = None,
    missing_values: Sequence[str] = (),
    units_row: bool | None = None,
    source: str | None = None,
    clock_repeat: bool = False,
    rename: dict[str, str] | None = None,
    skip_cols: Sequence[str] = (),
    duplicate_times: str = "error",
    info: TextInfo | None = None,
) -> ReadResult:
    """Read a wide CSV file. See the module docstring for the layout and guarantees.

    `rename` maps column names to sensor ids; `skip_cols` are columns deliberately not read
    (each is named in the warnings). `duplicate_times` says what to do with a row repeating
    the previous row's time with different values: "error" (default) or "keep_first" (the
    later row is left out and counted in the warnings; the kept row is flagged ``clock``).
    """
    p = Path(path)
    info = info or inspect_text(p, encoding=encoding, header_lines=2)
    head = list(info.head)
    k = 0
    while k < len(head) and (not head[k].strip() or head[k].lstrip().startswith("#")):
        k += 1
    if k >= len(head):
        raise InputError("no header line", file=p, hint="nothing to ingest")
    delim = sniff_delimiter(p, head[k:], sep=sep, first_line=k + 1)
    names = [n.strip() for n in split_line(head[k], delim)]
    if names and not names[0] and time_col in (None, 0, "0"):
        names[0] = "time"  # an index column written without a name (pandas exports do this)
    below = next((h for h in head[k + 1 :] if h.strip()), None)
    check_header_not_data(
        names,
        _time_index(names, time_col),
        p,
        k + 1,
        None if below is None else [c.strip() for c in split_line(below, delim)],
    )
    check_names(names, p, k + 1)
    tcol = _time_column(names, time_col, p)
    labels = list(label_cols)
    for lc in labels:
        if lc not in names:
            raise UsageError(
                f"no label column {lc!r} in the header",
                file=p,
                line=k + 1,
                hint="columns are: " + ", ".join(names[:30]),
            )
    skipped = [c for c in skip_cols if c in names]
    value_cols = [n for n in names if n != tcol and n not in labels and n not in skipped]
    if not value_cols:
        raise InputError(
            "no sensor columns besides the time" + (" and labels" if labels else ""),
            file=p,
            line=k + 1,
            hint="a wide file has a time column, then one column per sensor",
        )
    check_rename(rename or {}, value_cols, p, k + 1)
    header_text = bare_line(head[k])
    j = k + 1  # lines right after the header that repeat it (concatenated exports)
    leading: list[int] = []
    while j < len(head) and bare_line(head[j]) == header_text:
        leading.append(j + 1)
        j += 1
    data_line = j + 1
    units: dict[str, str] = {}
    units_text: str | None = None
    second = head[j] if j < len(head) else None
    if second is not None and (
        units_row or (units_row is None and _looks_like_units(second, delim, names, tcol))
    ):
        cells = [c.strip() for c in split_line(second, delim)]
        units = {n: cells[i] for i, n in enumerate(names) if i < len(cells) and n in value_cols}
        units_text = second.strip()
        data_line += 1
    if info.n_lines < data_line or all(not h.strip() for h in head[data_line - 1 :]):
        raise InputError(
            "the file has a header but no data rows",
            file=p,
            line=data_line,
            hint="check the export; nothing to ingest",
        )
    table, lmap, repeats = read_delimited_skipping_headers(
        info,
        header=header_text,
        follow=units_text,
        trigger=tcol,
        names=names,
        first_line=data_line,
        sep=delim,
        numeric=value_cols,
        text=[tcol, *labels, *skipped],
        missing_values=missing_values,
    )
    if table.num_rows == 0:
        raise InputError("the file has a header but no data rows", file=p, line=data_line)
    times_text = text_column(table, tcol)
    pt = parse_times(
        times_text,
        file=p,
        lines=lmap,
        column=tcol,
        tz=tz,
        fmt=time_format,
        clock_repeat=clock_repeat,
    )
    cols = float_block(table, value_cols)  # (C, T)
    dup = check_increasing(pt.utc, file=p, lines=lmap, column=tcol)
    warnings = list(info.warnings)
    if leading or repeats.lines:
        warnings.append(repeats.warning(p, leading))
    keep = None
    flags = pt.flags
    if dup.any():
        keep, suspect = resolve_duplicate_rows(
            dup, cols, p, lmap, warnings, keep_first=duplicate_times == "keep_first"
        )
        flags = np.where(suspect, Quality.CLOCK.value, flags)
    times = pt.utc if keep is None else pt.utc[keep]
    flags = flags if keep is None else flags[keep]
    if keep is not None:
        cols = cols[:, keep]
    src = source or p.name
    ids = [(rename or {}).get(c, c) for c in value_cols]
    readings = long_from_columns(times, cols, ids, src, time_flags=flags)
    labels_df = labels_from_columns(
        times,
        {
            lc: (text_column(table, lc) if keep is None else text_column(table, lc)[keep])
            for lc in labels
        },
        file=p,
        lines=kept_lines(lmap, keep, table.num_rows),
        source=src,
    )
    for c in skipped:
        warnings.append(f"{p}: column {c!r} not read (skipped on purpose)")
    meta = {
        i: json.dumps({"column": c}, sort_keys=True)
        for i, c in zip(ids, value_cols, strict=True)
        if i != c
    }
    sensors = sensors_for(
        ids, units={i: units.get(c, "") for i, c in zip(ids, value_cols, strict=True)}, meta=meta
    )
    return ReadResult(
        readings=readings,
        sensors=sensors,
        labels=labels_df,
        quality=count_quality(readings),
        warnings=tuple(warnings),
        source=src,
        path=p,
        fmt="wide",
        n_rows=table.num_rows,
        line_of=TimeRowLines(times, kept_lines(lmap, keep, table.num_rows)),
    )


def check_names(names: list[str], p: Path, line: int) -> None:
    for i, n in enumerate(names):
        if not n:
            raise InputError(
                f"column {i + 1} has no name",
                file=p,
                line=line,
                hint="name every column in the header",
            )
    seen: dict[str, int] = {}
    for i, n in enumerate(names):
        if n in seen:
            raise InputError(
                f"column name {n!r} appears twice (columns {seen[n] + 1} and {i + 1})",
                file=p,
                line=line,
                hint="give every sensor column a unique name",
            )
        seen[n] = i


_NUMBER_RE = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")
_TIMESTAMP_RE = re.compile(
    r"^(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})(?:$|[T\s])"
    r"|^\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?$"
)
HEADERLESS_HINT = (
    "a file without a header line is read with --format tabbed --column-map MAP, where MAP "
    "is a CSV with one row per file column (column,role,sensor_id,kind,unit; roles time, "
    "sensor, skip); or add a header line naming the time column and the sensors"
)


def check_header_not_data(
    names: list[str], t_index: int | None, p: Path, line: int, next_cells: list[str] | None
) -> None:
    """Refuse a header line that is data (a headerless logger file read as a wide CSV): its
    time column's name is a timestamp or a number, or most sensor names are numbers or
    timestamps and every cell has the kind (number, timestamp, text, empty) of the cell below
    it in `next_cells`, the first data line. Sensor names that are numbers under a time
    column named in words (``time,0.5,1.0`` for depths) stay a header."""
    t = names[t_index] if t_index is not None and 0 <= t_index < len(names) else None
    why = ""
    if t is not None and _TIMESTAMP_RE.match(t):
        why = f"the time column's name {t!r} is a timestamp"
    elif t is not None and _NUMBER_RE.match(t):
        why = f"the time column's name {t!r} is a number"
    else:
        others = [n for i, n in enumerate(names) if i != t_index]
        nums = [n for n in others if _cell_kind(n) in ("number", "timestamp")]
        if (
            others
            and 2 * len(nums) > len(others)
            and next_cells is not None
            and len(next_cells) == len(names)
            and all(_cell_kind(a) == _cell_kind(b) for a, b in zip(names, next_cells, strict=True))
        ):
            why = (
                f"{len(nums)} of its {len(others)} sensor names are numbers or times "
                f"({', '.join(nums[:4])}), like the values of the line below"
            )
    if why:
        raise InputError(
            f"the header line looks like data: {why}; the first line of a wide CSV must name "
            "its columns",
            file=p,
            line=line,
            hint=HEADERLESS_HINT,
        )


def _cell_kind(cell: str) -> str:
    c = cell.strip()
    if not c:
        return "empty"
    if _TIMESTAMP_RE.match(c):
        return "timestamp"
    if _NUMBER_RE.match(c):
        return "number"
    return "text"


def check_rename(rename: dict[str, str], value_cols: list[str], p: Path, line: int) -> None:
    """`rename` (column -> sensor id) must name sensor columns and give distinct ids."""
    for col, new in rename.items():
        if col not in value_cols:
            raise UsageError(
                f"--rename {col}={new}: no sensor column {col!r} in the header",
                file=p,
                line=line,
                hint="sensor columns are: " + ", ".join(value_cols[:30]),
            )
        if not str(new).strip():
            raise UsageError(f"--rename {col}=: the new sensor id is empty", file=p, line=line)
    ids = [rename.get(c, c) for c in value_cols]
    seen: dict[str, str] = {}
    for c, i in zip(value_cols, ids, strict=True):
        if i in seen:
            raise UsageError(
                f"--rename gives columns {seen[i]!r} and {c!r} the same sensor id {i!r}",
                file=p,
                line=line,
                hint="give every column its own id",
            )
        seen[i] = c


def _time_index(names: list[str], time_col: str | int | None) -> int | None:
    if time_col is None:
        return 0
    if isinstance(time_col, str) and time_col in names:
        return names.index(time_col)
    if isinstance(time_col, int) or time_col.isdigit():
        return int(time_col)
    return None


def _time_column(names: list[str], time_col: str | int | None, p: Path) -> str:
    if time_col is None:
        return names[0]
    if isinstance(time_col, int) or (
        isinstance(time_col, str) and time_col.isdigit() and time_col not in names
    ):
        i = int(time_col)
        if not 0 <= i < len(names):
            raise UsageError(f"--time-col {i} is out of range (0..{len(names) - 1})", file=p)
        return names[i]
    if time_col not in names:
        raise UsageError(
            f"no time column {time_col!r} in the header",
            file=p,
            line=1,
            hint="columns are: " + ", ".join(names[:30]),
        )
    return time_col


def _looks_like_units(line: str, sep: str, names: list[str], tcol: str) -> bool:
    cells = [c.strip() for c in split_line(line, sep)]
    if len(cells) != len(names):
        return False
    t = cells[names.index(tcol)]
    others = [c for i, c in enumerate(cells) if names[i] != tcol]
    if any(ch.isdigit() for ch in t) and len(t) >= 6:
        return False  # a time
    non_num = 0
    for c in others:
        if c in NULL_VALUES:
            continue
        try:
            float(c)
        except ValueError:
            non_num += 1
    return non_num > 0


def resolve_duplicate_rows(
    dup: np.ndarray,
    cols: Sequence[np.ndarray] | np.ndarray,
    p: Path,
    lmap: Lines,
    warnings: list[str],
    *,
    keep_first: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Rows repeating the previous time: drop when identical (counted); when the values
    differ raise, or with `keep_first` drop the later row and flag the kept one.

    Returns (keep (N,) bool, suspect (N,) bool: kept rows whose time was repeated).
    """
    idx = np.flatnonzero(dup)
    suspect = np.zeros(len(dup), dtype=bool)
    differing = []
    for i in idx:
        same = all(c[i - 1] == c[i] or (np.isnan(c[i - 1]) and np.isnan(c[i])) for c in cols)
        if same:
            continue
        if not keep_first:
            raise InputError(
                f"the row repeats the time of line {lmap[int(i) - 1]} with different values",
                file=p,
                line=lmap[int(i)],
                hint="remove one of the two rows (a logger clock problem?) or fix the time",
            )
        differing.append(int(i))
        j = int(i) - 1
        while dup[j]:
            j -= 1
        suspect[j] = True
    n_same = len(idx) - len(differing)
    if n_same:
        first = next(int(i) for i in idx if int(i) not in set(differing))
        warnings.append(
            f"{p}: {n_same} row(s) repeating the previous row exactly were left out "
            f"(first at line {lmap[first]})"
        )
    if differing:
        shown = ", ".join(str(lmap[i]) for i in differing[:5])
        warnings.append(
            f"{p}: {len(differing)} row(s) repeating the previous time with different values "
            f"were left out (lines {shown}); the kept rows are flagged 'clock'"
        )
    return ~dup, suspect


def kept_lines(lmap: Lines, keep: np.ndarray | None, n: int) -> _LazyLines:
    """File line of each row left after dropping repeats (`keep`, None = all `n` kept)."""
    rows = np.arange(n) if keep is None else np.flatnonzero(keep)
    return _LazyLines(lmap, rows)


class _LazyLines:
    """Row index (after dropping) -> file line, looked up only when an error needs it."""

    def __init__(self, lmap: Lines, rows: np.ndarray) -> None:
        self.lmap = lmap
        self.rows = rows

    def __getitem__(self, i: int) -> int:
        return self.lmap[int(self.rows[int(i)])]
