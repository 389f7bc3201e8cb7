"""Design points (dse.design) and the objectives and budgets they are judged by
(dse.objective)."""

import dataclasses
import json
import math

import numpy as np
import pytest

import hw
from dse import design as dz
from dse import objective as obj
from dse.space import Space
from hw import cost, layers, presets

METRICS = ("latency_s", "energy_j", "power_w", "area_mm2", "edp_js")


@pytest.fixture(scope="module")
def workload():
    return layers.workload(
        [
            layers.gemm("g", m=64, k=128, n=64),
            layers.conv2d(
                "c", ifmap_h=8, ifmap_w=8, channels=16, num_filters=32, filter_h=3, filter_w=3
            ),
        ]
    )


def with_bits(d: dz.Design, w, a) -> dz.Design:
    return dataclasses.replace(d, w_bits=np.asarray(w, float), a_bits=np.asarray(a, float))


def total(d: dz.Design, space: Space, workload) -> dict:
    return dz.metrics(dz.evaluate(space.base_config(), workload, d))


# ---- designs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "base",
    # one preset always, the others in the slow sample (each compiles the mapper afresh)
    [
        b if b == "edge-tpu-like" else pytest.param(b, marks=pytest.mark.slow)
        for b in presets.preset_names()
    ],
)
def test_base_design_is_the_preset(base, workload):
    space = Space.from_dict({"base": base})
    config = presets.get_preset(base)
    mapping = hw.default_mapping(config, workload)
    d = dz.base_design(space, workload)
    np.testing.assert_array_equal(np.asarray(d.mapping.tile_k), np.asarray(mapping.tile_k))
    ours = total(d, space, workload)
    ref = hw.evaluate(config, workload, mapping)
    for key, value in (
        ("latency_s", ref.total_latency_s),
        ("energy_j", ref.total_energy_j),
        ("power_w", ref.power_w),
        ("area_mm2", ref.area_mm2),
        ("edp_js", ref.edp_js),
    ):
        np.testing.assert_allclose(float(ours[key]), float(value), rtol=1e-12, err_msg=key)
    assert bool(ours["fits"]) == bool(np.all(ref.fits))


@pytest.mark.parametrize("bits", [(8, 8), (4, 8), (8, 4)])
def test_uniform_layer_bits_are_the_hardware_bits(workload, bits):
    space = Space.from_dict({})
    base = space.base_config()
    d = with_bits(dz.base_design(space, workload), [bits[0]] * 2, [bits[1]] * 2)
    config = dz.to_config(base, d, workload)
    assert (float(config.w_bits), float(config.a_bits)) == bits
    ours = dz.evaluate(base, workload, d)
    ref = cost.evaluate(config, workload, d.mapping)
    for field in dataclasses.fields(ours):
        a, b = (np.asarray(getattr(r, field.name)) for r in (ours, ref))
        if a.dtype.kind == "f":
            np.testing.assert_allclose(a, b, rtol=1e-12, err_msg=field.name)
        else:
            np.testing.assert_array_equal(a, b, err_msg=field.name)


def test_narrower_bits_reduce_energy(workload):
    space = Space.from_dict({})
    d = dz.base_design(space, workload)
    e8 = float(total(d, space, workload)["energy_j"])
    e_w4 = float(total(with_bits(d, [4, 8], [8, 8]), space, workload)["energy_j"])
    e_a4 = float(total(with_bits(d, [8, 8], [8, 4]), space, workload)["energy_j"])
    e4 = float(total(with_bits(d, [4, 4], [4, 4]), space, workload)["energy_j"])
    assert e4 < e_w4 < e8
    assert e4 < e_a4 < e8


def test_area_follows_the_widest_layer(workload):
    space = Space.from_dict({})
    d = dz.base_design(space, workload)

    def area(w, a):
        return float(total(with_bits(d, w, a), space, workload)["area_mm2"])

    assert area([4, 8], [8, 8]) == area([8, 4], [8, 8]) == area([8, 8], [8, 8])
    assert area([8, 8], [4, 8]) == area([8, 8], [8, 8])
    assert area([4, 4], [8, 8]) < area([8, 8], [8, 8])
    assert area([4, 4], [4, 4]) < area([4, 4], [8, 8])
    assert area([12, 4], [4, 4]) > area([8, 4], [4, 4])


@pytest.mark.slow
def test_hardware_bits_ignore_weights_of_vector_layers():
    wl = layers.workload(
        [layers.gemm("g", m=16, k=16, n=16), layers.vector("sm", "softmax", elems=256)]
    )
    d = with_bits(dz.base_design(Space.from_dict({}), wl), [4, 16], [8, 6])
    w, a = dz.hardware_bits(d, wl)
    assert (float(w), float(a)) == (4.0, 8.0)
    vec = layers.workload([layers.vector("sm", "softmax", elems=256)])
    d = with_bits(dz.base_design(Space.from_dict({}), vec), [6], [8])
    assert float(dz.hardware_bits(d, vec)[0]) == 6.0  # no GEMM: the widest weight width


