"""Whole-design checks and figures of merit that every front end reports the same way.

* :func:`fit_error`: the first layer whose smallest tiles do not fit the buffers, as a line;
* :func:`full_load_power_w`: the average power of a design kept busy by one large GEMM.
"""

from __future__ import annotations

import numpy as np

from hw import cost, layers, memory
from hw.types import LayerBits, Mapping, NPUConfig, Workload

FULL_LOAD_GEMM = 4096
"""Full-load power is measured on one ``N x N x N`` GEMM of this size."""


def fit_error(config: NPUConfig, workload: Workload, fits) -> str | None:
    """``None`` if every layer's tiles fit (``fits``, shape=(L,), from ``CostReport.fits``),
    else one line naming the first layer that does not and what its smallest tiles need."""
    bad = np.flatnonzero(~np.asarray(fits))
    if bad.size == 0:
        return None
    i = int(bad[0])
    lo = cost.min_tiles(config, workload)
    smallest = Mapping(*lo, loop_order=np.zeros_like(lo[0]))
    need = [
        2.0 * np.asarray(b)[i] / 1024.0
        for b in memory.tile_bytes(config, smallest, LayerBits.of(config))
    ]
    have = (config.ifmap_sram_kib, config.filter_sram_kib, config.ofmap_sram_kib)
    more = f" ({bad.size - 1} more layers do not fit either)" if bad.size > 1 else ""
    return (
        f"layer {workload.names[i]!r} does not fit the on-chip buffers{more}: its smallest "
        "double-buffered tiles need ifmap/filter/ofmap "
        f"{'/'.join(f'{x:.3g}' for x in need)} KiB, the design has "
        f"{'/'.join(f'{float(x):.3g}' for x in have)} KiB"
        f"{' shared' if config.unified_sram else ''}; use larger buffers or a smaller array"
    )


def full_load_power_w(config: NPUConfig) -> float:
    """Average power while ``config`` runs one ``FULL_LOAD_GEMM``-cubed GEMM with no DRAM
    stalls (the array stays busy): MAC, operand movement, SRAM, DRAM-traffic and leakage
    energy divided by the compute time, W."""
    n = FULL_LOAD_GEMM
    wl = layers.workload([layers.gemm("full_load", m=n, k=n, n=n)])
    return float(cost.evaluate(config, wl, stall=False).power_w)
