"""Mappers for the ops the ONNX-level fusions create (domain ``onnx2tflite``)."""
from __future__ import annotations

from onnx2tflite.converter.onnx_fusions import FUSED_DOMAIN
from onnx2tflite.op_mappers.registry import mapper


@mapper("Gelu", domain=FUSED_DOMAIN)
def fused_gelu(ctx, x, *, approximate=0):
    return ctx.GELU(x, approximate=bool(approximate))


@mapper("HardSwish", domain=FUSED_DOMAIN)
def fused_hardswish(ctx, x):
    return ctx.HARD_SWISH(x)
