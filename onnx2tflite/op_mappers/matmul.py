"""MatMul and Gemm: FULLY_CONNECTED for a constant weight, BATCH_MATMUL otherwise."""
from __future__ import annotations

import numpy as np

from onnx2tflite.converter.context import broadcast_shape, const_array, static_shape
from onnx2tflite.errors import Unsupported
from onnx2tflite.op_mappers.elementwise import binary, scalar
from onnx2tflite.op_mappers.registry import mapper


def _require_float(*values) -> None:
    for v in values:
        if v is not None and v.dtype.name != "FLOAT":
            raise Unsupported(f"matrix product on {v.dtype.name} (float32 only)")


def _fully_connected(ctx, x, weight_nk: np.ndarray, bias: np.ndarray | None = None):
    """x[..., K] @ weight_nk.T (+ bias) -> [..., N]; the weight is [N, K] as TFLite wants it."""
    shape = static_shape(x)
    n = weight_nk.shape[0]
    inputs = [x, ctx.const(np.ascontiguousarray(weight_nk, dtype=np.float32))]
    if bias is not None:
        inputs.append(ctx.const(np.ascontiguousarray(bias, dtype=np.float32)))
    return ctx.emit("FULLY_CONNECTED", inputs, shape=[*shape[:-1], n], keepNumDims=True)


def _batch_matmul(ctx, a, b, adj_y: bool = False):
    """a[..., M, K] @ b[..., K, N] (b[..., N, K] when adj_y) with broadcast batch dims."""
    sa, sb = static_shape(a), static_shape(b)
    n = sb[-2] if adj_y else sb[-1]
    batch = broadcast_shape(sa[:-2], sb[:-2])
    return ctx.emit("BATCH_MATMUL", [a, b], shape=[*batch, sa[-2], n], adjX=False, adjY=adj_y)


@mapper("MatMul", since=1)
def matmul(ctx, a, b):
    _require_float(a, b)
    sa, sb = static_shape(a), static_shape(b)
    if len(sa) == 0 or len(sb) == 0:
        raise Unsupported("MatMul of a 0-d tensor")
    x = a if len(sa) > 1 else ctx.reshape(a, [1, sa[0]])  # 1-D operands: numpy matmul rules
    w = const_array(b)
    if w is not None and (w.ndim <= 2 or (len(sa) >= w.ndim and all(d == 1 for d in w.shape[:-2]))):
        w = w.reshape(w.shape[-2:] if w.ndim > 2 else (w.shape[0], -1))  # [K, N] (or [K, 1] for 1-D)
        y = _fully_connected(ctx, x, w.T)
    else:
        y = _batch_matmul(ctx, x, b if len(sb) > 1 else ctx.reshape(b, [sb[0], 1]))
    out = list(static_shape(y))
    if len(sb) == 1:
        out.pop(-1)
    if len(sa) == 1:
        out.pop(-1 if len(sb) == 1 else -2)
    return ctx.reshape(y, out)


@mapper("Gemm", since=7)
def gemm(ctx, a, b, c=None, *, alpha=1.0, beta=1.0, transA=0, transB=0):  # noqa: N803 (ONNX names)
    """alpha * A' @ B' + beta * C; a constant B (and C broadcastable to [N]) folds into one FC."""
    _require_float(a, b, c)
    x = ctx.transpose(a, [1, 0]) if transA else a
    w = const_array(b)
    cc = const_array(c)
    if w is not None:
        w_nk = (w if transB else w.T).astype(np.float64) * alpha
        n = w_nk.shape[0]
        bias = None
        if cc is not None and beta != 0 and cc.size in (1, n) and (cc.ndim < 2 or cc.shape[0] == 1):
            bias, c = np.broadcast_to(cc.reshape(-1).astype(np.float64) * beta, (n,)), None
        y = _fully_connected(ctx, x, w_nk, bias)
    else:
        y = _batch_matmul(ctx, x, b, adj_y=bool(transB))
        if alpha != 1:
            y = ctx.MUL(y, scalar(ctx, alpha, y))
    if c is None or beta == 0:
        return y
    if cc is not None:
        return binary(ctx, "ADD", y, ctx.const((cc.astype(np.float64) * beta).astype(np.float32)))
    return binary(ctx, "ADD", y, c if beta == 1 else binary(ctx, "MUL", c, scalar(ctx, beta, c)))
