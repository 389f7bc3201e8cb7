"""Technology tables and the energy and area of MACs, SRAMs and whole designs.

``default_tech()`` fills a :class:`~hw.types.TechTable` at 45 nm; every figure has a source or
is marked as an assumption:

=====================  ===========  =========  ===================================================
field                  value        unit       source
=====================  ===========  =========  ===================================================
node_nm                45           nm         reference node of the anchors below
mult_pj_8b             0.2          pJ         Horowitz, ISSCC 2014: 8-bit int multiply
add_pj_32b             0.1          pJ         Horowitz, ISSCC 2014: 32-bit int add
mult_um2_8b            282          um^2       Horowitz, ISSCC 2014 (area table): 8-bit multiplier
add_um2_32b            137          um^2       Horowitz, ISSCC 2014 (area table): 32-bit adder
reg_pj_per_bit         0.0075       pJ/bit     assumption: a systolic hop writes one pipeline
                                               flip-flop and drives one neighbour wire, each
                                               taken as a bit of Horowitz's 8-bit add
                                               (0.03 pJ / 8); see the note below
reg_um2_per_bit        4.522        um^2/bit   NanGate 45 nm Open Cell Library, DFF_X1
sram_pj_per_64b_ref    10           pJ         Horowitz, ISSCC 2014: 64-bit read, 8 KB SRAM
sram_ref_kib           8            KiB        (the size of the anchor above; KB read as KiB)
sram_energy_exp        0.474561     -          fit: ``ln(100 / 10) / ln(1024 / 8)`` through the
                                               8 KB (10 pJ) and 1 MB (100 pJ) anchors
sram_um2_per_bit       0.692        um^2/bit   Intel 45 nm 6T cell, 0.346 um^2 (Mistry et al.,
                                               IEDM 2007) / 50 % array efficiency (assumption)
dram_pj_per_bit        20.3125      pJ/bit     Horowitz, ISSCC 2014: 1.3-2.6 nJ per 64-bit DRAM
                                               access; low end, 1300 / 64
leak_mw_per_mm2        5            mW/mm^2    assumption (order of magnitude for a low-power
                                               process; no source)
vector_pj_per_op       1.5          pJ         Horowitz, ISSCC 2014: fp16 multiply 1.1 + fp16
                                               add 0.4 (one op = one multiply-add; assumption)
host_pj_per_op         8.75         pJ         Horowitz, ISSCC 2014: ~70 pJ per instruction of a
                                               general-purpose core, spread over 8 SIMD lanes
                                               (the 8 lanes are an assumption; not node-scaled)
host_pj_per_byte       80           pJ/byte    assumption: ~10 pJ/bit for a PCIe-class serial
                                               link, link only (DRAM at either end not included)
rf_pj_per_bit          0            pJ/bit     0: the PE-local level's energy follows its size
                                               (``pe_local_bytes``, below); > 0: this figure
=====================  ===========  =========  ===================================================

Direct per-access energies (:data:`OVERRIDES`: ``mac_pj``, ``ifmap_sram_pj_per_bit``,
``filter_sram_pj_per_bit``, ``ofmap_sram_pj_per_bit``) bypass the scaling laws: set with
:func:`with_overrides`, they replace :func:`mac_energy_pj` (scaled by the law's ratio for layers
narrower than the design) and the SRAM power law, so that a peer tool's per-access table (ZigZag,
Accelergy) can be used as it is; ``ifmap_rf_pj_per_bit``, ``filter_rf_pj_per_bit`` and
``ofmap_rf_pj_per_bit`` do the same for the PE-local level.

The PE-local level (``NPUConfig.pe_local_bytes`` of register file or scratchpads in every PE;
Eyeriss: a 12-word ifmap, a 224-word filter and a 24-word psum scratchpad of 16 bits, 520 B,
Chen et al., JSSC 2017) costs, per bit, :func:`pe_local_pj_per_bit`: the per-operand override,
else ``rf_pj_per_bit`` where > 0, else the SRAM law above at the level's size
(``sram_pj_per_bit(pe_local_bytes / 1024)``), else 0 (no level). At Eyeriss's 520 B and 65 nm
the law gives 0.061 pJ/bit, within 15 % of Eyeriss's own register-file figure (1x a 16-bit
MAC, 0.053 pJ/bit; Sze et al., "Efficient processing of deep neural networks: a tutorial and
survey", Proc. IEEE 2017: RF 1x, PE array 2x, global buffer 6x, DRAM 200x a MAC). Its area
is SRAM area (:func:`sram_area_mm2`) per PE. How often the level is accessed is in ``hw.cost``.

Checks of the fitted laws against the anchors they did not fit: the 32 KB SRAM read is
``10 * 4 ** 0.4746 = 19.3 pJ`` (anchor 20 pJ, -3.5 %); a 32x32-bit multiply is
``0.2 * 16 = 3.2 pJ`` (anchor 3.1 pJ, +3 %) but ``282 * 16 = 4512 um^2`` (anchor 3495 um^2,
+29 %: area grows slower than the bit product); an 8-bit add is ``0.1 / 4 = 0.025 pJ`` (anchor
0.03 pJ, -17 %). Eyeriss's other ratios cross-check the SRAM and DRAM figures: its global
buffer (6x, 108 KB) gives ``6 * 0.053 = 0.32 pJ/bit`` against our 0.54 pJ/bit at 108 KiB, and
its DRAM (200x) gives 10.6 pJ/bit against 20.3 pJ/bit here.

``reg_pj_per_bit`` is for a flip-flop pipeline, not a register file. Eyeriss's register-file
ratio (1x a 16-bit MAC, ``0.85 / 16 = 0.053 pJ/bit``) is a scratchpad read and write and an
upper bound for a pipeline register: with it, operand movement alone in the ``tpu-v1-like``
preset at peak would draw about 69 W, against the 40 W that TPU v1 draws busy (Jouppi et al.,
ISCA 2017). Designs without PE-local storage (``pe_local_bytes`` 0, every preset but
``eyeriss-like``) pay none.

Node scaling is first order: on-chip energies scale with ``node / 45`` and areas with
``(node / 45) ** 2``; DRAM and host-link energies (off chip) and leakage per mm^2 stay as they
are. Real nodes depart from this (voltage stopped scaling near 28 nm; FinFET nodes leak less):
treat other nodes as an approximation.

Area is cell area plus a fixed share for what the model does not itemise. Against TPU v1
(Jouppi et al., ISCA 2017: a die under 331 mm^2, unified buffer 29 % and matrix unit 24 % of
it) the ``tpu-v1-like`` preset comes out well below the die: the anchors are synthesised cell
areas, without placement density, wiring or clock tree.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax.numpy as jnp
import numpy as np

from hw.types import NPUConfig, TechTable
from hw.x64 import x64

REF_NODE_NM = 45.0
"""Node of the anchor figures, nm."""

OVERHEAD_SHARE = 1.0 / 3.0
"""Share of the die taken by what ``area_mm2`` does not itemise: control, on-chip network,
DRAM and host interfaces, I/O pads. Assumption, in line with TPU v1, whose datapath is about
two-thirds of the die (Jouppi et al., ISCA 2017)."""

OVERRIDES = (
    "mac_pj",
    "ifmap_sram_pj_per_bit",
    "filter_sram_pj_per_bit",
    "ofmap_sram_pj_per_bit",
    "ifmap_rf_pj_per_bit",
    "filter_rf_pj_per_bit",
    "ofmap_rf_pj_per_bit",
)
"""TechTable fields that count only where named in ``TechTable.overrides``."""

LAW_FIELDS = tuple(
    f.name for f in dataclasses.fields(TechTable) if f.name not in (*OVERRIDES, "overrides")
)
"""TechTable fields that always count: the scaling laws' anchors, DRAM, leakage, host, RF."""

