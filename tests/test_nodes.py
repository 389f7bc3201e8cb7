"""hw.nodes: a node kind carries its float pass, lowering, widths, quantization, execution."""

import dataclasses

import jax.numpy as jnp
import numpy as np

from hw import engine, graph, nodes, presets, steps, vector
from hw.types import canonical

rng = np.random.default_rng(3)


@dataclasses.dataclass(frozen=True, eq=False)
class Clip(nodes.VectorNode):
    """``min(relu(x), 1)``: a node kind defined outside the package, in one place."""

    name: str
    op_kind = "relu"

    def vector_fn(self, x, precision):
        return jnp.minimum(vector.relu(x, precision=precision), 1.0)


MODEL = (
    graph.Dense("fc", w=rng.normal(0, 0.5, (6, 8)), b=rng.normal(0, 0.1, 8)),
    Clip("clip"),
    graph.Dense("out", w=rng.normal(0, 0.5, (8, 3)), b=np.zeros(3)),
)
X = rng.normal(size=(5, 6)).astype(np.float32)


def _npu(**kw):
    return canonical(dataclasses.replace(presets.get_preset("edge-tpu-like"), **kw))


def test_a_new_node_kind_runs_everywhere():
    w1, b1, w2 = MODEL[0].w, MODEL[0].b, MODEL[2].w
    want = np.minimum(np.maximum(X @ w1 + b1, 0), 1) @ w2
    np.testing.assert_allclose(graph.forward_float(MODEL, X), want, rtol=1e-5, atol=1e-5)
    wl = graph.workload(MODEL, X.shape)
    assert wl.names == ("fc", "clip", "out") and wl.kinds == ("dense", "relu", "dense")
    assert int(wl.ofmap_elems[1]) == 5 * 8
    qm = engine.quantize_model(MODEL, X, w_bits=8, a_bits={"fc": 8, "clip": 6, "out": 8})
    assert isinstance(qm.steps["clip"], steps.VectorStep) and qm.steps["clip"].out_qp.bits == 6
    y, rep = engine.run_model(qm, X, _npu())
    np.testing.assert_allclose(y, want, atol=0.1)
    y_host, rep_host = engine.run_model(qm, X, _npu(unsupported_ops=("relu",)))
    np.testing.assert_allclose(y_host, want, atol=0.1)
    assert bool(np.asarray(rep_host.on_host)[1]) and not bool(np.asarray(rep.on_host)[1])


def test_steps_are_typed_per_node_kind():
    qm = engine.quantize_model(MODEL, X, w_bits=8, a_bits=8)
    fc = qm.steps["fc"]
    assert isinstance(fc, steps.GemmStep) and fc.w_q.shape == (6, 8) and fc.bias_q.shape == (8,)
    assert fc.output_qp is fc.final is fc.out_qp  # no fused activation
    assert qm.steps["clip"].output_qp.bits == 8


def test_compiled_forward_lives_on_the_model():
    qm = engine.quantize_model(MODEL, X, w_bits=8, a_bits=8)
    first = engine.compile_model(qm, X.shape, _npu())[0]
    assert engine.compile_model(qm, X.shape, _npu())[0] is first and len(qm.compiled) == 1
    engine.compile_model(qm, X.shape, _npu(vector_precision="fp32"))
    assert len(qm.compiled) == 2
    other = engine.quantize_model(MODEL, X, w_bits=8, a_bits=8)
    assert other.compiled == {}  # a model's passes are its own, not found by identity
    assert dataclasses.replace(qm, a_bits=8).compiled == {}
