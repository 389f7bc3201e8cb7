"""Run a quantized model on a simulated NPU: integer GEMMs, vector unit, host fallback, cost.

:func:`run_model` executes a :class:`~hw.ptq.QuantizedModel` the way the configured NPU would
and returns the outputs with the cost report of that execution:

* a conv or dense layer is an integer GEMM of ``(q_x - z_x)`` and ``q_w`` on the array
  (``hw.execute.run_gemm``: the config's rows, dataflow and ``acc_bits``, K split by the
  mapping's ``tile_k``), plus the integer bias ``round(b / (s_x s_w))``, then integer-only
  requantization ``q_y = clip(round(acc s_x s_w / s_y) + z_y)`` with ReLU as a clip;
* attention's ``Q K^T`` and ``A V`` are integer GEMMs too; the probabilities are quantized
  unsigned with scale ``1 / (2^bits - 1)``;
* vector ops (softmax, layernorm, GELU, ReLU, add, pooling) run on the vector unit at
  ``config.vector_precision`` (hw.vector) on dequantized values, then are quantized again;
* a layer whose kind is in ``config.unsupported_ops`` runs on the host in fp32 on dequantized
  inputs (weights in float) and is quantized back, as a fallback path would be.

Each node executes itself (``Node.execute``) on a :class:`Runner`, which holds the array's
settings. The cost report is ``hw.cost.evaluate`` of :func:`hw.graph.workload` for the batch,
with the same mapping the execution used.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from hw import cost, graph, quant, vector
from hw.execute import requantize, run_gemm
from hw.kernels import EXACT_FLOAT64, narrow
from hw.ptq import QuantizedModel
from hw.steps import GemmStep
from hw.types import CostReport, NPUConfig
from hw.x64 import x64


class Runner:
    """The array-level operations nodes execute on; holds the config and the mapping's splits."""

    def __init__(self, config: NPUConfig, tile_k: dict, overflow: str):
        self.config, self.tile_k, self.overflow = config, tile_k, overflow
        self.precision = config.vector_precision
        self.host = set(config.unsupported_ops)

    def gemm(self, a, w_q, name: str, a_bits: int, w_bits: int):
        """Integer ``a @ w_q`` on the configured array (int64); ``a`` holds ``a_bits + 1``-bit
        values (``q - z``), ``w_q`` ``w_bits``-bit ones."""
        c = self.config
        k = a.shape[-1]
        a, w_q = narrow(a, a_bits + 1), narrow(w_q, w_bits)
        # Operand ranges are known from the bit widths: when no partial sum can reach the
        # accumulator's limit, saturate and wrap give the same bits and the fast path applies.
        limit = 2 ** (int(c.acc_bits) - 1)
        overflow = "wrap" if self.bound(k, a_bits, w_bits) < limit else self.overflow
        ranges = (-(2**a_bits), 2**a_bits, -(2 ** (w_bits - 1)), 2 ** (w_bits - 1))
        return run_gemm(
            a,
            w_q,
            rows=int(c.rows),
            cols=int(c.cols),
            dataflow=int(c.dataflow),
            acc_bits=int(c.acc_bits),
            overflow=overflow,
            tile_k=self.tile_k.get(name),
            ranges=ranges,
        )

    def order_free(self, k: int, a_bits: int, w_bits: int) -> bool:
        """True when no sum of ``k`` products can clamp, wrap or lose a bit in float64: then
        the array's result is the exact integer product whatever the order of the additions
        (there are no partial-sum spills in execution), and a float convolution of the
        integers computes the same bits as the fold-by-fold GEMM."""
        limit = 2 ** (int(self.config.acc_bits) - 1)
        return self.bound(k, a_bits, w_bits) < min(EXACT_FLOAT64, limit)

    @staticmethod
    def bound(k: int, a_bits: int, w_bits: int) -> int:
        """Largest magnitude of a sum of ``k`` products of an activation less its zero point
        (``a_bits + 1`` bits) and a ``w_bits`` operand."""
        return k * 2**a_bits * 2 ** (w_bits - 1)

    def acc_bound(self, k: int, a_bits: int, w_bits: int, on_host: bool = False) -> int:
        """Largest ``|acc|`` of a GEMM: :meth:`bound`, or on the array the accumulator's range
        if smaller (a wrapped or clamped sum stays in it); the host's sum is exact."""
        limit = 2 ** (int(self.config.acc_bits) - 1)
        return (
            self.bound(k, a_bits, w_bits) if on_host else min(self.bound(k, a_bits, w_bits), limit)
        )

    def requant(self, acc, step: GemmStep, relu: bool, a_bits: int):
        """``acc`` (of ``a_bits + 1``-bit activations) plus the integer bias, requantized into
        ``step.out_qp``."""
        qp = step.out_qp
        return requantize(
            acc,
            multiplier=step.mult,
            shift=step.shift,
            zero_point=qp.zero_point,
            bias=step.bias_q,
            out_bits=qp.bits,
            signed=qp.signed,
            relu=relu,
            acc_bound=self.acc_bound(np.shape(step.w_q)[0], a_bits, step.w_qp.bits),
        )

    def vector_op(self, kind: str, fn, q, in_qp, out_qp):
        """Dequantize, apply ``fn(x, precision)`` on the vector unit or the host, requantize."""
        precision = "fp32" if kind in self.host else self.precision
        q = jax.lax.optimization_barrier(q)
        return quant.quantize(fn(quant.dequantize(q, in_qp), precision), out_qp)

    def bmm(self, a, b, name: str, a_bits: int, b_bits: int):
        """Integer ``a @ b`` over leading batch axes (int64), one array GEMM per matrix; the
        operands are activations less their zero points (``a_bits + 1``, ``b_bits + 1``
        bits)."""
        if "matmul" in self.host:
            return jnp.einsum("...ik,...kj->...ij", a.astype(jnp.int64), b.astype(jnp.int64))
        lead = a.shape[:-2]
        a2, b2 = a.reshape(-1, *a.shape[-2:]), b.reshape(-1, *b.shape[-2:])
        out = jax.vmap(lambda x, y: self.gemm(x, y, name, a_bits, b_bits + 1))(a2, b2)
        return out.reshape(*lead, a.shape[-2], b.shape[-1])


