"""Model recipes: how to build each zoo model offline with seeded random weights.

Each recipe's ``build(path)`` writes an ONNX file (opset 17, static batch-1 input)
and returns the exporter used.  Heavy imports (torch, timm, ...) happen inside
the build functions only.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import CACHE_DIR, SAMPLE_PATH

NUM_YOLO_CLASSES = 80


@dataclass(frozen=True)
class Recipe:
    name: str
    family: str
    input_shape: tuple[int, int, int, int]
    build: Callable[[Path], str]
    requires: tuple[str, ...]  # importable modules needed to build
    zero_transposes: bool = False  # converter must emit no TRANSPOSE at all
    quick: bool = False  # part of `model_zoo.run --quick`
    # extra sanity check on the outputs for two different inputs; raises ValueError
    check: Callable[[list[np.ndarray], list[np.ndarray]], None] | None = None
    path: Path | None = field(default=None)

    @property
    def onnx_path(self) -> Path:
        return self.path or CACHE_DIR / f"{self.name}.onnx"

    @property
    def input_size(self) -> int:
        return self.input_shape[-1]


def _shape(size: int) -> tuple[int, int, int, int]:
    return (1, 3, size, size)


def _builder(body: Callable) -> Callable[[Path], str]:
    """Wrap body(path, prep): offline env + torchvision fix, torch RNG seeded."""

    def build(path: Path) -> str:
        from ._compat import prepare

        prepare()
        from . import prep

        prep.seed_torch()
        return body(path, prep)

    return build


# --------------------------------------------------------------------- timm
def _timm(model_name: str, size: int = 224, **kwargs) -> Callable[[Path], str]:
    @_builder
    def build(path: Path, prep) -> str:
        import timm

        model = prep.seeded_eval(timm.create_model(model_name, pretrained=False, **kwargs), _shape(size))
        return prep.export(model, _shape(size), path, ["input"], ["logits"])

    return build


# ------------------------------------------------------------- transformers
def _segformer(size: int = 512) -> Callable[[Path], str]:
    @_builder
    def build(path: Path, prep) -> str:
        from transformers import SegformerConfig, SegformerForSemanticSegmentation

        config = SegformerConfig(  # nvidia/mit-b0 sizes, ADE20k label count
            hidden_sizes=[32, 64, 160, 256],
            depths=[2, 2, 2, 2],
            num_attention_heads=[1, 2, 5, 8],
            sr_ratios=[8, 4, 2, 1],
            decoder_hidden_size=256,
            num_labels=150,
        )
        model = prep.seeded_eval(prep.LogitsOnly(SegformerForSemanticSegmentation(config)), _shape(size))
        return prep.export(model, _shape(size), path, ["pixel_values"], ["logits"])

    return build


# --------------------------------------------------------------- ultralytics
def _yolo(cfg: str, size: int = 640) -> Callable[[Path], str]:
    @_builder
    def build(path: Path, prep) -> str:
        from ultralytics import YOLO

        yolo = YOLO(cfg)  # from the yaml shipped with ultralytics, no weights
        gen = prep.generator()
        for seq in yolo.model.model[-1].cv3:  # bias_init() puts class logits near -10: re-draw
            prep.uniform_(seq[-1].bias, -1.0, 0.0, gen)
        prep.seeded_eval(yolo.model, _shape(size))
        cwd = os.getcwd()
        with tempfile.TemporaryDirectory() as tmp:  # the exporter writes into cwd
            os.chdir(tmp)
            try:
                out = yolo.export(format="onnx", opset=prep.OPSET, imgsz=size, batch=1,
                                  dynamic=False, simplify=True, half=False, device="cpu")
                shutil.move(out, path)
            finally:
                os.chdir(cwd)
        return "ultralytics (torchscript + onnxslim)"

    return build


def _yolo_check(outs_a: list[np.ndarray], outs_b: list[np.ndarray]) -> None:
    """output0 rows are [cx, cy, w, h, 80 class scores, (32 mask coefs)] x anchors.

    The box centres are dominated by the anchor grid, so check the box sizes and
    class scores separately; scores must also not be saturated at 0 or 1.
    """
    a, b = outs_a[0][0], outs_b[0][0]
    for part, rows in (("box w/h", slice(2, 4)), ("class scores", slice(4, 4 + NUM_YOLO_CLASSES))):
        rel = float(np.linalg.norm(a[rows] - b[rows]) / np.linalg.norm(a[rows]))
        if rel <= 1e-2:
            raise ValueError(f"{part} barely depend on the input (rel L2 diff {rel:.2e})")
    scores = a[4 : 4 + NUM_YOLO_CLASSES]
    live = float(np.mean((scores > 0.01) & (scores < 0.99)))
    if live < 0.5:
        raise ValueError(f"class scores saturated: only {live:.1%} in (0.01, 0.99)")


# ------------------------------------------------------------------ registry
_TIMM = ("torch", "timm", "torchvision")
_HF = ("torch", "transformers")
_YOLO = ("torch", "ultralytics", "torchvision")

RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in [
        Recipe("yolov5nu", "ultralytics", _shape(640), _yolo("yolov5nu.yaml"), _YOLO, check=_yolo_check),
        Recipe("yolov8n", "ultralytics", _shape(640), _yolo("yolov8n.yaml"), _YOLO, check=_yolo_check,
               quick=True),
        Recipe("yolo11n", "ultralytics", _shape(640), _yolo("yolo11n.yaml"), _YOLO, check=_yolo_check),
        Recipe("yolov8n-seg", "ultralytics", _shape(640), _yolo("yolov8n-seg.yaml"), _YOLO,
               check=_yolo_check),
        Recipe("segformer-b0", "transformers", _shape(512), _segformer(), _HF),
        Recipe("mobilenetv3_large_100", "timm", _shape(224), _timm("mobilenetv3_large_100"), _TIMM,
               zero_transposes=True, quick=True),
        Recipe("resnet18", "timm", _shape(224), _timm("resnet18"), _TIMM, zero_transposes=True, quick=True),
        Recipe("efficientnet_b0", "timm", _shape(224), _timm("efficientnet_b0"), _TIMM, zero_transposes=True),
        Recipe("vit_tiny_patch16_224", "timm", _shape(224), _timm("vit_tiny_patch16_224"), _TIMM),
    ]
}

# The committed demo model (model_zoo/samples/sample_cnn.onnx, ~2.7 MB).
SAMPLE = Recipe("sample_cnn", "timm", _shape(224), _timm("mobilenetv3_small_050", num_classes=100), _TIMM,
                zero_transposes=True, quick=True, path=SAMPLE_PATH)
ALL = {**RECIPES, SAMPLE.name: SAMPLE}
