"""What every node kind carries, and the small types its methods exchange.

A node kind is one frozen dataclass (a subclass of :class:`Node` with a ``name``) that holds
its float weights and implements five methods; nothing else in the package dispatches on the
node's type:

* ``apply_float(x, outputs)``: the fp32 forward pass (the host's arithmetic); ``outputs`` maps
  earlier nodes' names to their float outputs;
* ``lower(shape)``: its :class:`~hw.layers.Layer` list (the cost model's layers) on an input of
  ``shape``;
* ``widths(w, a, in_bits)``: the :class:`NodeWidths` it needs from the per-layer widths
  ``w`` and ``a`` (:class:`hw.planning.Widths`), ``in_bits`` being its input's width;
* ``quantize(x, in_qp, out_qp, calib)``: its integer parameters (a :mod:`hw.steps` step) from
  its float input ``x``, its input's and output's parameters and a :class:`Calibration`;
* ``execute(run, q, in_qp, step, outputs)``: its integer output from its input codes ``q`` on
  the interpreter's :class:`hw.interpreter.Runner`; ``outputs`` maps earlier nodes' names to
  ``(codes, QParams)``.

``on_codes`` marks a node that the integer engine applies to its input's codes (max pooling,
ReLU: they commute with the monotone quantizer), keeping its input's parameters as TFLite does.
"""

from __future__ import annotations

import dataclasses
from collections import abc
from typing import Any, NamedTuple

from hw.quant import QParams


class NodeWidths(NamedTuple):
    """The widths one node needs (see :func:`hw.planning.plan_widths`)."""

    weights: dict  # {node name: width}, attention {node name: {"q"|"k"|"v"|"o": width}}
    acts: dict  # {tensor key as act_qparams (plus NAME.probs): width} of what it quantizes
    layers: list  # (workload layer, weight width or None, activation width), workload order


@dataclasses.dataclass(frozen=True)
class Calibration:
    """What a node's ``quantize`` needs besides its input: parameters and planned widths."""

    act: abc.Callable[[str, Any], QParams]  # params of the tensor `key` given its float values
    w_bits: abc.Mapping  # NodeWidths.weights of the whole model
    a_bits: abc.Mapping  # NodeWidths.acts of the whole model


class Node:
    """Base of every node kind (see the module docstring for the methods it carries)."""

    on_codes = False

    def apply_float(self, x, outputs: dict):
        raise NotImplementedError

    def lower(self, shape: tuple[int, ...]) -> list:
        raise NotImplementedError

    def widths(self, w, a, in_bits: int) -> NodeWidths:
        raise NotImplementedError

    def quantize(self, x, in_qp: QParams, out_qp: QParams, calib: Calibration):
        raise NotImplementedError

    def execute(self, run, q, in_qp: QParams, step, outputs: dict):
        raise NotImplementedError
