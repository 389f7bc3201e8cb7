"""Timeloop/Accelergy's example designs as npu-dse designs (see :mod:`npu_dse.peers` for the
reference files and ZigZag).

How a Timeloop example design becomes one (:func:`timeloop_design`)
---------------------------------------------------------------------
The README's table gives the PE array, the word width and the per-access energies; the rest
is stated here: one 128 KiB global buffer shared by the three operands (the exercises'
``shared_glb``, 16384 x 64 bits in the ``timeloop-mapper.flattened_architecture.yaml`` of
simple_weight_stationary and eyeriss_like; assumed the same for simple_output_stationary);
widths ``w = a = acc`` = the word width (eyeriss_like's 16-bit partial sums stay in its PE
scratchpads); dataflow ws for ``simple_weight_stationary`` and ``eyeriss_like`` (row stationary
is none of os/ws/is; as the ``eyeriss-like`` preset), os for ``simple_output_stationary``; no
DRAM bandwidth limit (Timeloop's runs have none). Rows x columns are the README's ``AxB`` as
written (eyeriss_like 14 x 12).

PE-local storage: eyeriss_like's per-PE scratchpads (:data:`TIMELOOP_EYERISS_SPADS`) become the
design's PE-local level, each operand at Timeloop's energy per scalar access over the bits
npu-dse moves per access (``<operand>_rf_pj_per_bit``); the simple designs' per-PE registers
are left out (their mapspaces are the exercise's, see the README), as before.
"""

from __future__ import annotations

import json
import re

from hw import layers
from npu_dse.designs import DesignFile, design_from_dict
from npu_dse.peers import dram_bytes, energy_pj, reference_dir, report_total
from npu_dse.simulate import simulate
from npu_dse.workloads import BUILDERS

TIMELOOP_DESIGNS = ("simple_weight_stationary", "simple_output_stationary", "eyeriss_like")
TIMELOOP_DATAFLOW = {
    "simple_weight_stationary": "ws",
    "simple_output_stationary": "os",
    "eyeriss_like": "ws",
}
TIMELOOP_EYERISS_SPADS = {
    "ifmap": (24, 0.10),
    "filter": (384, 0.99),
    "ofmap": (32, 0.23),
}
"""eyeriss_like's per-PE scratchpads as operand -> (bytes, pJ per scalar access): ifmap_spad 24
words of 8 bits, weights_spad 384 x 8 bits, psum_spad 16 x 16 bits, and their "Energy
(per-scalar-access)" in the exercises' reference output for the default problem
(``workspace/example_designs/example_designs/eyeriss_like/ref_outputs/default_problem/
timeloop-mapper.stats.txt``, Accelergy-Project/timeloop-accelergy-exercises, MIT licence).
The shared README's table does not give them."""

TIMELOOP_GLB_KIB = 128.0  # the exercises' shared_glb: 16384 words x 64 bits (module docstring)


def timeloop_available() -> tuple[bool, str]:
    path = reference_dir() / "timeloop" / "README.md"
    return path.exists(), f"Timeloop reference data not found: {path}"


def _timeloop_readme() -> str:
    return (reference_dir() / "timeloop" / "README.md").read_text()


def _pj_per_bit(cell: str) -> float:
    """``"32.38 / 64 = 0.506"`` or ``"0.506"`` -> 0.506 (the last number of the cell)."""
    return float(re.findall(r"[0-9.]+", cell)[-1])


def timeloop_table() -> dict[str, dict]:
    """The README's table of designs: PEs, word bits, cycles, energy, DRAM words, energies."""
    out = {}
    for line in _timeloop_readme().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not cells or cells[0] not in TIMELOOP_DESIGNS:
            continue
        rows, cols = (int(x) for x in cells[1].split("x"))
        out[cells[0]] = {
            "rows": rows,
            "cols": cols,
            "word_bits": int(cells[2]),
            "cycles": float(cells[3].replace(",", "")),
            "energy_pj": float(cells[5]) * 1e6,
            "dram_words": float(cells[7].replace(",", "")),
            "dram_pj_per_bit": _pj_per_bit(cells[8]),
            "glb_pj_per_bit": _pj_per_bit(cells[9]),
            "mac_pj": _pj_per_bit(cells[10]),
        }
    glb = {k: v["glb_pj_per_bit"] for k, v in out.items()}
    for name, v in out.items():  # a cell that says only "0.506" refers to the row above
        v["glb_pj_per_bit"] = glb[name]
    return out


