"""Activations: one function per ONNX op."""
from __future__ import annotations

from onnx2tflite.op_mappers.registry import mapper


@mapper("Relu", since=1)
def relu(ctx, x):
    return ctx.RELU(x)
