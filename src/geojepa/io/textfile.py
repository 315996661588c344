"""Pre-flight checks on a text logger file, before any parser sees it.

`inspect_text` reads the file once, in fixed-size blocks, and answers: which encoding to
decode it with, how many lines it has, and what its first lines say. It raises `InputError`
(naming the file, and the line and column where known) for every file no parser should try:
missing or unreadable, a folder, empty or blank, binary (NUL bytes), bytes that are not valid
in the encoding, and a line longer than `max_line_bytes`.

Guarantees:

- memory stays bounded by the block size (1 MiB) plus `max_line_bytes`, whatever the file size;
- bytes that are not UTF-8 are accepted only in the first `header_lines` lines (names and units,
  e.g. a Latin-1 degree sign): the whole file is then read as Latin-1 and a warning says so;
  anywhere else they are an error unless an encoding is given;
- `sniff_delimiter` either returns a separator under which the sampled lines agree on a field
  count of at least two, or raises `InputError` saying what it tried and what to pass;
- a given separator (`normalise_sep`) is one character (``tab`` and ``\\t`` name a tab); any
  other (``;;``, empty, a quote) is a `UsageError` naming ``--sep``.
"""

from __future__ import annotations

import csv
import io
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geojepa.errors import InputError, UsageError

log = logging.getLogger(__name__)

BLOCK_BYTES = 1 << 20
MAX_LINE_BYTES = 1 << 20
HEAD_LINES = 64
DELIMITERS: tuple[str, ...] = (",", ";", "\t", "|")
_DELIM_NAMES = {",": "','", ";": "';'", "\t": "tab", "|": "'|'", " ": "space"}


@dataclass(frozen=True)
class TextInfo:
    """What `inspect_text` learnt about a file."""

    path: Path
    encoding: str  # codec to decode the whole file with ("utf-8-sig" or "latin-1")
    size: int  # bytes
    n_lines: int  # lines, counting a last line without a line end
    head: tuple[str, ...]  # the first lines, decoded, without line ends
    warnings: tuple[str, ...] = ()
    max_line: int = 0  # bytes in the longest line (line end excluded)


def delimiter_name(sep: str) -> str:
    return _DELIM_NAMES.get(sep, repr(sep))


