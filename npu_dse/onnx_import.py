"""ONNX models as workloads: every node costed as GEMMs, vector work, data movement or host work.

:func:`import_onnx` reads a model with the ``onnx`` package (shapes from its shape inference,
weights never needed: a model whose initializers live in an absent external data file imports
from their declared shapes) and returns an :class:`OnnxImport`; :func:`read_onnx` is the
reader :func:`npu_dse.load_workload` dispatches ``.onnx`` files to. Layer names are the ONNX
node names (``OpType_<index>`` for unnamed nodes), made unique with a ``_2``, ``_3``... suffix.

How each op is costed (SCALE-Sim's GEMM lowering of :mod:`hw.layers`):

* GEMMs: ``Conv`` and ``QLinearConv``/``ConvInteger`` (strides, pads, dilations, groups;
  ``M = batch * output pixels``, ``K = taps * C / groups``, ``N = F / groups``, ``count =
  groups``), ``ConvTranspose`` (each input pixel scattered: ``M = batch * input pixels``,
  ``K = C / groups``, ``N = taps * F / groups``), ``Gemm``, ``MatMul`` and
  ``QLinearMatMul``/``MatMulInteger`` (kind ``dense`` when the right operand is a weight,
  else ``matmul`` with ``count`` = the broadcast batch). Biases are fused into the GEMM.
  Quantized ops give :attr:`OnnxImport.bits`, their layers' ``(w_bits, a_bits)``, from their
  tensor types.
* Vector work, ``vector_ops = ops per element * output elements`` (``onnx_ops.VECTOR_OPS``):
  elementwise arithmetic and activations, ``Softmax``, ``LayerNormalization``, the
  ``Div -> Erf -> Add -> Mul -> Mul`` pattern of exact GELU (one ``gelu`` layer), pooling
  (``window`` operations per output), ``GlobalAveragePool`` and ``ReduceMean`` (one per input
  element). ``BatchNormalization`` whose input is a Conv/Gemm output read by nothing else is
  folded into that GEMM's weights and bias, as inference compilers do; otherwise it is a
  2-op affine per element.
* Free (``onnx_ops.FREE_OPS``): reshapes, transposes, concatenation, splits and slices are folded
  into the addressing of the DMA that moves the tensor anyway; constants and shape
  arithmetic are resolved at compile time; ``Gather`` of a constant table is a lookup.
* Anything else runs on the host (layer kind ``host``, one op per output element plus the
  round trip over the host link), and :meth:`OnnxImport.host_summary` is one line naming the
  op types that did.

>>> import onnx
>>> from onnx import TensorProto, helper
>>> node = helper.make_node("MatMul", ["x", "w"], ["y"], name="proj")
>>> graph = helper.make_graph([node], "g",
...     [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 128, 256])],
...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
...     [helper.make_tensor("w", TensorProto.FLOAT, [256, 512], [0.0] * (256 * 512))])
>>> imp = import_from_proto(helper.make_model(graph), "m.onnx", batch=2)
>>> lay = imp.layers[0]
>>> (lay.name, lay.kind, lay.gemm_m, lay.gemm_k, lay.gemm_n)
('proj', 'dense', 256, 256, 512)
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections import Counter
from pathlib import Path

import onnx
from onnx import shape_inference

from hw import layers
from npu_dse import onnx_ops

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class OnnxImport:
    """An imported model: its layers, quantized layers' widths and what runs on the host."""

    layers: tuple[layers.Layer, ...]
    bits: dict  # {layer name: (w_bits, a_bits)} of QLinear*/ *Integer ops, from tensor types
    host_ops: dict  # {ONNX op type: nodes run on the host}

    def host_summary(self) -> str:
        """One line naming the op types that fall back to the host, or ``""``."""
        if not self.host_ops:
            return ""
        total = sum(self.host_ops.values())
        ops = ", ".join(f"{op} x{n}" for op, n in sorted(self.host_ops.items()))
        return f"host fallback: {total} ONNX node(s) run on the host ({ops})"


def load_model(path: Path) -> onnx.ModelProto:
    """The model without external data; one-line errors for files that are not ONNX."""
    data = path.read_bytes()
    if not data:
        raise ValueError(f"{path}: empty file; expected an ONNX model")
    try:
        model = onnx.load_model_from_string(data)
    except Exception as err:  # protobuf raises DecodeError or RuntimeError by version
        raise ValueError(f"{path}: not an ONNX model ({type(err).__name__})") from None
    if not model.ir_version or not model.graph.node:
        raise ValueError(f"{path}: not an ONNX model (no graph nodes)")
    return model


