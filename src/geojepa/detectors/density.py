"""Density scores on any feature or embedding matrix (N, D): kNN distance, Mahalanobis, IsolationForest.

Used on hand-crafted window features and raw windows here, and on JEPA embeddings later:
anything that can be written as one row per window.

Guarantees: ``fit(X_train) -> self`` learns from the rows it is given only; ``score(X)``
returns (N,) with higher = more anomalous (less dense). Columns are standardised with the
training mean and spread (a constant column is left unscaled). A query row identical to a
training row (to float noise: `match_tolerance`) is scored as if that training row were
left out: by kNN without the row itself, by the Mahalanobis distance and IsolationForest
with a model fitted without the row's contiguous block of training rows (`folds` blocks,
in the rows' order). Training rows and new rows are thus scored alike (no in-sample
optimism in a training scale or in thresholds calibrated on training scores); a row that
matches no training row is scored by the model fitted on all of them. Input with NaN or
infinite values is refused with a ValueError naming the first bad row.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
from sklearn.base import BaseEstimator

__all__ = ["DENSITY_METHODS", "EmbeddingDensity", "match_tolerance"]

DENSITY_METHODS: tuple[str, ...] = ("knn", "mahalanobis", "iforest")


def _check_matrix(x: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array (N, D), got shape {arr.shape}")
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        raise ValueError(
            f"{what} has NaN or infinite values in {int(bad.sum())} rows "
            f"(first: row {int(np.flatnonzero(bad)[0])}); fill or drop them first"
        )
    return arr


def match_tolerance(z: np.ndarray, chunk: int = 1024) -> float:
    """Distance (in the standardised rows' units) under which a row counts as identical to
    a training row: 1e-3 of the median distance from a training row (N, D) to its nearest
    other one (rows a float recomputation moves by far less than that; distinct windows lie
    much farther apart), and at least 1e-6 of the rows' largest norm (+1)."""
    sq = (z**2).sum(axis=1)  # (N,)
    floor = 1e-6 * (1.0 + float(np.sqrt(sq.max()))) if z.shape[0] else 1e-6
    if z.shape[0] < 2:
        return floor
    nearest = np.empty(z.shape[0])
    for i in range(0, z.shape[0], chunk):
        q = z[i : i + chunk]  # (B, D)
        d2 = sq[i : i + chunk, None] + sq[None, :] - 2.0 * (q @ z.T)  # (B, N)
        d2[np.arange(q.shape[0]), np.arange(i, i + q.shape[0])] = np.inf  # not itself
        nearest[i : i + chunk] = np.sqrt(np.maximum(d2.min(axis=1), 0.0))
    finite = nearest[np.isfinite(nearest) & (nearest > 0)]
    return max(floor, 1e-3 * float(np.median(finite))) if finite.size else floor


class EmbeddingDensity(BaseEstimator):
    """Anomaly score of rows of an (N, D) matrix from the density of training rows.

    method: ``knn`` (mean distance to the `n_neighbors` nearest training rows),
    ``mahalanobis`` (distance under a Ledoit-Wolf shrunk covariance) or ``iforest``
    (IsolationForest path length, negated). `folds`: contiguous blocks of training rows
    for the out-of-sample scores of training rows (``mahalanobis`` and ``iforest``; below
    2, training rows are scored in sample).
    """

    def __init__(
        self,
        method: str = "knn",
        n_neighbors: int = 5,
        n_estimators: int = 100,
        max_train: int | None = 5000,
        seed: int = 0,
        folds: int = 5,
    ) -> None:
        self.method = method
        self.n_neighbors = n_neighbors
        self.n_estimators = n_estimators
        self.max_train = max_train
        self.seed = seed
        self.folds = folds

    def fit(self, x: np.ndarray) -> Self:
        """Learn the training density from x (N, D)."""
        if self.method not in DENSITY_METHODS:
            raise ValueError(f"method must be one of {DENSITY_METHODS}, got {self.method!r}")
        arr = _check_matrix(x, "training matrix")
        if arr.shape[0] < 2:
            raise ValueError(f"need at least 2 training rows, got {arr.shape[0]}")
        rng = np.random.default_rng(self.seed)
        if self.max_train is not None and arr.shape[0] > self.max_train:
            keep = np.sort(rng.choice(arr.shape[0], size=self.max_train, replace=False))
            arr = arr[keep]
        self.mean_ = arr.mean(axis=0)
        std = arr.std(axis=0)
        self.std_ = np.where(std > 1e-12, std, 1.0)
        z = (arr - self.mean_) / self.std_  # (N, D)
        self.n_features_in_ = arr.shape[1]
        if self.method == "knn":
            self.model_ = z  # the standardised training rows (N, D)
            self.sq_norms_ = (z**2).sum(axis=1)  # (N,)
            return self
        self.model_ = self._fit_model(z, rng)
        self.train_rows_ = z  # (N, D) standardised
        self.held_out_ = self._held_out(z, rng)  # (N,) or None
        self.tolerance_ = match_tolerance(z) if self.held_out_ is not None else 0.0
        return self

    def _fit_model(self, z: np.ndarray, rng: np.random.Generator) -> Any:
        """The Mahalanobis or IsolationForest model of standardised rows z (N, D)."""
        if self.method == "mahalanobis":
            from sklearn.covariance import LedoitWolf

            return LedoitWolf().fit(z)
        from sklearn.ensemble import IsolationForest

        return IsolationForest(
            n_estimators=self.n_estimators,
            random_state=int(rng.integers(0, 2**31 - 1)),
        ).fit(z)

    def _model_score(self, model: Any, z: np.ndarray) -> np.ndarray:
        """(N,) scores of standardised rows z (N, D) under `model`."""
        if self.method == "mahalanobis":
            return np.sqrt(np.maximum(model.mahalanobis(z), 0.0))
        return np.asarray(-model.score_samples(z), dtype=np.float64)

    def _held_out(self, z: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
        """(N,) each training row's score under a model fitted without its contiguous block
        of rows; None when fewer than 2 folds or too few rows to leave a block out."""
        n = z.shape[0]
        folds = min(int(self.folds), n)
        if folds < 2 or n - -(-n // folds) < 2:
            return None
        held = np.empty(n)
        for block in np.array_split(np.arange(n), folds):  # contiguous, in row order
            rest = np.setdiff1d(np.arange(n), block)
            held[block] = self._model_score(self._fit_model(z[rest], rng), z[block])
        return held

    def score(self, x: np.ndarray) -> np.ndarray:
        """Anomaly score of each row: x (N, D) -> (N,), higher = more anomalous."""
        if not hasattr(self, "model_"):
            raise RuntimeError("EmbeddingDensity is not fitted: call fit first")
        arr = _check_matrix(x, "matrix to score")
        if arr.shape[1] != self.n_features_in_:
            raise ValueError(f"expected {self.n_features_in_} columns, got {arr.shape[1]}")
        if arr.shape[0] == 0:
            return np.zeros(0)
        z = (arr - self.mean_) / self.std_
        if self.method == "knn":
            return self._knn(z)
        out = self._model_score(self.model_, z)  # (N,)
        if self.held_out_ is not None:
            idx = self._training_match(z)  # (N,) matching training row, -1 for none
            hit = idx >= 0
            out[hit] = self.held_out_[idx[hit]]
        return out

    def _training_match(self, z: np.ndarray, chunk: int = 1024) -> np.ndarray:
        """(N,) index of the training row each standardised row z (N, D) is identical to
        (nearest, within `tolerance_`), -1 where none is."""
        train: np.ndarray = self.train_rows_  # (M, D)
        sq = (train**2).sum(axis=1)  # (M,)
        out = np.full(z.shape[0], -1, dtype=np.int64)
        for i in range(0, z.shape[0], chunk):
            q = z[i : i + chunk]  # (B, D)
            d2 = (q**2).sum(axis=1)[:, None] + sq[None, :] - 2.0 * (q @ train.T)  # (B, M)
            j = d2.argmin(axis=1)  # (B,)
            near = np.sqrt(np.maximum(d2[np.arange(q.shape[0]), j], 0.0))
            out[i : i + chunk] = np.where(near <= self.tolerance_, j, -1)
        return out

    def _knn(self, z: np.ndarray, chunk: int = 1024) -> np.ndarray:
        """Mean distance to the k nearest training rows, an identical row left out: (N, D) -> (N,).

        Exact Euclidean distances by blocks of queries (numpy only: no thread pool of its
        own to fight over a shared machine's cores).
        """
        train: np.ndarray = self.model_  # (M, D)
        k = min(self.n_neighbors, train.shape[0] - 1)
        out = np.empty(z.shape[0])
        for i in range(0, z.shape[0], chunk):
            q = z[i : i + chunk]  # (B, D)
            d2 = (q**2).sum(axis=1)[:, None] + self.sq_norms_[None, :] - 2.0 * (q @ train.T)
            d = np.sqrt(np.maximum(d2, 0.0))  # (B, M)
            near = np.sort(np.partition(d, k, axis=1)[:, : k + 1], axis=1)  # (B, k+1)
            self_match = near[:, 0] <= 1e-6 * (1.0 + np.sqrt(self.sq_norms_.max()))
            # leave the identical training row out: neighbours 1..k, else 0..k-1
            use = np.where(self_match[:, None], near[:, 1:], near[:, :k])
            out[i : i + chunk] = use.mean(axis=1)
        return out
