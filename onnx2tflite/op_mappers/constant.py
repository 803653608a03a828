"""Ops whose output is known at conversion time on static shapes: emitted as constants.

The loader normally folds these already; the mappers cover what folding leaves behind
(e.g. EyeLike of a run-time input, or a Shape the folder skipped).
"""
from __future__ import annotations

import numpy as np
from onnx import helper

from onnx2tflite.converter.context import const_array, static_shape
from onnx2tflite.errors import Unsupported
from onnx2tflite.op_mappers.registry import mapper
from onnx2tflite.op_mappers.shape import const_ints


def _const_input(value, what: str) -> np.ndarray:
    arr = const_array(value)
    if arr is None:
        raise Unsupported(f"input '{what}' must be a constant (it is computed at run time)")
    return arr


@mapper("Shape", since=1)
def shape(ctx, x, *, start=0, end=None):
    return ctx.const(np.array(static_shape(x)[start:end], dtype=np.int64))


@mapper("Size", since=1)
def size(ctx, x):
    return ctx.const(np.array(int(np.prod(static_shape(x))), dtype=np.int64))


@mapper("ConstantOfShape", since=9)
def constant_of_shape(ctx, shape, *, value=None):
    dims = const_ints(shape, "input")
    fill = np.zeros(1, np.float32) if value is None else np.asarray(value).reshape(-1)
    return ctx.const(np.full(dims, fill[0], dtype=fill.dtype))


@mapper("Range", since=11)
def range_(ctx, start, limit, delta):
    start, limit, delta = (_const_input(v, n).reshape(()) for v, n in
                           ((start, "start"), (limit, "limit"), (delta, "delta")))
    if delta == 0:
        raise Unsupported("input 'delta' is 0")
    n = max(int(np.ceil((float(limit) - float(start)) / float(delta))), 0)
    return ctx.const((start + np.arange(n, dtype=start.dtype) * delta).astype(start.dtype))


@mapper("EyeLike", since=9)
def eye_like(ctx, x, *, dtype=None, k=0):
    shape = static_shape(x)
    if len(shape) != 2:
        raise Unsupported(f"input must be 2-D, has shape {list(shape)}")
    rows, cols = shape
    np_dtype = x.dtype.numpy() if dtype is None else helper.tensor_dtype_to_np_dtype(dtype)
    return ctx.const(np.eye(rows, cols, k, dtype=np_dtype))