_MIN_SRAM_KIB = 1e-6  # clamp for SRAM sizes so that size**exp keeps a finite gradient at 0


@x64
def default_tech(node_nm: float = REF_NODE_NM) -> TechTable:
    """The technology table at ``node_nm`` (see the module table for values and sources).

    Energies on chip scale as ``node / 45``, areas as ``(node / 45) ** 2``; DRAM, host link
    and leakage per mm^2 do not scale (a first-order approximation).
    """
    if isinstance(node_nm, int | float) and not node_nm > 0:
        raise ValueError(f"node_nm must be > 0 nm, got {node_nm}")
    node = jnp.asarray(node_nm, dtype=float)
    e = node / REF_NODE_NM  # energy scale
    a = e * e  # area scale
    fixed = functools.partial(jnp.asarray, dtype=float)  # not scaled with the node
    return TechTable(
        node_nm=node,
        mult_pj_8b=0.2 * e,
        add_pj_32b=0.1 * e,
        mult_um2_8b=282.0 * a,
        add_um2_32b=137.0 * a,
        reg_pj_per_bit=2.0 * 0.03 / 8.0 * e,
        reg_um2_per_bit=4.522 * a,
        sram_pj_per_64b_ref=10.0 * e,
        sram_ref_kib=fixed(8.0),
        sram_energy_exp=fixed(math.log(100.0 / 10.0) / math.log(1024.0 / 8.0)),
        sram_um2_per_bit=0.346 / 0.5 * a,
        dram_pj_per_bit=fixed(1300.0 / 64.0),
        leak_mw_per_mm2=fixed(5.0),
        vector_pj_per_op=(1.1 + 0.4) * e,
        host_pj_per_byte=fixed(80.0),
        host_pj_per_op=fixed(70.0 / 8.0),
    )


