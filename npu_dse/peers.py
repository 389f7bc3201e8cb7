"""Peer tools as references: ZigZag's five accelerators (here) and Timeloop's example designs
(:mod:`npu_dse.peers_timeloop`), each translated into an npu-dse design costed with the
peer's own per-access energies.

The reference data sit outside the repository, in ``../shared/reference/`` (or next to the file
``NPU_DSE_REFERENCE`` points to): ``zigzag/*.yaml`` and ``zigzag/expected.csv`` (ZigZag 3.9.1,
KU Leuven MICAS, MIT licence: its hardware descriptions and the energy and latency its test
suite asserts on ResNet-18), ``onnx/resnet18.onnx`` (ZigZag's shape-only ResNet-18) and
``timeloop/README.md`` (Timeloop/Accelergy exercises' reference outputs for the default conv
layer). Nothing of them is copied here: each figure is read from those files when asked for.

How a ZigZag accelerator becomes an npu-dse design (:func:`zigzag_design`)
-------------------------------------------------------------------------
* Array: ZigZag's operational array has 2-4 dimensions, and the spatial mapping its tests use
  (``zigzag/inputs/mapping/<name>.yaml``, :data:`ZIGZAG_SPATIAL`) says how many of its MACs
  work: all of them but on tesla_npu_like, whose mapping unrolls ``K 32 x OX 8 x OY 4`` = 1024
  of its 32 x 32 x 4 = 4096 MACs (ZigZag reports a spatial utilization of 0.25). npu-dse gets a
  square 2-D array of the MACs that work (``rows = cols = sqrt``; 32 x 32 for all five).
* Dataflow: npu-dse's two array dimensions take ZigZag's first two (D1, D2): output channels
  against input channels is weight stationary (edge_tpu_like, tpu_like, ascend_like,
  meta_prototype: ``K x C``), output channels against output pixels is output stationary
  (tesla_npu_like: ``K x OX``). The further unrolled dimensions (D3, D4) cannot be expressed,
  and npu-dse lowers a conv to a GEMM whose reduction is ``C * FY * FX`` where ZigZag unrolls
  ``C`` alone (ResNet-18's first layer, 3 channels, fills 92 % of a 32-row ws array in npu-dse
  and 9 % in ZigZag).
* Buffers: an operand's buffer is the largest on-chip memory that holds it (ifmap: ``I1``,
  filter: ``I2``, ofmap: ``O``), its capacity times its instances (a memory that serves no
  array dimension is one per MAC: tpu_like's 128 B weight registers are a 128 KiB filter
  buffer); a memory shared by several operands is split evenly between them. The smaller
  levels under it (ascend_like's 64 KB, meta_prototype's 32 and 64 KB, tesla_npu_like's 1 KB
  SRAMs) cannot be expressed: npu-dse has one SRAM level.
* Energies (a technology file, :func:`zigzag_tech`): ``mac_pj`` = ``unit_energy``; each buffer's
  ``*_sram_pj_per_bit`` = its memory's ``r_cost / bandwidth_max`` of the read port (npu-dse has
  one energy per bit for reads and writes: ZigZag's writes cost 0.9-2.3x its reads, and writes
  are the DRAM fills only); ``dram_pj_per_bit`` = the DRAM read cost over its 64-bit port
  (700 / 64; writes cost 750 / 64); ``leak_mw_per_mm2`` = 0 and ``reg_pj_per_bit`` = 0 (ZigZag
  costs neither leakage nor the wires and pipeline registers between PEs); ``rf_pj_per_bit``
  = 0: ZigZag's per-PE register files (1-128 B) are reached once per group of MACs that share
  them (``served_dimensions``) and only for the operands that have one, which npu-dse's
  per-MAC law (``w + a + 2 acc`` bits on every MAC, ``hw.tech``) cannot express.
* Workload: ResNet-18's Conv and Gemm nodes (ZigZag costs no other node), 8-bit weights and
  activations, 16-bit partial sums, 1 GHz (a cycle per cycle), DRAM 8 bytes per cycle shared
  by reads and writes (ZigZag's one 64-bit read-write port).
"""

from __future__ import annotations

import csv
import dataclasses
import math
from pathlib import Path

import numpy as np

from hw import layers
from hw.types import CostReport
from npu_dse.designs import DesignFile, design_from_dict
from npu_dse.reference import reference_path
from npu_dse.simulate import simulate

