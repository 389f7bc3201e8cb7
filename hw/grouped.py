"""Grouped and depthwise convolutions mapped channel-parallel, as NPUs map them.

A conv with ``g`` groups is ``g`` independent GEMMs ``(M x K) . (K x N)`` with
``K = R S C / g`` and ``N = F / g`` (``hw.layers``; depthwise: ``K = R S``, ``N = 1``).
SCALE-Sim's lowering (``NPUConfig.grouped_lowering = "gemm"``) runs them one after another on
the whole array (``hw.mac_array``, ``Sr``/``Sc``/``T`` per dataflow, ``L`` the fold latency):

    cycles_gemm = g * ceil(Sr / R) * ceil(Sc / C) * L,   L = T + R + C - 2 + [df != os] R

so a depthwise layer on ws keeps ``R S`` of ``R`` rows and one of ``C`` columns busy.

The channel-parallel lowering cuts the columns into blocks of ``Sc`` columns, one group per
block, each block working on its own group with its own operand stream; ``p`` groups run side
by side and the ``ceil(Sr / R)`` row folds reduce each group's taps along the rows:

    p           = max(floor(C / Sc), 1)
    folds_cp    = ceil(Sr / R) * ceil(g / p) * ceil(Sc / C)
    cycles_cp   = folds_cp * L                                   (same fill, stream, drain)

For a depthwise layer on ws: ``Sr = R S`` taps on the rows, ``Sc = 1`` so every column holds
its own channel (``p = C``) and the ``T = M`` output positions stream in time. On os the
columns hold the channels and the rows output positions (``T = R S`` taps stream); on is the
column dimension is the output positions, and the lowering helps only where ``M <= C / 2``.
Either ``p > 1`` (then ``Sc <= C / 2`` and ``ceil(Sc / C) = 1``) or ``p = 1`` (then
``folds_cp`` is the GEMM lowering's ``g ceil(Sr / R) ceil(Sc / C)``), so
``cycles_cp <= cycles_gemm`` always, with equality when ``p = 1`` or ``g = 1``.

Assumption (labelled): the array can feed each column block its own stream of the operand
that a GEMM broadcasts across the columns (the ifmap on ws and os, the weights on is): an NPU
with depthwise support has such a per-column path; the fill and drain are kept as they are
in the GEMM law (no credit is taken for a shorter skew).

Traffic is counted as the GEMM path counts it. A group never straddles a column fold, so
every group's operands are read from SRAM exactly as its own GEMM reads them (``g`` times the
per-group counts of ``hw.mac_array``'s table); only os's drain term ``F (R + C)`` follows the
new fold count. DRAM traffic is unchanged: the same distinct elements under the same
DRAM-level tiles and loop order, applied to each group. Because ``p`` groups' tiles are on
chip at once, the channel-parallel lowering is only chosen where ``p`` double-buffered tile
sets fit the buffers (:func:`fits`).

``grouped_lowering = "auto"`` picks per layer the lowering with fewer exact compute cycles,
ties to the GEMM lowering; both are computed and the pick is a ``jnp.where``, so the smooth
model stays differentiable (the pick itself is made in exact arithmetic).

>>> from hw.arith import EXACT
>>> # depthwise 3x3 over 14x14x64 on a 32x32 ws array: M = 196, K = 9, N = 1, g = 64
>>> int(64 * mac_array.compute_cycles(196, 9, 1, 32, 32, 1, EXACT))  # 64 folds of 290
18560
>>> int(compute_cycles(196, 9, 1, 64, 32, 32, 1, EXACT))  # 32 channels a fold: 2 folds
580
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from hw import arith, mac_array, memory
from hw.arith import EXACT, Arith
from hw.types import LayerBits, Mapping, NPUConfig, Workload

GROUPED_LOWERINGS = ("auto", "gemm")
"""Values of ``NPUConfig.grouped_lowering``: ``auto`` chooses per layer between the GEMM and
the channel-parallel lowering; ``gemm`` keeps SCALE-Sim's per-group GEMMs everywhere."""

GROUPED_KINDS = ("conv", "depthwise")
"""Layer kinds whose ``gemm_count`` counts conv groups (other kinds' copies are heads or batch)."""


def grouped_layers(kinds: tuple[str, ...]) -> np.ndarray:
    """True where the layer's kind is in :data:`GROUPED_KINDS`, shape=(L,)."""
    return np.isin(np.asarray(kinds, dtype=str), GROUPED_KINDS)


def groups_side_by_side(m, k, n, cols, dataflow, ar: Arith):
    """``p = max(floor(C / Sc), 1)``: groups that share one column fold."""
    _, sc, _ = mac_array.spatial_temporal(m, k, n, dataflow)
    sc = jnp.maximum(sc, 1)  # vector-only layers (no GEMM): keep the division finite
    # floor(C / Sc) = ceil((C - Sc + 1) / Sc) for integers; the clip keeps it at 1 for Sc > C.
    return arith.ceil_div(jnp.maximum(cols - sc + 1, 1), sc, ar)


