"""A GPU-like design, for comparison with the NPU model on the same :class:`~hw.types.Workload`.

``evaluate_gpu(config, workload) -> GPUReport`` models a GPU running one kernel per layer
(cuBLAS/cuDNN-style implicit GEMM). Per layer, with ``G`` GEMMs ``(M x K) . (K x N)``, ``S``
streaming multiprocessors (SMs), ``b`` bytes per element at the precision and a 128 x 128
output tile per CTA (thread block):

    tiles     = ceil(M / 128) * ceil(N / 128)
    waves     = ceil(G * tiles / S)                    all G GEMMs in one (batched) grid
    compute   = waves * 128 * 128 * K / macs_eff + vector_ops / (S * lanes)      cycles
    dram      = DRAM bytes / bandwidth                 (:func:`dram_bytes`)
    latency   = max(compute / f_clk, dram) + launch    no launch for a fused layer
    energy    = MACs * e_mac * (1 + INSTRUCTION_OVERHEAD)
              + SMEM bits * e_sram(smem_kib) + L2 bits * e_sram(l2_kib / S)
              + RF bits * e_sram(REGISTER_FILE_KIB)    (:func:`onchip_bits`)
              + DRAM bits * dram_pj_per_bit + vector_ops * e_vec + static_w * latency

``macs_eff`` is the dense tensor-core MAC rate per SM per cycle: ``macs_per_sm`` at fp16,
twice that at int8; fp32 runs on the CUDA cores at ``vector_lanes_per_sm`` FMAs per SM per
cycle. A layer with fewer tiles than SMs leaves SMs idle and a last partial wave costs a full
one (wave quantization): this is what makes batch-1 inference run far below peak.

Fusion (``GPUConfig.fusion``) follows :func:`hw.schedule.kept_on_chip`: an elementwise layer
after a GEMM runs in the GEMM's epilogue (no launch, no DRAM round trip of the intermediate).

Energies per operation (45 nm, Horowitz, ISSCC 2014) are scaled by ``node_nm / 45`` as in
:func:`hw.tech.default_tech`; SRAM energies come from :func:`hw.tech.sram_pj_per_bit`:

=========  ========================  ===================  ===================================
precision  tensor MAC (45 nm)        vector op (45 nm)    register-file bits per MAC
=========  ========================  ===================  ===================================
int8       0.2 mult + 0.1 add32      0.3                  3.5: mma.m16n8k32, s32 accumulators
fp16       1.1 mult + 0.9 add32      1.1 + 0.4 = 1.5      7.0: mma.m16n8k16, f32 accumulators
fp32       3.7 mult + 0.9 add        3.7 + 0.9 = 4.6      128: FFMA, 3 reads + 1 write
=========  ========================  ===================  ===================================

fp16 tensor MACs accumulate in fp32 (an fp32 add, like int8's int32 add): A100 runs fp16 with
fp32 accumulation at the full 312 TFLOPS (A100 whitepaper, 2020); that fp16 inference
accumulates in fp32 is an assumption. Register-file bits per MAC count the A and B fragments and the
accumulator read and write of one warp-level MMA (shapes from the PTX ISA) over its MACs,
e.g. fp16: ``(16*16 + 16*8) * 16 + 2 * 16*8 * 32 = 14336`` bits over ``16*8*16 = 2048``
MACs. Assumption: every MMA reads and writes its accumulators in the register file (operand
reuse caches ignored).

Full load: an 8192^3 fp16 GEMM on ``datacenter-gpu-like`` draws 224 W here (27 % MACs, 42 %
on chip, 8 % DRAM, 22 % static), against the A100's 400 W TDP. Our reading of the gap (not
measured): the first-order ``node / 45`` scaling is optimistic at 7 nm (hw.tech), and wires,
clock tree and the L2 network are not itemised.

>>> from hw import layers
>>> wl = layers.workload([layers.gemm("g", m=8192, k=8192, n=8192)])
>>> rep = evaluate_gpu(get_gpu_preset("datacenter-gpu-like"), wl)
>>> round(float(rep.peak_ops_per_s) / 1e12, 1), round(float(rep.total_latency_s) * 1e3, 2)
(311.9, 3.54)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from hw import arith, schedule, tech
from hw.arith import EXACT, Arith
from hw.types import Array, Workload, WorkloadTotals, pytree_dataclass, static
from hw.x64 import x64, x64_property

PRECISIONS = ("fp16", "fp32", "int8")
"""Values of ``GPUConfig.precision``."""

TILE = 128
"""CTA output tile edge, elements (a 128 x 128 tile accumulates in the SM)."""

WARP_TILE = 64
"""Warp output tile edge: each operand element read from shared memory feeds 64 MACs."""

INSTRUCTION_OVERHEAD = 0.27
"""Energy of issuing tensor-core instructions (fetch, decode, scheduling) as a share of their
math energy. Assumption: the order of magnitude of published tensor-core instruction
overheads; no single source. Applied at every precision; on the CUDA cores (fp32) the
register-file term carries most of an FFMA's extra cost."""

