"""The executable model description: float forward and the workload it implies."""

import numpy as np
import pytest

from hw import graph

rng = np.random.default_rng(0)


def _w(*shape):
    return rng.normal(0, 0.3, shape).astype(np.float32)


CNN = (
    graph.Conv("c1", w=_w(3, 3, 1, 8), b=_w(8), padding=1, act="relu"),
    graph.Pool("p1", "max", 2, 2),
    graph.Conv("dw", w=_w(3, 3, 1, 8), b=_w(8), padding=1, groups=8),
    graph.Mean("gap"),
    graph.Dense("fc", w=_w(8, 10), b=_w(10)),
)


def test_cnn_workload_shapes_by_hand():
    wl = graph.workload(CNN, (4, 8, 8, 1))
    assert wl.names == ("c1", "c1_relu", "p1", "dw", "gap", "fc")
    assert wl.kinds == ("conv", "relu", "pool", "depthwise", "pool", "dense")
    # c1: 4 images x 8 x 8 pixels (pad 1), K = 3*3*1, N = 8
    assert (int(wl.gemm_m[0]), int(wl.gemm_k[0]), int(wl.gemm_n[0])) == (256, 9, 8)
    # depthwise after 2x2 pooling: 8 groups of (4*4*4) x 9 x 1
    assert (int(wl.gemm_m[3]), int(wl.gemm_k[3]), int(wl.gemm_n[3])) == (64, 9, 1)
    assert int(wl.gemm_count[3]) == 8
    assert int(wl.macs[5]) == 4 * 8 * 10
    assert int(wl.ofmap_elems[1]) == 4 * 8 * 8 * 8  # relu on c1's output


def test_attention_lowering():
    d, t, h = 16, 6, 4
    att = graph.Attention(
        "att", _w(d, d), _w(d), _w(d, d), _w(d), _w(d, d), _w(d), _w(d, d), _w(d), heads=h
    )
    wl = graph.workload((att,), (2, t, d))
    assert wl.kinds == ("dense", "dense", "dense", "matmul", "softmax", "matmul", "dense")
    assert int(wl.macs[3]) == 2 * h * t * (d // h) * t  # Q K^T per head and batch
    assert int(wl.vector_ops[4]) == 5 * 2 * h * t * t
    y = graph.forward_float((att,), rng.normal(size=(2, t, d)))
    assert y.shape == (2, t, d)


def test_float_forward_matches_numpy_dense():
    x = rng.normal(size=(3, 8)).astype(np.float32)
    y = graph.forward_float(CNN[-1:], x)
    np.testing.assert_allclose(y, x @ CNN[-1].w + CNN[-1].b, rtol=1e-5, atol=1e-5)


def test_unknown_node_is_an_error():
    with pytest.raises(ValueError, match="unknown node type"):
        graph.forward_float(("not a node",), np.ones((1, 2)))
