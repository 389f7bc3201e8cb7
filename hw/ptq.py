"""Post-training quantization of a :mod:`hw.graph` model into a :class:`QuantizedModel`.

Weights are symmetric per output channel, activations asymmetric per tensor, calibrated on a
batch (or taken from quantization-aware training); each node builds its own integer
parameters (``Node.quantize``, a :mod:`hw.steps` step) at the widths :mod:`hw.planning` gives.
"""

from __future__ import annotations

import dataclasses
from collections import abc

import jax.numpy as jnp
import numpy as np

from hw import graph, quant
from hw.nodes import Calibration
from hw.planning import Bits, plan_widths
from hw.quant import QParams
from hw.x64 import x64


@dataclasses.dataclass(frozen=True, eq=False)
class QuantizedModel:
    """A float model plus the integer parameters of every node (``steps[name]``, a step of
    :mod:`hw.steps`).

    ``w_bits`` and ``a_bits`` are the widths the multipliers need: the model's widths, or for
    per-layer widths the widest weight width of a GEMM layer and the widest activation width
    (as ``dse.design.hardware_bits``). ``layer_w_bits`` and ``layer_a_bits`` (shape=(L,),
    aligned with :func:`hw.graph.workload`'s layers) are the per-layer widths the cost report
    uses; ``None`` for a model quantized at one width. ``compiled`` holds the jitted forward
    passes :func:`hw.interpreter.compile_model` built for it, keyed by their static settings.
    """

    model: tuple
    in_qp: QParams
    steps: dict
    w_bits: int
    a_bits: int
    layer_w_bits: tuple | None = None
    layer_a_bits: tuple | None = None
    compiled: dict = dataclasses.field(default_factory=dict, init=False, repr=False)


def _act_qp(x, bits: int, method: str) -> QParams:
    return quant.calibrate(np.asarray(x), bits, symmetric=False, signed=True, method=method)


def _check_given(given: dict, acts: dict, a_bits: Bits) -> None:
    for key, qp in given.items():
        want = acts.get(key, qp.bits if isinstance(a_bits, abc.Mapping) else a_bits)
        if qp.bits != want:
            raise ValueError(f"act_qparams[{key!r}] has {qp.bits} bits, the model {want}")


@x64
def quantize_model(
    model,
    calib_x,
    *,
    w_bits: Bits,
    a_bits: Bits,
    method: str = "minmax",
    act_qparams: dict | None = None,
) -> QuantizedModel:
    """Post-training quantization of ``model`` calibrated on the batch ``calib_x``.

    ``w_bits`` and ``a_bits`` are one width for the whole model or a mapping from the layer
    names of :func:`hw.graph.workload` (the cost model's layers) to widths, e.g.
    ``dict(zip(workload.names, bits))``. Per layer, the widths that matter are:

    * a conv or dense layer ``NAME``: its weights at ``w_bits[NAME]``, its output at
      ``a_bits[NAME]`` (a fused ReLU clips those codes; a fused GELU's output is
      ``a_bits[NAME_gelu]``);
    * attention ``NAME``: the projections ``NAME_q``, ``NAME_k``, ``NAME_v``, ``NAME_o`` like
      dense layers (``NAME_o``'s output is the node's), the probabilities at
      ``a_bits[NAME_softmax]``, the context at ``a_bits[NAME_av]``;
    * a layernorm, GELU, add, average pool or mean: its output at ``a_bits[NAME]``;
    * the model's input: ``a_bits["input"]``, else the first layer's width.

    Other widths (ReLU and max pooling act on codes; ``NAME_qk``'s output is not quantized;
    weights of vector layers) only enter the cost report, so a mapping may leave them out; a
    missing width that matters raises ``ValueError`` unless the mapping has a default (a
    ``collections.defaultdict``). Equal widths everywhere give the same model, bit for bit, as
    the plain int.

    ``act_qparams`` replaces calibration where a trained model knows its activation ranges
    (quantization-aware training): keys ``"input"``, a node's name (its output), ``NAME.pre``
    (the input of a GELU fused into a GEMM node) and ``NAME.q``, ``.k``, ``.v``, ``.ctx``
    (attention's projections and context); values are ``QParams`` of the tensor's width (see
    :func:`hw.planning.activation_widths`).
    """
    x = jnp.asarray(calib_x, jnp.float32)
    wl = graph.workload(model, x.shape)
    plan = plan_widths(model, wl.names, w_bits, a_bits)
    given = dict(act_qparams or {})
    _check_given(given, plan.acts, a_bits)

    def act(key: str, values):
        return given[key] if key in given else _act_qp(values, plan.acts[key], method)

    calib = Calibration(act=act, w_bits=plan.weights, a_bits=plan.acts)
    _, outs = graph.forward_float(model, x, return_all=True)
    in_qp = act("input", x)
    steps, prev_qp, prev_x = {}, in_qp, x
    for node in model:
        # max pooling and ReLU act on the integer codes, keeping their input's parameters
        out_qp = prev_qp if node.on_codes else act(node.name, outs[node.name])
        steps[node.name] = node.quantize(prev_x, prev_qp, out_qp, calib)
        prev_qp, prev_x = out_qp, outs[node.name]
    if not isinstance(w_bits, abc.Mapping) and not isinstance(a_bits, abc.Mapping):
        return QuantizedModel(tuple(model), in_qp, steps, int(w_bits), int(a_bits))
    # the multipliers' widths, as dse.design.hardware_bits: the widest of any GEMM layer
    layer_w, layer_a = plan.layer_w_bits, plan.layer_a_bits
    gemm = np.asarray(wl.gemm_count) > 0
    widest_w = max(np.asarray(layer_w)[gemm], default=max(layer_w))
    return QuantizedModel(tuple(model), in_qp, steps, int(widest_w), max(layer_a), layer_w, layer_a)
