"""Whole quantized models on the simulated NPU: bit-exact layers, accuracy, fallback, fusion."""

import collections
import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest

from hw import engine, graph, interpreter, presets, quant
from hw.types import canonical

rng = np.random.default_rng(1)


def _w(*shape, scale=0.3):
    return rng.normal(0, scale, shape).astype(np.float32)


CNN = (
    graph.Conv("c1", w=_w(3, 3, 1, 8), b=_w(8, scale=0.1), padding=1, act="relu"),
    graph.Pool("p1", "max", 2, 2),
    graph.Conv("c2", w=_w(3, 3, 8, 16, scale=0.2), b=_w(16, scale=0.1), padding=1, act="relu"),
    graph.Mean("gap"),
    graph.Dense("fc", w=_w(16, 10), b=_w(10, scale=0.1)),
)
D = 16
TRANSFORMER = (
    graph.Dense("emb", w=_w(8, D), b=_w(D)),
    graph.LayerNorm("ln", gamma=np.ones(D), beta=np.zeros(D)),
    graph.Attention(
        "att",
        *(a for _ in range(4) for a in (_w(D, D, scale=0.2), _w(D, scale=0.05))),
        heads=4,
        causal=True,
    ),
    graph.Add("res", other="emb"),
    graph.Dense("mlp", w=_w(D, 32, scale=0.2), b=_w(32, scale=0.05), act="gelu"),
    graph.Mean("pool"),
    graph.Dense("head", w=_w(32, 5), b=_w(5)),
)
X_IMG = rng.normal(size=(16, 8, 8, 1)).astype(np.float32)
X_SEQ = rng.normal(size=(4, 6, 8)).astype(np.float32)


def npu(bits=8, **kw):
    base = presets.get_preset("edge-tpu-like")
    return canonical(dataclasses.replace(base, w_bits=float(bits), a_bits=float(bits), **kw))


def _requant_reference(acc, mult, shift, zp, qmin, qmax, relu):
    """Round-half-away-from-zero of acc * mult / 2^(31 + shift), in exact Python integers."""
    out = np.empty(acc.shape, dtype=np.int64)
    for idx, a in np.ndenumerate(acc):
        j = idx[-1]
        n = 31 + int(shift[j])
        mag = (abs(int(a)) * int(mult[j]) + (1 << (n - 1))) >> n
        q = (mag if a >= 0 else -mag) + int(zp)
        out[idx] = min(max(q, max(qmin, int(zp)) if relu else qmin), qmax)
    return out


@pytest.mark.parametrize("acc_bits", [32, 14])
def test_dense_layer_is_bit_exact(acc_bits):
    # One dense layer, computed by hand: q_x, (q_x - z) @ w_q accumulated (saturating at
    # acc_bits, one k at a time), plus the integer bias, requantized with integer arithmetic.
    layer = graph.Dense("fc", w=_w(48, 6, scale=1.0), b=_w(6), act="relu")
    x = rng.normal(size=(5, 48)).astype(np.float32) * 3
    qm = engine.quantize_model((layer,), x, w_bits=8, a_bits=8)
    y, _ = engine.run_model(qm, x, npu(acc_bits=float(acc_bits)))
    st = qm.steps["fc"]
    a = np.asarray(quant.quantize(x, qm.in_qp), np.int64) - int(qm.in_qp.zero_point)
    w = np.asarray(st.w_q, np.int64)
    lim = 2 ** (acc_bits - 1)
    acc = np.zeros((5, 6), np.int64)
    for k in range(48):
        acc = np.clip(acc + np.outer(a[:, k], w[k]), -lim, lim - 1)
    qp = st.out_qp
    lo, hi = quant.qrange(qp.bits, qp.signed)
    want = _requant_reference(acc + st.bias_q, st.mult, st.shift, qp.zero_point, lo, hi, relu=True)
    np.testing.assert_array_equal(np.asarray(quant.quantize(y, qp)), want)
    if acc_bits == 14:
        assert np.any(np.abs(acc) == lim) or np.any(acc == lim - 1)  # saturation happened


@pytest.mark.parametrize("model, x", [(CNN, X_IMG), (TRANSFORMER, X_SEQ)])
@pytest.mark.slow
def test_error_shrinks_with_bits_and_is_small_at_16(model, x):
    ref = np.asarray(graph.forward_float(model, x))
    errs = {}
    for bits in (4, 8, 16):
        qm = engine.quantize_model(model, x, w_bits=bits, a_bits=bits)
        # an accumulator wide enough for K products of two bits-wide operands
        cfg = npu(bits, vector_precision="fp32", acc_bits=float(2 * bits + 16))
        y, rep = engine.run_model(qm, x, cfg)
        errs[bits] = float(np.max(np.abs(np.asarray(y) - ref)))
        assert np.all(np.isfinite(np.asarray(y))) and bool(jnp.all(rep.fits))
    assert errs[16] < errs[8] < errs[4]
    assert errs[16] < 2e-3 * np.max(np.abs(ref))


