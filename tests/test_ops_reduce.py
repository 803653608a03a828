"""Reduce* (attribute and input forms) and ArgMax/ArgMin vs onnxruntime."""
import numpy as np
import pytest
from onnx import helper

from onnx2tflite import UnsupportedModelError, convert
from op_harness import check, graph_model, single_node

F32 = np.float32
RNG = np.random.default_rng(5)
SHAPE = (2, 3, 4, 5)

# op -> (opset where axes became an input, input value range)
REDUCE = {"ReduceMean": (18, (-2, 2)), "ReduceSum": (13, (-2, 2)), "ReduceMax": (18, (-2, 2)),
          "ReduceMin": (18, (-2, 2)), "ReduceProd": (18, (0.5, 1.5)), "ReduceL1": (18, (-2, 2)),
          "ReduceL2": (18, (-2, 2)), "ReduceSumSquare": (18, (-2, 2)), "ReduceLogSum": (18, (0.1, 2)),
          "ReduceLogSumExp": (18, (-2, 2))}
AXES = [None, [1], [-1], [0, 2], [-3, -1], [1, 2, 3]]


def _out_shape(axes, keepdims, shape=SHAPE):
    axes = range(len(shape)) if not axes else [a % len(shape) for a in axes]
    return [1 if i in axes else d for i, d in enumerate(shape) if keepdims or i not in axes]


def _model(op, axes, keepdims, opset, noop=None, shape=SHAPE):
    out = {"y": (_out_shape(axes, keepdims, shape) if not (noop and not axes) else list(shape), F32)}
    attrs = {"keepdims": keepdims}
    if noop is not None:
        attrs["noop_with_empty_axes"] = noop
    if opset >= REDUCE[op][0]:
        inits = {} if axes is None else {"axes": np.asarray(axes, np.int64)}
        node = helper.make_node(op, ["x"] + list(inits), ["y"], **attrs)
        return graph_model([node], {"x": (list(shape), F32)}, out, inits, opset)
    if axes is not None:
        attrs["axes"] = axes
    return single_node(op, {"x": (list(shape), F32)}, out, opset=opset, **attrs)


def _feeds(op, shape=SHAPE):
    lo, hi = REDUCE[op][1]
    return {"x": RNG.uniform(lo, hi, shape).astype(F32)}


@pytest.mark.parametrize("op", list(REDUCE))
@pytest.mark.parametrize("axes", AXES)
@pytest.mark.parametrize("keepdims", [1, 0])
@pytest.mark.parametrize("form", ["attribute", "input"])
def test_reduce(op, axes, keepdims, form):
    since = REDUCE[op][0]
    opset = since - 1 if form == "attribute" else since
    check(_model(op, axes, keepdims, opset), feeds=_feeds(op))


@pytest.mark.parametrize("op", ["ReduceMean", "ReduceSum", "ReduceMax"])
@pytest.mark.parametrize("noop", [0, 1])
def test_reduce_empty_axes_noop(op, noop):
    opset = REDUCE[op][0]
    check(_model(op, None, 1, opset, noop=noop), feeds=_feeds(op))
    node = helper.make_node(op, ["x", "axes"], ["y"], keepdims=0, noop_with_empty_axes=noop)  # explicit []
    out = list(SHAPE) if noop else []
    model = graph_model([node], {"x": (list(SHAPE), F32)}, {"y": (out, F32)}, {"axes": np.zeros(0, np.int64)},
                        opset)
    check(model, feeds=_feeds(op))


@pytest.mark.parametrize("opset", [1, 11, 13])
def test_reduce_mean_old_opsets_4d_layouts(opset):
    model = _model("ReduceMean", [2, 3], 1, opset, shape=(1, 3, 8, 8))
    check(model, feeds=_feeds("ReduceMean", (1, 3, 8, 8)))
    check(model, feeds=_feeds("ReduceMean", (1, 3, 8, 8)), keep_nchw_io=True)


def test_reduce_log_sum_exp_large_inputs():
    check(_model("ReduceLogSumExp", [1], 0, 18), feeds={"x": RNG.uniform(50, 80, SHAPE).astype(F32)})


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMax", "ReduceMin"])
def test_reduce_integer(op, dtype):
    model = single_node(op, {"x": ([2, 6], dtype)}, {"y": ([2], dtype)}, opset=11, axes=[1], keepdims=0)
    check(model)


def test_reduce_runtime_axes_unsupported():
    model = single_node("ReduceSum", {"x": ([2, 6], F32), "axes": ([1], np.int64)}, {"y": ([2, 1], F32)},
                        opset=13)
    model.graph.node[0].name = "dyn_axes"
    with pytest.raises(UnsupportedModelError, match="dyn_axes.*axes computed at run time"):
        convert(model, validate=False)


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("axis", [0, 1, -1, -3])
@pytest.mark.parametrize("keepdims", [1, 0])
def test_arg(op, axis, keepdims):
    shape = (2, 3, 4, 5)
    model = single_node(op, {"x": (list(shape), F32)}, {"y": (_out_shape([axis], keepdims, shape), np.int64)},
                        opset=13, axis=axis, keepdims=keepdims)
    check(model)


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("select_last_index", [0, 1])
@pytest.mark.parametrize("dtype", [F32, np.int32])
def test_arg_ties(op, select_last_index, dtype):
    x = RNG.integers(0, 3, (3, 6)).astype(dtype)  # many ties
    model = single_node(op, {"x": ([3, 6], dtype)}, {"y": ([3, 1], np.int64)}, opset=12, axis=1,
                        select_last_index=select_last_index)
    check(model, feeds={"x": x})


@pytest.mark.parametrize("opset", [1, 11])
def test_arg_default_axis_old_opsets(opset):
    model = single_node("ArgMax", {"x": ([4, 3], F32)}, {"y": ([1, 3], np.int64)}, opset=opset)
    check(model)


def test_arg_int64_input_unsupported():
    model = single_node("ArgMax", {"x": ([3, 6], np.int64)}, {"y": ([3, 1], np.int64)}, opset=13, axis=1)
    with pytest.raises(UnsupportedModelError, match="ARG_MAX on int64"):
        convert(model, validate=False)


@pytest.mark.parametrize("op", ["ReduceMax", "ReduceMin"])
@pytest.mark.parametrize("keepdims", [0, 1])
def test_reduce_bool_opset20(op, keepdims):
    node = helper.make_node(op, ["x", "axes"], ["y"], keepdims=keepdims)
    model = graph_model([node], {"x": ([3, 4], np.bool_)}, {"y": ([3, 1] if keepdims else [3], np.bool_)},
                        {"axes": np.array([1], np.int64)}, opset=20)
    x = np.array([[1, 1, 1, 1], [0, 0, 0, 0], [0, 1, 0, 0]], bool)
    check(model, feeds={"x": x})
