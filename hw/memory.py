"""Memory hierarchy: tiles against buffer capacities, DRAM traffic per loop order, stalls.

A layer's GEMM is tiled for the SRAMs: tiles of ``tm x tk`` inputs, ``tk x tn`` weights and
``tm x tn`` outputs are double-buffered (two of each fit, so the next tile loads while the
array works on the current one). The three DRAM-level loops run over ``nm = ceil(M / tm)``,
``nk = ceil(K / tk)`` and ``nn = ceil(N / tn)`` tiles in one of three orders, named by the
operand whose tile stays put while the innermost loop runs (``hw.types.LOOP_ORDERS``):

==========  ===========  =====================  =====================  ==================
order       loops        ifmap fetches          weight fetches         partial-sum spills
==========  ===========  =====================  =====================  ==================
out         m, n, k      nn if nk > 1           nm if nn > 1 or nk>1   none
weight      n, k, m      nn if nk>1 or nm > 1   1                      nk - 1 if nm > 1
input       m, k, n      1                      nm if nk>1 or nn > 1   nk - 1 if nn > 1
==========  ===========  =====================  =====================  ==================

An operand is fetched again for every iteration of its irrelevant loop when that loop sits
outside a relevant loop with more than one trip (the usual reuse analysis of Timeloop and
ZigZag, for a two-level hierarchy). Fetch counts multiply the distinct elements of the operand
(``Workload.ifmap_elems``...; halo overlap of conv tiles is ignored). A spilled partial sum is
written and read back at ``acc_bits``; final outputs are written at ``a_bits``.

The per-layer latency is a roofline with overlap (DOSA, MICRO 2023, section IV):

    total = max(compute, dram) + prologue + epilogue

where ``dram`` is the transfer time of all DRAM traffic at the configured bandwidth (the three
streams share it, or each has its own with ``dram_per_stream``), ``prologue`` the load of the
first input and weight tiles (nothing to overlap with yet) and ``epilogue`` the write-back of
the last output tile.
"""

from __future__ import annotations

import jax.numpy as jnp

from hw import arith
from hw.arith import Arith
from hw.types import DramTraffic, LayerBits, Mapping, NPUConfig, Workload


def bw_bytes_per_cycle(config: NPUConfig):
    """DRAM bytes per core cycle: ``GB/s * 1e9 / (MHz * 1e6)``."""
    return config.dram_bw_gbps * 1e3 / config.clock_mhz


def tile_bytes(config: NPUConfig, mapping: Mapping, bits: LayerBits):
    """Bytes of one input, weight and output (accumulator) tile, shape=(L,) each:
    ``tm tk a / 8``, ``tk tn w / 8`` and ``tm tn acc / 8`` at the layers' widths ``bits``."""
    tm, tk, tn = mapping.tile_m, mapping.tile_k, mapping.tile_n
    return (
        tm * tk * bits.a_bits / 8.0,
        tk * tn * bits.w_bits / 8.0,
        tm * tn * config.acc_bits / 8.0,
    )


def capacity_slack(config: NPUConfig, mapping: Mapping, bits: LayerBits):
    """Free SRAM bytes left by double-buffered tiles (negative: the tiles do not fit).

    Returns ``(ifmap, filter, ofmap)`` slacks, shape=(L,) each; with ``unified_sram`` all three
    are the slack of the shared buffer.
    """
    a, w, o = tile_bytes(config, mapping, bits)
    sizes = (config.ifmap_sram_kib, config.filter_sram_kib, config.ofmap_sram_kib)
    if config.unified_sram:
        total = 1024.0 * sum(sizes) - 2.0 * (a + w + o)
        return total, total, total
    return tuple(1024.0 * s - 2.0 * t for s, t in zip(sizes, (a, w, o), strict=True))


def fits(config: NPUConfig, mapping: Mapping, bits: LayerBits):
    """True where every double-buffered tile fits its SRAM, shape=(L,)."""
    si, sf, so = capacity_slack(config, mapping, bits)
    return (si >= 0) & (sf >= 0) & (so >= 0)


def fetch_factors(workload: Workload, mapping: Mapping, ar: Arith):
    """``(ifmap, weight, spill)`` fetch multipliers of the loop-order table, shape=(L,) each.

    ``spill`` is the number of extra partial-sum round trips per output element (``nk - 1``
    or 0).
    """
    # Tiles below 1 (vector layers, or a search stepping out of its box) count as 1.
    nm = arith.ceil_div(workload.gemm_m, jnp.maximum(mapping.tile_m, 1), ar)
    nk = arith.ceil_div(workload.gemm_k, jnp.maximum(mapping.tile_k, 1), ar)
    nn = arith.ceil_div(workload.gemm_n, jnp.maximum(mapping.tile_n, 1), ar)

    def many(n):  # 1 if the loop has more than one trip
        # Ten times sharper than the trip count's own smoothing: it multiplies another count
        # (the refetches of every tile), so a leak of 0.16 at t = 0.3 was a 500-fold bias.
        return arith.step(10.0 * (n - 1.5), ar)

    def either(p, q):
        return p + q - p * q

    order = mapping.loop_order
    is_out, is_weight = order == 0, order == 1
    ifmap = jnp.where(
        is_out,
        1 + (nn - 1) * many(nk),
        jnp.where(is_weight, 1 + (nn - 1) * either(many(nk), many(nm)), 1.0),
    )
    weight = jnp.where(is_weight, 1.0, 1 + (nm - 1) * either(many(nk), many(nn)))
    spill = jnp.where(is_out, 0.0, (nk - 1) * jnp.where(is_weight, many(nm), many(nn)))
    return ifmap, weight, spill


