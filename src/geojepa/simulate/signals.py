"""Linear filters the simulator is built from: causal convolution, kernels, AR(1) noise.

Guarantees: every function is deterministic given its inputs (and generator state),
works on (T,) or (T, C) arrays along axis 0, and is causal (output at t depends on
inputs at t and before only).
"""

from __future__ import annotations

import numpy as np


def _next_fast_len(n: int) -> int:
    """Smallest 2^a 3^b 5^c >= n (fast FFT sizes)."""
    best = 1 << int(np.ceil(np.log2(max(n, 1))))
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            q = p35
            while q < n:
                q *= 2
            best = min(best, q)
            p35 *= 3
        p5 *= 5
    return best


def causal_convolve(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """y[t] = sum_k kernel[k] * x[t - k], truncated to len(x).

    x: (T,) or (T, C); kernel: (K,) or (K, C) (one kernel per column). Returns (T,) or
    (T, C) float64: 2-D if either input is 2-D.
    """
    x = np.asarray(x, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    t = x.shape[0]
    k = min(kernel.shape[0], t)
    kernel = kernel[:k]
    n = _next_fast_len(t + k - 1)
    fx = np.fft.rfft(x, n=n, axis=0)
    fk = np.fft.rfft(kernel, n=n, axis=0)
    if fx.ndim == 1 and fk.ndim == 2:
        fx = fx[:, None]
    elif fx.ndim == 2 and fk.ndim == 1:
        fk = fk[:, None]
    y = np.fft.irfft(fx * fk, n=n, axis=0)[:t]  # (T,) or (T, C)
    return np.ascontiguousarray(y)


def gamma_kernel(mode: float, shape: float, length: int) -> np.ndarray:
    """Peak-normalised gamma-shaped impulse response, (length,), maximum 1 near `mode`.

    k(t) = (t/m)^(a-1) exp(-(a-1)(t/m - 1)); its largest value on the integer grid is at
    floor(m) or ceil(m). `shape` a > 1 sets skewness (small a: fast rise, long recession).
    """
    m = max(float(mode), 1e-6)
    a = max(float(shape), 1.05)
    t = np.arange(length, dtype=np.float64)
    r = t / m
    with np.errstate(divide="ignore"):
        logk = (a - 1.0) * (np.log(np.where(r > 0, r, 1.0)) - (r - 1.0))
    k = np.where(r > 0, np.exp(logk), 0.0)
    if m < 0.5:
        k[0] = 1.0
    return k


def gamma_kernel_length(mode: float, shape: float) -> int:
    """Steps after which a `gamma_kernel` has decayed below ~1e-4 of its peak."""
    a = max(float(shape), 1.05)
    return int(np.ceil(max(mode, 1.0) * (1.0 + 12.0 / np.sqrt(a - 1.0)))) + 2


def exp_kernel(tau: float, length: int) -> np.ndarray:
    """Unit-sum exponential kernel with time constant `tau` steps (a first-order lag)."""
    tau = max(float(tau), 1e-6)
    k = np.exp(-np.arange(length, dtype=np.float64) / tau)
    return k / k.sum()


def ar1(
    rng: np.random.Generator,
    n: int,
    tau: float,
    sigma: float | np.ndarray,
    columns: int | None = None,
    mix: np.ndarray | None = None,
) -> np.ndarray:
    """Stationary AR(1) noise with correlation time `tau` steps and std `sigma`.

    Returns (n,) when `columns` is None, else (n, columns). `mix` (columns, columns), a
    Cholesky factor of a spatial correlation matrix, correlates the columns.
    """
    phi = float(np.exp(-1.0 / max(tau, 1e-6)))
    c = 1 if columns is None else columns
    w = rng.standard_normal((n, c))  # (T, C) white
    if mix is not None:
        w = w @ mix.T  # (T, C) spatially correlated
    length = min(n, int(np.ceil(12.0 * max(tau, 1.0))) + 1)
    k = phi ** np.arange(length, dtype=np.float64)
    y = causal_convolve(w, k) * np.sqrt(1.0 - phi * phi)  # (T, C) unit variance
    # the first steps lack history: blend in the exact stationary start
    ramp = np.sqrt(1.0 - phi ** (2 * (np.arange(1, n + 1, dtype=np.float64))))
    y[:length] /= np.maximum(ramp[:length, None], 1e-12)
    y = y * np.asarray(sigma, dtype=np.float64)
    return y[:, 0] if columns is None else y


def spatial_mix(xyz: np.ndarray, length_scale: float, nugget: float = 0.05) -> np.ndarray:
    """Cholesky factor (C, C) of exp(-distance / length_scale) with a small nugget."""
    xyz = np.asarray(xyz, dtype=np.float64)
    if xyz.shape[0] == 0:
        return np.zeros((0, 0))
    d = np.sqrt(((xyz[:, None, :] - xyz[None, :, :]) ** 2).sum(-1))  # (C, C)
    cov = (1.0 - nugget) * np.exp(-d / max(length_scale, 1e-6)) + nugget * np.eye(len(xyz))
    return np.linalg.cholesky(cov)


def soft_min(x: np.ndarray, top: float, softness: float) -> np.ndarray:
    """A smooth minimum(x, top): follows x well below `top`, saturates at `top` above it."""
    s = max(float(softness), 1e-9)
    return x - s * np.logaddexp(0.0, (x - top) / s)
