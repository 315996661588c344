"""Data-parallel training under ``torchrun`` (PyTorch DDP), opt-in.

`init_from_env(backend)` opens a process group ONLY when the launcher set ``WORLD_SIZE > 1``
(``torchrun --nproc_per_node=N``). The caller names the backend from the device it trains
on (`backend_for`): nccl when the model and its batches live on CUDA GPUs (one per process,
the local rank's), gloo on the CPU; nccl reduces CUDA tensors only, so it is never chosen
because a machine merely has a GPU. Without ``WORLD_SIZE > 1`` the single-process path never
touches ``torch.distributed``.

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


def _env_int(name: str, default: int) -> int:
    """An integer the launcher put in the environment; anything else is bad input."""
    try:
        return int(os.environ.get(name, str(default)))
    except ValueError as err:
        raise InputError(
            f"{name}={os.environ.get(name)!r} is not a number",
            hint=f"launch with torchrun --nproc_per_node=N, or unset {name}",
        ) from err


def env_world_size() -> int:
    """How many processes the torchrun job has (1 when not launched by it)."""
    return _env_int("WORLD_SIZE", 1)


def env_local_rank() -> int:
    """This process's rank on its machine under torchrun (0 when not launched by it)."""
    return _env_int("LOCAL_RANK", 0)


def backend_for(device: torch.device) -> str:
    """The process-group backend for a model on `device`: nccl on CUDA, gloo elsewhere."""
    return "nccl" if device.type == "cuda" else "gloo"


def init_from_env(backend: str = "gloo") -> DistInfo:
    """Join the torchrun job described by the environment, or stay single-process.

    `backend` must suit the device the tensors live on (`backend_for`)."""
    world = env_world_size()
    if world <= 1:
        return DistInfo()
    import torch.distributed as dist

    rank = int(os.environ["RANK"])
    local_rank = env_local_rank()
    if dist.is_initialized():
        return DistInfo(rank, world, local_rank, str(dist.get_backend()), opened_here=False)
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
