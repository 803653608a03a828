"""MatMul (FULLY_CONNECTED / BATCH_MATMUL) and Gemm vs onnxruntime.

Tolerance: products sum K terms in a different order (and XNNPACK's FC uses FMA), so the
error grows with K; 1e-5 of max(1, max|ref|) holds for the small K used here.
"""
import numpy as np
import pytest

from onnx2tflite import UnsupportedModelError, convert
from op_harness import check, single_node

F32 = np.float32
RNG = np.random.default_rng(3)


def _mm_shape(sa, sb):
    a = (1, *sa) if len(sa) == 1 else sa
    b = (*sb, 1) if len(sb) == 1 else sb
    out = [*np.broadcast_shapes(a[:-2], b[:-2]), a[-2], b[-1]]
    if len(sa) == 1:
        out.pop(-2)
    if len(sb) == 1:
        out.pop(-1)
    return out


MATMUL_SHAPES = [((4, 8), (8, 6)), ((2, 5, 8), (8, 6)), ((1, 2, 3, 8), (8, 5)), ((8,), (8, 6)), ((3, 8), (8,)),
                 ((2, 4, 8), (8,)), ((2, 3, 4, 8), (3, 8, 5)), ((2, 4, 8), (2, 8, 6)), ((1, 4, 8), (3, 8, 6)),
                 ((2, 1, 4, 8), (3, 8, 5)), ((8,), (2, 8, 3)), ((4, 8), (2, 8, 3)), ((2, 4, 8), (1, 8, 6)),
                 ((4, 8), (1, 8, 6))]


@pytest.mark.parametrize("sa,sb", MATMUL_SHAPES)
@pytest.mark.parametrize("b_const", [True, False])
def test_matmul(sa, sb, b_const):
    out = {"y": (_mm_shape(sa, sb), F32)}
    if b_const:
        model = single_node("MatMul", {"a": (list(sa), F32)}, out, {"b": RNG.standard_normal(sb).astype(F32)},
                            opset=13)
    else:
        model = single_node("MatMul", {"a": (list(sa), F32), "b": (list(sb), F32)}, out, opset=13)
    check(model)


def test_matmul_4d_nhwc_boundary():
    model = single_node("MatMul", {"a": ([1, 3, 4, 8], F32)}, {"y": ([1, 3, 4, 5], F32)},
                        {"b": RNG.standard_normal((8, 5)).astype(F32)}, opset=9)
    check(model)
    check(model, keep_nchw_io=True)


def test_matmul_integer_unsupported():
    model = single_node("MatMul", {"a": ([2, 3], np.int32), "b": ([3, 4], np.int32)}, {"y": ([2, 4], np.int32)},
                        opset=13)
    model.graph.node[0].name = "int_mm"
    with pytest.raises(UnsupportedModelError, match="int_mm.*INT32"):
        convert(model, validate=False)


GEMM_ATTRS = [{}, {"transA": 1}, {"transB": 1}, {"transA": 1, "transB": 1, "alpha": 0.5, "beta": 2.0},
              {"alpha": -1.5}, {"beta": 0.0}]
C_SHAPES = [None, (6,), (1, 6), (), (4, 1), (4, 6), (1,)]


@pytest.mark.parametrize("attrs", GEMM_ATTRS)
@pytest.mark.parametrize("c_shape", C_SHAPES)
@pytest.mark.parametrize("b_const", [True, False])
def test_gemm(attrs, c_shape, b_const):
    m, k, n = 4, 8, 6
    sa = (k, m) if attrs.get("transA") else (m, k)
    sb = (n, k) if attrs.get("transB") else (k, n)
    inputs = {"a": (list(sa), F32)}
    inits = {}
    if b_const:
        inits["b"] = RNG.standard_normal(sb).astype(F32)
    else:
        inputs["b"] = (list(sb), F32)
    if c_shape is not None:
        inits["c"] = RNG.standard_normal(c_shape).astype(F32)
    model = single_node("Gemm", inputs, {"y": ([m, n], F32)}, inits, opset=13, **attrs)
    check(model)


@pytest.mark.parametrize("opset", [7, 9, 11])
def test_gemm_runtime_c_and_old_opsets(opset):
    model = single_node("Gemm", {"a": ([3, 5], F32), "c": ([3, 4], F32)}, {"y": ([3, 4], F32)},
                        {"b": RNG.standard_normal((4, 5)).astype(F32)}, opset=opset, transB=1, beta=0.5)
    # ONNX inputs are (A, B, C): single_node orders graph inputs first, so build the node by hand
    node = model.graph.node[0]
    node.ClearField("input")
    node.input.extend(["a", "b", "c"])
    check(model)


@pytest.mark.parametrize("sa,sb", [((5, 8), (8, 6)), ((5, 8), (2, 8, 6))])
def test_matmul_constant_first_operand(sa, sb):
    model = single_node("MatMul", {"b": (list(sb), F32)}, {"y": (_mm_shape(sa, sb), F32)},
                        {"a": RNG.standard_normal(sa).astype(F32)}, opset=13)
    model.graph.node[0].input[:] = ["a", "b"]
    check(model)


def test_lowering_choice_fully_connected():
    model = single_node("MatMul", {"a": ([2, 5, 8], F32)}, {"y": ([2, 5, 6], F32)},
                        {"b": RNG.standard_normal((8, 6)).astype(F32)}, opset=13)
    assert check(model).summary["op_counts"] == {"FULLY_CONNECTED": 1}  # keepNumDims, no reshapes
    model = single_node("MatMul", {"a": ([2, 5, 8], F32)}, {"y": ([2, 5, 6], F32)},
                        {"b": RNG.standard_normal((1, 8, 6)).astype(F32)}, opset=13)
    assert check(model).summary["op_counts"] == {"FULLY_CONNECTED": 1}  # unit batch dims of the weight
    model = single_node("Gemm", {"a": ([5, 8], F32)}, {"y": ([5, 6], F32)},
                        {"b": RNG.standard_normal((6, 8)).astype(F32), "c": RNG.standard_normal(6).astype(F32)},
                        opset=13, transB=1, alpha=0.5, beta=2.0)
    assert check(model).summary["op_counts"] == {"FULLY_CONNECTED": 1}  # alpha, beta, C folded
