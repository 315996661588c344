"""Markdown tables for the benchmark scripts (no extra dependency).

Guarantees: one header row, one row per frame row; floats formatted with `floatfmt`, NaN
written as an empty cell, everything else with ``str``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def md_table(df: pd.DataFrame, floatfmt: str = "{:.3g}") -> str:
    """`df` as a Markdown table."""
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, row in df.iterrows():
        cells = []
        for v in row.to_numpy():
            if isinstance(v, float | np.floating):
                cells.append("" if np.isnan(v) else floatfmt.format(v))
            else:
                cells.append(str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
