"""Conv and ConvTranspose against onnxruntime."""
import numpy as np
import pytest
from onnx import helper

from op_harness import check, graph_model, node_model, one_xnnpack_partition, single_node
from onnx2tflite import UnsupportedModelError, convert


def _weights(*shape, seed=1):
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)


def _model(op, x_shape, w, bias=True, opset=17, **attrs):
    inits = {"w": w}
    if bias:
        inits["b"] = _weights(w.shape[0] if op == "Conv" else w.shape[1] * attrs.get("group", 1), seed=2)
    return node_model(op, {"x": (x_shape, np.float32)}, inits, opset=opset, **attrs)


# (x shape, weight shape, attributes): C_in=4 unless noted; weight [O, C/group, kh, kw]
CONV_2D = {
    "valid_3x3": ([1, 4, 8, 8], [6, 4, 3, 3], {}),
    "same_pads_s1": ([1, 4, 8, 8], [6, 4, 3, 3], dict(pads=[1, 1, 1, 1])),
    "pads_s2_even_input": ([1, 4, 8, 8], [6, 4, 3, 3], dict(pads=[1, 1, 1, 1], strides=[2, 2])),
    "pads_s2_odd_input": ([1, 4, 9, 9], [6, 4, 3, 3], dict(pads=[1, 1, 1, 1], strides=[2, 2])),
    "asymmetric_pads": ([1, 4, 7, 8], [5, 4, 3, 2], dict(pads=[0, 1, 2, 0])),
    "auto_same_upper_s2": ([1, 4, 8, 8], [6, 4, 3, 3], dict(auto_pad="SAME_UPPER", strides=[2, 2])),
    "auto_same_lower_s2": ([1, 4, 8, 8], [6, 4, 3, 3], dict(auto_pad="SAME_LOWER", strides=[2, 2])),
    "auto_same_upper_k2": ([1, 4, 7, 7], [6, 4, 2, 2], dict(auto_pad="SAME_UPPER")),
    "auto_valid_s2": ([1, 4, 9, 8], [6, 4, 3, 3], dict(auto_pad="VALID", strides=[2, 2])),
    "dilated": ([1, 4, 10, 10], [6, 4, 3, 3], dict(dilations=[2, 2], pads=[2, 2, 2, 2])),
    "dilated_rect_stride": ([1, 4, 12, 11], [6, 4, 3, 2], dict(dilations=[2, 3], strides=[2, 1], pads=[1, 0, 2, 1])),
    "rect_kernel_strides": ([1, 4, 9, 12], [6, 4, 3, 5], dict(strides=[2, 1], pads=[1, 2, 1, 2])),
    "pointwise": ([1, 4, 8, 8], [8, 4, 1, 1], {}),
    "grouped_2": ([1, 4, 8, 8], [6, 2, 3, 3], dict(group=2, pads=[1, 1, 1, 1])),
    "grouped_4_of_8": ([1, 8, 6, 6], [8, 2, 3, 3], dict(group=4, strides=[2, 2], pads=[1, 1, 1, 1])),
    "depthwise": ([1, 4, 8, 8], [4, 1, 3, 3], dict(group=4, pads=[1, 1, 1, 1])),
    "depthwise_s2_explicit": ([1, 4, 8, 8], [4, 1, 3, 3], dict(group=4, pads=[1, 1, 1, 1], strides=[2, 2])),
    "depthwise_multiplier_2": ([1, 4, 8, 8], [8, 1, 3, 3], dict(group=4, pads=[1, 1, 1, 1])),
    "depthwise_dilated_s2": ([1, 4, 9, 9], [4, 1, 3, 3],
                             dict(group=4, dilations=[2, 2], strides=[2, 2], pads=[2, 1, 2, 1])),
    "kernel_shape_attr": ([1, 4, 8, 8], [6, 4, 3, 3], dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])),
}


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("case", list(CONV_2D))
def test_conv_2d(case, bias):
    x_shape, w_shape, attrs = CONV_2D[case]
    result = check(_model("Conv", x_shape, _weights(*w_shape), bias=bias, **attrs))
    assert one_xnnpack_partition(result.tflite_bytes)


