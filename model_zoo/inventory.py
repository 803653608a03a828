"""ONNX op inventory of built zoo models: op histogram plus the distinct attribute sets.

    python -m model_zoo.inventory [names...]
"""

from __future__ import annotations

import sys
from collections import Counter, defaultdict

import onnx
from onnx import helper, numpy_helper

from .build import resolve

_CONST_INPUT_OPS = {"Resize", "Slice", "Split", "Squeeze", "Unsqueeze", "Gather", "Expand", "Pad", "Tile"}


def _fmt(v) -> str:
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, onnx.TensorProto):
        v = numpy_helper.to_array(v)
    if hasattr(v, "tolist"):
        return str(v.tolist()) if v.size <= 8 else f"tensor{list(v.shape)}"
    return str(v)


def _conv(node: onnx.NodeProto, consts: dict) -> str:
    a = {x.name: helper.get_attribute_value(x) for x in node.attribute}
    w = consts.get(node.input[1])
    k = "x".join(map(str, a.get("kernel_shape", [])))
    g = a.get("group", 1)
    kind = "" if g == 1 else (" depthwise" if w is not None and w.shape[1] == 1 else f" group={g}")
    pads = a.get("pads")
    extra = f",pads={pads}" if pads and len(set(pads)) > 1 else ""
    dil = a.get("dilations")
    extra += f",dil={dil}" if dil and set(dil) != {1} else ""
    return f"k{k} s{a.get('strides', [1])[0]}{kind}{extra}" + (" +bias" if len(node.input) > 2 else "")


def _attrs(node: onnx.NodeProto, consts: dict) -> str:
    if node.op_type == "Conv":
        return _conv(node, consts)
    parts = [f"{a.name}={_fmt(helper.get_attribute_value(a))}" for a in node.attribute]
    if node.op_type in _CONST_INPUT_OPS:
        ins = [("" if not i else _fmt(consts[i]) if i in consts else "dyn") for i in node.input[1:]]
        parts.append("inputs=(" + ", ".join(ins) + ")")
    return ",".join(parts)


def inventory(path) -> tuple[int, int, Counter, dict[str, Counter]]:
    model = onnx.load(str(path), load_external_data=False)
    g = model.graph
    consts = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    for n in g.node:
        if n.op_type == "Constant" and n.attribute[0].name == "value":
            consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    hist = Counter(n.op_type for n in g.node)
    attrs: dict[str, Counter] = defaultdict(Counter)
    for n in g.node:
        attrs[n.op_type][_attrs(n, consts)] += 1
    return opset, len(g.node), hist, attrs


def main(argv: list[str] | None = None) -> int:
    names = sys.argv[1:] if argv is None else argv
    for r in resolve(names):
        if not r.onnx_path.exists():
            print(f"## {r.name}: not built")
            continue
        opset, count, hist, attrs = inventory(r.onnx_path)
        print(f"## {r.name}: opset {opset}, {count} nodes")
        for op, c in sorted(hist.items(), key=lambda kv: (-kv[1], kv[0])):
            forms = "; ".join(f"{a or '-'} x{k}" for a, k in attrs[op].most_common())
            print(f"  {op:22s} {c:4d}  {forms}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
