"""ONNX models with weights as :mod:`hw.graph` models, so that the NPU engine can execute them.

:func:`to_graph` walks the ONNX nodes in order and builds the engine's chain of nodes: each node
consumes the output of the one before it, and a residual ``Add`` reads an earlier node's output
by name. Images are NCHW in ONNX and NHWC in the engine: :class:`EngineModel` moves a 4-D
input to NHWC and a 4-D output back, and a ``Flatten`` of a 4-D tensor flattens in ONNX's
``C, H, W`` order.

Executable ops (everything else, and any branch other than a residual, is listed in one line
by :class:`NotExecutable`):

* ``Conv`` (one stride and one padding for both axes, no dilation), ``Gemm`` (``alpha = beta
  = 1``) and ``MatMul`` with a constant right operand, each with a following bias ``Add``,
  ``BatchNormalization`` and ``Relu`` folded in when nothing else reads the GEMM's output;
* ``Relu``, ``Gelu`` and the exact-GELU ``Erf`` pattern, ``Softmax`` on the last axis,
  ``LayerNormalization`` on the last axis (epsilon 1e-5), ``MaxPool``/``AveragePool`` with
  a square window and no padding, ``GlobalAveragePool``, ``ReduceMean`` over the spatial or
  token axes, a residual ``Add`` of two node outputs;
* ``Flatten`` and ``Reshape`` to ``(batch, -1)``, ``Identity`` and ``Dropout`` (no-ops).
"""

from __future__ import annotations

import dataclasses
from collections import Counter

import jax.numpy as jnp
import numpy as np
import onnx
from onnx import numpy_helper

from hw import graph, vector
from hw.nodes import Node, NodeWidths, VectorNode
from hw.steps import VectorStep
from npu_dse import onnx_ops
from npu_dse.onnx_import import Graph, unique_names


class NotExecutable(ValueError):
    """Ops of a model the engine cannot execute (one line)."""


@dataclasses.dataclass(frozen=True, eq=False)
class Softmax(VectorNode):
    """Softmax over the last axis on the vector unit."""

    name: str
    op_kind = "softmax"

    def vector_fn(self, x, precision: str):
        return vector.softmax(x, axis=-1, precision=precision)


@dataclasses.dataclass(frozen=True, eq=False)
class Flatten(Node):
    """``(B, H, W, C)`` to ``(B, C H W)`` in ONNX's NCHW order: a free re-addressing of the
    codes (no layer, no width of its own)."""

    name: str
    on_codes = True

    @staticmethod
    def _flat(x):
        return jnp.transpose(x, (0, 3, 1, 2)).reshape(x.shape[0], -1)

    def apply_float(self, x, outputs: dict):
        return self._flat(x)

    def lower(self, shape):
        return []

    def widths(self, w, a, in_bits: int) -> NodeWidths:
        return NodeWidths({}, {}, [])

    def quantize(self, x, in_qp, out_qp, calib) -> VectorStep:
        return VectorStep(in_qp)

    def execute(self, run, q, in_qp, step: VectorStep, outputs: dict):
        return self._flat(q)


@dataclasses.dataclass(frozen=True)
class EngineModel:
    """An ONNX model as an engine model, with the layout moves at its ends."""

    model: tuple  # hw.graph nodes
    input_name: str
    nchw_input: bool  # a 4-D input, moved to NHWC for the engine
    output_shape: tuple  # the ONNX output's shape with batch as -1

    def to_engine(self, x):
        x = np.asarray(x, np.float32)
        return np.transpose(x, (0, 2, 3, 1)) if self.nchw_input else x

    def to_onnx(self, y):
        y = np.asarray(y)
        if y.ndim == 4:
            y = np.transpose(y, (0, 3, 1, 2))
        return y.reshape(y.shape[0], *self.output_shape[1:])

    def forward_float(self, x):
        """The engine's fp32 forward pass, in ONNX's layout."""
        return self.to_onnx(graph.forward_float(self.model, self.to_engine(x)))


class _Builder:
    """The chain under construction: nodes, which ONNX tensor flows, what is still free."""

    def __init__(self, g: Graph, weights: dict):
        self.g, self.weights = g, weights
        self.nodes: list = []
        self.names: dict[str, str] = {}  # ONNX tensor -> engine node whose output it is
        self.cur: str = ""
        self.rank = 0
        self.bad: Counter = Counter()

    def const(self, tensor: str):
        return self.weights.get(tensor)

    def emit(self, node, out: str, rank: int) -> None:
        self.nodes.append(node)
        self.names[out] = node.name
        self.cur, self.rank = out, rank

    def alias(self, out: str) -> None:
        if self.cur in self.names:
            self.names[out] = self.names[self.cur]
        self.cur = out

    def last_gemm(self, tensor: str):
        """The last node when it is a conv/dense whose output ``tensor`` nothing else reads."""
        last = self.nodes[-1] if self.nodes else None
        if not isinstance(last, graph.Conv | graph.Dense) or tensor != self.cur:
            return None
        return last if len(self.g.readers.get(tensor, [])) == 1 else None

    def replace_last(self, node, out: str) -> None:
        self.nodes[-1] = node
        self.names[out] = node.name
        self.cur = out