def _check(qm: QuantizedModel, config: NPUConfig, overflow: str) -> None:
    for field, want in (("w_bits", qm.w_bits), ("a_bits", qm.a_bits)):
        got = float(getattr(config, field))
        if got != want:
            raise ValueError(f"config {field}={got:g} but the model is quantized to {want} bits")
    if config.vector_precision not in vector.PRECISIONS:
        raise ValueError(
            f"vector_precision must be one of {', '.join(vector.PRECISIONS)}, "
            f"got {config.vector_precision!r}"
        )
    if overflow not in ("wrap", "saturate"):
        raise ValueError(f"overflow must be 'wrap' or 'saturate', got {overflow!r}")


@x64
def compile_model(qm: QuantizedModel, input_shape, config: NPUConfig, overflow="saturate"):
    """``(forward, workload, mapping)`` for batches of ``input_shape`` on ``config``.

    ``forward(x)`` is the jitted bit-accurate execution (float inputs, dequantized outputs),
    using the reduction split of the cost model's mapping; compiled once per setting and
    held in ``qm.compiled``. The config's ``w_bits`` and ``a_bits`` must be the model's (for
    per-layer widths, the widest; the mapping then follows the per-layer widths).
    """
    _check(qm, config, overflow)
    wl, mapping, tile_k = reduction_splits(qm, input_shape, config)
    return _forward(qm, config, tile_k, overflow), wl, mapping


def reduction_splits(qm: QuantizedModel, input_shape, config: NPUConfig) -> tuple:
    """``(workload, mapping, tile_k)``: the cost model's mapping of ``qm`` on batches of
    ``input_shape`` (at the model's per-layer widths) and, sorted by layer name, the reduction
    tile of every layer whose reduction it splits (``tile_k < K``)."""
    wl = graph.workload(qm.model, tuple(input_shape))
    bits = layer_bits(qm)
    per_layer = (
        config if bits is None else dataclasses.replace(config, w_bits=bits[0], a_bits=bits[1])
    )
    mapping = cost.default_mapping(per_layer, wl)
    tk, k = np.asarray(mapping.tile_k), np.asarray(wl.gemm_k)
    tile_k = sorted((n, int(t)) for n, t, kk in zip(wl.names, tk, k, strict=True) if t < kk)
    return wl, mapping, tuple(tile_k)


@x64
def run_model(
    qm: QuantizedModel, x, config: NPUConfig, *, overflow: str = "saturate"
) -> tuple[jax.Array, CostReport]:
    """Execute ``qm`` on the batch ``x`` as ``config`` would; returns (float outputs, costs).

    Outputs are the dequantized values of the last node (logits); the cost report is the
    exact model's for the whole batch (see :func:`compile_model`), with the model's per-layer
    widths where it has them.

    >>> import numpy as np
    >>> from hw import get_preset, quantize_model
    >>> model = (graph.Dense("fc", w=np.eye(4, 3), b=np.zeros(3), act="relu"),)
    >>> x = np.linspace(-1, 1, 8).reshape(2, 4)
    >>> qm = quantize_model(model, x, w_bits=8, a_bits=8)
    >>> y, report = run_model(qm, x, get_preset("edge-tpu-like"))
    >>> [[round(float(v), 2) for v in row] for row in y], float(report.total_latency_s) > 0
    ([[0.0, 0.0, 0.0], [0.14, 0.43, 0.71]], True)
    """
    x = jnp.asarray(x, jnp.float32)
    forward, wl, mapping = compile_model(qm, x.shape, config, overflow)
    return forward(x), cost.evaluate(config, wl, mapping, layer_bits=layer_bits(qm))


def layer_bits(qm: QuantizedModel):
    """``(w_bits, a_bits)`` per workload layer (float arrays, shape=(L,)) of a model quantized
    with per-layer widths, for ``hw.cost.evaluate``'s ``layer_bits``; ``None`` otherwise."""
    if qm.layer_w_bits is None:
        return None
    return np.asarray(qm.layer_w_bits, np.float64), np.asarray(qm.layer_a_bits, np.float64)


def _forward(qm: QuantizedModel, config: NPUConfig, tile_k: tuple, overflow: str):
    """The jitted integer forward pass of ``qm`` on ``config``, compiled once per setting."""
    c = config
    key = (int(c.rows), int(c.cols), int(c.dataflow), int(c.acc_bits), c.vector_precision)
    key += (c.unsupported_ops, tile_k, overflow)
    if key not in qm.compiled:
        runner = Runner(config, dict(tile_k), overflow)

        def forward(x):
            q, qp = quant.quantize(x, qm.in_qp), qm.in_qp
            outs = {graph.INPUT: (q, qp)}
            for node in qm.model:
                step = qm.steps[node.name]
                q = node.execute(runner, q, qp, step, outs)
                qp = step.output_qp
                outs[node.name] = (q, qp)
            return quant.dequantize(q, qp)

        qm.compiled[key] = x64(jax.jit(forward))
    return qm.compiled[key]
