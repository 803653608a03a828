"""DepthToSpace (DCR, CRD) and SpaceToDepth of 4-D NCHW tensors."""
from __future__ import annotations

from onnx2tflite.converter.context import static_shape
from onnx2tflite.errors import Unsupported
from onnx2tflite.op_mappers.padding import as_str
from onnx2tflite.op_mappers.registry import mapper


def _shape4(x, op: str, blocksize):
    shape = static_shape(x)
    if len(shape) != 4:
        raise Unsupported(f"{op} of a rank-{len(shape)} tensor: only 4-D NCHW is supported")
    if blocksize is None or int(blocksize) < 1:
        raise Unsupported(f"{op} blocksize={blocksize}")
    return shape, int(blocksize)


@mapper("DepthToSpace", since=1)
def depth_to_space(ctx, x, *, blocksize=None, mode="DCR"):
    (n, c, h, w), b = _shape4(x, "DepthToSpace", blocksize)
    mode = as_str(mode)
    if c % (b * b):
        raise Unsupported(f"DepthToSpace: {c} channels are not divisible by blocksize^2 = {b * b}")
    co = c // (b * b)
    xt = ctx.to_channels_last(x)
    if mode == "DCR":  # TFLite's channel order: (block row, block column, channel)
        y = ctx.DEPTH_TO_SPACE(xt, shape=[n, h * b, w * b, co], blockSize=b)
    elif mode == "CRD":  # channel order (channel, block row, block column)
        y = ctx.reshape(xt, [n, h, w, co, b, b])
        y = ctx.transpose(y, [0, 1, 4, 2, 5, 3])
        y = ctx.reshape(y, [n, h * b, w * b, co])
    else:
        raise Unsupported(f"DepthToSpace mode={mode!r}")
    return ctx.to_channels_first(y)


@mapper("SpaceToDepth", since=1)
def space_to_depth(ctx, x, *, blocksize=None):
    (n, c, h, w), b = _shape4(x, "SpaceToDepth", blocksize)
    if h % b or w % b:
        raise Unsupported(f"SpaceToDepth: spatial size {h}x{w} is not divisible by blocksize {b}")
    y = ctx.SPACE_TO_DEPTH(ctx.to_channels_last(x), shape=[n, h // b, w // b, c * b * b], blockSize=b)
    return ctx.to_channels_first(y)
