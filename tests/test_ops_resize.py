"""Resize (opsets 10-19) and Upsample (7, 9) against onnxruntime.

Every (mode, coordinate_transformation_mode, nearest_mode, geometry) claimed supported here
was verified numerically; the combinations whose pixels TFLite cannot reproduce must raise
Unsupported (tested below).
"""
import numpy as np
import pytest
from onnx import helper

from op_harness import check, graph_model, single_node
from onnx2tflite import UnsupportedModelError, convert
from op_harness import one_xnnpack_partition, ort_output_shape

F32, I64 = np.float32, np.int64


def resize_model(x_shape, opset=13, scales=None, sizes=None, roi=None, name="resize", **attrs):
    """Resize with constant roi/scales/sizes; absent optional inputs are "" (opset 11 needs roi and scales)."""
    if opset < 11:
        inits = {"scales": np.asarray(scales, F32)}
    else:
        empty = np.array([], F32) if opset == 11 else None
        inits = {"roi": np.asarray(roi, F32) if roi is not None else empty,
                 "scales": np.asarray(scales, F32) if scales is not None else empty,
                 "sizes": np.asarray(sizes, I64) if sizes is not None else None}
    names = ["x"] + [n if a is not None else "" for n, a in inits.items()]
    while names[-1] == "":
        names.pop()
    inits = {n: a for n, a in inits.items() if a is not None}
    shape = ort_output_shape("Resize", {"x": (x_shape, F32)}, inits, opset, names=names, **attrs)
    node = helper.make_node("Resize", names, ["y"], name=name, **attrs)
    return graph_model([node], {"x": (x_shape, F32)}, {"y": (shape, F32)}, inits, opset)


CTMS = ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "half_pixel_symmetric"]

# Geometries: integer up, non-integer up/down (scales and sizes), 2x down, output size 1.
GEOMETRIES = {
    "up2x": dict(x=[1, 2, 4, 6], scales=[1, 1, 2, 2]),
    "up3x_1.5x": dict(x=[1, 2, 4, 6], scales=[1, 1, 3, 1.5]),
    "down2x": dict(x=[1, 2, 8, 8], scales=[1, 1, 0.5, 0.5]),
    "sizes_up_ratio": dict(x=[1, 2, 5, 7], sizes=[1, 2, 8, 12]),
    "sizes_down_ratio": dict(x=[1, 2, 6, 9], sizes=[1, 2, 4, 5]),
    "sizes_to_1": dict(x=[1, 2, 6, 6], sizes=[1, 2, 1, 3]),
}


def _geometry_model(geometry, opset=19, **attrs):
    g = dict(GEOMETRIES[geometry])
    return resize_model(g.pop("x"), opset=opset, **g, **attrs)


# The nearest combinations TFLite reproduces exactly, per geometry (all others: Unsupported).
NEAREST_OK = {
    ("half_pixel", "round_prefer_floor"): set(GEOMETRIES),
    ("half_pixel", "round_prefer_ceil"): set(GEOMETRIES),
    ("pytorch_half_pixel", "round_prefer_floor"): set(GEOMETRIES),
    ("pytorch_half_pixel", "round_prefer_ceil"): set(GEOMETRIES),
    ("half_pixel_symmetric", "round_prefer_floor"): set(GEOMETRIES),
    ("half_pixel_symmetric", "round_prefer_ceil"): set(GEOMETRIES),
    ("align_corners", "round_prefer_ceil"): set(GEOMETRIES),
    ("align_corners", "round_prefer_floor"): {"up2x", "down2x", "sizes_up_ratio", "sizes_down_ratio"},
    ("asymmetric", "floor"): set(GEOMETRIES),
    ("asymmetric", "round_prefer_floor"): {"up2x", "down2x", "sizes_to_1"},
    ("asymmetric", "round_prefer_ceil"): {"down2x", "sizes_to_1"},
    ("asymmetric", "ceil"): {"down2x", "sizes_down_ratio", "sizes_to_1"},
    ("half_pixel", "floor"): {"down2x", "sizes_to_1"},
    ("half_pixel", "ceil"): {"down2x", "sizes_to_1"},
    ("pytorch_half_pixel", "floor"): {"down2x", "sizes_to_1"},
    ("pytorch_half_pixel", "ceil"): {"down2x", "sizes_to_1"},
    ("half_pixel_symmetric", "floor"): {"down2x", "sizes_to_1"},
    ("half_pixel_symmetric", "ceil"): {"down2x", "sizes_to_1"},
    ("align_corners", "ceil"): {"sizes_to_1"},
}
NEAREST_CASES = [(ctm, nm, g) for ctm in CTMS for nm in ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]
                 for g in GEOMETRIES]


