"""Technology tables: anchors, scaling laws, monotonicity, gradients and batching."""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hw import tech
from hw.presets import get_preset

T45 = tech.default_tech()
BITS = ("w_bits", "a_bits", "acc_bits")
SRAMS = ("ifmap_sram_kib", "filter_sram_kib", "ofmap_sram_kib")


def _base():
    """A 45 nm design (the anchor node) to vary field by field."""
    return get_preset("scalesim-32x32")


def _stack(configs):
    return jax.tree_util.tree_map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *configs)


def test_mac_energy_at_8_8_32_is_mult_plus_add_anchor():
    # 0.2 pJ * (8 * 8 / 64) + 0.1 pJ * (32 / 32) = 0.2 + 0.1 (Horowitz, ISSCC 2014, 45 nm)
    assert float(tech.mac_energy_pj(8.0, 8.0, 32.0, T45)) == 0.2 + 0.1


def test_int32_multiply_anchor_ratio():
    # Quadratic law: 0.2 pJ * (32 * 32 / 64) = 3.2 pJ against the 3.1 pJ anchor (+3 %).
    mult_32_pj = float(tech.mac_energy_pj(32.0, 32.0, 0.0, T45))
    assert mult_32_pj == pytest.approx(3.2)
    assert mult_32_pj / 3.1 == pytest.approx(1.0, rel=0.05)
    assert mult_32_pj / float(tech.mac_energy_pj(8.0, 8.0, 0.0, T45)) == pytest.approx(16.0)


def test_mac_area_anchors():
    # 8x8 multiplier 282 um^2; 32-bit adder 137 um^2 plus 32 flip-flops of 4.522 um^2.
    assert float(tech.mac_area_um2(8.0, 8.0, 0.0, T45)) == pytest.approx(282.0)
    assert float(tech.mac_area_um2(0.0, 0.0, 32.0, T45)) == pytest.approx(137.0 + 32 * 4.522)


@pytest.mark.parametrize(("size_kib", "pj_per_64b"), [(8.0, 10.0), (1024.0, 100.0)])
def test_sram_energy_hits_fitted_anchors(size_kib, pj_per_64b):
    assert 64 * float(tech.sram_pj_per_bit(size_kib, T45)) == pytest.approx(pj_per_64b, rel=1e-12)


def test_sram_energy_at_32_kib_within_10_percent_of_anchor():
    # 10 pJ * 4 ** 0.4746 = 19.3 pJ against Horowitz's 20 pJ.
    assert 64 * float(tech.sram_pj_per_bit(32.0, T45)) == pytest.approx(20.0, rel=0.10)


def test_sram_area_is_linear_in_bits():
    # 1 KiB = 8192 bits * 0.692 um^2 = 5669.376 um^2.
    assert float(tech.sram_area_mm2(1.0, T45)) == pytest.approx(8192 * 0.692e-6)
    assert float(tech.sram_area_mm2(64.0, T45)) == pytest.approx(64 * 8192 * 0.692e-6)


def test_area_golden_by_hand():
    cfg = dataclasses.replace(
        _base(),
        rows=np.int64(1),
        cols=np.int64(1),
        ifmap_sram_kib=np.float64(1),
        filter_sram_kib=np.float64(1),
        ofmap_sram_kib=np.float64(1),
        vector_lanes=np.int64(1),
    )
    # PE: 282 + 137 + 32 * 4.522 (acc reg) + 16 * 4.522 (w, a regs) = 636.056 um^2
    # SRAM: 3 KiB * 8192 * 0.692 = 17006.592 um^2
    # lane: 282 * 4 + 137 + 32 * 4.522 + 32 * 4.522 = 1554.408 um^2
    # core 19197.056 um^2; with a 1/3 overhead share: * 1.5 = 28795.584 um^2
    assert float(tech.area_mm2(cfg)) == pytest.approx(0.028795584, rel=1e-12)
    assert float(tech.leakage_w(cfg)) == pytest.approx(0.028795584 * 5.0e-3, rel=1e-12)


def test_node_scaling_is_first_order():
    half = tech.default_tech(22.5)
    for field in ("mult_pj_8b", "add_pj_32b", "reg_pj_per_bit", "sram_pj_per_64b_ref"):
        assert float(getattr(half, field)) == pytest.approx(float(getattr(T45, field)) / 2)
    for field in ("mult_um2_8b", "add_um2_32b", "reg_um2_per_bit", "sram_um2_per_bit"):
        assert float(getattr(half, field)) == pytest.approx(float(getattr(T45, field)) / 4)
    for field in ("dram_pj_per_bit", "host_pj_per_byte", "leak_mw_per_mm2", "sram_energy_exp"):
        assert float(getattr(half, field)) == float(getattr(T45, field))


@pytest.mark.parametrize("node_nm", [0.0, -7.0])
def test_bad_node_is_rejected(node_nm):
    with pytest.raises(ValueError, match="node_nm must be > 0"):
        tech.default_tech(node_nm)


def test_every_law_field_is_a_positive_float64_and_nothing_is_overridden():
    for name in tech.LAW_FIELDS:
        value = getattr(T45, name)
        positive = float(value) > 0 if name != "rf_pj_per_bit" else float(value) == 0
        assert value.dtype == jnp.float64 and positive, name
    assert T45.overrides == ()


