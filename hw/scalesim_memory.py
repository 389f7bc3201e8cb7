"""SCALE-Sim 3.0.0's USER-bandwidth memory system, in closed form (``memory_model="scalesim"``).

The default memory model (``hw.memory``) is physical: tiles chosen to fit the buffers, each
operand fetched as often as the loop order requires. SCALE-Sim's prefetcher is different and
far more wasteful on large operands, so its stall cycles cannot be reproduced from minimal
traffic. This module reproduces its mechanism in expectation, for parity studies (read from
``scalesim/memory/read_buffer.py`` and ``double_buffered_scratchpad_mem.py`` of 3.0.0):

* A read SRAM of ``S`` words is split into an active half ``A = ceil(S / 2)`` and a prefetch
  half ``Pf = S - A``. Hits are tracked in "hash sets" of ``E = ceil(S / 100)`` words; the
  operand (``nnz`` words) has ``n = floor(nnz / E) + 1`` sets, the active window covers
  ``NA = min(ceil(A / E), n)`` of them and every miss slides it forward by
  ``NP = min(ceil(Pf / E), n - NA)`` sets, wrapping at ``n``.
* Every miss fetches ``P = ceil(Pf / bw)`` lines of ``bw`` words and costs ``P + 1`` cycles on
  that stream's serial DRAM timeline.
* The window only moves forward, so a demand that steps back out of it costs a whole trip
  round the operand (``n / NP`` misses). Back-steps come from repeated passes over an operand,
  from the reversed row order of a weight (ws) or input (is) block, and from fold boundaries.
  A back-step of ``d`` sets leaves the window with probability ``clip((d - (NA - NP)) / NP,
  0, 1)``; a ws/is block that straddles a window boundary costs 1.5 trips on average.

    misses  = round(passes * n / NP - 1 + back_trips * n / NP)      (0 if the operand fits)
    reads   = first_fill + misses * P * bw
    total   = max(compute, misses_ifmap * (P + 1), misses_filter * (P + 1),
                  (ofmap_writes - ceil(S_ofmap / 2)) / bw)

On the public reference rows of setting B this gives a median total-cycle error of 6.9 % on the
rows that stall (``benchmarks/stall_error.py``); the misses are expected values, so a layer
whose fold boundaries happen to align with window boundaries can be off by up to ~45 %.
"""

from __future__ import annotations

import jax.numpy as jnp

from hw import arith
from hw.arith import Arith
from hw.types import DramTraffic, LayerBits, NPUConfig, Workload


def _cdiv(a, b, ar):
    return arith.ceil_div(a, b, ar)


def _read_stream(nnz, fetch, s, bw, passes, jumps, d, g, jumps2, d2, ar: Arith):
    """DRAM words read, misses and lines per miss of one read buffer of ``s`` words."""
    e = _cdiv(s, 100.0, ar)
    a = _cdiv(s, 2.0, ar)
    pf = s - a
    n = jnp.floor(nnz / e) + 1
    na = jnp.minimum(_cdiv(a, e, ar), n)
    np_ = jnp.maximum(jnp.minimum(_cdiv(pf, e, ar), n - na), 1)
    lines = _cdiv(pf, bw, ar)
    first = jnp.minimum(_cdiv(a, bw, ar), _cdiv(fetch, bw, ar)) * bw
    steps = n / np_
    trips = jumps * jnp.clip((d - (na - np_)) / np_, 0.0, 1.0) * g + jumps2 * jnp.clip(
        (d2 - (na - np_)) / np_, 0.0, 1.0
    )
    misses = jnp.maximum(arith.round_(passes * steps - 1 + trips * steps, ar), 0)
    misses = jnp.where(n > na, misses, 0)
    return first + misses * lines * bw, misses, lines


