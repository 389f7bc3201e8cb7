"""Workload extraction from jaxprs: hand-computed shapes, and hw.graph as an independent check."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from hw import graph, layers
from models.cnn import CNN as NnxCNN
from models.extract import extract_workload
from models.transformer import Transformer

rng = np.random.default_rng(0)


def _w(*shape):
    return rng.normal(0, 0.3, shape).astype(np.float32)


def _gemms(lays):
    return [(x.kind, x.gemm_m, x.gemm_k, x.gemm_n, x.gemm_count) for x in lays if x.gemm_count]


def _numbers(lays):
    """Every field but the name."""
    return [dataclasses.replace(x, name="") for x in lays]


def _conv(x, w, stride, padding, dn=("NHWC", "HWIO", "NHWC"), groups=1):
    return jax.lax.conv_general_dilated(
        x, w, (stride, stride), padding, dimension_numbers=dn, feature_group_count=groups
    )


W1, W2, WDW, W3 = _w(8, 3, 3, 3), _w(3, 3, 8, 16), _w(3, 3, 1, 16), _w(3, 3, 16, 32)
WFC, BFC = _w(32, 10), _w(10)


def cnn(x):
    """NCHW (2, 3, 32, 32) input; every shape is worked out in test_cnn_by_hand."""
    h = jax.nn.relu(_conv(x, W1, 1, "SAME", ("NCHW", "OIHW", "NHWC")))
    h = jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
    h = jax.nn.relu(_conv(h, W2, 2, "SAME"))
    h = _conv(h, WDW, 1, "SAME", groups=16)
    h = _conv(h, W3, 2, "VALID")
    return jnp.mean(h, axis=(1, 2)) @ WFC + BFC


def test_cnn_by_hand():
    wl, lays = extract_workload(cnn, jax.ShapeDtypeStruct((2, 3, 32, 32), jnp.float32))
    assert wl.kinds == (
        "conv", "relu", "pool", "conv", "relu", "depthwise", "conv", "pool", "dense"
    )  # fmt: skip
    assert _gemms(lays) == [
        ("conv", 2 * 32 * 32, 3 * 3 * 3, 8, 1),  # 3x3/1 SAME (pad 1): 2 images x 32 x 32
        ("conv", 2 * 8 * 8, 3 * 3 * 8, 16, 1),  # 3x3/2 SAME on 16x16: pad (0, 1), 8x8 out
        ("depthwise", 2 * 8 * 8, 9, 1, 16),  # 16 groups of one channel each
        ("conv", 2 * 3 * 3, 3 * 3 * 16, 32, 1),  # 3x3/2 VALID on 8x8: (8 - 3) // 2 + 1 = 3
        ("dense", 2, 32, 10, 1),
    ]
    # 442,368 + 147,456 + 18,432 + 82,944 + 640
    assert int(np.sum(wl.macs)) == 691_840
    relu, pool, c2, gap = lays[1], lays[2], lays[3], lays[7]
    assert relu.vector_ops == relu.ofmap_elems == 2 * 32 * 32 * 8
    assert (pool.ifmap_elems, pool.ofmap_elems, pool.vector_ops) == (16384, 4096, 4 * 4096)
    # the asymmetric conv is built directly: distinct ifmap, weights and outputs
    assert (c2.ifmap_elems, c2.filter_elems, c2.ofmap_elems) == (2 * 16 * 16 * 8, 1152, 2048)
    assert (gap.ifmap_elems, gap.ofmap_elems, gap.vector_ops) == (2 * 9 * 32, 64, 2 * 9 * 32)


def test_symmetric_conv_matches_conv2d():
    x = jax.ShapeDtypeStruct((1, 10, 10, 4), jnp.float32)
    _, (lay,) = extract_workload(lambda x: _conv(x, _w(3, 3, 4, 6), 2, [(1, 1), (1, 1)]), x)
    ref = layers.conv2d(
        lay.name,
        ifmap_h=10,
        ifmap_w=10,
        channels=4,
        num_filters=6,
        filter_h=3,
        filter_w=3,
        stride=2,
        padding=1,
    )
    assert lay == ref


def test_conv1d_is_lowered_directly():
    w = _w(5, 4, 8)  # (W, I, O)
    _, (lay,) = extract_workload(
        lambda x: _conv1d(x, w), jax.ShapeDtypeStruct((3, 20, 4), jnp.float32)
    )
    # 3 sequences x (20 - 5 + 1) outputs, K = 5 taps x 4 channels
    assert (lay.gemm_m, lay.gemm_k, lay.gemm_n, lay.gemm_count) == (3 * 16, 20, 8, 1)


def _conv1d(x, w):
    return jax.lax.conv_general_dilated(
        x, w, (1,), "VALID", dimension_numbers=("NWC", "WIO", "NWC")
    )


D, H, T, B, MLP = 32, 4, 10, 2, 64
P = {n: _w(D, D) for n in ("wq", "wk", "wv", "wo")} | {"w1": _w(D, MLP), "w2": _w(MLP, D)}


def _layernorm(x):
    mu = jnp.mean(x, -1, keepdims=True)
    var = jnp.mean((x - mu) ** 2, -1, keepdims=True)
    return (x - mu) * jax.lax.rsqrt(var + 1e-5)


def block(p, x):
    """Pre-norm encoder block: attention (q, k, v, per-head einsums, softmax, o) and a GELU MLP."""
    h = _layernorm(x)
    q, k, v = (h @ p[w] for w in ("wq", "wk", "wv"))
    q, k, v = (t.reshape(B, T, H, D // H).transpose(0, 2, 1, 3) for t in (q, k, v))
    s = jnp.einsum("bhqd,bhkd->bhqk", q, k) / np.sqrt(D // H)
    o = jnp.einsum("bhqk,bhkd->bhqd", jax.nn.softmax(s, axis=-1), v)
    x = x + o.transpose(0, 2, 1, 3).reshape(B, T, D) @ p["wo"]
    return x + jax.nn.gelu(_layernorm(x) @ p["w1"]) @ p["w2"]


def block_closed(x):
    return block(P, x)


X = jax.ShapeDtypeStruct((B, T, D), jnp.float32)


def test_attention_block_by_hand():
    wl, lays = extract_workload(block_closed, X, name_prefix="blk.")
    assert wl.kinds == (
        "layernorm", "dense", "dense", "dense", "matmul", "softmax", "matmul", "dense", "add",
        "layernorm", "dense", "gelu", "dense", "add",
    )  # fmt: skip
    rows = B * T  # 20 token rows
    assert _gemms(lays) == [
        ("dense", rows, D, D, 1),  # q
        ("dense", rows, D, D, 1),  # k
        ("dense", rows, D, D, 1),  # v
        ("matmul", T, D // H, T, B * H),  # Q K^T: 10 x 8 x 10, 8 (batch, head) pairs
        ("matmul", T, T, D // H, B * H),  # A V: 10 x 10 x 8
        ("dense", rows, D, D, 1),  # o
        ("dense", rows, D, MLP, 1),
        ("dense", rows, MLP, D, 1),
    ]
    # 4 * 20*32*32 + 2 * 8*10*8*10 + 2 * 20*32*64 = 81,920 + 12,800 + 81,920
    assert int(np.sum(wl.macs)) == 176_640
    by_kind = {x.kind: x for x in lays if not x.gemm_count}
    assert by_kind["softmax"].vector_ops == 5 * B * H * T * T
    assert by_kind["layernorm"].ofmap_elems == by_kind["add"].ofmap_elems == B * T * D
    assert by_kind["gelu"].ofmap_elems == B * T * MLP  # one layer: x + 0.044715 x^3 is no add
    assert all(name.startswith("blk.") for name in wl.names)


def test_weight_args_mark_parameters():
    _, closed = extract_workload(block_closed, X)
    wl, lays = extract_workload(block, P, X, weight_args=(0,))
    assert _numbers(lays) == _numbers(closed)
    wl, _ = extract_workload(block, P, X)  # weights as activations: every GEMM a matmul
    assert wl.kinds.count("dense") == 0 and wl.kinds.count("matmul") == 8


def test_left_weight_is_transposed_to_the_filter_path():
    w = _w(4, 16)
    _, (lay,) = extract_workload(lambda x: w @ x.T, jax.ShapeDtypeStruct((5, 16), jnp.float32))
    # (W x^T)^T = x W^T: 5 rows, K = 16, N = 4
    assert (lay.kind, lay.gemm_m, lay.gemm_k, lay.gemm_n) == ("dense", 5, 16, 4)


def test_batched_weights_are_a_weight_gemm():
    w = _w(3, 16, 8)  # one 16 x 8 weight per head
    x = jax.ShapeDtypeStruct((3, 5, 16), jnp.float32)
    _, (lay,) = extract_workload(lambda x: jnp.einsum("hbd,hde->hbe", x, w), x)
    assert (lay.kind, lay.gemm_m, lay.gemm_k, lay.gemm_n, lay.gemm_count) == ("gemm", 5, 16, 8, 3)
    assert lay.filter_elems == w.size


def test_scan_multiplies_by_the_trip_count():
    ws = _w(3, 16, 16)

    def f(x):
        return jax.lax.scan(lambda c, w: (jnp.tanh(c @ w), None), x, ws)[0]

    _, (mm, act) = extract_workload(f, jax.ShapeDtypeStruct((2, 16), jnp.float32))
    assert (mm.kind, mm.gemm_m, mm.gemm_k, mm.gemm_n, mm.gemm_count) == ("dense", 2, 16, 16, 3)
    assert mm.filter_elems == 3 * 16 * 16 and mm.name.startswith("scan3/")
    assert (act.kind, act.vector_ops) == ("gelu", 3 * 8 * 2 * 16)


def test_calls_are_inlined():
    w = _w(8, 8)

    @jax.custom_vjp
    def f(x):
        return x @ w

    f.defvjp(lambda x: (f(x), None), lambda _, g: (g @ w.T,))
    g = jax.jit(jax.checkpoint(lambda x: jax.nn.relu(f(x))))
    wl, _ = extract_workload(g, jax.ShapeDtypeStruct((4, 8), jnp.float32))
    assert wl.kinds == ("dense", "relu")


def test_elementwise_rsqrt_is_no_layernorm():
    # x * rsqrt(x^2 + 1) normalizes nothing: no reduction feeds the rsqrt
    wl, _ = extract_workload(
        lambda x: jnp.sum(x * jax.lax.rsqrt(x * x + 1.0)), jax.ShapeDtypeStruct((4, 8), jnp.float32)
    )
    assert wl.kinds == ("pool",)


def test_flax_nnx_modules():
    class Net(nnx.Module):
        def __init__(self, rngs):
            self.ln = nnx.LayerNorm(16, rngs=rngs)
            self.att = nnx.MultiHeadAttention(4, 16, decode=False, rngs=rngs)
            self.fc = nnx.Linear(16, 32, rngs=rngs)

        def __call__(self, x):
            x = x + self.att(self.ln(x))
            return nnx.relu(self.fc(x))

    net = Net(nnx.Rngs(0))
    wl, lays = extract_workload(lambda x: net(x), jax.ShapeDtypeStruct((2, 6, 16), jnp.float32))
    assert wl.kinds == (
        "layernorm", "dense", "dense", "dense", "matmul", "softmax", "matmul", "dense", "add",
        "dense", "relu",
    )  # fmt: skip
    # heads of 4: Q K^T 6 x 4 x 6 and A V 6 x 6 x 4 (flax emits dot_general(V, A): reoriented)
    assert _gemms(lays)[3:5] == [("matmul", 6, 4, 6, 8), ("matmul", 6, 6, 4, 8)]
    assert _gemms(lays)[-1] == ("dense", 12, 16, 32, 1)


# hw.graph models: their own workload() is a derivation independent of the jaxpr
CNN = (
    graph.Conv("c1", w=_w(3, 3, 2, 8), b=_w(8), padding=1, act="relu"),
    graph.Pool("p1", "max", 2, 2),
    graph.Conv("c2", w=_w(3, 3, 8, 16), b=_w(16), stride=2, padding=1, act="relu"),
    graph.Conv("dw", w=_w(3, 3, 1, 16), b=_w(16), padding=1, groups=16),
    graph.Pool("p2", "avg", 2, 2),
    graph.Mean("gap"),
    graph.Dense("fc", w=_w(16, 10), b=_w(10)),
)


def _transformer(causal):
    d, h = 16, 4
    att = graph.Attention(
        "att", *(_w(d, d) if i % 2 == 0 else _w(d) for i in range(8)), heads=h, causal=causal
    )
    return (
        graph.Dense("embed", w=_w(12, d), b=_w(d)),
        graph.LayerNorm("ln1", gamma=np.ones(d, np.float32), beta=np.zeros(d, np.float32)),
        att,
        graph.Add("res1", "embed"),
        graph.LayerNorm("ln2", gamma=np.ones(d, np.float32), beta=np.zeros(d, np.float32)),
        graph.Dense("fc1", w=_w(d, 32), b=_w(32), act="gelu"),
        graph.Dense("fc2", w=_w(32, d), b=_w(d)),
        graph.Add("res2", "res1"),
        graph.Mean("pool"),
        graph.Dense("head", w=_w(d, 5), b=_w(5)),
    )


@pytest.mark.parametrize(
    "model, shape",
    [(CNN, (3, 16, 16, 2)), (_transformer(False), (2, 7, 12)), (_transformer(True), (3, 5, 12))],
    ids=["cnn", "transformer", "causal"],
)
def test_matches_hw_graph_workload(model, shape):
    ref = graph.workload(model, shape)
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    wl, lays = extract_workload(lambda x: graph.forward_float(model, x), x)
    ref_gemms = [
        (k, *(int(a[i]) for a in (ref.gemm_m, ref.gemm_k, ref.gemm_n, ref.gemm_count)))
        for i, k in enumerate(ref.kinds)
        if ref.gemm_count[i]
    ]
    assert _gemms(lays) == ref_gemms  # M, K, N, count and order
    assert wl.kinds == ref.kinds  # the vector layers too, in place
    for f in ("ifmap_elems", "filter_elems", "ofmap_elems", "vector_ops"):
        np.testing.assert_array_equal(getattr(wl, f), getattr(ref, f), err_msg=f)


def test_errors():
    with pytest.raises(ValueError, match="'while' has no static workload"):
        extract_workload(
            lambda x: jax.lax.while_loop(
                lambda c: c[0] < 3, lambda c: (c[0] + 1, c[1] @ c[1]), (0, x)
            )[1],
            np.eye(3, dtype=np.float32),
        )
    with pytest.raises(ValueError, match="weight_args: 2"):
        extract_workload(lambda x: x @ x, np.eye(2), weight_args=(2,))
    with pytest.raises(ValueError, match="no GEMM or vector work"):
        extract_workload(lambda x: x * 2.0, np.ones(3))


@pytest.mark.parametrize("cls, shape", [(NnxCNN, (2, 8, 8, 1)), (Transformer, (2, 8, 16))])
def test_project_models_match_their_graphs(cls, shape):
    """The NNX models of ``models`` against their ``to_graph()`` as hw.graph lowers it."""
    model = cls(rngs=nnx.Rngs(0))
    model.eval()
    wl, _ = extract_workload(lambda x: model(x), jax.ShapeDtypeStruct(shape, jnp.float32))
    ref = graph.workload(model.to_graph(), shape)
    assert wl.kinds == ref.kinds
    for f in ("gemm_m", "gemm_k", "gemm_n", "gemm_count", "ifmap_elems", "ofmap_elems"):
        np.testing.assert_array_equal(getattr(wl, f), getattr(ref, f), err_msg=f)