def folds(m, k, n, g, rows, cols, dataflow, ar: Arith):
    """Row folds and column folds of the channel-parallel lowering:
    ``ceil(Sr / R)``, ``ceil(g / p) * ceil(Sc / C)``."""
    fr, fc = mac_array.folds(m, k, n, rows, cols, dataflow, ar)
    p = groups_side_by_side(m, k, n, cols, dataflow, ar)
    return fr, arith.ceil_div(g, p, ar) * fc


def compute_cycles(m, k, n, g, rows, cols, dataflow, ar: Arith):
    """Cycles of all ``g`` groups with no memory stalls: ``folds_cp * L`` (module docs)."""
    fr, fc = folds(m, k, n, g, rows, cols, dataflow, ar)
    return fr * fc * mac_array.fold_cycles(m, k, n, rows, cols, dataflow)


def mapping_efficiency(m, k, n, g, rows, cols, dataflow, ar: Arith):
    """Share of the PEs holding work, averaged over folds: ``g Sr Sc / (F R C)`` (0-1)."""
    sr, sc, _ = mac_array.spatial_temporal(m, k, n, dataflow)
    fr, fc = folds(m, k, n, g, rows, cols, dataflow, ar)
    return (g * sr * sc) / jnp.maximum(fr * rows * fc * cols, 1)


def sram_traffic(m, k, n, g, rows, cols, dataflow, ar: Arith):
    """Words read from the ifmap and filter SRAMs and written to the ofmap SRAM by all ``g``
    groups: ``g`` times the per-group counts, os's drain term at ``F_cp (R + C)``."""
    ifmap, filt, ofmap = mac_array.sram_traffic(m, k, n, rows, cols, dataflow, ar)
    fr, fc = folds(m, k, n, g, rows, cols, dataflow, ar)
    ofmap_cp = jnp.where(dataflow == 0, g * m * n + fr * fc * (rows + cols), g * ofmap)
    return g * ifmap, g * filt, ofmap_cp


def fits(config: NPUConfig, mapping: Mapping, bits: LayerBits, p):
    """True where ``p`` groups' double-buffered tile sets fit the buffers, shape=(L,)."""
    a, w, o = (p * t for t in memory.tile_bytes(config, mapping, bits))
    sizes = (config.ifmap_sram_kib, config.filter_sram_kib, config.ofmap_sram_kib)
    if config.unified_sram:
        return 1024.0 * sum(sizes) >= 2.0 * (a + w + o)
    ok = [1024.0 * s >= 2.0 * t for s, t in zip(sizes, (a, w, o), strict=True)]
    return ok[0] & ok[1] & ok[2]


def lower(
    config: NPUConfig,
    workload: Workload,
    mapping: Mapping,
    bits: LayerBits,
    host,
    ar: Arith,
    grouped=None,
    any_grouped: bool | None = None,
):
    """The array's work per layer under ``config.grouped_lowering``.

    ``grouped``: the layers whose copies are conv groups (:func:`grouped_layers`, from the
    kinds where ``None``), possibly traced; ``any_grouped`` (static): whether any layer is.

    Returns ``(compute_cycles, (ifmap_reads, filter_reads, ofmap_writes), mapping_efficiency,
    channel_parallel)``, shape=(L,) each, with host layers at zero work. In ``gemm`` mode (or
    where the pick goes to the GEMM lowering) these are SCALE-Sim's per-group GEMM figures.
    """
    m, k, n, g = workload.gemm_m, workload.gemm_k, workload.gemm_n, workload.gemm_count
    r, c, df = config.rows, config.cols, config.dataflow
    g_npu = jnp.where(host, 0, g)
    compute = g_npu * mac_array.compute_cycles(m, k, n, r, c, df, ar)
    sram = tuple(g_npu * x for x in mac_array.sram_traffic(m, k, n, r, c, df, ar))
    eff = mac_array.mapping_efficiency(m, k, n, r, c, df, ar)
    if grouped is None:
        grouped = grouped_layers(workload.kinds)
    if any_grouped is None:
        any_grouped = bool(np.asarray(grouped).any())
    if config.grouped_lowering == "gemm" or not any_grouped:
        return compute, sram, eff, jnp.zeros(jnp.shape(compute), dtype=bool)
    exact_gemm = g_npu * mac_array.compute_cycles(m, k, n, r, c, df, EXACT)
    exact_cp = jnp.where(host, 0, compute_cycles(m, k, n, g, r, c, df, EXACT))
    p = groups_side_by_side(m, k, n, c, df, EXACT)
    cp = grouped & (g > 1) & (exact_cp < exact_gemm) & fits(config, mapping, bits, p)
    compute = jnp.where(cp, compute_cycles(m, k, n, g, r, c, df, ar), compute)
    sram_cp = sram_traffic(m, k, n, g, r, c, df, ar)
    sram = tuple(jnp.where(cp, x_cp, x) for x_cp, x in zip(sram_cp, sram, strict=True))
    eff = jnp.where(cp, mapping_efficiency(m, k, n, g, r, c, df, ar), eff)
    return compute, sram, eff, cp
