"""Data-parallel training under ``torchrun`` (PyTorch DDP), opt-in.

`init_from_env()` opens a process group ONLY when the launcher set ``WORLD_SIZE > 1``
(``torchrun --nproc_per_node=N``), always with the gloo backend: the training loop keeps the
model and its batches on the CPU, and nccl reduces CUDA tensors only, so choosing it on a
machine that merely has a GPU would fail at the first gradient all-reduce. Without
``WORLD_SIZE > 1`` the single-process path never touches ``torch.distributed``.

Guarantees: `DistInfo` says who we are; `rank_slice` splits a global batch of B items into
contiguous equal shares (B must divide by the world size); `all_sum` / `all_max` are
identity functions on one process; `shutdown` closes only a group this module opened.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from geojepa.errors import InputError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    """This process's place in a data-parallel job (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = ""
    opened_here: bool = False

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_world_size() -> int:
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError as err:
        raise InputError(
            f"WORLD_SIZE={os.environ.get('WORLD_SIZE')!r} is not a number",
            hint="launch with torchrun --nproc_per_node=N, or unset WORLD_SIZE",
        ) from err


def init_from_env() -> DistInfo:
    """Join the torchrun job described by the environment, or stay single-process."""
    world = env_world_size()
    if world <= 1:
        return DistInfo()
    import torch.distributed as dist

    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if dist.is_initialized():
        return DistInfo(rank, world, local_rank, str(dist.get_backend()), opened_here=False)
    backend = "gloo"  # CPU tensors (module docstring), whatever accelerators the machine has
    dist.init_process_group(backend=backend)
    log.info("DDP: rank %d of %d (%s)", rank, world, backend)
    return DistInfo(rank, world, local_rank, backend, opened_here=True)


def shutdown(info: DistInfo) -> None:
    if info.opened_here:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def rank_slice(global_batch: int, info: DistInfo) -> slice:
    """This rank's contiguous share of a global batch."""
    if global_batch % info.world_size:
        raise InputError(
            f"batch size {global_batch} does not divide by {info.world_size} processes",
            hint="choose a batch size that is a multiple of --nproc_per_node",
        )
    per = global_batch // info.world_size
    return slice(info.rank * per, (info.rank + 1) * per)


def all_sum(x: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum of `x` over ranks (a copy; `x` itself is unchanged)."""
    if not info.distributed:
        return x
    import torch.distributed as dist

    y = x.detach().clone()
    dist.all_reduce(y, op=dist.ReduceOp.SUM)
    return y


def all_max(x: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if not info.distributed:
        return x
    import torch.distributed as dist

    y = x.detach().clone()
    dist.all_reduce(y, op=dist.ReduceOp.MAX)
    return y


def barrier(info: DistInfo) -> None:
    if info.distributed:
        import torch.distributed as dist

        dist.barrier()
