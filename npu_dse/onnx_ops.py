"""How each ONNX op is costed: one handler per op family (see :mod:`npu_dse.onnx_import`).

A handler takes the import's tensor table ``g`` (shapes, constants, producers and readers),
the node and its layer name, and returns ``(layers, (w_bits, a_bits) or None, on_host)``.
"""

from __future__ import annotations

import math

import onnx
from onnx import helper

from hw import layers

HOST_KIND = "host"
"""Layer kind of ops the NPU cannot run (``hw.schedule`` puts them on the host)."""

HOST_KIND = "host"
"""Layer kind of ops the NPU cannot run (``hw.schedule`` puts them on the host)."""

# (layer kind, vector-unit operations per output element), counted as hw.layers counts them.
VECTOR_OPS = {
    "Add": ("add", 1),
    "Sub": ("add", 1),
    "Mul": ("add", 1),
    "Div": ("add", 1),
    "Relu": ("relu", 1),  # max(x, 0)
    "Clip": ("relu", 2),  # max, min
    "Sigmoid": ("gelu", 4),  # negate, exp, add 1, reciprocal
    "Tanh": ("gelu", 5),  # (exp(2x) - 1) / (exp(2x) + 1): double, exp, subtract, add, divide
    "HardSigmoid": ("gelu", 4),  # multiply, add, max, min
    "HardSwish": ("gelu", 5),  # HardSigmoid's 4, then multiply by x
    "Gelu": ("gelu", layers.VECTOR_OPS_PER_ELEM["gelu"]),
    "Softmax": ("softmax", layers.VECTOR_OPS_PER_ELEM["softmax"]),
    "LayerNormalization": ("layernorm", layers.VECTOR_OPS_PER_ELEM["layernorm"]),
    "BatchNormalization": ("add", 2),  # multiply, add (when not folded)
}

FREE_OPS = frozenset(
    {
        "Reshape",
        "Flatten",
        "Transpose",
        "Concat",
        "Split",
        "Slice",
        "Squeeze",
        "Unsqueeze",
        "Identity",
        "Dropout",
        "Constant",
        "Shape",
    }
)
"""Data movement a compiler folds into addressing, and compile-time constants."""

_CONV = {
    "Conv": (0, 1),
    "ConvInteger": (0, 1),
    "QLinearConv": (0, 3),
    "ConvTranspose": (0, 1),
}  # (input, weight) index
_MATMUL = {"MatMul": (0, 1), "MatMulInteger": (0, 1), "QLinearMatMul": (0, 3), "Gemm": (0, 1)}
_POOL = ("MaxPool", "AveragePool", "GlobalAveragePool", "ReduceMean")
_INT_BITS = {onnx.TensorProto.INT8: 8, onnx.TensorProto.UINT8: 8, onnx.TensorProto.INT4: 4}
_INT_BITS |= {onnx.TensorProto.UINT4: 4, onnx.TensorProto.INT16: 16, onnx.TensorProto.UINT16: 16}


def _attr(node, name: str, default):
    for attr in node.attribute:
        if attr.name == name:
            return helper.get_attribute_value(attr)
    return default


def _inputs(node) -> list[str]:
    return [t for t in node.input if t]


def _gemm(name, kind, *, m, k, n, count, ifmap, filt, ofmap) -> layers.Layer:
    return layers.Layer(
        name=name,
        kind=kind,
        gemm_m=m,
        gemm_k=k,
        gemm_n=n,
        gemm_count=count,
        ifmap_elems=ifmap,
        filter_elems=filt,
        ofmap_elems=ofmap,
    )


def _bits(g, node, x: str, w: str):
    """``(w_bits, a_bits)`` of a quantized op from its operands' integer types."""
    if node.op_type not in ("QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger"):
        return None
    return _INT_BITS.get(g.types.get(w), 8), _INT_BITS.get(g.types.get(x), 8)


def _conv(g, node, name):
    xi, wi = _CONV[node.op_type]
    x, w = g.shape(node, node.input[xi]), g.shape(node, node.input[wi])
    y = g.shape(node, node.output[0])
    groups = int(_attr(node, "group", 1))
    batch, chans, taps = x[0], x[1], math.prod(w[2:])
    if node.op_type == "ConvTranspose":  # w: (C, F / groups, taps...); scatter per input pixel
        m, k, n = batch * math.prod(x[2:]), chans // groups, w[1] * taps
    else:  # w: (F, C / groups, taps...)
        m, k, n = batch * math.prod(y[2:]), taps * chans // groups, w[0] // groups
    depthwise = groups == chans == y[1] and groups > 1
    lay = _gemm(
        name,
        "depthwise" if depthwise else "conv",
        m=m,
        k=k,
        n=n,
        count=groups,
        ifmap=math.prod(x),
        filt=math.prod(w),
        ofmap=math.prod(y),
    )
    return [lay], _bits(g, node, node.input[xi], node.input[wi]), False


