"""Logging set-up for the command line: one place decides format and level.

Guarantees: library modules only call ``logging.getLogger(__name__)``; this module is the
only one that attaches handlers, and only when a command-line entry point asks.
"""

from __future__ import annotations

import logging


def configure(verbose: int = 0, quiet: bool = False) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 0 else logging.INFO)
    root = logging.getLogger("geojepa")
    root.setLevel(level)
    if not any(getattr(h, "_geojepa", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._geojepa = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.propagate = False
    # the ONNX exporter warns once per graph that optional torchvision operators are not
    # registered; GeoJEPA's graphs use none of them, so the lines are noise at the console
    if not verbose:
        logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
