"""Python API: ``convert`` mirrors the command line."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

from onnx2tflite.converter.pipeline import run_pipeline


@dataclass
class ConversionResult:
    tflite_bytes: bytes
    output_path: Path | None
    summary: dict
    validation: object | None = None  # onnx2tflite.validate.compare.ValidationReport
    timings: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.validation is None or self.validation.ok


def convert(model, output: str | os.PathLike | None = None, *,
            input_shapes: Mapping[str, Sequence[int]] | None = None,
            keep_nchw_io: bool = False, validate: bool = True, seed: int = 0,
            progress: Callable[[str], None] | None = None) -> ConversionResult:
    """Convert an ONNX model (path, bytes or ``onnx.ModelProto``) to TFLite.

    output: where to write the .tflite (atomically); None keeps it in memory only.
    input_shapes: {input name: dims} fixing dynamic dimensions.
    keep_nchw_io: keep ONNX (NCHW) layout at the graph boundary instead of NHWC.
    validate: compare against onnxruntime on seeded random inputs (``seed``).
    The file is written even when validation fails; check ``result.ok``.
    """
    return run_pipeline(ConversionResult, model, output, input_shapes=input_shapes,
                        keep_nchw_io=keep_nchw_io, validate=validate, seed=seed, progress=progress)
