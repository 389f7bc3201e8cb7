"""A character-level language model: a small nanoGPT-style decoder over character ids.

Input ``(B, T)`` character ids (any numeric dtype; ``T`` at most ``context``). The token
embedding row of each id plus the learned position embedding of its index, then ``blocks``
pre-norm blocks of ``models.transformer`` with *causal* self-attention::

    h = x + Attention(LayerNorm(x))            # causal: position t sees 0..t
    x = h + Dense(GELU(Dense(LayerNorm(h))))   # MLP of width mlp_ratio * d

and a final LayerNorm and the LM head, ``(B, T, vocab)`` logits of the next character.

Everything after the embedding is ``hw.graph`` nodes, so ``to_graph()`` is exact on the
embedded input: the NPU executes the blocks and the head, the embedding is a lookup (two
table rows and an add, :meth:`CharLM.embed`) whose sum is quantized at the input's width.

>>> import numpy as np
>>> from flax import nnx
>>> from hw import graph
>>> model = CharLM(vocab_size=10, context=8, rngs=nnx.Rngs(0))
>>> ids = np.array([[1, 2, 3, 4]])
>>> logits = model(ids)
>>> logits.shape
(1, 4, 10)
>>> bool(np.allclose(logits, graph.forward_float(model.to_graph(), model.embed(ids)), atol=1e-5))
True
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from flax import nnx

from hw import graph
from models.transformer import Block, QLayerNorm, _np


class CharLM(nnx.Module):
    """Token and position embeddings, causal pre-norm blocks, final LayerNorm, LM head."""

    def __init__(
        self,
        vocab_size: int,
        context: int = 64,
        d_model: int = 64,
        heads: int = 4,
        blocks: int = 2,
        mlp_ratio: int = 4,
        *,
        rngs: nnx.Rngs,
    ):
        init = nnx.initializers.normal(0.02)
        self.context = context
        self.tok = nnx.Param(init(rngs.params(), (vocab_size, d_model), jnp.float32))
        self.pos = nnx.Param(init(rngs.params(), (context, d_model), jnp.float32))
        self.blocks = nnx.List(
            [
                Block(d_model, heads, mlp_ratio, None, f"block{i}", rngs=rngs, causal=True)
                for i in range(blocks)
            ]
        )
        self.ln_f = QLayerNorm(d_model, None)
        self.head = nnx.Linear(d_model, vocab_size, rngs=rngs)

    def embed(self, ids):
        """``tok[ids] + pos[0..T)``: the blocks' float input, ``(B, T, d_model)``."""
        ids = jnp.asarray(ids).astype(jnp.int32)
        return self.tok[...][ids] + self.pos[...][: ids.shape[-1]]

    def __call__(self, ids):
        x = self.embed(ids)
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))

    def to_graph(self) -> tuple:
        """Blocks, final LayerNorm and head as ``hw.graph`` nodes; ``forward_float`` of them
        on :meth:`embed`'s output equals ``self(ids)``."""
        nodes, residual = [], "input"
        for i, block in enumerate(self.blocks):
            nodes += block.to_nodes(f"block{i}", residual)
            residual = f"block{i}_res2"
        head = graph.Dense("head", w=_np(self.head.kernel), b=_np(self.head.bias))
        return (*nodes, self.ln_f.to_node("ln_f"), head)

    def embedding_tables(self) -> tuple[np.ndarray, np.ndarray]:
        """``(tok, pos)`` as float32 arrays."""
        return _np(self.tok), _np(self.pos)
