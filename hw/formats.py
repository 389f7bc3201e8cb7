"""Number formats of MAC operands: integers and floating point (fp16, bf16, fp8), mixed too.

A multiplier's cost follows the product of its operands' significand widths: ``b`` for an
integer of ``b`` bits, ``mantissa + 1`` for a float (the hidden bit). Integer x integer keeps
``hw.tech``'s law (``mult_pj_8b * w a / 64``); as soon as one operand is a float the multiplier
also aligns exponents and normalises, a fixed overhead, and the accumulator is a float adder:

    E_mul = c0 + c1 * sig_w * sig_a          (one operand or both floating point)
    E_add = d0 + d1 * (acc_bits - 16)        (floating-point accumulate)

Coefficients are the straight lines through Horowitz's two floating-point anchors (ISSCC 2014,
45 nm): fp16 multiply 1.1 pJ (11 x 11 significand), fp32 multiply 3.7 pJ (24 x 24), fp16 add
0.4 pJ, fp32 add 0.9 pJ; areas through the same paper's 16b FP multiply 1640 um^2, 32b FP
multiply 7700 um^2, 16b FP add 1360 um^2 and 32b FP add 4184 um^2. They are stored as ratios
to the technology table's integer anchors (8-bit multiply 0.2 pJ / 282 um^2, 32-bit add 0.1 pJ
/ 137 um^2), so that they scale with the node as the table does. No third anchor checks the
lines: bf16 (8 x 8) and fp8 (e4m3, 4 x 4) are interpolations.

==================  =========================  ===============================================
format              significand x exponent     45 nm multiply / MAC with fp32 accumulate, pJ
==================  =========================  ===============================================
fp16                11 x 5                     1.10 / 2.00
bf16                8 x 8                      0.77 / 1.67
fp8 (e4m3)          4 x 4                      0.50 / 1.40
int4 x bf16         4 x 8 (weight-only quant)  0.59 / 1.49
int8 x int8         8 x 8 (hw.tech)            0.20 / 0.30 (int32 accumulate)
==================  =========================  ===============================================

Weight-only quantization (int4 weights, bf16 activations) runs the multiply on the integer
significand against the float one; the per-group scale multiplies each output once, which is
negligible beside the K multiplies that produce it and is not counted.

>>> from hw.tech import default_tech
>>> round(float(mac_energy_pj(parse("fp16"), parse("fp16"), 32, default_tech())), 3)
2.0
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from hw import tech
from hw.types import CostReport, NPUConfig, TechTable
from hw.x64 import x64

# Horowitz ISSCC 2014 at 45 nm: floating-point anchors over the integer ones of hw.tech.
_FP_MUL_C1 = (3.7 - 1.1) / (24 * 24 - 11 * 11) / 0.2  # x mult_pj_8b per significand bit^2
_FP_MUL_C0 = (1.1 - 11 * 11 * (3.7 - 1.1) / (24 * 24 - 11 * 11)) / 0.2  # x mult_pj_8b
_FP_ADD_D0 = 0.4 / 0.1  # x add_pj_32b: fp16 add
_FP_ADD_D1 = (0.9 - 0.4) / 16 / 0.1  # x add_pj_32b per accumulator bit above 16
_FP_MUL_A1 = (7700 - 1640) / (24 * 24 - 11 * 11) / 282  # x mult_um2_8b per bit^2
_FP_MUL_A0 = (1640 - 11 * 11 * (7700 - 1640) / (24 * 24 - 11 * 11)) / 282  # x mult_um2_8b
_FP_ADD_B0 = 1360 / 137  # x add_um2_32b: fp16 adder
_FP_ADD_B1 = (4184 - 1360) / 16 / 137  # x add_um2_32b per accumulator bit above 16


@dataclasses.dataclass(frozen=True)
class NumberFormat:
    """An operand format: ``bits`` in memory; a float has ``exponent`` and ``mantissa``."""

    name: str
    bits: int
    exponent: int = 0  # 0: integer
    mantissa: int = 0

    @property
    def is_float(self) -> bool:
        return self.exponent > 0

    @property
    def significand_bits(self) -> int:
        """What the multiplier multiplies: the integer, or the mantissa with its hidden bit."""
        return self.mantissa + 1 if self.is_float else self.bits


FLOATS = {
    "fp16": NumberFormat("fp16", 16, 5, 10),  # IEEE 754 binary16
    "bf16": NumberFormat("bf16", 16, 8, 7),  # bfloat16
    "fp8": NumberFormat("fp8", 8, 4, 3),  # OCP FP8 E4M3
}
"""Floating-point formats by name; integers are ``int2`` ... ``int16``."""


def parse(name: str) -> NumberFormat:
    """``"fp16"``, ``"bf16"``, ``"fp8"`` or ``"int<b>"`` with 2 <= b <= 16."""
    key = name.strip().lower()
    if key in FLOATS:
        return FLOATS[key]
    if key.startswith("int") and key[3:].isdigit() and 2 <= int(key[3:]) <= 16:
        return NumberFormat(key, int(key[3:]))
    raise ValueError(f"unknown number format {name!r}; allowed: {', '.join(FLOATS)}, int2-int16")


@x64
def mac_energy_pj(w: NumberFormat, a: NumberFormat, acc_bits, tech: TechTable):
    """Energy of one MAC of ``w`` x ``a`` operands into an ``acc_bits`` accumulator, pJ (the
    module's laws; integer x integer is ``hw.tech.mac_energy_pj``)."""
    sw, sa = w.significand_bits, a.significand_bits
    if not (w.is_float or a.is_float):
        return tech.mult_pj_8b * (sw * sa / 64.0) + tech.add_pj_32b * (acc_bits / 32.0)
    mul = tech.mult_pj_8b * (_FP_MUL_C0 + _FP_MUL_C1 * sw * sa)
    return mul + tech.add_pj_32b * (_FP_ADD_D0 + _FP_ADD_D1 * (jnp.asarray(acc_bits) - 16.0))


@x64
def mac_area_um2(w: NumberFormat, a: NumberFormat, acc_bits, tech: TechTable):
    """Area of one MAC unit of ``w`` x ``a`` with its accumulator register, um^2."""
    sw, sa = w.significand_bits, a.significand_bits
    reg = tech.reg_um2_per_bit * acc_bits
    if not (w.is_float or a.is_float):
        return tech.mult_um2_8b * (sw * sa / 64.0) + tech.add_um2_32b * (acc_bits / 32.0) + reg
    mul = tech.mult_um2_8b * (_FP_MUL_A0 + _FP_MUL_A1 * sw * sa)
    add = tech.add_um2_32b * (_FP_ADD_B0 + _FP_ADD_B1 * (jnp.asarray(acc_bits) - 16.0))
    return mul + add + reg


@x64
def reprice(report: CostReport, config: NPUConfig, pairs) -> CostReport:
    """``report`` with its MAC energy, area and leakage at the operand formats ``pairs``
    (one ``(weight-side, activation-side)`` pair of :class:`NumberFormat` per layer).

    ``energy_mac = MACs * mac_energy_pj(pair)``; each PE is sized for the costliest pair, so
    ``area += rows * cols * (mac_area_um2(costliest) - mac_area_um2 at the config's integer
    widths) / (1 - OVERHEAD_SHARE)``, and leakage scales with the area.
    """
    t, acc = config.tech, config.acc_bits
    per_mac = jnp.stack([mac_energy_pj(w, a, acc, t) for w, a in pairs])
    on_npu = ~jnp.asarray(report.on_host)
    energy_mac = jnp.where(on_npu, report.macs * per_mac, 0.0)
    widest = max(set(pairs), key=lambda p: float(mac_area_um2(p[0], p[1], acc, t)))
    int_um2 = tech.mac_area_um2(config.w_bits, config.a_bits, acc, t)
    extra_um2 = mac_area_um2(*widest, acc, t) - int_um2
    area = report.area_mm2 + config.rows * config.cols * extra_um2 * 1e-6 / (
        1.0 - tech.OVERHEAD_SHARE
    )
    return dataclasses.replace(
        report,
        energy_mac_pj=energy_mac,
        area_mm2=area,
        energy_leak_pj=report.energy_leak_pj * area / report.area_mm2,
    )
