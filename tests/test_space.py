"""Design spaces (dse.space) and the legal values a search may pick in them (dse.legal)."""

import json

import jax
import numpy as np
import pytest

from dse import legal
from dse.space import DEFAULT_BASE, HW_KEYS, Space, base_values, load_space
from hw import layers, presets


@pytest.fixture(scope="module")
def workload():
    # Two GEMM-like layers and a vector-only one (no weights).
    return layers.workload(
        [
            layers.gemm("g", m=64, k=128, n=64),
            layers.vector("sm", "softmax", elems=4096),
            layers.conv2d(
                "c", ifmap_h=8, ifmap_w=8, channels=16, num_filters=32, filter_h=3, filter_w=3
            ),
        ]
    )


@pytest.fixture(scope="module")
def space():
    return Space.from_dict(
        {
            "rows": {"min": 8, "max": 32, "pow2": True},
            "cols": [16, 32],
            "dataflow": ["os", "is"],
            "sram_kib": [64, 256, 1024],
            "dram_bw_gbps": {"min": 2, "max": 4},
            "w_bits": [4, 8],
            "a_bits": [6, 8, 12],
        }
    )


# ---- from_dict ----------------------------------------------------------------------------


@pytest.mark.parametrize("base", presets.preset_names())
def test_missing_keys_keep_the_base_preset(base):
    space = Space.from_dict({"base": base, "rows": [8, 16]})
    fixed = base_values(presets.get_preset(base))
    for key, value in fixed.items():
        if key != "rows":
            assert getattr(space, key) == value
    assert space.rows == (8.0, 16.0)
    assert space.searched == ("rows",)
    assert space.per_layer_bits is True


def test_empty_spec_is_the_default_base():
    space = Space.from_dict({})
    config = presets.get_preset(DEFAULT_BASE)
    assert space.base == DEFAULT_BASE
    assert space.base_config() == config
    assert space.rows == (float(config.rows),)
    assert space.dataflow == (int(config.dataflow),)
    assert space.sram_kib == (
        config.ifmap_sram_kib + config.filter_sram_kib + config.ofmap_sram_kib,
    )
    assert space.searched == ()
    assert space.num_hardware_points == 1


@pytest.mark.parametrize(
    ("key", "spec", "expected"),
    [
        ("rows", {"min": 8, "max": 100, "pow2": True}, (8, 16, 32, 64)),
        ("rows", {"min": 5, "max": 16, "pow2": True}, (8, 16)),  # 2**3 .. 2**4
        ("cols", {"min": 2.5, "max": 6}, (3, 4, 5, 6)),
        ("cols", {"min": 4, "max": 4}, (4,)),
        ("sram_kib", [1024, 64, 64, 256.5], (64, 256.5, 1024)),  # sorted, deduplicated
        ("clock_mhz", 700, (700,)),
        ("w_bits", {"min": 2, "max": 16, "pow2": True}, (2, 4, 8, 16)),
        ("dataflow", ["is", "os", "is"], (0, 2)),
        ("dataflow", "ws", (1,)),
    ],
)
def test_values_and_ranges(key, spec, expected):
    assert getattr(Space.from_dict({key: spec}), key) == tuple(float(v) for v in expected)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"rowz": [8]}, "unknown key 'rowz'"),
        ({"rows": []}, "empty list"),
        ({"rows": {"min": 64, "max": 8}}, "min 64 is greater than max 8"),
        ({"rows": {"min": 5, "max": 7, "pow2": True}}, "no power of two"),
        ({"rows": {"min": 8}}, "a range is"),
        ({"rows": {"min": 8, "max": 16, "step": 2}}, "a range is"),
        ({"rows": [8.5]}, "must be integers"),
        ({"rows": [0]}, "positive"),
        ({"rows": [True]}, "positive"),
        ({"rows": "64"}, "must be a list"),
        ({"cols": {"min": 1, "max": 10000}}, "at most 4096"),
        ({"dataflow": ["os", "rs"]}, "unknown dataflow 'rs'"),
        ({"dataflow": []}, "non-empty list"),
        ({"w_bits": [1, 8]}, "bit widths must be in 2..16"),
        ({"a_bits": {"min": 8, "max": 32, "pow2": True}}, "bit widths must be in 2..16"),
        ({"base": "tpu-v9"}, "base 'tpu-v9' is not a preset"),
        ({"per_layer_bits": "yes"}, "per_layer_bits must be true or false"),
    ],
)
def test_bad_spec_is_one_line_value_error(spec, message):
    with pytest.raises(ValueError, match="design space") as err:
        Space.from_dict(spec)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_not_an_object():
    with pytest.raises(ValueError, match="JSON object, got list"):
        Space.from_dict([{"rows": [8]}])


