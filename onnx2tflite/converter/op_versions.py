"""OperatorCode.version per node: the TFLite runtime resolves kernels by (op, version).

Float kernels are registered from version 1. Quantized kernels need the version in which
the runtime added them; the quantizer records them in ``node.meta["version"]`` and a model
read from a file keeps the version it was written with.
"""
from __future__ import annotations

import onnx_ir as ir


# Float kernels first registered after version 1.
_MIN_FLOAT_VERSION = {"BROADCAST_TO": 2}


def version_for(node: ir.Node) -> int:
    return int(node.meta.get("version", _MIN_FLOAT_VERSION.get(node.op_type, 1)))
