"""Systolic MAC array: folds, per-fold latency, mapping efficiency and SRAM traffic.

One module for the three dataflows. A GEMM ``(M x K) . (K x N)`` is placed on an array of
``R`` rows and ``C`` columns by choosing which dimension runs along the rows (``Sr``), along
the columns (``Sc``) and in time (``T``) (SCALE-Sim 3.0.0, ``scalesim/compute/``):

==========  ====  ====  ====  =====================================
dataflow    Sr    Sc    T     stationary in the PEs
==========  ====  ====  ====  =====================================
os          M     N     K     outputs (partial sums)
ws          K     N     M     weights
is          K     M     N     inputs
==========  ====  ====  ====  =====================================

The array processes ``F = ceil(Sr / R) * ceil(Sc / C)`` folds one after another; a partial fold
takes as long as a full one. A fold takes ``T + (R - 1) + (C - 1)`` cycles to stream ``T``
operand wavefronts through the skewed array and drain it, plus ``R`` cycles to preload the
stationary operand for ws and is:

    cycles = F * (T + R + C - 2 + [dataflow != os] * R)

which equals SCALE-Sim's cycle count (its ``total_cycles`` + 1) on every no-stall reference row.
The SRAM counts are those of SCALE-Sim's demand matrices, in words:

==========  =================  =================  ==============================
dataflow    ifmap reads        filter reads       ofmap writes
==========  =================  =================  ==============================
os          M K ceil(N/C)      K N ceil(M/R)      M N + F (R + C)
ws          M K ceil(N/C)      K N                M N ceil(K/R)
is          M K                K N ceil(M/C)      M N ceil(K/R)
==========  =================  =================  ==============================

(the ``F (R + C)`` term of os is the simulator's own count of its output drain and is kept for
parity; it is below 3 % of the writes on the reference layers).
"""

from __future__ import annotations

import jax.numpy as jnp

from hw import arith
from hw.arith import Arith


def spatial_temporal(m, k, n, dataflow):
    """``(Sr, Sc, T)`` for a dataflow code (0 os, 1 ws, 2 is); broadcasts over arrays."""
    is_os, is_ws = dataflow == 0, dataflow == 1
    sr = jnp.where(is_os, m, k)
    sc = jnp.where(is_os | is_ws, n, m)
    t = jnp.where(is_os, k, jnp.where(is_ws, m, n))
    return sr, sc, t


def folds(m, k, n, rows, cols, dataflow, ar: Arith):
    """Row folds, column folds: ``ceil(Sr / R)``, ``ceil(Sc / C)``."""
    sr, sc, _ = spatial_temporal(m, k, n, dataflow)
    return arith.ceil_div(sr, rows, ar), arith.ceil_div(sc, cols, ar)


def fold_cycles(m, k, n, rows, cols, dataflow):
    """Cycles of one fold: ``T + R + C - 2``, plus ``R`` preload cycles for ws and is."""
    _, _, t = spatial_temporal(m, k, n, dataflow)
    preload = jnp.where(dataflow == 0, 0, rows)
    return t + rows + cols - 2 + preload


def compute_cycles(m, k, n, rows, cols, dataflow, ar: Arith):
    """Cycles of one GEMM with no memory stalls: ``folds * fold_cycles``."""
    fr, fc = folds(m, k, n, rows, cols, dataflow, ar)
    return fr * fc * fold_cycles(m, k, n, rows, cols, dataflow)


def mapping_efficiency(m, k, n, rows, cols, dataflow, ar: Arith):
    """Share of the PEs that hold work, averaged over folds: ``Sr Sc / (F R C)`` (0-1)."""
    sr, sc, _ = spatial_temporal(m, k, n, dataflow)
    fr, fc = folds(m, k, n, rows, cols, dataflow, ar)
    return (sr * sc) / jnp.maximum(fr * rows * fc * cols, 1)


def sram_traffic(m, k, n, rows, cols, dataflow, ar: Arith):
    """Words the array reads from the ifmap and filter SRAMs and writes to the ofmap SRAM.

    Returns ``(ifmap_reads, filter_reads, ofmap_writes)`` for one GEMM (see the module table).
    """
    fr, fc = folds(m, k, n, rows, cols, dataflow, ar)
    is_os, is_ws = dataflow == 0, dataflow == 1
    ifmap = m * k * jnp.where(is_os | is_ws, fc, 1)
    filt = k * n * jnp.where(is_os, fr, jnp.where(is_ws, 1, fc))
    ofmap = jnp.where(is_os, m * n + fr * fc * (rows + cols), m * n * fr)
    return ifmap, filt, ofmap