@pytest.mark.parametrize("ctm,nearest_mode,geometry", NEAREST_CASES)
def test_resize_nearest(ctm, nearest_mode, geometry):
    model = _geometry_model(geometry, mode="nearest", coordinate_transformation_mode=ctm, nearest_mode=nearest_mode)
    if geometry in NEAREST_OK.get((ctm, nearest_mode), ()):
        check(model)
    else:
        with pytest.raises(UnsupportedModelError, match="nearest.*picks different pixels"):
            convert(model, validate=False)


@pytest.mark.parametrize("ctm", CTMS)
@pytest.mark.parametrize("geometry", list(GEOMETRIES))
def test_resize_linear(ctm, geometry):
    model = _geometry_model(geometry, mode="linear", coordinate_transformation_mode=ctm)
    if ctm == "pytorch_half_pixel" and geometry == "sizes_to_1":  # samples pixel 0, TFLite the centre
        with pytest.raises(UnsupportedModelError, match="RESIZE_BILINEAR samples different positions"):
            convert(model, validate=False)
        return
    result = check(model)
    assert one_xnnpack_partition(result.tflite_bytes)


@pytest.mark.parametrize("ctm,nearest_mode,scales", [
    ("asymmetric", "floor", [1, 1, 2, 2]),  # ultralytics YOLO
    ("half_pixel", "round_prefer_floor", [1, 1, 2, 2]),  # the ONNX defaults
    ("asymmetric", "floor", [1, 1, 3, 2]),
    ("half_pixel", "round_prefer_floor", [1, 1, 0.5, 0.5]),  # every other pixel, starting at 1: crop + pad
    ("asymmetric", "floor", [1, 1, 0.5, 1]),
    ("asymmetric", "floor", [1, 1, 0.5, 2]),  # pick along H, repeat along W
])
def test_resize_nearest_integer_factors_stay_delegated(ctm, nearest_mode, scales):
    model = resize_model([1, 3, 6, 8], scales=scales, mode="nearest", coordinate_transformation_mode=ctm,
                         nearest_mode=nearest_mode)
    result = check(model)
    assert one_xnnpack_partition(result.tflite_bytes)
    assert "RESIZE_NEAREST_NEIGHBOR" not in result.summary["op_counts"]


def test_resize_nearest_pick_needs_pad():
    """7 -> 4 with half_pixel picks pixels 0, 2, 4, 6: 8 rows are needed for the (4, 2) reshape."""
    result = check(resize_model([1, 2, 7, 7], sizes=[1, 2, 4, 4], mode="nearest"))
    assert one_xnnpack_partition(result.tflite_bytes)


def test_resize_segformer_linear_sizes():
    """Segformer: linear half_pixel (PyTorch align_corners=False) to a non-integer ratio size."""
    result = check(resize_model([1, 4, 7, 9], sizes=[1, 4, 28, 36], mode="linear"))
    assert one_xnnpack_partition(result.tflite_bytes)


@pytest.mark.parametrize("opset", [11, 13, 18])
@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_resize_opset_forms(opset, mode):
    check(resize_model([1, 2, 4, 5], opset=opset, scales=[1, 1, 2, 2], mode=mode,
                       coordinate_transformation_mode="asymmetric", nearest_mode="floor"))
    check(resize_model([1, 2, 4, 5], opset=opset, sizes=[1, 2, 7, 9], mode=mode,
                       coordinate_transformation_mode="align_corners", nearest_mode="round_prefer_ceil"))


