"""Transformer building blocks on `scaled_dot_product_attention` with boolean attention masks.

Masks follow SDPA's convention: True = may attend. Every helper here guarantees that each
query row has at least one allowed key, so no row's softmax is over nothing (which would
give NaN and poison gradients); rows that had none get their first key, and such rows
belong to padding whose outputs are never used.

Guarantees: blocks are permutation-equivariant over the sequence (no positional
parameters); pre-norm residual blocks; a masked key's value never reaches any output.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn


def ensure_some_key(allowed: torch.Tensor) -> torch.Tensor:
    """Allowed-key mask (..., Nq, Nk) or (..., 1, Nk) with at least one True per row.

    Rows with no allowed key get key 0 (their outputs belong to padding and are unused).
    """
    empty = ~allowed.any(dim=-1, keepdim=True)  # (..., Nq, 1)
    first = torch.zeros_like(allowed)
    first[..., 0] = True
    return allowed | (empty & first)


def key_mask(pad: torch.Tensor) -> torch.Tensor:
    """(B, N) bool pad (True = padding) -> (B, 1, 1, N) allowed-key mask for SDPA."""
    return ensure_some_key((~pad)[:, None, None, :])


def attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, dropout: float
) -> torch.Tensor:
    """scaled_dot_product_attention; bf16 inputs on a CPU without AMX are attended in fp32.

    Measured on this project's CPUs: without AMX tiles the CPU flash kernel is slower in
    bf16 than in fp32, and a bf16-autocast training step ran 12-17 % faster with attention
    done in fp32 (the casts are cheap next to the kernel; the result is cast back). With
    AMX tiles the bf16 kernel is the faster one (forward + backward 1.36x at 512 tokens,
    level at 256; the tiny preset's bf16 step 1.1x faster), so bf16 stays bf16 there.
    """
    if q.dtype == torch.bfloat16 and q.device.type == "cpu" and not cpu_has_amx():
        with torch.autocast("cpu", enabled=False):
            out = F.scaled_dot_product_attention(
                q.float(), k.float(), v.float(), attn_mask=mask, dropout_p=dropout
            )
        return out.to(q.dtype)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)


@functools.cache
def cpu_has_amx() -> bool:
    """Whether this CPU has AMX tiles (False when this torch build cannot tell)."""
    probe = getattr(torch.cpu, "_is_amx_tile_supported", None)
    try:
        return bool(probe()) if callable(probe) else False
    except RuntimeError:
        return False


class Attention(nn.Module):
    """Multi-head self-attention. x (B, N, D), mask broadcastable to (B, H, N, N) -> (B, N, D)."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # 3 x (B, H, N, Dh)
        out = attention(q, k, v, mask, self.dropout if self.training else 0.0)  # (B, H, N, Dh)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class MLP(nn.Module):
    """Two-layer SiLU MLP. (..., D) -> (..., D).

    SiLU, not GELU: a common transformer choice and, measured here on CPU, its forward +
    backward costs a fraction of GELU's (the activation was ~10 % of a tiny-preset step).
    """

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(F.silu(self.fc1(x))))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)); x + mlp(norm(x)). (B, N, D) -> (B, N, D)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, round(dim * mlp_ratio), dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), mask)
        return x + self.mlp(self.norm2(x))


