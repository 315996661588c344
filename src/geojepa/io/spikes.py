"""Flag isolated spikes in logger series as ``outlier`` (kept, never dropped).

A Hampel-style check: a reading whose distance to the centred rolling median of its
neighbours exceeds `k` robust standard deviations of all such distances is flagged. The
deviation is the larger of 1.4826 x their median and their 90th percentile / 1.645, and at
least the series' resolution (its smallest non-zero step), so a quantised, mostly flat
signal does not turn every step into an outlier.

Guarantees: only readings flagged ``ok`` can become ``outlier``; values are unchanged; the
number flagged per sensor is returned so a builder can report it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

import numpy as np
import pandas as pd

from geojepa.io.result import QUALITY_DTYPE, ReadResult, code_of, count_quality
from geojepa.site import Quality


def spike_mask(values: np.ndarray, *, window: int = 9, k: float = 8.0) -> np.ndarray:
    """(N,) bool: readings that are isolated spikes (see the module docstring)."""
    x = pd.Series(np.asarray(values, dtype=np.float64))
    finite = np.isfinite(x.to_numpy())
    if finite.sum() < window:
        return np.zeros(len(x), dtype=bool)
    med = x.rolling(window, center=True, min_periods=3).median().to_numpy()
    r = x.to_numpy() - med
    ok = np.isfinite(r)
    ar = np.abs(r[ok])
    # a robust scale of the residuals; on quantised, mostly flat signals the median is 0,
    # so the 90th percentile (1.645 sigma for Gaussian residuals) backs it up
    scale = (
        max(1.4826 * float(np.median(ar)), float(np.quantile(ar, 0.9)) / 1.645) if ok.any() else 0.0
    )
    steps = np.abs(np.diff(x.to_numpy()[finite]))
    steps = steps[steps > 0]
    floor = float(steps.min()) if len(steps) else 0.0
    scale = max(scale, floor)
    if scale == 0.0:
        return np.zeros(len(x), dtype=bool)
    return ok & (np.abs(np.where(ok, r, 0.0)) > k * scale)


def flag_spikes(
    result: ReadResult, sensor_ids: Iterable[str] | None = None, *, window: int = 9, k: float = 8.0
) -> tuple[ReadResult, dict[str, int]]:
    """`result` with spikes of `sensor_ids` (default: all) flagged; counts per sensor."""
    rd = result.readings
    q = rd["quality"].cat.codes.to_numpy().copy()
    ok_code, out_code = code_of(Quality.OK), code_of(Quality.OUTLIER)
    ids = rd["sensor_id"].astype("str").to_numpy()
    wanted = set(map(str, sensor_ids)) if sensor_ids is not None else set(ids)
    counts: dict[str, int] = {}
    vals = rd["value"].to_numpy(dtype=np.float64)
    for sid in sorted(wanted):
        sel = np.flatnonzero(ids == sid)
        if not len(sel):
            continue
        m = spike_mask(vals[sel], window=window, k=k) & (q[sel] == ok_code)
        q[sel[m]] = out_code
        counts[sid] = int(m.sum())
    new = rd.copy()
    new["quality"] = pd.Categorical.from_codes(q.astype(np.int8), dtype=QUALITY_DTYPE)
    return replace(result, readings=new, quality=count_quality(new)), counts
