"""Readers of logger files and their ingestion into a site folder.

Public API:

- `read_file(path, fmt="auto", **opts) -> ReadResult`: one file in the site's long schema
  (wide CSV, long CSV, Campbell TOA5, headerless tab files with a column map, PBO GNSS);
- `ingest(paths, site_dir, **opts) -> IngestReport`: read files and merge them into a site
  (re-ingest adds nothing, conflicts reported never overwritten, failed ingest leaves the
  folder byte-identical);
- `ColumnMap`, `load_column_map`: what each column of a headerless file holds;
- `geojepa.io.vibrating_wire`: frequency/digits to pressure from calibration data.

Guarantees: importing this package never imports torch; every reader returns a valid
`ReadResult` or raises `InputError` (exit status 2 on the command line).
"""

from __future__ import annotations

from geojepa.io.ingest import FileReport, IngestReport, ingest
from geojepa.io.reader import FORMATS, detect_format, read_file
from geojepa.io.result import ReadResult
from geojepa.io.tabbed import ColumnMap, ColumnSpec, load_column_map

__all__ = [
    "FORMATS",
    "ColumnMap",
    "ColumnSpec",
    "FileReport",
    "IngestReport",
    "ReadResult",
    "detect_format",
    "ingest",
    "load_column_map",
    "read_file",
]
