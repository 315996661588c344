"""Where the model computes: the CPU or a CUDA GPU, chosen once per command.

`resolve_device(spec, local_rank)` turns what the user wrote (``--device``) into a
`torch.device`:

- ``"auto"`` (the default): the first CUDA GPU when torch sees one, else the CPU; under
  ``torchrun`` each process takes the GPU of its local rank;
- ``"cpu"``; ``"cuda"`` (the local rank's GPU, GPU 0 in one process); ``"cuda:N"``.

Guarantees: a GPU that torch cannot see, a GPU index past the last one, or any other word is
an `InputError` naming ``--device`` and what to write instead, never a CUDA stack trace at
the first tensor; nothing here initialises CUDA when the answer is the CPU. `autocast_type`
and `rng_devices` give `torch.autocast` and `torch.random.fork_rng` what they need for a
device, so that a training step reads the same on either.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from geojepa.errors import InputError

if TYPE_CHECKING:
    import torch

__all__ = ["DEVICE_HELP", "autocast_type", "resolve_device", "rng_devices"]

DEVICE_HELP = "auto (a CUDA GPU when there is one, else the CPU) | cpu | cuda | cuda:N"

_SPEC = re.compile(r"^(auto|cpu|cuda)(?::(\d+))?$")


def resolve_device(spec: str | None = "auto", local_rank: int = 0) -> torch.device:
    """The device `spec` names (module docstring); `local_rank` picks the GPU under torchrun."""
    import torch

    text = "auto" if spec is None else str(spec).strip().lower()
    m = _SPEC.match(text)
    if m is None or (m.group(2) is not None and m.group(1) != "cuda"):
        raise InputError(f"--device {spec!r} is not a device", hint=f"use {DEVICE_HELP}")
    kind, index = m.group(1), m.group(2)
    if kind == "cpu" or (kind == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise InputError(
            f"--device {spec!r}: this torch sees no CUDA GPU",
            hint="use --device cpu (or auto), or install a CUDA build of torch on a GPU machine",
        )
    count = torch.cuda.device_count()
    gpu = int(index) if index is not None else local_rank
    if gpu >= count:
        raise InputError(
            f"--device {spec!r}: GPU {gpu} asked for, torch sees {count}"
            + (f" (local rank {local_rank})" if index is None else ""),
            hint=f"use cuda:0 .. cuda:{count - 1}, or at most {count} processes per machine",
        )
    return torch.device("cuda", gpu)


def autocast_type(device: torch.device) -> str:
    """The device type `torch.autocast` takes for tensors on `device` ("cpu" or "cuda")."""
    return "cuda" if device.type == "cuda" else "cpu"


def rng_devices(device: torch.device) -> list[int]:
    """The CUDA devices whose generators `torch.random.fork_rng` must save for `device`
    (none on the CPU: the CPU generator is always saved)."""
    if device.type != "cuda":
        return []
    return [0 if device.index is None else int(device.index)]
