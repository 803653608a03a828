"""The axis algebra of transpose sinking, checked numerically with numpy."""
import itertools

import numpy as np
import pytest

from onnx2tflite.layout.axis_rules import reshape_through

CASES = [
    # (x shape, perm, reshape target): NHWC conv output seen as NCHW, then flattened / split
    ((1, 14, 14, 192), (0, 3, 1, 2), (1, 192, 196)),       # ViT patch embedding flatten(2)
    ((1, 80, 80, 144), (0, 3, 1, 2), (1, 144, 6400)),      # YOLO head flatten
    ((1, 8400, 64), (0, 2, 1), (1, 4, 16, 8400)),          # YOLO DFL split of channels
    ((1, 16, 16, 32), (0, 3, 1, 2), (1, 32, 256, 1)),      # trailing size-1 dim
    ((1, 1, 1, 960), (0, 3, 1, 2), (1, 960)),              # global pool -> flatten
    ((2, 3, 4, 5), (0, 2, 1, 3), (2, 4, 15)),              # group (3,5) not contiguous: refused
    ((2, 6, 4), (1, 0, 2), (3, 2, 2, 4)),
]


@pytest.mark.parametrize("x_shape,perm,target", CASES)
def test_reshape_through_matches_numpy(x_shape, perm, target):
    x = np.arange(np.prod(x_shape)).reshape(x_shape)
    want = np.transpose(x, perm).reshape(target)
    found = reshape_through(list(x_shape), list(perm), list(target))
    if found is None:
        # Refusal is allowed only where no group-preserving rewrite exists.
        assert (x_shape, perm) == ((2, 3, 4, 5), (0, 2, 1, 3))
        return
    new_target, q = found
    assert np.array_equal(np.transpose(x.reshape(new_target), q), want)


def test_reshape_through_exhaustive_small():
    """Every perm of a rank-3 tensor and every 2-D merge/split target: any rewrite offered is exact."""
    x_shape = (2, 3, 4)
    x = np.arange(24).reshape(x_shape)
    targets = [(6, 4), (2, 12), (24,), (3, 8), (2, 3, 4), (1, 6, 4, 1), (4, 6), (2, 3, 2, 2)]
    offered = 0
    for perm in itertools.permutations(range(3)):
        for target in targets:
            found = reshape_through(list(x_shape), list(perm), list(target))
            if found is None:
                continue
            offered += 1
            new_target, q = found
            assert np.array_equal(np.transpose(x.reshape(new_target), q), np.transpose(x, perm).reshape(target))
    assert offered >= len(targets)  # at least every target under the identity perm
