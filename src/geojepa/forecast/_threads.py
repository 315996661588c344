"""Thread counts for the small forecasting workloads.

Feature extraction, thin SVDs and head training run small matrices; on a busy machine the
torch and BLAS thread pools spin and slow them (measured 7x slower for a 1024 x 128 x 512
linear with two torch threads than with one, and ~50x for a 700 x 256 SVD, on a loaded
2-core machine). `torch_threads(n)` and `one_thread()` set the counts for a block and
restore them afterwards, whatever happens inside.
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


@contextmanager
def one_thread() -> Iterator[None]:
    """Run the block with one torch thread and one BLAS thread."""
    from geojepa.forecast.lagged import _blas

    with torch_threads(1), _blas().limit(limits=1, user_api="blas"):
        yield
