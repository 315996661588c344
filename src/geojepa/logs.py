"""Logging set-up for the command line: one place decides format and level.

Guarantees: library modules only call ``logging.getLogger(__name__)``; this module is the
only one that attaches handlers, and only when a command-line entry point asks.
"""

from __future__ import annotations

import logging
import sys


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted: a second command run
    in one process (tests, notebooks) logs to today's stderr, not to the first one's."""

    @property
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:  # the base class assigns it once
        pass


def configure(verbose: int = 0, quiet: bool = False) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 0 else logging.INFO)
    root = logging.getLogger("geojepa")
    root.setLevel(level)
    if not any(getattr(h, "_geojepa", False) for h in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._geojepa = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.propagate = False
    # the ONNX exporter warns once per graph that optional torchvision operators are not
    # registered; GeoJEPA's graphs use none of them, so the lines are noise at the console
    if not verbose:
        logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