def _streams(m, k, n, r, c, df, si, sf, bw, ar):
    """``(ifmap stream, filter stream, ofmap SRAM writes)`` for dataflow codes ``df``."""
    is_os, is_ws = df == 0, df == 1
    ei, ef = _cdiv(si, 100.0, ar), _cdiv(sf, 100.0, ar)
    zero = jnp.zeros_like(m * 1.0)
    one = zero + 1
    # os: row folds over M, column folds over N.
    rf_os, cf_os = _cdiv(m, r, ar), _cdiv(n, c, ar)
    # ws and is: row folds over K; column folds over N (ws) or M (is).
    rf_k = _cdiv(k, r, ar)
    cf_ws, cf_is = _cdiv(n, c, ar), _cdiv(m, c, ar)

    def pick(os_v, ws_v, is_v):
        return jnp.where(is_os, os_v, jnp.where(is_ws, ws_v, is_v))

    if_args = (
        pick(k * rf_os * r, m * rf_k * r, k * cf_is * c),  # prefetch matrix incl. fold padding
        pick(cf_os, cf_ws, one),  # passes
        pick(cf_os * (rf_os - 1), cf_ws * (rf_k - 1), rf_k * cf_is),  # back-steps
        pick(
            (r - 1) * jnp.minimum(r, rf_os * k) / ei,
            (r - 1) * jnp.minimum(r, rf_k * m) / ei,
            jnp.minimum(r, k) * c / ei,
        ),
        pick(one, one, one * 1.5),
    )
    f_args = (
        pick(k * cf_os * c, k * cf_ws * c, n * rf_k * r),
        pick(one, one, cf_is),
        pick(cf_os * (rf_os - 1), rf_k * cf_ws, cf_is * (rf_k - 1)),
        pick(k * c / ef, jnp.minimum(r, k) * c / ef, (r - 1) * jnp.minimum(r, rf_k * n) / ef),
        pick(one, one * 1.5, one),
    )
    jumps2 = jnp.where(is_os, cf_os - 1, zero)
    d2 = jnp.where(is_os, (c - 1) * jnp.minimum(c, cf_os * k) / ef, zero)
    ifmap = _read_stream(m * k, if_args[0], si, bw, *if_args[1:], zero, zero, ar)
    filt = _read_stream(k * n, f_args[0], sf, bw, *f_args[1:], jumps2, d2, ar)
    of_writes = jnp.where(is_os, m * n, m * n * rf_k)
    return ifmap, filt, of_writes


def traffic_and_cycles(config: NPUConfig, workload: Workload, bits: LayerBits, compute, ar: Arith):
    """DRAM traffic (no partial sums are read back) and total cycles per layer.

    ``compute`` is the layer's stall-free cycle count (all ``gemm_count`` GEMMs); each GEMM is
    simulated on its own, as SCALE-Sim runs one layer at a time. SRAM sizes and bandwidth are
    turned into words of the layers' operand widths ``bits``; bandwidth is per stream, as in
    SCALE-Sim.
    """
    g = workload.gemm_count
    m, k, n = (jnp.maximum(x, 1) * 1.0 for x in (workload.gemm_m, workload.gemm_k, workload.gemm_n))
    a_b, w_b = bits.a_bits / 8.0, bits.w_bits / 8.0
    bw = config.dram_bw_gbps * 1e3 / config.clock_mhz / a_b
    si = config.ifmap_sram_kib * 1024.0 / a_b
    sf = config.filter_sram_kib * 1024.0 / w_b
    so = config.ofmap_sram_kib * 1024.0 / a_b
    r, c = config.rows * 1.0, config.cols * 1.0
    ifmap, filt, of_writes = _streams(m, k, n, r, c, config.dataflow, si, sf, bw, ar)
    busy_if = ifmap[1] * (ifmap[2] + 1)
    busy_f = filt[1] * (filt[2] + 1)
    busy_of = jnp.maximum(of_writes - _cdiv(so, 2.0, ar), 0) / bw
    per_gemm = arith.max_of((compute / jnp.maximum(g, 1), busy_if, busy_f, busy_of), ar)
    traffic = DramTraffic(
        ifmap_read_bytes=g * ifmap[0] * a_b,
        filter_read_bytes=g * filt[0] * w_b,
        ofmap_write_bytes=g * of_writes * a_b,
        ofmap_read_bytes=jnp.zeros_like(m),
    )
    return traffic, jnp.where(g > 0, g * per_gemm, compute)
