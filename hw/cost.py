"""The cost model: ``evaluate(config, workload, mapping, arithmetic) -> CostReport``.

Per layer (``l``), with ``G`` GEMMs of one shape:

    compute_l = G * folds * fold_cycles                      (hw.mac_array, SCALE-Sim exact)
                or the channel-parallel folds of a grouped conv   (hw.grouped)
    vector_l  = ceil(vector_ops / vector_lanes)
    dram_l    = DRAM bytes / (bytes per cycle)               (hw.memory)
    total_l   = max(compute_l + vector_l + host_l, dram_l) + prologue_l + epilogue_l
    energy_l  = MACs * e_mac(w, a, acc)                      (hw.tech)
              + MACs * hop_bits * e_reg                      operands moving between PEs
              + sum over operands of PE-local bits * e_rf       PE-local storage (below)
              + sum over buffers of bits accessed * e_sram(size / banks)
              + DRAM bits * e_dram + vector_ops * e_vec + P_leak * total_l / f_clk
              + host_l energy (fallback layers only)

A PE with a local level (``pe_local_bytes``, or a technology file's ``rf_pj_per_bit``) stages
its operands there, as Eyeriss's PE does in its ifmap, filter and psum scratchpads (Chen et al.,
JSSC 2017): every MAC reads its weight and its input from the level and reads and writes its
partial sum there, and every word the array takes from (or gives to) a buffer is written into
(or read from) a PE's level once. Per operand, in words:

    ifmap  MACs + SRAM ifmap reads          filter  MACs + SRAM filter reads
    ofmap  2 MACs + SRAM ofmap writes + partial sums read back from the ofmap SRAM

so the reuse of an operand inside the PE, ``MACs / SRAM words``, is the dataflow's: SCALE-Sim's
access counts (hw.mac_array) give it per dataflow (os keeps partial sums in the PE until the
output is done; ws and is write one per fold of K and read it back).

A layer whose kind is in ``config.unsupported_ops`` runs on the host (``host_l``: host
compute plus the link transfers, :func:`_host`) and costs the NPU nothing but DRAM traffic and
leakage while it waits; fused edges (hw.schedule) skip the DRAM round trip of an intermediate.
With ``NPUConfig.cross_layer`` an output that fits on chip stays there for the next layer, and
with ``steady_state`` weights that fit stay on chip across inferences (hw.residency).

With ``stall=False`` the DRAM is infinitely fast (``total = compute + vector``), as in
SCALE-Sim's CALC bandwidth mode. Everything is a pure function of pytrees: jit it, vmap it
over designs or layers, and differentiate it with ``Arith.smooth(t)``.

>>> from hw import presets, layers
>>> wl = layers.workload([layers.gemm("g", m=64, k=64, n=64)])
>>> rep = evaluate(presets.get_preset("scalesim-32x32"), wl, stall=False)
>>> int(rep.compute_cycles[0])  # 2 x 2 folds of 64 + 32 + 32 - 2 cycles (os)
504
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp

from hw import arith, buckets, grouped, memory, residency, scalesim_memory, schedule, tech
from hw.arith import EXACT, Arith
from hw.mapper import default_mapping, min_tiles  # noqa: F401 (re-exported)
from hw.types import (
    CostReport,
    DramTraffic,
    LayerBits,
    Mapping,
    NPUConfig,
    SramAccesses,
    Workload,
    anonymous,
)
from hw.x64 import x64


def _layer_bits(config: NPUConfig, layer_bits) -> LayerBits:
    """``layer_bits`` as :class:`LayerBits`; ``None``: the config's widths for every layer."""
    if layer_bits is None:
        return LayerBits.of(config)
    if isinstance(layer_bits, LayerBits):
        return layer_bits
    return LayerBits(*layer_bits)


def _sram_pj(bits_accessed, size_kib, t, name):
    return bits_accessed * tech.buffer_pj_per_bit(name, size_kib, t)


