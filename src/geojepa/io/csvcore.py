"""Fast delimited-text parsing shared by the wide, long and TOA5 readers.

`read_delimited` hands the data rows of a checked text file to pyarrow's CSV parser (blocks
of about a MiB: memory is bounded by the parsed table, never by the text)
with exact column types, then, only when pyarrow refuses the file, walks it again line by
line to name the first bad line and column in words a user can act on.

Guarantees:

- numeric columns come back as float64 with empty cells, ``NAN``/``NaN``/``nan``/``NA``/
  ``null`` (quoted or not) and any extra `missing_values` as NaN, and ``INF``/``-INF`` as ±inf;
  a missing value that is a number (``-9999``) matches that number however it is written
  (``-9999.0``, ``-9.999e3``);
- a row with the wrong number of fields, text in a numeric column or a decimal comma raises
  `InputError` with the file, line and column; blank lines are skipped;
- `LineMap` turns a data-row index into its file line, exactly, also with blank or skipped
  lines in between (it scans the file only when an error needs a line number);
- `read_delimited_skipping_headers` skips data lines identical to the header (concatenated
  exports) and returns their line numbers, so the reader can report them as a warning.
"""

from __future__ import annotations

import csv
import re
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from geojepa.errors import InputError
from geojepa.io.textfile import TextInfo, delimiter_name

NULL_VALUES: tuple[str, ...] = ("", "NAN", "NaN", "nan", "NA", "N/A", "null", "NULL", "None")
_NUMBER_RE = re.compile(
    r"^\s*[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity)\s*$", re.IGNORECASE
)
_DECIMAL_COMMA_RE = re.compile(r"^\s*[+-]?\d+,\d+\s*$")
# One parser thread over 1 MiB blocks: measured on a 2-core machine shared with other work
# (20 MB wide CSV), pyarrow's thread pool gained no wall time and cost ~30% more CPU than one
# thread, and blocks that stay in cache parse fastest (one thread, CPU time relative to
# `pandas.read_csv`: 1 MiB ~0.7-0.75x, 4 MiB ~0.9x, 16 MiB ~2.4x). Not measured on an idle
# many-core machine, where the thread pool may well win.
PARSE_THREADS = False
PARSE_BLOCK = 1 << 20


class Lines(Protocol):
    """Anything that maps a data-row index to its 1-based file line."""

    def __getitem__(self, i: int) -> int: ...


@dataclass
class LineMap:
    """Map data-row index -> 1-based file line; rows are the non-blank lines after `first_line`.

    `kept` (optional) lists the file lines that became rows when some lines were filtered out
    (e.g. a TOA5 header repeated mid-file); otherwise the map is found by scanning on demand.
    """

    path: Path
    encoding: str
    first_line: int
    kept: np.ndarray | None = None
    _lines: np.ndarray | None = field(default=None, repr=False)

    def __getitem__(self, i: int) -> int:
        i = int(i)
        if self.kept is not None:
            return int(self.kept[min(i, len(self.kept) - 1)]) if len(self.kept) else self.first_line
        if self._lines is None:
            found: list[int] = []
            with self.path.open("r", encoding=self.encoding, newline="") as fh:
                for n, line in enumerate(fh, start=1):
                    if n >= self.first_line and line.strip():
                        found.append(n)
            self._lines = np.asarray(found, dtype=np.int64)
        if i < len(self._lines):
            return int(self._lines[i])
        return self.first_line + i

    def __len__(self) -> int:  # pragma: no cover - only for sequence protocol
        return 0 if self.kept is None else len(self.kept)


def parse_block_size(info: TextInfo) -> int:
    """Bytes per parser block: `PARSE_BLOCK`, or more when a line would not fit in one."""
    return max(PARSE_BLOCK, 2 * info.max_line + (64 << 10))


def arrow_encoding(codec: str) -> str:
    return {"utf-8-sig": "utf8", "utf-8": "utf8", "latin-1": "latin1"}.get(codec, codec)


