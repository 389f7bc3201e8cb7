"""Design files: one JSON object for a whole design, read back exactly as it was written.

A design file names every hardware field with its unit, the technology under ``tech`` and,
optionally, per-layer widths and mappings under ``layers`` keyed by layer name::

    {"format": "npu-dse-design", "version": 1, "name": "edge-tpu-like",
     "rows": 64, "cols": 64, "dataflow": "os", "clock_mhz": 480.0,
     "ifmap_sram_kib": 3072.0, "filter_sram_kib": 4096.0, "ofmap_sram_kib": 1024.0,
     "unified_sram": true, "dram_bw_gbps": 4.0, "dram_per_stream": false,
     "w_bits": 8, "a_bits": 8, "acc_bits": 32, "vector_lanes": 64,
     "vector_precision": "int16", "host_gops": 50.0, "host_link_gbps": 4.0,
     "dram_capacity_gib": 1.0, "pe_local_bytes": 0.0,
     "unsupported_ops": [], "fusion": true, "memory_model": "tiled", "grouped_lowering": "auto",
     "tech": {"node_nm": 45.0, "mult_pj_8b": 0.2, ...},
     "layers": {"conv1": {"w_bits": 4, "a_bits": 8, "tile_m": 256, "tile_k": 27,
                          "tile_n": 16, "loop_order": "out"}}}

Every key but ``format``, ``version`` and ``layers`` is required when a file is written; a
file that is read may leave out any hardware or ``tech`` key, which then comes from ``base``
(a preset name, default ``DEFAULT_BASE``). ``tech`` takes the keys of a technology file
(``npu_dse.techfiles``: the table's fields and the per-access overrides). Unknown keys are
an error; every value is checked (``hw.validate``). A layer entry may give widths, a mapping
(all four of ``tile_m``, ``tile_k``, ``tile_n``, ``loop_order``) or both; layers not named keep
the design's widths and the mapper's choice. :data:`FIELDS` lists every key with its unit.

Writing a design and reading it back gives the same values bit for bit (floats are written
with ``repr``), so simulating a search's ``best.json`` reproduces the search's figures.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np

from hw import bounds, presets, tech
from hw.bounds import CONFIG_RANGES, InputError
from hw.types import DATAFLOWS, LOOP_ORDERS, Mapping, NPUConfig, Workload, canonical
from hw.validate import InvalidFieldError, validate_config
from hw.x64 import x64
from npu_dse.inputs import boundary
from npu_dse.rundir import read_json
from npu_dse.techfiles import tech_from_dict, tech_to_dict

FORMAT = "npu-dse-design"
VERSION = 1
DEFAULT_BASE = "scalesim-32x32"
"""The preset a design file's missing keys come from when it names no ``base``."""

FIELDS: dict[str, str] = {
    "name": "label of the design (text)",
    "rows": "MAC array height, PEs (integer)",
    "cols": "MAC array width, PEs (integer)",
    "dataflow": f"one of {', '.join(DATAFLOWS)} (output, weight or input stationary)",
    "clock_mhz": "core clock, MHz",
    "ifmap_sram_kib": "input-activation buffer, KiB",
    "filter_sram_kib": "weight buffer, KiB",
    "ofmap_sram_kib": "output / partial-sum buffer, KiB",
    "unified_sram": "true: one buffer of the three sizes' sum shared by all operands",
    "dram_bw_gbps": "DRAM bandwidth, GB/s",
    "dram_per_stream": "true: each of the ifmap, filter and ofmap streams has dram_bw_gbps",
    "w_bits": "weight width of the multipliers, bits (integer)",
    "a_bits": "activation width of the multipliers, bits (integer)",
    "acc_bits": "accumulator width, bits (integer)",
    "vector_lanes": "vector-unit operations per cycle (integer)",
    "vector_precision": "arithmetic of the vector unit: int16, fp16 or fp32",
    "host_gops": "host CPU fp32 throughput for fallback layers, Gop/s",
    "host_link_gbps": "NPU-host link bandwidth, GB/s",
    "dram_capacity_gib": "device DRAM capacity, GiB (weights plus KV cache of an LLM)",
    "pe_local_bytes": "PE-local storage (register file / scratchpads) per PE, bytes; 0: none",
    "unsupported_ops": "layer kinds the NPU cannot run (they fall back to the host)",
    "fusion": "true: fused intermediates stay on chip",
    "memory_model": "tiled (tiles and a roofline) or scalesim (SCALE-Sim's prefetcher)",
    "grouped_lowering": "grouped/depthwise convs: auto (per layer, GEMMs or channel-parallel) "
    "or gemm (SCALE-Sim's per-group GEMMs)",
    "cross_layer": "true: an output that fits on chip stays there for the next layer",
}
"""Hardware keys of a design file and their units (``tech`` keys: ``TECH_FIELDS``)."""