def inspect_text(
    path: str | Path,
    *,
    encoding: str | None = None,
    header_lines: int = 4,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> TextInfo:
    """Check that `path` is a readable text file and say how to decode it.

    `encoding` None means UTF-8 (with or without a byte-order mark), falling back to Latin-1
    only when the non-UTF-8 bytes all lie in the first `header_lines` lines.
    """
    p = Path(path)
    if not p.exists():
        raise InputError("no such file", file=p, hint="check the path")
    if p.is_dir():
        raise InputError("is a folder, not a file", file=p, hint="name the logger files inside it")
    try:
        size = p.stat().st_size
        fh = p.open("rb")
    except OSError as err:
        raise InputError(f"cannot open the file ({err.strerror})", file=p) from err
    if size == 0:
        fh.close()
        raise InputError("the file is empty", file=p, hint="check the export; nothing to ingest")
    codec = encoding or "utf-8"
    if encoding is not None:
        try:
            "".encode(encoding)
        except LookupError as err:
            fh.close()
            raise InputError(
                f"unknown encoding {encoding!r}", hint="use e.g. utf-8 or latin-1"
            ) from err
    warnings: list[str] = []
    head_bytes: list[bytes] = []
    lines_before = 0  # complete lines before the current block
    line_start_offset = 0  # file offset where the current (unfinished) line starts
    offset = 0  # file offset of the current block
    carry = b""  # undecoded tail of the previous block (an unfinished line)
    any_text = False
    longest = 0
    with fh:
        while True:
            block = fh.read(BLOCK_BYTES)
            if not block:
                break
            nul = block.find(b"\x00")
            if nul >= 0:
                line = lines_before + block.count(b"\n", 0, nul) + 1
                raise InputError(
                    "binary data (NUL bytes): this is not a text logger file",
                    file=p,
                    line=line,
                    hint="export the data as CSV or TOA5 text",
                )
            arr = np.frombuffer(block, dtype=np.uint8)
            nl = np.flatnonzero(arr == 10)
            starts = (
                np.concatenate(([line_start_offset - offset], nl[:-1] + 1)) if len(nl) else None
            )
            if starts is not None:
                lengths = nl - starts
                k = int(np.argmax(lengths))
                longest = max(longest, int(lengths[k]))
                if lengths[k] > max_line_bytes:
                    raise InputError(
                        f"line is {_mb(int(lengths[k]))} long (limit {_mb(max_line_bytes)})",
                        file=p,
                        line=lines_before + k + 1,
                        hint="the file is not line-based text, or its records lost their line ends",
                    )
                line_start_offset = offset + int(nl[-1]) + 1
            tail_len = offset + len(block) - line_start_offset
            if tail_len > max_line_bytes:
                raise InputError(
                    f"line is longer than {_mb(max_line_bytes)}",
                    file=p,
                    line=lines_before + len(nl) + 1,
                    hint="the file is not line-based text, or its records lost their line ends",
                )
            # decode complete lines only, so a multi-byte character is never cut in two
            if len(nl):
                cut = int(nl[-1]) + 1
                piece = carry + block[:cut]
                carry = block[cut:]
            else:
                piece = b""
                carry = carry + block
            if piece:
                codec = _decode_piece(
                    p,
                    piece,
                    codec,
                    first_line=lines_before + 1,
                    explicit=encoding is not None,
                    header_lines=header_lines,
                    warnings=warnings,
                )
                if len(head_bytes) < HEAD_LINES:
                    head_bytes.extend(piece[:-1].split(b"\n")[: HEAD_LINES - len(head_bytes)])
                if not any_text and piece.strip():
                    any_text = True
            lines_before += len(nl)
            offset += len(block)
        if carry:
            codec = _decode_piece(
                p,
                carry,
                codec,
                first_line=lines_before + 1,
                explicit=encoding is not None,
                header_lines=header_lines,
                warnings=warnings,
            )
            if len(head_bytes) < HEAD_LINES:
                head_bytes.append(carry)
            if carry.strip():
                any_text = True
    n_lines = lines_before + (1 if carry else 0)
    longest = max(longest, len(carry))
    if not any_text:
        raise InputError("the file holds only blank lines", file=p, hint="nothing to ingest")
    if codec == "utf-8":
        codec = "utf-8-sig"
    head = tuple(b.decode(codec, errors="replace").rstrip("\r") for b in head_bytes)
    return TextInfo(
        path=p,
        encoding=codec,
        size=size,
        n_lines=n_lines,
        head=head,
        warnings=tuple(warnings),
        max_line=longest,
    )


def _decode_piece(
    p: Path,
    piece: bytes,
    codec: str,
    *,
    first_line: int,
    explicit: bool,
    header_lines: int,
    warnings: list[str],
) -> str:
    """Check that `piece` (whole lines) decodes; return the codec to read the file with.

    Without an explicit encoding, lines after the header must be UTF-8 even once the header
    made the file be read as Latin-1 (Latin-1 decodes anything, so it checks nothing).
    """
    check = codec if explicit else "utf-8"
    if check == "utf-8" and piece.isascii():
        return codec
    start = 0
    while True:
        try:
            piece[start:].decode(check)
            return codec
        except UnicodeDecodeError as err:
            pos = start + err.start
            line = first_line + piece.count(b"\n", 0, pos)
            col = pos - (piece.rfind(b"\n", 0, pos) + 1) + 1
            bad = piece[pos : pos + 1]
            if not explicit and line <= header_lines:
                if codec != "latin-1":
                    warnings.append(
                        f"{p}:{line}:{col}: the header is not UTF-8 (byte {bad!r}); "
                        "read the file as Latin-1"
                    )
                codec = "latin-1"
                nxt = piece.find(b"\n", pos)
                if nxt < 0:
                    return codec
                start = nxt + 1
                continue
            raise InputError(
                f"bytes that are not valid {check} ({bad!r})",
                file=p,
                line=line,
                column=col,
                hint="save the file as UTF-8, or pass --encoding latin-1 if that is what it is",
            ) from err


def _mb(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB" if n >= (1 << 20) else f"{n / 1024:.0f} KiB"


def normalise_sep(sep: str | None) -> str | None:
    """The separator `sep` names (``tab``/``\\t`` -> a tab), or None; `UsageError` unless it is
    one character that can separate CSV fields (not a quote or a line end)."""
    if sep is None:
        return None
    if sep in ("\\t", "tab", "TAB"):
        return "\t"
    if len(sep) != 1 or sep in ('"', "\n", "\r"):
        raise UsageError(
            f"--sep {sep!r}: the column separator must be one character"
            + (" other than a quote or a line end" if len(sep) == 1 else ""),
            hint="e.g. --sep ';' or --sep tab, or leave --sep out to have it detected",
        )
    return sep


def split_line(line: str, sep: str) -> list[str]:
    """Split one line like a CSV reader would (quotes respected)."""
    if sep == " ":
        return line.split()
    try:
        return next(csv.reader(io.StringIO(line), delimiter=sep), [])
    except csv.Error:  # e.g. a bare carriage return inside the line: split plainly
        return line.split(sep)


def sniff_delimiter(
    path: Path,
    lines: Sequence[str],
    *,
    sep: str | None = None,
    first_line: int = 1,
    candidates: Sequence[str] = DELIMITERS,
) -> str:
    """The column separator of `lines` (header first), checked or guessed.

    With `sep` given, checks that the header splits into at least two fields and says which
    separator the file seems to use when it does not.
    """
    sample = [ln for ln in lines[:30] if ln.strip()]
    if not sample:
        raise InputError("no header line", file=path, line=first_line, hint="nothing to ingest")
    sep = normalise_sep(sep)
    if sep is not None:
        n = len(split_line(sample[0], sep))
        if n < 2:
            guess = _guess(sample, candidates)
            hint = f"pass --sep {delimiter_name(guess)}" if guess else "check --sep"
            raise InputError(
                f"the header has one field with separator {delimiter_name(sep)}"
                + (f"; the file seems to use {delimiter_name(guess)}" if guess else ""),
                file=path,
                line=first_line,
                hint=hint,
            )
        return sep
    guess = _guess(sample, candidates)
    if guess is None:
        counts = {delimiter_name(c): len(split_line(sample[0], c)) for c in candidates}
        raise InputError(
            "cannot tell the column separator: no separator splits the header and the first "
            f"rows into the same number (>= 2) of fields (header fields: {counts})",
            file=path,
            line=first_line,
            hint="pass --sep, e.g. --sep ';'",
        )
    return guess


def _guess(sample: Sequence[str], candidates: Sequence[str]) -> str | None:
    best: tuple[int, int, str] | None = None
    for c in candidates:
        counts = [len(split_line(s, c)) for s in sample]
        if counts[0] < 2:
            continue
        agree = Counter(counts).most_common(1)[0]
        n_same = sum(1 for x in counts if x == counts[0])
        score = (n_same, counts[0])
        if agree[0] != counts[0] and n_same < len(counts) // 2 + 1:
            continue
        if best is None or score > best[:2]:
            best = (score[0], score[1], c)
    return None if best is None else best[2]
