"""The project's own models (:mod:`hw.graph` nodes, e.g. ``models.CNN.to_graph()``) as ONNX.

:func:`export_onnx` writes the float network with its weights, NCHW like the frameworks'
exporters (the engine's NHWC convolution weights ``(R, S, C / groups, F)`` become ONNX's
``(F, C / groups, R, S)``), so that other tools, and :mod:`npu_dse.onnx_exec`, can run it.
Node kinds: ``Conv``, ``Dense``, ``Act``, ``Pool``, ``Mean``, ``Add``, ``LayerNorm``.

>>> import numpy as np
>>> from hw import graph
>>> proto = export_onnx((graph.Dense("fc", w=np.eye(4, 3), b=np.zeros(3), act="relu"),), (2, 4))
>>> [n.op_type for n in proto.graph.node]
['MatMul', 'Add', 'Relu']
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from hw import graph

OPSET = 20  # Gelu is an ONNX op from opset 20


class _Out:
    """The ONNX graph under construction."""

    def __init__(self):
        self.nodes, self.weights = [], []
        self.tensor_of: dict[str, str] = {}  # engine node name -> ONNX tensor of its output

    def weight(self, name: str, value) -> str:
        self.weights.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def node(self, op: str, inputs: list[str], name: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name


def _act(out: _Out, x: str, node) -> str:
    if node.act == "relu":
        return out.node("Relu", [x], f"{node.name}_relu")
    if node.act == "gelu":
        return out.node("Gelu", [x], f"{node.name}_gelu")
    return x


def _emit(out: _Out, node, x: str, rank: int) -> tuple[str, int]:
    """The ONNX nodes of one engine node on tensor ``x`` of ``rank``; its output and rank."""
    n = node.name
    if isinstance(node, graph.Conv):
        w = np.transpose(np.asarray(node.w), (3, 2, 0, 1))
        p, s = int(node.padding), int(node.stride)
        inputs = [x, out.weight(f"{n}.w", w), out.weight(f"{n}.b", node.b)]
        y = out.node("Conv", inputs, n, strides=[s, s], pads=[p] * 4, group=int(node.groups))
        return _act(out, y, node), 4
    if isinstance(node, graph.Dense):
        y = out.node("MatMul", [x, out.weight(f"{n}.w", node.w)], f"{n}_matmul")
        y = out.node("Add", [y, out.weight(f"{n}.b", node.b)], n)
        return _act(out, y, node), rank
    if isinstance(node, graph.Act):
        return out.node("Relu" if node.kind == "relu" else "Gelu", [x], n), rank
    if isinstance(node, graph.Pool):
        op = "MaxPool" if node.kind == "max" else "AveragePool"
        k, s = int(node.window), int(node.stride)
        return out.node(op, [x], n, kernel_shape=[k, k], strides=[s, s]), rank
    if isinstance(node, graph.Mean) and rank == 4:
        y = out.node("GlobalAveragePool", [x], f"{n}_pool")
        return out.node("Flatten", [y], n, axis=1), 2
    if isinstance(node, graph.Mean):
        axes = numpy_helper.from_array(np.array([1], np.int64))
        out.nodes.append(helper.make_node("Constant", [], [f"{n}.axes"], value=axes))
        return out.node("ReduceMean", [x, f"{n}.axes"], n, keepdims=0), rank - 1
    if isinstance(node, graph.Add):
        return out.node("Add", [x, out.tensor_of[node.other]], n), rank
    if isinstance(node, graph.LayerNorm):
        inputs = [x, out.weight(f"{n}.gamma", node.gamma), out.weight(f"{n}.beta", node.beta)]
        return out.node("LayerNormalization", inputs, n, axis=-1, epsilon=1e-5), rank
    raise ValueError(f"node {n!r}: {type(node).__name__} has no ONNX export")


def export_onnx(model, input_shape: tuple[int, ...], name: str = "npu_dse") -> onnx.ModelProto:
    """``model`` (``hw.graph`` nodes) on inputs of ``input_shape`` (the engine's layout, NHWC
    for images) as a checked ONNX model whose input ``x`` is NCHW for images."""
    graph.check_nodes(model)
    input_shape = tuple(int(d) for d in input_shape)
    shape = list(input_shape)
    if len(shape) == 4:
        shape = [shape[0], shape[3], shape[1], shape[2]]
    y = jax.eval_shape(
        lambda v: graph.forward_float(model, v), jax.ShapeDtypeStruct(input_shape, jnp.float32)
    ).shape
    y = (y[0], y[3], y[1], y[2]) if len(y) == 4 else y
    out, x, rank = _Out(), "x", len(shape)
    for node in model:
        x, rank = _emit(out, node, x, rank)
        out.tensor_of[node.name] = x
    proto = helper.make_model(
        helper.make_graph(
            out.nodes,
            name,
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
            [helper.make_tensor_value_info(x, TensorProto.FLOAT, list(y))],
            out.weights,
        ),
        opset_imports=[helper.make_opsetid("", OPSET)],
    )
    onnx.checker.check_model(proto)
    return proto
