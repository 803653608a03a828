"""Pattern fusions on the ONNX graph (BatchNorm into Conv, HardSwish, GELU)."""
from __future__ import annotations

import onnx_ir as ir


def run_all(graph: ir.Graph) -> None:
    return None
