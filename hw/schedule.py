"""Where each layer runs (NPU or host) and which intermediates fusion keeps on chip.

Both are decided from static metadata (layer kinds, ``NPUConfig.unsupported_ops``,
``NPUConfig.fusion``) as NumPy masks; ``hw.cost.evaluate`` passes them into its compiled
program as arguments, so that the program does not depend on the kinds.

Layers run in order and each consumes the output of the one before it (a residual ``add``
reads its second input from DRAM). With fusion on, the edge ``i-1 -> i`` stays on chip when
both layers run on the NPU and

* layer ``i`` is an elementwise or pooling op (``relu``, ``gelu``, ``add``, ``pool``,
  ``rope``, ``swiglu``, ``kv_store``) after any layer: the GEMM -> bias -> activation ->
  requantize chain of integer inference engines;
* layer ``i`` is a ``softmax`` after a ``matmul`` (attention scores) or a ``matmul`` after a
  ``softmax`` (attention probabilities into ``A V``): a fused attention block.

A fused edge removes the producer's DRAM write of its output and the consumer's DRAM read of
it; the data still passes through SRAM, tile by tile, so no capacity is needed for the whole
tensor.

>>> from hw import layers
>>> wl = layers.workload([layers.dense("fc", in_features=8, out_features=8, tokens=4),
...                       layers.vector("act", "relu", elems=32)])
>>> fused_edges(wl.kinds, unsupported=(), fusion=True).tolist()
[False, True]
"""

from __future__ import annotations

import numpy as np

LAYER_KINDS = (
    "conv",
    "depthwise",
    "dense",
    "gemm",
    "matmul",
    "relu",
    "add",
    "softmax",
    "layernorm",
    "gelu",
    "pool",
    "rmsnorm",
    "rope",
    "swiglu",
    "kv_store",
    "embed",
)
"""Every value of ``Workload.kinds``."""

_ELEMENTWISE = frozenset({"relu", "gelu", "add", "pool", "rope", "swiglu", "kv_store"})


HOST_ONLY = "host"
"""Kind of a layer no NPU runs (an imported op the cost model does not know)."""


def on_host(kinds: tuple[str, ...], unsupported: tuple[str, ...]) -> np.ndarray:
    """True where the layer's kind is one the NPU does not support, shape=(L,)."""
    return np.isin(np.asarray(kinds, dtype=str), [*unsupported, HOST_ONLY])


def fused_edges(kinds: tuple[str, ...], unsupported: tuple[str, ...], fusion: bool):
    """``fused[i]``: layer ``i`` reads layer ``i-1``'s output on chip, shape=(L,)."""
    names = np.asarray(kinds, dtype=str)
    fused = np.zeros(len(names), dtype=bool)
    if not fusion or len(names) < 2:
        return fused
    host = on_host(kinds, unsupported)
    prev, cur = names[:-1], names[1:]
    chain = np.isin(cur, sorted(_ELEMENTWISE))
    scores = (prev == "matmul") & (cur == "softmax")
    attention = scores | ((prev == "softmax") & (cur == "matmul"))
    fused[1:] = (chain | attention) & ~host[1:] & ~host[:-1]
    return fused


def kept_on_chip(kinds, unsupported, fusion) -> tuple[np.ndarray, np.ndarray]:
    """``(output_stays, input_on_chip)``, shape=(L,) each: layer ``i``'s output is not
    written to DRAM (the next layer fuses it), and layer ``i``'s first input is not read
    from DRAM (it fuses the previous layer)."""
    fused = fused_edges(kinds, unsupported, fusion)
    return np.append(fused[1:], False), fused
