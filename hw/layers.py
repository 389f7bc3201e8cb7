"""Layers lowered to GEMMs plus vector work, and stacked into a :class:`~hw.types.Workload`.

Every layer is ``gemm_count`` GEMMs ``(M x K) . (K x N)`` and ``vector_ops`` elementwise
operations. The conv lowering is SCALE-Sim's (``scalesim/topology_utils.py``): the im2col
matrix has one row per output pixel and one column per filter tap,

    M = batch * E_h * E_w,   K = R * S * C / groups,   N = F / groups,   count = groups,

with ``E = ceil((H + 2 pad - D + s) / s)`` and ``D = dilation * (R - 1) + 1`` when
``rounding="ceil"`` (SCALE-Sim's convention; it computes one extra, partial output when the
stride does not divide ``H - D``) and ``E = floor((H + 2 pad - D) / s) + 1`` when
``rounding="floor"`` (frameworks' convention, the default). Depthwise conv is
``groups = C = F``. The cost model may run a conv's groups side by side on the array's
columns instead of one GEMM after another (``hw.grouped``, ``NPUConfig.grouped_lowering``).

>>> lay = conv2d("conv1", ifmap_h=8, ifmap_w=8, channels=3, num_filters=16, filter_h=3,
...              filter_w=3, stride=1)
>>> (lay.gemm_m, lay.gemm_k, lay.gemm_n)  # 6*6 pixels, 3*3*3 taps, 16 filters
(36, 27, 16)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from hw.bounds import WORK_MAX, InputError
from hw.types import Workload

# Elementwise operations per element of each vector op (counted as the vector unit does them).
VECTOR_OPS_PER_ELEM = {
    "relu": 1,  # max(x, 0)
    "add": 1,  # residual add
    "softmax": 5,  # max, subtract, exp, sum, divide
    "layernorm": 8,  # mean, subtract, square, mean, rsqrt, multiply, scale, shift
    "gelu": 8,  # tanh approximation: cube, 2 fma, tanh, add, 2 multiplies
    "rmsnorm": 4,  # square, sum, multiply by rsqrt(mean), multiply by the gain
    "rope": 3,  # rotary embedding: x cos + rotate(x) sin, two multiplies and an add
    "swiglu": 5,  # silu(gate) * up: exp, add, divide (sigmoid), two multiplies
    "kv_store": 1,  # requantize a new key or value to the KV cache's width
    "embed": 1,  # embedding-table lookup (a copy; the add of a position row when 2 inputs)
}


@dataclasses.dataclass(frozen=True)
class Layer:
    """One layer as Python integers (see :class:`~hw.types.Workload` for the fields)."""

    name: str
    kind: str
    gemm_m: int = 0
    gemm_k: int = 0
    gemm_n: int = 0
    gemm_count: int = 0
    ifmap_elems: int = 0
    filter_elems: int = 0
    ofmap_elems: int = 0
    vector_ops: int = 0

    @property
    def macs(self) -> int:
        return self.gemm_m * self.gemm_k * self.gemm_n * self.gemm_count


def _positive(name: str, **values: int) -> None:
    for field, v in values.items():
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
            raise ValueError(f"layer {name!r}: {field} must be a positive integer, got {v!r}")


def conv_out_size(size: int, kernel: int, stride: int, padding: int, dilation: int, rounding: str):
    """Output length of a convolution along one axis (see the module docstring)."""
    span = dilation * (kernel - 1) + 1
    room = size + 2 * padding - span
    if room < 0:
        return 0
    if rounding == "ceil":
        return -(-(room + stride) // stride)  # ceil in integers: exact at any size
    return room // stride + 1


def conv2d(
    name: str,
    *,
    ifmap_h: int,
    ifmap_w: int,
    channels: int,
    num_filters: int,
    filter_h: int,
    filter_w: int,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    groups: int = 1,
    batch: int = 1,
    rounding: str = "floor",
) -> Layer:
    """A 2-D convolution (NHWC), lowered to ``groups`` GEMMs."""
    _positive(name, ifmap_h=ifmap_h, ifmap_w=ifmap_w, channels=channels)
    _positive(name, num_filters=num_filters, filter_h=filter_h, filter_w=filter_w)
    _positive(name, stride=stride, dilation=dilation, groups=groups, batch=batch)
    if isinstance(padding, bool) or not isinstance(padding, int | np.integer) or padding < 0:
        raise ValueError(f"layer {name!r}: padding must be an integer >= 0, got {padding!r}")
    if rounding not in ("floor", "ceil"):
        raise ValueError(f"layer {name!r}: rounding must be 'floor' or 'ceil', got {rounding!r}")
    if channels % groups or num_filters % groups:
        raise ValueError(
            f"layer {name!r}: groups={groups} must divide channels={channels} "
            f"and num_filters={num_filters}"
        )
    out_h = conv_out_size(ifmap_h, filter_h, stride, padding, dilation, rounding)
    out_w = conv_out_size(ifmap_w, filter_w, stride, padding, dilation, rounding)
    if out_h < 1 or out_w < 1:
        raise ValueError(
            f"layer {name!r}: the {filter_h}x{filter_w} filter (dilation {dilation}) does not "
            f"fit the {ifmap_h}x{ifmap_w} input with padding {padding}"
        )
    c_g, f_g = channels // groups, num_filters // groups
    return Layer(
        name=name,
        kind="depthwise" if groups == channels == num_filters and groups > 1 else "conv",
        gemm_m=batch * out_h * out_w,
        gemm_k=filter_h * filter_w * c_g,
        gemm_n=f_g,
        gemm_count=groups,
        ifmap_elems=batch * ifmap_h * ifmap_w * channels,
        filter_elems=filter_h * filter_w * c_g * num_filters,
        ofmap_elems=batch * out_h * out_w * num_filters,
    )


def dense(name: str, *, in_features: int, out_features: int, tokens: int = 1) -> Layer:
    """A fully connected layer applied to ``tokens`` rows: ``M = tokens, K = in, N = out``."""
    _positive(name, in_features=in_features, out_features=out_features, tokens=tokens)
    return gemm(name, m=tokens, k=in_features, n=out_features, kind="dense")


def gemm(name: str, *, m: int, k: int, n: int, count: int = 1, kind: str = "gemm") -> Layer:
    """``count`` GEMMs ``(m x k) . (k x n)`` whose right operand is a weight matrix."""
    _positive(name, m=m, k=k, n=n, count=count)
    return Layer(
        name=name,
        kind=kind,
        gemm_m=m,
        gemm_k=k,
        gemm_n=n,
        gemm_count=count,
        ifmap_elems=count * m * k,
        filter_elems=count * k * n,
        ofmap_elems=count * m * n,
    )


def batched_matmul(name: str, *, m: int, k: int, n: int, count: int = 1) -> Layer:
    """Batched matmul of two activations, such as attention's ``Q K^T`` or ``A V`` per head.

    For ``Q K^T`` with sequence ``L``, head size ``d`` and ``h`` heads: ``m=L, k=d, n=L,
    count=h * batch``; for ``A V``: ``m=L, k=L, n=d``. The right operand goes through the
    filter path of the array, as SCALE-Sim maps it.
    """
    return gemm(name, m=m, k=k, n=n, count=count, kind="matmul")


def vector(name: str, op: str, *, elems: int, inputs: int = 1) -> Layer:
    """An elementwise vector op on ``elems`` elements read from ``inputs`` tensors."""
    if op not in VECTOR_OPS_PER_ELEM:
        raise ValueError(
            f"layer {name!r}: unknown vector op {op!r}; known: {', '.join(VECTOR_OPS_PER_ELEM)}"
        )
    _positive(name, elems=elems, inputs=inputs)
    return Layer(
        name=name,
        kind=op,
        ifmap_elems=inputs * elems,
        ofmap_elems=elems,
        vector_ops=VECTOR_OPS_PER_ELEM[op] * elems,
    )


def pool(
    name: str, *, ifmap_h: int, ifmap_w: int, channels: int, window: int, stride: int, batch=1
) -> Layer:
    """Max or average pooling: ``window^2`` operations per output element."""
    _positive(name, ifmap_h=ifmap_h, ifmap_w=ifmap_w, channels=channels)
    _positive(name, window=window, stride=stride, batch=batch)
    out_h = conv_out_size(ifmap_h, window, stride, 0, 1, "floor")
    out_w = conv_out_size(ifmap_w, window, stride, 0, 1, "floor")
    if out_h < 1 or out_w < 1:
        raise ValueError(f"layer {name!r}: pooling window {window} larger than the input")
    outs = batch * out_h * out_w * channels
    return Layer(
        name=name,
        kind="pool",
        ifmap_elems=batch * ifmap_h * ifmap_w * channels,
        ofmap_elems=outs,
        vector_ops=window * window * outs,
    )


def workload(layers: Sequence[Layer]) -> Workload:
    """Stack layers into a :class:`~hw.types.Workload` of int64 arrays of shape ``(L,)``."""
    if not layers:
        raise ValueError("a workload needs at least one layer")
    fields = [f.name for f in dataclasses.fields(Layer) if f.name not in ("name", "kind")]
    for layer in layers:
        for f in fields:
            if not 0 <= getattr(layer, f) <= WORK_MAX:
                raise InputError(
                    f"layer {layer.name!r}: {f} = {getattr(layer, f)} is outside 0..2^50 "
                    f"(hw.bounds.WORK_MAX); shrink the layer"
                )
    arrays = {f: np.array([getattr(layer, f) for layer in layers], dtype=np.int64) for f in fields}
    return Workload(
        **arrays,
        names=tuple(layer.name for layer in layers),
        kinds=tuple(layer.kind for layer in layers),
    )
