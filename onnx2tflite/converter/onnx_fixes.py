"""ONNX-level rewrites applied before lowering (placeholder: filled by fusions below)."""
from __future__ import annotations

import onnx_ir as ir


def apply_fixes(model: ir.Model) -> None:
    from onnx2tflite.converter import onnx_fusions

    onnx_fusions.run_all(model.graph)
