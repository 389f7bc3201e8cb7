"""Run a quantized model on a simulated NPU: integer GEMMs, vector unit, host fallback, cost.

``quantize_model`` turns a float :mod:`hw.graph` model into integers at chosen widths (one for
the model or one per layer of its workload): weights symmetric per output channel, activations
asymmetric per tensor, calibrated on data.
``run_model`` then executes it the way the configured NPU would and returns the outputs with
the cost report of that execution:

* a conv or dense layer is an integer GEMM of ``(q_x - z_x)`` and ``q_w`` on the array
  (``hw.execute.run_gemm``: the config's rows, dataflow and ``acc_bits``, K split by the
  mapping's ``tile_k``), plus the integer bias ``round(b / (s_x s_w))``, then integer-only
  requantization ``q_y = clip(round(acc s_x s_w / s_y) + z_y)`` with ReLU as a clip;
* attention's ``Q K^T`` and ``A V`` are integer GEMMs too; the probabilities are quantized
  unsigned with scale ``1 / (2^bits - 1)``;
* vector ops (softmax, layernorm, GELU, ReLU, add, pooling) run on the vector unit at
  ``config.vector_precision`` (hw.vector) on dequantized values, then are quantized again;
* a layer whose kind is in ``config.unsupported_ops`` runs on the host in fp32 on dequantized
  inputs (weights in float) and is quantized back, as a fallback path would be.

The cost report is ``hw.cost.evaluate`` of :func:`hw.graph.workload` for the batch, with the
same mapping the execution used.
"""

from __future__ import annotations

import collections
import dataclasses
import weakref
from collections import abc

import jax
import jax.numpy as jnp
import numpy as np

from hw import cost, graph, quant, vector
from hw.execute import quantize_multiplier, requantize, run_gemm
from hw.graph import Act, Add, Attention, Conv, Dense, LayerNorm, Mean, Pool
from hw.quant import QParams
from hw.types import CostReport, NPUConfig
from hw.x64 import x64

_EXACT_FLOAT32 = 2**24  # integers (and sums of them) below this magnitude are exact in float32
_EXACT_FLOAT64 = 2**53
_MIN_REQUANT_SCALE = 2.0**-31  # twice the smallest scale quantize_multiplier represents


@dataclasses.dataclass(frozen=True, eq=False)
class QuantizedModel:
    """A float model plus the integer parameters of every node (``steps[name]``).

    ``w_bits`` and ``a_bits`` are the widths the multipliers need: the model's widths, or for
    per-layer widths the widest weight width of a GEMM layer and the widest activation width
    (as ``dse.design.hardware_bits``). ``layer_w_bits`` and ``layer_a_bits`` (shape=(L,),
    aligned with :func:`hw.graph.workload`'s layers) are the per-layer widths the cost report
    uses; ``None`` for a model quantized at one width.
    """

    model: tuple
    in_qp: QParams
    steps: dict
    w_bits: int
    a_bits: int
    layer_w_bits: tuple | None = None
    layer_a_bits: tuple | None = None


Bits = int | abc.Mapping[str, int]
"""A bit width for every layer, or one per workload layer name (see :func:`quantize_model`)."""


class _Widths:
    """Looks up a layer's width in an int or a per-layer mapping (``ValueError`` if missing)."""

    def __init__(self, field: str, bits: Bits, names: tuple[str, ...]):
        self.field, self.bits, self.used = field, bits, set()
        if not isinstance(bits, abc.Mapping):
            _check_bits(field, bits)
            return
        for key, b in dict(bits).items():
            _check_bits(f"{field}[{key!r}]", b)
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
            return _check_bits(f"{self.field}[{layer!r}]", self.bits[layer])
        except KeyError:
            raise ValueError(f"{self.field} has no width for layer {layer!r}") from None

    def get(self, layer: str, default: int) -> int:
        """The width given for ``layer``, else ``default`` (for layers whose width is unused)."""
        if not isinstance(self.bits, abc.Mapping):
            return int(self.bits)
        if layer not in self.bits:
            return int(default)
        return _check_bits(f"{self.field}[{layer!r}]", self.bits[layer])


