"""One step of decoder-LLM inference as a search workload: operand-class widths and residency.

``npu_dse.llm`` runs a prefill or decode step of a zoo decoder on one design. Two things of
that model depend on the design rather than on the workload, and are applied here, inside the
search's cost model (exact and smooth), from a static :class:`LLMStep`:

- **Widths per operand class.** A design's widths (one ``w_bits`` and one ``a_bits`` for the
  network) are the weights' and the activations'; the KV cache is at ``kv_bits`` (``None``:
  the activations' width). The attention matmuls' right operand (keys, values) and the
  ``kv_store`` writes are at the KV width (``npu_dse.llm.operand_bits``), and the multipliers
  are as wide as the widest right operand, ``max(w_bits, kv_bits)``.
- **Residency** (decode). With ``room = resident_bytes`` (half the filter buffer, or of the
  unified buffer), the dense weights ``W`` bytes stay in SRAM across tokens when ``W <= room``
  and the KV cache ``C`` when ``C <= room - [weights resident] * W``; resident operands have
  no distinct DRAM elements (``npu_dse.llm.with_residency``)::

      r_w  = 1[(W - room) / room <= 0]
      r_kv = 1[(C + r_w W - room) / room <= 0]

  The smooth twin replaces each indicator by ``1 - sigmoid(x / t)`` of the same relative
  excess (``hw.arith.step``), so the gradient sees the DRAM traffic of the weights and the
  cache fall as the SRAM grows past them (or the widths shrink under it); it tends to the
  exact indicator as ``t -> 0``. Reported figures come from the exact indicator.

>>> from hw import layers
>>> fc = layers.dense("fc", in_features=64, out_features=64)
>>> wl = layers.workload([fc, layers.batched_matmul("qk", m=1, k=64, n=8)])
>>> step = LLMStep(tokens=1, kv_bits=4.0, resident=True)
>>> b = operand_bits(wl, np.full(2, 8.0), np.full(2, 8.0), step)
>>> b.w_bits.tolist(), b.a_bits.tolist()
([8.0, 4.0], [8.0, 8.0])
>>> fe, _ = resident_elems(wl, b, room_bytes=4096.0 + 256.0, ar=EXACT)
>>> fe.tolist()  # the 4096 weight bytes fit, then the 256 bytes of keys
[0.0, 0.0]
>>> resident_elems(wl, b, room_bytes=4000.0, ar=EXACT)[0].tolist()  # only the keys fit
[4096.0, 0.0]
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from hw import arith
from hw.arith import EXACT, Arith
from hw.types import LayerBits, NPUConfig, Workload
from hw.x64 import x64


@dataclasses.dataclass(frozen=True)
class LLMStep:
    """Static description of a decoder step searched as a workload (hashable: a jit key)."""

    tokens: int  # tokens the step processes: batch (decode) or batch * prompt (prefill)
    kv_bits: float | None = None  # the KV cache's width; None: the activations'
    resident: bool = False  # decode: weights and KV cache may stay in SRAM across tokens

    def __post_init__(self):
        if not (isinstance(self.tokens, int) and self.tokens >= 1):
            raise ValueError(f"LLM step tokens must be a positive integer, got {self.tokens!r}")
        kv = self.kv_bits
        if kv is not None and not 2 <= kv <= 16:
            raise ValueError(f"LLM step kv_bits must be in 2..16, got {kv!r}")


def _masks(workload: Workload):
    kinds = np.array(workload.kinds)
    return kinds == "dense", kinds == "matmul", kinds == "kv_store"


@x64
def operand_bits(workload: Workload, w_bits, a_bits, step: LLMStep) -> LayerBits:
    """Per-layer widths from the design's (``shape=(..., L)``): keys and values (the matmuls'
    right operand) and the ``kv_store`` writes at the KV width."""
    _, matmul, store = _masks(workload)
    kv = a_bits if step.kv_bits is None else jnp.full_like(a_bits, step.kv_bits)
    return LayerBits(w_bits=jnp.where(matmul, kv, w_bits), a_bits=jnp.where(store, kv, a_bits))


def room_bytes(config: NPUConfig):
    """SRAM bytes that may hold data across tokens (``npu_dse.llm.resident_bytes``)."""
    kib = config.filter_sram_kib
    if config.unified_sram:
        kib = config.ifmap_sram_kib + config.filter_sram_kib + config.ofmap_sram_kib
    return 0.5 * 1024.0 * kib


@x64
def resident_elems(workload: Workload, bits: LayerBits, room_bytes, ar: Arith = EXACT):
    """``(filter_elems, ofmap_elems)`` with the resident weights and KV cache removed (see
    the module docstring; smooth ``ar``: weighted by the smooth indicators)."""
    dense, matmul, store = _masks(workload)
    filt_bytes = workload.filter_elems * bits.w_bits / 8.0
    w_bytes = jnp.sum(jnp.where(dense, filt_bytes, 0.0), axis=-1)
    kv_bytes = jnp.sum(jnp.where(matmul, filt_bytes, 0.0), axis=-1)
    r_w = 1.0 - arith.step((w_bytes - room_bytes) / room_bytes, ar)
    r_kv = 1.0 - arith.step((kv_bytes + r_w * w_bytes - room_bytes) / room_bytes, ar)
    keep_filter = 1.0 - jnp.where(dense, r_w, 0.0) - jnp.where(matmul, r_kv, 0.0)
    keep_ofmap = 1.0 - jnp.where(store, r_kv, 0.0)
    return workload.filter_elems * keep_filter, workload.ofmap_elems * keep_ofmap


@x64
def apply(config: NPUConfig, workload: Workload, w_bits, a_bits, step: LLMStep, ar=EXACT):
    """``(config, workload, layer_bits)`` of the step on one design: multipliers as wide as
    the widest right operand, widths per operand class, resident operands removed from the
    DRAM traffic (decode)."""
    bits = operand_bits(workload, w_bits, a_bits, step)
    gemm = workload.gemm_count > 0
    w_hw = arith.max_along(jnp.where(gemm, bits.w_bits, 0.0), ar)
    config = dataclasses.replace(config, w_bits=w_hw, a_bits=arith.max_along(a_bits, ar))
    if step.resident:
        filt, ofmap = resident_elems(workload, bits, room_bytes(config), ar)
        workload = dataclasses.replace(workload, filter_elems=filt, ofmap_elems=ofmap)
    return config, workload, bits
