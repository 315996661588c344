"""Bad-input messages in the gateway's terms.

``geojepa-edge score`` reads files with the reader behind ``geojepa ingest``
(`geojepa.io.read_file`), whose messages advise ingest's options (``--time-format``,
``--encoding``, ``--column-map``) and speak of ingesting. `for_edge` rewrites an
`InputError`'s advice so that it names only what a gateway user can do: fix the file,
or an option that ``geojepa-edge`` has (`EDGE_OPTIONS`).

Guarantees: the file, line, column and the statement of what is wrong are kept as they
were; only advice that names an option ``geojepa-edge`` lacks, or the ingest command, is
replaced (an error whose advice applies is returned as it is); numpy, pandas and torch
are not imported.
"""

from __future__ import annotations

import re

from geojepa.errors import InputError

__all__ = ["EDGE_OPTIONS", "edge_hint", "for_edge"]

EDGE_OPTIONS: frozenset[str] = frozenset(
    {
        "--format",
        "--sep",
        "--time-col",
        "--tz",
        "--int8",
        "--fp32",
        "--threads",
        "--out",
        "--poll",
        "--idle-timeout",
        "--once",
        "--max-ahead",
    }
)
"""Every option of ``geojepa-edge score`` and ``watch`` (`geojepa.edge.app`); a test
holds the two lists equal."""

# what to do instead of an option the gateway lacks
_INSTEAD: dict[str, str] = {
    "--time-format": "write the times as ISO 8601 like 2024-03-31T14:15:00 or "
    "2024-03-31 14:15:00+01:00",
    "--encoding": "save the file as UTF-8",
    "--column-map": "give the file a header row (a time column, then one column per sensor) "
    "or write it as the long table timestamp,sensor_id,value",
}
_OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
_INGEST = re.compile(r"\bingest(?:ed|ing|s)?\b", re.IGNORECASE)


def _foreign(text: str) -> list[str]:
    """Options named in `text` that geojepa-edge does not have ("ingest" for the command)."""
    out = [o for o in _OPTION.findall(text) if o not in EDGE_OPTIONS]
    if _INGEST.search(text):
        out.append("ingest")
    return out


def edge_hint(hint: str | None, *, line: int | None = None) -> str | None:
    """`hint` without the advice that does not apply to geojepa-edge (None stays None).

    "nothing to ingest" becomes "nothing to score"; of alternatives (", or "), those naming
    an option the gateway lacks, or the ingest command, are left out; when none is left,
    what to do instead (`_INSTEAD`), else to fix the file (at `line` when known)."""
    if hint is None:
        return None
    text = re.sub(r"nothing to ingest", "nothing to score", hint)
    if not _foreign(text):
        return text
    parts = text.split(", or ")
    kept = [p for p in parts if not _foreign(p)]
    if kept:
        return ", or ".join(kept)
    instead = [_INSTEAD[o] for o in dict.fromkeys(_foreign(text)) if o in _INSTEAD]
    if instead:
        return "; ".join(instead)
    return f"fix line {line} of the file" if line is not None else "fix the file"


def for_edge(err: InputError) -> InputError:
    """`err` with its advice in geojepa-edge's terms (`edge_hint`); `err` itself when
    nothing needed rewriting. File, line, column and message are kept."""
    message = re.sub(r"nothing to ingest", "nothing to score", err.message)
    hint = edge_hint(err.hint, line=err.line)
    if hint == err.hint and message == err.message:
        return err
    out = type(err)(message, file=err.file, line=err.line, column=err.column, hint=hint)
    out.__cause__ = err.__cause__
    return out