@x64
def mac_energy_pj(w_bits, a_bits, acc_bits, tech: TechTable):
    """Energy of one multiply-accumulate, pJ.

    ``E = mult_pj_8b * w * a / 64 + add_pj_32b * acc / 32``: multiplier energy grows with the
    product of the operand widths (array multiplier), adder energy linearly with its width
    (Horowitz, ISSCC 2014 anchors at 8x8 and 32 bits). Smooth in non-integer widths.
    """
    return tech.mult_pj_8b * (w_bits * a_bits / 64.0) + tech.add_pj_32b * (acc_bits / 32.0)


def with_overrides(t: TechTable, **values) -> TechTable:
    """``t`` with direct per-access energies (names in :data:`OVERRIDES`) that bypass the laws."""
    unknown = sorted(set(values) - set(OVERRIDES))
    if unknown:
        raise ValueError(f"unknown override {unknown[0]!r}; allowed: {', '.join(OVERRIDES)}")
    given = {k: np.float64(v) for k, v in values.items()}
    names = tuple(k for k in OVERRIDES if k in given or k in t.overrides)
    return dataclasses.replace(t, **given, overrides=names)


@x64
def layer_mac_pj(w_bits, a_bits, config: NPUConfig):
    """Energy of one MAC at the layers' widths, pJ: :func:`mac_energy_pj`, or with ``mac_pj``
    overridden ``mac_pj * law(w, a) / law(design widths)`` (narrower layers scale by the law)."""
    t = config.tech
    law = mac_energy_pj(w_bits, a_bits, config.acc_bits, t)
    if "mac_pj" not in t.overrides:
        return law
    ref = mac_energy_pj(config.w_bits, config.a_bits, config.acc_bits, t)
    return t.mac_pj * jnp.where(ref > 0, law / jnp.where(ref > 0, ref, 1.0), 1.0)


@x64
def buffer_pj_per_bit(name: str, size_kib, t: TechTable):
    """Access energy per bit of the ``name`` buffer (ifmap, filter, ofmap), pJ: the override
    ``<name>_sram_pj_per_bit`` where set, else :func:`sram_pj_per_bit` of ``size_kib``."""
    key = f"{name}_sram_pj_per_bit"
    return getattr(t, key) if key in t.overrides else sram_pj_per_bit(size_kib, t)


@x64
def pe_local_pj_per_bit(name: str, config: NPUConfig):
    """Access energy per bit of the PE-local level for the ``name`` operand (ifmap, filter,
    ofmap), pJ: the override ``<name>_rf_pj_per_bit`` where set; else ``rf_pj_per_bit`` where
    > 0; else :func:`sram_pj_per_bit` of ``pe_local_bytes / 1024`` KiB where > 0; else 0.

    The SRAM law below its 8 KB anchor is an extrapolation; at Eyeriss's 520 B (65 nm) it gives
    0.061 pJ/bit against Eyeriss's 0.053 (module docstring).
    """
    t = config.tech
    key = f"{name}_rf_pj_per_bit"
    if key in t.overrides:
        return getattr(t, key)
    size = config.pe_local_bytes
    law = jnp.where(size > 0, sram_pj_per_bit(size / 1024.0, t), 0.0)
    return jnp.where(t.rf_pj_per_bit > 0, t.rf_pj_per_bit, law)