@pytest.mark.slow
def test_fallback_runs_on_host_and_costs_more():
    qm = engine.quantize_model(TRANSFORMER, X_SEQ, w_bits=8, a_bits=8)
    y_npu, rep_npu = engine.run_model(qm, X_SEQ, npu())
    y_host, rep_host = engine.run_model(qm, X_SEQ, npu(unsupported_ops=("softmax", "gelu")))
    kinds = np.array(rep_host.names)
    host = np.asarray(rep_host.on_host)
    assert set(kinds[host]) == {"att_softmax", "mlp_gelu"}
    assert np.all(np.asarray(rep_host.host_cycles)[host] > 0)
    assert float(rep_host.total_latency_s) > float(rep_npu.total_latency_s)
    # the host computes in fp32, the vector unit in int16: close but not the same numbers
    assert not np.array_equal(np.asarray(y_npu), np.asarray(y_host))
    np.testing.assert_allclose(y_npu, y_host, atol=0.1)


def test_fusion_changes_cost_not_results():
    qm = engine.quantize_model(CNN, X_IMG, w_bits=8, a_bits=8)
    y_on, on = engine.run_model(qm, X_IMG, npu())
    y_off, off = engine.run_model(qm, X_IMG, npu(fusion=False))
    np.testing.assert_array_equal(y_on, y_off)
    dram = ("dram_ifmap_read_bytes", "dram_ofmap_write_bytes")
    assert sum(float(np.asarray(getattr(on, f)).sum()) for f in dram) < sum(
        float(np.asarray(getattr(off, f)).sum()) for f in dram
    )


def test_bad_input():
    qm = engine.quantize_model(CNN, X_IMG, w_bits=8, a_bits=8)
    with pytest.raises(ValueError, match="config w_bits=4 but the model is quantized to 8"):
        engine.run_model(qm, X_IMG, npu(bits=4))
    with pytest.raises(ValueError, match="vector_precision must be one of"):
        engine.run_model(qm, X_IMG, npu(vector_precision="int8"))
    with pytest.raises(ValueError, match="w_bits must be an integer in 2..16"):
        engine.quantize_model(CNN, X_IMG, w_bits=1, a_bits=8)
    four = quant.calibrate(X_IMG, 4, symmetric=False)
    with pytest.raises(ValueError, match=r"act_qparams\['input'\] has 4 bits, the model 8"):
        engine.quantize_model(CNN, X_IMG, w_bits=8, a_bits=8, act_qparams={"input": four})


def test_exact_conv_shortcut_equals_the_fold_by_fold_gemm(monkeypatch):
    # With int8 operands nothing can clamp, so the engine runs each conv as one float32 XLA
    # conv; forcing the im2col + run_gemm path (K split by the mapping) must give the same bits.
    qm = engine.quantize_model(CNN, X_IMG, w_bits=8, a_bits=8)
    fast, _ = engine.run_model(qm, X_IMG, npu())
    slow_qm = engine.quantize_model(CNN, X_IMG, w_bits=8, a_bits=8)
    monkeypatch.setattr(interpreter.Runner, "order_free", lambda self, *widths: False)
    slow, _ = engine.run_model(slow_qm, X_IMG, npu())
    np.testing.assert_array_equal(fast, slow)


def _per_layer(model, x, bits: int) -> dict:
    return dict.fromkeys(graph.workload(model, x.shape).names, bits)


@pytest.mark.parametrize(
    "model, x, unused",
    [(CNN, X_IMG, {"c1_relu", "p1", "c2_relu"}), (TRANSFORMER, X_SEQ, {"att_qk"})],
)
@pytest.mark.slow
def test_equal_per_layer_widths_are_the_uniform_model(model, x, unused):
    uniform = engine.quantize_model(model, x, w_bits=8, a_bits=8)
    per_layer = engine.quantize_model(
        model, x, w_bits=_per_layer(model, x, 8), a_bits=_per_layer(model, x, 8)
    )
    assert (per_layer.w_bits, per_layer.a_bits) == (8, 8)
    y, rep = engine.run_model(uniform, x, npu())
    y_layers, rep_layers = engine.run_model(per_layer, x, npu())
    np.testing.assert_array_equal(y, y_layers)
    np.testing.assert_allclose(rep.total_energy_j, rep_layers.total_energy_j, rtol=1e-12)
    # a mapping without the layers whose width is unused, or with a default, is the same model
    sparse = {n: 8 for n in _per_layer(model, x, 8) if n not in unused}
    qm = engine.quantize_model(model, x, w_bits=sparse, a_bits=collections.defaultdict(lambda: 8))
    np.testing.assert_array_equal(engine.run_model(qm, x, npu())[0], y)