# ---- files and round trips ----------------------------------------------------------------


def test_load_space(tmp_path, space):
    path = tmp_path / "space.json"
    path.write_text(json.dumps(space.to_dict()))
    assert load_space(path) == space
    assert load_space(str(path)) == space


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "does not exist"),
        ('{"rows": [8, 16]', "is not valid JSON"),
        ('{"rows": [8], "colz": [8]}', "space.json: design space: unknown key 'colz'"),
        ("[8, 16]", "space.json: a design space is a JSON object"),
    ],
)
def test_load_space_errors(tmp_path, text, message):
    path = tmp_path / "space.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ValueError) as err:
        load_space(path)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("per_layer_bits", [True, False])
def test_to_dict_round_trip(space, per_layer_bits):
    spec = {**space.to_dict(), "per_layer_bits": per_layer_bits}
    again = Space.from_dict(json.loads(json.dumps(spec)))
    assert again.to_dict() == spec
    assert again.per_layer_bits is per_layer_bits
    assert again.dataflow == space.dataflow
    assert spec["dataflow"] == ["os", "is"]


def test_num_hardware_points(space):
    # rows 8/16/32, cols 16/32, dataflow os/is, 3 SRAM sizes, 1 clock, 3 bandwidths 2/3/4,
    # w 4/8, a 6/8/12: 3 * 2 * 2 * 3 * 1 * 3 * 2 * 3 = 648.
    assert space.num_hardware_points == 648
    assert space.searched == (
        "rows",
        "cols",
        "dataflow",
        "sram_kib",
        "dram_bw_gbps",
        "w_bits",
        "a_bits",
    )
    grid = space.hardware_grid()
    assert {len(v) for v in grid.values()} == {648}
    points = {tuple(float(grid[k][i]) for k in grid) for i in range(648)}
    assert len(points) == 648
    assert set(grid["dataflow"]) == {0.0, 2.0}


# ---- legal values -------------------------------------------------------------------------


def test_snap_is_nearest_in_log_space():
    choices = np.array([4.0, 8.0, 16.0])
    # 6 is the linear midpoint of 4 and 8 but nearer 8 in log space (6/4 = 1.5 > 8/6 = 1.33);
    # 11.9 is linearly nearer 8 (3.9 < 4.1) but nearer 16 in log space (16/11.9 < 11.9/8).
    values = np.array([5.0, 6.0, 11.9, 16.0, 100.0, 1.0, 0.0])
    expected = [4.0, 8.0, 16.0, 16.0, 16.0, 4.0, 4.0]
    assert np.asarray(legal.snap(values, choices)).tolist() == expected
    assert np.asarray(legal.snap(values.reshape(7, 1), choices)).shape == (7, 1)