TECH_FIELDS = tech.LAW_FIELDS
"""The ``tech`` keys a written design always carries (overrides only where set; every key a
read design may give: ``npu_dse.techfiles.TECH_KEYS``)."""
LAYER_KEYS = ("w_bits", "a_bits", "tile_m", "tile_k", "tile_n", "loop_order")
_MAPPING_KEYS = ("tile_m", "tile_k", "tile_n", "loop_order")
TILE_MAX = 2**32
"""Largest tile a file may give (a layer's own check then caps it at its dimension or 2^16)."""
_INTS = ("rows", "cols", "w_bits", "a_bits", "acc_bits", "vector_lanes")
_BOOLS = ("unified_sram", "dram_per_stream", "fusion", "cross_layer")
_TEXTS = ("name", "vector_precision", "memory_model", "grouped_lowering")
_FLOATS = tuple(k for k in FIELDS if k not in (*_INTS, *_BOOLS, *_TEXTS, "dataflow"))


@dataclasses.dataclass(frozen=True)
class DesignFile:
    """A design as read from a file: the hardware and the optional per-layer choices.

    ``layers`` maps a layer name to a dict with some of :data:`LAYER_KEYS` (``loop_order`` as
    its name: ``out``, ``weight`` or ``input``).
    """

    config: NPUConfig
    layers: dict[str, dict] = dataclasses.field(default_factory=dict)


def split_sram(config: NPUConfig, total_kib: float) -> NPUConfig:
    """``config`` with its three buffers scaled to ``total_kib`` in their current proportions
    (the one rule for a total-buffer size, used by ``simulate --sram-kib`` and by spaces)."""
    if not (isinstance(total_kib, int | float) and math.isfinite(total_kib) and total_kib > 0):
        raise ValueError(f"sram_kib must be a finite number > 0 KiB, got {total_kib!r}")
    bufs = ("ifmap_sram_kib", "filter_sram_kib", "ofmap_sram_kib")
    total = sum(float(getattr(config, b)) for b in bufs)
    return dataclasses.replace(
        config, **{b: np.float64(total_kib * (float(getattr(config, b)) / total)) for b in bufs}
    )


def _number(value: float | int, integer: bool):
    x = float(value)
    return int(x) if integer and x == int(x) else x


@x64
def config_to_dict(config: NPUConfig) -> dict:
    """Every hardware and ``tech`` field of ``config`` as a design-file object."""
    out: dict = {"format": FORMAT, "version": VERSION, "name": config.name}
    for key in FIELDS:
        if key == "name":
            continue
        value = getattr(config, key)
        if key == "dataflow":
            out[key] = DATAFLOWS[int(value)]
        elif key in _BOOLS:
            out[key] = bool(value)
        elif key == "unsupported_ops":
            out[key] = list(value)
        elif key in _TEXTS:
            out[key] = value
        else:
            out[key] = _number(value, key in _INTS)
    out["tech"] = tech_to_dict(config.tech)
    return out


@x64
def design_to_dict(
    config: NPUConfig,
    workload: Workload | None = None,
    mapping: Mapping | None = None,
    layer_bits: tuple | None = None,
) -> dict:
    """A design file's object: the hardware and, given a workload, per-layer widths
    (``layer_bits = (w_bits, a_bits)``, shape=(L,) each) and mappings by layer name."""
    out = config_to_dict(config)
    if workload is None or (mapping is None and layer_bits is None):
        return out
    entries = {}
    for i, name in enumerate(workload.names):
        entry = {}
        if layer_bits is not None:
            entry["w_bits"] = _number(np.asarray(layer_bits[0])[i], True)
            entry["a_bits"] = _number(np.asarray(layer_bits[1])[i], True)
        if mapping is not None:
            for key in ("tile_m", "tile_k", "tile_n"):
                entry[key] = int(np.asarray(getattr(mapping, key))[i])
            entry["loop_order"] = LOOP_ORDERS[int(np.asarray(mapping.loop_order)[i])]
        entries[name] = entry
    out["layers"] = entries
    return out


def _value(key: str, value):
    """A file's value of hardware key ``key`` as the config stores it, or a one-line error."""
    where = f"design: {key!r}"
    if key in _BOOLS:
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be true or false, got {value!r}")
        return value
    if key in _TEXTS:
        if not isinstance(value, str):
            raise ValueError(f"{where} must be a string, got {value!r}")
        return value
    if key == "unsupported_ops":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{where} must be a list of layer kinds, got {value!r}")
        return tuple(value)
    if key == "dataflow":
        if value not in DATAFLOWS:
            raise ValueError(f"{where} must be one of {', '.join(DATAFLOWS)}, got {value!r}")
        return np.int64(DATAFLOWS.index(value))
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**63:
        raise ValueError(
            f"{where} must be a finite number ({FIELDS[key]}), got an integer of "
            f"{value.bit_length()} bits"
        )
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{where} must be a finite number ({FIELDS[key]}), got {value!r}")
    if key in CONFIG_RANGES:
        lo, hi, unit = CONFIG_RANGES[key]
        bounds.check_range(where, value, lo, hi, unit)
    if key in _INTS:
        if value != int(value):
            raise ValueError(f"{where} must be an integer ({FIELDS[key]}), got {value!r}")
        return np.int64(value) if key in ("rows", "cols", "vector_lanes") else np.float64(value)
    return np.float64(value)