@pytest.mark.parametrize("opset", [1, 11])
def test_conv_opset_forms(opset):
    # Conv-1 (opset 1..10) and Conv-11 have the same attributes; ORT runs opset >= 7.
    check(_model("Conv", [1, 4, 8, 8], _weights(6, 4, 3, 3), opset=max(opset, 7), pads=[1, 1, 1, 1], strides=[2, 2]))


CONV_1D = {
    "valid": ([1, 4, 16], [6, 4, 3], {}),
    "pads_stride": ([1, 4, 16], [6, 4, 3], dict(pads=[1, 1], strides=[2])),
    "asymmetric_dilated": ([1, 4, 16], [6, 4, 3], dict(pads=[2, 0], dilations=[2])),
    "same_lower": ([1, 4, 15], [6, 4, 4], dict(auto_pad="SAME_LOWER", strides=[2])),
    "depthwise": ([1, 4, 16], [4, 1, 5], dict(group=4, pads=[2, 2])),
    "grouped": ([1, 4, 16], [6, 2, 3], dict(group=2, pads=[1, 1])),
}


@pytest.mark.parametrize("case", list(CONV_1D))
def test_conv_1d(case):
    x_shape, w_shape, attrs = CONV_1D[case]
    check(_model("Conv", x_shape, _weights(*w_shape), **attrs))


def test_conv_keep_nchw_io():
    check(_model("Conv", [1, 4, 8, 8], _weights(6, 4, 3, 3), pads=[0, 1, 1, 0], strides=[2, 1]), keep_nchw_io=True)


def test_conv_runtime_bias():
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[1, 1, 1, 1])
    check(graph_model([node], {"x": ([1, 4, 8, 8], np.float32), "b": ([6], np.float32)},
                      {"y": ([1, 6, 8, 8], np.float32)}, {"w": _weights(6, 4, 3, 3)}))


def test_conv_runtime_weight_unsupported():
    model = single_node("Conv", {"x": ([1, 4, 8, 8], np.float32), "w": ([6, 4, 3, 3], np.float32)},
                        {"y": ([1, 6, 6, 6], np.float32)}, name="conv_w_input")
    with pytest.raises(UnsupportedModelError, match="conv_w_input.*constant weights"):
        convert(model, validate=False)


def test_conv_3d_unsupported():
    model = single_node("Conv", {"x": ([1, 2, 4, 4, 4], np.float32)}, {"y": ([1, 3, 2, 2, 2], np.float32)},
                        {"w": _weights(3, 2, 3, 3, 3)}, name="conv3d")
    with pytest.raises(UnsupportedModelError, match="conv3d.*rank-5"):
        convert(model, validate=False)