@pytest.mark.parametrize("per_layer_bits", [True, False])
def test_sample_yields_allowed_values(space, workload, per_layer_bits):
    space = Space.from_dict({**space.to_dict(), "per_layer_bits": per_layer_bits})
    d = jax.tree_util.tree_map(np.asarray, legal.sample(space, workload, jax.random.key(3), 64))
    for key in HW_KEYS:
        assert set(getattr(d, key).tolist()) <= set(getattr(space, key)), key
        assert getattr(d, key).shape == (64,)
    assert set(d.rows.tolist()) == set(space.rows)  # 64 draws reach each of 3 values
    assert set(d.a_bits.ravel().tolist()) <= set(space.a_bits)
    assert set(d.w_bits[:, [0, 2]].ravel().tolist()) <= set(space.w_bits)
    assert (d.w_bits[:, 1] == min(space.w_bits)).all()  # the vector layer has no weights
    if not per_layer_bits:
        assert (d.a_bits == d.a_bits[:, :1]).all()
        assert (d.w_bits[:, 0] == d.w_bits[:, 2]).all()
    assert d.mapping.tile_m.shape == (64, 3)


@pytest.mark.parametrize("per_layer_bits", [True, False])
def test_from_indices_and_gene_sizes(space, workload, per_layer_bits):
    space = Space.from_dict({**space.to_dict(), "per_layer_bits": per_layer_bits})
    sizes = legal.gene_sizes(space, workload)
    per = 3 if per_layer_bits else 1
    assert sizes == [3, 2, 2, 3, 1, 3] + [2] * per + [3] * per
    rng = np.random.default_rng(0)
    idx = rng.integers(0, sizes, size=(20, len(sizes)))
    d = jax.tree_util.tree_map(np.asarray, legal.from_indices(space, workload, idx))
    for col, key in enumerate(HW_KEYS):
        assert getattr(d, key).tolist() == [getattr(space, key)[i] for i in idx[:, col]]
    w = np.asarray(space.w_bits)[idx[:, 6 : 6 + per]]
    a = np.asarray(space.a_bits)[idx[:, 6 + per :]]
    np.testing.assert_array_equal(d.a_bits, np.broadcast_to(a, (20, 3)))
    np.testing.assert_array_equal(d.w_bits[:, 0], w[:, 0])
    np.testing.assert_array_equal(d.w_bits[:, 2], w[:, -1])
    assert (d.w_bits[:, 1] == min(space.w_bits)).all()
    # the last index of every gene picks the largest allowed value
    top = legal.from_indices(space, workload, np.asarray(sizes)[None, :] - 1)
    assert float(top.rows[0]) == max(space.rows)


def test_snap_design_widest_width_without_per_layer_bits(space, workload):
    space = Space.from_dict({**space.to_dict(), "per_layer_bits": False})
    d = legal.sample(space, workload, jax.random.key(0), 1)
    odd = d.__class__(
        rows=np.array([11.0]),
        cols=np.array([40.0]),
        dataflow=np.array([1]),  # ws is not allowed: os (0) and is (2) are equally near
        sram_kib=np.array([500.0]),
        clock_mhz=np.array([1.0]),
        dram_bw_gbps=np.array([2.9]),
        w_bits=np.array([[5.0, 16.0, 4.0]]),
        a_bits=np.array([[6.0, 7.5, 12.0]]),
        mapping=d.mapping,
    )
    s = jax.tree_util.tree_map(np.asarray, legal.snap_design(space, workload, odd))
    assert s.rows.tolist() == [8.0]  # 11/8 < 16/11
    assert s.cols.tolist() == [32.0]
    assert s.dataflow.tolist() == [0]  # ties go to the first allowed dataflow
    assert s.sram_kib.tolist() == [256.0]  # 500/256 < 1024/500
    assert s.clock_mhz.tolist() == list(space.clock_mhz)
    assert s.dram_bw_gbps.tolist() == [3.0]
    # widths snap (5 -> 4, 16 -> 8; 7.5 -> 8), then every layer takes the widest;
    # the vector layer's weight width is the narrowest.
    assert s.w_bits.tolist() == [[8.0, 4.0, 8.0]]
    assert s.a_bits.tolist() == [[12.0, 12.0, 12.0]]
