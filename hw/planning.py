"""Width planning: which bit width each tensor and workload layer of a model gets.

Widths are one int for the whole model or a mapping from the layer names of
:func:`hw.graph.workload` to ints; each node says which of its layers' widths it needs
(``Node.widths``), and the plan gathers them in workload order, with the widths the cost
report uses for layers whose width does not change the quantized model.
"""

from __future__ import annotations

import collections
import dataclasses
from collections import abc

import numpy as np

from hw import graph

Bits = int | abc.Mapping[str, int]
"""A bit width for every layer, or one per workload layer name (see
:func:`hw.ptq.quantize_model`)."""


def check_bits(where: str, bits) -> int:
    """``bits`` as an int, or ``ValueError`` naming ``where`` unless it is an int in 2..16."""
    if isinstance(bits, bool) or not isinstance(bits, int | np.integer) or not 2 <= bits <= 16:
        raise ValueError(f"{where} must be an integer in 2..16, got {bits!r}")
    return int(bits)


class Widths:
    """Looks up a layer's width in an int or a per-layer mapping (``ValueError`` if missing)."""

    def __init__(self, field: str, bits: Bits, names: tuple[str, ...]):
        self.field, self.bits, self.used = field, bits, set()
        if not isinstance(bits, abc.Mapping):
            check_bits(field, bits)
            return
        for key, b in dict(bits).items():
            check_bits(f"{field}[{key!r}]", b)
            if key not in names:
                raise ValueError(
                    f"{field}[{key!r}]: no layer {key!r} in the model; layers: {names}"
                )

    def __call__(self, layer: str) -> int:
        """The width of a layer whose width matters (recorded in ``used``)."""
        self.used.add(layer)
        if not isinstance(self.bits, abc.Mapping):
            return int(self.bits)
        try:
            return check_bits(f"{self.field}[{layer!r}]", self.bits[layer])
        except KeyError:
            raise ValueError(f"{self.field} has no width for layer {layer!r}") from None

    def get(self, layer: str, default: int) -> int:
        """The width given for ``layer``, else ``default`` (for layers whose width is unused)."""
        if not isinstance(self.bits, abc.Mapping):
            return int(self.bits)
        if layer not in self.bits:
            return int(default)
        return check_bits(f"{self.field}[{layer!r}]", self.bits[layer])


@dataclasses.dataclass(frozen=True)
class WidthPlan:
    """The widths of a whole model (see ``hw.nodes.NodeWidths``)."""

    weights: dict  # {node name: width}, attention {node name: {"q"|"k"|"v"|"o": width}}
    acts: dict  # {tensor key as act_qparams (plus NAME.probs): width}
    layer_w_bits: tuple  # shape=(L,) per workload layer; no weights: the widest GEMM width
    layer_a_bits: tuple  # shape=(L,) per workload layer
    w_used: frozenset  # the layers whose w_bits change the quantized model
    a_used: frozenset  # the layers whose a_bits change the quantized model


def plan_widths(model, names: tuple[str, ...], w_bits: Bits, a_bits: Bits) -> WidthPlan:
    """The :class:`WidthPlan` of ``model`` whose workload layers are ``names``."""
    w, a = Widths("w_bits", w_bits, names), Widths("a_bits", a_bits, (*names, "input"))
    per_layer = isinstance(a_bits, abc.Mapping) and "input" not in a_bits
    weights, acts, lays = {}, {"input": a(names[0] if per_layer else "input")}, []
    data_bits = acts["input"]  # the width of the tensor flowing into the next node
    for node in model:
        nw, na, nl = node.widths(w, a, data_bits)
        weights, acts, lays = weights | nw, acts | na, lays + nl
        data_bits = na.get(node.name, data_bits)
    if tuple(name for name, _, _ in lays) != tuple(names):
        raise ValueError(f"the model's layers {names} are not those its widths were planned for")
    gemm = [b for _, b, _ in lays if b is not None]
    widest = max(gemm, default=w.get(names[0], 8))
    layer_w = tuple(w.get(name, widest) if b is None else b for name, b, _ in lays)
    layer_a = tuple(b for _, _, b in lays)
    return WidthPlan(weights, acts, layer_w, layer_a, frozenset(w.used), frozenset(a.used))


def activation_widths(model, input_shape, a_bits: Bits) -> dict[str, int]:
    """The width of every tensor :func:`hw.ptq.quantize_model` quantizes for ``a_bits``, keyed
    as its ``act_qparams`` (plus ``NAME.probs``, attention's probabilities).

    >>> import numpy as np
    >>> model = (graph.Dense("fc", w=np.eye(4, 3), b=np.zeros(3), act="relu"),)
    >>> activation_widths(model, (2, 4), {"fc": 4, "fc_relu": 8})
    {'input': 4, 'fc': 4}
    """
    names = graph.workload(model, tuple(input_shape)).names
    return plan_widths(model, names, 8, a_bits).acts


def layers_with_widths(model, input_shape) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The workload layers whose ``w_bits``, and those whose ``a_bits``, change the model that
    :func:`hw.ptq.quantize_model` builds from per-layer widths (in workload order).

    >>> import numpy as np
    >>> model = (graph.Dense("fc", w=np.eye(4, 3), b=np.zeros(3), act="relu"),)
    >>> layers_with_widths(model, (2, 4))
    (('fc',), ('fc',))
    """
    names = graph.workload(model, tuple(input_shape)).names
    w_bits, a_bits = (collections.defaultdict(lambda: 8) for _ in range(2))
    plan = plan_widths(model, names, w_bits, a_bits)
    return (
        tuple(n for n in names if n in plan.w_used),
        tuple(n for n in names if n in plan.a_used),
    )
