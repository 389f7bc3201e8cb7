"""A small model description the NPU can execute: layers in order, float weights.

A :data:`Model` is a tuple of nodes applied one after another to a batch (NHWC images or
``(batch, tokens, features)`` sequences); ``Add`` brings back the output of an earlier node by
name (a residual). The same description gives

* :func:`forward_float`, the fp32 reference forward pass;
* :func:`workload`, the layers the cost model needs (conv, dense, attention matmuls and the
  vector ops), with fused activations as separate vector layers so that fusion can remove
  their round trip;
* ``hw.engine.run_model``, the bit-accurate integer execution on an NPU config.

>>> import numpy as np
>>> model = (Dense("fc", w=np.eye(4, 3), b=np.zeros(3), act="relu"),)
>>> forward_float(model, np.ones((2, 4))).shape
(2, 3)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from hw import layers, vector

ACTS = ("none", "relu", "gelu")


@dataclasses.dataclass(frozen=True, eq=False)
class Conv:
    """2-D convolution, NHWC input, weights ``w`` of shape ``(R, S, C / groups, F)``."""

    name: str
    w: Any
    b: Any
    stride: int = 1
    padding: int = 0
    groups: int = 1
    act: str = "none"


@dataclasses.dataclass(frozen=True, eq=False)
class Dense:
    """``x @ w + b`` on the last axis; ``w`` has shape ``(in, out)``."""

    name: str
    w: Any
    b: Any
    act: str = "none"


@dataclasses.dataclass(frozen=True, eq=False)
class Act:
    """Elementwise ``relu`` or ``gelu``."""

    name: str
    kind: str


@dataclasses.dataclass(frozen=True, eq=False)
class LayerNorm:
    name: str
    gamma: Any
    beta: Any


@dataclasses.dataclass(frozen=True, eq=False)
class Pool:
    """``max`` or ``avg`` pooling over NHWC windows."""

    name: str
    kind: str
    window: int
    stride: int


@dataclasses.dataclass(frozen=True, eq=False)
class Mean:
    """Mean over the spatial (NHWC) or token (NTC) axes: global average pooling."""

    name: str


@dataclasses.dataclass(frozen=True, eq=False)
class Add:
    """Residual: this node's input plus the output of node ``other``."""

    name: str
    other: str


@dataclasses.dataclass(frozen=True, eq=False)
class Attention:
    """Multi-head self-attention: projections ``wq, wk, wv, wo`` (``d x d``) with biases."""

    name: str
    wq: Any
    bq: Any
    wk: Any
    bk: Any
    wv: Any
    bv: Any
    wo: Any
    bo: Any
    heads: int
    causal: bool = False


Node = Conv | Dense | Act | LayerNorm | Pool | Mean | Add | Attention
Model = tuple  # of Node


def _act(x, act: str, precision: str):
    if act == "relu":
        return vector.relu(x, precision=precision)
    if act == "gelu":
        return vector.gelu(x, precision=precision)
    return x


def conv_float(x, node: Conv):
    y = jax.lax.conv_general_dilated(
        x,
        jnp.asarray(node.w, x.dtype),
        window_strides=(node.stride, node.stride),
        padding=[(node.padding, node.padding)] * 2,
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=node.groups,
    )
    return y + jnp.asarray(node.b, x.dtype)


