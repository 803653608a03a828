"""DepthToSpace and SpaceToDepth against onnxruntime."""
import numpy as np
import pytest

from op_harness import check, single_node
from onnx2tflite import UnsupportedModelError, convert
from op_harness import node_model, one_xnnpack_partition


@pytest.mark.parametrize("mode", ["DCR", "CRD"])
@pytest.mark.parametrize("blocksize,shape", [(2, [1, 8, 3, 4]), (3, [2, 18, 2, 3]), (2, [1, 4, 5, 5])],
                         ids=["b2", "b3_batch2", "b2_one_out_channel"])
def test_depth_to_space(mode, blocksize, shape):
    result = check(node_model("DepthToSpace", {"x": (shape, np.float32)}, opset=13, blocksize=blocksize, mode=mode))
    assert one_xnnpack_partition(result.tflite_bytes)


def test_depth_to_space_opset1_form():
    """Before opset 11 there is no mode attribute: DCR."""
    check(node_model("DepthToSpace", {"x": ([1, 8, 3, 4], np.float32)}, opset=9, blocksize=2))


@pytest.mark.parametrize("mode", ["DCR", "CRD"])
def test_depth_to_space_keep_nchw_io(mode):
    check(node_model("DepthToSpace", {"x": ([1, 8, 3, 4], np.float32)}, blocksize=2, mode=mode), keep_nchw_io=True)


@pytest.mark.parametrize("blocksize,shape", [(2, [1, 3, 4, 6]), (3, [2, 2, 6, 9]), (4, [1, 1, 8, 4])],
                         ids=["b2", "b3_batch2", "b4_one_channel"])
@pytest.mark.parametrize("opset", [9, 13])
def test_space_to_depth(blocksize, shape, opset):
    result = check(node_model("SpaceToDepth", {"x": (shape, np.float32)}, opset=opset, blocksize=blocksize))
    assert one_xnnpack_partition(result.tflite_bytes)


def test_space_to_depth_keep_nchw_io():
    check(node_model("SpaceToDepth", {"x": ([1, 3, 4, 6], np.float32)}, blocksize=2), keep_nchw_io=True)


def test_space_to_depth_indivisible_unsupported():
    model = single_node("SpaceToDepth", {"x": ([1, 3, 5, 6], np.float32)}, {"y": ([1, 12, 2, 3], np.float32)},
                        blocksize=2, name="s2d_odd")
    with pytest.raises(UnsupportedModelError, match="s2d_odd.*not divisible"):
        convert(model, validate=False)