REGISTER_FILE_KIB = 64.0
"""Register-file bank whose access energy every register read or write pays, KiB: one SM
sub-partition's 16384 x 32-bit registers (A100 whitepaper: 256 KB per SM, four partitions).
Assumption: the same on the edge GPU (Ampere SM)."""

_BYTES = {"int8": 1.0, "fp16": 2.0, "fp32": 4.0}
_MAC_PJ_45NM = {"int8": 0.2 + 0.1, "fp16": 1.1 + 0.9, "fp32": 3.7 + 0.9}
_VECTOR_PJ_45NM = {"int8": 0.2 + 0.1, "fp16": 1.1 + 0.4, "fp32": 3.7 + 0.9}
_RF_BITS_PER_MAC = {
    "int8": ((16 * 32 + 32 * 8) * 8 + 2 * 16 * 8 * 32) / (16 * 8 * 32),
    "fp16": ((16 * 16 + 16 * 8) * 16 + 2 * 16 * 8 * 32) / (16 * 8 * 16),
    "fp32": 4 * 32.0,
}


@pytree_dataclass
class GPUConfig:
    """One GPU design: ``sms`` SMs with tensor cores, CUDA-core lanes and shared memory, an L2
    and a DRAM interface. Leaves are float64 numbers; precision and fusion are static."""

    sms: Array  # streaming multiprocessors
    macs_per_sm: Array  # dense fp16 tensor-core MACs per SM per cycle
    clock_mhz: Array  # SM clock, MHz
    smem_kib: Array  # shared memory per SM, KiB
    l2_kib: Array  # L2 cache, KiB (all slices)
    dram_bw_gbps: Array  # DRAM bandwidth, GB/s
    dram_pj_per_bit: Array  # DRAM access energy, pJ/bit
    launch_us: Array  # kernel launch + synchronization per kernel, us
    static_w: Array  # static and idle power, W
    node_nm: Array  # process node, nm (scales on-chip energies as node / 45)
    vector_lanes_per_sm: Array  # fp32 CUDA-core lanes per SM (vector ops, fp32 FMAs)
    name: str = static("custom-gpu")
    precision: str = static("fp16")  # one of PRECISIONS: operands, traffic and MAC rate
    fusion: bool = static(True)  # elementwise ops after a GEMM run in its epilogue

    @x64_property
    def macs_per_cycle_per_sm(self):
        """``macs_eff``: fp16 ``macs_per_sm``, int8 twice that, fp32 ``vector_lanes_per_sm``."""
        if self.precision == "fp32":
            return self.vector_lanes_per_sm
        return self.macs_per_sm * (2.0 if self.precision == "int8" else 1.0)

    @x64_property
    def peak_ops_per_s(self):
        """Peak dense throughput at the precision, 2 ops per MAC: ``2 S macs_eff f_clk``."""
        return 2.0 * self.sms * self.macs_per_cycle_per_sm * self.clock_mhz * 1e6