# ConvTranspose: weight [C_in, O/group, kh, kw]; C_in = 4
CONV_TRANSPOSE = {
    "s2_k3": ([1, 4, 4, 4], [4, 3, 3, 3], dict(strides=[2, 2])),
    "s2_k3_pads": ([1, 4, 4, 4], [4, 3, 3, 3], dict(strides=[2, 2], pads=[1, 1, 1, 1])),
    "s2_k3_pads_output_padding": ([1, 4, 4, 4], [4, 3, 3, 3],
                                  dict(strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1])),
    "s2_k4_p1": ([1, 4, 4, 5], [4, 3, 4, 4], dict(strides=[2, 2], pads=[1, 1, 1, 1])),
    "asymmetric_pads": ([1, 4, 4, 4], [4, 3, 3, 3], dict(strides=[2, 2], pads=[0, 2, 1, 0])),
    "output_padding_only": ([1, 4, 4, 4], [4, 3, 3, 3], dict(strides=[3, 2], output_padding=[2, 1])),
    "same_upper": ([1, 4, 4, 4], [4, 3, 3, 3], dict(strides=[2, 2], auto_pad="SAME_UPPER")),
    "same_lower": ([1, 4, 4, 4], [4, 3, 3, 3], dict(strides=[2, 2], auto_pad="SAME_LOWER")),
    "same_upper_k1": ([1, 4, 4, 4], [4, 3, 1, 1], dict(strides=[2, 2], auto_pad="SAME_UPPER")),
    "valid": ([1, 4, 4, 4], [4, 3, 3, 3], dict(strides=[2, 2], auto_pad="VALID")),
    "output_shape_smaller": ([1, 4, 4, 4], [4, 3, 3, 3], dict(strides=[2, 2], output_shape=[7, 8])),
    "output_shape_larger": ([1, 4, 4, 4], [4, 3, 3, 3], dict(strides=[2, 2], output_shape=[10, 9])),
    "output_shape_same_upper": ([1, 4, 4, 4], [4, 3, 3, 3],
                                dict(strides=[2, 2], output_shape=[8, 8], auto_pad="SAME_UPPER")),
    "stride1_pads": ([1, 4, 5, 5], [4, 3, 3, 3], dict(pads=[1, 1, 1, 1])),
    "rect_kernel_strides": ([1, 4, 3, 4], [4, 3, 2, 3], dict(strides=[3, 2], pads=[0, 1, 1, 0])),
    "dilated": ([1, 4, 4, 4], [4, 3, 3, 3], dict(strides=[2, 2], dilations=[2, 2], pads=[1, 1, 1, 1])),
    "depthwise": ([1, 4, 4, 4], [4, 1, 3, 3], dict(strides=[2, 2], group=4, pads=[1, 1, 1, 1], output_padding=[1, 1])),
    "grouped": ([1, 4, 4, 4], [4, 3, 3, 3], dict(strides=[2, 2], group=2, pads=[1, 0, 1, 0])),
}


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("case", list(CONV_TRANSPOSE))
def test_conv_transpose_2d(case, bias):
    x_shape, w_shape, attrs = CONV_TRANSPOSE[case]
    result = check(_model("ConvTranspose", x_shape, _weights(*w_shape), bias=bias, **attrs))
    assert one_xnnpack_partition(result.tflite_bytes)


@pytest.mark.parametrize("opset", [9, 11])
def test_conv_transpose_opset_forms(opset):
    check(_model("ConvTranspose", [1, 4, 4, 4], _weights(4, 3, 3, 3), opset=opset, strides=[2, 2], pads=[1, 1, 1, 1],
                 output_padding=[1, 1]))


@pytest.mark.parametrize("attrs", [dict(strides=[2]), dict(strides=[2], pads=[1, 1], output_padding=[1]),
                                   dict(strides=[3], output_shape=[11]), dict(strides=[2], group=4, pads=[1, 0])],
                         ids=["plain", "pads_output_padding", "output_shape", "depthwise"])
def test_conv_transpose_1d(attrs):
    w = _weights(4, 1 if attrs.get("group") else 3, 3)
    check(_model("ConvTranspose", [1, 4, 6], w, **attrs))


def test_conv_transpose_keep_nchw_io():
    check(_model("ConvTranspose", [1, 4, 4, 4], _weights(4, 3, 4, 4), strides=[2, 2], pads=[1, 1, 1, 1]),
          keep_nchw_io=True)


def test_conv_transpose_runtime_weight_unsupported():
    model = single_node("ConvTranspose", {"x": ([1, 4, 4, 4], np.float32), "w": ([4, 3, 3, 3], np.float32)},
                        {"y": ([1, 3, 6, 6], np.float32)}, name="deconv_w_input")
    with pytest.raises(UnsupportedModelError, match="deconv_w_input.*constant weights"):
        convert(model, validate=False)


def test_conv_relu_chain_one_partition():
    """Conv -> Relu -> strided Conv (explicit PAD): the mapper's transposes/pads stay delegable."""
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2"], ["y"], pads=[1, 1, 1, 1], strides=[2, 2], group=2)]
    model = graph_model(nodes, {"x": ([1, 4, 8, 8], np.float32)}, {"y": ([1, 6, 4, 4], np.float32)},
                        {"w1": _weights(4, 4, 3, 3), "b1": _weights(4, seed=3), "w2": _weights(6, 2, 3, 3, seed=4)})
    result = check(model)
    assert one_xnnpack_partition(result.tflite_bytes)