def _layers(spec) -> dict[str, dict]:
    if not isinstance(spec, dict):
        raise ValueError("design: 'layers' must be an object keyed by layer name")
    out = {}
    for name, entry in spec.items():
        where = f"design: layer {name!r}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where} must be an object of {', '.join(LAYER_KEYS)}")
        unknown = sorted(set(entry) - set(LAYER_KEYS))
        if unknown:
            raise ValueError(
                f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(LAYER_KEYS)}"
            )
        given = [k for k in _MAPPING_KEYS if k in entry]
        if given and len(given) != len(_MAPPING_KEYS):
            missing = [k for k in _MAPPING_KEYS if k not in entry]
            raise ValueError(
                f"{where}: a mapping needs {', '.join(_MAPPING_KEYS)}; missing {missing[0]!r}"
            )
        if "loop_order" in entry and entry["loop_order"] not in LOOP_ORDERS:
            raise ValueError(
                f"{where}: loop_order must be one of {', '.join(LOOP_ORDERS)}, "
                f"got {entry['loop_order']!r}"
            )
        for key in ("w_bits", "a_bits", "tile_m", "tile_k", "tile_n"):
            v = entry.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ValueError(f"{where}: {key} must be an integer >= 1, got {v!r}")
            if v is not None and v > TILE_MAX:
                raise ValueError(f"{where}: {key} must be at most 2^32, got {v}")
        out[str(name)] = dict(entry)
    return out


@x64
def design_from_dict(spec) -> DesignFile:
    """Read a design object (see the module docstring); bad keys or values raise one line."""
    if not isinstance(spec, dict):
        raise ValueError(f"a design is a JSON object, got {type(spec).__name__}")
    allowed = ("format", "version", "base", *FIELDS, "tech", "layers", "networks")
    unknown = sorted(set(spec) - set(allowed))
    if unknown:
        raise ValueError(f"design: unknown key {unknown[0]!r}; allowed: {', '.join(allowed)}")
    if spec.get("format", FORMAT) != FORMAT:
        raise ValueError(f"design: 'format' must be {FORMAT!r}, got {spec['format']!r}")
    if spec.get("version", VERSION) != VERSION:
        raise ValueError(f"design: 'version' must be {VERSION}, got {spec['version']!r}")
    base = spec.get("base", DEFAULT_BASE)
    if base not in presets.preset_names():
        raise ValueError(
            f"design: base {base!r} is not a preset; known: {', '.join(presets.preset_names())}"
        )
    config = presets.get_preset(base)
    changes = {k: _value(k, spec[k]) for k in FIELDS if k in spec}
    if "tech" in spec:
        changes["tech"] = tech_from_dict(spec["tech"], config.tech, "design")
    config = dataclasses.replace(config, **changes)
    try:
        config = validate_config(canonical(config))
    except InvalidFieldError as err:
        raise ValueError(f"design: {err}") from None
    return DesignFile(config, _layers(spec.get("layers", {})))


@boundary
def load_design(path: str | Path) -> DesignFile:
    """Read a design file; errors name the file and what is wrong."""
    spec = read_json(path, "design file")
    try:
        return design_from_dict(spec)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None


@x64
def per_layer(design: DesignFile, workload: Workload, mapping: Mapping):
    """The design's per-layer choices on ``workload``: ``(mapping, layer_bits)``.

    Layers the file names get its tiles and loop order (over ``mapping``, the mapper's
    choice) and its widths; ``layer_bits`` is ``None`` when no layer gives widths. A name the
    workload lacks is an error naming it.
    """
    names = list(workload.names)
    _layers(design.layers)
    missing = sorted(set(design.layers) - set(names))
    if missing:
        raise ValueError(
            f"design: layer {missing[0]!r} is not in the workload; its layers are "
            f"{', '.join(names[:8])}{', ...' if len(names) > 8 else ''}"
        )
    cols = {k: np.array(getattr(mapping, k), dtype=np.int64) for k in _MAPPING_KEYS}
    w = np.full(len(names), float(design.config.w_bits))
    a = np.full(len(names), float(design.config.a_bits))
    widths = False
    for name, entry in design.layers.items():
        i = names.index(name)
        if "tile_m" in entry:
            for key, dim in (("tile_m", "gemm_m"), ("tile_k", "gemm_k"), ("tile_n", "gemm_n")):
                top = max(int(np.asarray(getattr(workload, dim))[i]), 2**16)
                if entry[key] > top:
                    raise InputError(
                        f"design: layer {name!r}: {key} {entry[key]} is above the layer's "
                        f"{dim} and 2^16 (at most {top})"
                    )
                cols[key][i] = entry[key]
            cols["loop_order"][i] = LOOP_ORDERS.index(entry["loop_order"])
        for key, arr in (("w_bits", w), ("a_bits", a)):
            if key not in entry:
                continue
            hw_bits = float(getattr(design.config, key))
            if entry[key] > hw_bits:
                raise ValueError(
                    f"design: layer {name!r}: {key} {entry[key]} is wider than the "
                    f"multipliers' {hw_bits:g} bits"
                )
            arr[i], widths = entry[key], True
    return Mapping(**cols), ((w, a) if widths else None)
