"""models.cnn and models.transformer: hw.graph export, fake quantization, PTQ on the engine."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import hw
from hw import graph
from models import CNN, QuantSpec, Transformer, layer_spec, ptq, set_qat
from models.cnn import ActQuant, fake_quant_weight

IMAGES = np.random.default_rng(0).random((6, 8, 8, 1), dtype=np.float32)
TOKENS = np.random.default_rng(1).random((6, 8, 16), dtype=np.float32)


def _randomize(model, seed: int):
    """Non-trivial values for every parameter (biases, LayerNorm affine included)."""
    state = nnx.state(model, nnx.Param)
    leaves, treedef = jax.tree_util.tree_flatten(state)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    new = [
        v + 0.3 * jax.random.normal(k, v.shape, jnp.float32)
        for k, v in zip(keys, leaves, strict=True)
    ]
    nnx.update(model, jax.tree_util.tree_unflatten(treedef, new))
    return model


def _cnn(qat=None, seed=0):
    return _randomize(CNN((8, 16), 32, qat=qat, rngs=nnx.Rngs(seed)), seed)


def _transformer(qat=None, seed=0):
    return _randomize(Transformer(d_model=16, blocks=2, qat=qat, rngs=nnx.Rngs(seed)), seed)


@pytest.mark.parametrize(("make", "x"), [(_cnn, IMAGES), (_transformer, TOKENS)])
@pytest.mark.slow
def test_to_graph_equals_float_forward(make, x):
    model = make()
    nodes = model.to_graph()
    want = np.asarray(model(x))
    got = np.asarray(graph.forward_float(nodes, x))
    assert got.shape == want.shape == (6, 10)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    assert len({n.name for n in nodes}) == len(nodes)
    wl = graph.workload(nodes, x.shape)  # the cost model can read the export
    assert wl.num_layers >= len(nodes)


def test_graph_layouts():
    cnn = _cnn()
    conv1, conv2, pool, fc1, flatten, fc2 = cnn.to_graph()
    assert conv1.w.shape == (3, 3, 1, 8) and conv1.padding == 1 and conv1.act == "relu"
    assert fc1.w.shape == (4, 4, 16, 32) and fc1.padding == 0
    assert isinstance(pool, graph.Pool) and isinstance(flatten, graph.Mean)
    assert fc2.w.shape == (32, 10) and fc2.w.dtype == np.float32
    nodes = _transformer().to_graph()
    attn = nodes[2]
    assert isinstance(attn, graph.Attention) and attn.heads == 4 and not attn.causal
    assert attn.wq.shape == (16, 16) and nodes[0].w.shape == (16, 16)
    adds = [n for n in nodes if isinstance(n, graph.Add)]
    assert [a.other for a in adds] == ["embed", "block0_res1", "block0_res2", "block1_res1"]


@pytest.mark.parametrize(("make", "x"), [(_cnn, IMAGES), (_transformer, TOKENS)])
def test_qat_forward_differs_from_float_and_switches_off(make, x):
    model = make(qat=(4, 4))
    float_y = np.asarray(model(x))  # QAT is off until switched on
    np.testing.assert_array_equal(float_y, np.asarray(make()(x)))
    set_qat(model, True)
    q_y = np.asarray(model(x))
    assert np.all(np.isfinite(q_y)) and not np.allclose(q_y, float_y, atol=1e-3)
    model.set_qat(False)
    np.testing.assert_array_equal(np.asarray(model(x)), float_y)


def test_qat_gradients_are_finite():
    model = _cnn(qat=(4, 4))
    model.set_qat(True)
    grads = nnx.grad(lambda m: jnp.sum(m(IMAGES) ** 2))(model)
    leaves = jax.tree_util.tree_leaves(grads)
    assert all(np.all(np.isfinite(g)) for g in leaves)
    assert any(np.any(g != 0) for g in leaves)


def test_per_layer_specs():
    assert layer_spec(None, "fc2") is None
    assert layer_spec((4, 8), "fc2") == QuantSpec(4, 8)
    spec = {"default": None, "fc2": QuantSpec(w_bits=2, a_bits=None)}
    assert layer_spec(spec, "conv1") is None and layer_spec(spec, "fc2").w_bits == 2
    with pytest.raises(ValueError, match="conv1"):
        layer_spec({"default": 4}, "conv1")
    model = _cnn(qat=spec)
    before = np.asarray(model.fc2.weight())
    model.set_qat(True)
    assert model.convs[0].w_bits is None and model.fc2.out_q.bits is None
    assert np.unique(np.asarray(model.fc2.weight())[:, 0]).size <= 3  # 2-bit: -1, 0, 1 levels
    assert not np.array_equal(np.asarray(model.fc2.weight()), before)


def test_weight_fake_quant_is_per_output_channel():
    w = jnp.asarray(np.random.default_rng(2).normal(size=(3, 3, 4, 5)), jnp.float32)
    wq = np.asarray(fake_quant_weight(w, 3))
    for f in range(5):
        levels = np.unique(wq[..., f])
        assert levels.size <= 7  # symmetric 3-bit: -3..3
        assert np.isclose(np.abs(levels).max(), np.abs(np.asarray(w[..., f])).max())


def test_activation_ranges_update_in_training_and_freeze_in_eval():
    aq = ActQuant(QuantSpec(8, 4, momentum=0.5))
    aq.qat = True
    y = aq(jnp.linspace(-1.0, 3.0, 50, dtype=jnp.float32))
    assert float(aq.lo[...]) == -1.0 and float(aq.hi[...]) == 3.0  # first batch: its min/max
    assert np.unique(np.asarray(y)).size <= 16
    aq(jnp.asarray([0.0, 5.0], jnp.float32))
    assert float(aq.hi[...]) == 4.0  # 0.5 * 3 + 0.5 * 5
    aq.use_running_average = True
    aq(jnp.asarray([100.0], jnp.float32))
    assert float(aq.hi[...]) == 4.0
    fresh = ActQuant(QuantSpec(8, 4))
    fresh.qat, fresh.use_running_average = True, True
    x = jnp.asarray([-2.0, 0.0, 13.0], jnp.float32)  # no training batch yet: its own range
    np.testing.assert_allclose(np.asarray(fresh(x)), np.asarray(x), atol=1e-6)
    assert not bool(fresh.seen[...]) and float(fresh.hi[...]) == 0.0


@pytest.mark.parametrize(("make", "x"), [(_cnn, IMAGES), (_transformer, TOKENS)])
@pytest.mark.slow
def test_ptq_runs_on_the_engine(make, x):
    model = make()
    qm = ptq(model, x, 8, 8)
    assert isinstance(qm, hw.QuantizedModel) and (qm.w_bits, qm.a_bits) == (8, 8)
    y, report = hw.run_model(qm, x, hw.get_preset("edge-tpu-like"))
    ref = np.asarray(graph.forward_float(model.to_graph(), x))
    scale = np.abs(ref).max()
    assert np.abs(np.asarray(y) - ref).max() < 0.1 * scale
    assert float(report.total_latency_s) > 0


@pytest.mark.slow
def test_ptq_at_four_bits():
    model = _cnn()
    npu4 = dataclasses.replace(hw.get_preset("edge-tpu-like"), w_bits=4.0, a_bits=4.0)
    qm = ptq(model, IMAGES, 4, 4)
    assert (qm.w_bits, qm.a_bits) == (4, 4)
    y4, _ = hw.run_model(qm, IMAGES, npu4)
    assert y4.shape == (6, 10) and np.all(np.isfinite(np.asarray(y4)))


def _engine_keys(nodes) -> set[str]:
    """Every activation key hw.engine.quantize_model accepts for these nodes."""
    keys = {"input"} | {n.name for n in nodes}
    for n in nodes:
        if isinstance(n, graph.Dense | graph.Conv) and n.act == "gelu":
            keys.add(f"{n.name}.pre")
        if isinstance(n, graph.Attention):
            keys |= {f"{n.name}.{p}" for p in ("q", "k", "v", "ctx")}
    return keys


@pytest.mark.slow
@pytest.mark.parametrize(
    ("make", "x"),
    [
        (lambda: CNN(widths=(4, 8), hidden=8, qat=(4, 4), rngs=nnx.Rngs(0)), IMAGES),
        (lambda: Transformer(d_model=8, heads=2, blocks=1, qat=(4, 4), rngs=nnx.Rngs(0)), TOKENS),
    ],
)
def test_qat_ranges_reach_the_engine(make, x):
    model = make()
    assert model.activation_qparams() == {}  # nothing learned before QAT has seen data
    set_qat(model, True)
    model.train()
    model(x)
    learned = model.activation_qparams()
    assert set(learned) <= _engine_keys(model.to_graph())
    assert {"input"} < set(learned)
    qm = ptq(model, x, 4, 4)
    assert float(qm.in_qp.scale) == float(learned["input"].scale)
    assert ptq(model, x, 8, 8).in_qp.bits == 8  # other widths calibrate on data instead
