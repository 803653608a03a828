"""Concat, Split, Slice, Gather, GatherElements, GatherND, Pad, Expand, Tile against onnxruntime."""
import numpy as np
import pytest
from onnx import helper

from onnx2tflite import UnsupportedModelError
from onnx2tflite.converter import tflite_io
from op_harness import check, graph_model, single_node

F, I64 = np.float32, np.int64
X4 = [1, 3, 6, 8]
INT64_MAX, INT64_MIN = np.iinfo(np.int64).max, np.iinfo(np.int64).min


def _sliced_shape(shape, starts, ends, axes, steps):
    """Output shape via numpy slicing (ONNX clamps like Python except that negative-step
    starts clamp into the tensor, which these cases avoid)."""
    index = [slice(None)] * len(shape)
    for s, e, a, st in zip(starts, ends, axes, steps):
        index[a] = slice(s, e, st)
    return list(np.empty(shape)[tuple(index)].shape)


# ---------------------------------------------------------------- Concat
@pytest.mark.parametrize("axis", [0, 1, 2, 3, -1, -3])
@pytest.mark.parametrize("keep", [False, True])
def test_concat_4d(axis, keep):
    shapes = [[1, 3, 4, 8], [1, 3, 4, 8]]
    out = list(shapes[0])
    out[axis] *= 2
    inputs = {f"x{i}": (s, F) for i, s in enumerate(shapes)}
    check(single_node("Concat", inputs, {"y": (out, F)}, axis=axis), keep_nchw_io=keep)


def test_concat_with_constant_and_uneven_sizes():
    c = np.linspace(-1, 1, 2 * 4 * 8, dtype=F).reshape(1, 2, 4, 8)
    model = single_node("Concat", {"a": ([1, 3, 4, 8], F), "b": ([1, 1, 4, 8], F)}, {"y": ([1, 6, 4, 8], F)},
                        {"c": c}, axis=1)
    check(model)


def test_concat_seven_inputs_becomes_a_tree():
    inputs = {f"x{i}": ([1, 2, 4, 4], F) for i in range(7)}
    result = check(single_node("Concat", inputs, {"y": ([1, 14, 4, 4], F)}, axis=1))
    assert result.summary["op_counts"]["CONCATENATION"] == 3


def test_concat_int64():
    c = np.arange(4, dtype=I64).reshape(2, 2)
    model = single_node("Concat", {"a": ([2, 3], I64)}, {"y": ([2, 5], I64)}, {"c": c}, axis=-1)
    check(model)