def _check_bits(where: str, bits) -> int:
    if isinstance(bits, bool) or not isinstance(bits, int | np.integer) or not 2 <= bits <= 16:
        raise ValueError(f"{where} must be an integer in 2..16, got {bits!r}")
    return int(bits)


def _act_qp(x, bits: int, method: str) -> QParams:
    return quant.calibrate(np.asarray(x), bits, symmetric=False, signed=True, method=method)


def _gemm_step(w, b, in_qp: QParams, out_qp: QParams, w_bits: int):
    """Integer weights ``(K, N)``, bias and requantization constants of one GEMM."""
    w = np.asarray(w, np.float64)
    w_qp = quant.calibrate(w, w_bits, symmetric=True, per_channel_axis=w.ndim - 1)
    s_x, s_y = float(in_qp.scale), float(out_qp.scale)
    # The requantization multiplier holds scales down to 2^-32 (quantize_multiplier). A channel
    # below (near-zero weights at a wide width) gets its weight scale raised to 2^-31 s_y / s_x:
    # its rounding then moves a sum of K products by under K 2^(a_bits - 32) output steps.
    floor = _MIN_REQUANT_SCALE * s_y / s_x
    if np.any(np.asarray(w_qp.scale) < floor):
        scale = np.maximum(np.asarray(w_qp.scale, np.float64), floor)
        w_qp = dataclasses.replace(w_qp, scale=scale.astype(np.asarray(w_qp.scale).dtype))
    s_w = np.asarray(w_qp.scale, np.float64)
    mult, shift = quantize_multiplier(s_x * s_w / s_y)
    return {
        "w_q": np.asarray(quant.quantize(w, w_qp)),
        "w_qp": w_qp,
        "bias_q": np.round(np.asarray(b, np.float64) / (s_x * s_w)).astype(np.int64),
        "mult": mult,
        "shift": shift,
        "out_qp": out_qp,
    }


def _attention_internals(n: Attention, x):
    """Float q, k, v, context (merged heads) of an attention node, for calibration."""
    q, k, v = (x @ w + b for w, b in ((n.wq, n.bq), (n.wk, n.bk), (n.wv, n.bv)))
    qh, kh, vh = (graph.heads_split(t, n.heads) for t in (q, k, v))
    scores = qh @ jnp.swapaxes(kh, -1, -2) / np.sqrt(qh.shape[-1])
    mask = graph.causal_mask(x.shape[1]) if n.causal else None
    ctx = graph.heads_merge(vector.softmax(scores, mask=mask) @ vh)
    return q, k, v, ctx


def _node_widths(node, w: _Widths, a: _Widths, in_bits: int):
    """Widths of one node: ``(weights, activations, layers)``: its weights' widths (by
    projection for attention), its quantized tensors' widths keyed as ``act_qparams`` (plus
    ``NAME.probs``), and ``(layer, w or None, a)`` for each of its workload layers (``None``:
    no weights; layers whose width is unused record the width given, else the data's)."""
    n = node.name
    if isinstance(node, Conv | Dense):
        out, layers = a(n), [(n, w(n), a(n))]
        acts = {n: out}
        if node.act == "gelu":
            acts = {f"{n}.pre": out, n: a(f"{n}_gelu")}
            layers.append((f"{n}_gelu", None, acts[n]))
        elif node.act == "relu":  # a clip of the GEMM's output codes
            layers.append((f"{n}_relu", None, a.get(f"{n}_relu", out)))
        return {n: w(n)}, acts, layers
    if isinstance(node, Attention):
        weights = {p: w(f"{n}_{p}") for p in "qkvo"}
        acts = {f"{n}.{p}": a(f"{n}_{p}") for p in "qkv"}
        acts |= {f"{n}.probs": a(f"{n}_softmax"), f"{n}.ctx": a(f"{n}_av"), n: a(f"{n}_o")}
        qk = (f"{n}_qk", None, a.get(f"{n}_qk", max(acts[f"{n}.q"], acts[f"{n}.k"])))
        layers = [(f"{n}_{p}", weights[p], acts[f"{n}.{p}"]) for p in "qkv"]
        layers += [qk, (f"{n}_softmax", None, acts[f"{n}.probs"])]
        layers += [(f"{n}_av", None, acts[f"{n}.ctx"]), (f"{n}_o", weights["o"], acts[n])]
        return {n: weights}, acts, layers
    if _on_codes(node):
        return {}, {}, [(n, None, a.get(n, in_bits))]
    return {}, {n: a(n)}, [(n, None, a(n))]


