"""Load an ONNX model, fix its input shapes, infer shapes, fold constants.

Result: an onnx-ir model whose every value the mappers need has a static shape.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import onnx
import onnx_ir as ir

from onnx2tflite.errors import ConversionError, InputShapeError

# Ops whose outputs are always computable at conversion time when their inputs are.
_SHAPE_OPS = {"Shape", "Size", "ConstantOfShape", "Range", "EyeLike"}


def read_model(source: str | os.PathLike | onnx.ModelProto | bytes) -> tuple[onnx.ModelProto, str]:
    """Return (proto, a label for messages). External data next to the file is loaded."""
    if isinstance(source, onnx.ModelProto):
        return source, "<ModelProto>"
    if isinstance(source, (bytes, bytearray)):
        return onnx.load_from_string(bytes(source)), "<bytes>"
    path = Path(source)
    if not path.is_file():
        raise ConversionError(f"{path}: no such file")
    try:
        proto = onnx.load(str(path))
    except Exception as e:  # protobuf raises a bare DecodeError
        raise ConversionError(f"{path}: not a readable ONNX model ({type(e).__name__}: {e})") from None
    if not proto.graph.output:
        raise ConversionError(f"{path}: not an ONNX model (no graph outputs); is it empty or another format?")
    return proto, str(path)


def _graph_inputs(proto: onnx.ModelProto):
    inits = {i.name for i in proto.graph.initializer}
    return [i for i in proto.graph.input if i.name not in inits]


def apply_input_shapes(proto: onnx.ModelProto, shapes: Mapping[str, Sequence[int]] | None, label: str) -> None:
    """Overwrite input dimensions, then insist every input dimension is static."""
    inputs = {i.name: i for i in _graph_inputs(proto)}
    for name, dims in (shapes or {}).items():
        if name not in inputs:
            raise ConversionError(f"{label}: --input-shape names '{name}', but the model's inputs are "
                                  f"{', '.join(inputs) or '(none)'}")
        tshape = inputs[name].type.tensor_type.shape
        if len(tshape.dim) not in (0, len(dims)):
            raise ConversionError(f"{label}: input '{name}' has rank {len(tshape.dim)}, "
                                  f"--input-shape gives {len(dims)} dimensions")
        tshape.ClearField("dim")
        for d in dims:
            tshape.dim.add().dim_value = int(d)
    dynamic = []
    for name, inp in inputs.items():
        dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else (d.dim_param or "?")
                for d in inp.type.tensor_type.shape.dim]
        if any(not isinstance(d, int) for d in dims):
            dynamic.append(f"  {name}: [{', '.join(str(d) for d in dims)}]")
    if dynamic:
        example = next(iter(inputs))
        raise InputShapeError(
            f"{label}: inputs with dynamic dimensions:\n" + "\n".join(dynamic)
            + f"\nFix them with --input-shape NAME:d0,d1,... (e.g. --input-shape {example}:1,3,640,640), "
              "or input_shapes={...} in the Python API.")


def _constants_to_initializers(graph: ir.Graph) -> None:
    """Constant nodes (and Identity of a constant) become initializers, so every pass sees
    constants one way: ``value.const_value``."""
    for node in list(graph):
        if node.domain not in ("", "ai.onnx"):
            continue
        if node.op_type == "Constant" and "value" in node.attributes:
            tensor = node.attributes["value"].value
        elif node.op_type == "Identity" and node.inputs[0] is not None and node.inputs[0].const_value is not None:
            tensor = node.inputs[0].const_value
        else:
            continue
        out = node.outputs[0]
        if out.is_graph_output():
            continue
        value = ir.Value(name=out.name, shape=ir.Shape(tensor.shape), type=ir.TensorType(tensor.dtype),
                         const_value=tensor)
        out.replace_all_uses_with(value)
        graph.remove(node, safe=True)
        out.name = None
        graph.register_initializer(value)


def _always_fold_shape_ops(node: ir.Node) -> bool | None:
    """ConstantOfShape is kept by onnxscript by default; TFLite has no use for it."""
    return True if node.op_type in _SHAPE_OPS and node.domain in ("", "ai.onnx") else None


def _needs_folding(model: ir.Model) -> bool:
    for node in model.graph:
        if node.op_type in _SHAPE_OPS:
            return True
        if node.op_type != "Constant" and node.inputs and all(
                v is None or v.const_value is not None for v in node.inputs):
            return True
    return False


def _infer(proto: onnx.ModelProto, label: str) -> onnx.ModelProto:
    try:
        return onnx.shape_inference.infer_shapes(proto, strict_mode=False, data_prop=True)
    except Exception as e:
        raise ConversionError(f"{label}: ONNX shape inference failed: {e}") from None


def load(source, input_shapes: Mapping[str, Sequence[int]] | None = None) -> tuple[ir.Model, str]:
    proto, label = read_model(source)
    if isinstance(source, onnx.ModelProto):
        proto = onnx.ModelProto.FromString(proto.SerializeToString())  # never edit the caller's model
    apply_input_shapes(proto, input_shapes, label)
    model = ir.from_proto(_infer(proto, label))
    _constants_to_initializers(model.graph)
    for _ in range(3):
        if not _needs_folding(model):
            break
        # Imported only when needed: the optimizer costs ~0.3 s of start-up.
        from onnxscript import optimizer

        optimizer.fold_constants(model, should_fold=_always_fold_shape_ops)
        optimizer.remove_unused_nodes(model)
        model = ir.from_proto(_infer(ir.to_proto(model), label))
        _constants_to_initializers(model.graph)
    from onnx2tflite.converter.onnx_fusions import run_all

    run_all(model.graph)
    return model, label
