"""Verbs of group export (DESIGN §6); each is a thin layer over the library."""

from __future__ import annotations
