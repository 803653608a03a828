"""What a mapper sees: the node being lowered and a builder that emits TFLite ops.

Mappers work in ONNX (NCHW) semantics. Every emitted value gets its shape and dtype
from the mapper (or from the simple rules here for elementwise ops): ONNX shape
inference knows nothing about TFLite ops.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import onnx_ir as ir

from onnx2tflite.converter.graph_edit import Editor, const_of
from onnx2tflite.converter.tflite_io import TFL_DOMAIN, tfl_type_name
from onnx2tflite.errors import Unsupported

NCHW_TO_NHWC = (0, 2, 3, 1)
NHWC_TO_NCHW = (0, 3, 1, 2)


def static_shape(value: ir.Value) -> tuple[int, ...]:
    """The value's shape as ints; Unsupported if any dimension is unknown."""
    if value.shape is None or not all(isinstance(d, int) for d in value.shape):
        raise Unsupported(f"tensor '{value.name}' needs a static shape, has {value.shape}; "
                          "fix dynamic input dimensions with --input-shape NAME:d0,d1,...")
    return tuple(int(d) for d in value.shape)


def broadcast_shape(*shapes: Sequence[int]) -> tuple[int, ...]:
    return tuple(np.broadcast_shapes(*[tuple(s) for s in shapes]))


const_array = const_of  # the numpy array of a constant value, or None if computed at run time


class Context:
    """Emits ``tfl`` nodes into ``graph`` on behalf of the mapper of ``node``."""

    def __init__(self, graph: ir.Graph, opset: int):
        self.graph = graph
        self.opset = opset
        self.node: ir.Node | None = None
        self.edit = Editor(graph)  # unique names and constants

    def _hint(self, what: str) -> str:
        base = self.node.name if self.node is not None and self.node.name else "tfl"
        return f"{base}/{what}"

    # -------------------------------------------------------------- ONNX side
    def out_shape(self, i: int = 0) -> tuple[int, ...]:
        """Static shape ONNX shape inference gave output ``i`` of the current node."""
        return static_shape(self.node.outputs[i])

    def out_dtype(self, i: int = 0) -> ir.DataType:
        return self.node.outputs[i].dtype

    # -------------------------------------------------------------- constants
    def const(self, array, dtype=None, name: str | None = None) -> ir.Value:
        arr = np.asarray(array, dtype=dtype)
        if arr.dtype == np.float64 and dtype is None:
            arr = arr.astype(np.float32)
        return self.edit.const(arr, name or self._hint("const"))

    def i32(self, values) -> ir.Value:
        return self.const(np.asarray(values, dtype=np.int32))

    # -------------------------------------------------------------- ops
    def emit(self, op: str, inputs: Sequence[ir.Value | None], *, shape=None, dtype=None,
             num_outputs: int = 1, shapes=None, dtypes=None, **options):
        """Append a TFLite op; returns its output value (or list when num_outputs > 1)."""
        if shapes is None:
            shapes = [shape] * num_outputs
        if dtypes is None:
            dtypes = [dtype] * num_outputs
        first = next(v for v in inputs if v is not None)
        outputs = []
        for i in range(num_outputs):
            s = shapes[i]
            if s is None:
                s = self._infer_elementwise(op, inputs)
            dt = dtypes[i] or first.dtype
            outputs.append(ir.Value(name=self.edit.unique(self._hint(op.lower())), shape=ir.Shape(list(s)),
                                    type=ir.TensorType(dt)))
        attrs = ir.convenience.convert_attributes({k: v for k, v in options.items() if v is not None})
        node = ir.Node(TFL_DOMAIN, op, list(inputs), attrs, outputs=outputs,
                       name=self.edit.unique(self._hint(op)))
        self.graph.append(node)
        return outputs[0] if num_outputs == 1 else outputs

    @staticmethod
    def _infer_elementwise(op: str, inputs) -> tuple[int, ...]:
        shapes = [static_shape(v) for v in inputs if v is not None]
        if not shapes:
            raise ValueError(f"{op}: cannot infer an output shape without inputs")
        return broadcast_shape(*shapes)

    def __getattr__(self, op: str):
        """``ctx.ADD(a, b, fusedActivationFunction="RELU")`` == ``ctx.emit("ADD", [a, b], ...)``."""
        if not op.isupper():
            raise AttributeError(op)
        return lambda *inputs, **kw: self.emit(op, list(inputs), **kw)

    # -------------------------------------------------------------- layout helpers
    def transpose(self, x: ir.Value, perm: Sequence[int]) -> ir.Value:
        perm = [int(p) for p in perm]
        if perm == list(range(len(perm))):
            return x
        shape = static_shape(x)
        return self.emit("TRANSPOSE", [x, self.i32(perm)], shape=[shape[p] for p in perm])

    def to_channels_last(self, x: ir.Value) -> ir.Value:
        """NC... -> N...C (any spatial rank)."""
        r = len(static_shape(x))
        return self.transpose(x, [0, *range(2, r), 1])

    def to_channels_first(self, x: ir.Value) -> ir.Value:
        """N...C -> NC... (any spatial rank)."""
        r = len(static_shape(x))
        return self.transpose(x, [0, r - 1, *range(1, r - 1)])

    def reshape(self, x: ir.Value, shape: Sequence[int]) -> ir.Value:
        shape = [int(s) for s in shape]
        if list(static_shape(x)) == shape:
            return x
        return self.emit("RESHAPE", [x, self.i32(shape)], shape=shape)

    def cast(self, x: ir.Value, dtype: ir.DataType) -> ir.Value:
        if x.dtype == dtype:
            return x
        return self.emit("CAST", [x], shape=static_shape(x), dtype=dtype,
                         inDataType=tfl_type_name(x.dtype), outDataType=tfl_type_name(dtype))
