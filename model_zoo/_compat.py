"""Environment helpers for building zoo models offline.

The PyPI torchvision wheels for Linux are CUDA builds: with the CPU torch wheel
their ``_C`` extension fails to load, and torchvision >= 0.28 then dies at import
("operator torchvision::nms does not exist") because ``_meta_registrations``
registers fake kernels for ``nms``/``qnms`` unconditionally.  Nothing in the zoo
needs torchvision's C++ ops (only ultralytics' NMS post-processing, never used for
export), so when that happens we declare the two op schemas ourselves and import
torchvision again.  Its Python parts (transforms, model definitions) then work;
its C++ ops (``torchvision.ops.nms``, ``roi_align``...) stay unavailable.
"""

from __future__ import annotations

import os
import sys

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "YOLO_OFFLINE": "1",  # ultralytics: skip online checks / downloads
    "YOLO_AUTOINSTALL": "false",  # ultralytics: never pip-install requirements
    "YOLO_VERBOSE": "false",
}

_tv_lib = None  # keeps the torch.library fragment alive


def set_offline_env() -> None:
    for k, v in OFFLINE_ENV.items():
        os.environ.setdefault(k, v)


def import_torchvision():
    """Import torchvision, working around a missing/incompatible C++ extension."""
    global _tv_lib
    try:
        import torchvision

        return torchvision
    except RuntimeError as e:
        if "torchvision::" not in str(e) or _tv_lib is not None:
            raise
    import torch

    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    _tv_lib = torch.library.Library("torchvision", "FRAGMENT")
    for op in ("nms", "qnms"):
        _tv_lib.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    import torchvision

    return torchvision


def prepare() -> None:
    """Call before importing timm / transformers / ultralytics."""
    set_offline_env()
    import_torchvision()
