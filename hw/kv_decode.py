"""Token-by-token decode of a quantized causal model with a KV cache, bit-accurately.

:func:`run_decode` executes a :class:`~hw.ptq.QuantizedModel` whose attention nodes are
causal one position at a time, as a decoder runs on an NPU: at step ``t`` the input codes of
position ``t`` go through every node; each attention node projects them to q, k, v
(:meth:`hw.nodes.Attention.project`), writes k and v into its cache at position ``t`` and
attends over the cached positions ``0..t`` (:meth:`hw.nodes.Attention.attend`). The cache
holds the integer codes of k and v, i.e. at the width the model quantized them to (the
``NAME_k`` and ``NAME_v`` layers' activation width: the KV-cache width, see
:func:`kv_widths`). Every other node runs as in :func:`hw.interpreter.run_model`.

The cache has ``T`` slots (the sequence length), the slots after ``t`` masked out of the
softmax, so each step is one compiled program (a ``lax.scan`` over the positions). With the
vector unit in fp32 the logits equal row for row those of the full causal sequence executed
by :func:`hw.interpreter.run_model`; in int16 the vector unit's per-tensor fixed-point scale
is chosen per step (over one position) rather than over the whole sequence, so the two may
differ in the last bits.
"""

from __future__ import annotations

import collections

import jax
import jax.numpy as jnp

from hw import graph, quant
from hw.interpreter import Runner, _check, reduction_splits
from hw.nodes import Attention
from hw.ptq import QuantizedModel
from hw.types import NPUConfig
from hw.x64 import x64


def kv_widths(model, a_bits: int, kv_bits: int):
    """``a_bits`` for the ``hw.ptq.quantize_model`` of ``model`` with its attention keys and
    values (the cache) at ``kv_bits``: ``a_bits`` itself when they are equal, else a mapping
    with that default."""
    if kv_bits == a_bits:
        return a_bits
    keys = {f"{n.name}_{p}": kv_bits for n in model if isinstance(n, Attention) for p in "kv"}
    return collections.defaultdict(lambda: a_bits, keys)


def _tile_k(qm: QuantizedModel, input_shape, config: NPUConfig) -> tuple:
    """The reduction splits of the cost model's mapping of the full sequence (the same as
    ``hw.interpreter.compile_model``'s)."""
    return reduction_splits(qm, input_shape, config)[2]


def _decoder(qm: QuantizedModel, config: NPUConfig, tile_k: tuple, overflow: str, slots: int):
    """The jitted scan over positions of ``qm`` on ``config`` (compiled once per setting)."""
    c = config
    key = ("kv_decode", int(c.rows), int(c.cols), int(c.dataflow), int(c.acc_bits))
    key += (c.vector_precision, c.unsupported_ops, tile_k, overflow, slots)
    if key in qm.compiled:
        return qm.compiled[key]
    runner = Runner(config, dict(tile_k), overflow)
    attn = [n for n in qm.model if isinstance(n, Attention)]

    def step(caches, xs):
        x_t, t = xs  # (B, 1, D) float, the position
        q, qp = quant.quantize(x_t, qm.in_qp), qm.in_qp
        outs, new = {graph.INPUT: (q, qp)}, {}
        keep = (jnp.arange(slots) <= t)[None, None, None, :]
        for node in qm.model:
            st = qm.steps[node.name]
            if isinstance(node, Attention):
                qh, kh, vh = node.project(runner, q, qp, st, outs)
                k_cache, v_cache = caches[node.name]
                at = (0, 0, t, 0)
                k_cache = jax.lax.dynamic_update_slice(k_cache, kh.astype(k_cache.dtype), at)
                v_cache = jax.lax.dynamic_update_slice(v_cache, vh.astype(v_cache.dtype), at)
                new[node.name] = (k_cache, v_cache)
                q = node.attend(runner, qh, k_cache, v_cache, st, keep, outs)
            else:
                q = node.execute(runner, q, qp, st, outs)
            qp = st.output_qp
            outs[node.name] = (q, qp)
        return new, quant.dequantize(q, qp)

    def run(x):  # (B, T, D) float -> (B, T, V)
        b, t, d = x.shape
        caches = {}
        for node in attn:
            shape = (b, node.heads, slots, d // node.heads)
            caches[node.name] = (jnp.zeros(shape, jnp.int32), jnp.zeros(shape, jnp.int32))
        xs = (jnp.swapaxes(x, 0, 1)[:, :, None, :], jnp.arange(t))
        _, ys = jax.lax.scan(step, caches, xs)  # (T, B, 1, V)
        return jnp.swapaxes(ys[:, :, 0, :], 0, 1)

    qm.compiled[key] = x64(jax.jit(run))
    return qm.compiled[key]


@x64
def run_decode(qm: QuantizedModel, x, config: NPUConfig, *, overflow: str = "saturate"):
    """The dequantized outputs ``(B, T, V)`` of decoding the float inputs ``x`` ``(B, T, D)``
    (the embedded positions) one position after another with a KV cache (module docstring).

    >>> import dataclasses
    >>> import numpy as np
    >>> from hw import get_preset, graph, quantize_model, run_model
    >>> rng = np.random.default_rng(0)
    >>> w = {f"w{p}": rng.normal(size=(8, 8)) * 0.3 for p in "qkvo"}
    >>> b = {f"b{p}": np.zeros(8) for p in "qkvo"}
    >>> model = (graph.Attention("attn", **w, **b, heads=2, causal=True),)
    >>> x = rng.normal(size=(2, 5, 8)).astype(np.float32)
    >>> qm = quantize_model(model, x, w_bits=8, a_bits=8)
    >>> npu = dataclasses.replace(get_preset("edge-tpu-like"), vector_precision="fp32")
    >>> full, _ = run_model(qm, x, npu)
    >>> bool(np.array_equal(run_decode(qm, x, npu), full))
    True
    """
    x = jnp.asarray(x, jnp.float32)
    if x.ndim != 3:
        raise ValueError(f"x must be (batch, positions, features), got shape {x.shape}")
    _check(qm, config, overflow)
    tile_k = _tile_k(qm, x.shape, config)
    return _decoder(qm, config, tile_k, overflow, x.shape[1])(x)
