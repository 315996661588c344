"""The `demo` verb: the whole pipeline on a simulated site, ending in a report."""

from __future__ import annotations
