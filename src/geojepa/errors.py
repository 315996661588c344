"""Errors that reach the user.

Guarantees: an `InputError` always names the file, and where known the line and
column, says what is wrong and what to do about it. The command line turns it
into exit status 2 with one message and no traceback; any other exception is an
internal error (exit status 1).
"""

from __future__ import annotations

from pathlib import Path


class GeoJEPAError(Exception):
    """Base of every error GeoJEPA raises on purpose."""


class InputError(GeoJEPAError):
    """Bad input from the user: a file, an option or a value that cannot be used.

    Rendered as ``FILE:LINE:COLUMN: what is wrong. What to do.``
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        column: int | str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.file = None if file is None else str(file)
        self.line = line
        self.column = column
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        where = ""
        if self.file is not None:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            elif self.column is not None:
                where += f": column {self.column}"
            where += ": "
        text = where + self.message.rstrip(".") + "."
        if self.hint:
            text += " " + self.hint.rstrip(".") + "."
        return text


class UsageError(InputError):
    """A command-line option or argument that cannot be used (exit status 2)."""


class CollapseError(GeoJEPAError):
    """Training stopped because the representations collapsed."""
