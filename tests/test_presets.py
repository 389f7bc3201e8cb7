"""Named designs: datasheet peaks, field types, error messages, jit/vmap round trips."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hw import presets, tech
from hw.types import DATAFLOWS, NPUConfig

NAMES = presets.preset_names()
INT_FIELDS = ("rows", "cols", "dataflow", "vector_lanes")
FLOAT_FIELDS = (
    "clock_mhz",
    "ifmap_sram_kib",
    "filter_sram_kib",
    "ofmap_sram_kib",
    "dram_bw_gbps",
    "w_bits",
    "a_bits",
    "acc_bits",
)


def test_the_documented_presets_exist():
    assert {"tpu-v1-like", "edge-tpu-like", "eyeriss-like", "scalesim-32x32"} <= set(NAMES)
    assert set(NAMES) == set(presets.PRESETS) and len(NAMES) == len(presets.PRESETS)


def test_tpu_v1_peak_matches_datasheet():
    # 2 ops * 256 * 256 MACs * 700e6 Hz = 91.75e12 ops/s (Jouppi et al., ISCA 2017: 92 TOPS)
    peak = float(presets.get_preset("tpu-v1-like").peak_ops_per_s)
    assert peak == 2 * 256 * 256 * 700e6
    assert peak == pytest.approx(92e12, rel=0.01)


def test_edge_tpu_peak_matches_datasheet():
    # 2 ops * 64 * 64 MACs * 480e6 Hz = 3.93e12 ops/s (Coral: 4 TOPS at 2 W)
    peak = float(presets.get_preset("edge-tpu-like").peak_ops_per_s)
    assert peak == pytest.approx(4e12, rel=0.02)


def test_tpu_v1_has_28_mib_of_unified_buffer_and_accumulators():
    cfg = presets.get_preset("tpu-v1-like")
    assert float(cfg.ifmap_sram_kib + cfg.ofmap_sram_kib) == 28 * 1024
    assert cfg.dataflow_name == "ws" and float(cfg.tech.node_nm) == 28.0


def test_unknown_preset_names_the_choices():
    expected = f"unknown preset 'x'; choose one of: {', '.join(NAMES)}"
    with pytest.raises(ValueError, match=re.escape(expected)):
        presets.get_preset("x")


@pytest.mark.parametrize("name", NAMES)
def test_preset_fields_have_the_documented_types(name):
    cfg = presets.get_preset(name)
    assert isinstance(cfg, NPUConfig) and cfg.name == name
    for field in INT_FIELDS:
        assert np.asarray(getattr(cfg, field)).dtype == np.int64, field
    for field in FLOAT_FIELDS:
        assert np.asarray(getattr(cfg, field)).dtype == np.float64, field
    assert cfg.dataflow_name in DATAFLOWS
    positive = [getattr(cfg, f) for f in INT_FIELDS + FLOAT_FIELDS if f != "dataflow"]
    laws = [getattr(cfg.tech, f) for f in tech.LAW_FIELDS if f != "rf_pj_per_bit"]
    assert all(float(x) > 0 for x in positive + laws)
    assert float(cfg.tech.rf_pj_per_bit) == 0.0 and cfg.tech.overrides == ()


@pytest.mark.parametrize("name", NAMES)
def test_preset_area_is_positive_and_jit_equals_no_jit(name):
    cfg = presets.get_preset(name)
    area = float(tech.area_mm2(cfg))
    assert np.isfinite(area) and area > 0
    assert float(jax.jit(tech.area_mm2)(cfg)) == pytest.approx(area, rel=1e-12)
    assert float(jax.jit(tech.leakage_w)(cfg)) == pytest.approx(
        area * float(cfg.tech.leak_mw_per_mm2) * 1e-3, rel=1e-12
    )


@pytest.mark.parametrize("name", NAMES)
def test_preset_vmap_round_trip(name):
    cfg = presets.get_preset(name)
    batch = jax.tree_util.tree_map(lambda x: jnp.stack([jnp.asarray(x)] * 3), cfg)
    out = jax.jit(jax.vmap(tech.area_mm2))(batch)
    assert out.shape == (3,)
    np.testing.assert_allclose(out, float(tech.area_mm2(cfg)), rtol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_each_call_builds_an_equal_config(name):
    a, b = presets.get_preset(name), presets.get_preset(name)
    leaves_a, tree_a = jax.tree_util.tree_flatten(a)
    leaves_b, tree_b = jax.tree_util.tree_flatten(b)
    assert tree_a == tree_b
    assert all(np.array_equal(x, y) for x, y in zip(leaves_a, leaves_b, strict=True))


@pytest.mark.parametrize(
    ("name", "datasheet_w"),
    [
        ("tpu-v1-like", 40.0),  # Jouppi et al., ISCA 2017: 40 W busy (75 W TDP)
        ("edge-tpu-like", 2.0),  # Coral: 4 TOPS at 2 W
        ("eyeriss-like", 0.278),  # Chen et al., JSSC 2017: 278 mW at 200 MHz on AlexNet
    ],
)
def test_full_load_power_within_a_factor_of_two_of_the_datasheet(name, datasheet_w):
    # Nothing in the tech table was fitted to these powers: this is a sanity check of the
    # cited per-op energies, and a factor of two is what first-order node scaling allows.
    from hw.checks import full_load_power_w

    power = full_load_power_w(presets.get_preset(name))
    assert datasheet_w / 2 <= power <= datasheet_w * 2, power
