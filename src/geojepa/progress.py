"""Progress display for long work.

Guarantees: a bar on an interactive terminal (log lines where rich is not installed, as
on a gateway), periodic log lines otherwise (CI, files), and nothing at all when
disabled. Library code calls `track` or `Progress`; it never prints. Work deep inside the
library (an energy sweep over a whole site, say) asks with ``enabled=None``: it is shown
only inside `shown()`, which a command wraps around what it runs, so the same function
called a thousand times by a benchmark stays quiet.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger("geojepa.progress")

_SHOWN: ContextVar[bool] = ContextVar("geojepa_progress_shown", default=False)


@contextmanager
def shown(enabled: bool = True) -> Iterator[None]:
    """Inside, a `Progress` made with ``enabled=None`` is shown (a command's long work)."""
    token = _SHOWN.set(enabled)
    try:
        yield
    finally:
        _SHOWN.reset(token)


class Progress:
    """A counter that reports `done/total` with a rate.

    Shows a rich bar when stderr is a terminal, else logs at most every
    `log_every` seconds at INFO level.
    """

    def __init__(
        self,
        description: str,
        total: int | None,
        *,
        enabled: bool | None = True,
        log_every: float = 10.0,
    ) -> None:
        self.description = description
        self.total = total
        self.enabled = _SHOWN.get() if enabled is None else enabled
        self.log_every = log_every
        self.done = 0
        self._start = time.perf_counter()
        self._last_log = self._start
        self._bar: object | None = None
        self._task: object | None = None
        self.postfix = ""
        if self.enabled and sys.stderr.isatty():
            try:
                from rich.progress import (
                    BarColumn,
                    MofNCompleteColumn,
                    TextColumn,
                    TimeElapsedColumn,
                    TimeRemainingColumn,
                )
                from rich.progress import Progress as RichProgress
            except ImportError:  # a gateway without rich: the log lines instead
                return

            bar = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[postfix]}"),
                transient=False,
            )
            bar.start()
            self._task = bar.add_task(description, total=total, postfix="")
            self._bar = bar

    def advance(self, n: int = 1, postfix: str | None = None) -> None:
        self.done += n
        if postfix is not None:
            self.postfix = postfix
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(self._task, advance=n, postfix=self.postfix)  # type: ignore[attr-defined]
            return
        now = time.perf_counter()
        if now - self._last_log >= self.log_every or (self.total and self.done >= self.total):
            self._last_log = now
            rate = self.done / max(now - self._start, 1e-9)
            total = f"/{self.total}" if self.total else ""
            log.info("%s: %d%s (%.1f/s) %s", self.description, self.done, total, rate, self.postfix)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()  # type: ignore[attr-defined]
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def track(
    items: Iterable[T], description: str, total: int | None = None, *, enabled: bool = True
) -> Iterator[T]:
    """Iterate over `items`, showing progress."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with Progress(description, total, enabled=enabled) as p:
        for item in items:
            yield item
            p.advance()
