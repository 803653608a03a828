"""Build small real ONNX graphs and check the converted TFLite against onnxruntime.

Tolerances are per test, stated in the test with the reason; the default (rtol 1e-5 of
max(1, max|ref|), cosine 0.99999) suits single float32 ops whose TFLite kernel computes
the same arithmetic in a different order.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from onnx2tflite import convert
from onnx2tflite.validate.compare import ort_session, run_tflite
from onnx2tflite.validate.delegation import single_partition
from onnx2tflite.validate.metrics import compare_arrays

NP_TO_ONNX = {np.dtype(k): v for k, v in {
    np.float32: TensorProto.FLOAT, np.int64: TensorProto.INT64, np.int32: TensorProto.INT32,
    np.bool_: TensorProto.BOOL, np.int8: TensorProto.INT8, np.uint8: TensorProto.UINT8,
    np.float16: TensorProto.FLOAT16}.items()}


def graph_model(nodes, inputs: dict, outputs: dict, initializers: dict | None = None,
                opset: int = 17) -> onnx.ModelProto:
    """inputs/outputs: {name: (shape, np dtype)}; initializers: {name: np.ndarray}."""
    g = helper.make_graph(
        nodes, "test",
        [helper.make_tensor_value_info(n, NP_TO_ONNX[np.dtype(dt)], s) for n, (s, dt) in inputs.items()],
        [helper.make_tensor_value_info(n, NP_TO_ONNX[np.dtype(dt)], s) for n, (s, dt) in outputs.items()],
        [onnx.numpy_helper.from_array(np.asarray(a), n) for n, a in (initializers or {}).items()])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def single_node(op_type: str, inputs: dict, outputs: dict, initializers: dict | None = None,
                opset: int = 17, **attrs) -> onnx.ModelProto:
    """One ONNX node; its inputs are the graph inputs then the initializers, in order given."""
    names = list(inputs) + list(initializers or {})
    node = helper.make_node(op_type, names, list(outputs), **attrs)
    return graph_model([node], inputs, outputs, initializers, opset)


def random_feeds(model: onnx.ModelProto, seed: int = 0, low: float = -2.0, high: float = 2.0) -> dict:
    rng = np.random.default_rng(seed)
    feeds = {}
    for s in ort_session(model).get_inputs():
        shape = [int(d) for d in s.shape]
        if s.type == "tensor(float)":
            feeds[s.name] = rng.uniform(low, high, shape).astype(np.float32)
        elif s.type == "tensor(bool)":
            feeds[s.name] = rng.random(shape) > 0.5
        else:
            feeds[s.name] = rng.integers(-3, 4, shape).astype(np.int64 if "64" in s.type else np.int32)
    return feeds


def check(model: onnx.ModelProto, feeds: dict | None = None, rtol: float = 1e-5, min_cosine: float = 0.99999,
          keep_nchw_io: bool = False, **convert_kw):
    """Convert, run both runtimes on the same inputs, assert every output agrees; returns the result."""
    result = convert(model, validate=False, keep_nchw_io=keep_nchw_io, **convert_kw)
    feeds = feeds if feeds is not None else random_feeds(model)
    sess = ort_session(model)
    names = [o.name for o in sess.get_outputs()]
    ref = dict(zip(names, sess.run(names, feeds)))
    got = run_tflite(result.tflite_bytes, feeds)
    for name in names:
        m = compare_arrays(name, ref[name], got.get(name), rtol=rtol, min_cosine=min_cosine)
        assert m.ok, f"output '{name}': {m.problem or m}"
    return result


def one_xnnpack_partition(tflite_bytes: bytes) -> bool:
    """True when LiteRT's default XNNPACK delegate takes the whole graph as one partition."""
    return single_partition(tflite_bytes)


def ort_output_shape(op, inputs: dict, initializers: dict, opset: int, names=None, **attrs) -> list[int]:
    """The output shape onnxruntime computes for one node (to declare it in the test model);
    ``names``: the node's input names ("" for an absent optional input), default inputs then initializers."""
    names = names if names is not None else list(inputs) + list(initializers)
    g = helper.make_graph([helper.make_node(op, names, ["y"], **attrs)], "probe",
                          [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, (s, _) in inputs.items()],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(a, n) for n, a in initializers.items()])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    feeds = {n: np.zeros(s, dt) for n, (s, dt) in inputs.items()}
    return list(ort_session(model).run(None, feeds)[0].shape)


def node_model(op, inputs: dict, initializers: dict | None = None, opset: int = 17, **attrs):
    """single_node with the output shape onnxruntime gives."""
    initializers = initializers or {}
    shape = ort_output_shape(op, inputs, initializers, opset, **attrs)
    return single_node(op, inputs, {"y": (shape, np.float32)}, initializers, opset=opset, **attrs)