def _attr(node, name, default):
    return onnx_ops._attr(node, name, default)


def _conv(b: _Builder, node, name: str) -> bool:
    w = b.const(node.input[1])
    strides = set(_attr(node, "strides", [1, 1]))
    pads = set(_attr(node, "pads", [0, 0, 0, 0]))
    if w is None or w.ndim != 4 or len(strides) != 1 or len(pads) != 1:
        return False
    if set(_attr(node, "dilations", [1, 1])) != {1} or _attr(node, "auto_pad", b"NOTSET") not in (
        b"NOTSET",
        "NOTSET",
    ):
        return False
    bias = b.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    bias = np.zeros(w.shape[0], np.float32) if bias is None else bias
    conv = graph.Conv(
        name,
        w=np.transpose(w, (2, 3, 1, 0)),
        b=bias,
        stride=int(strides.pop()),
        padding=int(pads.pop()),
        groups=int(_attr(node, "group", 1)),
    )
    b.emit(conv, node.output[0], 4)
    return True


def _dense(b: _Builder, node, name: str) -> bool:
    w = b.const(node.input[1])
    if w is None or w.ndim != 2 or b.rank == 4:
        return False
    if node.op_type == "Gemm":
        if _attr(node, "alpha", 1.0) != 1.0 or _attr(node, "beta", 1.0) != 1.0:
            return False
        if _attr(node, "transA", 0):
            return False
        w = w.T if _attr(node, "transB", 0) else w
    bias = b.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    bias = np.zeros(w.shape[1], np.float32) if bias is None else np.broadcast_to(bias, w.shape[1])
    b.emit(graph.Dense(name, w=w, b=np.array(bias)), node.output[0], b.rank)
    return True


def _fold(b: _Builder, node, name: str) -> bool:
    """A bias Add, BatchNormalization or Relu folded into the GEMM before it."""
    last = b.last_gemm(node.input[0])
    if node.op_type == "Add":
        live = [t for t in node.input if b.const(t) is None]
        last = b.last_gemm(live[0]) if len(live) == 1 else None
        bias = next((b.const(t) for t in node.input if b.const(t) is not None), None)
        channels = np.shape(last.w)[-1] if last is not None else 0
        if last is None or last.act != "none" or bias is None or bias.size != channels:
            return False
        if isinstance(last, graph.Conv) and bias.shape not in ((channels,), (channels, 1, 1)):
            return False
        new = dataclasses.replace(last, b=last.b + bias.reshape(-1))
    elif node.op_type == "BatchNormalization":
        params = [b.const(t) for t in node.input[1:5]]
        if last is None or last.act != "none" or any(p is None for p in params):
            return False
        s, beta, mean, var = params
        k = s / np.sqrt(var + _attr(node, "epsilon", 1e-5))
        new = dataclasses.replace(last, w=last.w * k, b=(last.b - mean) * k + beta)
    else:  # Relu
        if last is None or last.act != "none":
            return False
        new = dataclasses.replace(last, act="relu")
    b.replace_last(new, node.output[0])
    return True


def _vector(b: _Builder, node, name: str) -> bool:
    op, g = node.op_type, b.g
    if op in ("Relu", "Gelu") or node.output[0] in g.gelu:
        kind = "relu" if op == "Relu" else "gelu"
        if op == "Gelu" and _attr(node, "approximate", b"none") not in (b"none", "none"):
            return False
        b.emit(graph.Act(name, kind), node.output[0], b.rank)
    elif op == "Softmax":
        if _attr(node, "axis", -1) not in (-1, b.rank - 1):
            return False
        b.emit(Softmax(name), node.output[0], b.rank)
    elif op == "LayerNormalization":
        gamma, beta = b.const(node.input[1]), b.const(node.input[2])
        if _attr(node, "axis", -1) not in (-1, b.rank - 1) or gamma is None or beta is None:
            return False
        if abs(_attr(node, "epsilon", 1e-5) - 1e-5) > 1e-12:
            return False
        b.emit(graph.LayerNorm(name, gamma=gamma, beta=beta), node.output[0], b.rank)
    else:
        return False
    return True