# ---------------------------------------------------------------- Split
def _split_model(opset, sizes, axis, shape=X4, dtype=F, num_outputs=None):
    n = num_outputs or len(sizes)
    dim = shape[axis]
    if sizes is None:
        chunk = -(-dim // n)
        sizes = [chunk] * (n - 1) + [dim - chunk * (n - 1)]
    outs = {f"y{i}": ([s if j == axis % len(shape) else d for j, d in enumerate(shape)], dtype)
            for i, s in enumerate(sizes)}
    inits, attrs = {}, {"axis": axis}
    if num_outputs:
        attrs["num_outputs"] = num_outputs
    elif opset >= 13:
        inits["s"] = np.array(sizes, I64)
    else:
        attrs["split"] = sizes
    return single_node("Split", {"x": (shape, dtype)}, outs, inits, opset=opset, **attrs)


@pytest.mark.parametrize("opset", [11, 13])
@pytest.mark.parametrize("sizes, axis", [([3, 3], 2), ([2, 4], 2), ([1, 1, 1], 1), ([4, 4], -1), ([1, 2], -3)])
@pytest.mark.parametrize("keep", [False, True])
def test_split(opset, sizes, axis, keep):
    check(_split_model(opset, sizes, axis), keep_nchw_io=keep)


@pytest.mark.parametrize("n, axis", [(2, 3), (3, -1), (2, 1)])  # 8/3 and 3/2 give a shorter last chunk
def test_split_18_num_outputs(n, axis):
    check(_split_model(18, None, axis, num_outputs=n))


def test_split_default_equal_no_attribute():
    outs = {"a": ([1, 3, 3, 8], F), "b": ([1, 3, 3, 8], F)}
    check(single_node("Split", {"x": (X4, F)}, outs, opset=11, axis=2))


def test_split_unequal_int64_uses_split_v():
    result = check(_split_model(13, [1, 3], 1, shape=[2, 4], dtype=I64))
    assert result.summary["op_counts"] == {"SPLIT_V": 1}


# ---------------------------------------------------------------- Slice
SLICE_CASES = [
    # starts, ends, axes, steps
    ([1], [5], [2], [1]),
    ([0, 2], [2, 7], [1, 3], [1, 2]),
    ([-4], [INT64_MAX], [-1], [1]),
    ([5], [INT64_MIN], [2], [-1]),            # reverse through index 0
    ([-1], [-100], [3], [-3]),
    ([7], [1], [3], [-2]),
    ([-100], [100], [2], [2]),                 # clamped both ends
    ([0, 0, 0, 0], [1, 3, 6, 8], [0, 1, 2, 3], [1, 1, 1, 1]),  # identity
    ([2], [2], [2], [1]),                      # empty -> skipped below
]


@pytest.mark.parametrize("starts, ends, axes, steps", [c for c in SLICE_CASES if c[0] != c[1]])
@pytest.mark.parametrize("keep", [False, True])
def test_slice_10(starts, ends, axes, steps, keep):
    out = _sliced_shape(X4, starts, ends, axes, steps)
    inits = {"s": np.array(starts, I64), "e": np.array(ends, I64), "a": np.array(axes, I64),
             "st": np.array(steps, I64)}
    check(single_node("Slice", {"x": (X4, F)}, {"y": (out, F)}, inits, opset=13), keep_nchw_io=keep)


@pytest.mark.parametrize("shape, starts, steps", [
    ([1, 3, 8, 8], [0, 1], [2, 2]),    # YOLOv5 Focus: x[:, :, 0::2, 1::2]
    ([1, 3, 7, 9], [1, 0], [2, 3]),    # odd sizes: the reshape window shifts left
    ([1, 3, 5, 8], [0, 0], [2, 4]),    # 3 * 2 > 5 on H: that axis keeps a strided STRIDED_SLICE
])
@pytest.mark.parametrize("keep", [False, True])
def test_slice_positive_strides_become_unit_stride_slices(shape, starts, steps, keep):
    out = _sliced_shape(shape, starts, [INT64_MAX] * 2, [2, 3], steps)
    inits = {"s": np.array(starts, I64), "e": np.array([INT64_MAX] * 2, I64), "a": np.array([2, 3], I64),
             "st": np.array(steps, I64)}
    result = check(single_node("Slice", {"x": (shape, F)}, {"y": (out, F)}, inits, opset=13), keep_nchw_io=keep)
    strides = [tuple(n.inputs[3].const_value.numpy()) for n in tflite_io.bytes_to_graph(result.tflite_bytes)
               if n.op_type == "STRIDED_SLICE"]
    n_over = sum(len(range(st, d, step)) * step > d for d, st, step in zip(shape[2:], starts, steps))
    assert sum(any(s != 1 for s in st) for st in strides) == (1 if n_over else 0), strides


def test_slice_negative_step_start_clamps_into_tensor():
    # ONNX clamps a negative-step start of -100 to index 0 (Python would give an empty slice).
    inits = {"s": np.array([-100], I64), "e": np.array([INT64_MIN], I64), "a": np.array([2], I64),
             "st": np.array([-1], I64)}
    check(single_node("Slice", {"x": (X4, F)}, {"y": ([1, 3, 1, 8], F)}, inits, opset=13))


def test_slice_10_axes_and_steps_omitted():
    inits = {"s": np.array([0, 1], I64), "e": np.array([1, 3], I64)}
    check(single_node("Slice", {"x": (X4, F)}, {"y": ([1, 2, 6, 8], F)}, inits, opset=10))


@pytest.mark.parametrize("axes", [None, [1, 3], [-3, -1]])
def test_slice_1_attributes(axes):
    starts, ends = [1, 2], [3, 6]
    attrs = {"starts": starts, "ends": ends}
    if axes is not None:
        attrs["axes"] = axes
    out = _sliced_shape(X4, starts, ends, axes or [0, 1], [1, 1])
    check(single_node("Slice", {"x": (X4, F)}, {"y": (out, F)}, opset=1, **attrs))


def test_slice_int64_data():
    inits = {"s": np.array([1], I64), "e": np.array([4], I64), "a": np.array([1], I64)}
    check(single_node("Slice", {"x": ([2, 5], I64)}, {"y": ([2, 3], I64)}, inits, opset=13))


def test_slice_runtime_starts_unsupported():
    node = helper.make_node("Slice", ["x", "s", "e"], ["y"], name="dyn_slice")
    model = graph_model([node], {"x": ([4, 4], F), "s": ([1], I64)}, {"y": ([None, None], F)},
                        {"e": np.array([3], I64)}, opset=13)
    with pytest.raises(UnsupportedModelError, match="dyn_slice.*'starts' must be a constant"):
        check(model)


# ---------------------------------------------------------------- Gather
@pytest.mark.parametrize("indices, axis, ops", [
    (np.array(2), 1, {"STRIDED_SLICE"}),            # scalar: rank drops
    (np.array(-1), -1, {"STRIDED_SLICE"}),
    (np.array([1, 2, 3]), 2, {"STRIDED_SLICE"}),     # contiguous
    (np.array([5, 3, 1]), 2, {"STRIDED_SLICE"}),     # reverse stride -2, ends before 0
    (np.array([1, 4, 7]), 3, {"STRIDED_SLICE"}),     # stride 3
    (np.array([[0, 2], [4, 6]]), 3, {"STRIDED_SLICE"}),  # arange reshaped to 2-D
    (np.array([2, 0, -1]), 1, {"GATHER"}),
    (np.array([[1, 1], [0, 5]]), -2, {"GATHER"}),
])
@pytest.mark.parametrize("keep", [False, True])
def test_gather_constant_indices(indices, axis, ops, keep):
    shape = list(X4)
    a = axis % 4
    out = shape[:a] + list(indices.shape) + shape[a + 1:]
    model = single_node("Gather", {"x": (shape, F)}, {"y": (out, F)}, {"i": indices.astype(I64)}, axis=axis)
    result = check(model, keep_nchw_io=keep)
    assert ops <= set(result.summary["op_counts"]) and "GATHER" not in set(result.summary["op_counts"]) - ops


@pytest.mark.parametrize("dtype", [np.int64, np.int32])
def test_gather_runtime_indices_negative(dtype):
    model = single_node("Gather", {"x": ([5, 4], F), "i": ([2, 3], dtype)}, {"y": ([2, 3, 4], F)}, axis=0)
    check(model, feeds={"x": np.random.default_rng(0).normal(size=(5, 4)).astype(F),
                        "i": np.array([[0, -1, 4], [-5, 2, 3]], dtype)})


def test_gather_constant_data_runtime_indices():
    emb = np.random.default_rng(1).normal(size=(10, 4)).astype(F)
    node = helper.make_node("Gather", ["emb", "i"], ["y"], axis=0)
    model = graph_model([node], {"i": ([3], I64)}, {"y": ([3, 4], F)}, {"emb": emb})
    check(model, feeds={"i": np.array([9, 0, -2], I64)})


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("const", [True, False])
def test_gather_elements(axis, const):
    shape, ishape = [3, 4, 5], [3, 2, 5]
    ishape[axis] = 2
    dim = shape[axis]
    idx = np.random.default_rng(2).integers(-dim, dim, size=ishape).astype(I64)
    if const:
        model = single_node("GatherElements", {"x": (shape, F)}, {"y": (ishape, F)}, {"i": idx}, axis=axis)
        check(model)
    else:
        model = single_node("GatherElements", {"x": (shape, F), "i": (ishape, I64)}, {"y": (ishape, F)}, axis=axis)
        check(model, feeds={"x": np.random.default_rng(3).normal(size=shape).astype(F), "i": idx})


@pytest.mark.parametrize("batch_dims, ishape", [(0, [2, 1]), (0, [2, 3, 2]), (1, [3, 2, 1]), (1, [3, 2])])
@pytest.mark.parametrize("const", [True, False])
def test_gather_nd(batch_dims, ishape, const):
    shape = [3, 4, 5]
    k = ishape[-1]
    dims = np.array(shape[batch_dims:batch_dims + k])
    rng = np.random.default_rng(4)
    idx = (rng.integers(0, 100, size=ishape) % dims - (rng.random(ishape) < 0.3) * dims).astype(I64)
    out = ishape[:-1] + shape[batch_dims + k:]
    if const:
        model = single_node("GatherND", {"x": (shape, F)}, {"y": (out, F)}, {"i": idx}, batch_dims=batch_dims)
        check(model)
    else:
        model = single_node("GatherND", {"x": (shape, F), "i": (ishape, I64)}, {"y": (out, F)},
                            batch_dims=batch_dims)
        check(model, feeds={"x": rng.normal(size=shape).astype(F), "i": idx})


# ---------------------------------------------------------------- Pad
PADS = [
    [0, 0, 1, 2, 0, 0, 2, 1],
    [0, 0, 0, 3, 0, 0, 0, 0],
    [0, 1, 1, 1, 0, 0, 1, 1],
    [0, 0, -1, 2, 0, 0, 1, -3],   # negative pads crop
]


@pytest.mark.parametrize("pads", PADS)
@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
@pytest.mark.parametrize("keep", [False, True])
def test_pad_11(pads, mode, keep):
    out = [d + b + a for d, b, a in zip(X4, pads[:4], pads[4:])]
    model = single_node("Pad", {"x": (X4, F)}, {"y": (out, F)}, {"p": np.array(pads, I64)}, opset=13, mode=mode)
    check(model, keep_nchw_io=keep)


@pytest.mark.parametrize("pads", PADS[:3])
def test_pad_19_wrap(pads):
    out = [d + b + a for d, b, a in zip(X4, pads[:4], pads[4:])]
    check(single_node("Pad", {"x": (X4, F)}, {"y": (out, F)}, {"p": np.array(pads, I64)}, opset=19, mode="wrap"))


@pytest.mark.parametrize("value, op", [(0.0, "PAD"), (1.5, "PADV2")])
def test_pad_2_attributes(value, op):
    result = check(single_node("Pad", {"x": (X4, F)}, {"y": ([1, 3, 8, 9], F)}, opset=2,
                               pads=[0, 0, 1, 0, 0, 0, 1, 1], value=value))
    assert op in result.summary["op_counts"]


def test_pad_constant_value_input():
    inits = {"p": np.array([0, 0, 2, 1, 0, 0, 0, 1], I64), "v": np.array(-2.5, F)}
    check(single_node("Pad", {"x": (X4, F)}, {"y": ([1, 3, 8, 10], F)}, inits, opset=13))


def test_pad_runtime_constant_value():
    node = helper.make_node("Pad", ["x", "p", "v"], ["y"])
    model = graph_model([node], {"x": (X4, F), "v": ([], F)}, {"y": ([1, 3, 7, 9], F)},
                        {"p": np.array([0, 0, 1, 1, 0, 0, 0, 0], I64)}, opset=13)
    check(model)


@pytest.mark.parametrize("axes, pads", [([2, 3], [1, 0, 0, 2]), ([-1], [2, 1]), ([-2], [-1, 1])])
def test_pad_18_axes(axes, pads):
    out = list(X4)
    n = len(axes)
    for i, a in enumerate(axes):
        out[a] += pads[i] + pads[i + n]
    inits = {"p": np.array(pads, I64), "v": np.array(0.5, F), "a": np.array(axes, I64)}
    check(single_node("Pad", {"x": (X4, F)}, {"y": (out, F)}, inits, opset=18))


def test_pad_int64_data():
    inits = {"p": np.array([1, 0, 0, 2], I64), "v": np.array(7, I64)}
    check(single_node("Pad", {"x": ([2, 3], I64)}, {"y": ([3, 5], I64)}, inits, opset=13))


def test_pad_reflect_too_large_unsupported():
    node = helper.make_node("Pad", ["x", "p"], ["y"], name="big_reflect", mode="reflect")
    model = graph_model([node], {"x": ([1, 3, 2, 2], F)}, {"y": ([1, 3, 6, 2], F)},
                        {"p": np.array([0, 0, 2, 0, 0, 0, 2, 0], I64)}, opset=13)
    with pytest.raises(UnsupportedModelError, match="big_reflect"):
        check(model)


# ---------------------------------------------------------------- Expand / Tile
@pytest.mark.parametrize("in_shape, shape", [
    ([1, 3, 1, 8], [2, 3, 4, 8]),
    ([3, 1], [2, 1, 6]),             # rank grows
    ([1, 3, 4, 8], [1, 1, 1, 1]),    # bidirectional: shape smaller than input
    ([4, 1], [1, 4, 5]),
])
@pytest.mark.parametrize("keep", [False, True])
def test_expand(in_shape, shape, keep):
    out = list(np.broadcast_shapes(tuple(in_shape), tuple(shape)))
    model = single_node("Expand", {"x": (in_shape, F)}, {"y": (out, F)}, {"s": np.array(shape, I64)})
    result = check(model, keep_nchw_io=keep)
    assert "BROADCAST_TO" not in result.summary["op_counts"]


def test_expand_int64_uses_broadcast_to():
    model = single_node("Expand", {"x": ([3, 1], I64)}, {"y": ([3, 4], I64)}, {"s": np.array([1, 4], I64)})
    check(model)


@pytest.mark.parametrize("in_shape, repeats", [
    ([1, 3, 2, 8], [2, 1, 2, 1]),
    ([1, 3, 2, 8], [1, 1, 3, 3]),
    ([2, 3], [3, 2]),
    ([1, 2, 1, 2, 1, 2], [2, 2, 2, 2, 2, 2]),   # too many new axes: TILE
])
def test_tile(in_shape, repeats):
    out = [d * r for d, r in zip(in_shape, repeats)]
    model = single_node("Tile", {"x": (in_shape, F)}, {"y": (out, F)}, {"r": np.array(repeats, I64)})
    check(model)
    check(model, keep_nchw_io=True)


def test_tile_int64():
    model = single_node("Tile", {"x": ([2, 3], I64)}, {"y": ([4, 3], I64)}, {"r": np.array([2, 1], I64)})
    check(model)
