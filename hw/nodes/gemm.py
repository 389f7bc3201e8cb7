"""Conv and dense nodes: one GEMM each, with an optional fused ReLU or GELU.

On the NPU the GEMM is ``(q_x - z_x) @ q_w`` on the array plus the integer bias, requantized
with integer arithmetic (``hw.execute.requantize``); a fused ReLU is a clip of the output
codes, a fused GELU runs on the vector unit between two quantized tensors. A conv is lowered
by im2col per group onto the array, or, when no partial sum can clamp or lose a bit
(``Runner.order_free``), computed as one exact float conv of the integers (the same bits).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from hw import layers, quant, vector
from hw.kernels import exact_conv, im2col
from hw.nodes.base import Node, NodeWidths
from hw.steps import GemmStep, gemm_step

ACTS = ("none", "relu", "gelu")


def fused_act(x, act: str, precision: str):
    """``act`` (one of :data:`ACTS`) at ``precision``."""
    if act == "relu":
        return vector.relu(x, precision=precision)
    if act == "gelu":
        return vector.gelu(x, precision=precision)
    return x


def _gelu(x, precision):
    return vector.gelu(x, precision=precision)


class GemmNode(Node):
    """What conv and dense share: the fused activation, widths, quantization, execution."""

    name: str
    w: Any
    b: Any
    act: str
    op_kind: str  # the kind config.unsupported_ops names to run this node on the host

    def linear_float(self, x):
        raise NotImplementedError

    def gemm_layer(self, shape) -> layers.Layer:
        raise NotImplementedError

    def integer_gemm(self, run, x, a_bits: int, step: GemmStep):
        raise NotImplementedError

    def apply_float(self, x, outputs: dict):
        return fused_act(self.linear_float(x), self.act, "fp32")

    def lower(self, shape):
        out = [self.gemm_layer(shape)]
        if self.act != "none":
            elems = out[0].ofmap_elems
            out.append(layers.vector(f"{self.name}_{self.act}", self.act, elems=elems))
        return out

    def widths(self, w, a, in_bits: int) -> NodeWidths:
        n = self.name
        out, lays = a(n), [(n, w(n), a(n))]
        acts = {n: out}
        if self.act == "gelu":
            acts = {f"{n}.pre": out, n: a(f"{n}_gelu")}
            lays.append((f"{n}_gelu", None, acts[n]))
        elif self.act == "relu":  # a clip of the GEMM's output codes
            lays.append((f"{n}_relu", None, a.get(f"{n}_relu", out)))
        return NodeWidths({n: w(n)}, acts, lays)

    def quantize(self, x, in_qp, out_qp, calib) -> GemmStep:
        """Weights per output channel; a fused GELU's input quantized as ``NAME.pre``."""
        w = np.reshape(self.w, (-1, np.shape(self.w)[-1]))
        pre_qp = out_qp
        if self.act == "gelu":
            plain = dataclasses.replace(self, act="none")
            pre_qp = calib.act(f"{self.name}.pre", plain.apply_float(x, {}))
        return gemm_step(w, self.b, in_qp, pre_qp, calib.w_bits[self.name], final=out_qp)

    def execute(self, run, q, in_qp, step: GemmStep, outputs: dict):
        """Integer GEMM (per group), requantization, then a non-ReLU activation."""
        if self.op_kind in run.host:
            y = self.apply_float(quant.dequantize(q, in_qp), {})
            return quant.quantize(y, step.final)
        x = q.astype(jnp.int32) - in_qp.zero_point
        acc = self.integer_gemm(run, x, in_qp.bits, step)
        y = run.requant(acc, step, relu=self.act == "relu", a_bits=in_qp.bits)
        if self.act == "gelu":
            y = run.vector_op("gelu", _gelu, y, step.out_qp, step.final)
        return y


@dataclasses.dataclass(frozen=True, eq=False)
class Conv(GemmNode):
    """2-D convolution, NHWC input, weights ``w`` of shape ``(R, S, C / groups, F)``."""

    name: str
    w: Any
    b: Any
    stride: int = 1
    padding: int = 0
    groups: int = 1
    act: str = "none"
    op_kind = "conv"

    def linear_float(self, x):
        y = jax.lax.conv_general_dilated(
            x,
            jnp.asarray(self.w, x.dtype),
            window_strides=(self.stride, self.stride),
            padding=[(self.padding, self.padding)] * 2,
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
            feature_group_count=self.groups,
        )
        return y + jnp.asarray(self.b, x.dtype)

    def gemm_layer(self, shape) -> layers.Layer:
        r, s, _, f = np.shape(self.w)
        b, h, w, c = shape
        return layers.conv2d(
            self.name,
            ifmap_h=h,
            ifmap_w=w,
            channels=c,
            num_filters=f,
            filter_h=r,
            filter_w=s,
            stride=self.stride,
            padding=self.padding,
            groups=self.groups,
            batch=b,
        )

    def integer_gemm(self, run, x, a_bits: int, step: GemmStep):
        w_bits = step.w_qp.bits
        r, s, cg, f = np.shape(self.w)
        k = r * s * cg
        if run.order_free(k, a_bits, w_bits):
            bound = run.bound(k, a_bits, w_bits)
            geometry = dict(stride=self.stride, padding=self.padding, groups=self.groups)
            return exact_conv(x, step.w_q, np.shape(self.w), bound=bound, **geometry)
        fg = f // self.groups
        cols = []
        for g in range(self.groups):
            a, out_shape = im2col(x[..., g * cg : (g + 1) * cg], r, s, self.stride, self.padding)
            w_g = step.w_q[:, g * fg : (g + 1) * fg]
            cols.append(run.gemm(a, w_g, self.name, a_bits, w_bits))
        return jnp.concatenate(cols, axis=-1).reshape(*out_shape, f)


@dataclasses.dataclass(frozen=True, eq=False)
class Dense(GemmNode):
    """``x @ w + b`` on the last axis; ``w`` has shape ``(in, out)``."""

    name: str
    w: Any
    b: Any
    act: str = "none"
    op_kind = "dense"

    def linear_float(self, x):
        return x @ self.w + self.b

    def gemm_layer(self, shape) -> layers.Layer:
        i, o = np.shape(self.w)
        tokens = int(np.prod(shape[:-1]))
        return layers.dense(self.name, in_features=i, out_features=o, tokens=tokens)

    def integer_gemm(self, run, x, a_bits: int, step: GemmStep):
        lead = x.shape[:-1]
        acc = run.gemm(x.reshape(-1, x.shape[-1]), step.w_q, self.name, a_bits, step.w_qp.bits)
        return acc.reshape(*lead, -1)
