"""Shape, Size, ConstantOfShape, Range, EyeLike: outputs known at conversion time.

The loader folds most of these before lowering, so besides end-to-end conversions the
mappers are also exercised on the unfolded graph (``_lower_unfolded``: real lowering, real
flatbuffer writer, real LiteRT run, skipping only the loader's constant folding).
"""
import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper

from onnx2tflite import UnsupportedModelError
from onnx2tflite.converter import lower, tflite_io
from onnx2tflite.validate.compare import ort_session, run_tflite
from op_harness import check, graph_model, random_feeds, single_node

F, I64 = np.float32, np.int64


def _lower_unfolded(model):
    """Lower without the loader's folding; assert LiteRT matches onnxruntime exactly."""
    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    data = tflite_io.graph_to_bytes(lower.lower(ir.from_proto(inferred), "test"))
    feeds = random_feeds(model)
    sess = ort_session(model)
    names = [o.name for o in sess.get_outputs()]
    got = run_tflite(data, feeds)
    for name, ref in zip(names, sess.run(names, feeds)):
        assert got[name].dtype == ref.dtype and got[name].shape == ref.shape, name
        np.testing.assert_array_equal(got[name], ref)


@pytest.mark.parametrize("start, end", [(0, None), (1, None), (-2, None), (0, -1), (1, 3), (-10, 10), (3, 1)])
def test_shape(start, end):
    attrs = {"start": start} if start else {}
    if end is not None:
        attrs["end"] = end
    dims = [1, 3, 4, 8][slice(start, end)]
    if dims:  # LiteRT cannot hand back a zero-size output tensor
        _lower_unfolded(single_node("Shape", {"x": ([1, 3, 4, 8], F)}, {"y": ([len(dims)], I64)}, opset=15, **attrs))
    # end to end: z reshaped to the (sliced) shape of x
    nodes = [helper.make_node("Shape", ["x"], ["s"], **attrs), helper.make_node("Reshape", ["z", "s"], ["y"])]
    n = int(np.prod(dims))
    check(graph_model(nodes, {"x": ([1, 3, 4, 8], F), "z": ([n], F)}, {"y": (dims, F)}, opset=15))


def test_size():
    _lower_unfolded(single_node("Size", {"x": ([2, 3, 4], F)}, {"y": ([], I64)}))
    nodes = [helper.make_node("Size", ["x"], ["n"]), helper.make_node("Unsqueeze", ["n", "ax"], ["s"]),
             helper.make_node("Reshape", ["z", "s"], ["y"])]
    check(graph_model(nodes, {"x": ([2, 3, 4], F), "z": ([4, 6], F)}, {"y": ([24], F)}, {"ax": np.array([0], I64)}))


@pytest.mark.parametrize("value", [None, helper.make_tensor("v", TensorProto.FLOAT, [1], [2.5]),
                                   helper.make_tensor("v", TensorProto.INT64, [1], [7])])
def test_constant_of_shape(value):
    dtype = F if value is None or value.data_type == TensorProto.FLOAT else I64
    attrs = {} if value is None else {"value": value}
    node = helper.make_node("ConstantOfShape", ["s"], ["c"], **attrs)
    add = helper.make_node("Add", ["x", "c"], ["y"])
    model = graph_model([node, add], {"x": ([2, 3], dtype)}, {"y": ([2, 3], dtype)}, {"s": np.array([2, 3], I64)})
    _lower_unfolded(model)
    check(model)


@pytest.mark.parametrize("start, limit, delta", [(0, 5, 1), (10, 1, -3), (5, 0, -2), (0.5, 3.0, 0.75)])
def test_range(start, limit, delta):
    dtype = F if isinstance(start, float) else I64
    n = max(int(np.ceil((limit - start) / delta)), 0)
    node = helper.make_node("Range", ["a", "b", "c"], ["r"])
    add = helper.make_node("Add", ["x", "r"], ["y"])
    inits = {k: np.array(v, dtype) for k, v in zip("abc", (start, limit, delta))}
    model = graph_model([node, add], {"x": ([n], dtype)}, {"y": ([n], dtype)}, inits, opset=11)
    _lower_unfolded(model)
    check(model)


@pytest.mark.parametrize("shape, k, dtype", [([3, 3], 0, None), ([3, 5], 1, None), ([4, 2], -1, TensorProto.INT64)])
def test_eye_like(shape, k, dtype):
    attrs = {"k": k} if dtype is None else {"k": k, "dtype": dtype}
    out = I64 if dtype is not None else F
    model = single_node("EyeLike", {"x": (shape, F)}, {"y": (shape, out)}, opset=9, **attrs)
    _lower_unfolded(model)
    check(model)


def test_flatten_as_exported_has_no_shape_ops():
    """x.view(x.size(0), -1) as exporters write it: Shape -> Gather -> Unsqueeze -> Concat -> Reshape."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "ax"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus_one"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y"]),
    ]
    inits = {"zero": np.array(0, I64), "ax": np.array([0], I64), "minus_one": np.array([-1], I64)}
    model = graph_model(nodes, {"x": ([2, 3, 4, 8], F)}, {"y": ([2, 96], F)}, inits, opset=13)
    for keep in (False, True):
        ops = check(model, keep_nchw_io=keep).summary["op_counts"]
        assert "SHAPE" not in ops and "GATHER" not in ops, ops


@pytest.mark.parametrize("op, which", [("ConstantOfShape", "input"), ("Range", "limit")])
def test_runtime_input_unsupported(op, which):
    if op == "ConstantOfShape":
        node = helper.make_node(op, ["s"], ["y"], name="dyn_op")
        model = graph_model([node], {"s": ([2], I64)}, {"y": ([None, None], F)})
    else:
        node = helper.make_node(op, ["a", "n", "d"], ["y"], name="dyn_op")
        model = graph_model([node], {"n": ([], I64)}, {"y": ([None], I64)},
                            {"a": np.array(0, I64), "d": np.array(1, I64)}, opset=11)
    with pytest.raises(UnsupportedModelError, match=f"dyn_op.*'{which}' must be a constant"):
        check(model)
