"""Pattern fusions on the ONNX graph, before lowering.

- BatchNormalization folded into the Conv that feeds it (constant weights);
- x * HardSigmoid(x) (alpha 1/6, beta 1/2) -> HardSwish;
- the exporters' erf-GELU, x * 0.5 * (1 + erf(x / sqrt 2)) in its usual orders -> Gelu.
Fused ops live in the ``onnx2tflite`` domain and have mappers in op_mappers/fused.py.
"""
from __future__ import annotations

import numpy as np
import onnx_ir as ir

from onnx2tflite.converter.graph_edit import Editor, const_of, remove_dead

FUSED_DOMAIN = "onnx2tflite"


def _scalar_is(value: ir.Value | None, target: float, tol: float = 1e-4) -> bool:
    arr = const_of(value)
    return arr is not None and arr.size == 1 and abs(float(arr.reshape(-1)[0]) - target) <= tol * abs(target)


def _only_user(value: ir.Value, op_type: str) -> ir.Node | None:
    uses = value.uses()
    if len(uses) != 1 or value.is_graph_output():
        return None
    node = uses[0][0]
    return node if node.op_type == op_type and node.domain in ("", "ai.onnx") else None


def _other_input(node: ir.Node, value: ir.Value) -> ir.Value | None:
    a, b = node.inputs
    return b if a is value else a if b is value else None


def _replace_with(graph: ir.Graph, old_out: ir.Value, op_type: str, inputs, attrs=None) -> None:
    """A fused node computing ``old_out`` from ``inputs``; the old subgraph becomes dead."""
    new_out = ir.Value(name=old_out.name + "/fused", shape=old_out.shape, type=old_out.type)
    node = ir.Node(FUSED_DOMAIN, op_type, inputs, ir.convenience.convert_attributes(attrs or {}),
                   outputs=[new_out], name=(old_out.producer().name or old_out.name) + "/" + op_type)
    graph.insert_after(old_out.producer(), node)
    old_out.replace_all_uses_with(new_out, replace_graph_outputs=True)
    name = old_out.name
    old_out.name = name + "/unfused"
    new_out.name = name


def fold_batchnorm(graph: ir.Graph, edit: Editor) -> int:
    folded = 0
    for bn in list(graph):
        if bn.op_type != "BatchNormalization" or bn.domain not in ("", "ai.onnx") or len(bn.outputs) != 1:
            continue
        conv = bn.inputs[0].producer()
        if conv is None or conv.op_type != "Conv" or _only_user(bn.inputs[0], "BatchNormalization") is None:
            continue
        w = const_of(conv.inputs[1])
        bias = const_of(conv.inputs[2]) if len(conv.inputs) > 2 else None
        params = [const_of(v) for v in bn.inputs[1:5]]
        if w is None or any(p is None for p in params) or (len(conv.inputs) > 2 and conv.inputs[2] is not None and bias is None):
            continue
        scale, beta, mean, var = (p.astype(np.float64) for p in params)
        eps = bn.attributes["epsilon"].value if "epsilon" in bn.attributes else 1e-5
        s = scale / np.sqrt(var + eps)
        b0 = bias.astype(np.float64) if bias is not None else np.zeros_like(mean)
        new_w = (w.astype(np.float64) * s.reshape((-1,) + (1,) * (w.ndim - 1))).astype(w.dtype)
        new_b = ((b0 - mean) * s + beta).astype(w.dtype)
        conv.replace_input_with(1, edit.const(new_w, conv.inputs[1].name + "/bn"))
        if len(conv.inputs) < 3:
            conv.resize_inputs(3)
        conv.replace_input_with(2, edit.const(new_b, (conv.name or "conv") + "/bn_bias"))
        out = bn.outputs[0]
        name = out.name
        out.replace_all_uses_with(conv.outputs[0], replace_graph_outputs=True)
        out.name = name + "/unfolded"
        conv.outputs[0].name = name
        folded += 1
    return folded


def fuse_hardswish(graph: ir.Graph) -> int:
    fused = 0
    for hs in list(graph):
        if hs.op_type != "HardSigmoid" or hs.domain not in ("", "ai.onnx"):
            continue
        alpha = hs.attributes["alpha"].value if "alpha" in hs.attributes else 0.2
        beta = hs.attributes["beta"].value if "beta" in hs.attributes else 0.5
        mul = _only_user(hs.outputs[0], "Mul")
        x = hs.inputs[0]
        if mul is None or abs(alpha - 1 / 6) > 1e-6 or abs(beta - 0.5) > 1e-6 or _other_input(mul, hs.outputs[0]) is not x:
            continue
        _replace_with(graph, mul.outputs[0], "HardSwish", [x])
        fused += 1
    return fused


def _erf_argument(erf: ir.Node) -> ir.Value | None:
    scaled = erf.inputs[0].producer()
    if scaled is None or len(scaled.inputs) != 2:
        return None
    x, c = scaled.inputs
    if scaled.op_type == "Div" and _scalar_is(c, np.sqrt(2)):
        return x
    if scaled.op_type == "Mul":
        if _scalar_is(c, 1 / np.sqrt(2)):
            return x
        if _scalar_is(x, 1 / np.sqrt(2)):
            return c
    return None


def fuse_gelu(graph: ir.Graph) -> int:
    fused = 0
    for erf in list(graph):
        if erf.op_type != "Erf" or erf.domain not in ("", "ai.onnx"):
            continue
        x = _erf_argument(erf)
        add = _only_user(erf.outputs[0], "Add")
        if x is None or add is None or not _scalar_is(_other_input(add, erf.outputs[0]), 1.0):
            continue
        mul = _only_user(add.outputs[0], "Mul")
        if mul is None:
            continue
        other = _other_input(mul, add.outputs[0])
        if other is x:  # x * (1 + erf) then * 0.5
            half = _only_user(mul.outputs[0], "Mul")
            if half is None or not _scalar_is(_other_input(half, mul.outputs[0]), 0.5):
                continue
            final = half.outputs[0]
        else:  # (0.5 * x) * (1 + erf)
            pre = other.producer() if other is not None else None
            if pre is None or pre.op_type != "Mul" or x not in pre.inputs or not _scalar_is(_other_input(pre, x), 0.5):
                continue
            final = mul.outputs[0]
        _replace_with(graph, final, "Gelu", [x], {"approximate": 0})
        fused += 1
    return fused


def run_all(graph: ir.Graph) -> dict:
    stats = {"batchnorm_folded": fold_batchnorm(graph, Editor(graph)), "hardswish": fuse_hardswish(graph), "gelu": fuse_gelu(graph)}
    remove_dead(graph)
    return stats
