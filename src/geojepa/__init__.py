"""GeoJEPA: self-supervised representations of geotechnical monitoring data.

Importing the package is cheap and never imports torch, so the edge scorer
(`geojepa.edge`) runs where only numpy, pandas and onnxruntime are installed.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
