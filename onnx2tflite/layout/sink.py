"""Transpose sinking (placeholder)."""
from __future__ import annotations


def optimize_layout(graph) -> None:
    return None