def _plan_widths(model, names: tuple[str, ...], w_bits: Bits, a_bits: Bits):
    """``(weights, acts, layer_w, layer_a, used)`` of the whole model (see
    :func:`_node_widths`); layers without weights record the widest weight width of a GEMM
    layer; ``used`` holds the names of the layers whose ``w_bits`` and ``a_bits`` matter."""
    w, a = _Widths("w_bits", w_bits, names), _Widths("a_bits", a_bits, (*names, "input"))
    per_layer = isinstance(a_bits, abc.Mapping) and "input" not in a_bits
    weights, acts, layers = {}, {"input": a(names[0] if per_layer else "input")}, []
    data_bits = acts["input"]  # the width of the tensor flowing into the next node
    for node in model:
        nw, na, nl = _node_widths(node, w, a, data_bits)
        weights, acts, layers = weights | nw, acts | na, layers + nl
        data_bits = na.get(node.name, data_bits)
    if tuple(name for name, _, _ in layers) != tuple(names):
        raise ValueError(f"the model's layers {names} are not those its widths were planned for")
    gemm = [b for _, b, _ in layers if b is not None]
    widest = max(gemm, default=w.get(names[0], 8))
    layer_w = tuple(w.get(name, widest) if b is None else b for name, b, _ in layers)
    return weights, acts, layer_w, tuple(b for _, _, b in layers), (w.used, a.used)


def activation_widths(model, input_shape, a_bits: Bits) -> dict[str, int]:
    """The width of every tensor :func:`quantize_model` quantizes for ``a_bits``, keyed as
    its ``act_qparams`` (plus ``NAME.probs``, attention's probabilities).

    >>> model = (graph.Dense("fc", w=np.eye(4, 3), b=np.zeros(3), act="relu"),)
    >>> activation_widths(model, (2, 4), {"fc": 4, "fc_relu": 8})
    {'input': 4, 'fc': 4}
    """
    names = graph.workload(model, tuple(input_shape)).names
    return _plan_widths(model, names, 8, a_bits)[1]