@pytree_dataclass
class GPUReport(WorkloadTotals):
    """Per-layer costs (shape ``(..., L)``) from :func:`evaluate_gpu`; energies in pJ."""

    latency_s: Array  # max(compute_s, dram_s) + launch_s
    compute_s: Array  # tensor-core (or CUDA-core) waves plus vector work
    dram_s: Array  # DRAM transfer time at the configured bandwidth
    launch_s: Array  # kernel launch overhead (0 for a fused layer)
    energy_mac_pj: Array  # MACs with their instruction overhead
    energy_onchip_pj: Array  # shared memory + L2 + register file
    energy_dram_pj: Array
    energy_vector_pj: Array
    energy_static_pj: Array  # static_w * latency_s
    dram_bytes: Array
    peak_ops_per_s: Array  # scalar, dense peak at the precision
    names: tuple[str, ...] = static(())

    @x64_property
    def energy_pj(self):
        """Per-layer energy, pJ."""
        return self.dynamic_pj + self.energy_static_pj

    @x64_property
    def dynamic_pj(self):
        """Per-layer energy without static power, pJ."""
        return (
            self.energy_mac_pj
            + self.energy_onchip_pj
            + self.energy_dram_pj
            + (self.energy_vector_pj)
        )

    @x64_property
    def data_movement_share(self):
        """``(on-chip + DRAM) / dynamic`` energy over the workload, 0-1."""
        moved = jnp.sum(self.energy_onchip_pj + self.energy_dram_pj, axis=-1)
        return moved / jnp.sum(self.dynamic_pj, axis=-1)


_POSITIVE = ("sms", "macs_per_sm", "clock_mhz", "smem_kib", "l2_kib", "dram_bw_gbps", "node_nm",
             "vector_lanes_per_sm")  # fmt: skip
_NON_NEGATIVE = ("dram_pj_per_bit", "launch_us", "static_w")


def validate_gpu(config: GPUConfig) -> None:
    """Raise ``ValueError`` for an unknown precision or a non-positive size, rate or clock
    (negative energy, launch or static power). Traced values (inside jit/vmap) are skipped."""
    if config.precision not in PRECISIONS:
        raise ValueError(
            f"precision must be one of {', '.join(PRECISIONS)}, got {config.precision!r}"
        )
    for field in _POSITIVE + _NON_NEGATIVE:
        value = getattr(config, field)
        if isinstance(value, jax.core.Tracer):
            continue
        ok = np.all(np.asarray(value) > 0) if field in _POSITIVE else np.all(np.asarray(value) >= 0)
        if not ok:
            bound = "> 0" if field in _POSITIVE else ">= 0"
            raise ValueError(f"GPUConfig.{field} must be {bound}, got {value}")


def _shifted(x):
    """``x[i - 1]`` along the layer axis, 0 for the first layer."""
    return jnp.concatenate([jnp.zeros_like(x[..., :1]), x[..., :-1]], axis=-1)


def _tiles(workload: Workload, ar: Arith):
    """CTA output tiles of one GEMM, ``ceil(M / 128) * ceil(N / 128)``, shape=(L,)."""
    return arith.ceil_div(workload.gemm_m, TILE, ar) * arith.ceil_div(workload.gemm_n, TILE, ar)


def dram_bytes(config: GPUConfig, workload: Workload, ar: Arith = EXACT):
    """DRAM bytes per layer, shape=(L,): ``b * (A f_A + B f_B + C)``.

    ``A`` is the ifmap elements not kept on chip by fusion, ``B`` the filter elements, ``C``
    the ofmap elements unless the next layer fuses them (as ``hw.memory.dram_traffic``).
    When both operands fit in L2, ``(A + B) b <= L2``, each is read once (``f = 1``).
    Otherwise a wave of ``S`` CTAs covers about a ``sqrt(S) x sqrt(S)`` block of output tiles,
    ``128 sqrt(S)`` elements on a side, whose A row panels and B column panels are shared
    through L2; A is read again for every block column and B for every block row:
    ``f_A = ceil(N / (128 sqrt(S)))``, ``f_B = ceil(M / (128 sqrt(S)))``. Vector layers read
    their inputs and write their outputs once.
    """
    b = _BYTES[config.precision]
    out_stays, in_chip = schedule.kept_on_chip(workload.kinds, (), config.fusion)
    a_elems = jnp.maximum(
        workload.ifmap_elems - jnp.where(in_chip, _shifted(workload.ofmap_elems), 0), 0
    )
    c_elems = jnp.where(out_stays, 0, workload.ofmap_elems)
    operands = (workload.ifmap_elems + workload.filter_elems) * b
    fits = arith.step(jnp.log(config.l2_kib * 1024.0 / jnp.maximum(operands, 1.0)) + 1e-12, ar)
    block = TILE * jnp.sqrt(config.sms)
    gemm = workload.gemm_count > 0
    f_a = jnp.where(gemm, 1 + (1 - fits) * (arith.ceil(workload.gemm_n / block, ar) - 1), 1.0)
    f_b = jnp.where(gemm, 1 + (1 - fits) * (arith.ceil(workload.gemm_m / block, ar) - 1), 1.0)
    return b * (a_elems * f_a + workload.filter_elems * f_b + c_elems)


