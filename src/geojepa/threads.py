"""How many CPU threads torch uses for one GeoJEPA process.

GeoJEPA's models are small: a tiny-preset matrix product takes well under a millisecond,
so intra-op parallelism gains little, while torch's worker threads spin-wait for each
other. When another process competes for the cores (a second job, the logger's own
software on a gateway), a two-thread process on two cores was measured 10-30x slower
than a one-thread one on the same work. So on small machines the command line runs one
thread per process.

Guarantees: `cli_threads` reads ``GEOJEPA_THREADS`` (a positive integer, or ``auto`` for
torch's own default) and otherwise picks 1 on machines with at most `SMALL_MACHINE` cores,
torch's default above; `apply_threads` sets ``OMP_NUM_THREADS`` only when the user has not
set it, and calls ``torch.set_num_threads`` only when torch is already imported, so
applying the setting never imports torch. A bad value raises `InputError` saying what to
write.
"""

from __future__ import annotations

import os
import sys

from geojepa.errors import InputError

SMALL_MACHINE = 4
"""Machines with at most this many cores run one torch thread per process by default."""

ENV = "GEOJEPA_THREADS"


def cli_threads(environ: dict[str, str] | None = None, cores: int | None = None) -> int | None:
    """Threads for a command-line process: an int, or None for torch's default."""
    env = os.environ if environ is None else environ
    raw = env.get(ENV, "").strip()
    if raw:
        if raw.lower() == "auto":
            return None
        try:
            n = int(raw)
        except ValueError:
            n = 0
        if n < 1:
            raise InputError(
                f"{ENV}={raw!r} is not a positive number of threads",
                hint=f"set {ENV} to 1, 2, ... or 'auto' for torch's default",
            )
        return n
    n_cores = os.cpu_count() if cores is None else cores
    return 1 if (n_cores or 1) <= SMALL_MACHINE else None


def apply_threads(n: int | None) -> None:
    """Use `n` threads in this process (None: leave torch's default)."""
    if n is None:
        return
    os.environ.setdefault("OMP_NUM_THREADS", str(n))
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(n)
