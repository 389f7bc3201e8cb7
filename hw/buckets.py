"""Layer-count buckets: the cost model compiles one program per bucket of lengths, not one per
layer count.

A top-level call of ``hw.evaluate`` or ``hw.default_mapping`` on one design (inputs that are
concrete arrays, not values traced by an outer ``jit``, ``vmap`` or ``grad``; a config of
scalars, not one holding per-layer or batched values) pads its workload with empty
layers up to the next bucket length, runs the bucket's program, and cuts every per-layer
figure back to the workload's layers. An empty layer does no work and moves no data (a 1 x 1 x
1 GEMM taken 0 times, no elements, no vector operations), and it is marked as a host layer, so
that it neither fuses with the last real layer nor lets that layer's output stay on chip for
it: the real layers get exactly the figures the unpadded workload gives (tests check every
field). Inside a traced computation (a search's vmapped, differentiated evaluation) nothing is
padded: the trace is compiled once anyway, and padding would only add work.

The buckets are 8 and then four per octave: 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, ... so
beyond 8 layers at most a quarter of a bucket is padding.

>>> [bucket(n) for n in (1, 8, 9, 17, 21, 64, 65, 20_000)]
[8, 8, 10, 20, 24, 64, 80, 20480]
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from hw.types import CostReport, LayerBits, Mapping, Workload

SMALLEST = 8
"""The smallest bucket."""

_WORKLOAD_FILL = {
    "gemm_m": 1,
    "gemm_k": 1,
    "gemm_n": 1,
    "gemm_count": 0,
    "ifmap_elems": 0,
    "filter_elems": 0,
    "ofmap_elems": 0,
    "vector_ops": 0,
}
"""What an empty layer holds (every other Workload field is static)."""

_MAPPING_FILL = {"tile_m": 1, "tile_k": 1, "tile_n": 1, "loop_order": 0}

_NOT_PER_LAYER = frozenset({"weights_resident", "clock_mhz", "area_mm2"})
"""CostReport fields that are one value per design, not one per layer."""


def bucket(n: int) -> int:
    """The bucket length for ``n`` layers: at least ``n``, one of a few per octave."""
    if n <= SMALLEST:
        return SMALLEST
    base = 1 << (n.bit_length() - 1)  # the power of two at or below n
    step = base // 4
    return -(-n // step) * step


def applies(config, workload: Workload, *trees) -> bool:
    """Whether a call pads: a top-level call (no leaf of the arguments is traced) on one design
    (every leaf of ``config`` a scalar: a config holding per-layer or batched values keeps the
    workload's length) of at least one layer."""
    leaves = jax.tree_util.tree_leaves((config, workload, trees))
    if not workload.kinds or any(isinstance(x, jax.core.Tracer) for x in leaves):
        return False
    return all(np.ndim(x) == 0 for x in jax.tree_util.tree_leaves(config))


def _pad(x, length: int, size: int, fill=None):
    """``x`` with its last axis (of ``length``) grown to ``size``, the new entries ``fill``
    (``None``: the last entry repeated); scalars and other shapes unchanged."""
    a = np.asarray(x)
    if a.ndim == 0 or a.shape[-1] != length:
        return x
    widths = [(0, 0)] * (a.ndim - 1) + [(0, size - length)]
    if fill is None:
        return np.pad(a, widths, mode="edge")
    return np.pad(a, widths, constant_values=fill)


def _cut(x, length: int):
    """The first ``length`` entries of ``x``'s last axis, as a JAX array (no compilation)."""
    return jnp.asarray(np.asarray(x)[..., :length])


def pad_workload(workload: Workload, size: int) -> Workload:
    """``workload`` with empty layers up to ``size`` (blank names and kinds for them)."""
    n = len(workload.kinds)
    arrays = {f: _pad(getattr(workload, f), n, size, v) for f, v in _WORKLOAD_FILL.items()}
    blank = ("",) * (size - n)
    return dataclasses.replace(
        workload, **arrays, names=(*workload.names, *blank), kinds=(*workload.kinds, *blank)
    )


def pad_mapping(mapping: Mapping | None, length: int, size: int) -> Mapping | None:
    if mapping is None:
        return None
    fields = {f: _pad(getattr(mapping, f), length, size, v) for f, v in _MAPPING_FILL.items()}
    return Mapping(**fields)


def pad_bits(layer_bits, length: int, size: int):
    """Per-layer widths grown with the last layer's (any legal width: the layers are empty)."""
    if layer_bits is None:
        return None
    if isinstance(layer_bits, LayerBits):
        return LayerBits(*(_pad(b, length, size) for b in (layer_bits.w_bits, layer_bits.a_bits)))
    return tuple(_pad(b, length, size) for b in layer_bits)


def pad_mask(mask: np.ndarray, size: int, fill: bool) -> np.ndarray:
    return np.concatenate([mask, np.full(size - len(mask), fill, dtype=bool)])


def cut_report(report: CostReport, length: int) -> CostReport:
    """``report`` with every per-layer field cut back to the first ``length`` layers."""
    fields = {
        f.name: _cut(getattr(report, f.name), length)
        for f in dataclasses.fields(report)
        if f.name != "names" and f.name not in _NOT_PER_LAYER
    }
    return dataclasses.replace(report, **fields)


def cut_mapping(mapping: Mapping, length: int) -> Mapping:
    return Mapping(**{f: _cut(getattr(mapping, f), length) for f in _MAPPING_FILL})
