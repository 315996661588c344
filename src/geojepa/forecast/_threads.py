"""Torch thread count for the small forecasting workloads.

Feature extraction and head training run thin matrices; on a busy machine torch's thread
pool spins and slows them (measured 7x slower for a 1024 x 128 x 512 linear with two
threads than with one on a loaded 2-core machine). `torch_threads(n)` sets the count for a
block and restores it afterwards, whatever happens inside.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def torch_threads(n: int | None = 1) -> Iterator[None]:
    """Run the block with `n` torch threads (None: leave as is)."""
    import torch

    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)
