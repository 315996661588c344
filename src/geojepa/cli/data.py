"""Data verbs: ``ingest``, ``info``, ``readings`` (DESIGN §6)."""

from __future__ import annotations
