"""Hand-crafted window features: causal sliding windows, simple statistics and catch22.

The hand-crafted baseline the founding note asks the learned representations to beat.

Guarantees:

- `causal_windows` builds, for each window end ``e``, the window of rows ``e-W+1 .. e``:
  it uses no row after ``e``. Missing cells are filled from the last observation at or
  before them (or, before a sensor's first observation, with that first observation,
  which is still inside the window), and the window's observed fraction is returned
  beside it, so a filled gap is never mistaken for data. A window with no observation at
  all is marked invalid.
- Window ends are ``0, hop, 2*hop, ...``: a prefix of a series gives a prefix of its windows.
- `window_stats` and `catch22_features` map (K, W) windows to (K, F) features; a feature
  that is undefined for a window (catch22 on a constant series) is NaN, never invented.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "CATCH22_NAMES",
    "STAT_NAMES",
    "SensorWindows",
    "catch22_features",
    "causal_windows",
    "window_features",
    "window_stats",
]

STAT_NAMES: tuple[str, ...] = (
    "mean",
    "std",
    "min",
    "max",
    "slope",
    "last_minus_mean",
    "max_abs_diff",
    "observed_fraction",
)
"""Names of the simple statistics, in column order (the last is added by `window_features`)."""

CATCH22_NAMES: tuple[str, ...] = (
    "DN_HistogramMode_5",
    "DN_HistogramMode_10",
    "DN_OutlierInclude_p_001_mdrmd",
    "DN_OutlierInclude_n_001_mdrmd",
    "CO_FirstCrossing_acf_1e_pointOfCrossing",
    "CO_FirstMin_ac",
    "SP_Summaries_fft_area_5_1",
    "SP_Summaries_fft_wq_50",
    "FC_LocalSimple_mean3_stde",
    "FC_LocalSimple_mean1_taurat",
    "MD_pNN_pnn40",
    "SB_BinaryStats_mean_longstretch1",
    "SB_BinaryStats_diff_longstretch0",
    "SB_MotifThree_quantile_hh",
    "CO_HistogramAMI_even_5bin_ami2",
    "CO_trev_1_num",
    "IN_AutoMutualInfoStats_40_gaussian_fmmi",
    "SB_TransitionMatrix_quantile_3_ac_sumdiagcov",
    "PD_PeriodicityWang_th0_01",
    "CO_Embed2_Dist_tau_d_expfit_meandiff",
    "SC_FluctAnal_2_rsrangefit_50_1_logi_prop_r1",
    "SC_FluctAnal_2_dfa_50_1_2_logi_prop_r1",
)


@dataclass(frozen=True)
class SensorWindows:
    """Causal windows of one sensor. Shapes: ends (K,), data (K, W), valid (K,), observed (K,)."""

    ends: np.ndarray  # (K,) int64, last row of each window
    data: np.ndarray  # (K, W) float64, gaps filled from the past (see module docstring)
    valid: np.ndarray  # (K,) bool, the window holds at least one observation
    observed_fraction: np.ndarray  # (K,) float64


def causal_windows(
    values: np.ndarray, observed: np.ndarray, window: int, hop: int = 1
) -> SensorWindows:
    """Windows of length `window` ending at rows ``0, hop, 2*hop, ...`` of one sensor.

    values (T,), observed (T,) -> SensorWindows with K = ceil(T / hop) windows of width W.
    """
    if window < 1 or hop < 1:
        raise ValueError(f"window and hop must be >= 1, got {window}, {hop}")
    x = np.where(observed, values, np.nan).astype(np.float64)
    t = x.shape[0]
    ends = np.arange(0, t, hop, dtype=np.int64)
    if t == 0 or not observed.any():
        return SensorWindows(
            ends=ends,
            data=np.full((ends.size, window), np.nan),
            valid=np.zeros(ends.size, dtype=bool),
            observed_fraction=np.zeros(ends.size),
        )
    first = float(x[np.flatnonzero(observed)[0]])
    filled = pd.Series(x).ffill().fillna(first).to_numpy()  # causal fill, see docstring
    padded = np.concatenate([np.full(window - 1, first), filled])  # (T + W - 1,)
    view = np.lib.stride_tricks.sliding_window_view(padded, window)  # (T, W), row e ends at e
    data = np.ascontiguousarray(view[ends])  # (K, W)
    obs = np.concatenate([np.zeros(window - 1, dtype=np.int64), observed.astype(np.int64)])
    csum = np.concatenate([[0], np.cumsum(obs)])
    counts = csum[ends + window] - csum[ends]  # observations in rows e-W+1..e
    return SensorWindows(
        ends=ends,
        data=data,
        valid=counts > 0,
        observed_fraction=counts / float(window),
    )


def window_stats(windows: np.ndarray) -> np.ndarray:
    """Simple statistics of each window: (K, W) -> (K, 7), columns `STAT_NAMES[:-1]`."""
    k, w = windows.shape
    if k == 0:
        return np.zeros((0, len(STAT_NAMES) - 1))
    mean = windows.mean(axis=1)
    std = windows.std(axis=1)
    lo = windows.min(axis=1)
    hi = windows.max(axis=1)
    tt = np.arange(w, dtype=np.float64) - (w - 1) / 2.0
    denom = float((tt**2).sum()) or 1.0
    slope = (windows - mean[:, None]) @ tt / denom
    last = windows[:, -1] - mean
    jump = np.abs(np.diff(windows, axis=1)).max(axis=1) if w > 1 else np.zeros(k)
    return np.stack([mean, std, lo, hi, slope, last, jump], axis=1)


def catch22_features(windows: np.ndarray) -> np.ndarray:
    """catch22 features of each window (pycatch22): (K, W) -> (K, 22), NaN where undefined."""
    import pycatch22

    out = np.full((windows.shape[0], len(CATCH22_NAMES)), np.nan)
    for i, row in enumerate(windows):
        res = pycatch22.catch22_all(row.tolist())
        vals = np.asarray(res["values"], dtype=np.float64)
        if vals.shape[0] == out.shape[1]:
            out[i] = vals
    out[~np.isfinite(out)] = np.nan
    return out


def window_features(win: SensorWindows, catch22: bool = True) -> np.ndarray:
    """Feature matrix of one sensor's windows: (K, W) -> (K, F).

    F = 8 simple statistics (`STAT_NAMES`, observed fraction last) + 22 catch22 features when
    `catch22` is true. Invalid windows (nothing observed) get an all-NaN row.
    """
    parts = [window_stats(win.data), win.observed_fraction[:, None]]
    if catch22:
        c22 = np.full((win.data.shape[0], len(CATCH22_NAMES)), np.nan)
        c22[win.valid] = catch22_features(win.data[win.valid])
        parts.append(c22)
    feats = np.concatenate(parts, axis=1)  # (K, F)
    feats[~win.valid] = np.nan
    return feats
