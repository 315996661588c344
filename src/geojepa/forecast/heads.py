"""Multi-horizon regression heads on fixed features: a ridge probe and a small MLP.

Both follow one contract (scikit-learn's): the constructor stores arguments,
``fit(x, y, groups=None) -> self`` with x (N, F) features, y (N, K) targets (NaN where a
horizon has no target for that sample) and optional groups (N,) int (records or sites),
``predict(x) -> (M, K)``. Fitted attributes end in ``_``:

- ``n_`` (K,) training samples per horizon; a horizon with fewer than `min_samples` gets no
  model and predicts NaN;
- ``range_`` (K, 2) the training targets' range: predictions are clipped to it, so a
  sample far outside the training features cannot produce a value no training sample had
  (with the asinh targets of the learned forecasters that would be exponentially large);
- ``band_`` (K, 2) lower and upper quantiles of out-of-sample residuals (truth minus
  prediction) at central coverage `level`: for the ridge, out-of-group residuals when
  `fit` gets groups (records or sites), else exact leave-one-out ones; for the MLP, those
  of a held-out fifth (of the groups when given). Leave-one-out residuals of samples close
  in time are correlated with their neighbours', so that band is optimistic.

Guarantees: deterministic given `seed` (the MLP draws its split, initial weights and batches
from generators seeded here; the global RNGs are left untouched); no sample outside the
arrays passed to `fit` is ever seen.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Self

import numpy as np

from geojepa.forecast._threads import torch_threads
from geojepa.forecast.base import DEFAULT_LEVEL
from geojepa.forecast.lagged import DEFAULT_ALPHAS, RidgeFit, fit_ridge_loo

log = logging.getLogger(__name__)


def _check(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if y.ndim == 1:
        y = y[:, None]
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"x {x.shape} and y {y.shape} must be (N, F) and (N, K)")
    if not np.all(np.isfinite(x)):
        raise ValueError("features must be finite")
    return x, y


def _ranges(y: np.ndarray) -> np.ndarray:
    """(K, 2) min and max of each horizon's finite targets (-inf, inf when none)."""
    out = np.tile([-np.inf, np.inf], (y.shape[1], 1))
    for j in range(y.shape[1]):
        v = y[np.isfinite(y[:, j]), j]
        if v.size:
            out[j] = v.min(), v.max()
    return out


def _quantiles(resid: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1.0 - level) / 2.0
    if resid.size == 0:
        return float("nan"), float("nan")
    return float(np.quantile(resid, tail)), float(np.quantile(resid, 1.0 - tail))


def fit_ridge_grouped(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, alphas: Sequence[float], folds: int = 5
) -> RidgeFit:
    """Ridge whose penalty has the least error on held-out **groups** (group K-fold: the
    sorted groups dealt round-robin into min(folds, #groups) folds).

    x (N, F), y (N,), groups (N,) int. The returned fit is on all samples; its
    ``loo_residuals`` are the out-of-group residuals at the chosen penalty (truth - pred).
    """
    uniq = np.unique(groups)
    nf = min(int(folds), uniq.size)
    fold = np.searchsorted(uniq, groups) % nf  # (N,)
    resid = np.full((len(alphas), y.size), np.nan)
    for f in range(nf):
        tr, te = fold != f, fold == f
        mean = x[tr].mean(axis=0)
        sd = x[tr].std(axis=0)
        sd = np.where(sd > 0, sd, 1.0)
        z = (x[tr] - mean) / sd  # (n, F)
        y_mean = float(y[tr].mean())
        u, sv, vt = np.linalg.svd(z, full_matrices=False)
        uty = u.T @ (y[tr] - y_mean)
        zt = (x[te] - mean) / sd
        for i, a in enumerate(alphas):
            coef = vt.T @ (sv / (sv**2 + a) * uty)  # (F,)
            resid[i, te] = y[te] - (y_mean + zt @ coef)
    mse = np.mean(resid**2, axis=1)
    best = int(np.argmin(mse))
    fit = fit_ridge_loo(x, y, [float(alphas[best])])
    return RidgeFit(
        fit.mean, fit.scale, fit.coef, fit.intercept, fit.alpha, float(mse[best]), resid[best]
    )


def fit_ridge_penalised(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray | None, alphas: Sequence[float], folds: int
) -> RidgeFit:
    """Ridge of y (N,) on x (N, F) whose penalty is chosen by group K-fold error when
    `groups` (N,) holds at least 2 groups (`fit_ridge_grouped`), else by exact leave-one-out
    error (`fit_ridge_loo`)."""
    if groups is not None and np.unique(groups).size >= 2:
        return fit_ridge_grouped(x, y, groups, alphas, folds)
    return fit_ridge_loo(x, y, alphas)