def layers_with_widths(model, input_shape) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The workload layers whose ``w_bits``, and those whose ``a_bits``, change the model that
    :func:`quantize_model` builds from per-layer widths (in workload order).

    >>> model = (graph.Dense("fc", w=np.eye(4, 3), b=np.zeros(3), act="relu"),)
    >>> layers_with_widths(model, (2, 4))
    (('fc',), ('fc',))
    """
    names = graph.workload(model, tuple(input_shape)).names
    w_bits, a_bits = (collections.defaultdict(lambda: 8) for _ in range(2))
    w_used, a_used = _plan_widths(model, names, w_bits, a_bits)[4]
    return tuple(n for n in names if n in w_used), tuple(n for n in names if n in a_used)


@x64
def quantize_model(
    model,
    calib_x,
    *,
    w_bits: Bits,
    a_bits: Bits,
    method: str = "minmax",
    act_qparams: dict | None = None,
):
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
    :func:`activation_widths`).
    """
    x = jnp.asarray(calib_x, jnp.float32)
    wl = graph.workload(model, x.shape)
    w_of, a_of, layer_w, layer_a, _ = _plan_widths(model, wl.names, w_bits, a_bits)
    given = dict(act_qparams or {})
    for key, qp in given.items():
        want = a_of.get(key, qp.bits if isinstance(a_bits, abc.Mapping) else a_bits)
        if qp.bits != want:
            raise ValueError(f"act_qparams[{key!r}] has {qp.bits} bits, the model {want}")

    def act(key: str, values):
        return given[key] if key in given else _act_qp(values, a_of[key], method)

    _, outs = graph.forward_float(model, x, return_all=True)
    in_qp = act("input", x)
    steps, prev_qp, prev_x = {}, in_qp, x
    for node in model:
        # max pooling and ReLU act on the integer codes, keeping their input's parameters
        out_qp = prev_qp if _on_codes(node) else act(node.name, outs[node.name])
        if isinstance(node, Conv | Dense):
            w = np.reshape(node.w, (-1, np.shape(node.w)[-1]))
            pre = node.act == "gelu"
            pre_qp = act(f"{node.name}.pre", _pre_activation(node, prev_x)) if pre else out_qp
            step = _gemm_step(w, node.b, prev_qp, pre_qp, w_of[node.name])
            steps[node.name] = step | {"final": out_qp}
        elif isinstance(node, Attention):
            internals = _attention_internals(node, prev_x)
            qps = [
                act(f"{node.name}.{p}", t)
                for p, t in zip(("q", "k", "v", "ctx"), internals, strict=True)
            ]
            pairs = ((node.wq, node.bq), (node.wk, node.bk), (node.wv, node.bv))
            bits = w_of[node.name]
            steps[node.name] = {
                p: _gemm_step(w, b, prev_qp, qp, bits[p])
                for p, (w, b), qp in zip("qkv", pairs, qps[:3], strict=True)
            } | _attention_steps(node, qps, out_qp, bits["o"], a_of[f"{node.name}.probs"])
        else:
            steps[node.name] = {"out_qp": out_qp}
        prev_qp, prev_x = out_qp, outs[node.name]
    if not isinstance(w_bits, abc.Mapping) and not isinstance(a_bits, abc.Mapping):
        return QuantizedModel(tuple(model), in_qp, steps, int(w_bits), int(a_bits))
    # the multipliers' widths, as dse.design.hardware_bits: the widest of any GEMM layer
    gemm = np.asarray(wl.gemm_count) > 0
    widest_w = max(np.asarray(layer_w)[gemm], default=max(layer_w))
    return QuantizedModel(tuple(model), in_qp, steps, int(widest_w), max(layer_a), layer_w, layer_a)


def _attention_steps(node: Attention, qps, out_qp, w_bits: int, probs_bits: int) -> dict:
    """Probabilities' params (unsigned, scale ``1 / (2^bits - 1)``), ``A V`` requantization
    into the context's params, and the output projection."""
    probs_qp = QParams(
        scale=np.float64(1.0 / (2**probs_bits - 1)),
        zero_point=np.int32(0),
        bits=probs_bits,
        signed=False,
    )
    s_v, s_ctx = float(qps[2].scale), float(qps[3].scale)
    av_mult, av_shift = quantize_multiplier(float(probs_qp.scale) * s_v / s_ctx)
    return {
        "probs_qp": probs_qp,
        "av_mult": av_mult,
        "av_shift": av_shift,
        "ctx_qp": qps[3],
        "o": _gemm_step(node.wo, node.bo, qps[3], out_qp, w_bits),
    }


def _pre_activation(node, x):
    plain = dataclasses.replace(node, act="none")
    return graph.apply_float(plain, x, {})