def _pool(b: _Builder, node, name: str) -> bool:
    op = node.op_type
    if op in ("MaxPool", "AveragePool"):
        kernel, strides = set(_attr(node, "kernel_shape", [])), set(_attr(node, "strides", [1]))
        pads = set(_attr(node, "pads", [0]))
        if b.rank != 4 or len(kernel) != 1 or len(strides) != 1 or pads != {0}:
            return False
        if _attr(node, "ceil_mode", 0):
            return False
        kind = "max" if op == "MaxPool" else "avg"
        b.emit(graph.Pool(name, kind, kernel.pop(), strides.pop()), node.output[0], 4)
        return True
    axes = _attr(node, "axes", None)
    if op == "ReduceMean" and len(node.input) > 1:
        axes = b.const(node.input[1])
    axes = None if axes is None else sorted(int(a) % b.rank for a in np.ravel(axes))
    if op == "GlobalAveragePool" and b.rank == 4:
        ok = True
    else:
        ok = op == "ReduceMean" and axes == ([2, 3] if b.rank == 4 else [1])
    if ok:
        b.emit(graph.Mean(name), node.output[0], 2 if b.rank == 4 else b.rank - 1)
    return ok


def _residual(b: _Builder, node, name: str) -> bool:
    if node.op_type != "Add" or b.cur not in node.input:
        return False
    other = [t for t in node.input if t != b.cur]
    if len(other) != 1 or other[0] not in b.names or b.const(other[0]) is not None:
        return False
    b.emit(graph.Add(name, other=b.names[other[0]]), node.output[0], b.rank)
    return True


def _layout(b: _Builder, node, name: str) -> bool:
    op = node.op_type
    if op in ("Identity", "Dropout"):
        b.alias(node.output[0])
        return True
    if op == "Flatten" and _attr(node, "axis", 1) != 1:
        return False
    if op == "Reshape":
        shape = b.const(node.input[1])
        out = b.g.shapes.get(node.output[0])
        if shape is None or out is None or len(out) != 2:
            return False
    if op not in ("Flatten", "Reshape"):
        return False
    if b.rank == 4:
        b.emit(Flatten(name), node.output[0], 2)
    else:
        b.alias(node.output[0])
        b.rank = 2
    return True


_FOR_OP = {
    "Conv": (_conv,),
    "Gemm": (_dense,),
    "MatMul": (_dense,),
    "Add": (_fold, _residual),
    "BatchNormalization": (_fold,),
    "Relu": (_fold, _vector),
}


def _step(b: _Builder, node, name: str) -> bool:
    """Add ``node`` to the chain; False when the engine cannot execute it here."""
    live = [t for t in node.input if t and b.const(t) is None]
    if b.cur not in live and node.output[0] not in b.g.gelu:
        return False
    if node.output[0] in b.g.gelu:
        return _vector(b, node, name)
    for handler in _FOR_OP.get(node.op_type, (_vector, _pool, _layout)):
        if handler(b, node, name):
            return True
    return False


def to_graph(model: onnx.ModelProto, where: str = "model") -> EngineModel:
    """The engine model of an ONNX model with its weights; :class:`NotExecutable` otherwise."""
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    inputs = [v for v in model.graph.input if v.name not in weights]
    if len(inputs) != 1 or len(model.graph.output) != 1:
        raise NotExecutable(f"{where}: the engine executes models with one input and one output")
    model = onnx.shape_inference.infer_shapes(model)
    g = Graph(model, where)
    for node in model.graph.node:
        if node.op_type == "Constant":
            weights[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    skip = onnx_ops.gelu_groups(g, model.graph.node)
    b = _Builder(g, weights)
    b.cur, b.rank = inputs[0].name, len(g.shapes.get(inputs[0].name, ()))
    for node, name in zip(model.graph.node, unique_names(model.graph.node), strict=True):
        if node.op_type == "Constant" or node.output[0] in skip:
            continue
        if not _step(b, node, name):
            b.bad[node.op_type] += 1
    if b.cur != model.graph.output[0].name and not b.bad:
        b.bad["(a branch the chain does not reach)"] += 1
    if b.bad:
        ops = ", ".join(f"{op} x{n}" for op, n in sorted(b.bad.items()))
        raise NotExecutable(f"{where}: the engine cannot execute {ops}")
    out_shape = g.shapes.get(model.graph.output[0].name, ())
    rank_in = len(g.shapes.get(inputs[0].name, ()))
    return EngineModel(tuple(b.nodes), inputs[0].name, rank_in == 4, (-1, *out_shape[1:]))