class RidgeHead:
    """One ridge per horizon; penalty chosen by exact leave-one-out error, or by group
    K-fold error when `fit` is given groups (samples of one record or site are correlated:
    leave-one-out would pick too small a penalty for a new record)."""

    def __init__(
        self,
        alphas: Sequence[float] = DEFAULT_ALPHAS,
        min_samples: int = 8,
        level: float = DEFAULT_LEVEL,
        folds: int = 5,
    ) -> None:
        self.alphas = alphas
        self.min_samples = min_samples
        self.level = level
        self.folds = folds

    def fit(self, x: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> Self:
        """x (N, F), y (N, K); groups (N,) int: group K-fold penalty when >= 2 groups."""
        x, y = _check(x, y)
        k = y.shape[1]
        self.models_: list[RidgeFit | None] = []
        self.n_ = np.zeros(k, dtype=np.int64)
        self.band_ = np.full((k, 2), np.nan)
        self.range_ = _ranges(y)
        for j in range(k):
            ok = np.isfinite(y[:, j])
            self.n_[j] = int(ok.sum())
            if self.n_[j] < self.min_samples:
                self.models_.append(None)
                continue
            g = None if groups is None else np.asarray(groups)[ok]
            fit = fit_ridge_penalised(x[ok], y[ok, j], g, self.alphas, self.folds)
            self.models_.append(fit)
            self.band_[j] = _quantiles(fit.loo_residuals, self.level)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        out = np.full((x.shape[0], len(self.models_)), np.nan)
        for j, m in enumerate(self.models_):
            if m is not None:
                out[:, j] = m.predict(x)
        return np.clip(out, self.range_[:, 0], self.range_[:, 1])


class MLPHead:
    """A two-layer MLP (GELU) predicting every horizon at once, trained with AdamW on a
    masked Huber loss over standardised targets for at most `epochs` epochs and
    `max_steps` optimiser steps (whole epochs); the epoch with the least held-out loss is
    kept. `delta`: the Huber threshold in target standard deviations (small values fit the
    conditional median, which minimises the absolute error, in any monotone transform of
    the targets)."""

    def __init__(
        self,
        hidden: int = 64,
        epochs: int = 100,
        lr: float = 3e-3,
        weight_decay: float = 1e-2,
        holdout: float = 0.2,
        batch_size: int = 512,
        min_samples: int = 8,
        level: float = DEFAULT_LEVEL,
        seed: int = 0,
        threads: int | None = 1,
        max_steps: int = 400,
        delta: float = 1.0,
    ) -> None:
        self.hidden = hidden
        self.epochs = epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.holdout = holdout
        self.batch_size = batch_size
        self.min_samples = min_samples
        self.level = level
        self.seed = seed
        self.threads = threads
        self.max_steps = max_steps
        self.delta = delta

    def fit(self, x: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> Self:
        """x (N, F), y (N, K); with groups (N,) the held-out fifth is made of whole groups
        (when there are at least 3)."""
        with torch_threads(self.threads):
            return self._fit(x, y, groups)

    def _fit(self, x: np.ndarray, y: np.ndarray, groups: np.ndarray | None) -> Self:
        import torch

        x, y = _check(x, y)
        n, f = x.shape
        k = y.shape[1]
        self.n_ = np.isfinite(y).sum(axis=0).astype(np.int64)
        self.active_ = self.n_ >= self.min_samples  # (K,)
        self.band_ = np.full((k, 2), np.nan)
        self.x_mean_ = x.mean(axis=0)
        sd = x.std(axis=0)
        self.x_scale_ = np.where(sd > 0, sd, 1.0)
        ym = np.array([np.nanmean(y[:, j]) if self.n_[j] else 0.0 for j in range(k)])
        ys = np.array([np.nanstd(y[:, j]) if self.n_[j] > 1 else 1.0 for j in range(k)])
        self.y_mean_ = ym
        self.y_scale_ = np.where(ys > 0, ys, 1.0)
        self.range_ = _ranges(y)
        rng = np.random.default_rng([self.seed, 0x4D4C50])
        hold, train = self._split(n, groups, rng)
        n_hold = hold.size
        xs = (x - self.x_mean_) / self.x_scale_  # (N, F)
        yz = (y - ym) / self.y_scale_  # (N, K)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(rng.integers(2**31)))
            net = torch.nn.Sequential(
                torch.nn.Linear(f, self.hidden),
                torch.nn.GELU(),
                torch.nn.Linear(self.hidden, self.hidden),
                torch.nn.GELU(),
                torch.nn.Linear(self.hidden, k),
            ).double()
        opt = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        xt = torch.from_numpy(xs)
        yt = torch.from_numpy(np.nan_to_num(yz))
        mt = torch.from_numpy(np.isfinite(yz) & self.active_[None, :])
        gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
        tr = torch.from_numpy(train)
        ho = torch.from_numpy(hold)

        def loss_of(idx: torch.Tensor) -> torch.Tensor:
            pred = net(xt[idx])  # (b, K)
            m = mt[idx].to(pred.dtype)
            err = torch.nn.functional.huber_loss(pred, yt[idx], reduction="none", delta=self.delta)
            return (err * m).sum() / m.sum().clamp_min(1.0)

        best = (float("inf"), [p.detach().clone() for p in net.parameters()])
        done = 0
        for _ in range(self.epochs):
            if done >= self.max_steps:
                break
            net.train()
            perm = tr[torch.randperm(tr.numel(), generator=gen)]
            for lo in range(0, perm.numel(), self.batch_size):
                idx = perm[lo : lo + self.batch_size]
                opt.zero_grad(set_to_none=True)
                loss = loss_of(idx)
                loss.backward()
                opt.step()
                done += 1
            if n_hold:
                net.eval()
                with torch.no_grad():
                    v = float(loss_of(ho))
                if v < best[0]:
                    best = (v, [p.detach().clone() for p in net.parameters()])
        if n_hold:
            with torch.no_grad():
                for p, b in zip(net.parameters(), best[1], strict=True):
                    p.copy_(b)
        net.eval()
        self.net_ = net
        if n_hold:
            pred = self.predict(x[hold])
            for j in range(k):
                r = y[hold, j] - pred[:, j]
                self.band_[j] = _quantiles(r[np.isfinite(r)], self.level)
        else:
            log.info("mlp head: %d samples, too few for a held-out band", n)
        return self

    def _split(
        self, n: int, groups: np.ndarray | None, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """(held-out, training) indices: whole groups when there are >= 3, else samples."""
        if n < 2 * self.min_samples:
            return np.zeros(0, dtype=np.int64), np.arange(n)
        if groups is not None:
            uniq = np.unique(groups)
            if uniq.size >= 3:
                k = max(1, round(self.holdout * uniq.size))
                out = rng.choice(uniq, size=k, replace=False)
                mask = np.isin(groups, out)
                return np.flatnonzero(mask), np.flatnonzero(~mask)
        order = rng.permutation(n)
        n_hold = round(self.holdout * n)
        return np.sort(order[:n_hold]), np.sort(order[n_hold:])

    def predict(self, x: np.ndarray) -> np.ndarray:
        import torch

        xs = (np.asarray(x, dtype=np.float64) - self.x_mean_) / self.x_scale_
        with torch.no_grad(), torch_threads(self.threads):
            z = self.net_(torch.from_numpy(xs)).numpy()  # (M, K)
        out = np.clip(z * self.y_scale_ + self.y_mean_, self.range_[:, 0], self.range_[:, 1])
        out[:, ~self.active_] = np.nan
        return np.asarray(out, dtype=np.float64)


MEDIAN_DELTA = 0.05
"""The ``median`` head's Huber threshold (target standard deviations): an MLPHead this
narrow fits the conditional median, the forecast with the least mean absolute error."""

HEADS = {"ridge": RidgeHead, "mlp": MLPHead, "median": MLPHead}
"""Head names and their classes; `make_head` adds each name's own defaults."""

_HEAD_DEFAULTS: dict[str, dict[str, Any]] = {"median": {"delta": MEDIAN_DELTA}}


def make_head(name: str, seed: int = 0, **kw: Any) -> RidgeHead | MLPHead:
    """The head called `name` (a key of HEADS), `kw` over the name's own defaults; `seed`
    reaches the MLP heads only (the ridge is deterministic)."""
    if name not in HEADS:
        raise ValueError(f"unknown head {name!r}; use one of {sorted(HEADS)}")
    args = {**_HEAD_DEFAULTS.get(name, {}), **kw}
    if HEADS[name] is MLPHead:
        args.setdefault("seed", seed)
        return MLPHead(**args)
    return RidgeHead(**args)
