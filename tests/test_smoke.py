import numpy as np

from op_harness import check, single_node


def test_relu_4d_both_layouts():
    model = single_node("Relu", {"x": ([1, 3, 8, 8], np.float32)}, {"y": ([1, 3, 8, 8], np.float32)})
    check(model)
    check(model, keep_nchw_io=True)


def test_add_broadcast_constant():
    b = np.linspace(-1, 1, 3 * 8).reshape(3, 1, 8).astype(np.float32)
    model = single_node("Add", {"x": ([1, 3, 8, 8], np.float32)}, {"y": ([1, 3, 8, 8], np.float32)}, {"b": b})
    check(model)
