"""Design files (npu_dse.designs): every field written, read back bit for bit, bad files refused."""

import dataclasses
import json

import numpy as np
import pytest

from hw import get_preset, layers, preset_names
from hw.types import TechTable
from npu_dse import designs
from npu_dse.designs import (
    DesignFile,
    config_to_dict,
    design_from_dict,
    design_to_dict,
    load_design,
    per_layer,
    split_sram,
)
from npu_dse.simulate import resolve_design, simulate

WL = layers.workload(
    [
        layers.gemm("g1", m=64, k=96, n=48),
        layers.conv2d(
            "c1", ifmap_h=10, ifmap_w=10, channels=8, num_filters=16, filter_h=3, filter_w=3
        ),
    ]
)


def _leaves_equal(a, b):
    fa = {f.name: getattr(a, f.name) for f in dataclasses.fields(a)}
    fb = {f.name: getattr(b, f.name) for f in dataclasses.fields(b)}
    for key, value in fa.items():
        if isinstance(value, TechTable):
            assert _leaves_equal(value, fb[key])
        elif isinstance(value, str | bool | tuple):
            assert value == fb[key], key
        else:
            assert np.asarray(value).item() == np.asarray(fb[key]).item(), key
    return True


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_round_trips_exactly(name):
    config = get_preset(name)
    text = json.dumps(config_to_dict(config))
    back = design_from_dict(json.loads(text)).config
    assert _leaves_equal(config, back)


def test_every_field_is_written():
    d = config_to_dict(get_preset("edge-tpu-like"))
    assert set(designs.FIELDS) <= set(d)
    assert set(d["tech"]) == set(designs.TECH_FIELDS)


def test_odd_floats_survive_the_round_trip():
    config = split_sram(get_preset("edge-tpu-like"), 1000.0 / 3.0)
    back = design_from_dict(json.loads(json.dumps(config_to_dict(config)))).config
    assert float(back.ifmap_sram_kib) == float(config.ifmap_sram_kib)


def test_split_keeps_the_proportions():
    base = get_preset("tpu-v1-like")
    half = split_sram(
        base, float(base.ifmap_sram_kib + base.filter_sram_kib + base.ofmap_sram_kib) / 2
    )
    for b in ("ifmap_sram_kib", "filter_sram_kib", "ofmap_sram_kib"):
        assert float(getattr(half, b)) == pytest.approx(float(getattr(base, b)) / 2, rel=1e-12)


def test_per_layer_choices_are_used_and_round_trip():
    sim = simulate(WL, resolve_design(preset="edge-tpu-like"))
    w = np.array([4.0, 8.0])
    d = design_to_dict(sim.config, WL, sim.mapping, (w, np.array([8.0, 8.0])))
    assert d["layers"]["g1"]["w_bits"] == 4 and d["layers"]["c1"]["a_bits"] == 8
    again = simulate(WL, design_from_dict(json.loads(json.dumps(d))))
    assert [x["w_bits"] for x in again.to_dict()["layers"]] == [4, 8]
    for f in ("tile_m", "tile_k", "tile_n", "loop_order"):
        assert np.array_equal(
            np.asarray(getattr(again.mapping, f)), np.asarray(getattr(sim.mapping, f))
        )
    narrower = float(again.report.energy_mac_pj[0])
    assert narrower < float(sim.report.energy_mac_pj[0])  # 4-bit weights cost less per MAC


def test_a_given_mapping_overrides_the_mapper():
    design = DesignFile(
        get_preset("edge-tpu-like"),
        {"g1": {"tile_m": 16, "tile_k": 32, "tile_n": 16, "loop_order": "weight"}},
    )
    base = simulate(WL, resolve_design(preset="edge-tpu-like"))
    mapping, bits = per_layer(design, WL, base.mapping)
    assert bits is None
    assert int(mapping.tile_m[0]) == 16 and int(mapping.tile_k[0]) == 32
    assert int(mapping.tile_m[1]) == int(base.mapping.tile_m[1])


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"rows": 32, "colz": 8}, "unknown key 'colz'"),
        ({"rows": "32"}, "'rows' must be a finite number"),
        ({"rows": 32.5}, "'rows' must be an integer"),
        ({"rows": 0}, "'rows' must be in 1..16384 PEs"),
        ({"dataflow": "rs"}, "'dataflow' must be one of os, ws, is"),
        ({"fusion": 1}, "'fusion' must be true or false"),
        ({"tech": {"dram_pj": 1.0}}, "unknown tech key 'dram_pj'"),
        (
            {"tech": {"dram_pj_per_bit": -1.0}},
            "tech 'dram_pj_per_bit' must be a finite number >= 0",
        ),
        ({"base": "tpu-v9"}, "base 'tpu-v9' is not a preset"),
        ({"format": "other"}, "'format' must be 'npu-dse-design'"),
        ({"layers": {"g1": {"tile_m": 8}}}, "a mapping needs tile_m, tile_k, tile_n, loop_order"),
        ({"layers": {"g1": {"w_bits": 4.5}}}, "w_bits must be an integer >= 1"),
        (
            {"layers": {"g1": {"loop_order": "xyz", "tile_m": 1, "tile_k": 1, "tile_n": 1}}},
            "loop_order must be one of",
        ),
        ([1, 2], "a design is a JSON object"),
    ],
)
def test_bad_designs_are_one_line_errors(spec, message):
    with pytest.raises(ValueError) as err:
        design_from_dict(spec)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_layer_names_and_widths_are_checked_against_the_workload():
    sim = simulate(WL, resolve_design(preset="edge-tpu-like"))
    with pytest.raises(ValueError, match="layer 'nope' is not in the workload"):
        per_layer(DesignFile(sim.config, {"nope": {"w_bits": 4}}), WL, sim.mapping)
    with pytest.raises(ValueError, match="wider than the multipliers' 8 bits"):
        per_layer(DesignFile(sim.config, {"g1": {"w_bits": 12}}), WL, sim.mapping)


def test_load_design_names_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json' is not valid JSON"):
        load_design(bad)
    with pytest.raises(ValueError, match="missing.json' does not exist"):
        load_design(tmp_path / "missing.json")
    part = tmp_path / "part.json"
    part.write_text(json.dumps({"base": "edge-tpu-like", "rows": 16}))
    config = load_design(part).config
    assert int(config.rows) == 16 and int(config.cols) == int(get_preset("edge-tpu-like").cols)


@pytest.mark.parametrize("value", [10**400, -(2**64)])
def test_a_huge_integer_field_is_one_line_not_an_overflow(value):
    with pytest.raises(ValueError, match="must be a finite number .* got an integer of"):
        design_from_dict({"format": "npu-dse-design", "rows": value})
