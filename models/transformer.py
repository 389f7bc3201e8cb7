"""A small pre-norm transformer classifier over token sequences, with QAT and ``to_graph``.

Input ``(B, T, F)`` float32 tokens; for the digits, ``T = 8`` rows of ``F = 16`` features (8
pixels and the one-hot row index, see ``models.data``), so the embedding ``Dense(F, d)`` adds a
learned positional embedding (the rows of its weight that multiply the one-hot part). Then
``blocks`` times::

    h = x + Attention(LayerNorm(x))            # multi-head self-attention (causal: opt-in)
    x = h + Dense(GELU(Dense(LayerNorm(h))))   # MLP of width mlp_ratio * d

and a final LayerNorm, the mean over tokens and a dense head. Every piece is one of
``hw.graph``'s nodes, so ``to_graph()`` is exact: LayerNorm with eps 1e-5 (biased variance),
exact-erf GELU, softmax of ``q k^T / sqrt(d / heads)``. Fake quantization (``models.cnn``)
sits where ``hw.engine`` quantizes: every node's output, the projections' q, k, v and the
attention context, the softmax probabilities (unsigned, scale ``1 / (2^bits - 1)``) and the
GELU layer's pre-activation.

>>> import numpy as np
>>> from flax import nnx
>>> from hw import graph
>>> model = Transformer(rngs=nnx.Rngs(0))
>>> x = np.random.default_rng(0).random((2, 8, 16), np.float32)
>>> bool(np.allclose(model(x), graph.forward_float(model.to_graph(), x), atol=1e-5))
True
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from flax import nnx

from hw import graph, quant, vector
from models.cnn import QAT, ActQuant, QDense, QuantSpec, layer_spec, set_qat, trained_qparams


class QLayerNorm(nnx.Module):
    """LayerNorm over the last axis (eps 1e-5, as ``hw.vector.layernorm``), quantized output."""

    def __init__(self, d: int, spec: QuantSpec | None):
        self.gamma = nnx.Param(jnp.ones((d,), jnp.float32))
        self.beta = nnx.Param(jnp.zeros((d,), jnp.float32))
        self.out_q = ActQuant(spec)

    def __call__(self, x):
        return self.out_q(vector.layernorm(x, self.gamma[...], self.beta[...], precision="fp32"))

    def to_node(self, name: str) -> graph.LayerNorm:
        return graph.LayerNorm(name, gamma=_np(self.gamma), beta=_np(self.beta))


class QAttention(nnx.Module):
    """Multi-head self-attention with ``d x d`` projections and fake quantization."""

    def __init__(
        self, d: int, heads: int, spec: QuantSpec | None, *, rngs: nnx.Rngs, causal: bool = False
    ):
        if d % heads:
            raise ValueError(f"d_model={d} must be a multiple of heads={heads}")
        self.heads, self.causal = heads, causal
        self.q, self.k, self.v, self.o = (QDense(d, d, spec, rngs=rngs) for _ in range(4))
        self.ctx_q = ActQuant(spec)
        self.a_bits = None if spec is None else spec.a_bits
        self.qat = False

    def __call__(self, x):
        qh, kh, vh = (graph.heads_split(p(x), self.heads) for p in (self.q, self.k, self.v))
        scores = qh @ jnp.swapaxes(kh, -1, -2) / np.sqrt(qh.shape[-1])
        mask = graph.causal_mask(x.shape[1]) if self.causal else None
        probs = vector.softmax(scores, precision="fp32", mask=mask)
        if self.qat and self.a_bits:
            qp = quant.QParams(
                scale=jnp.float32(1.0 / (2**self.a_bits - 1)),
                zero_point=jnp.int32(0),
                bits=self.a_bits,
                signed=False,
            )
            probs = quant.fake_quant(probs, qp)
        return self.o(self.ctx_q(graph.heads_merge(probs @ vh)))

    def to_node(self, name: str) -> graph.Attention:
        w = {f"w{p}": _np(getattr(self, p).kernel) for p in "qkvo"}
        b = {f"b{p}": _np(getattr(self, p).bias) for p in "qkvo"}
        return graph.Attention(name, **w, **b, heads=self.heads, causal=self.causal)


class Block(nnx.Module):
    """Pre-norm block: attention and GELU MLP, each with a residual add (quantized)."""

    def __init__(
        self, d: int, heads: int, mlp_ratio: int, qat: QAT, name: str, *, rngs, causal=False
    ):

        def spec(part: str) -> QuantSpec | None:
            return layer_spec(qat, f"{name}_{part}")

        self.ln1 = QLayerNorm(d, spec("ln1"))
        self.attn = QAttention(d, heads, spec("attn"), rngs=rngs, causal=causal)
        self.res1_q = ActQuant(spec("res1"))
        self.ln2 = QLayerNorm(d, spec("ln2"))
        self.mlp1 = QDense(d, mlp_ratio * d, spec("mlp1"), act="gelu", rngs=rngs)
        self.mlp2 = QDense(mlp_ratio * d, d, spec("mlp2"), rngs=rngs)
        self.res2_q = ActQuant(spec("res2"))

    def __call__(self, x):
        h = self.res1_q(self.attn(self.ln1(x)) + x)
        return self.res2_q(self.mlp2(self.mlp1(self.ln2(h))) + h)

    def to_nodes(self, name: str, residual: str) -> tuple:
        """The block's nodes; ``residual`` names the node whose output enters the block."""
        return (
            self.ln1.to_node(f"{name}_ln1"),
            self.attn.to_node(f"{name}_attn"),
            graph.Add(f"{name}_res1", other=residual),
            self.ln2.to_node(f"{name}_ln2"),
            self.mlp1.to_node(f"{name}_mlp1"),
            self.mlp2.to_node(f"{name}_mlp2"),
            graph.Add(f"{name}_res2", other=f"{name}_res1"),
        )


