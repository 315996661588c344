"""SIGReg (LeJEPA): a sketched Epps-Pulley test of embeddings against an isotropic Gaussian.

`sigreg(z, slices, points, generator)` projects embeddings z (n, D) on `slices` random unit
directions and, per direction, integrates the squared gap between the empirical and the
standard normal characteristic functions, weighted by exp(-t^2/2), over t in [-3, 3]
(trapezoid, `points` evenly spaced nodes on [0, 3], symmetric). 0 for a Gaussian sample in
the limit; large for a collapsed one.

The empirical characteristic function at the nodes t_k = k * dt is the mean of
exp(i k theta) with theta = dt * projection: `empirical_cf` computes exp(i theta) once and
its powers by repeated complex multiplication (forward), and the gradient as a polynomial
in exp(i theta) by Horner's rule (backward), so no (n, slices, points) tensor is ever
stored and one complex exponential per sample and slice is evaluated each way instead of
2 * points cosines and sines (2-3x faster for the tiny preset's 256 slices).

Guarantees: `sigreg` equals the direct formula (cos and sin at every node) to float64
rounding in float64 and within 1e-5 in float32 (tests), and so does its gradient; the
directions depend only on `generator`; under bf16 autocast it is computed in float32.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.autograd.function import once_differentiable

__all__ = ["empirical_cf", "sigreg"]


class _EmpiricalCF(torch.autograd.Function):
    """theta (n, M) -> (re, im) each (M, K): means over n of cos(k theta), sin(k theta)."""

    @staticmethod
    def forward(ctx: Any, theta: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        unit = torch.polar(torch.ones_like(theta), theta)  # (n, M) complex: exp(i theta)
        cf = unit.new_zeros(theta.shape[1], count)  # (M, K) complex
        cf[:, 0] = 1.0
        power = unit.clone()
        for k in range(1, count):
            cf[:, k] = power.mean(dim=0)
            if k + 1 < count:
                power.mul_(unit)  # exp(i (k + 1) theta)
        ctx.save_for_backward(theta)
        return cf.real.contiguous(), cf.imag.contiguous()

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, g_re: torch.Tensor, g_im: torch.Tensor) -> tuple[torch.Tensor, None]:
        # d/d theta_i of mean_j exp(i k theta_j) = i k exp(i k theta_i) / n, so the gradient
        # is Re(sum_k a_k u_i^k) / n with u = exp(i theta), a_k = k (g_im_k + i g_re_k):
        # a polynomial in u per slice, evaluated by Horner's rule (one complex multiply-add
        # per k over (n, M), no stored powers)
        (theta,) = ctx.saved_tensors
        count = g_re.shape[1]
        unit = torch.polar(torch.ones_like(theta), theta)  # (n, M)
        k = torch.arange(count, dtype=theta.dtype, device=theta.device)
        a = torch.complex(g_im * k, g_re * k)  # (M, K)
        acc = a[:, count - 1].expand_as(unit).clone()
        for j in range(count - 2, 0, -1):
            acc.mul_(unit).add_(a[:, j])
        acc.mul_(unit)
        return acc.real / theta.shape[0], None


def empirical_cf(theta: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Real and imaginary parts (M, count) of mean_i exp(i k theta_i), k = 0 .. count - 1,
    for theta (n, M); differentiable in theta."""
    if theta.ndim != 2 or count < 2:
        raise ValueError(f"need theta (n, M) and count >= 2, got {tuple(theta.shape)}, {count}")
    re, im = _EmpiricalCF.apply(theta, count)
    return re, im


def sigreg(z: torch.Tensor, slices: int, points: int, generator: torch.Generator) -> torch.Tensor:
    """Sketched isotropic-Gaussian statistic of embeddings z (n, D) -> () (0 when Gaussian)."""
    n, d = z.shape
    if n < 2:
        return z.sum() * 0.0
    if z.dtype not in (torch.float32, torch.float64):
        z = z.float()  # half-precision embeddings: the statistic in float32
    dirs = torch.randn(d, slices, generator=generator, device="cpu").to(z.device, z.dtype)
    dirs = dirs / dirs.norm(dim=0, keepdim=True)
    with torch.autocast(device_type=z.device.type, enabled=False):
        return _statistic(z @ dirs, points)  # projections (n, M) in z's precision


def _statistic(proj: torch.Tensor, points: int) -> torch.Tensor:
    """The weighted characteristic-function gap of projections (n, M), averaged over M."""
    step = 3.0 / (points - 1)
    t = torch.arange(points, device=proj.device, dtype=proj.dtype) * step  # (T,)
    re, im = empirical_cf(proj * step, points)  # (M, T) each
    gauss = torch.exp(-0.5 * t * t)
    err = (re - gauss) ** 2 + im**2
    w = torch.full_like(t, step)
    w[0] = w[-1] = 0.5 * step
    return 2.0 * (err * gauss * w).sum(dim=-1).mean()
