"""Tests of hw.validate: every preset passes; each bad field is named with its value."""

import dataclasses

import numpy as np
import pytest

from hw import layers
from hw.presets import get_preset, preset_names
from hw.validate import InvalidFieldError, checked_evaluate, validate_config, validate_workload


@pytest.fixture
def base():
    return get_preset("scalesim-32x32")


@pytest.mark.parametrize("name", preset_names())
def test_presets_are_valid(name):
    config = get_preset(name)
    assert validate_config(config) is config


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("rows", 0, "rows must be in 1..16384 PEs, got 0"),
        ("cols", -3, "cols must be in 1..16384 PEs, got -3"),
        ("rows", 3.5, "rows must be an integer, got 3.5"),
        ("vector_lanes", 0, "vector_lanes must be in 1..1048576 lanes, got 0"),
        ("dataflow", 3, "dataflow must be one of 0 (os), 1 (ws), 2 (is), got 3"),
        ("clock_mhz", 0.0, "clock_mhz must be in 1..100000 MHz, got 0"),
        ("ifmap_sram_kib", -1.0, "ifmap_sram_kib must be in 0.001..1073741824 KiB, got -1"),
        ("filter_sram_kib", np.nan, "filter_sram_kib must be in 0.001..1073741824 KiB, got nan"),
        ("ofmap_sram_kib", np.inf, "ofmap_sram_kib must be in 0.001..1073741824 KiB, got inf"),
        ("dram_bw_gbps", 0.0, "dram_bw_gbps must be in 0.001..100000 GB/s, got 0"),
        ("w_bits", 1.0, "w_bits must be between 2 and 16 bits, got 1"),
        ("a_bits", 17.0, "a_bits must be between 2 and 16 bits, got 17"),
        ("acc_bits", 33.0, "acc_bits must be between 2 and 32 bits, got 33"),
        ("rows", 2**63 - 1, "rows must be in 1..16384 PEs, got 9223372036854775807"),
        ("clock_mhz", 1e-300, "clock_mhz must be in 1..100000 MHz, got 1e-300"),
        ("host_gops", 0.0, "host_gops must be in 0.001..1000000000 Gop/s, got 0"),
    ],
)
def test_bad_config_field(base, field, value, expected):
    config = dataclasses.replace(base, **{field: value})
    with pytest.raises(InvalidFieldError) as excinfo:
        validate_config(config)
    assert str(excinfo.value) == expected
    assert excinfo.value.field == field
    assert isinstance(excinfo.value, ValueError)


def test_unknown_memory_model(base):
    with pytest.raises(InvalidFieldError, match="memory_model must be one of tiled, scalesim"):
        validate_config(dataclasses.replace(base, memory_model="ramulator"))


@pytest.mark.parametrize(("w", "a", "acc"), [(2, 2, 2), (16, 16, 32), (4.5, 8, 24)])
def test_bit_range_bounds_are_allowed(base, w, a, acc):
    validate_config(dataclasses.replace(base, w_bits=w, a_bits=a, acc_bits=acc))


def test_batched_config_reports_first_bad_value(base):
    config = dataclasses.replace(base, rows=np.array([32, 16, 0, -1]))
    with pytest.raises(ValueError, match="rows must be in 1..16384 PEs, got 0"):
        validate_config(config)
    validate_config(dataclasses.replace(base, rows=np.array([32, 16])))


def small_workload():
    return layers.workload(
        [
            layers.gemm("g", m=4, k=4, n=4),
            layers.vector("sm", "softmax", elems=16),
            layers.conv2d(
                "c", ifmap_h=8, ifmap_w=8, channels=2, num_filters=4, filter_h=3, filter_w=3
            ),
        ]
    )


def test_valid_workload_passes():
    wl = small_workload()
    assert validate_workload(wl) is wl


@pytest.mark.parametrize(
    ("field", "index", "value", "expected"),
    [
        ("gemm_k", 0, 0, "layer 'g' (index 0): gemm_k must be an integer >= 1 when gemm_count > 0"),
        ("gemm_count", 2, -1, "layer 'c' (index 2): gemm_count must be an integer >= 0, got -1"),
        ("ofmap_elems", 1, -5, "layer 'sm' (index 1): ofmap_elems must be an integer >= 0"),
        ("vector_ops", 1, 0, "layer 'sm' (index 1): vector_ops must be > 0 when gemm_count is 0"),
    ],
)
def test_bad_workload_names_the_layer(field, index, value, expected):
    wl = small_workload()
    values = np.array(getattr(wl, field))
    values[index] = value
    with pytest.raises(ValueError) as excinfo:
        validate_workload(dataclasses.replace(wl, **{field: values}))
    assert expected in str(excinfo.value)


def test_workload_shape_mismatch():
    wl = small_workload()
    with pytest.raises(ValueError, match=r"gemm_m must have shape \(\.\.\., 3\)"):
        validate_workload(dataclasses.replace(wl, gemm_m=np.array([1, 2])))
    with pytest.raises(ValueError, match="3 names but 2 kinds"):
        validate_workload(dataclasses.replace(wl, kinds=("gemm", "softmax")))


def test_empty_workload():
    wl = small_workload()
    empty = dataclasses.replace(wl, names=(), kinds=())
    with pytest.raises(ValueError, match="at least one layer"):
        validate_workload(empty)


def test_vector_precision_and_unsupported_ops_are_checked():
    base = get_preset("edge-tpu-like")
    with pytest.raises(ValueError, match="vector_precision must be one of int16, fp16, fp32"):
        validate_config(dataclasses.replace(base, vector_precision="int4"))
    with pytest.raises(ValueError, match="unknown layer kind 'sofmax'"):
        validate_config(dataclasses.replace(base, unsupported_ops=("sofmax",)))


@pytest.mark.parametrize(
    ("field", "value"),
    [("host_gops", [8]), ("clock_mhz", [8]), ("rows", True), ("dram_bw_gbps", "8")],
)
def test_a_non_number_in_a_numeric_field_is_one_line(field, value):
    """Found by the fuzz harness: a list reached the traced model and raised a TypeError."""
    config = dataclasses.replace(get_preset("edge-tpu-like"), **{field: value})
    wl = layers.workload([layers.gemm("g", m=8, k=8, n=8)])
    with pytest.raises(ValueError, match=f"{field} must be a number, got"):
        checked_evaluate(config, wl)


@pytest.mark.parametrize(("field", "value"), [("dram_bw_gbps", [8]), ("rows", True), ("cols", "8")])
def test_a_non_number_override_is_one_line(field, value):
    """Found by the fuzz harness: a list override became a shape-(1,) array."""
    from npu_dse.simulate import resolve_design

    with pytest.raises(ValueError, match=f"{field} must be a number, got"):
        resolve_design(preset="eyeriss-like", overrides={field: value})
