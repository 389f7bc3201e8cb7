"""Number formats: the floating-point MAC laws reproduce their anchors, order as expected,
and leave integer costs as hw.tech has them."""

import dataclasses

import numpy as np
import pytest

from hw import cost, formats, layers, tech
from hw.formats import NumberFormat, mac_area_um2, mac_energy_pj, parse
from hw.presets import get_preset

T45 = tech.default_tech()
FP32 = NumberFormat("fp32", 32, 8, 23)


def test_the_laws_pass_through_horowitz_anchors():
    # multiply + add at 45 nm: fp16 1.1 + 0.4 pJ, fp32 3.7 + 0.9 pJ (ISSCC 2014)
    assert float(mac_energy_pj(parse("fp16"), parse("fp16"), 16, T45)) == pytest.approx(1.5)
    assert float(mac_energy_pj(FP32, FP32, 32, T45)) == pytest.approx(4.6)
    # areas: fp16 multiply 1640 + fp16 add 1360 um^2; fp32 7700 + 4184, plus the register
    reg = float(T45.reg_um2_per_bit)
    assert float(mac_area_um2(parse("fp16"), parse("fp16"), 16, T45)) == pytest.approx(
        1640 + 1360 + 16 * reg
    )
    assert float(mac_area_um2(FP32, FP32, 32, T45)) == pytest.approx(7700 + 4184 + 32 * reg)


def test_narrower_significands_cost_less():
    e = {
        (w, a): float(mac_energy_pj(parse(w), parse(a), 32, T45))
        for w, a in [("fp8", "fp8"), ("bf16", "bf16"), ("fp16", "fp16"), ("int4", "bf16")]
    }
    assert e["fp8", "fp8"] < e["int4", "bf16"] < e["bf16", "bf16"] < e["fp16", "fp16"]
    assert float(mac_energy_pj(parse("int8"), parse("int8"), 32, T45)) < e["fp8", "fp8"]


@pytest.mark.parametrize(("w", "a", "acc"), [(8, 8, 32), (4, 16, 24), (2, 3, 16)])
def test_integers_keep_the_tech_tables_law(w, a, acc):
    fw, fa = parse(f"int{w}"), parse(f"int{a}")
    assert float(mac_energy_pj(fw, fa, acc, T45)) == pytest.approx(
        float(tech.mac_energy_pj(w, a, acc, T45))
    )
    assert float(mac_area_um2(fw, fa, acc, T45)) == pytest.approx(
        float(tech.mac_area_um2(w, a, acc, T45))
    )


def test_reprice_at_the_configs_integer_widths_changes_nothing_and_floats_cost_more():
    npu = get_preset("edge-tpu-like")
    wl = layers.workload(
        [layers.gemm("g", m=64, k=256, n=256), layers.vector("r", "relu", elems=8)]
    )
    rep = cost.evaluate(npu, wl)
    same = formats.reprice(rep, npu, [(parse("int8"), parse("int8"))] * 2)
    for field in ("energy_mac_pj", "energy_leak_pj"):
        np.testing.assert_allclose(getattr(same, field), getattr(rep, field), rtol=1e-12)
    assert float(same.area_mm2) == pytest.approx(float(rep.area_mm2))
    wide = dataclasses.replace(npu, w_bits=np.float64(16), a_bits=np.float64(16))
    rep16 = cost.evaluate(wide, wl)
    bf16 = formats.reprice(rep16, wide, [(parse("bf16"), parse("bf16"))] * 2)
    assert float(bf16.energy_mac_pj[0]) > float(rep16.energy_mac_pj[0])
    assert float(bf16.area_mm2) > float(rep16.area_mm2)


@pytest.mark.parametrize("bad", ["fp4", "int1", "int17", "float"])
def test_unknown_formats_are_one_line_errors(bad):
    with pytest.raises(ValueError, match=r"unknown number format .*allowed: fp16, bf16, fp8"):
        parse(bad)