def onchip_bits(config: GPUConfig, workload: Workload, dram, ar: Arith = EXACT):
    """Bits accessed in ``(shared memory, L2, register file)`` per layer, shape=(L,) each.

    - L2 -> SMEM: every CTA loads its A panel and B panel, ``G tiles (128 K + K 128) b``
      bytes; SMEM -> registers: each warp's 64 x 64 tile reads ``1/64 + 1/64`` operand
      elements per MAC, ``MACs (2 / 64) b``. Shared memory is written by the first and read
      by the second.
    - L2: the tile loads, the layer's output writes (unless fused) and vector-layer input
      reads, plus every DRAM byte (a fill or an eviction).
    - Register file: the fragments written from SMEM, the MMA operand and accumulator
      accesses (``_RF_BITS_PER_MAC``, module table), and vector layers' loads and stores.
    """
    b = _BYTES[config.precision]
    out_stays, in_chip = schedule.kept_on_chip(workload.kinds, (), config.fusion)
    l2_to_smem = workload.gemm_count * _tiles(workload, ar) * 2.0 * TILE * workload.gemm_k * b
    smem_to_rf = workload.macs * (2.0 / WARP_TILE) * b
    vec = workload.gemm_count == 0
    vec_in = jnp.where(vec & ~in_chip, workload.ifmap_elems * b, 0.0)
    out = jnp.where(out_stays, 0.0, workload.ofmap_elems * b)
    smem = 8.0 * (l2_to_smem + smem_to_rf)
    l2 = 8.0 * (l2_to_smem + vec_in + out + dram)
    vec_rf = jnp.where(vec, (workload.ifmap_elems + workload.ofmap_elems) * b * 8.0, 0.0)
    rf = 8.0 * smem_to_rf + workload.macs * _RF_BITS_PER_MAC[config.precision] + vec_rf
    return smem, l2, rf


def compute_s(config: GPUConfig, workload: Workload, ar: Arith = EXACT):
    """Busy time of the SMs per layer, s, shape=(L,).

    ``waves * 128 * 128 * K / macs_eff + vector_ops / (S * lanes)`` cycles, with
    ``waves = ceil(G * tiles / S)``: the G GEMMs of a layer share one grid.
    """
    waves = arith.ceil(workload.gemm_count * _tiles(workload, ar) / config.sms, ar)
    per_tile = TILE * TILE * workload.gemm_k / config.macs_per_cycle_per_sm
    vector = workload.vector_ops / (config.sms * config.vector_lanes_per_sm)
    return (waves * per_tile + vector) / (config.clock_mhz * 1e6)


def _energy(config: GPUConfig, workload: Workload, dram, latency, ar: Arith):
    """Energy terms per layer, pJ (see the module docstring)."""
    t = tech.default_tech(config.node_nm)
    scale = config.node_nm / tech.REF_NODE_NM
    p = config.precision
    smem, l2, rf = onchip_bits(config, workload, dram, ar)
    onchip = (
        smem * tech.sram_pj_per_bit(config.smem_kib, t)
        + l2 * tech.sram_pj_per_bit(config.l2_kib / config.sms, t)
        + rf * tech.sram_pj_per_bit(REGISTER_FILE_KIB, t)
    )
    return {
        "energy_mac_pj": workload.macs * _MAC_PJ_45NM[p] * scale * (1.0 + INSTRUCTION_OVERHEAD),
        "energy_onchip_pj": onchip,
        "energy_dram_pj": 8.0 * dram * config.dram_pj_per_bit,
        "energy_vector_pj": workload.vector_ops * _VECTOR_PJ_45NM[p] * scale,
        "energy_static_pj": config.static_w * latency * 1e12,
    }


@jax.jit
def _evaluate(config: GPUConfig, workload: Workload, ar: Arith) -> GPUReport:
    _, in_chip = schedule.kept_on_chip(workload.kinds, (), config.fusion)
    dram = dram_bytes(config, workload, ar)
    busy = compute_s(config, workload, ar)
    dram_s = dram / (config.dram_bw_gbps * 1e9)
    launch = jnp.where(in_chip, 0.0, config.launch_us * 1e-6) * jnp.ones_like(busy)
    latency = arith.maximum(busy, dram_s, ar) + launch
    return GPUReport(
        latency_s=latency,
        compute_s=busy,
        dram_s=dram_s,
        launch_s=launch,
        dram_bytes=dram,
        peak_ops_per_s=jnp.asarray(config.peak_ops_per_s, dtype=float),
        names=workload.names,
        **_energy(config, workload, dram, latency, ar),
    )