class FactorisedBlock(nn.Module):
    """Time-then-sensor attention over a (sensor, patch) grid, then an MLP.

    forward(x (B, Nk, D) gathered tokens, grid: Grid) -> (B, Nk, D). Projections (q, k, v,
    output, MLP) run on the gathered tokens only; q, k, v are scattered into the (B, C, P)
    grid (empty cells are masked keys) to attend along time within each sensor, then along
    sensors within each patch.
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm_t = nn.LayerNorm(dim)
        self.attn_t = Attention(dim, heads, dropout)
        self.norm_s = nn.LayerNorm(dim)
        self.attn_s = Attention(dim, heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, round(dim * mlp_ratio), dropout)

    def forward(self, x: torch.Tensor, grid: Grid) -> torch.Tensor:
        x = x + self._grid_attention(self.attn_t, self.norm_t(x), grid, along_time=True)
        x = x + self._grid_attention(self.attn_s, self.norm_s(x), grid, along_time=False)
        return x + self.mlp(self.norm2(x))

    @staticmethod
    def _grid_attention(
        attn: Attention, x: torch.Tensor, grid: Grid, along_time: bool
    ) -> torch.Tensor:
        """(B, Nk, D) -> (B, Nk, D): attention along one grid axis."""
        d = x.shape[-1]
        h = attn.heads
        g = grid.scatter(attn.qkv(x))  # (B, C, P, 3D)
        b, c, p, _ = g.shape
        if along_time:
            seq = g.reshape(b * c, p, 3, h, d // h)  # sequences over patches
            mask = grid.time_mask
        else:
            seq = g.transpose(1, 2).reshape(b * p, c, 3, h, d // h)  # over sensors
            mask = grid.sensor_mask
        q, k, v = seq.permute(2, 0, 3, 1, 4).unbind(0)  # 3 x (S, H, len, Dh)
        out = attention(q, k, v, mask, attn.dropout if attn.training else 0.0)  # (S, H, len, Dh)
        out = out.transpose(1, 2).reshape(seq.shape[0], seq.shape[1], d)
        if along_time:
            out = out.reshape(b, c, p, d)
        else:
            out = out.reshape(b, p, c, d).transpose(1, 2)
        return attn.proj(grid.gather(out))


class Grid:
    """Scatter/gather between gathered tokens (B, Nk, D) and the (B, C, P, D) grid.

    index (B, Nk) long token ids n = c*P + p; pad (B, Nk) bool. `time_mask` (B*C, 1, 1, P)
    and `sensor_mask` (B*P, 1, 1, C) allow only occupied cells as keys.
    """

    def __init__(
        self,
        index: torch.Tensor | None,
        pad: torch.Tensor,
        n_sensors: int,
        n_patches: int,
    ) -> None:
        b = pad.shape[0]
        n = n_sensors * n_patches
        self.shape = (b, n_sensors, n_patches)
        # index None: all N tokens in order (pad = invalid tokens), no scatter needed
        self.identity = index is None
        if index is None:
            index = torch.arange(n, device=pad.device).expand(b, n)
        self.slot = torch.where(pad, torch.full_like(index, n), index)  # pads -> dummy slot N
        occ = torch.zeros(b, n + 1, dtype=torch.bool, device=index.device)
        occ.scatter_(1, self.slot, ~pad)
        occ = occ[:, :n].reshape(b, n_sensors, n_patches)  # (B, C, P)
        self.time_mask = key_mask(~occ.reshape(b * n_sensors, n_patches))
        self.sensor_mask = key_mask(~occ.transpose(1, 2).reshape(b * n_patches, n_sensors))

    def scatter(self, x: torch.Tensor) -> torch.Tensor:
        """(B, Nk, D) -> (B, C, P, D), zeros in empty cells."""
        b, c, p = self.shape
        d = x.shape[-1]
        if self.identity:
            return x.reshape(b, c, p, d)
        g = x.new_zeros(b, c * p + 1, d)
        g = g.scatter(1, self.slot[..., None].expand(-1, -1, d), x)
        return g[:, : c * p].reshape(b, c, p, d)

    def gather(self, g: torch.Tensor) -> torch.Tensor:
        """(B, C, P, D) -> (B, Nk, D) at the tokens' cells (pads read cell 0, unused)."""
        b, c, p, d = g.shape
        flat = g.reshape(b, c * p, d)
        if self.identity:
            return flat
        idx = self.slot.clamp_max(c * p - 1)
        return flat.gather(1, idx[..., None].expand(-1, -1, d))


def init_weights(module: nn.Module, generator: torch.Generator | None = None) -> None:
    """Truncated-normal(0.02) Linear weights, zero biases, unit LayerNorms.

    With `generator` the result is a function of it alone (no global RNG state).
    """
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02, generator=generator)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