@pytest.mark.parametrize(
    "model, x", [(CNN, X_IMG), pytest.param(TRANSFORMER, X_SEQ, marks=pytest.mark.slow)]
)
def test_mixed_widths_run_and_differ(model, x):
    names = graph.workload(model, x.shape).names
    w_bits = {n: 4 if i % 2 else 8 for i, n in enumerate(names)}
    a_bits = {n: 8 if i % 2 else 6 for i, n in enumerate(names)}
    qm = engine.quantize_model(model, x, w_bits=w_bits, a_bits=a_bits)
    assert qm.layer_w_bits == tuple(w_bits.values())
    assert qm.layer_a_bits == tuple(a_bits.values())
    assert (qm.w_bits, qm.a_bits) == (8, 8)
    y8, rep8 = engine.run_model(engine.quantize_model(model, x, w_bits=8, a_bits=8), x, npu())
    y, rep = engine.run_model(qm, x, npu())
    ref = np.asarray(graph.forward_float(model, x))
    assert np.all(np.isfinite(np.asarray(y))) and not np.array_equal(y, y8)
    assert np.max(np.abs(np.asarray(y) - ref)) < 0.5 * np.max(np.abs(ref))
    assert float(rep.total_energy_j) < float(rep8.total_energy_j)  # narrower layers cost less
    # the widths reach the integer parameters: weights, activations, probabilities
    for node in model:
        st = qm.steps[node.name]
        if isinstance(node, graph.Conv | graph.Dense):
            assert st.w_qp.bits == w_bits[node.name]
            assert int(np.max(np.abs(st.w_q))) <= 2 ** (w_bits[node.name] - 1)
        if isinstance(node, graph.Attention):
            assert st.probs_qp.bits == a_bits["att_softmax"]
            assert st.ctx_qp.bits == a_bits["att_av"]
            assert st.o.out_qp.bits == a_bits["att_o"]


def test_one_narrow_layer_is_the_only_change():
    # conv c2's weights at 4 bits, everything else at 8: only c2's integer weights change
    names = graph.workload(CNN, X_IMG.shape).names
    qm8 = engine.quantize_model(CNN, X_IMG, w_bits=8, a_bits=8)
    qm = engine.quantize_model(
        CNN, X_IMG, w_bits={n: 4 if n == "c2" else 8 for n in names}, a_bits=8
    )
    for name in ("c1", "fc"):
        np.testing.assert_array_equal(qm.steps[name].w_q, qm8.steps[name].w_q)
    assert not np.array_equal(qm.steps["c2"].w_q, qm8.steps["c2"].w_q)
    with pytest.raises(ValueError, match="config w_bits=4 but the model is quantized to 8"):
        engine.run_model(qm, X_IMG, npu(bits=4))


def test_wide_widths_use_the_exact_float64_conv(monkeypatch):
    # 12-bit operands: sums reach 2^24 (float32 is not exact) but stay far below 2^53 and the
    # 32-bit accumulator, so the conv runs as one float64 XLA conv with the same bits
    qm = engine.quantize_model(CNN, X_IMG, w_bits=12, a_bits=12)
    fast, _ = engine.run_model(qm, X_IMG, npu(12))
    slow_qm = engine.quantize_model(CNN, X_IMG, w_bits=12, a_bits=12)
    monkeypatch.setattr(interpreter.Runner, "order_free", lambda self, *widths: False)
    slow, _ = engine.run_model(slow_qm, X_IMG, npu(12))
    np.testing.assert_array_equal(fast, slow)


@pytest.mark.parametrize(
    ("w_bits", "a_bits", "message"),
    [
        ({"c9": 8}, 8, r"w_bits\['c9'\]: no layer 'c9' in the model"),
        ({"c1": 1}, 8, r"w_bits\['c1'\] must be an integer in 2..16, got 1"),
        ({"c1": 8}, 8, "w_bits has no width for layer 'c2'"),
        (8, {"c1": 8, "input": 8}, "a_bits has no width for layer 'c2'"),
        (8, collections.defaultdict(lambda: 17), r"a_bits\['c1'\] must be an integer in 2..16"),
    ],
)
def test_bad_per_layer_widths(w_bits, a_bits, message):
    with pytest.raises(ValueError, match=message):
        engine.quantize_model(CNN, X_IMG, w_bits=w_bits, a_bits=a_bits)


def test_a_near_zero_channel_at_16_bits_quantizes():
    # channel 1's weights are ~1e-9: at 16 bits its real requantization scale would be below
    # the 2^-32 an integer multiplier holds; its weight scale is raised, its output is its bias
    w = _w(32, 3, scale=1.0)
    w[:, 1] *= 1e-9
    layer = graph.Dense("fc", w=w, b=np.array([0.0, 0.5, 0.0], np.float32))
    x = rng.normal(size=(8, 32)).astype(np.float32)
    qm = engine.quantize_model((layer,), x, w_bits=16, a_bits=16)
    y, _ = engine.run_model(qm, x, npu(16, acc_bits=48.0))
    ref = np.asarray(graph.forward_float((layer,), x))
    np.testing.assert_allclose(y, ref, atol=2e-3 * np.max(np.abs(ref)))
