"""A small model description the NPU can execute: layers in order, float weights.

A :data:`Model` is a tuple of nodes applied one after another to a batch (NHWC images or
``(batch, tokens, features)`` sequences); ``Add`` brings back the output of an earlier node by
name (a residual). The same description gives

* :func:`forward_float`, the fp32 reference forward pass;
* :func:`workload`, the layers the cost model needs (conv, dense, attention matmuls and the
  vector ops), with fused activations as separate vector layers so that fusion can remove
  their round trip;
* ``hw.interpreter.run_model``, the bit-accurate integer execution on an NPU config.

Each node kind is a class of :mod:`hw.nodes` that carries its float forward pass, lowering,
width planning, quantization and execution; this module walks a model through them.

>>> import numpy as np
>>> model = (Dense("fc", w=np.eye(4, 3), b=np.zeros(3), act="relu"),)
>>> forward_float(model, np.ones((2, 4))).shape
(2, 3)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from hw import layers
from hw.nodes import (
    ACTS,
    Act,
    Add,
    Attention,
    Conv,
    Dense,
    LayerNorm,
    Mean,
    Node,
    Pool,
    causal_mask,
    heads_merge,
    heads_split,
)

__all__ = [
    "ACTS",
    "Act",
    "Add",
    "Attention",
    "Conv",
    "Dense",
    "INPUT",
    "LayerNorm",
    "Mean",
    "Model",
    "Node",
    "Pool",
    "apply_float",
    "causal_mask",
    "check_nodes",
    "conv_float",
    "forward_float",
    "heads_merge",
    "heads_split",
    "workload",
]

Model = tuple  # of Node

INPUT = "input"
"""The name under which ``Add`` finds the model's input (a residual around the first node)."""


def check_nodes(model: Model) -> None:
    """``ValueError`` naming the first element of ``model`` that is not a :class:`Node`."""
    for node in model:
        if not isinstance(node, Node):
            raise ValueError(f"unknown node type {type(node).__name__}")


def conv_float(x, node: Conv):
    """The convolution of ``node`` without its fused activation."""
    return node.linear_float(x)


def apply_float(node, x, outputs: dict):
    """One node in fp32 (the host's arithmetic)."""
    check_nodes((node,))
    return node.apply_float(x, outputs)


def forward_float(model: Model, x, *, return_all: bool = False):
    """The fp32 forward pass; with ``return_all`` also every node's output by name (and the
    input as :data:`INPUT`)."""
    check_nodes(model)
    x = jnp.asarray(x, jnp.float32)
    outputs = {INPUT: x}
    for node in model:
        x = node.apply_float(x, outputs)
        outputs[node.name] = x
    return (x, outputs) if return_all else x


def workload(model: Model, input_shape: tuple[int, ...]):
    """The :class:`~hw.types.Workload` of ``model`` on a batch of ``input_shape``."""
    _, outputs = jax.eval_shape(
        lambda x: forward_float(model, x, return_all=True),
        jax.ShapeDtypeStruct(tuple(input_shape), jnp.float32),
    )
    shape = tuple(input_shape)
    lays: list[layers.Layer] = []
    for node in model:
        lays += node.lower(shape)
        shape = tuple(outputs[node.name].shape)
    return layers.workload(lays)
