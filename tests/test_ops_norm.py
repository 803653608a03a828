"""Layer/Batch/Instance/Group/Lp normalization vs onnxruntime.

Tolerance: the decompositions compute mean and variance with TFLite's MEAN (a different
summation order than onnxruntime's kernels); the default 1e-5 holds at these sizes.
"""
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnx2tflite import UnsupportedModelError, convert
from op_harness import check, single_node

F32 = np.float32
RNG = np.random.default_rng(4)


def _r(*shape, lo=-1.0, hi=1.0):
    return RNG.uniform(lo, hi, shape).astype(F32)


def _feeds(shape):  # an offset and scale per tensor, so the mean/variance really matter
    return {"x": (RNG.standard_normal(shape) * 2.0 + 0.7).astype(F32)}


LN_CASES = [((2, 5, 16), -1), ((2, 5, 16), 2), ((2, 5, 16), 1), ((2, 5, 16), -2), ((1, 3, 8, 8), 1),
            ((1, 3, 8, 8), -1), ((4, 32), -1), ((4, 32), 0)]


@pytest.mark.parametrize("shape,axis", LN_CASES)
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("epsilon", [1e-5, 1e-2])
def test_layer_norm(shape, axis, with_bias, epsilon):
    norm_shape = shape[axis % len(shape):]
    inits = {"scale": _r(*norm_shape, lo=0.5, hi=1.5)}
    if with_bias:
        inits["bias"] = _r(*norm_shape)
    model = single_node("LayerNormalization", {"x": (list(shape), F32)}, {"y": (list(shape), F32)}, inits,
                        opset=17, axis=axis, epsilon=epsilon)
    check(model, feeds=_feeds(shape))


def test_layer_norm_mean_and_inv_std_outputs_and_identity_affine():
    shape = (2, 4, 6)
    inits = {"scale": np.ones(6, F32), "bias": np.zeros(6, F32)}
    model = single_node("LayerNormalization", {"x": (list(shape), F32)},
                        {"y": (list(shape), F32), "mean": ([2, 4, 1], F32), "inv_std": ([2, 4, 1], F32)},
                        inits, opset=17)
    result = check(model, feeds=_feeds(shape))
    assert "MUL" in result.summary["op_counts"]  # (x - mean) * inv_std; the identity affine is skipped
    assert result.summary["op_counts"].get("ADD") == 1  # only var + eps


def test_layer_norm_runtime_scale():
    model = single_node("LayerNormalization", {"x": ([2, 3, 8], F32), "scale": ([8], F32), "bias": ([8], F32)},
                        {"y": ([2, 3, 8], F32)}, opset=17)
    check(model)


@pytest.mark.parametrize("shape", [(1, 3, 8, 8), (2, 4), (2, 4, 6), (1, 2, 3, 4, 4)])
@pytest.mark.parametrize("opset", [7, 9, 15])
def test_batch_norm(shape, opset):
    c = shape[1]
    inits = {"scale": _r(c, lo=0.5, hi=1.5), "bias": _r(c), "mean": _r(c), "var": _r(c, lo=0.1, hi=2.0)}
    model = single_node("BatchNormalization", {"x": (list(shape), F32)}, {"y": (list(shape), F32)}, inits,
                        opset=opset, epsilon=1e-3)
    check(model, feeds=_feeds(shape))
    if len(shape) == 4:
        check(model, feeds=_feeds(shape), keep_nchw_io=True)


def test_batch_norm_training_mode_unsupported():
    c = 3
    inits = {"scale": _r(c), "bias": _r(c), "mean": _r(c), "var": _r(c, lo=0.1)}
    model = single_node("BatchNormalization", {"x": ([1, c, 4, 4], F32)}, {"y": ([1, c, 4, 4], F32)}, inits,
                        opset=15, training_mode=1)
    model.graph.node[0].name = "bn_train"
    with pytest.raises(UnsupportedModelError, match="bn_train.*training_mode"):
        convert(model, validate=False)


@pytest.mark.parametrize("shape", [(1, 3, 8, 8), (2, 4, 10), (1, 2, 3, 4, 4)])
@pytest.mark.parametrize("opset", [6, 17])
def test_instance_norm(shape, opset):
    c = shape[1]
    model = single_node("InstanceNormalization", {"x": (list(shape), F32)}, {"y": (list(shape), F32)},
                        {"scale": _r(c, lo=0.5, hi=1.5), "bias": _r(c)}, opset=opset, epsilon=1e-4)
    check(model, feeds=_feeds(shape))


def test_instance_norm_nhwc_boundary():
    model = single_node("InstanceNormalization", {"x": ([1, 4, 6, 6], F32)}, {"y": ([1, 4, 6, 6], F32)},
                        {"scale": _r(4, lo=0.5, hi=1.5), "bias": _r(4)}, opset=6)
    check(model, feeds=_feeds((1, 4, 6, 6)), keep_nchw_io=True)
    check(model, feeds=_feeds((1, 4, 6, 6)))


@pytest.mark.parametrize("shape,groups", [((1, 6, 4, 4), 3), ((2, 8, 5), 2), ((1, 4, 4, 4), 4), ((1, 4, 4, 4), 1)])
def test_group_norm_21(shape, groups):
    c = shape[1]
    model = single_node("GroupNormalization", {"x": (list(shape), F32)}, {"y": (list(shape), F32)},
                        {"scale": _r(c, lo=0.5, hi=1.5), "bias": _r(c)}, opset=21, num_groups=groups, epsilon=1e-4)
    check(model, feeds=_feeds(shape))


def test_group_norm_18_per_group_affine():
    # onnx's checker rejects GroupNormalization-18 as deprecated, so no single_node (it checks)
    shape, groups = (1, 6, 4, 4), 3
    node = helper.make_node("GroupNormalization", ["x", "scale", "bias"], ["y"], num_groups=groups)
    graph = helper.make_graph(
        [node], "gn18", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
        [numpy_helper.from_array(_r(groups, lo=0.5, hi=1.5), "scale"), numpy_helper.from_array(_r(groups), "bias")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    check(model, feeds=_feeds(shape))


@pytest.mark.parametrize("shape,axis", [((2, 5, 8), -1), ((2, 5, 8), 1), ((1, 3, 4, 4), 1), ((4, 6), 0)])
@pytest.mark.parametrize("p", [1, 2])
def test_lp_norm(shape, axis, p):
    model = single_node("LpNormalization", {"x": (list(shape), F32)}, {"y": (list(shape), F32)}, opset=1,
                        axis=axis, p=p)
    check(model, feeds=_feeds(shape))


@pytest.mark.parametrize("p", [1, 2])
def test_lp_norm_zero_slice_gives_zero(p):
    x = _feeds((3, 6))["x"]
    x[1] = 0.0
    model = single_node("LpNormalization", {"x": ([3, 6], F32)}, {"y": ([3, 6], F32)}, opset=22, p=p)
    check(model, feeds={"x": x})


def test_lowering_choice_batch_norm_is_mul_add():
    c = 4
    inits = {"scale": _r(c), "bias": _r(c), "mean": _r(c), "var": _r(c, lo=0.1)}
    model = single_node("BatchNormalization", {"x": ([1, c, 4, 4], F32)}, {"y": ([1, c, 4, 4], F32)}, inits, opset=15)
    assert check(model, feeds=_feeds((1, c, 4, 4)), keep_nchw_io=True).summary["op_counts"] == {"MUL": 1, "ADD": 1}
