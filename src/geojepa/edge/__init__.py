"""The edge scorer: anomaly scores and alarms on a gateway, from an exported model.

``geojepa-edge score DIR FILE [--out scores.csv]`` and ``geojepa-edge watch DIR FILE``
(also ``python -m geojepa.edge``). DIR is what ``geojepa export`` wrote.

Guarantees: this package never imports torch, directly or through another module; it
needs only numpy, pandas and onnxruntime (the command line uses argparse, not typer).
Exit status as for ``geojepa``: 0 success, 2 bad input or usage, 1 internal error.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``geojepa-edge`` (exits with the command's status)."""
    from geojepa.edge.app import run

    raise SystemExit(run(argv))
