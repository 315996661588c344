"""Campbell Scientific TOA5 reader.

A TOA5 file opens with exactly four header lines:

1. environment: ``"TOA5",station,logger model,serial,OS,program,signature,table``
2. field names: ``"TIMESTAMP","RECORD",BattV,"Piezo(1)",...``
3. units:       ``"TS","RN","Volts","kPa",...``
4. processing:  ``"","","Min","Avg",...``

then comma-separated rows (``"NAN"`` quoted or not for a missing value). Field names are
the sensor ids as the logger wrote them (array fields like ``Piezo(1)`` included); the unit
comes from line 3 and the processing (``Avg``, ``Smp``...) goes into the sensor's metadata
with the station and table names. The ``RECORD`` counter is not a sensor.

Guarantees (beyond the wide reader's): a header with fewer than four lines, or whose lines
disagree on the number of fields, raises `InputError` naming the line ("truncated TOA5
header"); a header block repeated mid-file (a logger program restart appends one) is
skipped and counted in the warnings, provided it names the same fields.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from geojepa.errors import InputError
from geojepa.io.csvcore import LineMap, float_block, read_delimited, text_column
from geojepa.io.result import (
    ReadResult,
    TimeRowLines,
    count_quality,
    labels_from_columns,
    long_from_columns,
    sensors_for,
)
from geojepa.io.textfile import TextInfo, inspect_text, split_line
from geojepa.io.times import check_increasing, parse_times
from geojepa.io.wide import check_names, kept_lines, resolve_duplicate_rows
from geojepa.site import Quality

NOT_SENSORS = ("RECORD",)


def is_toa5(first_line: str) -> bool:
    return first_line.lstrip("\ufeff").lstrip().strip('"').startswith("TOA5")


def read_toa5(
    path: str | Path,
    *,
    tz: str | None = "UTC",
    label_cols: Sequence[str] = (),
    encoding: str | None = None,
    missing_values: Sequence[str] = (),
    source: str | None = None,
    clock_repeat: bool = False,
    duplicate_times: str = "error",
    info: TextInfo | None = None,
) -> ReadResult:
    """Read a TOA5 file (see the module docstring)."""
    p = Path(path)
    info = info or inspect_text(p, encoding=encoding, header_lines=4)
    head = list(info.head)
    if not head or not is_toa5(head[0]):
        raise InputError(
            'not a TOA5 file: the first line must start with "TOA5"',
            file=p,
            line=1,
            hint="use --format wide for a plain CSV export",
        )
    if len(head) < 4 or info.n_lines < 4:
        raise InputError(
            f"truncated TOA5 header: {min(len(head), info.n_lines)} of its 4 lines",
            file=p,
            line=min(len(head), info.n_lines) + 1,
            hint="a TOA5 file needs the environment, field-name, unit and processing lines",
        )
    env = [c.strip() for c in split_line(head[0], ",")]
    names = [c.strip() for c in split_line(head[1], ",")]
    units = [c.strip() for c in split_line(head[2], ",")]
    procs = [c.strip() for c in split_line(head[3], ",")]
    for lineno, cells in ((3, units), (4, procs)):
        if len(cells) != len(names):
            raise InputError(
                f"truncated TOA5 header: line {lineno} has {len(cells)} fields, the field-name "
                f"line has {len(names)}",
                file=p,
                line=lineno,
                hint="restore the header from the logger, or export the table again",
            )
    check_names(names, p, 2)
    if not names or names[0].upper() != "TIMESTAMP":
        raise InputError(
            f"the first TOA5 field is {names[0] if names else ''!r}, not TIMESTAMP",
            file=p,
            line=2,
            hint="the file does not follow the TOA5 layout; try --format wide",
        )
    tcol = names[0]
    labels = list(label_cols)
    for lc in labels:
        if lc not in names:
            raise InputError(f"no label column {lc!r} in the TOA5 field names", file=p, line=2)
    skip = [n for n in names if n.upper() in NOT_SENSORS]
    value_cols = [n for n in names if n != tcol and n not in labels and n not in skip]
    if info.n_lines < 5:
        raise InputError("the file has a TOA5 header but no data rows", file=p, line=5)
    kw = dict(
        names=names,
        sep=",",
        numeric=value_cols,
        text=[tcol, *labels, *skip],
        missing_values=missing_values,
    )
    warnings = list(info.warnings)
    tmp: Path | None = None
    try:
        try:
            table, lmap = read_delimited(info, first_line=5, **kw)  # type: ignore[arg-type]
        except InputError:
            filtered = _without_repeated_headers(info, names)
            if filtered is None:
                raise
            tmp, kept, n_blocks = filtered
            warnings.append(f"{p}: {n_blocks} repeated TOA5 header block(s) skipped")
            lmap = LineMap(p, info.encoding, 5, kept=kept)
            table, lmap = read_delimited(
                info,
                first_line=1,
                path=tmp,
                lines=lmap,
                **kw,  # type: ignore[arg-type]
            )
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    if table.num_rows == 0:
        raise InputError("the file has a TOA5 header but no data rows", file=p, line=5)
    pt = parse_times(
        text_column(table, tcol), file=p, lines=lmap, column=tcol, tz=tz, clock_repeat=clock_repeat
    )
    cols = float_block(table, value_cols)  # (C, T)
    dup = check_increasing(pt.utc, file=p, lines=lmap, column=tcol)
    flags = pt.flags
    keep = None
    if dup.any():
        keep, suspect = resolve_duplicate_rows(
            dup, cols, p, lmap, warnings, keep_first=duplicate_times == "keep_first"
        )
        flags = np.where(suspect, Quality.CLOCK.value, flags)
        cols = cols[:, keep]
    times = pt.utc if keep is None else pt.utc[keep]
    flags = flags if keep is None else flags[keep]
    src = source or p.name
    readings = long_from_columns(times, cols, value_cols, src, time_flags=flags)
    station = env[1] if len(env) > 1 else ""
    table_name = env[7] if len(env) > 7 else ""
    unit_of = dict(zip(names, units, strict=True))
    proc_of = dict(zip(names, procs, strict=True))
    meta = {
        n: json.dumps(
            {"processing": proc_of[n], "station": station, "table": table_name}, sort_keys=True
        )
        for n in value_cols
    }
    label_text = {lc: text_column(table, lc) for lc in labels}
    if keep is not None:
        label_text = {k: v[keep] for k, v in label_text.items()}
    labels_df = labels_from_columns(
        times, label_text, file=p, lines=kept_lines(lmap, keep, table.num_rows), source=src
    )
    return ReadResult(
        readings=readings,
        sensors=sensors_for(value_cols, units={n: unit_of[n] for n in value_cols}, meta=meta),
        labels=labels_df,
        quality=count_quality(readings),
        warnings=tuple(warnings),
        source=src,
        path=p,
        fmt="toa5",
        n_rows=table.num_rows,
        line_of=TimeRowLines(times, kept_lines(lmap, keep, table.num_rows)),
    )


def _without_repeated_headers(
    info: TextInfo, names: list[str]
) -> tuple[Path, np.ndarray, int] | None:
    """Copy the data rows, minus repeated 4-line header blocks, to a temporary file.

    Returns (temp path, file line of each kept row, number of blocks) or None when the file
    has no repeated header (then the original error stands).
    """
    kept: list[int] = []
    n_blocks = 0
    skip_until = 0
    fd, name = tempfile.mkstemp(prefix=".toa5-", suffix=".csv")
    out = Path(name)
    found = False
    with (
        open(fd, "w", encoding="utf-8", newline="") as dst,
        info.path.open("r", encoding=info.encoding, newline="") as src,
    ):
        for lineno, line in enumerate(src, start=1):
            if lineno <= 4 or lineno <= skip_until:
                if lineno == skip_until - 2:
                    got = [c.strip() for c in split_line(line.rstrip("\r\n"), ",")]
                    if got != names:
                        dst.close()
                        out.unlink(missing_ok=True)
                        raise InputError(
                            "a repeated TOA5 header names different fields than the first",
                            file=info.path,
                            line=lineno,
                            hint="the logger program changed: split the file at this line",
                        )
                continue
            if is_toa5(line):
                found = True
                n_blocks += 1
                skip_until = lineno + 3
                continue
            if not line.strip():
                continue
            dst.write(line if line.endswith("\n") else line + "\n")
            kept.append(lineno)
    if not found:
        out.unlink(missing_ok=True)
        return None
    return out, np.asarray(kept, dtype=np.int64), n_blocks