def read_delimited(
    info: TextInfo,
    *,
    names: Sequence[str],
    first_line: int,
    sep: str,
    numeric: Sequence[str],
    text: Sequence[str],
    missing_values: Sequence[str] = (),
    path: Path | None = None,
    lines: LineMap | None = None,
) -> tuple[pa.Table, LineMap]:
    """Parse data rows from line `first_line` on (1-based) of `info.path` (or `path`).

    `names` are all columns in file order; `numeric` become float64, `text` stay strings.
    """
    src = path or info.path
    lmap = lines or LineMap(info.path, info.encoding, first_line)
    nulls = list(dict.fromkeys([*NULL_VALUES, *missing_values]))
    types: dict[str, pa.DataType] = {n: pa.float64() for n in numeric}
    types.update({n: pa.string() for n in text})
    try:
        table = pacsv.read_csv(
            src,
            read_options=pacsv.ReadOptions(
                column_names=list(names),
                skip_rows=first_line - 1,
                encoding=arrow_encoding(info.encoding),
                block_size=parse_block_size(info),
                use_threads=PARSE_THREADS,
            ),
            parse_options=pacsv.ParseOptions(delimiter=sep, newlines_in_values=False),
            convert_options=pacsv.ConvertOptions(
                column_types=types,
                null_values=nulls,
                strings_can_be_null=False,
                quoted_strings_can_be_null=True,
                include_columns=[*names],
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError) as err:
        diagnose(
            info,
            src=src,
            names=names,
            first_line=first_line,
            sep=sep,
            numeric=numeric,
            nulls=nulls,
            lines=lmap,
        )
        # every row is fine by the line-by-line rules (e.g. cells holding only spaces, which
        # pyarrow refuses as numbers): read with the slower row parser instead
        slow = _read_slow(src, info.encoding, names, first_line, sep, numeric, text, nulls)
        if slow is not None:
            return _null_sentinels(slow, numeric, missing_values), lmap
        raise InputError(
            f"cannot parse the file ({str(err).splitlines()[0][:200]})",
            file=info.path,
            hint="check the separator (--sep) and that every row has the header's columns",
        ) from err
    return _null_sentinels(table, numeric, missing_values), lmap


@dataclass(frozen=True)
class RepeatedHeaders:
    """File lines that repeated the header (and the units line after them) and were skipped."""

    lines: tuple[int, ...] = ()
    follow_lines: tuple[int, ...] = ()

    def warning(self, path: Path, leading: Sequence[int] = ()) -> str:
        """The warning naming every skipped header line (`leading`: ones the caller skipped
        right after the header)."""
        lines = sorted({*leading, *self.lines})
        shown = ", ".join(str(n) for n in lines[:10]) + (", ..." if len(lines) > 10 else "")
        text = f"{path}: {len(lines)} line(s) repeating the header were skipped (lines {shown})"
        if self.follow_lines:
            text += f", with the units line after {len(self.follow_lines)} of them"
        return text


def read_delimited_skipping_headers(
    info: TextInfo,
    *,
    header: str,
    follow: str | None = None,
    trigger: str | None = None,
    names: Sequence[str],
    first_line: int,
    sep: str,
    numeric: Sequence[str],
    text: Sequence[str],
    missing_values: Sequence[str] = (),
) -> tuple[pa.Table, LineMap, RepeatedHeaders]:
    """`read_delimited`, skipping data lines identical to the `header` line (whitespace at the
    ends aside), as concatenated logger exports repeat it, and a line identical to `follow`
    (e.g. the units line) right after each.

    The file is scanned for repeats only when pyarrow refuses it (a header's names in numeric
    columns) or when the text column `trigger` holds its own name: the common file costs
    nothing more. Line numbers in later errors stay those of the original file.
    """
    kw: dict[str, object] = dict(
        names=names, sep=sep, numeric=numeric, text=text, missing_values=missing_values
    )
    try:
        table, lmap = read_delimited(info, first_line=first_line, **kw)  # type: ignore[arg-type]
    except InputError:
        found = _without_repeated_header(info, header, follow, first_line)
        if found is None:
            raise
    else:
        if trigger is None or not _holds(table, trigger, names, header, sep):
            return table, lmap, RepeatedHeaders()
        found = _without_repeated_header(info, header, follow, first_line)
        if found is None:
            return table, lmap, RepeatedHeaders()
    tmp, kept, repeats = found
    try:
        lines = LineMap(info.path, info.encoding, first_line, kept=kept)
        table, lmap = read_delimited(
            info,
            first_line=1,
            path=tmp,
            lines=lines,
            **kw,  # type: ignore[arg-type]
        )
    finally:
        tmp.unlink(missing_ok=True)
    return table, lmap, repeats


def bare_line(line: str) -> str:
    """A line without its line end, surrounding spaces and byte-order marks (files
    concatenated from UTF-8 exports carry one at each start), for comparing headers."""
    return line.strip().lstrip("\ufeff").strip()


def _holds(table: pa.Table, column: str, names: Sequence[str], header: str, sep: str) -> bool:
    """Whether text `column` holds, in some row, the header's cell of that column."""
    from geojepa.io.textfile import split_line

    cells = [c.strip() for c in split_line(bare_line(header), sep)]
    i = list(names).index(column)
    if i >= len(cells):
        return False
    col = pc.utf8_trim(table.column(column), characters=" \t\r\n\ufeff")
    return bool(pc.any(pc.equal(col, pa.scalar(cells[i], type=pa.string()))).as_py())


def _without_repeated_header(
    info: TextInfo, header: str, follow: str | None, first_line: int
) -> tuple[Path, np.ndarray, RepeatedHeaders] | None:
    """Copy the data lines from `first_line` on, minus repeats of `header` (and of `follow`
    right after one), to a temporary file in the file's encoding.

    Returns (temp path, file line of each kept row, what was skipped), or None when no line
    repeats the header (then the original outcome stands).
    """
    header = bare_line(header)
    follow = bare_line(follow) if follow is not None else None
    kept: list[int] = []
    repeated: list[int] = []
    followed: list[int] = []
    codec = "utf-8" if info.encoding == "utf-8-sig" else info.encoding
    fd, name = tempfile.mkstemp(prefix=".rows-", suffix=".csv")
    out = Path(name)
    after_header = False
    try:
        with (
            open(fd, "w", encoding=codec, newline="") as dst,
            info.path.open("r", encoding=info.encoding, newline="") as src,
        ):
            for lineno, line in enumerate(src, start=1):
                if lineno < first_line:
                    continue
                stripped = bare_line(line)
                if not stripped:
                    continue
                if stripped == header:
                    repeated.append(lineno)
                    after_header = True
                    continue
                if after_header and follow and stripped == follow:
                    followed.append(lineno)
                    after_header = False
                    continue
                after_header = False
                dst.write(line if line.endswith("\n") else line + "\n")
                kept.append(lineno)
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    if not repeated:
        out.unlink(missing_ok=True)
        return None
    return (
        out,
        np.asarray(kept, dtype=np.int64),
        RepeatedHeaders(lines=tuple(repeated), follow_lines=tuple(followed)),
    )


def _null_sentinels(table: pa.Table, numeric: Sequence[str], missing: Sequence[str]) -> pa.Table:
    """Numeric cells equal to a missing value that is a number become null (NaN)."""
    nums = []
    for m in missing:
        try:
            v = float(m)
        except ValueError:
            continue
        if np.isfinite(v):
            nums.append(v)
    if not nums:
        return table
    values = pa.array(sorted(set(nums)), type=pa.float64())
    for name in numeric:
        i = table.schema.get_field_index(name)
        col = table.column(i)
        hit = pc.is_in(col, value_set=values)
        if pc.any(hit).as_py():
            table = table.set_column(
                i, name, pc.if_else(hit, pa.scalar(None, type=pa.float64()), col)
            )
    return table


def _read_slow(
    src: Path,
    encoding: str,
    names: Sequence[str],
    first_line: int,
    sep: str,
    numeric: Sequence[str],
    text: Sequence[str],
    nulls: Sequence[str],
) -> pa.Table | None:
    """Row-by-row parse (after `diagnose` found every row valid); None if that fails too."""
    cols: dict[str, list[object]] = {n: [] for n in names}
    pos = {n: i for i, n in enumerate(names)}
    null_set = set(nulls)
    try:
        for _line, row in _rows(src, encoding, sep, first_line):
            for n in numeric:
                cell = row[pos[n]].strip()
                cols[n].append(None if cell in null_set else float(cell))
            for n in text:
                cols[n].append(row[pos[n]])
    except (ValueError, IndexError, csv.Error):
        return None
    arrays = {n: pa.array(cols[n], type=pa.float64()) for n in numeric}
    arrays |= {n: pa.array(cols[n], type=pa.string()) for n in text}
    return pa.table({n: arrays[n] for n in names if n in arrays})


def _rows(src: Path, encoding: str, sep: str, first_line: int) -> Iterator[tuple[int, list[str]]]:
    with src.open("r", encoding=encoding, newline="") as fh:
        reader = csv.reader(fh, delimiter=sep)
        prev = 0
        for row in reader:
            start = prev + 1
            prev = reader.line_num
            if start < first_line or not row or (len(row) == 1 and not row[0].strip()):
                continue
            yield start, row


def diagnose(
    info: TextInfo,
    *,
    src: Path,
    names: Sequence[str],
    first_line: int,
    sep: str,
    numeric: Sequence[str],
    nulls: Sequence[str],
    lines: LineMap,
) -> None:
    """Walk the rows and raise `InputError` at the first one pyarrow could not take."""
    pos = {n: i for i, n in enumerate(names)}
    num_idx = [(pos[n], n) for n in numeric]
    null_set = set(nulls)
    try:
        for raw_line, row in _rows(src, info.encoding, sep, first_line):
            line = raw_line
            if lines.kept is not None and len(lines.kept):
                line = int(lines.kept[min(raw_line - first_line, len(lines.kept) - 1)])
            if len(row) != len(names):
                raise InputError(
                    f"the row has {len(row)} fields separated by {delimiter_name(sep)}, the "
                    f"header has {len(names)}",
                    file=info.path,
                    line=line,
                    hint="fix the row, or check --sep (a wrong separator splits rows unevenly)",
                )
            for i, name in num_idx:
                cell = row[i].strip()
                if cell in null_set or _NUMBER_RE.match(cell):
                    continue
                if _DECIMAL_COMMA_RE.match(cell):
                    hint = "decimal commas are not read: write 1.5, not 1,5"
                else:
                    hint = "fix the value or leave the cell empty (it is then a missing reading)"
                raise InputError(
                    f"text {cell[:40]!r} in the numeric column {name!r}",
                    file=info.path,
                    line=line,
                    column=name,
                    hint=hint,
                )
    except csv.Error as err:
        raise InputError(
            f"malformed row ({err})", file=info.path, hint="check quoting in the file"
        ) from err
    except UnicodeDecodeError as err:
        raise InputError(
            f"bytes that are not valid {info.encoding}",
            file=info.path,
            hint="pass --encoding latin-1 if that is what the file is",
        ) from err


def float_columns(table: pa.Table, names: Sequence[str]) -> list[np.ndarray]:
    """The named float64 columns as numpy arrays (NaN for nulls): rows of `float_block`."""
    return list(float_block(table, names))


def float_block(table: pa.Table, names: Sequence[str]) -> np.ndarray:
    """The named float64 columns as one C-contiguous (C, T) array (NaN for nulls), filled
    chunk by chunk (no per-column temporary)."""
    out = np.empty((len(names), table.num_rows), dtype=np.float64)  # (C, T)
    for i, n in enumerate(names):
        col = table.column(n)
        if col.null_count:
            col = col.fill_null(np.nan)
        pos = 0
        for chunk in col.chunks:
            k = len(chunk)
            out[i, pos : pos + k] = chunk.to_numpy(zero_copy_only=False)
            pos += k
    return out


def text_column(table: pa.Table, name: str) -> np.ndarray:
    return np.asarray(table.column(name).to_numpy(zero_copy_only=False), dtype=object)