class _Runner:
    """Executes one node at a time; holds the config's array settings and the mapping."""

    def __init__(self, qm: QuantizedModel, config: NPUConfig, tile_k: dict, overflow: str):
        self.qm, self.config, self.tile_k, self.overflow = qm, config, tile_k, overflow
        self.precision = config.vector_precision
        self.host = set(config.unsupported_ops)

    def gemm(self, a, w_q, name: str, a_bits: int, w_bits: int):
        """Integer ``a @ w_q`` on the configured array (int64); ``a`` holds ``a_bits + 1``-bit
        values (``q - z``), ``w_q`` ``w_bits``-bit ones."""
        c = self.config
        k = a.shape[-1]
        a, w_q = _narrow(a, a_bits + 1), _narrow(w_q, w_bits)
        # Operand ranges are known from the bit widths: when no partial sum can reach the
        # accumulator's limit, saturate and wrap give the same bits and the fast path applies.
        limit = 2 ** (int(c.acc_bits) - 1)
        overflow = "wrap" if self.bound(k, a_bits, w_bits) < limit else self.overflow
        return run_gemm(
            a,
            w_q,
            rows=int(c.rows),
            cols=int(c.cols),
            dataflow=int(c.dataflow),
            acc_bits=int(c.acc_bits),
            overflow=overflow,
            tile_k=self.tile_k.get(name),
        )

    def order_free(self, k: int, a_bits: int, w_bits: int) -> bool:
        """True when no sum of ``k`` products can clamp, wrap or lose a bit in float64: then
        the array's result is the exact integer product whatever the order of the additions
        (there are no partial-sum spills in execution), and a float convolution of the
        integers computes the same bits as the fold-by-fold GEMM."""
        limit = 2 ** (int(self.config.acc_bits) - 1)
        return self.bound(k, a_bits, w_bits) < min(_EXACT_FLOAT64, limit)

    @staticmethod
    def bound(k: int, a_bits: int, w_bits: int) -> int:
        """Largest magnitude of a sum of ``k`` products of an activation less its zero point
        (``a_bits + 1`` bits) and a ``w_bits`` operand."""
        return k * 2**a_bits * 2 ** (w_bits - 1)

    def requant(self, acc, st: dict, relu: bool):
        qp = st["out_qp"]
        return requantize(
            acc,
            multiplier=st["mult"],
            shift=st["shift"],
            zero_point=qp.zero_point,
            bias=st["bias_q"],
            out_bits=qp.bits,
            signed=qp.signed,
            relu=relu,
        )

    def vector_op(self, kind: str, fn, q, in_qp, out_qp):
        """Dequantize, apply ``fn(x, precision)`` on the vector unit or the host, requantize."""
        precision = "fp32" if kind in self.host else self.precision
        return quant.quantize(fn(quant.dequantize(q, in_qp), precision), out_qp)

    def gemm_node(self, node, q, in_qp, st):
        """Conv or dense: integer GEMM (per group), requantization, then a non-ReLU activation."""
        kind = "conv" if isinstance(node, Conv) else "dense"
        if kind in self.host:
            y = graph.apply_float(node, quant.dequantize(q, in_qp), {})
            return quant.quantize(y, st["final"])
        x = q.astype(jnp.int32) - in_qp.zero_point
        a_bits, w_bits = in_qp.bits, st["w_qp"].bits
        k = int(np.prod(np.shape(node.w)[:3])) if isinstance(node, Conv) else 0
        if isinstance(node, Conv) and self.order_free(k, a_bits, w_bits):
            acc = _exact_conv(x, st["w_q"], node, self.bound(k, a_bits, w_bits))
        elif isinstance(node, Conv):
            r, s, cg, f = np.shape(node.w)
            fg = f // node.groups
            cols = []
            for g in range(node.groups):
                a, out_shape = im2col(
                    x[..., g * cg : (g + 1) * cg], r, s, node.stride, node.padding
                )
                w_g = st["w_q"][:, g * fg : (g + 1) * fg]
                cols.append(self.gemm(a, w_g, node.name, a_bits, w_bits))
            acc = jnp.concatenate(cols, axis=-1).reshape(*out_shape, f)
        else:
            lead = x.shape[:-1]
            acc = self.gemm(x.reshape(-1, x.shape[-1]), st["w_q"], node.name, a_bits, w_bits)
            acc = acc.reshape(*lead, -1)
        y = self.requant(acc, st, relu=node.act == "relu")
        if node.act == "gelu":
            y = self.vector_op("gelu", _gelu, y, st["out_qp"], st["final"])
        return y

    def bmm(self, a, b, name: str, a_bits: int, b_bits: int):
        """Integer ``a @ b`` over leading batch axes (int64), one array GEMM per matrix; the
        operands are activations less their zero points (``a_bits + 1``, ``b_bits + 1``
        bits)."""
        if "matmul" in self.host:
            return jnp.einsum("...ik,...kj->...ij", a.astype(jnp.int64), b.astype(jnp.int64))
        lead = a.shape[:-2]
        a2, b2 = a.reshape(-1, *a.shape[-2:]), b.reshape(-1, *b.shape[-2:])
        out = jax.vmap(lambda x, y: self.gemm(x, y, name, a_bits, b_bits + 1))(a2, b2)
        return out.reshape(*lead, a.shape[-2], b.shape[-1])

    def attention(self, n: Attention, q, in_qp, st):
        proj = {}
        for p in "qkv":
            d = Dense(f"{n.name}_{p}", getattr(n, "w" + p), getattr(n, "b" + p))
            proj[p] = self.gemm_node(d, q, in_qp, st[p] | {"final": st[p]["out_qp"]})
        qh, kh, vh = (graph.heads_split(proj[p], n.heads) for p in "qkv")
        z = {p: st[p]["out_qp"].zero_point for p in "qkv"}
        bits = {p: st[p]["out_qp"].bits for p in "qkv"}
        k_t = jnp.swapaxes(kh - z["k"], -1, -2)
        scores = self.bmm(qh - z["q"], k_t, f"{n.name}_qk", bits["q"], bits["k"])
        s_qk = float(st["q"]["out_qp"].scale) * float(st["k"]["out_qp"].scale)
        mask = graph.causal_mask(q.shape[1]) if n.causal else None
        precision = "fp32" if "softmax" in self.host else self.precision
        probs = vector.softmax(
            scores * s_qk / np.sqrt(qh.shape[-1]), precision=precision, mask=mask
        )
        p_qp = st["probs_qp"]
        pq = quant.quantize(probs, p_qp)
        ctx = self.bmm(pq, vh - z["v"], f"{n.name}_av", p_qp.bits, bits["v"])
        ctx_q = requantize(
            graph.heads_merge(ctx),
            multiplier=st["av_mult"],
            shift=st["av_shift"],
            zero_point=st["ctx_qp"].zero_point,
            out_bits=st["ctx_qp"].bits,
        )
        o = Dense(f"{n.name}_o", n.wo, n.bo)
        return self.gemm_node(o, ctx_q, st["ctx_qp"], st["o"] | {"final": st["o"]["out_qp"]})

    def node(self, node, q, in_qp, outs: dict):
        """One node: returns its integer output (with ``steps[name]``'s output params)."""
        st = self.qm.steps[node.name]
        if isinstance(node, Conv | Dense):
            return self.gemm_node(node, q, in_qp, st)
        if isinstance(node, Attention):
            return self.attention(node, q, in_qp, st)
        if isinstance(node, Add):
            other_q, other_qp = outs[node.other]

            def fn(x, p):
                return vector.add(x, quant.dequantize(other_q, other_qp), precision=p)

            return self.vector_op("add", fn, q, in_qp, st["out_qp"])
        kind, fn = _vector_fn(node)
        if _on_codes(node) and kind not in self.host:
            return _code_op(node, q, in_qp)
        return self.vector_op(kind, fn, q, in_qp, st["out_qp"])


