"""A head fitted elsewhere, corrected on a few local labels: the transferred forecaster.

`CorrectedHead` wraps a **fitted** source head (`RidgeHead` or `MLPHead`, trained on other
sites' samples) and fits, per horizon, a ridge on the local labels' residual
``y - source.predict(x)``. The correction is kept only where it earns its place: its
out-of-sample squared error on the local labels (out-of-group with >= 2 groups, else exact
leave-one-out) must be below the uncorrected source head's on the same labels (which has
no parameters fitted to them, so its in-sample error is out-of-sample) by more than one
standard error of the per-sample difference. With a handful of labels the forecast
therefore stays the source head's unless they disagree with it clearly; with many, the
local data move it.

Contract (scikit-learn's, as the other heads): ``fit(x, y, groups=None) -> self`` with x
(N, F), y (N, K) (NaN where a horizon has no target); ``predict(x) -> (M, K)``. Fitted
attributes: ``corrections_`` (K,) the ridge fits or None, ``corrected_`` (K,) bool,
``range_`` (K, 2) the union of the source head's and the local labels' target ranges
(predictions are clipped to it). The source head is never refitted or modified.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

import numpy as np

from geojepa.forecast.heads import MLPHead, RidgeHead, _check, fit_ridge_penalised
from geojepa.forecast.lagged import DEFAULT_ALPHAS, RidgeFit


class CorrectedHead:
    """``source`` (a fitted head) plus a ridge correction fitted on local labels."""

    def __init__(
        self,
        source: RidgeHead | MLPHead,
        alphas: Sequence[float] = DEFAULT_ALPHAS,
        min_samples: int = 3,
        folds: int = 5,
    ) -> None:
        if not hasattr(source, "range_"):
            raise ValueError("the source head must be fitted before it is corrected")
        self.source = source
        self.alphas = alphas
        self.min_samples = min_samples
        self.folds = folds

    def fit(self, x: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> Self:
        """x (N, F), y (N, K) local labels; groups (N,) int (e.g. sensors) for the
        out-of-group error when there are at least 2."""
        x, y = _check(x, y)
        base = self.source.predict(x)  # (N, K)
        k = y.shape[1]
        if base.shape[1] != k:
            raise ValueError(f"the source head predicts {base.shape[1]} horizons, y has {k}")
        self.corrections_: list[RidgeFit | None] = []
        self.corrected_ = np.zeros(k, dtype=bool)
        lo = np.array(self.source.range_, dtype=np.float64)  # (K, 2)
        for j in range(k):
            ok = np.isfinite(y[:, j]) & np.isfinite(base[:, j])
            v = y[np.isfinite(y[:, j]), j]
            if v.size:
                lo[j, 0] = min(lo[j, 0], float(v.min()))
                lo[j, 1] = max(lo[j, 1], float(v.max()))
            fit = None
            if int(ok.sum()) >= self.min_samples:
                r = y[ok, j] - base[ok, j]  # (n,) the source head's residuals
                g = None if groups is None else np.asarray(groups)[ok]
                cand = fit_ridge_penalised(x[ok], r, g, self.alphas, self.folds)
                if _earns_its_place(r, cand.loo_residuals):
                    fit = cand
            self.corrections_.append(fit)
            self.corrected_[j] = fit is not None
        self.range_ = lo
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        out = self.source.predict(x)  # (M, K), NaN where the source has no model
        for j, fit in enumerate(self.corrections_):
            if fit is not None:
                out[:, j] = out[:, j] + fit.predict(x)
        return np.clip(out, self.range_[:, 0], self.range_[:, 1])


def _earns_its_place(resid: np.ndarray, held_out: np.ndarray) -> bool:
    """Whether a correction's held-out residuals beat the uncorrected ones (`resid`) by
    more than one standard error of the per-sample gain (the one-standard-error rule: the
    correction's penalty was chosen as the best of many on these same few labels, so its
    held-out error is optimistic; a gain inside its own noise is not taken)."""
    if held_out.shape != resid.shape or resid.size < 2:
        return False
    gain = resid**2 - held_out**2  # (n,) > 0 where the correction helped
    return bool(gain.mean() > gain.std(ddof=1) / np.sqrt(gain.size))


__all__ = ["CorrectedHead"]
