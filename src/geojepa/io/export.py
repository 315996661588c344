"""Write a site's long table as CSV: ``timestamp,sensor_id,value,quality,source``.

Guarantees: timestamps are ISO 8601 in UTC with a ``Z`` (``2024-03-31T14:15:00Z``; fractions
of a second only when the data has them); a NaN value is an empty cell (read back as a
missing reading); rows keep the site's order (sensor, time); the file appears whole or not
at all (written beside the target and renamed); the output reads back with
`geojepa.io.read_file` to the same readings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from geojepa.atomic import atomic_path
from geojepa.site import Site


def write_readings_csv(site: Site, out: str | Path) -> int:
    """Write `site`'s readings to `out` (see the module docstring); return the row count."""
    r = site.readings
    t_ns = r["timestamp"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    if (t_ns % 1_000_000_000 == 0).all():
        unit, fmt = "s", "%Y-%m-%dT%H:%M:%SZ"
    elif (t_ns % 1_000_000 == 0).all():
        unit, fmt = "ms", "%Y-%m-%dT%H:%M:%SZ"
    else:
        unit, fmt = "ns", "%Y-%m-%dT%H:%M:%SZ"
    div = {"s": 1_000_000_000, "ms": 1_000_000, "ns": 1}[unit]
    ts = pa.array(t_ns // div, type=pa.timestamp(unit))
    text_ts = pc.strftime(ts, format=fmt)
    value = pa.array(r["value"].to_numpy(dtype=np.float64), type=pa.float64())
    value = pc.if_else(pc.is_nan(value), pa.scalar(None, pa.float64()), value)
    table = pa.table(
        {
            "timestamp": text_ts,
            "sensor_id": _text(r["sensor_id"]),
            "value": value,
            "quality": _text(r["quality"]),
            "source": _text(r["source"]),
        }
    )
    with atomic_path(out) as tmp:
        try:  # plain cells; quotes only if some text holds a separator or a quote
            pacsv.write_csv(
                table,
                tmp,
                write_options=pacsv.WriteOptions(
                    quoting_style="none", quoting_header="none", batch_size=1 << 16
                ),
            )
        except pa.ArrowInvalid:
            pacsv.write_csv(
                table,
                tmp,
                write_options=pacsv.WriteOptions(
                    quoting_style="needed", quoting_header="none", batch_size=1 << 16
                ),
            )
    return table.num_rows


def _text(s: pd.Series) -> pa.Array:
    if isinstance(s.dtype, pd.CategoricalDtype):
        codes = s.cat.codes.to_numpy()
        cats = pa.array([str(c) for c in s.cat.categories], type=pa.string())
        return pc.take(cats, pa.array(codes))
    return pa.array(s.astype("str").to_numpy(dtype=object), type=pa.string())
