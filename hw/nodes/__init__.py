"""The node kinds of :mod:`hw.graph`, one class each, carrying everything done with them.

A new node kind is one frozen dataclass subclass of :class:`Node` in this package, with
``apply_float``, ``lower``, ``widths``, ``quantize`` and ``execute`` (see
:mod:`hw.nodes.base`), exported here and in :mod:`hw.graph`; its integer parameters are a
step type of :mod:`hw.steps` (or an existing one).
"""

from hw.nodes.attention import Attention, causal_mask, heads_merge, heads_split
from hw.nodes.base import Calibration, Node, NodeWidths
from hw.nodes.elementwise import Act, Add, LayerNorm, Mean, Pool
from hw.nodes.gemm import ACTS, Conv, Dense, fused_act

__all__ = [
    "ACTS",
    "Act",
    "Add",
    "Attention",
    "Calibration",
    "Conv",
    "Dense",
    "LayerNorm",
    "Mean",
    "Node",
    "NodeWidths",
    "Pool",
    "causal_mask",
    "fused_act",
    "heads_merge",
    "heads_split",
]