def test_population_is_a_loop(workload):
    space = Space.from_dict({})
    base = space.base_config()
    d0 = dz.base_design(space, workload)
    designs = [
        d0,
        dataclasses.replace(with_bits(d0, [4, 8], [8, 6]), rows=np.float64(16)),
        dataclasses.replace(d0, cols=np.float64(8), dataflow=np.int64(0), sram_kib=128.0),
        dataclasses.replace(d0, dataflow=np.int64(2), clock_mhz=1000.0, dram_bw_gbps=16.0),
    ]
    batch = dz.evaluate_population(base, workload, dz.stack(designs))
    assert set(batch) == {*METRICS, "fits"}
    for i, d in enumerate(designs):
        one = total(d, space, workload)
        for key in (*METRICS, "fits"):
            np.testing.assert_allclose(
                np.asarray(batch[key][i]), np.asarray(one[key]), rtol=1e-12, err_msg=key
            )
        again = dz.take(dz.stack(designs), i)
        assert float(again.rows) == float(d.rows)


def test_describe_is_json(workload):
    space = Space.from_dict({"rows": [16, 64]})
    d = with_bits(dz.base_design(space, workload), [4, 8], [8, 8])
    out = dz.describe(space, d, workload)
    assert json.loads(json.dumps(out)) == out
    assert out["hardware"]["rows"] == 64
    assert out["hardware"]["dataflow"] == "ws"
    assert (out["hardware"]["w_bits"], out["hardware"]["a_bits"]) == (8, 8)
    assert [layer["name"] for layer in out["layers"]] == ["g", "c"]
    assert [layer["w_bits"] for layer in out["layers"]] == [4, 8]
    assert out["layers"][0]["loop_order"] in hw.LOOP_ORDERS


# ---- objectives and budgets ---------------------------------------------------------------

BUDGETS = obj.Budgets(max_latency_s=1e-3, max_power_w=2.0, max_area_mm2=10.0, min_accuracy=0.9)


def test_misses_penalty_golden():
    m = {"latency_s": 2e-3, "power_w": 1.0, "area_mm2": 12.5, "accuracy": 0.81, "fits": True}
    # latency 2e-3 / 1e-3 - 1 = 1; power 1 / 2 - 1 = -0.5; area 12.5 / 10 - 1 = 0.25;
    # accuracy 1 - 0.81 / 0.9 = 0.1.
    miss = {k: float(v) for k, v in obj.misses(m, BUDGETS).items()}
    assert miss == pytest.approx(
        {"latency_s": 1.0, "power_w": -0.5, "area_mm2": 0.25, "accuracy": 0.1}, rel=1e-12
    )
    assert not bool(obj.feasible(m, BUDGETS))
    assert obj.worst_miss(m, BUDGETS) == ("latency_s", pytest.approx(1.0))
    # penalty = log(2)**2 + log(1.25)**2 + log(0.9 / 0.81)**2 (power is under its budget)
    #         = 0.480453 + 0.049793 + 0.011101 = 0.541347
    expected = math.log(2) ** 2 + math.log(1.25) ** 2 + math.log(0.9 / 0.81) ** 2
    assert float(obj.penalty(m, BUDGETS)) == pytest.approx(expected, rel=1e-9)
    assert expected == pytest.approx(0.541347, abs=1e-6)


def test_feasible_at_the_limits():
    m = {"latency_s": 1e-3, "power_w": 2.0, "area_mm2": 10.0, "accuracy": 0.9, "fits": True}
    assert bool(obj.feasible(m, BUDGETS))
    assert float(obj.penalty(m, BUDGETS)) == 0.0
    assert obj.worst_miss(m, BUDGETS) is None
    assert not bool(obj.feasible({**m, "fits": False}, BUDGETS))
    # populations: one verdict per design
    batch = {
        "latency_s": np.array([5e-4, 5e-4, 2e-3]),
        "power_w": np.array([1.0, 3.0, 1.0]),
        "area_mm2": np.array([1.0, 1.0, 1.0]),
        "accuracy": np.array([0.95, 0.95, 0.95]),
        "fits": np.array([True, True, True]),
    }
    assert np.asarray(obj.feasible(batch, BUDGETS)).tolist() == [True, False, False]
    # no budgets: only the tiles matter
    assert bool(obj.feasible(m, obj.Budgets())) and obj.Budgets().limits() == {}
    assert float(obj.penalty(m, obj.Budgets())) == 0.0


def test_objective_names():
    m = {"edp_js": 1.0, "energy_j": 2.0, "latency_s": 3.0}
    assert [obj.objective(m, name) for name in ("edp", "energy", "latency")] == [1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="objective must be one of edp, energy, latency"):
        obj.objective(m, "power")


@pytest.mark.parametrize(
    "budgets",
    [
        obj.Budgets(max_latency_s=0.0),
        obj.Budgets(max_power_w=-1.0),
        obj.Budgets(max_area_mm2=math.inf),
        obj.Budgets(max_latency_s=math.nan),
        obj.Budgets(min_accuracy=0.0),
        obj.Budgets(min_accuracy=1.5),
        obj.Budgets(min_accuracy=math.nan),
    ],
)
def test_budgets_check_rejects(budgets):
    with pytest.raises(ValueError, match="budget (max_|min_accuracy)"):
        budgets.check()


def test_budgets_check_accepts():
    assert BUDGETS.check() is BUDGETS
    assert obj.Budgets(min_accuracy=1.0).check().limits() == {"accuracy": (1.0, -1)}
