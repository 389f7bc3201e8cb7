"""hw.bounds: the documented ranges hold what they promise at their edges, and refuse beyond."""

import dataclasses

import numpy as np
import pytest

from hw import bounds, layers
from hw.bounds import WORK_MAX, InputError
from hw.presets import get_preset
from hw.validate import checked_evaluate, validate_pair, validate_workload
from hw.x64 import x64

# (rows = cols, M = K = N): (M + X)^3 just below 2^50 with X = 2R + C = 3R.
EDGES = [(1, 104_000), (2**14, 54_000), (128, 103_000)]


def _edge_case(r: int, d: int, dataflow: int, memory_model: str = "tiled"):
    # The fastest clock and the slowest DRAM: the most stall cycles the ranges allow.
    config = dataclasses.replace(
        get_preset("scalesim-32x32"),
        rows=np.int64(r),
        cols=np.int64(r),
        dataflow=np.int64(dataflow),
        memory_model=memory_model,
        clock_mhz=np.float64(bounds.CLOCK_MHZ[1]),
        dram_bw_gbps=np.float64(bounds.DRAM_BW_GBPS[0]),
    )
    wl = layers.workload([layers.gemm("g", m=d, k=d, n=d)])
    assert bounds.check_work(wl, r, r) <= WORK_MAX
    return config, wl


def _fields(report):
    return {
        f.name: np.asarray(getattr(report, f.name))
        for f in dataclasses.fields(report)
        if f.name != "names"
    }


@pytest.mark.parametrize(
    "memory_model", ["tiled", pytest.param("scalesim", marks=pytest.mark.slow)]
)
@pytest.mark.parametrize("dataflow", [0, 1, 2])
@pytest.mark.parametrize(("r", "d"), EDGES)
@x64
def test_counts_at_the_edge_of_the_bounds_are_exact_and_finite(r, d, dataflow, memory_model):
    config, wl = _edge_case(r, d, dataflow, memory_model)
    rep = checked_evaluate(config, wl)
    for name, value in _fields(rep).items():
        assert np.all(np.isfinite(value.astype(np.float64))), name
        assert np.all(value >= 0), name
    # hw.mac_array's formula in Python integers: F * (T + R + C - 2 + [not os] R).
    folds = -(-d // r) * -(-d // r)
    expected = folds * (d + 2 * r - 2 + (r if dataflow else 0))
    assert int(np.asarray(rep.compute_cycles)[0]) == expected
    assert int(np.asarray(rep.macs)[0]) == d**3
    assert float(rep.total_latency_s) > 0 and float(rep.total_energy_j) > 0


def test_one_step_past_the_work_bound_is_refused():
    wl = layers.workload([layers.gemm("g", m=104_000, k=104_000, n=104_000)])
    config = dataclasses.replace(get_preset("scalesim-32x32"), rows=np.int64(2**14))
    with pytest.raises(InputError, match="workload too large on a 16384x32 array"):
        validate_pair(config, wl)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rows": np.int64(2**63 - 1)}, "rows must be in 1..16384 PEs"),
        ({"rows": np.int64(0)}, "rows must be in 1..16384 PEs, got 0"),
        ({"clock_mhz": np.float64(1e-300)}, "clock_mhz must be in 1..100000 MHz, got 1e-300"),
    ],
)
def test_checked_evaluate_refuses_bad_designs(change, message):
    wl = layers.workload([layers.gemm("g", m=8, k=8, n=8)])
    config = dataclasses.replace(get_preset("scalesim-32x32"), **change)
    with pytest.raises(InputError, match=message):
        checked_evaluate(config, wl)


def test_checked_evaluate_refuses_a_zero_dimension():
    wl = layers.workload([layers.gemm("g", m=8, k=8, n=8)])
    wl = dataclasses.replace(wl, gemm_k=np.array([0]))
    with pytest.raises(InputError, match="gemm_k must be an integer >= 1"):
        checked_evaluate(get_preset("scalesim-32x32"), wl)


def test_int64_overflowing_layers_are_refused_before_stacking():
    huge = layers.dense("d", in_features=10**9, out_features=10**9, tokens=10**9)
    with pytest.raises(InputError, match="outside 0..2\\^50"):
        layers.workload([huge])
    with pytest.raises(InputError, match="outside 0..2\\^50"):
        layers.workload([layers.gemm("g", m=2**63 - 1, k=1, n=1)])


def test_huge_conv_inputs_lower_in_integers():
    # 10^400 does not fit a float: the output size is computed in integers.
    assert layers.conv_out_size(10**400, 3, 1, 0, 1, "ceil") == 10**400 - 2


def test_workload_alone_is_bounded():
    wl = layers.workload([layers.gemm("g", m=2**17, k=2**17, n=2**17)])
    with pytest.raises(InputError, match="workload too large"):
        validate_workload(wl)


@pytest.mark.parametrize("seed", [-1, 2**32, 18446744073709551616, 1.5, True, "3"])
def test_bad_seeds(seed):
    with pytest.raises(InputError, match="seed must be an integer in 0..4294967295"):
        bounds.check_seed(seed)


def test_good_seeds():
    assert bounds.check_seed(0) == 0
    assert bounds.check_seed(np.int64(bounds.SEED_MAX)) == bounds.SEED_MAX


def test_input_error_is_a_value_error():
    assert issubclass(InputError, ValueError)


def _work_loop(wl, x):
    """The work of ``wl`` as a Python-int sum (the reference for check_work's int64 path)."""
    names = ("gemm_m", "gemm_k", "gemm_n", "gemm_count")
    m, k, n, g = ([int(v) for v in np.asarray(getattr(wl, f)).tolist()] for f in names)
    rest = ("vector_ops", "ifmap_elems", "filter_elems", "ofmap_elems")
    other = [sum(int(getattr(wl, f)[i]) for f in rest) for i in range(len(m))]
    return sum(bounds.layer_work(*dims, o, x) for *dims, o in zip(m, k, n, g, other, strict=True))


@pytest.mark.parametrize("r", [0, 1, 128])
def test_check_work_counts_exactly_below_the_bound_and_refuses_past_it(r):
    rng = np.random.default_rng(r)
    dims = rng.integers(1, 3000, (50, 3))
    wl = layers.workload(
        [layers.gemm(f"g{i}", m=int(a), k=int(b), n=int(c)) for i, (a, b, c) in enumerate(dims)]
        + [layers.vector("v", op="add", elems=12345, inputs=2)]
    )
    assert bounds._work_far_below_max(wl, 3 * r) is not None  # the int64 path is taken
    assert bounds.check_work(wl, r, r) == _work_loop(wl, 3 * r)
    # just past WORK_MAX: the estimate is too close to the bound, the Python-int loop refuses
    d = round((WORK_MAX / 2) ** (1 / 3)) - 3 * r
    near = layers.workload([layers.gemm("a", m=d, k=d, n=d), layers.gemm("b", m=d, k=d, n=d)])
    assert bounds._work_far_below_max(near, 3 * r) is None
    with pytest.raises(InputError, match="at layer 'b' its work"):
        bounds.check_work(near, r, r)
