"""Core types: NPU config, workload, mapping and cost report, as frozen pytree dataclasses.

A field is a pytree leaf (traced by jit, vmapped, differentiated) iff it is a number that a
search may change; names, layer kinds and code-path switches are static metadata. Changing a
leaf's value never recompiles a jitted cost function; changing a static field does, except
names and layer kinds, which ``hw.evaluate`` leaves out of its program's key (:func:`anonymous`).
Build variants with ``dataclasses.replace``.

Units are in field names (``_kib``, ``_mhz``, ``_gbps``, ``_bits``, ``_pj``, ...). Per-layer
fields have shape ``(L,)``; a batch of designs or layers adds leading axes, and reductions over
layers use ``axis=-1``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from hw.x64 import x64, x64_property

Array = Any  # a jax or numpy array, or a Python number

DATAFLOWS = ("os", "ws", "is")
"""Dataflow codes in the order of their integer code (``NPUConfig.dataflow``)."""

MEMORY_MODELS = ("tiled", "scalesim")
"""Values of ``NPUConfig.memory_model``: ``tiled`` (hw.memory) or ``scalesim``
(hw.scalesim_memory)."""

LOOP_ORDERS = ("out", "weight", "input")
"""DRAM-level loop orders (``Mapping.loop_order``): which operand tile stays in SRAM while the
innermost loop runs: ``out`` (K innermost, partial sums stay on chip), ``weight`` (M innermost,
each weight tile is fetched once) or ``input`` (N innermost, each input tile is fetched once)."""


def static(default=dataclasses.MISSING, **kw):
    """A dataclass field that is pytree metadata (hashable, part of the jit cache key)."""
    return dataclasses.field(default=default, metadata={"static": True}, **kw)


def pytree_dataclass(cls):
    """Frozen dataclass registered as a pytree; fields made with :func:`static` are metadata."""
    cls = dataclasses.dataclass(frozen=True)(cls)
    return jax.tree_util.register_dataclass(cls)


@pytree_dataclass
class TechTable:
    """Energy and area per unit of work, for one technology node (see ``hw.tech`` for sources).

    All fields are leaves so that a search or a sensitivity study can vary them.
    """

    node_nm: Array  # process node the figures are for, nm
    mult_pj_8b: Array  # energy of one 8x8-bit integer multiply, pJ; scales with wa*wb/64
    add_pj_32b: Array  # energy of one 32-bit integer add, pJ; scales linearly with bits
    mult_um2_8b: Array  # area of one 8x8-bit multiplier, um^2; scales with wa*wb/64
    add_um2_32b: Array  # area of one 32-bit adder, um^2; scales linearly with bits
    reg_pj_per_bit: Array  # register/array-link energy per bit moved one PE, pJ
    reg_um2_per_bit: Array  # area of one pipeline register bit in a PE, um^2
    sram_pj_per_64b_ref: Array  # energy of a 64-bit SRAM access at the reference size, pJ
    sram_ref_kib: Array  # reference SRAM size for the energy above, KiB
    sram_energy_exp: Array  # SRAM access energy grows as (size / ref) ** exp
    sram_um2_per_bit: Array  # SRAM area per bit including periphery, um^2
    dram_pj_per_bit: Array  # DRAM access energy per bit, pJ
    leak_mw_per_mm2: Array  # static (leakage) power per mm^2 of logic and SRAM, mW
    vector_pj_per_op: Array  # energy of one vector-unit operation at 16 bits, pJ
    host_pj_per_byte: Array  # energy to move one byte over the host link, pJ
    host_pj_per_op: Array  # energy of one fp32 operation on the host CPU, pJ
    rf_pj_per_bit: Array = np.float64(0.0)  # PE-local storage, pJ per bit; 0: none modelled
    # Direct per-access energies that bypass the scaling laws; each counts only where its name
    # is in ``overrides`` (hw.tech.OVERRIDES).
    mac_pj: Array = np.float64(0.0)  # one MAC at the design's widths, pJ
    ifmap_sram_pj_per_bit: Array = np.float64(0.0)  # ifmap buffer access, pJ per bit
    filter_sram_pj_per_bit: Array = np.float64(0.0)  # filter buffer access, pJ per bit
    ofmap_sram_pj_per_bit: Array = np.float64(0.0)  # ofmap buffer access, pJ per bit
    # PE-local storage per operand (hw.tech.pe_local_pj_per_bit), pJ per bit.
    ifmap_rf_pj_per_bit: Array = np.float64(0.0)
    filter_rf_pj_per_bit: Array = np.float64(0.0)
    ofmap_rf_pj_per_bit: Array = np.float64(0.0)
    overrides: tuple[str, ...] = static(())


@pytree_dataclass
class NPUConfig:
    """One NPU design: a systolic MAC array with on-chip SRAM and a DRAM interface.

    The on-chip buffers follow SCALE-Sim's split into ifmap (activations), filter (weights)
    and ofmap (outputs / partial sums) SRAMs, each double-buffered. With ``unified_sram`` the
    three sizes only matter through their sum, which all three tiles share.
    """

    rows: Array  # MAC array height (SCALE-Sim ArrayHeight), PEs
    cols: Array  # MAC array width (SCALE-Sim ArrayWidth), PEs
    dataflow: Array  # index into DATAFLOWS: 0 os, 1 ws, 2 is
    clock_mhz: Array  # core clock, MHz
    ifmap_sram_kib: Array  # input-activation buffer, KiB
    filter_sram_kib: Array  # weight buffer, KiB
    ofmap_sram_kib: Array  # output / partial-sum buffer, KiB
    dram_bw_gbps: Array  # DRAM bandwidth, GB/s (per stream when dram_per_stream)
    w_bits: Array  # weight width, bits
    a_bits: Array  # activation width, bits
    acc_bits: Array  # accumulator width, bits
    vector_lanes: Array  # vector-unit operations per cycle (softmax, norms, pooling, ...)
    tech: TechTable
    host_gops: Array = np.float64(50.0)  # host CPU fp32 throughput for fallback ops, Gop/s
    host_link_gbps: Array = np.float64(4.0)  # NPU <-> host link (PCIe 3.0 x4 class), GB/s
    # Device DRAM capacity, GiB: what weights plus KV cache must fit in (npu_dse.llm).
    # Default (assumption): 16 GiB, a laptop's LPDDR5X.
    dram_capacity_gib: Array = np.float64(16.0)
    # PE-local storage (register file / scratchpads) of each PE, bytes; 0: none. Its access
    # energy follows its size (hw.tech.pe_local_pj_per_bit) and its area adds to the PEs'.
    pe_local_bytes: Array = np.float64(0.0)
    name: str = static("custom")
    unified_sram: bool = static(False)  # one buffer shared by the three operands
    dram_per_stream: bool = static(False)  # each of the 3 streams has its own dram_bw_gbps
    # "tiled": tiles, loop orders and a roofline (hw.memory); "scalesim": SCALE-Sim 3.0.0's
    # prefetcher in closed form, for parity with its USER bandwidth mode (hw.scalesim_memory).
    memory_model: str = static("tiled")
    # Layer kinds (Workload.kinds: conv, depthwise, dense, gemm, matmul, relu, add, softmax,
    # layernorm, gelu, pool) the NPU cannot run: they fall back to the host (hw.schedule).
    unsupported_ops: tuple[str, ...] = static(())
    fusion: bool = static(True)  # keep fused intermediates on chip (hw.schedule)
    vector_precision: str = static("int16")  # arithmetic of the vector unit (hw.vector)
    # Grouped and depthwise convs (hw.grouped): "auto" picks per layer between per-group GEMMs
    # and channel-parallel columns; "gemm" keeps SCALE-Sim's per-group GEMMs.
    grouped_lowering: str = static("auto")
    # Cross-layer residency (hw.residency): a layer's output that fits on chip stays there for
    # the next layer instead of a DRAM round trip. Off by default: the per-layer model is what
    # SCALE-Sim, ZigZag and Timeloop compute and what the validation suite compares against.
    cross_layer: bool = static(False)

    @property
    def dataflow_name(self) -> str:
        return DATAFLOWS[int(self.dataflow)]

    @x64_property
    def peak_ops_per_s(self):
        """Peak throughput, 2 ops (multiply + add) per MAC per cycle."""
        return 2.0 * self.rows * self.cols * self.clock_mhz * 1e6


@pytree_dataclass
class Workload:
    """A network as a list of layers, each a batch of identical GEMMs plus vector work.

    A GEMM is ``(M x K) . (K x N)``; ``gemm_count`` independent copies of it run one after
    another (conv groups, attention heads, batch). Vector-only layers have ``gemm_count = 0``.
    The distinct element counts are what DRAM must move at least once; for a conv the ifmap
    is smaller than the im2col matrix ``M x K``.
    """

    gemm_m: Array  # shape=(L,) output pixels (conv) or rows (GEMM)
    gemm_k: Array  # shape=(L,) reduction length
    gemm_n: Array  # shape=(L,) output channels / columns
    gemm_count: Array  # shape=(L,) independent GEMMs of this shape
    ifmap_elems: Array  # shape=(L,) distinct input-activation elements
    filter_elems: Array  # shape=(L,) distinct weight elements
    ofmap_elems: Array  # shape=(L,) output elements
    vector_ops: Array  # shape=(L,) elementwise vector-unit operations
    names: tuple[str, ...] = static(())
    kinds: tuple[str, ...] = static(())

    @property
    def num_layers(self) -> int:
        return len(self.names)

    @x64_property
    def macs(self):
        """Multiply-accumulates per layer, shape=(L,)."""
        return self.gemm_m * self.gemm_k * self.gemm_n * self.gemm_count


def anonymous(config: NPUConfig, workload: Workload) -> tuple[NPUConfig, Workload]:
    """``config`` and ``workload`` with their names and layer kinds blanked: static fields a
    compiled cost function does not depend on once the kinds' masks are taken (``hw.cost``),
    left out of its cache key."""
    names, kinds = ("",) * len(workload.names), ("",) * len(workload.kinds)
    return (
        dataclasses.replace(config, name=""),
        dataclasses.replace(workload, names=names, kinds=kinds),
    )


@pytree_dataclass
class Mapping:
    """Per-layer schedule: DRAM-level tile sizes of the GEMM and the loop order.

    A tile ``(tile_m x tile_k)`` of the ifmap, ``(tile_k x tile_n)`` of the weights and
    ``(tile_m x tile_n)`` of the outputs sit in the (double-buffered) SRAMs at a time.
    """

    tile_m: Array  # shape=(L,)
    tile_k: Array  # shape=(L,)
    tile_n: Array  # shape=(L,)
    loop_order: Array  # shape=(L,) index into LOOP_ORDERS


@pytree_dataclass
class LayerBits:
    """Operand widths each layer runs at, at most the multipliers' (``NPUConfig.w_bits`` and
    ``a_bits``, which size the hardware). They set MAC energy, traffic and tile sizes per layer;
    area and leakage follow the config's widths. Scalars mean the same width for every layer.
    """

    w_bits: Array  # shape=(L,) or scalar, weight width, bits
    a_bits: Array  # shape=(L,) or scalar, activation width, bits

    @staticmethod
    def of(config: NPUConfig) -> LayerBits:
        """Every layer at the config's widths."""
        return LayerBits(w_bits=config.w_bits, a_bits=config.a_bits)


