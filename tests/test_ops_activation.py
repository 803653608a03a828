"""Activations and (Log)Softmax vs onnxruntime."""
import numpy as np
import pytest
from onnx import helper

from onnx2tflite import UnsupportedModelError, convert
from op_harness import check, single_node

F32 = np.float32
RNG = np.random.default_rng(1)
X4 = {"x": ([1, 3, 8, 8], F32)}
Y4 = {"y": ([1, 3, 8, 8], F32)}


def _feeds(shape=(1, 3, 8, 8), scale=4.0):
    return {"x": RNG.uniform(-scale, scale, shape).astype(F32)}


# (op, attrs, opset); inputs span both sides of every kink / threshold
CASES = [
    ("Relu", {}, 14), ("LeakyRelu", {}, 16), ("LeakyRelu", {"alpha": 0.2}, 6), ("Sigmoid", {}, 13),
    ("Tanh", {}, 13), ("HardSigmoid", {}, 6), ("HardSigmoid", {"alpha": 1 / 6, "beta": 0.5}, 6),
    ("HardSigmoid", {"alpha": 0.25, "beta": 0.4}, 6), ("HardSwish", {}, 14), ("Elu", {}, 6),
    ("Elu", {"alpha": 0.5}, 6), ("Selu", {}, 6), ("Selu", {"alpha": 1.5, "gamma": 2.0}, 6), ("Celu", {}, 12),
    ("Celu", {"alpha": 2.0}, 12), ("Softplus", {}, 1), ("Softsign", {}, 1), ("Mish", {}, 18),
    ("ThresholdedRelu", {}, 10), ("ThresholdedRelu", {"alpha": 0.3}, 10),
]


@pytest.mark.parametrize("op,attrs,opset", CASES, ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in CASES])
def test_activation(op, attrs, opset):
    model = single_node(op, X4, Y4, opset=opset, **attrs)
    check(model, feeds=_feeds())


def test_activation_keep_nchw_io_and_large_inputs():
    # Softplus must not overflow where exp(x) does
    model = single_node("Softplus", X4, Y4, opset=13)
    check(model, feeds=_feeds(scale=100.0), keep_nchw_io=True)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu(approximate):
    model = single_node("Gelu", X4, Y4, opset=20, approximate=approximate)
    check(model, feeds=_feeds())


@pytest.mark.parametrize("xs,slope", [((1, 3, 8, 8), (3, 1, 1)), ((1, 3, 8, 8), (1,)), ((2, 5), (5,)),
                                      ((2, 6, 4), (6, 1)), ((1, 2, 3, 4, 5), (2, 1, 1, 1))])
def test_prelu_constant_slope(xs, slope):
    s = RNG.uniform(-0.5, 0.5, slope).astype(F32)
    model = single_node("PRelu", {"x": (list(xs), F32)}, {"y": (list(xs), F32)}, {"s": s}, opset=16)
    check(model)


def test_prelu_runtime_slope():
    model = single_node("PRelu", {"x": ([1, 3, 4, 4], F32), "s": ([3, 1, 1], F32)}, {"y": ([1, 3, 4, 4], F32)},
                        opset=9)
    check(model, keep_nchw_io=True)


SOFTMAX_CASES = [  # (shape, axis or None for the default, opset)
    ((2, 3, 4, 5), None, 11), ((2, 3, 4, 5), 1, 11), ((2, 3, 4, 5), -1, 11), ((2, 3, 4, 5), 0, 11),
    ((2, 3, 4, 5), 2, 1), ((2, 3, 4, 5), None, 13), ((2, 3, 4, 5), 1, 13), ((2, 3, 4, 5), -3, 13),
    ((2, 3, 4, 5), 3, 13), ((6, 10), None, 13), ((6, 10), 0, 13), ((6, 10), None, 11), ((7,), None, 13),
]


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("shape,axis,opset", SOFTMAX_CASES)
def test_softmax(op, shape, axis, opset):
    attrs = {} if axis is None else {"axis": axis}
    model = single_node(op, {"x": (list(shape), F32)}, {"y": (list(shape), F32)}, opset=opset, **attrs)
    check(model, feeds=_feeds(shape, scale=5.0))


def test_softmax_channel_axis_nhwc_boundary():
    model = single_node("Softmax", X4, Y4, opset=13, axis=1)
    check(model, feeds=_feeds())
    check(model, feeds=_feeds(), keep_nchw_io=True)


def test_softmax_axis_out_of_range_unsupported():
    model = single_node("Softmax", X4, Y4, opset=13)
    model.graph.node[0].attribute.append(helper.make_attribute("axis", 4))
    model.graph.node[0].name = "bad_softmax"
    with pytest.raises(UnsupportedModelError, match="bad_softmax.*axis=4"):
        convert(model, validate=False)


@pytest.mark.parametrize("opset,axis", [(11, 1), (13, 1), (13, -1)])
def test_log_softmax_large_inputs(opset, axis):
    # exp(x) overflows float32 here; the max-shifted decomposition must not
    model = single_node("LogSoftmax", {"x": ([2, 3, 4], F32)}, {"y": ([2, 3, 4], F32)}, opset=opset, axis=axis)
    check(model, feeds={"x": RNG.uniform(80, 120, (2, 3, 4)).astype(F32)})


@pytest.mark.parametrize("op,attrs,ops", [
    ("HardSigmoid", {"alpha": 1 / 6, "beta": 0.5}, {"ADD": 1, "MUL": 1}),  # relu6(x + 3) / 6, RELU6 fused in ADD
    ("Softmax", {"axis": -1}, {"SOFTMAX": 1}),
    ("LogSoftmax", {"axis": -1}, {"REDUCE_MAX": 1, "SUB": 2, "EXP": 1, "SUM": 1, "LOG": 1}),  # not LOG_SOFTMAX
    ("Elu", {}, {"ELU": 1}),
])
def test_lowering_choice(op, attrs, ops):
    model = single_node(op, {"x": ([2, 8], F32)}, {"y": ([2, 8], F32)}, opset=13, **attrs)
    assert check(model, feeds=_feeds((2, 8))).summary["op_counts"] == ops