def timeloop_workload() -> layers.Workload:
    """The README's ``default_problem`` (its JSON block) as a workload."""
    block = re.search(r"```json\n(.*?)```", _timeloop_readme(), re.S).group(1)
    specs = json.loads(block)["layers"]
    built = []
    for spec in specs:
        kwargs = {k: v for k, v in spec.items() if k not in ("name", "type")}
        built.append(BUILDERS[spec["type"]](spec["name"], **kwargs))
    return layers.workload(built)


def _pe_local(name: str, bits: int) -> tuple[dict, dict]:
    """``(design keys, tech keys)`` of ``name``'s PE-local level: eyeriss_like's scratchpads
    (one access moves ``bits``, the design's width of every operand), none for the others."""
    if name != "eyeriss_like":
        return {"pe_local_bytes": 0.0}, {"rf_pj_per_bit": 0.0}
    spads = TIMELOOP_EYERISS_SPADS
    design = {"pe_local_bytes": float(sum(size for size, _ in spads.values()))}
    return design, {f"{op}_rf_pj_per_bit": pj / bits for op, (_, pj) in spads.items()}


def timeloop_design(name: str, row: dict) -> DesignFile:
    bits = row["word_bits"]
    glb = row["glb_pj_per_bit"]
    local, local_tech = _pe_local(name, bits)
    return design_from_dict(
        {
            "name": f"timeloop-{name}",
            "rows": row["rows"],
            "cols": row["cols"],
            "dataflow": TIMELOOP_DATAFLOW[name],
            "clock_mhz": 1000.0,
            "ifmap_sram_kib": TIMELOOP_GLB_KIB / 3,
            "filter_sram_kib": TIMELOOP_GLB_KIB / 3,
            "ofmap_sram_kib": TIMELOOP_GLB_KIB / 3,
            "unified_sram": True,
            "dram_per_stream": False,
            "w_bits": bits,
            "a_bits": bits,
            "acc_bits": bits,
            **local,
            "tech": {
                "mac_pj": row["mac_pj"],
                "dram_pj_per_bit": row["dram_pj_per_bit"],
                "ifmap_sram_pj_per_bit": glb,
                "filter_sram_pj_per_bit": glb,
                "ofmap_sram_pj_per_bit": glb,
                "leak_mw_per_mm2": 0.0,
                "reg_pj_per_bit": 0.0,
                "rf_pj_per_bit": 0.0,
                **local_tech,
            },
        }
    )


def compare_timeloop(name: str) -> dict:
    """npu-dse's figures for Timeloop's ``name`` on the default problem beside Timeloop's."""
    row = timeloop_table()[name]
    rep = simulate(timeloop_workload(), timeloop_design(name, row), stall=False).report
    ref_bytes = row["dram_words"] * row["word_bits"] / 8.0
    energy, cycles = energy_pj(rep), report_total(rep, "total_cycles")
    return {
        "design": name,
        "dataflow": TIMELOOP_DATAFLOW[name],
        "dram_bytes": dram_bytes(rep),
        "timeloop_dram_bytes": ref_bytes,
        "dram_ratio": dram_bytes(rep) / ref_bytes,
        "energy_pj": energy,
        "timeloop_energy_pj": row["energy_pj"],
        "energy_ratio": energy / row["energy_pj"],
        "cycles": cycles,
        "timeloop_cycles": row["cycles"],
        "cycles_ratio": cycles / row["cycles"],
        "energy_dram_pj": report_total(rep, "energy_dram_pj"),
        "energy_sram_pj": report_total(rep, "energy_sram_pj"),
        "energy_mac_pj": report_total(rep, "energy_mac_pj"),
        "energy_rf_pj": report_total(rep, "energy_rf_pj"),
    }