def _np(v) -> np.ndarray:
    return np.asarray(v[...], np.float32)


class Transformer(nnx.Module):
    """Embedding, ``blocks`` pre-norm blocks, final LayerNorm, mean over tokens, dense head."""

    def __init__(
        self,
        in_features: int = 16,
        d_model: int = 32,
        heads: int = 4,
        blocks: int = 2,
        mlp_ratio: int = 2,
        num_classes: int = 10,
        qat: QAT = None,
        *,
        rngs: nnx.Rngs,
    ):
        self.in_q = ActQuant(layer_spec(qat, "input"))
        self.embed = QDense(in_features, d_model, layer_spec(qat, "embed"), rngs=rngs)
        self.blocks = nnx.List(
            [Block(d_model, heads, mlp_ratio, qat, f"block{i}", rngs=rngs) for i in range(blocks)]
        )
        self.ln_f = QLayerNorm(d_model, layer_spec(qat, "ln_f"))
        self.pool_q = ActQuant(layer_spec(qat, "pool"))
        self.head = QDense(d_model, num_classes, layer_spec(qat, "head"), rngs=rngs)

    def __call__(self, x):
        x = self.embed(self.in_q(jnp.asarray(x, jnp.float32)))
        for block in self.blocks:
            x = block(x)
        return self.head(self.pool_q(jnp.mean(self.ln_f(x), axis=1)))

    def set_qat(self, enabled: bool) -> None:
        """Fake quantization on or off (see ``models.cnn.set_qat``)."""
        set_qat(self, enabled)

    def activation_qparams(self) -> dict[str, quant.QParams]:
        """The activation ranges QAT learned, keyed as ``hw.engine.quantize_model`` expects."""
        pairs = [("input", self.in_q), ("embed", self.embed.out_q)]
        for i, blk in enumerate(self.blocks):
            b, att = f"block{i}", blk.attn
            pairs += [(f"{b}_ln1", blk.ln1.out_q), (f"{b}_attn.ctx", att.ctx_q)]
            pairs += [(f"{b}_attn.{p}", getattr(att, p).out_q) for p in "qkv"]
            pairs += [(f"{b}_attn", att.o.out_q), (f"{b}_res1", blk.res1_q)]
            pairs += [(f"{b}_ln2", blk.ln2.out_q), (f"{b}_mlp1.pre", blk.mlp1.pre_q)]
            pairs += [(f"{b}_mlp1", blk.mlp1.out_q), (f"{b}_mlp2", blk.mlp2.out_q)]
            pairs += [(f"{b}_res2", blk.res2_q)]
        pairs += [("ln_f", self.ln_f.out_q), ("pool", self.pool_q), ("head", self.head.out_q)]
        return trained_qparams(pairs)

    def to_graph(self) -> tuple:
        """The float network as ``hw.graph`` nodes (``hw.graph.forward_float`` equals
        ``self(x)`` with QAT off)."""
        nodes, residual = [self.embed.to_node("embed")], "embed"
        for i, block in enumerate(self.blocks):
            nodes += block.to_nodes(f"block{i}", residual)
            residual = f"block{i}_res2"
        nodes += [self.ln_f.to_node("ln_f"), graph.Mean("pool"), self.head.to_node("head")]
        return tuple(nodes)