def _matmul(g, node, name):
    ai, bi = _MATMUL[node.op_type]
    a, b = g.shape(node, node.input[ai]), g.shape(node, node.input[bi])
    y = g.shape(node, node.output[0])
    weight = node.input[bi] in g.constants
    if node.op_type == "Gemm":
        m, k = a[::-1] if _attr(node, "transA", 0) else a
        n = b[0] if _attr(node, "transB", 0) else b[1]
        count = 1
    else:
        a2 = (1, *a) if len(a) == 1 else a
        b2 = (*b, 1) if len(b) == 1 else b
        k, n = a2[-1], b2[-1]
        if len(b2) == 2:  # one right operand for every row of a
            m, count = math.prod(a2[:-1]), 1
        else:  # batched: one GEMM per broadcast batch index (attention heads)
            m, count = a2[-2], math.prod(y[:-2])
    lay = _gemm(
        name,
        "dense" if weight else "matmul",
        m=m,
        k=k,
        n=n,
        count=count,
        ifmap=math.prod(a),
        filt=math.prod(b),
        ofmap=math.prod(y),
    )
    return [lay], _bits(g, node, node.input[ai], node.input[bi]), False


def _activations_in(g, node) -> int:
    """Elements of the inputs that are not constants (what the op reads from memory)."""
    return sum(g.elems(node, t) for t in _inputs(node) if t not in g.constants)


def _vector(g, node, name, kind: str, per_elem: int, x: str | None = None):
    ifmap = g.elems(node, x) if x is not None else _activations_in(g, node)
    if ifmap == 0:  # every input a constant: folded at compile time
        return [], None, False
    out = g.elems(node, node.output[0])
    lay = layers.Layer(
        name=name, kind=kind, ifmap_elems=ifmap, ofmap_elems=out, vector_ops=per_elem * out
    )
    return [lay], None, False


def _pool(g, node, name):
    x = g.elems(node, node.input[0])
    out = g.elems(node, node.output[0])
    if node.op_type in ("MaxPool", "AveragePool"):
        ops = math.prod(_attr(node, "kernel_shape", [1])) * out
    else:  # GlobalAveragePool, ReduceMean: one add per input element
        ops = x
    return [layers.Layer(name, "pool", ifmap_elems=x, ofmap_elems=out, vector_ops=ops)], None, False


def _host(g, node, name):
    out = sum(g.elems(node, t) for t in node.output if t)
    lay = layers.Layer(
        name=name,
        kind=HOST_KIND,
        ifmap_elems=_activations_in(g, node),
        ofmap_elems=out,
        vector_ops=max(out, 1),
    )
    return [lay], None, True


def cost_node(g, node, name: str):
    """``(layers, (w_bits, a_bits) or None, on_host)`` of one node."""
    op = node.op_type
    if node.domain not in ("", "ai.onnx"):
        return _host(g, node, name)
    if node.output[0] in g.gelu:
        return _vector(g, node, name, "gelu", VECTOR_OPS["Gelu"][1], x=g.gelu[node.output[0]])
    if op in _CONV:
        return _conv(g, node, name)
    if op in _MATMUL:
        return _matmul(g, node, name)
    if op in VECTOR_OPS:
        return _vector(g, node, name, *VECTOR_OPS[op])
    if op in _POOL:
        return _pool(g, node, name)
    if op in FREE_OPS:
        return [], None, False
    if op == "Gather":
        source = g.producer.get(node.input[0])
        if node.input[0] in g.constants or (source is not None and source.op_type == "Shape"):
            return [], None, False
    return _host(g, node, name)


def _other(g, node) -> str | None:
    """The one input of ``node`` that is not a constant, or None."""
    live = [t for t in _inputs(node) if t not in g.constants]
    return live[0] if len(live) == 1 else None


def _gelu_group(g, erf) -> tuple[list, str] | None:
    """The nodes of ``0.5 * x * (1 + erf(x / sqrt 2))`` around ``erf`` and ``x``, or None."""
    scale = g.producer.get(erf.input[0])
    if scale is None or scale.op_type not in ("Div", "Mul"):
        return None
    x = _other(g, scale)
    add = g.sole_reader(erf.output[0])
    if x is None or add is None or add.op_type != "Add" or _other(g, add) is None:
        return None
    mul = g.sole_reader(add.output[0])
    if mul is None or mul.op_type != "Mul":
        return None
    rest = [t for t in mul.input if t != add.output[0]]
    if rest == [x]:
        half = g.sole_reader(mul.output[0])
        tail = [half] if half is not None and half.op_type == "Mul" and _other(g, half) else []
        return [scale, erf, add, mul, *tail], x
    half = g.producer.get(rest[0]) if len(rest) == 1 else None
    if half is not None and half.op_type == "Mul" and _other(g, half) == x:
        return [half, scale, erf, add, mul], x
    return None


def gelu_groups(g, nodes) -> set[str]:
    """Find exact-GELU patterns: record each one's last node in ``g.gelu`` (output -> x) and
    return the outputs of the group's other nodes, which cost nothing of their own."""
    order = {id(n): i for i, n in enumerate(nodes)}
    g.gelu = {}
    skip: set[str] = set()
    for erf in nodes:
        found = _gelu_group(g, erf) if erf.op_type == "Erf" else None
        if found is None:
            continue
        group, x = found
        last = max(group, key=lambda n: order[id(n)])
        g.gelu[last.output[0]] = x
        skip |= {n.output[0] for n in group if n is not last}
    return skip


def folded_batchnorms(g, nodes) -> set[str]:
    """Outputs of BatchNormalization nodes folded into the Conv/Gemm before them: legal when
    that GEMM's output is read by the BatchNormalization alone."""
    out = set()
    for node in nodes:
        if node.op_type != "BatchNormalization":
            continue
        source = g.producer.get(node.input[0])
        if source is None or source.op_type not in ("Conv", "ConvTranspose", "Gemm"):
            continue
        if g.sole_reader(source.output[0]) is node:
            out.add(node.output[0])
    return out