@x64
def mac_area_um2(w_bits, a_bits, acc_bits, tech: TechTable):
    """Area of one multiply-accumulate unit with its accumulator register, um^2.

    ``A = mult_um2_8b * w * a / 64 + add_um2_32b * acc / 32 + reg_um2_per_bit * acc``
    (same scaling laws as :func:`mac_energy_pj`; the register is one flip-flop per bit).
    """
    return (
        tech.mult_um2_8b * (w_bits * a_bits / 64.0)
        + tech.add_um2_32b * (acc_bits / 32.0)
        + tech.reg_um2_per_bit * acc_bits
    )


@x64
def sram_pj_per_bit(size_kib, tech: TechTable):
    """Access energy per bit of an SRAM of ``size_kib``, pJ.

    ``e = sram_pj_per_64b_ref / 64 * (size / sram_ref_kib) ** sram_energy_exp``, a power law
    through Horowitz's 8 KB (10 pJ) and 1 MB (100 pJ) 64-bit reads; it gives 19.3 pJ at 32 KB
    (anchor 20 pJ). Sizes are clamped at 1e-6 KiB so the value and its gradient stay finite.
    """
    size = jnp.maximum(jnp.asarray(size_kib, dtype=float), _MIN_SRAM_KIB)
    return tech.sram_pj_per_64b_ref / 64.0 * (size / tech.sram_ref_kib) ** tech.sram_energy_exp


@x64
def sram_area_mm2(size_kib, tech: TechTable):
    """Area of ``size_kib`` of SRAM, mm^2: ``size * 8192 bits * sram_um2_per_bit * 1e-6``.

    ``sram_um2_per_bit`` includes the periphery (decoders, sense amplifiers) through the array
    efficiency assumed in the module table; area is linear in capacity.
    """
    return size_kib * 8192.0 * tech.sram_um2_per_bit * 1e-6


@x64
def vector_lane_um2(tech: TechTable):
    """Area of one vector lane, um^2: a 16-bit multiply-add with 32-bit accumulation and two
    16-bit operand registers, ``mac_area_um2(16, 16, 32) + 32 * reg_um2_per_bit``.

    Assumption: fixed point; a floating-point lane would be larger. Lane buffers are in the
    overhead share.
    """
    return mac_area_um2(16.0, 16.0, 32.0, tech) + 32.0 * tech.reg_um2_per_bit


@x64
def area_mm2(config: NPUConfig):
    """Die area of a design, mm^2.

    ``core = R * C * pe + sram + local + vector`` and ``area = core / (1 - OVERHEAD_SHARE)``, with

    - ``pe = mac_area_um2(w, a, acc) + reg_um2_per_bit * (w + a)``: the MAC with its
      accumulator register, plus one pipeline register per operand. The three registers
      (``w + a + acc`` bits) are what every dataflow holds: one stationary word (weight, input
      or output) and two words passing through;
    - ``sram = sram_area_mm2(ifmap + filter + ofmap)``, the configured (physical) capacities;
    - ``local = R * C * sram_area_mm2(pe_local_bytes / 1024)``, the PE-local level (0 without);
    - ``vector = vector_lanes * vector_lane_um2``;
    - ``OVERHEAD_SHARE`` of the die for control, network, interfaces and I/O.

    Broadcasts over leading (batch) axes of the config's fields.
    """
    t = config.tech
    w, a, acc = config.w_bits, config.a_bits, config.acc_bits
    pe_um2 = mac_area_um2(w, a, acc, t) + t.reg_um2_per_bit * (w + a)
    array_mm2 = config.rows * config.cols * pe_um2 * 1e-6
    sram_kib = config.ifmap_sram_kib + config.filter_sram_kib + config.ofmap_sram_kib
    vector_mm2 = config.vector_lanes * vector_lane_um2(t) * 1e-6
    local_mm2 = config.rows * config.cols * sram_area_mm2(config.pe_local_bytes / 1024.0, t)
    core_mm2 = array_mm2 + sram_area_mm2(sram_kib, t) + local_mm2 + vector_mm2
    return core_mm2 / (1.0 - OVERHEAD_SHARE)


@x64
def leakage_w(config: NPUConfig):
    """Static power of a design, W: ``area_mm2 * leak_mw_per_mm2 * 1e-3``."""
    return area_mm2(config) * config.tech.leak_mw_per_mm2 * 1e-3
