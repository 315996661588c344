"""Representation-quality measures and the collapse guard used during pretraining.

Measures (all on numpy arrays, computed in float64):

- `rankme`: effective rank of an embedding matrix (Garrido et al.): the exponential of the
  entropy of its normalised singular values. 1 for a rank-one (collapsed) matrix, up to D.
- `lidar`: effective rank of the linear-discriminant matrix between "classes" (one class =
  several masked views of one window) and within them (Thilak et al.). High when views of a
  window agree with each other and windows differ from each other.
- `std_ratio`: mean per-dimension standard deviation of L2-normalised embeddings, times
  sqrt(D). About 1 for isotropic embeddings, 0 when every sample maps to one point.
- `alignment`: mean squared distance between L2-normalised predictions and targets (0 = equal,
  4 = opposite). Low alignment alone is no success: a collapsed model aligns perfectly.

Guarantees: functions are pure, accept any float array of the documented shape and return
Python floats; non-finite input raises ValueError instead of returning a silent NaN.
`CollapseGuard.check` raises `CollapseError` with a message that says what collapsed and what
to try, after `patience` consecutive failing evaluations.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from geojepa.errors import CollapseError

log = logging.getLogger(__name__)

_EPS = 1e-12


def _as_matrix(z: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(z, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n, D), got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains non-finite values")
    return a


def _entropy_rank(values: np.ndarray) -> float:
    """exp(entropy) of a non-negative spectrum normalised to sum one (1 when all zero)."""
    v = np.clip(values, 0.0, None)
    total = float(v.sum())
    if total <= _EPS:
        return 1.0
    p = v / total + _EPS
    return float(np.exp(-np.sum(p * np.log(p))))


def rankme(z: np.ndarray) -> float:
    """Effective rank of embeddings `z` (n, D); in [1, min(n, D)]."""
    a = _as_matrix(z, "embeddings")
    if a.shape[0] > 2 * a.shape[1]:
        # singular values from the (D, D) Gram matrix: far cheaper than an SVD of (n, D)
        lam = np.linalg.eigvalsh(a.T @ a)  # (D,)
        s = np.sqrt(np.clip(lam, 0.0, None))
    else:
        s = np.linalg.svd(a, compute_uv=False)  # (min(n, D),)
    return _entropy_rank(s)


def lidar(views: np.ndarray, delta: float = 1e-4) -> float:
    """LiDAR of `views` (K classes, Q views per class, D); Q >= 2, K >= 2.

    Between-class scatter is whitened by the within-class scatter, regularised by
    `delta` times its mean eigenvalue (scale-free), and the effective rank of the result is
    returned.
    """
    v = np.asarray(views, dtype=np.float64)
    if v.ndim != 3 or v.shape[0] < 2 or v.shape[1] < 2:
        raise ValueError(f"views must be (K>=2, Q>=2, D), got shape {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError("views contain non-finite values")
    k, q, d = v.shape
    class_mean = v.mean(axis=1)  # (K, D)
    grand = class_mean.mean(axis=0)  # (D,)
    db = class_mean - grand  # (K, D)
    sigma_b = db.T @ db / (k - 1)  # (D, D)
    dw = (v - class_mean[:, None, :]).reshape(k * q, d)  # (K*Q, D)
    sigma_w = dw.T @ dw / (k * (q - 1))  # (D, D)
    reg = delta * max(float(np.trace(sigma_w)) / d, _EPS)
    sigma_w = sigma_w + reg * np.eye(d)
    w_eig, w_vec = np.linalg.eigh(sigma_w)
    inv_sqrt = (w_vec / np.sqrt(np.clip(w_eig, _EPS, None))) @ w_vec.T  # (D, D)
    m = inv_sqrt @ sigma_b @ inv_sqrt
    lam = np.linalg.eigvalsh((m + m.T) / 2)
    return _entropy_rank(lam)


def std_ratio(z: np.ndarray) -> float:
    """Mean per-dimension std of L2-normalised rows of `z` (n, D), times sqrt(D)."""
    a = _as_matrix(z, "embeddings")
    n = np.linalg.norm(a, axis=1, keepdims=True)
    a = a / np.clip(n, _EPS, None)
    return float(a.std(axis=0).mean() * np.sqrt(a.shape[1]))


def alignment(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean ||p/|p| - t/|t|||^2 over rows of `pred` and `target` (n, D)."""
    p = _as_matrix(pred, "predictions")
    t = _as_matrix(target, "targets")
    if p.shape != t.shape:
        raise ValueError(f"predictions {p.shape} and targets {t.shape} differ in shape")
    if p.shape[0] == 0:
        raise ValueError("alignment needs at least one row")
    p = p / np.clip(np.linalg.norm(p, axis=1, keepdims=True), _EPS, None)
    t = t / np.clip(np.linalg.norm(t, axis=1, keepdims=True), _EPS, None)
    return float(np.mean(np.sum((p - t) ** 2, axis=1)))