ZIGZAG_ACCELERATORS = (
    "edge_tpu_like",
    "tpu_like",
    "ascend_like",
    "tesla_npu_like",
    "meta_prototype",
)
"""ZigZag's reference accelerators, in ``expected.csv``'s order."""

ZIGZAG_SPATIAL = {
    "edge_tpu_like": (("K", 8), ("C", 8), ("OX", 4), ("OY", 4)),
    "tpu_like": (("K", 32), ("C", 32)),
    "ascend_like": (("K", 16), ("C", 16), ("OX", 2), ("OY", 2)),
    "tesla_npu_like": (("K", 32), ("OX", 8), ("OY", 4)),
    "meta_prototype": (("K", 32), ("C", 2), ("OX", 4), ("OY", 4)),
}
"""The spatial unrolling (D1, D2, ...) of ZigZag 3.9.1's ``inputs/mapping/<name>.yaml``
(``meta_prototype_like.yaml`` for meta_prototype): ZigZag's own files, MIT licence."""

ZIGZAG_DATAFLOW = {
    name: "ws" if unroll[1][0] == "C" else "os" for name, unroll in ZIGZAG_SPATIAL.items()
}
"""npu-dse dataflow per accelerator: ``K x C`` on D1 x D2 is ws, ``K x OX`` is os."""

ZIGZAG_CLOCK_MHZ = 1000.0  # ZigZag counts cycles; 1 GHz makes a cycle a nanosecond
ZIGZAG_BITS = {"w_bits": 8, "a_bits": 8, "acc_bits": 16}  # ZigZag's input and psum precisions
_OPERANDS = {"ifmap": "I1", "filter": "I2", "ofmap": "O"}


def reference_dir() -> Path:
    """``../shared/reference`` (the folder of ``npu_dse.reference.reference_path``)."""
    return reference_path().parent


def zigzag_available() -> tuple[bool, str]:
    """Whether ZigZag's reference files are there, and if not, a reason naming what is absent."""
    ref = reference_dir()
    need = [ref / "zigzag" / "expected.csv", ref / "onnx" / "resnet18.onnx"]
    need += [ref / "zigzag" / f"{n}.yaml" for n in ZIGZAG_ACCELERATORS]
    missing = [str(p) for p in need if not p.exists()]
    return (not missing, f"ZigZag reference data not found: {missing[0]}" if missing else "")


# ---- ZigZag ------------------------------------------------------------------------------


def _read_port_bits(memory: dict) -> float:
    ports = [p for p in memory["ports"] if "read" in p["type"]]
    return float(ports[0]["bandwidth_max"])


def _instances(memory: dict, array: dict) -> int:
    """How many copies of a memory the array has: one per combination of the dimensions it
    does not serve."""
    served = set(memory.get("served_dimensions") or ())
    sizes = dict(zip(array["dimensions"], array["sizes"], strict=True))
    return int(math.prod(s for d, s in sizes.items() if d not in served))


def _buffers(hw: dict) -> dict[str, tuple[float, float]]:
    """Per npu-dse buffer: ``(KiB, read pJ/bit)`` of the largest on-chip memory of its operand."""
    array = hw["operational_array"]
    on_chip = {n: m for n, m in hw["memories"].items() if n != "dram"}
    out = {}
    for buf, operand in _OPERANDS.items():
        holders = [m for m in on_chip.values() if operand in m["operands"]]
        mem = max(holders, key=lambda m: m["size"] * _instances(m, array))
        kib = mem["size"] * _instances(mem, array) / 8.0 / 1024.0 / len(mem["operands"])
        out[buf] = (kib, mem["r_cost"] / _read_port_bits(mem))
    return out


def load_zigzag_hw(name: str) -> dict:
    """ZigZag's hardware description ``zigzag/<name>.yaml``, as parsed YAML."""
    import yaml  # flax's dependency; only needed when the reference data are there

    if name not in ZIGZAG_ACCELERATORS:
        raise ValueError(
            f"unknown ZigZag accelerator {name!r}; known: {', '.join(ZIGZAG_ACCELERATORS)}"
        )
    with (reference_dir() / "zigzag" / f"{name}.yaml").open() as f:
        return yaml.safe_load(f)


