"""Density scores on any feature or embedding matrix (N, D): kNN distance, Mahalanobis, IsolationForest.

Used on hand-crafted window features and raw windows here, and on JEPA embeddings later:
anything that can be written as one row per window.

Guarantees: ``fit(X_train) -> self`` learns from the rows it is given only; ``score(X)``
returns (N,) with higher = more anomalous (less dense). Columns are standardised with the
training mean and spread (a constant column is left unscaled). A query row identical to a
training row is scored by kNN as if that training row were left out, so training rows
and new rows are scored alike (no in-sample optimism in thresholds calibrated on
training scores). Input with NaN or infinite values is refused with a ValueError naming
the first bad row.
"""

from __future__ import annotations

from typing import Self

import numpy as np
from sklearn.base import BaseEstimator

__all__ = ["DENSITY_METHODS", "EmbeddingDensity"]

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


class EmbeddingDensity(BaseEstimator):
    """Anomaly score of rows of an (N, D) matrix from the density of training rows.

    method: ``knn`` (mean distance to the `n_neighbors` nearest training rows),
    ``mahalanobis`` (distance under a Ledoit-Wolf shrunk covariance) or ``iforest``
    (IsolationForest path length, negated).
    """

    def __init__(
        self,
        method: str = "knn",
        n_neighbors: int = 5,
        n_estimators: int = 100,
        max_train: int | None = 5000,
        seed: int = 0,
    ) -> None:
        self.method = method
        self.n_neighbors = n_neighbors
        self.n_estimators = n_estimators
        self.max_train = max_train
        self.seed = seed

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
        elif self.method == "mahalanobis":
            from sklearn.covariance import LedoitWolf

            self.model_ = LedoitWolf().fit(z)
        else:
            from sklearn.ensemble import IsolationForest

            self.model_ = IsolationForest(
                n_estimators=self.n_estimators,
                random_state=int(rng.integers(0, 2**31 - 1)),
            ).fit(z)
        return self

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
        if self.method == "mahalanobis":
            return np.sqrt(np.maximum(self.model_.mahalanobis(z), 0.0))
        return np.asarray(-self.model_.score_samples(z), dtype=np.float64)

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
