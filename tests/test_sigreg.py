"""SIGReg's fast characteristic function against the direct formula, values and gradients."""

from __future__ import annotations

import pytest
import torch

from geojepa.sigreg import empirical_cf, sigreg


def direct_sigreg(z: torch.Tensor, slices: int, points: int, gen: torch.Generator) -> torch.Tensor:
    """The statistic written out: cos and sin at every node, autograd through them."""
    d = z.shape[1]
    dirs = torch.randn(d, slices, generator=gen).to(z.dtype)
    dirs = dirs / dirs.norm(dim=0, keepdim=True)
    t = torch.linspace(0.0, 3.0, points, dtype=z.dtype)
    arg = (z @ dirs)[:, :, None] * t  # (n, M, T)
    re, im = torch.cos(arg).mean(0), torch.sin(arg).mean(0)
    gauss = torch.exp(-0.5 * t * t)
    w = torch.full_like(t, float(t[1] - t[0]))
    w[0] = w[-1] = 0.5 * float(t[1] - t[0])
    return 2.0 * (((re - gauss) ** 2 + im**2) * gauss * w).sum(-1).mean()


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-10), (torch.float32, 1e-5)])
@pytest.mark.parametrize("scale", [1.0, 4.0, 0.01])
def test_sigreg_and_its_gradient_equal_the_direct_formula(
    dtype: torch.dtype, tol: float, scale: float
) -> None:
    z0 = torch.randn(300, 24, generator=torch.Generator().manual_seed(0), dtype=dtype) * scale
    grads = []
    values = []
    for fn in (sigreg, direct_sigreg):
        z = z0.clone().requires_grad_(True)
        v = fn(z, 48, 17, torch.Generator().manual_seed(3))
        v.backward()
        values.append(v.detach())
        grads.append(z.grad)
    assert abs(float(values[0] - values[1])) <= tol * max(1.0, abs(float(values[1])))
    g_scale = float(grads[1].abs().max())
    assert float((grads[0] - grads[1]).abs().max()) <= tol * max(1.0, g_scale)


def test_empirical_cf_passes_gradcheck_and_refuses_bad_shapes() -> None:
    theta = torch.randn(20, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    theta.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: empirical_cf(x, 6), (theta,))
    re, im = empirical_cf(theta.detach(), 6)
    k = torch.arange(6, dtype=torch.float64)
    arg = theta.detach()[:, :, None] * k  # (n, M, K)
    torch.testing.assert_close(re, torch.cos(arg).mean(0))
    torch.testing.assert_close(im, torch.sin(arg).mean(0))
    with pytest.raises(ValueError, match="count >= 2"):
        empirical_cf(theta.detach(), 1)
    with pytest.raises(ValueError, match=r"theta \(n, M\)"):
        empirical_cf(theta.detach()[0], 4)


def test_sigreg_under_bf16_autocast_is_computed_in_float32() -> None:
    z = torch.randn(200, 16, generator=torch.Generator().manual_seed(2)).requires_grad_(True)
    plain = sigreg(z, 32, 17, torch.Generator().manual_seed(5))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        auto = sigreg(z, 32, 17, torch.Generator().manual_seed(5))
        half = sigreg(z.bfloat16(), 32, 17, torch.Generator().manual_seed(5))
    assert auto.dtype == torch.float32 and float(auto.detach()) == float(plain.detach())
    assert half.dtype == torch.float32
    auto.backward()
    assert z.grad is not None and torch.isfinite(z.grad).all()
