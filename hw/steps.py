"""The integer parameters of one node, by node kind: what quantization hands the interpreter.

A GEMM (conv, dense, an attention projection) has integer weights, an integer bias and the
requantization constants of ``q_y = clip(round(acc s_x s_w / s_y) + z_y)``
(:func:`hw.execute.requantize`); a vector node only the parameters of its output. Every step
names the parameters of the tensor it hands the next node as ``output_qp``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from hw import quant
from hw.execute import quantize_multiplier
from hw.quant import QParams

_MIN_REQUANT_SCALE = 2.0**-31  # twice the smallest scale quantize_multiplier represents


@dataclasses.dataclass(frozen=True, eq=False)
class VectorStep:
    """A vector node (or one on codes: max pooling, ReLU): its output's parameters."""

    out_qp: QParams

    @property
    def output_qp(self) -> QParams:
        return self.out_qp


@dataclasses.dataclass(frozen=True, eq=False)
class GemmStep:
    """One integer GEMM ``(q_x - z_x) @ w_q + bias_q``, requantized into ``out_qp``."""

    w_q: Any  # shape=(K, N), w_qp.bits-bit signed integers
    w_qp: QParams  # symmetric, per output channel: scale shape=(N,)
    bias_q: Any  # shape=(N,) int64, round(b / (s_x s_w))
    mult: Any  # shape=(N,) requantization multipliers (hw.execute.quantize_multiplier)
    shift: Any  # shape=(N,)
    out_qp: QParams  # the GEMM's requantized output
    final: QParams  # the node's output: after a fused GELU, else out_qp

    @property
    def output_qp(self) -> QParams:
        return self.final


@dataclasses.dataclass(frozen=True, eq=False)
class AttentionStep:
    """Self-attention: three projections, ``Q K^T``, softmax, ``A V`` and the output projection."""

    q: GemmStep
    k: GemmStep
    v: GemmStep
    probs_qp: QParams  # unsigned, scale 1 / (2^bits - 1), zero point 0
    av_mult: Any  # requantization of A V (probs and v scales) into ctx_qp
    av_shift: Any
    ctx_qp: QParams  # the merged heads' context, input of the output projection
    o: GemmStep

    @property
    def output_qp(self) -> QParams:
        return self.o.output_qp


Step = VectorStep | GemmStep | AttentionStep


def gemm_step(w, b, in_qp: QParams, out_qp: QParams, w_bits: int, final=None) -> GemmStep:
    """Integer weights ``(K, N)``, bias and requantization constants of one GEMM whose input
    has ``in_qp`` and whose requantized output ``out_qp`` (``final``: the node's output after
    a fused activation; ``out_qp`` if omitted)."""
    w = np.asarray(w, np.float64)
    w_qp = quant.calibrate(w, w_bits, symmetric=True, per_channel_axis=w.ndim - 1)
    s_x, s_y = float(in_qp.scale), float(out_qp.scale)
    # The requantization multiplier holds scales down to 2^-32 (quantize_multiplier). A channel
    # below (near-zero weights at a wide width) gets its weight scale raised to 2^-31 s_y / s_x:
    # its rounding then moves a sum of K products by under K 2^(a_bits - 32) output steps.
    floor = _MIN_REQUANT_SCALE * s_y / s_x
    if np.any(np.asarray(w_qp.scale) < floor):
        scale = np.maximum(np.asarray(w_qp.scale, np.float64), floor)
        w_qp = dataclasses.replace(w_qp, scale=scale.astype(np.asarray(w_qp.scale).dtype))
    s_w = np.asarray(w_qp.scale, np.float64)
    mult, shift = quantize_multiplier(s_x * s_w / s_y)
    return GemmStep(
        w_q=np.asarray(quant.quantize(w, w_qp)),
        w_qp=w_qp,
        bias_q=np.round(np.asarray(b, np.float64) / (s_x * s_w)).astype(np.int64),
        mult=mult,
        shift=shift,
        out_qp=out_qp,
        final=out_qp if final is None else final,
    )
