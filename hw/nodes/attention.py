"""Multi-head self-attention: four projections and the two batched matmuls between them.

On the NPU the projections are dense GEMMs; ``Q K^T`` and ``A V`` are integer GEMMs of
activations less their zero points, one array GEMM per head and batch; softmax runs on the
vector unit and its probabilities are quantized unsigned with scale ``1 / (2^bits - 1)``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax.numpy as jnp
import numpy as np

from hw import layers, quant, vector
from hw.execute import quantize_multiplier, requantize
from hw.nodes.base import Node, NodeWidths
from hw.nodes.gemm import Dense
from hw.quant import QParams
from hw.steps import AttentionStep, gemm_step


def heads_split(x, heads: int):
    """``(B, T, D) -> (B, H, T, D / H)``."""
    b, t, d = x.shape
    return x.reshape(b, t, heads, d // heads).transpose(0, 2, 1, 3)


def heads_merge(x):
    """``(B, H, T, Dh) -> (B, T, H * Dh)``."""
    b, h, t, dh = x.shape
    return x.transpose(0, 2, 1, 3).reshape(b, t, h * dh)


def causal_mask(t: int):
    return jnp.tril(jnp.ones((t, t), dtype=bool))


@dataclasses.dataclass(frozen=True, eq=False)
class Attention(Node):
    """Multi-head self-attention: projections ``wq, wk, wv, wo`` (``d x d``) with biases."""

    name: str
    wq: Any
    bq: Any
    wk: Any
    bk: Any
    wv: Any
    bv: Any
    wo: Any
    bo: Any
    heads: int
    causal: bool = False

    def _projections(self):
        return {"q": (self.wq, self.bq), "k": (self.wk, self.bk), "v": (self.wv, self.bv)}

    def internals(self, x):
        """Float q, k, v and context (merged heads), for calibration."""
        q, k, v = (x @ w + b for w, b in self._projections().values())
        qh, kh, vh = (heads_split(t, self.heads) for t in (q, k, v))
        scores = qh @ jnp.swapaxes(kh, -1, -2) / np.sqrt(qh.shape[-1])
        mask = causal_mask(x.shape[1]) if self.causal else None
        ctx = heads_merge(vector.softmax(scores, mask=mask) @ vh)
        return q, k, v, ctx

    def apply_float(self, x, outputs: dict):
        q, k, v = (x @ w + b for w, b in self._projections().values())
        q, k, v = (heads_split(t, self.heads) for t in (q, k, v))
        scores = q @ jnp.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
        mask = causal_mask(x.shape[1]) if self.causal else None
        probs = vector.softmax(scores, precision="fp32", mask=mask)
        return heads_merge(probs @ v) @ self.wo + self.bo

    def lower(self, shape):
        b, t, d = shape
        n, dh = self.name, d // self.heads
        proj = [
            layers.dense(f"{n}_{p}", in_features=d, out_features=d, tokens=b * t)
            for p in ("q", "k", "v")
        ]
        return proj + [
            layers.batched_matmul(f"{n}_qk", m=t, k=dh, n=t, count=b * self.heads),
            layers.vector(f"{n}_softmax", "softmax", elems=b * self.heads * t * t),
            layers.batched_matmul(f"{n}_av", m=t, k=t, n=dh, count=b * self.heads),
            layers.dense(f"{n}_o", in_features=d, out_features=d, tokens=b * t),
        ]

    def widths(self, w, a, in_bits: int) -> NodeWidths:
        """Projections like dense layers (``NAME_o``'s output is the node's), probabilities at
        ``NAME_softmax``, context at ``NAME_av``; ``NAME_qk``'s output is not quantized."""
        n = self.name
        weights = {p: w(f"{n}_{p}") for p in "qkvo"}
        acts = {f"{n}.{p}": a(f"{n}_{p}") for p in "qkv"}
        acts |= {f"{n}.probs": a(f"{n}_softmax"), f"{n}.ctx": a(f"{n}_av"), n: a(f"{n}_o")}
        qk = (f"{n}_qk", None, a.get(f"{n}_qk", max(acts[f"{n}.q"], acts[f"{n}.k"])))
        lays = [(f"{n}_{p}", weights[p], acts[f"{n}.{p}"]) for p in "qkv"]
        lays += [qk, (f"{n}_softmax", None, acts[f"{n}.probs"])]
        lays += [(f"{n}_av", None, acts[f"{n}.ctx"]), (f"{n}_o", weights["o"], acts[n])]
        return NodeWidths({n: weights}, acts, lays)

    def quantize(self, x, in_qp, out_qp, calib) -> AttentionStep:
        n, bits = self.name, calib.w_bits[self.name]
        keys = (f"{n}.q", f"{n}.k", f"{n}.v", f"{n}.ctx")
        q_qp, k_qp, v_qp, ctx_qp = (
            calib.act(key, t) for key, t in zip(keys, self.internals(x), strict=True)
        )
        proj = {
            p: gemm_step(w, b, in_qp, qp, bits[p])
            for (p, (w, b)), qp in zip(self._projections().items(), (q_qp, k_qp, v_qp), strict=True)
        }
        probs_bits = calib.a_bits[f"{n}.probs"]
        probs_qp = QParams(
            scale=np.float64(1.0 / (2**probs_bits - 1)),
            zero_point=np.int32(0),
            bits=probs_bits,
            signed=False,
        )
        av_mult, av_shift = quantize_multiplier(
            float(probs_qp.scale) * float(v_qp.scale) / float(ctx_qp.scale)
        )
        return AttentionStep(
            **proj,
            probs_qp=probs_qp,
            av_mult=av_mult,
            av_shift=av_shift,
            ctx_qp=ctx_qp,
            o=gemm_step(self.wo, self.bo, ctx_qp, out_qp, bits["o"]),
        )

    def execute(self, run, q, in_qp, step: AttentionStep, outputs: dict):
        qh, kh, vh = self.project(run, q, in_qp, step, outputs)
        mask = causal_mask(q.shape[1]) if self.causal else None
        return self.attend(run, qh, kh, vh, step, mask, outputs)

    def project(self, run, q, in_qp, step: AttentionStep, outputs: dict):
        """The integer q, k, v codes of the input codes ``q``, split in heads ``(B, H, T,
        D / H)`` (a decode step appends k and v to its cache, :mod:`hw.kv_decode`)."""
        n = self.name
        steps = {"q": step.q, "k": step.k, "v": step.v}
        proj = {
            p: Dense(f"{n}_{p}", w, b).execute(run, q, in_qp, steps[p], outputs)
            for p, (w, b) in self._projections().items()
        }
        return tuple(heads_split(proj[p], self.heads) for p in "qkv")

    def attend(self, run, qh, kh, vh, step: AttentionStep, mask, outputs: dict):
        """Scores, softmax (``mask`` False excludes a key), probabilities times values and the
        output projection, from the codes of :meth:`project`; keys and values may be longer
        than the queries (a KV cache)."""
        n = self.name
        steps = {"q": step.q, "k": step.k, "v": step.v}
        z = {p: steps[p].out_qp.zero_point for p in "qkv"}
        bits = {p: steps[p].out_qp.bits for p in "qkv"}
        k_t = jnp.swapaxes(kh - z["k"], -1, -2)
        scores = run.bmm(qh - z["q"], k_t, f"{n}_qk", bits["q"], bits["k"])
        s_qk = float(step.q.out_qp.scale) * float(step.k.out_qp.scale)
        precision = "fp32" if "softmax" in run.host else run.precision
        probs = vector.softmax(
            scores * s_qk / np.sqrt(qh.shape[-1]), precision=precision, mask=mask
        )
        p_qp = step.probs_qp
        pq = quant.quantize(probs, p_qp)
        ctx = run.bmm(pq, vh - z["v"], f"{n}_av", p_qp.bits, bits["v"])
        ctx_q = requantize(
            heads_merge(ctx),
            multiplier=step.av_mult,
            shift=step.av_shift,
            zero_point=step.ctx_qp.zero_point,
            out_bits=step.ctx_qp.bits,
            acc_bound=run.acc_bound(kh.shape[-2], p_qp.bits, bits["v"] + 1, "matmul" in run.host),
        )
        o = Dense(f"{n}_o", self.wo, self.bo)
        return o.execute(run, ctx_q, step.ctx_qp, step.o, outputs)