def _on_codes(node) -> bool:
    """Max pooling and ReLU commute with the (monotone) quantizer, so an integer engine applies
    them to the codes and keeps the input's quantization parameters (as TFLite does)."""
    return (isinstance(node, Pool) and node.kind == "max") or (
        isinstance(node, Act) and node.kind == "relu"
    )


def _code_op(node, q, qp: QParams):
    if isinstance(node, Act):
        return jnp.maximum(q, qp.zero_point).astype(q.dtype)
    window, stride = (1, node.window, node.window, 1), (1, node.stride, node.stride, 1)
    lowest = jnp.iinfo(q.dtype).min
    return jax.lax.reduce_window(
        q, jnp.asarray(lowest, q.dtype), jax.lax.max, window, stride, "VALID"
    )


def _narrow(q, bits: int):
    """``q`` in the smallest signed integer dtype that holds ``bits``-bit signed values."""
    return q.astype(jnp.int8 if bits <= 8 else jnp.int16 if bits <= 16 else jnp.int32)


def _relu(x, precision):
    return vector.relu(x, precision=precision)


def _gelu(x, precision):
    return vector.gelu(x, precision=precision)


def _vector_fn(node):
    """``(layer kind, fn(x, precision))`` of a vector-only node."""
    if isinstance(node, Act):
        return node.kind, _relu if node.kind == "relu" else _gelu
    if isinstance(node, LayerNorm):
        return "layernorm", lambda x, p: vector.layernorm(x, node.gamma, node.beta, precision=p)
    if isinstance(node, Pool):
        pool = vector.max_pool2d if node.kind == "max" else vector.avg_pool2d
        return "pool", lambda x, p: pool(x, node.window, node.stride, precision=p)
    if isinstance(node, Mean):
        return "pool", lambda x, p: jnp.mean(x, axis=tuple(range(1, x.ndim - 1)))
    raise ValueError(f"unknown node type {type(node).__name__}")


