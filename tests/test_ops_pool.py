"""MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool against onnxruntime."""
import numpy as np
import pytest
from onnx import helper

from op_harness import check, graph_model, single_node
from onnx2tflite import UnsupportedModelError, convert
from op_harness import node_model, one_xnnpack_partition

# (x shape, attributes)
POOL_2D = {
    "k2_s2": ([1, 3, 6, 6], dict(kernel_shape=[2, 2], strides=[2, 2])),
    "k3_s2_p1_even": ([1, 3, 8, 8], dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    "k3_s2_p1_odd": ([1, 3, 7, 7], dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    "k3_s1_p1": ([1, 3, 8, 8], dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])),
    "k5_s1_p2": ([1, 3, 8, 8], dict(kernel_shape=[5, 5], pads=[2, 2, 2, 2])),
    "asymmetric_pads": ([1, 3, 7, 9], dict(kernel_shape=[2, 3], strides=[2, 2], pads=[0, 1, 1, 0])),
    "ceil": ([1, 3, 8, 8], dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)),
    "ceil_not_same": ([1, 3, 9, 10], dict(kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)),
    "ceil_pads": ([1, 3, 7, 9], dict(kernel_shape=[2, 3], strides=[2, 2], pads=[0, 1, 1, 0], ceil_mode=1)),
    "ceil_big_pads": ([1, 3, 8, 8], dict(kernel_shape=[5, 5], strides=[2, 2], pads=[2, 0, 1, 3], ceil_mode=1)),
    "ceil_last_window_dropped": ([1, 3, 5, 5],
                                 dict(kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)),
    "same_upper": ([1, 3, 8, 8], dict(kernel_shape=[3, 3], auto_pad="SAME_UPPER")),
    "same_upper_s3": ([1, 3, 8, 8], dict(kernel_shape=[4, 4], strides=[3, 3], auto_pad="SAME_UPPER")),
    "same_lower": ([1, 3, 8, 8], dict(kernel_shape=[2, 2], auto_pad="SAME_LOWER")),
    "same_lower_s2": ([1, 3, 7, 8], dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_LOWER")),
    "valid": ([1, 3, 8, 9], dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="VALID")),
    "rect_default_strides": ([1, 3, 6, 7], dict(kernel_shape=[2, 3])),
}


@pytest.mark.parametrize("case", list(POOL_2D))
def test_max_pool_2d(case):
    x_shape, attrs = POOL_2D[case]
    result = check(node_model("MaxPool", {"x": (x_shape, np.float32)}, **attrs))
    assert one_xnnpack_partition(result.tflite_bytes)


@pytest.mark.parametrize("count_include_pad", [0, 1])
@pytest.mark.parametrize("case", list(POOL_2D))
def test_average_pool_2d(case, count_include_pad):
    x_shape, attrs = POOL_2D[case]
    result = check(node_model("AveragePool", {"x": (x_shape, np.float32)}, count_include_pad=count_include_pad,
                              **attrs))
    assert one_xnnpack_partition(result.tflite_bytes)


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize("attrs", [dict(kernel_shape=[3], strides=[2], pads=[1, 1]),
                                   dict(kernel_shape=[2], strides=[2], ceil_mode=1),
                                   dict(kernel_shape=[3], auto_pad="SAME_LOWER")],
                         ids=["pads", "ceil", "same_lower"])
def test_pool_1d(op, attrs):
    check(node_model(op, {"x": ([1, 3, 11], np.float32)}, **attrs))


@pytest.mark.parametrize("op,opset,attrs", [
    ("MaxPool", 7, {}), ("MaxPool", 8, dict(storage_order=0)), ("MaxPool", 10, dict(ceil_mode=1)),
    ("MaxPool", 12, dict(dilations=[1, 1])), ("AveragePool", 7, dict(count_include_pad=1)),
    ("AveragePool", 10, dict(ceil_mode=1)), ("AveragePool", 19, dict(dilations=[1, 1], count_include_pad=1)),
])
def test_pool_opset_forms(op, opset, attrs):
    check(node_model(op, {"x": ([1, 3, 7, 7], np.float32)}, opset=opset, kernel_shape=[3, 3], strides=[2, 2],
                     pads=[1, 0, 0, 1], **attrs))


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
def test_pool_keep_nchw_io(op):
    check(node_model(op, {"x": ([1, 3, 8, 8], np.float32)}, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
          keep_nchw_io=True)


def test_max_pool_all_negative_input_explicit_pads():
    """Padding must never win a max: the border replication is exact for all-negative inputs."""
    model = node_model("MaxPool", {"x": ([1, 2, 6, 6], np.float32)}, kernel_shape=[3, 3], strides=[2, 2],
                       pads=[2, 1, 0, 2])
    check(model, feeds={"x": -np.random.default_rng(0).uniform(1, 2, (1, 2, 6, 6)).astype(np.float32)})


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
@pytest.mark.parametrize("shape", [[1, 3, 8, 8], [2, 4, 5, 7], [1, 3, 10]], ids=["4d", "4d_batch2", "3d"])
def test_global_pool(op, shape):
    result = check(node_model(op, {"x": (shape, np.float32)}))
    assert one_xnnpack_partition(result.tflite_bytes)


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
def test_global_pool_keep_nchw_io(op):
    check(node_model(op, {"x": ([1, 3, 8, 8], np.float32)}), keep_nchw_io=True)


def test_max_pool_indices_unsupported():
    node = helper.make_node("MaxPool", ["x"], ["y", "idx"], kernel_shape=[2, 2], name="pool_with_indices")
    model = graph_model([node], {"x": ([1, 3, 4, 4], np.float32)},
                        {"y": ([1, 3, 3, 3], np.float32), "idx": ([1, 3, 3, 3], np.int64)})
    with pytest.raises(UnsupportedModelError, match="pool_with_indices.*Indices"):
        convert(model, validate=False)


@pytest.mark.parametrize("op,opset", [("MaxPool", 12), ("AveragePool", 19)])
def test_pool_dilations_unsupported(op, opset):
    model = single_node(op, {"x": ([1, 3, 8, 8], np.float32)}, {"y": ([1, 3, 4, 4], np.float32)}, opset=opset,
                        kernel_shape=[3, 3], dilations=[2, 2], name="dilated_pool")
    with pytest.raises(UnsupportedModelError, match="dilated_pool.*dilations"):
        convert(model, validate=False)