@pytest.mark.parametrize("which", range(3))
def test_more_bits_cost_more_energy_and_area(which):
    lo, hi = [8.0, 8.0, 32.0], [8.0, 8.0, 32.0]
    hi[which] += 1.5
    assert tech.mac_energy_pj(*hi, T45) > tech.mac_energy_pj(*lo, T45)
    assert tech.mac_area_um2(*hi, T45) > tech.mac_area_um2(*lo, T45)
    cfg = _base()
    wider = dataclasses.replace(cfg, **{BITS[which]: getattr(cfg, BITS[which]) + 1.5})
    assert tech.area_mm2(wider) > tech.area_mm2(cfg)


def test_bigger_sram_costs_more_per_bit_and_more_area():
    sizes = np.geomspace(1.0, 65536.0, 50)
    assert np.all(np.diff(tech.sram_pj_per_bit(sizes, T45)) > 0)
    assert np.all(np.diff(tech.sram_area_mm2(sizes, T45)) > 0)
    cfg = _base()
    for field in SRAMS:
        bigger = dataclasses.replace(cfg, **{field: getattr(cfg, field) * 2})
        assert tech.area_mm2(bigger) > tech.area_mm2(cfg)


def _grads(w, a, acc, size_kib):
    """Gradients of energy, area and SRAM figures wrt every bit width and the SRAM size."""
    cfg = _base()

    def area(w, a, acc, size):
        c = dataclasses.replace(cfg, w_bits=w, a_bits=a, acc_bits=acc, ifmap_sram_kib=size)
        return tech.area_mm2(c) + tech.leakage_w(c)

    with jax.enable_x64(True):  # differentiate in 64 bits, as the searches do
        args = tuple(jnp.float64(x) for x in (w, a, acc, size_kib))
        out = [
            jax.grad(lambda *x: tech.mac_energy_pj(*x, T45), argnums=(0, 1, 2))(*args[:3]),
            jax.grad(lambda *x: tech.mac_area_um2(*x, T45), argnums=(0, 1, 2))(*args[:3]),
            jax.grad(area, argnums=(0, 1, 2, 3))(*args),
            (jax.grad(tech.sram_pj_per_bit)(args[3], T45),),
            (jax.grad(tech.sram_area_mm2)(args[3], T45),),
        ]
    return np.array([float(g) for group in out for g in group])


def test_gradients_are_finite_and_positive_at_the_box_corners():
    for w, a, acc, size in [(2, 2, 2, 1), (16, 16, 16, 65536), (2.5, 7.3, 11.9, 0.0)]:
        g = _grads(w, a, acc, size)
        assert np.all(np.isfinite(g)), (w, a, acc, size, g)


@settings(max_examples=40, deadline=None)
@given(
    w=st.floats(2.0, 16.0),
    a=st.floats(2.0, 16.0),
    acc=st.floats(2.0, 16.0),
    log2_kib=st.floats(0.0, 16.0),  # 1 KiB to 64 MiB
)
def test_gradients_finite_and_positive_over_the_search_box(w, a, acc, log2_kib):
    g = _grads(w, a, acc, 2.0**log2_kib)
    assert np.all(np.isfinite(g)) and np.all(g > 0), g


def test_jit_equals_no_jit_and_batch_equals_loop():
    cfg = _base()
    variants = [
        cfg,
        dataclasses.replace(cfg, rows=np.int64(64), w_bits=np.float64(4)),
        dataclasses.replace(cfg, cols=np.int64(8), ofmap_sram_kib=np.float64(3.5)),
    ]
    loop = np.array([float(tech.area_mm2(c)) for c in variants])
    batch = _stack(variants)
    np.testing.assert_allclose(tech.area_mm2(batch), loop, rtol=1e-12)
    np.testing.assert_allclose(jax.vmap(tech.area_mm2)(batch), loop, rtol=1e-12)
    np.testing.assert_allclose(jax.jit(tech.area_mm2)(batch), loop, rtol=1e-12)
    leak = np.array([float(tech.leakage_w(c)) for c in variants])
    np.testing.assert_allclose(jax.jit(jax.vmap(tech.leakage_w))(batch), leak, rtol=1e-12)


def test_changing_a_value_does_not_recompile():
    traces = []

    @jax.jit
    def area(cfg):
        traces.append(1)
        return tech.area_mm2(cfg)

    cfg = _base()
    area(cfg)
    area(dataclasses.replace(cfg, rows=np.int64(7), w_bits=np.float64(3.0)))
    area(dataclasses.replace(cfg, tech=tech.default_tech(7.0)))
    assert len(traces) == 1


def test_default_tech_traces_in_the_node():
    # The node can be a traced value (sensitivity studies): d(mult_pj)/d(node) = 0.2 / 45.
    with jax.enable_x64(True):
        slope = jax.grad(lambda n: tech.default_tech(n).mult_pj_8b)(jnp.float64(28.0))
        area = jax.grad(lambda n: tech.mac_area_um2(8, 8, 32, tech.default_tech(n)))(28.0)
    assert float(slope) == pytest.approx(0.2 / 45.0)
    assert math.isfinite(float(area))