@x64
def evaluate_gpu(config: GPUConfig, workload: Workload, ar: Arith = EXACT) -> GPUReport:
    """Latency and energy of a workload on a GPU design (see the module docstring).

    Validates the config (:func:`validate_gpu`), then runs the jitted model; a batch of
    designs goes through ``jax.vmap``. ``ar``: ``EXACT`` for reporting, ``Arith.smooth(t)``
    for gradients.
    """
    validate_gpu(config)
    return _evaluate(config, workload, ar)


def _gpu(name: str, **fields: float) -> GPUConfig:
    """A fp16, fused config with float64 leaves."""
    return GPUConfig(**{k: np.float64(v) for k, v in fields.items()}, name=name)


def datacenter_gpu_like() -> GPUConfig:
    """NVIDIA A100-SXM4-40GB class (NVIDIA A100 Tensor Core GPU Architecture whitepaper, 2020).

    - 108 SMs at 1410 MHz (boost); 312 TFLOPS dense fp16 tensor gives 1024 fp16 MACs per SM
      per cycle: ``2 * 108 * 1024 * 1.41e9 = 311.9`` TFLOPS; int8 623.8 TOPS (datasheet:
      624); fp32 on 64 CUDA-core lanes per SM, 19.5 TFLOPS.
    - 164 KiB of shared memory per SM (the largest carve-out), 40 MB of L2, 1555 GB/s HBM2,
      7 nm, 400 W TDP.
    - HBM2 at 3.9 pJ/bit (O'Connor et al., "Fine-Grained DRAM", MICRO 2017).
    - Assumptions: 5 us of launch and synchronization per kernel, 50 W static and idle power.
    """
    return _gpu(
        "datacenter-gpu-like",
        sms=108,
        macs_per_sm=1024,
        clock_mhz=1410.0,
        smem_kib=164.0,
        l2_kib=40.0 * 1024,
        dram_bw_gbps=1555.0,
        dram_pj_per_bit=3.9,
        launch_us=5.0,
        static_w=50.0,
        node_nm=7.0,
        vector_lanes_per_sm=64,
    )


def edge_gpu_like() -> GPUConfig:
    """NVIDIA Jetson Orin Nano class (Ampere GA10B integrated GPU), 8 nm.

    - 8 SMs (1024 CUDA cores, 128 fp32 lanes per SM) at 625 MHz; 68 GB/s LPDDR5.
    - Assumption: 512 dense fp16 tensor MACs per SM per cycle (the per-SM tensor throughput
      of GA10x), giving ``2 * 8 * 512 * 625e6 = 5.12`` TFLOPS fp16, 10.24 TOPS int8 and
      1.28 TFLOPS fp32 (CUDA cores).
    - Assumptions: 2 MiB of L2, 128 KiB of shared memory per SM, 10 us of launch and
      synchronization per kernel, 2 W static power. DRAM energy is hw.tech's DRAM figure,
      20.3 pJ/bit (Horowitz, ISSCC 2014), for want of a sourced LPDDR5 figure.
    """
    return _gpu(
        "edge-gpu-like",
        sms=8,
        macs_per_sm=512,
        clock_mhz=625.0,
        smem_kib=128.0,
        l2_kib=2048.0,
        dram_bw_gbps=68.0,
        dram_pj_per_bit=1300.0 / 64.0,
        launch_us=10.0,
        static_w=2.0,
        node_nm=8.0,
        vector_lanes_per_sm=128,
    )


GPU_PRESETS = {
    "datacenter-gpu-like": datacenter_gpu_like,
    "edge-gpu-like": edge_gpu_like,
}
"""GPU preset name -> zero-argument builder."""


def get_gpu_preset(name: str) -> GPUConfig:
    """The named GPU design (fp16, fused; change with ``dataclasses.replace``)."""
    if name not in GPU_PRESETS:
        raise ValueError(f"unknown GPU preset {name!r}; choose one of: {', '.join(GPU_PRESETS)}")
    return GPU_PRESETS[name]()