def _energy(
    config: NPUConfig,
    workload: Workload,
    bits: LayerBits,
    sram: SramAccesses,
    dram: DramTraffic,
    npu,
) -> dict:
    """Energy terms per layer on the NPU, pJ (see the module docstring); ``npu`` masks out
    the layers that fall back to the host."""
    t = config.tech
    macs = jnp.where(npu, workload.macs, 0)
    g = jnp.where(npu, workload.gemm_count, 0)
    hop_bits = bits.a_bits + jnp.where(config.dataflow == 0, bits.w_bits, config.acc_bits)
    psum_reads = jnp.maximum(sram.ofmap_writes - g * workload.gemm_m * workload.gemm_n, 0)
    sizes = (config.ifmap_sram_kib, config.filter_sram_kib, config.ofmap_sram_kib)
    if config.unified_sram:
        sizes = (sum(sizes),) * 3
    # Each buffer is banked to feed one word per array row (ifmap) or column (filter, ofmap)
    # per cycle, and an access touches one bank: energy follows the bank size.
    banks = (config.rows, config.cols, config.cols)
    sizes = tuple(s / b for s, b in zip(sizes, banks, strict=True))
    vec_elems = jnp.where(npu & (g == 0), workload.ifmap_elems + workload.ofmap_elems, 0)
    ifmap_bits = (
        sram.ifmap_reads * bits.a_bits + 8 * dram.ifmap_read_bytes + vec_elems * bits.a_bits
    )
    filter_bits = sram.filter_reads * bits.w_bits + 8 * dram.filter_read_bytes
    ofmap_bits = (sram.ofmap_writes + psum_reads) * config.acc_bits + 8 * (
        dram.ofmap_write_bytes + dram.ofmap_read_bytes
    )
    energy_sram = (
        _sram_pj(ifmap_bits, sizes[0], t, "ifmap")
        + _sram_pj(filter_bits, sizes[1], t, "filter")
        + _sram_pj(ofmap_bits, sizes[2], t, "ofmap")
    )
    energy_rf = (
        (macs + sram.ifmap_reads) * bits.a_bits * tech.pe_local_pj_per_bit("ifmap", config)
        + (macs + sram.filter_reads) * bits.w_bits * tech.pe_local_pj_per_bit("filter", config)
        + (2 * macs + sram.ofmap_writes + psum_reads)
        * config.acc_bits
        * tech.pe_local_pj_per_bit("ofmap", config)
    )
    return {
        "energy_mac_pj": macs * tech.layer_mac_pj(bits.w_bits, bits.a_bits, config),
        "energy_array_pj": macs * hop_bits * t.reg_pj_per_bit,
        "energy_rf_pj": energy_rf,
        "energy_sram_pj": energy_sram,
        "energy_dram_pj": 8.0 * dram.total_bytes * t.dram_pj_per_bit,
        "energy_vector_pj": jnp.where(npu, workload.vector_ops, 0) * t.vector_pj_per_op,
    }


def _host(config: NPUConfig, workload: Workload, bits: LayerBits, host, ar: Arith):
    """Fallback layers: ``(core cycles, pJ)`` of host compute plus the transfers out and back.

    ``seconds = (2 MACs + vector ops) / host_ops_per_s + (inputs + outputs) bytes / link_Bps``;
    ``energy = ops * e_host_op + bytes * e_link`` (hw.tech). Weights of a fallback layer live
    on the host and do not cross the link.
    """
    link_bytes = (workload.ifmap_elems + workload.ofmap_elems) * bits.a_bits / 8.0
    ops = 2.0 * workload.macs + workload.vector_ops
    seconds = ops / (config.host_gops * 1e9) + link_bytes / (config.host_link_gbps * 1e9)
    cycles = arith.ceil(seconds * config.clock_mhz * 1e6, ar)
    energy = ops * config.tech.host_pj_per_op + link_bytes * config.tech.host_pj_per_byte
    return jnp.where(host, cycles, 0.0), jnp.where(host, energy, 0.0)


@x64
def evaluate(
    config: NPUConfig,
    workload: Workload,
    mapping: Mapping | None = None,
    ar: Arith = EXACT,
    stall: bool = True,
    layer_bits: LayerBits | None = None,
    steady_state: bool = False,
) -> CostReport:
    """Cycles, traffic, energy and area of a workload on one design (see the module docs).

    Checks nothing (it is traced, vmapped and differentiated): values outside the ranges of
    ``hw.bounds`` give meaningless numbers (a zero dimension, an int64 overflow).
    ``hw.validate.checked_evaluate`` runs every boundary check first; ``npu_dse.simulate``
    validates too.

    Args:
      config: the design; a batch of designs goes through ``jax.vmap``.
      workload: the layers, shape=(L,) fields.
      mapping: per-layer tiles and loop orders; ``None`` picks :func:`default_mapping`.
      ar: ``EXACT`` for reporting, ``Arith.smooth(t)`` for gradients.
      stall: False for infinite DRAM bandwidth (compute cycles only).
      layer_bits: the layers' operand widths (:class:`~hw.types.LayerBits`, or a
        ``(w_bits, a_bits)`` pair), at most the config's, which size the multipliers. They set
        MAC energy, traffic and tile sizes per layer; area and leakage follow the config's
        widths. ``None``: every layer at the config's widths.
      steady_state: an inference in a stream: weights that fit stay on chip from the one
        before (hw.residency); False: a single (cold) inference.

    The compiled program is keyed on the layer count and the config's code-path switches, not
    on names or layer kinds: what the kinds decide (which layers run on the host, which edges
    fuse, which layers are grouped convs) goes in as per-layer masks, so that every workload
    of one length shares one program; a top-level call pads the workload to a bucket of
    lengths (:mod:`hw.buckets`), so that workloads of nearby lengths share it too.
    """
    host = schedule.on_host(workload.kinds, config.unsupported_ops)
    fused = schedule.fused_edges(workload.kinds, config.unsupported_ops, config.fusion)
    grouped_ = grouped.grouped_layers(workload.kinds)
    any_grouped = bool(grouped_.any())
    anon_config, anon_workload = anonymous(config, workload)
    n = len(workload.kinds)
    size = buckets.bucket(n) if buckets.applies(config, workload, mapping, ar, layer_bits) else n
    if size != n:  # a top-level call: the bucket's program (hw.buckets)
        anon_workload = buckets.pad_workload(anon_workload, size)
        mapping = buckets.pad_mapping(mapping, n, size)
        layer_bits = buckets.pad_bits(layer_bits, n, size)
        host = buckets.pad_mask(host, size, True)
        fused = buckets.pad_mask(fused, size, False)
        grouped_ = buckets.pad_mask(grouped_, size, False)
    rep = _evaluate(
        anon_config, anon_workload, mapping, ar, layer_bits, host, fused, grouped_,
        stall=stall, steady_state=steady_state, any_grouped=any_grouped,
    )  # fmt: skip
    if size != n:
        rep = buckets.cut_report(rep, n)
    return dataclasses.replace(rep, names=workload.names)


