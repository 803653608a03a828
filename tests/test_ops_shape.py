"""Reshape, Flatten, Squeeze, Unsqueeze, Transpose against onnxruntime."""
import numpy as np
import pytest
from onnx import helper

from onnx2tflite import UnsupportedModelError
from op_harness import check, graph_model, single_node

F, I64 = np.float32, np.int64
X4 = [1, 3, 4, 8]


def _out(shape, dtype=F):
    return {"y": (shape, dtype)}


@pytest.mark.parametrize("target, out, allowzero", [
    ([1, 12, 8], [1, 12, 8], 0),
    ([0, -1], [1, 96], 0),
    ([-1, 4, 0], [24, 4, 1], 0),     # 0 copies the input dim at that position
    ([2, 0, 2, 8], [2, 3, 2, 8], 0),
    ([1, 3, 32], [1, 3, 32], 1),
    ([96], [96], 0),
])
def test_reshape(target, out, allowzero):
    model = single_node("Reshape", {"x": (X4, F)}, _out(out), {"s": np.array(target, I64)},
                        opset=14, allowzero=allowzero)
    check(model)


@pytest.mark.parametrize("keep", [False, True])
def test_reshape_4d_to_4d_both_layouts(keep):
    model = single_node("Reshape", {"x": (X4, F)}, _out([1, 6, 2, 8]), {"s": np.array([1, 6, 2, 8], I64)}, opset=5)
    check(model, keep_nchw_io=keep)


def test_reshape_int64_data():
    model = single_node("Reshape", {"x": ([2, 3, 4], I64)}, _out([6, 4], I64), {"s": np.array([-1, 4], I64)})
    check(model)


@pytest.mark.parametrize("axis", [0, 1, 2, 3, 4, -1, -4])
def test_flatten(axis):
    k = axis % 5 if axis >= 0 else axis + 4
    out = [int(np.prod(X4[:k])), int(np.prod(X4[k:]))]
    check(single_node("Flatten", {"x": (X4, F)}, _out(out), axis=axis, opset=13))


@pytest.mark.parametrize("opset", [11, 13])
@pytest.mark.parametrize("axes, out", [(None, [3, 8]), ([0], [3, 1, 8]), ([-2, 0], [3, 8])])
def test_squeeze(opset, axes, out):
    inputs = {"x": ([1, 3, 1, 8], F)}
    if axes is None:
        model = single_node("Squeeze", inputs, _out(out), opset=opset)
    elif opset >= 13:
        model = single_node("Squeeze", inputs, _out(out), {"a": np.array(axes, I64)}, opset=opset)
    else:
        model = single_node("Squeeze", inputs, _out(out), opset=opset, axes=axes)
    check(model)


@pytest.mark.parametrize("opset", [11, 13])
@pytest.mark.parametrize("axes, out", [([0], [1, 3, 8]), ([-1], [3, 8, 1]), ([1, -1], [3, 1, 8, 1]),
                                       ([0, 2], [1, 3, 1, 8])])
def test_unsqueeze(opset, axes, out):
    inputs = {"x": ([3, 8], F)}
    if opset >= 13:
        model = single_node("Unsqueeze", inputs, _out(out), {"a": np.array(axes, I64)}, opset=opset)
    else:
        model = single_node("Unsqueeze", inputs, _out(out), opset=opset, axes=axes)
    check(model, keep_nchw_io=len(out) == 4)


@pytest.mark.parametrize("perm", [None, [0, 2, 3, 1], [0, 3, 1, 2], [1, 0, 3, 2]])
@pytest.mark.parametrize("keep", [False, True])
def test_transpose_4d(perm, keep):
    shape = list(reversed(X4)) if perm is None else [X4[p] for p in perm]
    attrs = {} if perm is None else {"perm": perm}
    check(single_node("Transpose", {"x": (X4, F)}, _out(shape), **attrs), keep_nchw_io=keep)


def test_transpose_3d_int64():
    check(single_node("Transpose", {"x": ([2, 3, 4], I64)}, _out([4, 2, 3], I64), perm=[2, 0, 1]))


def test_squeeze_unsqueeze_chain_is_one_reshape():
    nodes = [helper.make_node("Unsqueeze", ["x", "a"], ["u"]), helper.make_node("Squeeze", ["u", "a"], ["y"])]
    model = graph_model(nodes, {"x": ([3, 8], F)}, _out([3, 8]), {"a": np.array([1], I64)}, opset=13)
    result = check(model)
    assert set(result.summary["op_counts"]) <= {"RESHAPE"}


def test_reshape_runtime_shape_unsupported():
    node = helper.make_node("Reshape", ["x", "s"], ["y"], name="dyn_reshape")
    model = graph_model([node], {"x": ([2, 6], F), "s": ([2], I64)}, {"y": ([None, None], F)})
    with pytest.raises(UnsupportedModelError, match="dyn_reshape.*'shape' must be a constant"):
        check(model)