def _exact_conv(x, w_q, node: Conv, bound: int):
    """The integer convolution as one XLA conv in float32 when every partial sum is below
    ``2^24`` (``bound``), else in float64 (exact below ``2^53``; see ``_Runner.order_free``)."""
    dtype = jnp.float32 if bound < _EXACT_FLOAT32 else jnp.float64
    w = jnp.asarray(w_q, dtype).reshape(np.shape(node.w))
    y = jax.lax.conv_general_dilated(
        x.astype(dtype),
        w,
        window_strides=(node.stride, node.stride),
        padding=[(node.padding, node.padding)] * 2,
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=node.groups,
        precision=jax.lax.Precision.HIGHEST,
    )
    return y.astype(jnp.int64)


def im2col(x, r: int, s: int, stride: int, padding: int):
    """NHWC patches as a ``(B Ho Wo) x (r s C)`` matrix (zero padding) and ``(B, Ho, Wo)``."""
    x = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    b, h, w, c = x.shape
    ho, wo = (h - r) // stride + 1, (w - s) // stride + 1
    taps = [
        x[:, i : i + stride * (ho - 1) + 1 : stride, j : j + stride * (wo - 1) + 1 : stride, :]
        for i in range(r)
        for j in range(s)
    ]
    return jnp.stack(taps, axis=3).reshape(b * ho * wo, r * s * c), (b, ho, wo)