def dram_traffic(
    config: NPUConfig,
    workload: Workload,
    mapping: Mapping,
    bits: LayerBits,
    ar: Arith,
    host=False,
    in_chip=False,
    out_stays=False,
    weights_on_chip=False,
) -> DramTraffic:
    """DRAM bytes per layer of the four streams.

    Vector-only layers (no GEMM) read their inputs and write their outputs once, and so do
    fallback layers (``host``; their weights live on the host). A layer whose input is the
    previous layer's output kept on chip (``in_chip``, hw.schedule) does not read those
    elements; one whose output stays on chip (``out_stays``) does not write it. Weights kept
    on chip across inferences (``weights_on_chip``, hw.residency) are not read.
    """
    f_in, f_w, spill = fetch_factors(workload, mapping, ar)
    streams = (workload.gemm_count > 0) & ~jnp.asarray(host)
    f_in = jnp.where(streams, f_in, 1.0)
    f_w = jnp.where(streams & ~jnp.asarray(weights_on_chip), f_w, 0.0)
    spill = jnp.where(streams, spill, 0.0)
    a_b, w_b, acc_b = bits.a_bits / 8.0, bits.w_bits / 8.0, config.acc_bits / 8.0
    prev_out = jnp.concatenate(
        [jnp.zeros_like(workload.ofmap_elems[..., :1]), workload.ofmap_elems[..., :-1]], axis=-1
    )
    from_dram = jnp.maximum(workload.ifmap_elems - jnp.where(in_chip, prev_out, 0), 0)
    psum_bytes = spill * workload.ofmap_elems * acc_b
    return DramTraffic(
        ifmap_read_bytes=from_dram * f_in * a_b,
        filter_read_bytes=workload.filter_elems * f_w * w_b,
        ofmap_write_bytes=jnp.where(out_stays, 0.0, workload.ofmap_elems * a_b) + psum_bytes,
        ofmap_read_bytes=psum_bytes,
    )


def dram_cycles(config: NPUConfig, traffic: DramTraffic, ar: Arith):
    """Cycles to move the traffic at the configured bandwidth: ``ceil(total_bytes / bw)``
    shared, or ``ceil(max(ifmap, filter, ofmap write + read) / bw)`` per stream."""
    bw = bw_bytes_per_cycle(config)
    if config.dram_per_stream:
        out = traffic.ofmap_write_bytes + traffic.ofmap_read_bytes
        busiest = arith.max_of((traffic.ifmap_read_bytes, traffic.filter_read_bytes, out), ar)
        return arith.ceil(busiest / bw, ar)
    return arith.ceil(traffic.total_bytes / bw, ar)


def exposed_cycles(
    config: NPUConfig,
    workload: Workload,
    mapping: Mapping,
    bits: LayerBits,
    ar: Arith,
    input_on_chip=False,
    output_on_chip=False,
    weights_on_chip=False,
):
    """Prologue + epilogue: first input and weight tiles in, last output tile out. Operands
    that stay on chip (hw.residency: ``input_on_chip``, ``output_on_chip``, ``weights_on_chip``)
    are not loaded or written back."""
    a, w, _ = tile_bytes(config, mapping, bits)
    has_gemm = workload.gemm_count > 0
    a_b = bits.a_bits / 8.0
    first_a = jnp.where(input_on_chip, 0.0, arith.minimum(a, workload.ifmap_elems * a_b, ar))
    first_w = arith.minimum(w, workload.filter_elems * bits.w_bits / 8.0, ar)
    first_w = jnp.where(weights_on_chip, 0.0, first_w)
    last_o = arith.minimum(mapping.tile_m * mapping.tile_n * a_b, workload.ofmap_elems * a_b, ar)
    last_o = jnp.where(output_on_chip, 0.0, last_o)
    bw = bw_bytes_per_cycle(config)
    # Per stream, the first input and weight tiles load side by side; shared, one after another.
    first = arith.maximum(first_a, first_w, ar) if config.dram_per_stream else first_a + first_w
    cycles = arith.ceil(first / bw, ar) + arith.ceil(last_o / bw, ar)
    return jnp.where(has_gemm, cycles, 0.0)