@functools.partial(jax.jit, static_argnames=("stall", "steady_state", "any_grouped"))
def _evaluate(
    config: NPUConfig,
    workload: Workload,
    mapping: Mapping | None,
    ar: Arith,
    layer_bits,
    host,
    fused,
    grouped_layers,
    stall: bool,
    steady_state: bool,
    any_grouped: bool,
) -> CostReport:
    """:func:`evaluate` on an anonymous workload, with its kinds' masks (shape=(L,) each)."""
    bits = _layer_bits(config, layer_bits)
    if mapping is None:
        mapping = default_mapping(config, workload, bits)
    in_chip = fused
    out_stays = jnp.concatenate([fused[1:], jnp.zeros((1,), dtype=bool)])
    g = workload.gemm_count
    r, c = config.rows, config.cols
    g_npu = jnp.where(host, 0, g)
    # Per-group GEMMs (SCALE-Sim) or channel-parallel, per config.grouped_lowering (hw.grouped).
    compute, (sram_i, sram_f, sram_o), map_eff, channel_parallel = grouped.lower(
        config, workload, mapping, bits, host, ar, grouped_layers, any_grouped
    )
    vector = jnp.where(host, 0, arith.ceil_div(workload.vector_ops, config.vector_lanes, ar))
    host_cycles, host_pj = _host(config, workload, bits, host, ar)
    busy = compute + vector + host_cycles
    resident, res_in, unwritten, weights_kept = residency.plan(
        config, workload, mapping, bits, host, fused, channel_parallel, steady_state
    )
    if config.memory_model == "scalesim":
        traffic, total = scalesim_memory.traffic_and_cycles(config, workload, bits, busy, ar)
        dram = memory.dram_cycles(config, traffic, ar)
    else:
        traffic = memory.dram_traffic(
            config, workload, mapping, bits, ar, host, in_chip | res_in, out_stays | unwritten,
            weights_kept,
        )  # fmt: skip
        dram = memory.dram_cycles(config, traffic, ar)
        exposed = memory.exposed_cycles(
            config, workload, mapping, bits, ar, res_in, unwritten, weights_kept
        )
        total = arith.maximum(busy, dram, ar) + jnp.where(host, 0, exposed)
    if not stall:
        total = busy
    sram = SramAccesses(ifmap_reads=sram_i, filter_reads=sram_f, ofmap_writes=sram_o)
    energy = _energy(config, workload, bits, sram, traffic, ~host)
    seconds = total / (config.clock_mhz * 1e6)
    return CostReport(
        macs=workload.macs,
        compute_cycles=compute,
        vector_cycles=vector,
        dram_cycles=dram,
        stall_cycles=total - busy,
        total_cycles=total,
        mapping_efficiency=jnp.where(g_npu > 0, map_eff, 0.0),
        utilization=jnp.where(host, 0.0, workload.macs / (r * c * jnp.maximum(total, 1))),
        sram_ifmap_reads=sram.ifmap_reads,
        sram_filter_reads=sram.filter_reads,
        sram_ofmap_writes=sram.ofmap_writes,
        dram_ifmap_read_bytes=traffic.ifmap_read_bytes,
        dram_filter_read_bytes=traffic.filter_read_bytes,
        dram_ofmap_write_bytes=traffic.ofmap_write_bytes,
        dram_ofmap_read_bytes=traffic.ofmap_read_bytes,
        energy_leak_pj=tech.leakage_w(config) * seconds * 1e12,
        fits=jnp.where((g > 0) & ~host, memory.fits(config, mapping, bits), True),
        energy_host_pj=host_pj,
        host_cycles=host_cycles,
        on_host=jnp.asarray(host),
        channel_parallel=channel_parallel,
        output_resident=resident,
        weights_resident=weights_kept,
        clock_mhz=jnp.asarray(config.clock_mhz, dtype=float),
        area_mm2=tech.area_mm2(config),
        names=workload.names,
        **energy,
    )