@dataclass(frozen=True)
class QualityReport:
    """Measures on the fixed validation set at one step (NaN where not computed)."""

    step: int
    rankme: float
    lidar: float
    std_ratio: float
    embed_std: float
    alignment: float
    val_loss: float
    dim: int

    def as_dict(self) -> dict[str, float]:
        return {
            "val/rankme": self.rankme,
            "val/rankme_fraction": self.rankme / max(self.dim, 1),
            "val/lidar": self.lidar,
            "val/std_ratio": self.std_ratio,
            "val/embed_std": self.embed_std,
            "val/alignment": self.alignment,
            "val/loss": self.val_loss,
        }


@dataclass
class CollapseGuard:
    """Stops a run whose embeddings collapsed.

    A report fails when any of these holds:

    - RankMe < `min_rank_fraction` * D (the token embeddings span few directions);
    - `std_ratio` < `min_std_ratio` (the embeddings are nearly constant);
    - alignment < `min_alignment` (predictions equal their targets: the targets carry no
      information left to predict; a NaN alignment, not computed, is not judged).

    LiDAR is logged, not judged: it is scale-free, so on embeddings collapsed to one point
    plus any residual noise it measures the noise's rank (5.4 of 16 dimensions in
    `tests/test_quality.py`), and no floor on it separates collapse from health; RankMe and
    the std ratio do. A threshold of 0 switches its check off. `patience` consecutive failures raise
    `CollapseError`. A disabled guard only logs.
    """

    min_rank_fraction: float = 0.02
    min_std_ratio: float = 0.05
    min_alignment: float = 1e-6
    patience: int = 2
    enabled: bool = True
    failures: int = field(default=0)

    def reasons(self, report: QualityReport) -> list[str]:
        out = []
        floor = self.min_rank_fraction * report.dim
        if not np.isfinite(report.rankme) or report.rankme < floor:
            out.append(f"RankMe {report.rankme:.2f} < {floor:.2f} ({self.min_rank_fraction} x D)")
        if not np.isfinite(report.std_ratio) or report.std_ratio < self.min_std_ratio:
            out.append(
                f"per-dimension std ratio {report.std_ratio:.4f} < {self.min_std_ratio} "
                "(embeddings are nearly constant)"
            )
        if np.isfinite(report.alignment) and report.alignment < self.min_alignment:
            out.append(
                f"alignment {report.alignment:.2e} < {self.min_alignment:g} "
                "(predictions equal their targets: nothing is left to predict)"
            )
        return out

    def check(self, report: QualityReport) -> None:
        reasons = self.reasons(report)
        if not reasons:
            self.failures = 0
            return
        self.failures += 1
        log.warning("step %d: collapse warning: %s", report.step, "; ".join(reasons))
        if self.enabled and self.failures >= self.patience:
            raise CollapseError(
                f"representations collapsed at step {report.step} (D={report.dim}): "
                + "; ".join(reasons)
                + ". Try a lower learning rate, a longer warmup, a higher ema_start, "
                "or sigreg_weight > 0; the last good checkpoint is kept in the run folder"
            )
