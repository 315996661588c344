"""Representation-quality measures: known values on constructed matrices, and the guard."""

from __future__ import annotations

import numpy as np
import pytest

from geojepa.errors import CollapseError
from geojepa.quality import (
    CollapseGuard,
    QualityReport,
    alignment,
    lidar,
    rankme,
    std_ratio,
)


def test_rankme_random_is_high_and_collapsed_is_one() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(size=(2000, 64))
    assert rankme(z) > 0.9 * 64
    collapsed = np.outer(rng.normal(size=2000), rng.normal(size=64))
    assert rankme(collapsed) == pytest.approx(1.0, abs=1e-3)


def test_rankme_counts_equal_directions() -> None:
    rng = np.random.default_rng(1)
    basis = np.linalg.qr(rng.normal(size=(32, 32)))[0][:, :5]  # 5 orthonormal directions
    # equal energy in 5 directions: effective rank 5
    coef = np.linalg.qr(rng.normal(size=(500, 5)))[0] * 10
    assert rankme(coef @ basis.T) == pytest.approx(5.0, rel=1e-3)


def test_rankme_is_scale_free_and_rejects_nan() -> None:
    rng = np.random.default_rng(2)
    z = rng.normal(size=(200, 16))
    assert rankme(z) == pytest.approx(rankme(1e3 * z))
    z[0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        rankme(z)


def test_lidar_separates_discriminative_from_noise() -> None:
    rng = np.random.default_rng(3)
    k, q, d = 64, 4, 16
    centers = rng.normal(size=(k, 1, d))
    good = centers + 0.05 * rng.normal(size=(k, q, d))  # views agree, classes differ
    one_dir = np.zeros((k, q, d))
    one_dir[..., 0] = centers[..., 0]  # only one discriminative direction
    one_dir += 0.05 * rng.normal(size=(k, q, d))
    assert lidar(good) > 0.8 * d
    assert lidar(one_dir) < 2.0
    assert lidar(good) > lidar(one_dir)
    with pytest.raises(ValueError):
        lidar(good[:, :1])


def test_std_ratio_and_alignment() -> None:
    rng = np.random.default_rng(4)
    z = rng.normal(size=(5000, 32))
    assert std_ratio(z) == pytest.approx(1.0, abs=0.05)
    same = np.tile(rng.normal(size=(1, 32)), (100, 1))
    assert std_ratio(same) < 1e-6
    assert alignment(z, z) == pytest.approx(0.0, abs=1e-12)
    assert alignment(z, -z) == pytest.approx(4.0)
    with pytest.raises(ValueError):
        alignment(z, z[:, :3])


def _report(step: int, rank: float, ratio: float, dim: int = 64) -> QualityReport:
    return QualityReport(
        step=step,
        rankme=rank,
        lidar=float("nan"),
        std_ratio=ratio,
        embed_std=0.1,
        alignment=0.5,
        val_loss=0.1,
        dim=dim,
    )


def test_guard_stops_after_patience_with_a_clear_message() -> None:
    guard = CollapseGuard(min_rank_fraction=0.1, min_std_ratio=0.05, patience=2)
    guard.check(_report(10, 30.0, 0.8))
    guard.check(_report(20, 2.0, 0.8))  # first failure: warning only
    guard.check(_report(30, 30.0, 0.8))  # recovered: counter reset
    guard.check(_report(40, 30.0, 0.01))
    with pytest.raises(CollapseError, match=r"step 50.*RankMe 1\.00"):
        guard.check(_report(50, 1.0, 0.01))


def test_disabled_guard_never_raises() -> None:
    guard = CollapseGuard(patience=1, enabled=False)
    guard.check(_report(1, 1.0, 0.0))
    assert guard.failures == 1


def test_guard_reads_alignment_and_logs_lidar_only() -> None:
    from dataclasses import replace

    ok = replace(_report(10, 30.0, 0.8), lidar=5.5, alignment=0.4)
    guard = CollapseGuard(patience=1)
    guard.check(ok)
    assert guard.failures == 0
    assert guard.reasons(replace(ok, lidar=1.0)) == []  # logged, not judged (docstring)
    assert guard.reasons(replace(ok, alignment=float("nan"))) == []  # not computed
    (why,) = guard.reasons(replace(ok, alignment=1e-9))
    assert why.startswith("alignment 1.00e-09 < 1e-06")
    with pytest.raises(CollapseError, match=r"step 10.*alignment"):
        guard.check(replace(ok, alignment=0.0))
    off = CollapseGuard(min_alignment=0.0, patience=1)  # a floor of 0 switches it off
    off.check(replace(ok, alignment=0.0))
    assert off.failures == 0


def test_lidar_cannot_see_a_collapse_that_rankme_and_std_see() -> None:
    rng = np.random.default_rng(0)
    # every window's views at one point, plus noise far below any signal
    same = np.tile(rng.normal(size=(1, 1, 16)), (8, 4, 1)) + 1e-9 * rng.normal(size=(8, 4, 16))
    assert lidar(same) > 2.0  # scale-free: it ranks the noise
    flat = same.reshape(-1, 16)
    assert rankme(flat) < 1.5 and std_ratio(flat) < 0.05  # what the guard judges
    z = rng.normal(size=(50, 16))
    assert alignment(z, z) < 1e-6 < alignment(z, rng.normal(size=(50, 16)))
