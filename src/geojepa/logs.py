"""Logging set-up for the command line: one place decides format and level.

Guarantees: library modules only call ``logging.getLogger(__name__)``; this module is the
only one that attaches handlers, and only when a command-line entry point asks.
"""

from __future__ import annotations

import logging
import sys


def configure(verbose: int = 0, quiet: bool = False) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 0 else logging.INFO)
    root = logging.getLogger("geojepa")
    root.setLevel(level)
    ours = [h for h in root.handlers if getattr(h, "_geojepa", False)]
    if not ours:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._geojepa = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    for h in ours:  # a second command in one process writes to today's stderr, not the first's
        if isinstance(h, logging.StreamHandler) and h.stream is not sys.stderr:
            h.setStream(sys.stderr)
    root.propagate = False
    # the ONNX exporter warns once per graph that optional torchvision operators are not
    # registered; GeoJEPA's graphs use none of them, so the lines are noise at the console
    if not verbose:
        logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
