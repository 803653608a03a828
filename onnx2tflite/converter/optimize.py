"""Graph clean-up after layout: activation fusion, dead code, duplicate constants (placeholder)."""
from __future__ import annotations

from onnx2tflite.converter.graph_edit import remove_dead


def optimize(graph) -> None:
    remove_dead(graph)