@x64
def compile_model(qm: QuantizedModel, input_shape, config: NPUConfig, overflow="saturate"):
    """``(forward, workload, mapping)`` for batches of ``input_shape`` on ``config``.

    ``forward(x)`` is the jitted bit-accurate execution (float inputs, dequantized outputs),
    using the reduction split of the cost model's mapping; compiled once per setting and
    cached on ``qm``. The config's ``w_bits`` and ``a_bits`` must be the model's (for
    per-layer widths, the widest; the mapping then follows the per-layer widths).
    """
    for field, want in (("w_bits", qm.w_bits), ("a_bits", qm.a_bits)):
        got = float(getattr(config, field))
        if got != want:
            raise ValueError(f"config {field}={got:g} but the model is quantized to {want} bits")
    if config.vector_precision not in vector.PRECISIONS:
        raise ValueError(
            f"vector_precision must be one of {', '.join(vector.PRECISIONS)}, "
            f"got {config.vector_precision!r}"
        )
    if overflow not in ("wrap", "saturate"):
        raise ValueError(f"overflow must be 'wrap' or 'saturate', got {overflow!r}")
    wl = graph.workload(qm.model, tuple(input_shape))
    bits = layer_bits(qm)
    per_layer = (
        config if bits is None else dataclasses.replace(config, w_bits=bits[0], a_bits=bits[1])
    )
    mapping = cost.default_mapping(per_layer, wl)
    tk, k = np.asarray(mapping.tile_k), np.asarray(wl.gemm_k)
    tile_k = {n: int(t) for n, t, kk in zip(wl.names, tk, k, strict=True) if t < kk}
    return _forward(qm, config, tuple(sorted(tile_k.items())), overflow), wl, mapping


@x64
def run_model(
    qm: QuantizedModel, x, config: NPUConfig, *, overflow: str = "saturate"
) -> tuple[jax.Array, CostReport]:
    """Execute ``qm`` on the batch ``x`` as ``config`` would; returns (float outputs, costs).

    Outputs are the dequantized values of the last node (logits); the cost report is the
    exact model's for the whole batch (see :func:`compile_model`), with the model's per-layer
    widths where it has them.

    >>> import numpy as np
    >>> from hw import get_preset
    >>> model = (graph.Dense("fc", w=np.eye(4, 3), b=np.zeros(3), act="relu"),)
    >>> x = np.linspace(-1, 1, 8).reshape(2, 4)
    >>> qm = quantize_model(model, x, w_bits=8, a_bits=8)
    >>> y, report = run_model(qm, x, get_preset("edge-tpu-like"))
    >>> [[round(float(v), 2) for v in row] for row in y], float(report.total_latency_s) > 0
    ([[0.0, 0.0, 0.0], [0.14, 0.43, 0.71]], True)
    """
    x = jnp.asarray(x, jnp.float32)
    forward, wl, mapping = compile_model(qm, x.shape, config, overflow)
    return forward(x), cost.evaluate(config, wl, mapping, layer_bits=layer_bits(qm))


def layer_bits(qm: QuantizedModel):
    """``(w_bits, a_bits)`` per workload layer (float arrays, shape=(L,)) of a model quantized
    with per-layer widths, for ``hw.cost.evaluate``'s ``layer_bits``; ``None`` otherwise."""
    if qm.layer_w_bits is None:
        return None
    return np.asarray(qm.layer_w_bits, np.float64), np.asarray(qm.layer_a_bits, np.float64)


_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _forward(qm: QuantizedModel, config: NPUConfig, tile_k: tuple, overflow: str):
    """The jitted integer forward pass of ``qm`` on ``config``, compiled once per setting."""
    c = config
    key = (int(c.rows), int(c.cols), int(c.dataflow), int(c.acc_bits), c.vector_precision)
    key += (c.unsupported_ops, tile_k, overflow)
    cache = _COMPILED.setdefault(qm, {})
    if key not in cache:
        runner = _Runner(qm, config, dict(tile_k), overflow)

        def forward(x):
            q, qp, outs = quant.quantize(x, qm.in_qp), qm.in_qp, {}
            for node in qm.model:
                q = runner.node(node, q, qp, outs)
                qp = _out_qp(qm.steps[node.name])
                outs[node.name] = (q, qp)
            return quant.dequantize(q, qp)

        cache[key] = x64(jax.jit(forward))
    return cache[key]


def _out_qp(st: dict) -> QParams:
    if "final" in st:
        return st["final"]
    return st["o"]["out_qp"] if "o" in st else st["out_qp"]