def zigzag_tech(hw: dict) -> dict:
    """The technology-file object (``npu_dse.techfiles``) of ZigZag's per-access energies."""
    dram = hw["memories"]["dram"]
    bufs = _buffers(hw)
    tech = {
        "mac_pj": float(hw["operational_array"]["unit_energy"]),
        "dram_pj_per_bit": dram["r_cost"] / _read_port_bits(dram),
        "leak_mw_per_mm2": 0.0,
        "reg_pj_per_bit": 0.0,
        "rf_pj_per_bit": 0.0,
    }
    return tech | {f"{b}_sram_pj_per_bit": pj for b, (_, pj) in bufs.items()}


def zigzag_design_dict(name: str) -> dict:
    """The design-file object (``npu_dse.designs``) of ZigZag's ``name`` (module docstring)."""
    hw = load_zigzag_hw(name)
    macs = math.prod(n for _, n in ZIGZAG_SPATIAL[name])  # the MACs ZigZag's mapping uses
    side = math.isqrt(macs)
    bufs = _buffers(hw)
    dram_bits = _read_port_bits(hw["memories"]["dram"])
    return {
        "name": f"zigzag-{name}",
        "rows": side,
        "cols": side,
        "dataflow": ZIGZAG_DATAFLOW[name],
        "clock_mhz": ZIGZAG_CLOCK_MHZ,
        **{f"{b}_sram_kib": kib for b, (kib, _) in bufs.items()},
        "unified_sram": False,
        "dram_bw_gbps": dram_bits / 8.0 * ZIGZAG_CLOCK_MHZ / 1000.0,
        "dram_per_stream": False,
        **ZIGZAG_BITS,
        "tech": zigzag_tech(hw),
    }


def zigzag_design(name: str) -> DesignFile:
    return design_from_dict(zigzag_design_dict(name))


def zigzag_expected() -> dict[str, dict]:
    """``expected.csv`` by accelerator: ``energy_pj`` and ``latency_cycles`` ZigZag asserts."""
    with (reference_dir() / "zigzag" / "expected.csv").open(newline="") as f:
        return {
            r["accelerator"]: {
                "energy_pj": float(r["zigzag_energy_pj"]),
                "latency_cycles": float(r["zigzag_latency_cycles"]),
            }
            for r in csv.DictReader(f)
        }


def zigzag_workload() -> layers.Workload:
    """ResNet-18's Conv and Gemm layers from ZigZag's ONNX file (the nodes ZigZag costs)."""
    from npu_dse.onnx_import import import_onnx

    imported = import_onnx(reference_dir() / "onnx" / "resnet18.onnx")
    return layers.workload([lay for lay in imported.layers if lay.gemm_count])


def report_total(rep: CostReport, field: str) -> float:
    """The sum over layers of one report field."""
    return float(np.sum(np.asarray(getattr(rep, field))))


def dram_bytes(rep: CostReport) -> float:
    """Every byte the report moves to or from DRAM."""
    parts = ("ifmap_read", "filter_read", "ofmap_write", "ofmap_read")
    return sum(report_total(rep, f"dram_{p}_bytes") for p in parts)


def energy_pj(rep: CostReport) -> float:
    """Total energy of the report, pJ (every ``energy_*_pj`` term)."""
    names = [f.name for f in dataclasses.fields(rep) if f.name.startswith("energy_")]
    return sum(report_total(rep, n) for n in names)


def compare_zigzag(name: str, workload: layers.Workload | None = None) -> dict:
    """npu-dse's figures for ZigZag's ``name`` on ResNet-18 beside ZigZag's, with ratios."""
    wl = zigzag_workload() if workload is None else workload
    rep = simulate(wl, zigzag_design(name)).report
    ref = zigzag_expected()[name]
    energy, cycles = energy_pj(rep), report_total(rep, "total_cycles")
    return {
        "accelerator": name,
        "dataflow": ZIGZAG_DATAFLOW[name],
        "energy_pj": energy,
        "zigzag_energy_pj": ref["energy_pj"],
        "energy_ratio": energy / ref["energy_pj"],
        "latency_cycles": cycles,
        "zigzag_latency_cycles": ref["latency_cycles"],
        "latency_ratio": cycles / ref["latency_cycles"],
        "compute_cycles": report_total(rep, "compute_cycles"),
        "dram_bytes": dram_bytes(rep),
        "energy_dram_pj": report_total(rep, "energy_dram_pj"),
        "energy_sram_pj": report_total(rep, "energy_sram_pj"),
        "energy_mac_pj": report_total(rep, "energy_mac_pj"),
    }