def set_batch(model: onnx.ModelProto, where: str, batch: int | None) -> None:
    """Give symbolic input dimensions the value ``batch`` (the ``--batch`` flag)."""
    weights = {t.name for t in model.graph.initializer}
    for value in model.graph.input:
        if value.name in weights:
            continue
        for dim in value.type.tensor_type.shape.dim:
            if dim.HasField("dim_value"):
                continue
            label = dim.dim_param or "?"
            if batch is None:
                raise ValueError(
                    f"{where}: input {value.name!r} has the symbolic dimension {label!r}; "
                    "give its value with --batch (batch= in Python)"
                )
            dim.Clear()
            dim.dim_value = batch
    for value in model.graph.output:
        value.type.tensor_type.ClearField("shape")
    del model.graph.value_info[:]


def _shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    """Known static shapes of every tensor, by name."""
    shapes = {t.name: tuple(int(d) for d in t.dims) for t in model.graph.initializer}
    graph = model.graph
    for value in [*graph.input, *graph.value_info, *graph.output]:
        tt = value.type.tensor_type
        if tt.HasField("shape") and all(d.HasField("dim_value") for d in tt.shape.dim):
            shapes[value.name] = tuple(d.dim_value for d in tt.shape.dim)
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    shapes[node.output[0]] = tuple(attr.t.dims)
    return shapes


def _elem_types(model: onnx.ModelProto) -> dict[str, int]:
    graph = model.graph
    out = {t.name: t.data_type for t in graph.initializer}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        out[value.name] = value.type.tensor_type.elem_type
    return out


def unique_names(nodes) -> list[str]:
    seen: Counter = Counter()
    names = []
    for i, node in enumerate(nodes):
        base = node.name or f"{node.op_type}_{i}"
        seen[base] += 1
        names.append(base if seen[base] == 1 else f"{base}_{seen[base]}")
    return names


class Graph:
    """The model's tensors and who reads them, for the op handlers."""

    def __init__(self, model: onnx.ModelProto, where: str):
        self.where = where
        self.gelu: dict[str, str] = {}  # last node's output -> x, of exact-GELU patterns
        self.shapes = _shapes(model)
        self.types = _elem_types(model)
        graph = model.graph
        self.constants = {t.name for t in graph.initializer}
        self.constants |= {n.output[0] for n in graph.node if n.op_type == "Constant"}
        self.producer = {out: node for node in graph.node for out in node.output}
        self.readers: dict[str, list] = {}
        for node in graph.node:
            for name in node.input:
                self.readers.setdefault(name, []).append(node)
        for value in graph.output:
            self.readers.setdefault(value.name, []).append(None)

    def shape(self, node, tensor: str) -> tuple[int, ...]:
        if tensor not in self.shapes:
            raise ValueError(
                f"{self.where} node {node.name or node.op_type!r} ({node.op_type}): the shape of "
                f"tensor {tensor!r} is unknown after shape inference"
            )
        return self.shapes[tensor]

    def elems(self, node, tensor: str) -> int:
        return math.prod(self.shape(node, tensor))

    def sole_reader(self, tensor: str):
        readers = self.readers.get(tensor, [])
        return readers[0] if len(readers) == 1 else None


def import_from_proto(
    model: onnx.ModelProto, where: str = "model", batch: int | None = None
) -> OnnxImport:
    """Cost an in-memory ``ModelProto`` (see the module docstring); ``where`` labels errors."""
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int) or batch < 1):
        raise ValueError(f"--batch must be a positive integer, got {batch!r}")
    model = onnx.ModelProto.FromString(model.SerializeToString())
    set_batch(model, where, batch)
    try:
        model = shape_inference.infer_shapes(model, data_prop=True)
    except Exception as err:  # onnx raises InferenceError or ValidationError
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{where}: ONNX shape inference failed ({reason})") from None
    g = Graph(model, where)
    skip = onnx_ops.gelu_groups(g, model.graph.node)
    skip |= onnx_ops.folded_batchnorms(g, model.graph.node)
    out: list[layers.Layer] = []
    bits: dict = {}
    host: Counter = Counter()
    for node, name in zip(model.graph.node, unique_names(model.graph.node), strict=True):
        if node.output[0] in skip:
            continue
        lays, node_bits, on_host = onnx_ops.cost_node(g, node, name)
        out += lays
        if node_bits is not None:
            bits[name] = node_bits
        if on_host:
            host[node.op_type] += 1
    if not out:
        raise ValueError(f"{where}: the model has no costed work (only free ops)")
    return OnnxImport(tuple(out), bits, dict(host))


def import_onnx(path: str | Path, batch: int | None = None) -> OnnxImport:
    """Import an ONNX file (see the module docstring); bad files are one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"ONNX file not found: {path}")
    return import_from_proto(load_model(path), str(path), batch)


def read_onnx(path: str | Path, batch: int | None = None) -> list[layers.Layer]:
    """The layers of an ONNX file; logs the host-fallback summary line when there is one."""
    imported = import_onnx(path, batch)
    if imported.host_ops:
        logger.warning("%s: %s", path, imported.host_summary())
    return list(imported.layers)
