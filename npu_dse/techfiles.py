"""Technology files: the energy and area table a design is costed with, as JSON.

A technology file is one JSON object whose keys are :data:`TECH_KEYS` (the fields of
``hw.types.TechTable`` by name, plus the direct per-access energies of ``hw.tech.OVERRIDES``
that bypass the scaling laws), with optional ``format``, ``version`` and ``sources`` (an object
of text per key, for the record)::

    {"format": "npu-dse-tech", "version": 1,
     "mac_pj": 0.04, "dram_pj_per_bit": 10.9375, "ifmap_sram_pj_per_bit": 0.2032,
     "leak_mw_per_mm2": 0.0}

Keys left out keep the design's table; ``node_nm`` first rescales the scaling laws' anchors to
that node (``hw.tech.default_tech``), then the other keys apply. Unknown keys and bad values are
one-line errors. A design file's ``tech`` object takes the same keys (``npu_dse.designs``). The
default table ships as :func:`default_tech_path` (``data/tech/default_45nm.json``), with the
source of every figure.

>>> from hw import presets
>>> base = presets.get_preset("tpu-v1-like").tech
>>> t = tech_from_dict({"mac_pj": 0.04, "dram_pj_per_bit": 10.9}, base)
>>> t.overrides, float(t.dram_pj_per_bit)
(('mac_pj',), 10.9)
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np

from hw import tech
from hw.types import TechTable
from hw.x64 import x64
from npu_dse.inputs import boundary
from npu_dse.rundir import read_json

FORMAT = "npu-dse-tech"
VERSION = 1

TECH_KEYS: dict[str, str] = {
    "node_nm": "process node, nm; rescales the laws' anchors (energy ~ node, area ~ node^2)",
    "mult_pj_8b": "one 8x8-bit integer multiply, pJ (scales with w * a / 64)",
    "add_pj_32b": "one 32-bit integer add, pJ (scales with acc / 32)",
    "mult_um2_8b": "area of one 8x8-bit multiplier, um^2",
    "add_um2_32b": "area of one 32-bit adder, um^2",
    "reg_pj_per_bit": "operand or partial sum moved one PE along the array, pJ/bit",
    "reg_um2_per_bit": "area of one pipeline register bit, um^2/bit",
    "sram_pj_per_64b_ref": "64-bit SRAM access at sram_ref_kib, pJ",
    "sram_ref_kib": "size of the SRAM anchor above, KiB",
    "sram_energy_exp": "SRAM energy grows as (size / sram_ref_kib) ** exp (dimensionless)",
    "sram_um2_per_bit": "SRAM area per bit with periphery, um^2/bit",
    "dram_pj_per_bit": "DRAM access (read or write), pJ/bit",
    "leak_mw_per_mm2": "static power per mm^2 of die, mW/mm^2",
    "vector_pj_per_op": "one vector-unit operation at 16 bits, pJ",
    "host_pj_per_byte": "one byte over the host link, pJ/byte",
    "host_pj_per_op": "one fp32 operation on the host CPU, pJ",
    "rf_pj_per_bit": "PE-local storage (register file / scratchpad) access, pJ/bit; 0: from "
    "the design's pe_local_bytes by the SRAM law",
    "mac_pj": "override: one MAC at the design's widths, pJ (bypasses mult/add laws)",
    "ifmap_sram_pj_per_bit": "override: ifmap buffer access, pJ/bit (bypasses the SRAM law)",
    "filter_sram_pj_per_bit": "override: filter buffer access, pJ/bit (bypasses the SRAM law)",
    "ofmap_sram_pj_per_bit": "override: ofmap buffer access, pJ/bit (bypasses the SRAM law)",
    "ifmap_rf_pj_per_bit": "override: PE-local ifmap access, pJ/bit (bypasses rf_pj_per_bit "
    "and the size law)",
    "filter_rf_pj_per_bit": "override: PE-local filter access, pJ/bit (bypasses rf_pj_per_bit "
    "and the size law)",
    "ofmap_rf_pj_per_bit": "override: PE-local partial-sum access, pJ/bit (bypasses "
    "rf_pj_per_bit and the size law)",
}
"""Every key of a technology file (and of a design file's ``tech``) with its unit."""

_POSITIVE = ("node_nm", "sram_ref_kib")  # > 0; every other key >= 0
_FILE_KEYS = ("format", "version", "sources")


def default_tech_path() -> Path:
    """The shipped default table (45 nm, every figure with its source)."""
    return Path(__file__).resolve().parent / "data" / "tech" / "default_45nm.json"


def _number(key: str, value, where: str) -> np.float64:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    positive = key in _POSITIVE
    if not ok or (value <= 0 if positive else value < 0):
        raise ValueError(
            f"{where}: tech {key!r} must be a finite number {'> 0' if positive else '>= 0'} "
            f"({TECH_KEYS[key]}), got {value!r}"
        )
    return np.float64(value)


@x64
def tech_from_dict(spec, base: TechTable, where: str = "technology file") -> TechTable:
    """``base`` with the keys of ``spec`` applied (see the module docstring); bad keys or
    values raise one line starting with ``where``."""
    if not isinstance(spec, dict):
        raise ValueError(f"{where}: 'tech' must be an object of {', '.join(TECH_KEYS)}")
    unknown = sorted(set(spec) - set(TECH_KEYS))
    if unknown:
        raise ValueError(
            f"{where}: unknown tech key {unknown[0]!r}; allowed: {', '.join(TECH_KEYS)}"
        )
    values = {k: _number(k, v, where) for k, v in spec.items()}
    table = base
    if "node_nm" in values and float(values["node_nm"]) != float(base.node_nm):
        fresh = tech.default_tech(float(values["node_nm"]))
        laws = {k: getattr(fresh, k) for k in tech.LAW_FIELDS if k != "rf_pj_per_bit"}
        table = dataclasses.replace(base, **laws)
    laws = {k: v for k, v in values.items() if k in tech.LAW_FIELDS}
    table = dataclasses.replace(table, **laws)
    overrides = {k: v for k, v in values.items() if k in tech.OVERRIDES}
    return tech.with_overrides(table, **overrides) if overrides else table


def tech_to_dict(t: TechTable) -> dict:
    """Every law field of ``t`` and the overrides it sets, as a ``tech`` object."""
    out = {k: float(getattr(t, k)) for k in tech.LAW_FIELDS}
    out |= {k: float(getattr(t, k)) for k in t.overrides}
    return out


@boundary
def load_tech(path: str | Path, base: TechTable) -> TechTable:
    """Read a technology file over ``base``; errors name the file and what is wrong."""
    spec = read_json(path, "technology file")
    where = f"{path}: technology file"
    if not isinstance(spec, dict):
        raise ValueError(f"{where} must be a JSON object of {', '.join(TECH_KEYS)}")
    if spec.get("format", FORMAT) != FORMAT:
        raise ValueError(f"{where}: 'format' must be {FORMAT!r}, got {spec['format']!r}")
    if spec.get("version", VERSION) != VERSION:
        raise ValueError(f"{where}: 'version' must be {VERSION}, got {spec['version']!r}")
    sources = spec.get("sources", {})
    if not isinstance(sources, dict) or not all(isinstance(v, str) for v in sources.values()):
        raise ValueError(f"{where}: 'sources' must be an object of text per key")
    body = {k: v for k, v in spec.items() if k not in _FILE_KEYS}
    return tech_from_dict(body, base, where)