@pytree_dataclass
class DramTraffic:
    """DRAM bytes per layer (shape ``(..., L)``) of the four streams."""

    ifmap_read_bytes: Array  # input activations read
    filter_read_bytes: Array  # weights read
    ofmap_write_bytes: Array  # outputs written, including partial-sum spills
    ofmap_read_bytes: Array  # spilled partial sums read back

    @property
    def total_bytes(self):
        """``ifmap_read + filter_read + ofmap_write + ofmap_read``."""
        return (
            self.ifmap_read_bytes
            + self.filter_read_bytes
            + self.ofmap_write_bytes
            + self.ofmap_read_bytes
        )


@pytree_dataclass
class SramAccesses:
    """Words the MAC array moves through the on-chip buffers per layer (shape ``(..., L)``)."""

    ifmap_reads: Array  # words read from the ifmap SRAM
    filter_reads: Array  # words read from the filter SRAM
    ofmap_writes: Array  # words (partial sums and outputs) written to the ofmap SRAM


class WorkloadTotals:
    """Whole-workload figures of a per-layer report with ``latency_s`` and ``energy_pj``
    (shape ``(..., L)``); shared by the NPU's :class:`CostReport` and ``hw.gpu.GPUReport``."""

    @x64_property
    def total_latency_s(self):
        return jnp.sum(self.latency_s, axis=-1)

    @x64_property
    def total_energy_j(self):
        return jnp.sum(self.energy_pj, axis=-1) * 1e-12

    @x64_property
    def power_w(self):
        """Average power over the workload, W."""
        return self.total_energy_j / self.total_latency_s

    @x64_property
    def edp_js(self):
        return self.total_energy_j * self.total_latency_s


