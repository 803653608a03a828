"""load -> lower -> layout -> optimize -> write -> validate."""
from __future__ import annotations

import json
import time
from collections import Counter

from onnx2tflite.converter.atomic import write_atomic


def summarize(graph, data: bytes, seconds: float) -> dict:
    ops = Counter(node.op_type for node in graph)
    return {"op_counts": dict(sorted(ops.items())), "op_total": sum(ops.values()),
            "transpose_count": ops.get("TRANSPOSE", 0), "size_bytes": len(data), "seconds": seconds}


def run_pipeline(result_cls, model, output=None, *, input_shapes=None, keep_nchw_io=False,
                 validate=True, seed=0, progress=None):
    from onnx2tflite.converter import load, lower, optimize, tflite_io
    from onnx2tflite.layout import boundary, sink
    from onnx2tflite.validate.compare import IO_METADATA

    say = progress or (lambda msg: None)
    timings = {}
    t0 = time.perf_counter()

    def step(name):
        timings[name] = time.perf_counter() - t0 - sum(timings.values())

    say("loading ONNX model")
    onnx_model, label = load.load(model, input_shapes)
    step("load")
    say("lowering to TFLite ops")
    graph = lower.lower(onnx_model, label)
    step("lower")
    say("layout: NHWC + transpose sinking")
    io = boundary.set_boundary_layout(graph, channels_last=not keep_nchw_io)
    graph = sink.optimize_layout(graph)
    step("layout")
    optimize.optimize(graph)
    step("optimize")
    graph.meta.setdefault("tflite_metadata", {})[IO_METADATA] = json.dumps(io, sort_keys=True).encode()
    data = tflite_io.graph_to_bytes(graph)
    step("write")
    seconds = time.perf_counter() - t0
    summary = summarize(graph, data, seconds)
    report = None
    if validate:
        say("validating against onnxruntime")
        from onnx2tflite.validate.compare import validate as run_validation

        report = run_validation(model, data, seed=seed, input_shapes=input_shapes)
        step("validate")
    path = write_atomic(output, data) if output is not None else None
    return result_cls(tflite_bytes=data, output_path=path, summary=summary, validation=report, timings=timings)
