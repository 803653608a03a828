"""Normalizations. TFLite has no layer/instance/group-norm builtin: they are decomposed into
MEAN / SUB / MUL / ADD / RSQRT (all XNNPACK ops); BatchNormalization folds into MUL + ADD."""
from __future__ import annotations

import numpy as np
import onnx_ir as ir

from onnx2tflite.converter.context import const_array, static_shape
from onnx2tflite.errors import Unsupported
from onnx2tflite.op_mappers.elementwise import binary, require_float, scalar
from onnx2tflite.op_mappers.registry import mapper


def _mean(ctx, x, axes: list[int]) -> ir.Value:
    shape = [1 if i in axes else d for i, d in enumerate(static_shape(x))]
    return ctx.MEAN(x, ctx.i32(axes), shape=shape, keepDims=True)


def normalize(ctx, x, axes: list[int], epsilon: float):
    """(x - mean) / sqrt(var + eps) over ``axes``; returns (y, mean, 1/sqrt(var + eps)), kept dims."""
    require_float(x, "normalization")
    mean = _mean(ctx, x, axes)
    d = ctx.SUB(x, mean)
    inv_std = ctx.RSQRT(ctx.ADD(_mean(ctx, ctx.MUL(d, d), axes), scalar(ctx, epsilon, x)))
    return ctx.MUL(d, inv_std), mean, inv_std


def _affine(ctx, y, scale, bias, shape: tuple[int, ...] | None = None) -> ir.Value:
    """y * scale + bias; constant operands reshaped to ``shape`` when given (per-channel [C,1,1]),
    identity scale / zero bias skipped."""
    for op, v, neutral in (("MUL", scale, 1.0), ("ADD", bias, 0.0)):
        if v is None:
            continue
        arr = const_array(v)
        if arr is not None:
            if np.all(arr == neutral):
                continue
            v = ctx.const(arr.reshape(shape) if shape is not None else arr)
        elif shape is not None:
            v = ctx.reshape(v, shape)
        y = binary(ctx, op, y, v)
    return y


def _channel_shape(x) -> tuple[int, ...]:
    """[C, 1, ..., 1]: a per-channel constant broadcasting over NC... data."""
    shape = static_shape(x)
    if len(shape) < 2:
        raise Unsupported(f"input of rank {len(shape)}; need [N, C, ...]")
    return (shape[1],) + (1,) * (len(shape) - 2)


@mapper("LayerNormalization", since=17)
def layer_normalization(ctx, x, scale, bias=None, *, axis=-1, epsilon=1e-5, stash_type=1):
    rank = len(static_shape(x))
    if not -rank <= axis < rank:
        raise Unsupported(f"axis={axis} out of range for rank {rank}")
    y, mean, inv_std = normalize(ctx, x, list(range(axis % rank, rank)), epsilon)
    return [_affine(ctx, y, scale, bias), mean, inv_std]


@mapper("BatchNormalization", since=7)
def batch_normalization(ctx, x, scale, bias, mean, var, *, epsilon=1e-5, momentum=0.9, spatial=1,
                        training_mode=0):
    """Inference: y = x * s + (bias - mean * s), s = scale / sqrt(var + eps), folded per channel."""
    if training_mode:
        raise Unsupported("BatchNormalization training_mode=1 (batch statistics at run time)")
    if not spatial:
        raise Unsupported("BatchNormalization spatial=0")
    require_float(x, "BatchNormalization")
    arrays = [const_array(v) for v in (scale, bias, mean, var)]
    if any(a is None for a in arrays):
        raise Unsupported("BatchNormalization with non-constant scale/B/mean/var")
    s, b, m, v = (a.astype(np.float64) for a in arrays)
    mul = s / np.sqrt(v + epsilon)
    add = b - m * mul
    shape = _channel_shape(x)
    y = binary(ctx, "MUL", x, ctx.const(mul.astype(np.float32).reshape(shape)))
    return binary(ctx, "ADD", y, ctx.const(add.astype(np.float32).reshape(shape)))


@mapper("InstanceNormalization", since=6)
def instance_normalization(ctx, x, scale, bias, *, epsilon=1e-5):
    shape = _channel_shape(x)
    y, _, _ = normalize(ctx, x, list(range(2, len(static_shape(x)))), epsilon)
    return _affine(ctx, y, scale, bias, shape)


def _group_norm(ctx, x, scale, bias, num_groups: int, epsilon: float, per_group_affine: bool):
    shape = static_shape(x)
    c = _channel_shape(x)[0]
    if num_groups <= 0 or c % num_groups:
        raise Unsupported(f"num_groups={num_groups} does not divide the {c} channels")
    grouped = ctx.reshape(x, [shape[0], num_groups, int(np.prod(shape[1:])) // num_groups])
    y = ctx.reshape(normalize(ctx, grouped, [2], epsilon)[0], shape)
    if per_group_affine:  # opset 18: scale/bias per group -> repeat per channel
        scale, bias = (_repeat_groups(ctx, v, c // num_groups) for v in (scale, bias))
    return _affine(ctx, y, scale, bias, _channel_shape(x))


def _repeat_groups(ctx, v, k: int):
    arr = const_array(v)
    if arr is None:
        raise Unsupported("GroupNormalization-18 with non-constant per-group scale/bias")
    return ctx.const(np.repeat(arr, k))


@mapper("GroupNormalization", since=18)
def group_normalization_18(ctx, x, scale, bias, *, num_groups, epsilon=1e-5):
    return _group_norm(ctx, x, scale, bias, num_groups, epsilon, per_group_affine=True)


@mapper("GroupNormalization", since=21)
def group_normalization_21(ctx, x, scale, bias, *, num_groups, epsilon=1e-5, stash_type=1):
    return _group_norm(ctx, x, scale, bias, num_groups, epsilon, per_group_affine=False)


@mapper("LpNormalization", since=1)
def lp_normalization(ctx, x, *, axis=-1, p=2):
    """x / ||x||_p along ``axis`` as SUM + RSQRT + MUL (p=2) or SUM|x| + DIV (p=1).

    Not L2_NORMALIZATION: XNNPACK has no kernel for it, these ops all run in the delegate.
    The norm is floored at the smallest normal float so an all-zero slice gives 0 (as
    onnxruntime does) instead of 0 * inf."""
    require_float(x, "LpNormalization")
    shape = static_shape(x)
    rank = len(shape)
    if not -rank <= axis < rank:
        raise Unsupported(f"axis={axis} out of range for rank {rank}")
    if p not in (1, 2):
        raise Unsupported(f"LpNormalization p={p} (ONNX allows 1 or 2)")
    axis %= rank
    kept = [1 if i == axis else d for i, d in enumerate(shape)]
    tiny = scalar(ctx, np.finfo(np.float32).tiny, x)
    if p == 2:
        sq = ctx.SUM(ctx.MUL(x, x), ctx.i32([axis]), shape=kept, keepDims=True)
        return ctx.MUL(x, ctx.RSQRT(ctx.MAXIMUM(sq, tiny)))
    norm = ctx.SUM(ctx.ABS(x), ctx.i32([axis]), shape=kept, keepDims=True)
    return ctx.DIV(x, ctx.MAXIMUM(norm, tiny))
