"""Vector nodes: activations, layernorm, pooling, the global mean and the residual add.

Each has one workload layer and one quantized output. On the NPU it runs on the vector unit at
``config.vector_precision`` on dequantized values and is quantized again (on the host in fp32
when its kind is in ``config.unsupported_ops``); max pooling and ReLU act on the codes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax.numpy as jnp
import numpy as np

from hw import layers, quant, vector
from hw.kernels import max_pool_codes
from hw.nodes.base import Node, NodeWidths
from hw.steps import VectorStep


class VectorNode(Node):
    """What the vector nodes share; each names its ``op_kind`` and its ``vector_fn``."""

    name: str
    op_kind: str  # the workload layer's kind, as config.unsupported_ops names it
    inputs = 1  # tensors read per output element

    def vector_fn(self, x, precision: str):
        """The node on float ``x`` at one of ``hw.vector.PRECISIONS``."""
        raise NotImplementedError

    def code_op(self, q, qp):
        """The node on integer codes (only where ``on_codes``)."""
        raise NotImplementedError

    def apply_float(self, x, outputs: dict):
        return self.vector_fn(x, "fp32")

    def lower(self, shape):
        elems = int(np.prod(shape))
        return [layers.vector(self.name, self.op_kind, elems=elems, inputs=self.inputs)]

    def widths(self, w, a, in_bits: int) -> NodeWidths:
        """Its output at ``a[NAME]``; on codes the width given (else its input's) for cost."""
        n = self.name
        if self.on_codes:
            return NodeWidths({}, {}, [(n, None, a.get(n, in_bits))])
        return NodeWidths({}, {n: a(n)}, [(n, None, a(n))])

    def quantize(self, x, in_qp, out_qp, calib) -> VectorStep:
        return VectorStep(out_qp)

    def execute(self, run, q, in_qp, step: VectorStep, outputs: dict):
        if self.on_codes and self.op_kind not in run.host:
            return self.code_op(q, in_qp)
        return run.vector_op(self.op_kind, self.vector_fn, q, in_qp, step.out_qp)


@dataclasses.dataclass(frozen=True, eq=False)
class Act(VectorNode):
    """Elementwise ``relu`` or ``gelu``."""

    name: str
    kind: str

    @property
    def op_kind(self) -> str:
        return self.kind

    @property
    def on_codes(self) -> bool:
        return self.kind == "relu"

    def vector_fn(self, x, precision: str):
        if self.kind == "relu":
            return vector.relu(x, precision=precision)
        return vector.gelu(x, precision=precision)

    def code_op(self, q, qp):
        return jnp.maximum(q, qp.zero_point).astype(q.dtype)


@dataclasses.dataclass(frozen=True, eq=False)
class LayerNorm(VectorNode):
    name: str
    gamma: Any
    beta: Any
    op_kind = "layernorm"

    def vector_fn(self, x, precision: str):
        return vector.layernorm(x, self.gamma, self.beta, precision=precision)


@dataclasses.dataclass(frozen=True, eq=False)
class Pool(VectorNode):
    """``max`` or ``avg`` pooling over NHWC windows."""

    name: str
    kind: str
    window: int
    stride: int
    op_kind = "pool"

    @property
    def on_codes(self) -> bool:
        return self.kind == "max"

    def vector_fn(self, x, precision: str):
        pool = vector.max_pool2d if self.kind == "max" else vector.avg_pool2d
        return pool(x, self.window, self.stride, precision=precision)

    def code_op(self, q, qp):
        return max_pool_codes(q, self.window, self.stride)

    def lower(self, shape):
        b, h, w, c = shape
        return [
            layers.pool(
                self.name,
                ifmap_h=h,
                ifmap_w=w,
                channels=c,
                window=self.window,
                stride=self.stride,
                batch=b,
            )
        ]


@dataclasses.dataclass(frozen=True, eq=False)
class Mean(VectorNode):
    """Mean over the spatial (NHWC) or token (NTC) axes: global average pooling."""

    name: str
    op_kind = "pool"

    def vector_fn(self, x, precision: str):
        return jnp.mean(x, axis=tuple(range(1, x.ndim - 1)))

    def lower(self, shape):
        b, *space, c = shape
        n = int(np.prod(space))
        lay = layers.vector(self.name, "add", elems=b * c)
        return [dataclasses.replace(lay, kind="pool", ifmap_elems=b * n * c, vector_ops=b * n * c)]


@dataclasses.dataclass(frozen=True, eq=False)
class Add(VectorNode):
    """Residual: this node's input plus the output of node ``other``."""

    name: str
    other: str
    op_kind = "add"
    inputs = 2

    def apply_float(self, x, outputs: dict):
        return x + outputs[self.other]

    def execute(self, run, q, in_qp, step: VectorStep, outputs: dict):
        other_q, other_qp = outputs[self.other]

        def fn(x, precision):
            return vector.add(x, quant.dequantize(other_q, other_qp), precision=precision)

        return run.vector_op("add", fn, q, in_qp, step.out_qp)
