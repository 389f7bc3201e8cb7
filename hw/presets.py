"""Named designs: ``get_preset(name)`` returns an :class:`~hw.types.NPUConfig`.

Each builder says where its numbers come from; a figure marked "assumption" is ours. Peak
throughput counts 2 ops (multiply and add) per MAC per cycle (``NPUConfig.peak_ops_per_s``).

>>> from hw.presets import get_preset
>>> round(float(get_preset("tpu-v1-like").peak_ops_per_s) / 1e12, 2)
91.75
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hw.tech import default_tech
from hw.types import DATAFLOWS, NPUConfig


def _config(
    name: str,
    *,
    rows: int,
    cols: int,
    dataflow: str,
    clock_mhz: float,
    sram_kib: tuple[float, float, float],
    dram_bw_gbps: float,
    bits: tuple[float, float, float],
    vector_lanes: int,
    node_nm: float,
    dram_capacity_gib: float,
    unified_sram: bool = False,
    dram_per_stream: bool = False,
    pe_local_bytes: float = 0.0,
) -> NPUConfig:
    """Build a config with int64 counts and float64 sizes, bits, clock and bandwidth.

    ``sram_kib`` is (ifmap, filter, ofmap); ``bits`` is (weight, activation, accumulator).
    """
    ifmap, filt, ofmap = (np.float64(s) for s in sram_kib)
    w, a, acc = (np.float64(b) for b in bits)
    return NPUConfig(
        rows=np.int64(rows),
        cols=np.int64(cols),
        dataflow=np.int64(DATAFLOWS.index(dataflow)),
        clock_mhz=np.float64(clock_mhz),
        ifmap_sram_kib=ifmap,
        filter_sram_kib=filt,
        ofmap_sram_kib=ofmap,
        dram_bw_gbps=np.float64(dram_bw_gbps),
        w_bits=w,
        a_bits=a,
        acc_bits=acc,
        vector_lanes=np.int64(vector_lanes),
        tech=default_tech(node_nm),
        dram_capacity_gib=np.float64(dram_capacity_gib),
        pe_local_bytes=np.float64(pe_local_bytes),
        name=name,
        unified_sram=unified_sram,
        dram_per_stream=dram_per_stream,
    )


def tpu_v1_like() -> NPUConfig:
    """Google TPU v1 (Jouppi et al., "In-datacenter performance analysis of a tensor
    processing unit", ISCA 2017).

    - 256x256 8-bit MACs at 700 MHz, weight stationary: 2 * 65536 * 0.7e9 = 91.75 TOPS
      (datasheet: 92 TOPS); 28 nm; DRAM (DDR3) 34 GB/s, 8 GiB.
    - On chip: the 24 MiB unified buffer holds activations (ifmap); the 4 MiB of 32-bit
      accumulators hold outputs and partial sums (ofmap); the weight FIFO, four 64 KiB tiles
      deep, is the filter buffer (256 KiB). Separate buffers, as on the chip.
    - 256 vector lanes: the activation unit works on one 256-wide accumulator row per cycle.
    """
    return _config(
        "tpu-v1-like",
        rows=256,
        cols=256,
        dataflow="ws",
        clock_mhz=700.0,
        sram_kib=(24 * 1024, 256, 4 * 1024),
        dram_bw_gbps=34.0,
        bits=(8, 8, 32),
        vector_lanes=256,
        node_nm=28.0,
        dram_capacity_gib=8.0,
    )


def edge_tpu_like() -> NPUConfig:
    """Google Coral Edge TPU (datasheet: 4 TOPS int8 at 2 W).

    - Assumption: 64x64 8-bit MACs at 480 MHz, weight stationary; Google publishes neither
      the array shape nor the clock, these give 2 * 4096 * 480e6 = 3.93 TOPS.
    - 8 MiB of on-chip SRAM: "roughly 8 MB" for caching parameters (Coral, Edge TPU compiler
      documentation, "parameter data caching"). Modelled as one pool (``unified_sram``) with
      a nominal 2 MiB ifmap, 4 MiB filter, 2 MiB ofmap split (assumption).
    - Assumption: 4 GB/s to DRAM, an LPDDR4 share in an SoC (the USB and PCIe modules reach
      host memory more slowly); 14 nm node; 64 vector lanes (one per column).
    - Assumption: 1 GiB of DRAM, the LPDDR4 of the Coral Dev Board's 1 GB variant.
    """
    return _config(
        "edge-tpu-like",
        rows=64,
        cols=64,
        dataflow="ws",
        clock_mhz=480.0,
        sram_kib=(2 * 1024, 4 * 1024, 2 * 1024),
        dram_bw_gbps=4.0,
        bits=(8, 8, 32),
        vector_lanes=64,
        node_nm=14.0,
        dram_capacity_gib=1.0,
        unified_sram=True,
    )


EYERISS_PE_LOCAL_BYTES = (12 + 224 + 24) * 2
"""Eyeriss's scratchpads per PE (ifmap, filter, psum words of 16 bits), bytes (JSSC 2017)."""


def eyeriss_like() -> NPUConfig:
    """MIT Eyeriss (Chen et al., ISCA 2016; JSSC 2017): 65 nm, 168 PEs as 12x14, 16-bit fixed
    point (partial sums included), 200 MHz core clock, 108 KB global buffer.

    - Dataflow: Eyeriss is row stationary, which none of os/ws/is is. We use ws, as
      SCALE-Sim's own ``configs/eyeriss.cfg`` does: each PE keeps a filter row in its largest
      scratchpad (224 words) while inputs slide past and partial sums move between PEs.
    - The global buffer is one pool (``unified_sram``), split 36/36/36 KiB as in that config.
    - Assumption: 0.72 GB/s to DRAM, a 64-bit bus at the chip's 90 MHz link clock; 14 vector
      lanes (one per column).
    - Assumption: 1 GiB of DRAM (the paper's test setup does not state one).
    - PE-local storage: each PE's ifmap (12 x 16 b), filter (224 x 16 b) and psum (24 x 16 b)
      scratchpads, 520 B (JSSC 2017), costed by the SRAM law at that size (hw.tech). Every
      other preset has none (their datasheets name no per-PE storage beyond the pipeline).
    """
    return _config(
        "eyeriss-like",
        rows=12,
        cols=14,
        dataflow="ws",
        clock_mhz=200.0,
        sram_kib=(36, 36, 36),
        dram_bw_gbps=0.72,
        bits=(16, 16, 16),
        vector_lanes=14,
        node_nm=65.0,
        dram_capacity_gib=1.0,
        unified_sram=True,
        pe_local_bytes=EYERISS_PE_LOCAL_BYTES,
    )


def scalesim_32x32() -> NPUConfig:
    """SCALE-Sim's default array (``configs/scale.cfg``: 32x32, output stationary) with the
    1024 KB ifmap, filter and ofmap SRAMs of the reference set's no-stall setting A, for
    parity checks against ``shared/reference/scalesim_v3_public.csv``.

    - 8-bit operands, 32-bit accumulators, 45 nm (the anchor node).
    - Assumption: 1 GHz, so a cycle is a nanosecond; 16 GB/s per DRAM stream
      (``dram_per_stream``), i.e. setting B's 16 one-byte words per cycle.
    - Assumption: 32 vector lanes (SCALE-Sim models no vector unit); 16 GiB of DRAM (it
      models no capacity either).
    """
    return _config(
        "scalesim-32x32",
        rows=32,
        cols=32,
        dataflow="os",
        clock_mhz=1000.0,
        sram_kib=(1024, 1024, 1024),
        dram_bw_gbps=16.0,
        bits=(8, 8, 32),
        vector_lanes=32,
        node_nm=45.0,
        dram_capacity_gib=16.0,
        dram_per_stream=True,
    )


PRESETS: dict[str, Callable[[], NPUConfig]] = {
    "tpu-v1-like": tpu_v1_like,
    "edge-tpu-like": edge_tpu_like,
    "eyeriss-like": eyeriss_like,
    "scalesim-32x32": scalesim_32x32,
}
"""Preset name -> zero-argument builder."""


def preset_names() -> tuple[str, ...]:
    """The preset names, in the order of :data:`PRESETS`."""
    return tuple(PRESETS)


def get_preset(name: str) -> NPUConfig:
    """The named design; raises ``ValueError`` naming the choices for an unknown name."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return PRESETS[name]()
