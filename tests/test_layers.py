"""Layer lowering to GEMMs: goldens computed by hand, SCALE-Sim's conventions, errors."""

import numpy as np
import pytest

from hw import layers


def test_conv_golden():
    # 32x32x16 input, 3x3 filters, 32 of them, stride 2, pad 1:
    # out = floor((32 + 2 - 3) / 2) + 1 = 16 -> M = 256, K = 3*3*16 = 144, N = 32
    lay = layers.conv2d(
        "c",
        ifmap_h=32,
        ifmap_w=32,
        channels=16,
        num_filters=32,
        filter_h=3,
        filter_w=3,
        stride=2,
        padding=1,
    )
    assert (lay.gemm_m, lay.gemm_k, lay.gemm_n, lay.gemm_count) == (256, 144, 32, 1)
    assert lay.macs == 256 * 144 * 32
    assert lay.ifmap_elems == 32 * 32 * 16 and lay.filter_elems == 144 * 32
    assert lay.ofmap_elems == 256 * 32


def test_scalesim_ceil_rounding():
    # H=5, R=2, s=2: SCALE-Sim ceil((5 - 2 + 2) / 2) = 3, frameworks floor(3 / 2) + 1 = 2
    kw = dict(ifmap_h=5, ifmap_w=5, channels=1, num_filters=1, filter_h=2, filter_w=2, stride=2)
    assert layers.conv2d("a", rounding="ceil", **kw).gemm_m == 9
    assert layers.conv2d("b", **kw).gemm_m == 4


def test_depthwise_and_groups():
    # depthwise 3x3 on 14x14x96, pad 1: 96 GEMMs of 196 x 9 x 1
    dw = layers.conv2d(
        "dw",
        ifmap_h=14,
        ifmap_w=14,
        channels=96,
        num_filters=96,
        filter_h=3,
        filter_w=3,
        padding=1,
        groups=96,
    )
    assert dw.kind == "depthwise"
    assert (dw.gemm_m, dw.gemm_k, dw.gemm_n, dw.gemm_count) == (196, 9, 1, 96)
    assert dw.macs == 196 * 9 * 96
    g = layers.conv2d(
        "g", ifmap_h=8, ifmap_w=8, channels=8, num_filters=16, filter_h=1, filter_w=1, groups=4
    )
    assert (g.gemm_k, g.gemm_n, g.gemm_count) == (2, 4, 4)


def test_dilation_widens_the_filter():
    # 3x3 with dilation 2 spans 5: out = 9 - 5 + 1 = 5
    lay = layers.conv2d(
        "d", ifmap_h=9, ifmap_w=9, channels=1, num_filters=1, filter_h=3, filter_w=3, dilation=2
    )
    assert lay.gemm_m == 25 and lay.gemm_k == 9


def test_attention_matmuls_and_vector_ops():
    qk = layers.batched_matmul("qk", m=128, k=64, n=128, count=12)
    assert qk.macs == 128 * 64 * 128 * 12 and qk.kind == "matmul"
    sm = layers.vector("softmax", "softmax", elems=12 * 128 * 128)
    assert sm.vector_ops == 5 * 12 * 128 * 128 and sm.macs == 0
    add = layers.vector("res", "add", elems=100, inputs=2)
    assert add.ifmap_elems == 200 and add.ofmap_elems == 100
    p = layers.pool("p", ifmap_h=4, ifmap_w=4, channels=2, window=2, stride=2)
    assert p.ofmap_elems == 8 and p.vector_ops == 32


def test_workload_stacks_int64():
    wl = layers.workload([layers.dense("fc", in_features=4, out_features=3, tokens=2)] * 3)
    assert wl.gemm_m.dtype == np.int64 and wl.gemm_m.shape == (3,)
    assert wl.names == ("fc",) * 3
    assert wl.macs.tolist() == [24] * 3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(channels=0), "channels must be a positive integer"),
        (dict(stride=-1), "stride"),
        (dict(padding=-1), "padding"),
        (dict(groups=3), "groups=3 must divide"),
        (dict(filter_h=40), "does not fit"),
        (dict(rounding="up"), "rounding"),
    ],
)
def test_conv_errors_name_the_field(kwargs, match):
    base = dict(ifmap_h=8, ifmap_w=8, channels=4, num_filters=4, filter_h=3, filter_w=3)
    with pytest.raises(ValueError, match=match):
        layers.conv2d("bad", **{**base, **kwargs})


def test_unknown_vector_op():
    with pytest.raises(ValueError, match="unknown vector op 'tanhh'"):
        layers.vector("v", "tanhh", elems=4)
    with pytest.raises(ValueError, match="at least one layer"):
        layers.workload([])
