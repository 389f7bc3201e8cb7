"""A small CNN for the 8x8 digits, and the quantization-aware layers both models share.

Quantization-aware training (QAT) inserts ``hw.quant.fake_quant`` where ``hw.engine`` will
quantize, so that training sees the rounding the NPU will do:

* weights: symmetric, per output channel, ``w_bits``, calibrated on the current weights at
  every step (min-max, as ``hw.engine.quantize_model`` does);
* activations: asymmetric per tensor, ``a_bits``, on every node's output (and the model's
  input). Ranges are running min/max kept in ``nnx.BatchStat`` state: in training mode each
  batch moves them by an exponential moving average (``QuantSpec.momentum``); in evaluation
  mode (``model.eval()``) they are frozen. Gradients pass straight through (STE).

Which layers quantize, and to how many bits, is a :data:`QAT` setting: ``None`` (float), one
:class:`QuantSpec` or ``(w_bits, a_bits)`` for every layer, or a dict from layer name (the
``hw.graph`` node names of ``to_graph()``) to a spec, with ``"default"`` for the others.
:func:`set_qat` switches fake quantization on and off without changing the state, so a model
can be trained in float and then fine-tuned with QAT.

The CNN: conv3x3 + ReLU (x2), 2x2 max pool, dense + ReLU, dense to the classes; its
``to_graph()`` is the same network as ``hw.graph`` nodes.

>>> import numpy as np
>>> from flax import nnx
>>> from hw import graph
>>> model = CNN(rngs=nnx.Rngs(0))
>>> x = np.zeros((2, 8, 8, 1), np.float32)
>>> bool(np.allclose(model(x), graph.forward_float(model.to_graph(), x), atol=1e-5))
True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from hw import graph, quant, vector


@dataclasses.dataclass(frozen=True)
class QuantSpec:
    """Fake quantization of one layer; ``None`` bits leave that operand in float."""

    w_bits: int | None = 8  # weights: symmetric per output channel
    a_bits: int | None = 8  # output activations: asymmetric per tensor
    momentum: float = 0.9  # EMA of the activations' running min/max, per training step


QAT = None | QuantSpec | tuple | Mapping
"""A model's QAT setting: ``None``, a spec or ``(w_bits, a_bits)`` for all layers, or a dict
from layer name (or ``"default"``) to a spec, a tuple or ``None``."""


def layer_spec(qat: QAT, name: str) -> QuantSpec | None:
    """The spec of layer ``name`` under the setting ``qat``."""
    if isinstance(qat, Mapping):
        qat = qat.get(name, qat.get("default"))
    if qat is None or isinstance(qat, QuantSpec):
        return qat
    if isinstance(qat, tuple) and len(qat) == 2:
        return QuantSpec(*qat)
    raise ValueError(f"QAT setting of layer {name!r} must be a QuantSpec, a pair or None: {qat!r}")


def set_qat(module: nnx.Module, enabled: bool) -> None:
    """Switch fake quantization on or off in every layer of ``module`` (state unchanged)."""
    module.set_attributes(qat=bool(enabled), raise_if_not_found=False)


def fake_quant_weight(w, bits: int):
    """Symmetric per-output-channel (last axis) fake quantization of a weight tensor."""
    axis = w.ndim - 1
    qp = quant.calibrate(jax.lax.stop_gradient(w), bits, symmetric=True, per_channel_axis=axis)
    return quant.fake_quant(w, qp)


def _float32(key, shape, init=None):
    init = init or nnx.initializers.lecun_normal()
    return init(key, shape, jnp.float32)


class ActQuant(nnx.Module):
    """Asymmetric per-tensor fake quantization with running min/max ranges.

    Training mode: ``[lo, hi]`` starts at the first batch's ``[min, max]``, then moves by
    ``lo <- m lo + (1 - m) min(x)`` (same for ``hi``) at every call. Evaluation mode
    (``use_running_average``, set by ``model.eval()``): the range is frozen; a quantizer that
    has seen no training batch uses the batch's own min/max.
    """

    def __init__(self, spec: QuantSpec | None):
        self.bits = None if spec is None else spec.a_bits
        self.momentum = 0.9 if spec is None else float(spec.momentum)
        self.lo = nnx.BatchStat(jnp.zeros((), jnp.float32))
        self.hi = nnx.BatchStat(jnp.zeros((), jnp.float32))
        self.seen = nnx.BatchStat(jnp.zeros((), jnp.bool_))
        self.qat = False
        self.use_running_average = False

    def __call__(self, x):
        if not self.qat or self.bits is None:
            return x
        x_sg = jax.lax.stop_gradient(x)
        seen, m = self.seen[...], self.momentum
        lo = jnp.where(seen, self.lo[...], x_sg.min())
        hi = jnp.where(seen, self.hi[...], x_sg.max())
        if not self.use_running_average:
            lo = m * lo + (1 - m) * x_sg.min()
            hi = m * hi + (1 - m) * x_sg.max()
            self.lo[...], self.hi[...] = lo, hi
            self.seen[...] = jnp.ones((), jnp.bool_)
        return quant.fake_quant(x, self.qparams(lo, hi))

    def qparams(self, lo=None, hi=None) -> quant.QParams:
        """QParams of the range ``[lo, hi]`` (default: the running range); ``calibrate`` of
        the two bounds is min-max calibration, as ``hw.engine`` does on data."""
        lo = self.lo[...] if lo is None else lo
        hi = self.hi[...] if hi is None else hi
        return quant.calibrate(jnp.stack([lo, hi]), self.bits, symmetric=False, signed=True)


def trained_qparams(pairs) -> dict[str, quant.QParams]:
    """``{engine key: QParams}`` of the fake quantizers that have a width and have seen
    training data (see ``hw.engine.quantize_model``'s ``act_qparams``)."""
    return {
        key: aq.qparams()
        for key, aq in pairs
        if aq is not None and aq.bits is not None and bool(aq.seen[...])
    }


def _act(x, act: str):
    if act == "relu":
        return jax.nn.relu(x)
    if act == "gelu":
        return vector.gelu(x, precision="fp32")
    return x


class QDense(nnx.Module):
    """``act(x @ w + b)`` on the last axis with optional fake-quantized weights and output;
    a GELU layer also quantizes its pre-activation, as ``hw.engine`` does."""

    def __init__(self, din: int, dout: int, spec: QuantSpec | None, act="none", *, rngs):
        self.kernel = nnx.Param(_float32(rngs.params(), (din, dout)))
        self.bias = nnx.Param(jnp.zeros((dout,), jnp.float32))
        self.w_bits = None if spec is None else spec.w_bits
        self.act = act
        self.pre_q = ActQuant(spec) if act == "gelu" else None
        self.out_q = ActQuant(spec)
        self.qat = False

    def weight(self):
        w = self.kernel[...]
        return fake_quant_weight(w, self.w_bits) if self.qat and self.w_bits else w

    def __call__(self, x):
        y = x @ self.weight() + self.bias[...]
        if self.pre_q is not None:
            y = self.pre_q(y)
        return self.out_q(_act(y, self.act))

    def to_node(self, name: str) -> graph.Dense:
        return graph.Dense(name, w=_np(self.kernel), b=_np(self.bias), act=self.act)


class QConv(nnx.Module):
    """NHWC convolution with HWIO weights, stride 1, fused ReLU and fake quantization;
    ``same`` padding keeps the map's size, else no padding."""

    def __init__(self, cin: int, cout: int, size: int, spec: QuantSpec | None, *, same, rngs):
        self.kernel = nnx.Param(_float32(rngs.params(), (size, size, cin, cout)))
        self.bias = nnx.Param(jnp.zeros((cout,), jnp.float32))
        self.padding = size // 2 if same else 0
        self.w_bits = None if spec is None else spec.w_bits
        self.out_q = ActQuant(spec)
        self.qat = False

    def __call__(self, x):
        w = self.kernel[...]
        w = fake_quant_weight(w, self.w_bits) if self.qat and self.w_bits else w
        node = graph.Conv("conv", w=w, b=self.bias[...], padding=self.padding)
        return self.out_q(jax.nn.relu(graph.conv_float(x, node)))

    def to_node(self, name: str) -> graph.Conv:
        return graph.Conv(
            name, w=_np(self.kernel), b=_np(self.bias), padding=self.padding, act="relu"
        )


def _np(v) -> np.ndarray:
    return np.asarray(v[...], np.float32)


class CNN(nnx.Module):
    """Two conv3x3 + ReLU layers, 2x2 max pool, a dense + ReLU layer on the flattened map,
    dense to the classes. Input NHWC float32 ``(B, size, size, in_channels)``; logits out.

    ``hw.graph`` has no flatten node, so the dense layer on the flattened ``(size/2)^2 x C``
    map is a convolution whose kernel covers the whole map (no padding; the same GEMM,
    ``M = B``, ``K = (size/2)^2 C``), and a ``Mean`` over the resulting 1x1 map drops the
    spatial axes.
    """

    def __init__(
        self,
        widths: tuple[int, ...] = (16, 32),
        hidden: int = 64,
        num_classes: int = 10,
        in_channels: int = 1,
        size: int = 8,
        qat: QAT = None,
        *,
        rngs: nnx.Rngs,
    ):
        if size % 2:
            raise ValueError(f"size must be even (2x2 pooling), got {size}")
        chans = (in_channels, *widths)
        self.in_q = ActQuant(layer_spec(qat, "input"))
        self.convs = nnx.List(
            [
                QConv(c, f, 3, layer_spec(qat, f"conv{i + 1}"), same=True, rngs=rngs)
                for i, (c, f) in enumerate(zip(chans[:-1], chans[1:], strict=True))
            ]
        )
        fc1 = layer_spec(qat, "fc1")
        self.fc1 = QConv(widths[-1], hidden, size // 2, fc1, same=False, rngs=rngs)
        self.flatten_q = ActQuant(layer_spec(qat, "flatten"))
        self.fc2 = QDense(hidden, num_classes, layer_spec(qat, "fc2"), rngs=rngs)

    def __call__(self, x):
        x = self.in_q(jnp.asarray(x, jnp.float32))
        for conv in self.convs:
            x = conv(x)
        x = self.fc1(vector.max_pool2d(x, 2, 2, precision="fp32"))
        return self.fc2(self.flatten_q(jnp.mean(x, axis=(1, 2))))

    def set_qat(self, enabled: bool) -> None:
        """Fake quantization on or off (see :func:`set_qat`)."""
        set_qat(self, enabled)

    def activation_qparams(self) -> dict[str, quant.QParams]:
        """The activation ranges QAT learned, keyed by ``hw.graph`` node (empty if none)."""
        pairs = [("input", self.in_q)]
        pairs += [(f"conv{i + 1}", conv.out_q) for i, conv in enumerate(self.convs)]
        pairs += [("fc1", self.fc1.out_q), ("flatten", self.flatten_q), ("fc2", self.fc2.out_q)]
        return trained_qparams(pairs)

    def to_graph(self) -> tuple:
        """The float network as ``hw.graph`` nodes (``hw.graph.forward_float`` equals
        ``self(x)`` with QAT off)."""
        convs = tuple(conv.to_node(f"conv{i + 1}") for i, conv in enumerate(self.convs))
        return (
            *convs,
            graph.Pool("pool", "max", 2, 2),
            self.fc1.to_node("fc1"),
            graph.Mean("flatten"),
            self.fc2.to_node("fc2"),
        )
