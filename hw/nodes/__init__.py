"""The node kinds of :mod:`hw.graph`, one class each, carrying everything done with them.

A new node kind is one frozen dataclass subclass of :class:`Node` with ``apply_float``,
``lower``, ``widths``, ``quantize`` and ``execute`` (see :mod:`hw.nodes.base`); nothing else
dispatches on node types. A vector op subclasses :class:`VectorNode` and gives ``op_kind``
and ``vector_fn`` (``lower``, ``widths``, ``quantize`` and ``execute`` follow); a GEMM
subclasses :class:`GemmNode`. Its integer parameters are a step of :mod:`hw.steps`. Kinds
of the package live here and are re-exported by :mod:`hw.graph`.
"""

from hw.nodes.attention import Attention, causal_mask, heads_merge, heads_split
from hw.nodes.base import Calibration, Node, NodeWidths
from hw.nodes.elementwise import Act, Add, LayerNorm, Mean, Pool, VectorNode
from hw.nodes.gemm import ACTS, Conv, Dense, GemmNode, fused_act

__all__ = [
    "ACTS",
    "Act",
    "Add",
    "Attention",
    "Calibration",
    "Conv",
    "Dense",
    "GemmNode",
    "LayerNorm",
    "Mean",
    "Node",
    "NodeWidths",
    "Pool",
    "VectorNode",
    "causal_mask",
    "fused_act",
    "heads_merge",
    "heads_split",
]