@pytree_dataclass
class CostReport(WorkloadTotals):
    """Per-layer costs (shape ``(..., L)``) from ``hw.cost.evaluate``.

    Cycle counts are counts (SCALE-Sim's ``total_cycles`` is the last index, one less).
    """

    macs: Array
    compute_cycles: Array  # the array busy, infinite bandwidth (SCALE-Sim CALC mode)
    vector_cycles: Array  # vector-unit cycles
    dram_cycles: Array  # DRAM transfer time at the configured bandwidth
    stall_cycles: Array  # total - compute
    total_cycles: Array
    mapping_efficiency: Array  # 0-1, share of PEs mapped per fold (SCALE-Sim)
    utilization: Array  # 0-1, MACs / (PEs * total_cycles)
    sram_ifmap_reads: Array  # words read from the ifmap SRAM by the array
    sram_filter_reads: Array  # words read from the filter SRAM by the array
    sram_ofmap_writes: Array  # words written to the ofmap SRAM by the array
    dram_ifmap_read_bytes: Array
    dram_filter_read_bytes: Array
    dram_ofmap_write_bytes: Array  # includes partial-sum spills
    dram_ofmap_read_bytes: Array  # partial sums read back
    energy_mac_pj: Array
    energy_array_pj: Array  # operand and partial-sum movement between PEs
    energy_rf_pj: Array  # PE-local storage (register file / scratchpad) accesses
    energy_sram_pj: Array
    energy_dram_pj: Array
    energy_vector_pj: Array
    energy_leak_pj: Array
    energy_host_pj: Array  # host compute and host-link transfers of fallback layers
    host_cycles: Array  # core cycles the NPU waits for fallback layers (host + link)
    on_host: Array  # bool: the layer ran on the host
    channel_parallel: Array  # bool: groups spread across the columns (hw.grouped), not GEMMs
    output_resident: Array  # bool: output kept on chip for the next layer (hw.residency)
    weights_resident: Array  # bool scalar: every weight stays on chip (steady state)
    fits: Array  # bool: the mapping's tiles fit the buffers
    clock_mhz: Array  # scalar, to turn cycles into seconds
    area_mm2: Array  # scalar, the design's area
    names: tuple[str, ...] = static(())

    @x64_property
    def latency_s(self):
        """Per-layer latency, s."""
        return self.total_cycles / (self.clock_mhz[..., None] * 1e6)

    @x64_property
    def energy_pj(self):
        """Per-layer energy, pJ."""
        return (
            self.energy_mac_pj
            + self.energy_array_pj
            + self.energy_rf_pj
            + self.energy_sram_pj
            + self.energy_dram_pj
            + self.energy_vector_pj
            + self.energy_leak_pj
            + self.energy_host_pj
        )


@x64
def canonical(tree):
    """Cast every leaf to an int64 or float64 NumPy array (by its kind), so that designs built
    from Python numbers and from presets share one jit signature and never recompile."""

    def cast(x):
        if isinstance(x, jax.core.Tracer):
            return x
        dtype = jnp.int64 if jnp.issubdtype(jnp.result_type(x), jnp.integer) else jnp.float64
        return jnp.asarray(x, dtype=dtype) if isinstance(x, jax.Array) else np.asarray(x, dtype)

    return jax.tree_util.tree_map(cast, tree)
