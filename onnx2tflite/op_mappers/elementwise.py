"""Elementwise arithmetic with numpy broadcasting: one function per ONNX op."""
from __future__ import annotations

from onnx2tflite.op_mappers.registry import mapper


@mapper("Add", since=7)
def add(ctx, a, b):
    return ctx.ADD(a, b)
