"""Small delimited text files read whole, every cell a string: events files, fill plans.

Guarantees: the file passes `inspect_text`'s pre-flight checks (missing, binary, bad
encoding... raise `InputError` naming it); the delimiter is one of ``,`` ``;`` or tab, as
`sniff_delimiter` finds it; header names come back stripped and lower-cased; a required
column that is missing raises `InputError` naming the file, the header's line, the column
and the header to write (`require_columns`, shared with the other tables' readers);
``lines[i]`` is the file line of row ``i`` (blank lines skipped, before the header too, as
the reader skips them).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from geojepa.errors import InputError
from geojepa.io.csvcore import LineMap
from geojepa.io.textfile import TextInfo, inspect_text, sniff_delimiter


def read_small_table(
    path: str | Path, required: Sequence[str], what: str, header: str
) -> tuple[pd.DataFrame, LineMap]:
    """(rows as strings, their file lines) of a small table that has the `required`
    columns; `what` names the file in messages ("the events file"), `header` is the header
    line to suggest."""
    p = Path(path)
    info = inspect_text(p, header_lines=1)
    lines = [ln for ln in info.head if ln.strip()]
    sep = sniff_delimiter(p, lines or list(info.head), candidates=(",", ";", "\t"))
    df = pd.read_csv(p, sep=sep, dtype="str", keep_default_na=False, encoding=info.encoding)
    df.columns = [str(c).strip().lower() for c in df.columns]
    rows = row_lines(info)
    require_columns(df, required, p, what, f"header: {header}", line=rows.first_line - 1)
    return df, rows


def row_lines(info: TextInfo) -> LineMap:
    """File line of each row `pandas.read_csv` returns for the file `info` describes.

    The reader skips blank lines, before the header too: the header is the first other line
    (``first_line - 1`` of the map) and the rows are the non-blank lines after it.
    """
    header_line = next((i + 1 for i, ln in enumerate(info.head) if ln.strip()), 1)
    return LineMap(info.path, info.encoding, header_line + 1)


def require_columns(
    df: pd.DataFrame,
    required: Sequence[str],
    path: str | Path,
    what: str,
    hint: str,
    line: int = 1,
) -> None:
    """Raise `InputError` at `line` (the header's) of `path` for the first `required`
    column `df` lacks: "<what> has no '<column>' column (columns: ...)", with `hint`."""
    for need in required:
        if need not in df.columns:
            have = ", ".join(map(repr, list(df.columns)[:8]))
            raise InputError(
                f"{what} has no {need!r} column (columns: {have})",
                file=path,
                line=line,
                hint=hint,
            )


__all__ = ["read_small_table", "require_columns", "row_lines"]