def heads_split(x, heads: int):
    """``(B, T, D) -> (B, H, T, D / H)``."""
    b, t, d = x.shape
    return x.reshape(b, t, heads, d // heads).transpose(0, 2, 1, 3)


def heads_merge(x):
    """``(B, H, T, Dh) -> (B, T, H * Dh)``."""
    b, h, t, dh = x.shape
    return x.transpose(0, 2, 1, 3).reshape(b, t, h * dh)


def causal_mask(t: int):
    return jnp.tril(jnp.ones((t, t), dtype=bool))


def _attention_float(x, n: Attention):
    q, k, v = (x @ w + b for w, b in ((n.wq, n.bq), (n.wk, n.bk), (n.wv, n.bv)))
    q, k, v = (heads_split(t, n.heads) for t in (q, k, v))
    scores = q @ jnp.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    mask = causal_mask(x.shape[1]) if n.causal else None
    probs = vector.softmax(scores, precision="fp32", mask=mask)
    return heads_merge(probs @ v) @ n.wo + n.bo


def apply_float(node, x, outputs: dict):
    """One node in fp32 (the host's arithmetic)."""
    if isinstance(node, Conv):
        return _act(conv_float(x, node), node.act, "fp32")
    if isinstance(node, Dense):
        return _act(x @ node.w + node.b, node.act, "fp32")
    if isinstance(node, Act):
        return _act(x, node.kind, "fp32")
    if isinstance(node, LayerNorm):
        return vector.layernorm(x, node.gamma, node.beta, precision="fp32")
    if isinstance(node, Pool):
        pool = vector.max_pool2d if node.kind == "max" else vector.avg_pool2d
        return pool(x, node.window, node.stride, precision="fp32")
    if isinstance(node, Mean):
        return jnp.mean(x, axis=tuple(range(1, x.ndim - 1)))
    if isinstance(node, Add):
        return x + outputs[node.other]
    if isinstance(node, Attention):
        return _attention_float(x, node)
    raise ValueError(f"unknown node type {type(node).__name__}")


def forward_float(model: Model, x, *, return_all: bool = False):
    """The fp32 forward pass; with ``return_all`` also every node's output by name."""
    x = jnp.asarray(x, jnp.float32)
    outputs = {}
    for node in model:
        x = apply_float(node, x, outputs)
        outputs[node.name] = x
    return (x, outputs) if return_all else x


def _shape_layers(node, shape: tuple[int, ...]) -> list[layers.Layer]:
    """The cost-model layers of one node on an input of ``shape``."""
    if isinstance(node, Conv):
        r, s, _, f = np.shape(node.w)
        b, h, w, c = shape
        out = [
            layers.conv2d(
                node.name,
                ifmap_h=h,
                ifmap_w=w,
                channels=c,
                num_filters=f,
                filter_h=r,
                filter_w=s,
                stride=node.stride,
                padding=node.padding,
                groups=node.groups,
                batch=b,
            )
        ]
    elif isinstance(node, Dense):
        i, o = np.shape(node.w)
        tokens = int(np.prod(shape[:-1]))
        out = [layers.dense(node.name, in_features=i, out_features=o, tokens=tokens)]
    elif isinstance(node, Attention):
        return _attention_layers(node, shape)
    elif isinstance(node, Act | LayerNorm | Add):
        kind = (
            node.kind
            if isinstance(node, Act)
            else "layernorm"
            if isinstance(node, LayerNorm)
            else "add"
        )
        inputs = 2 if kind == "add" else 1
        return [layers.vector(node.name, kind, elems=int(np.prod(shape)), inputs=inputs)]
    elif isinstance(node, Pool):
        b, h, w, c = shape
        return [
            layers.pool(
                node.name,
                ifmap_h=h,
                ifmap_w=w,
                channels=c,
                window=node.window,
                stride=node.stride,
                batch=b,
            )
        ]
    elif isinstance(node, Mean):
        b, *space, c = shape
        n = int(np.prod(space))
        lay = layers.vector(node.name, "add", elems=b * c)
        return [dataclasses.replace(lay, kind="pool", ifmap_elems=b * n * c, vector_ops=b * n * c)]
    else:
        raise ValueError(f"unknown node type {type(node).__name__}")
    if node.act != "none":
        elems = out[0].ofmap_elems
        out.append(layers.vector(f"{node.name}_{node.act}", node.act, elems=elems))
    return out


def _attention_layers(n: Attention, shape) -> list[layers.Layer]:
    b, t, d = shape
    dh = d // n.heads
    proj = [
        layers.dense(f"{n.name}_{p}", in_features=d, out_features=d, tokens=b * t)
        for p in ("q", "k", "v")
    ]
    return proj + [
        layers.batched_matmul(f"{n.name}_qk", m=t, k=dh, n=t, count=b * n.heads),
        layers.vector(f"{n.name}_softmax", "softmax", elems=b * n.heads * t * t),
        layers.batched_matmul(f"{n.name}_av", m=t, k=t, n=dh, count=b * n.heads),
        layers.dense(f"{n.name}_o", in_features=d, out_features=d, tokens=b * t),
    ]


def workload(model: Model, input_shape: tuple[int, ...]):
    """The :class:`~hw.types.Workload` of ``model`` on a batch of ``input_shape``."""
    _, outputs = jax.eval_shape(
        lambda x: forward_float(model, x, return_all=True),
        jax.ShapeDtypeStruct(tuple(input_shape), jnp.float32),
    )
    shape = tuple(input_shape)
    lays: list[layers.Layer] = []
    for node in model:
        lays += _shape_layers(node, shape)
        shape = tuple(outputs[node.name].shape)
    return layers.workload(lays)
