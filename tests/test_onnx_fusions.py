"""ONNX-level fusions: the fused graph matches onnxruntime on the unfused one and emits the single TFLite op."""
import numpy as np
import pytest
from onnx import helper

from op_harness import check, graph_model

RNG = np.random.default_rng(0)


def test_batchnorm_folds_into_conv_and_hardsigmoid_mul_becomes_hardswish():
    init = {"w": RNG.normal(size=(4, 3, 3, 3)).astype(np.float32), "s": RNG.uniform(.5, 1.5, 4).astype(np.float32),
            "b": RNG.normal(size=4).astype(np.float32), "m": RNG.normal(size=4).astype(np.float32),
            "v": RNG.uniform(.5, 2, 4).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["y"]),
             helper.make_node("HardSigmoid", ["y"], ["h"], alpha=1 / 6),
             helper.make_node("Mul", ["y", "h"], ["z"])]
    model = graph_model(nodes, {"x": ([1, 3, 8, 8], np.float32)}, {"z": ([1, 4, 8, 8], np.float32)}, init)
    # Folding rescales the weights in float64 then rounds to float32: default tolerance holds.
    assert check(model).summary["op_counts"] == {"CONV_2D": 1, "HARD_SWISH": 1}


@pytest.mark.parametrize("order", ["x_times_then_half", "half_x_times"])
@pytest.mark.parametrize("scale", ["div_sqrt2", "mul_inv_sqrt2"])
def test_erf_gelu_becomes_gelu(order, scale):
    init = {"k": np.array(np.sqrt(2) if scale == "div_sqrt2" else 1 / np.sqrt(2), np.float32),
            "one": np.array(1.0, np.float32), "half": np.array(0.5, np.float32)}
    nodes = [helper.make_node("Div" if scale == "div_sqrt2" else "Mul", ["x", "k"], ["d"]),
             helper.make_node("Erf", ["d"], ["e"]),
             helper.make_node("Add", ["e", "one"], ["a"])]
    if order == "x_times_then_half":
        nodes += [helper.make_node("Mul", ["x", "a"], ["m"]), helper.make_node("Mul", ["m", "half"], ["y"])]
    else:
        nodes += [helper.make_node("Mul", ["x", "half"], ["hx"]), helper.make_node("Mul", ["hx", "a"], ["y"])]
    model = graph_model(nodes, {"x": ([2, 5, 16], np.float32)}, {"y": ([2, 5, 16], np.float32)}, init)
    # TFLite's GELU evaluates erf with its own polynomial; 1e-5 of max(1, |y|) still holds on [-2, 2].
    assert check(model).summary["op_counts"] == {"GELU": 1}