@pytest.mark.parametrize("scales", [[1, 1, 2, 2], [1, 1, 3, 1.5], [1, 1, 0.5, 0.5]], ids=["up2", "up3_1.5", "down2"])
@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_resize_opset10(mode, scales):
    check(resize_model([1, 2, 4, 6], opset=10, scales=scales, mode=mode))


@pytest.mark.parametrize("opset", [7, 9])
@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_upsample(opset, mode):
    scales = np.array([1, 1, 2, 3], F32)
    if opset == 7:
        model = single_node("Upsample", {"x": ([1, 2, 3, 4], F32)}, {"y": ([1, 2, 6, 12], F32)}, opset=7,
                            mode=mode, scales=scales.tolist())
    else:
        model = single_node("Upsample", {"x": ([1, 2, 3, 4], F32)}, {"y": ([1, 2, 6, 12], F32)}, {"scales": scales},
                            opset=9, mode=mode)
    check(model)


def test_resize_opset18_axes_and_aspect_ratio():
    check(resize_model([1, 2, 4, 6], opset=18, scales=[2, 2], axes=[2, 3], mode="nearest",
                       coordinate_transformation_mode="asymmetric", nearest_mode="floor"))
    check(resize_model([1, 2, 4, 6], opset=18, sizes=[8, 9], axes=[2, 3], mode="linear",
                       keep_aspect_ratio_policy="not_larger"))
    check(resize_model([1, 2, 4, 6], opset=18, sizes=[10, 9], axes=[2, 3], mode="linear",
                       keep_aspect_ratio_policy="not_smaller"))


def test_resize_antialias_upscale_has_no_effect():
    check(resize_model([1, 2, 4, 6], opset=18, scales=[1, 1, 2, 2], mode="linear", antialias=1))


def test_resize_roi_input_ignored():
    check(resize_model([1, 2, 4, 6], opset=13, scales=[1, 1, 2, 2], roi=[0, 0, 0.2, 0.1, 1, 1, 0.8, 0.7],
                       mode="linear"))


def test_resize_keep_nchw_io():
    check(resize_model([1, 2, 4, 6], scales=[1, 1, 2, 2], mode="nearest", coordinate_transformation_mode="asymmetric",
                       nearest_mode="floor"), keep_nchw_io=True)
    check(resize_model([1, 2, 4, 6], sizes=[1, 2, 7, 9], mode="linear"), keep_nchw_io=True)


@pytest.mark.parametrize("attrs,match", [
    (dict(mode="cubic"), "cubic"),
    (dict(mode="linear", antialias=1, scales=[1, 1, 0.5, 0.5]), "antialias"),
    (dict(mode="linear", coordinate_transformation_mode="tf_crop_and_resize"), "tf_crop_and_resize"),
    (dict(mode="linear", coordinate_transformation_mode="tf_half_pixel_for_nn"), "samples different positions"),
    (dict(mode="nearest", nearest_mode="floor"), "picks different pixels"),
    (dict(mode="linear", scales=[1, 1, 1.5, 1.5]), "samples different positions"),  # 1/scale != in/out
    (dict(mode="nearest", scales=[1, 2, 2, 2]), "channel"),
], ids=["cubic", "antialias_down", "crop_and_resize", "linear_tf_half_pixel_for_nn", "nearest_half_pixel_floor",
        "linear_scale_not_out_over_in", "channel_axis"])
def test_resize_unsupported(attrs, match):
    attrs = {"scales": [1, 1, 2, 2], **attrs}
    crop = attrs.get("coordinate_transformation_mode") == "tf_crop_and_resize"
    model = resize_model([1, 2, 5, 5], opset=18, roi=[0, 0, 0.2, 0.1, 1, 1, 0.8, 0.7] if crop else None,
                         name="bad_resize", **attrs)
    with pytest.raises(UnsupportedModelError, match=f"bad_resize.*{match}"):
        convert(model, validate=False)
