"""SCALE-Sim parity of the closed-form prefetcher model on the USER-bandwidth rows."""

import numpy as np
import pytest

from hw import cost
from npu_dse.reference import design_for, gemm_workload


@pytest.fixture(scope="module")
def user_rows(reference_rows):
    rows = [r for r in reference_rows if r.bw_words is not None]
    cycles = [float(cost.evaluate(design_for(r), gemm_workload(r)).total_cycles[0]) for r in rows]
    return rows, np.array(cycles), np.array([r.sim_cycles for r in rows])


def test_rows_without_stalls_are_exact(user_rows):
    rows, ours, sim = user_rows
    quiet = np.array([not r.stalls for r in rows])
    assert quiet.sum() > 100
    np.testing.assert_array_equal(ours[quiet], sim[quiet])


def test_stalling_rows_median_error_within_ten_percent(user_rows):
    rows, ours, sim = user_rows
    stall = np.array([r.stalls for r in rows])
    err = np.abs(ours[stall] / sim[stall] - 1)
    print(f"stalling rows: n={stall.sum()} median {np.median(err):.1%} worst {err.max():.1%}")
    assert stall.sum() >= 10
    assert np.median(err) <= 0.10
    assert err.max() < 0.5


def test_prefetcher_refetches_more_than_the_tiled_model(user_rows):
    rows, _, _ = user_rows
    big = next(r for r in rows if r.stalls and r.dataflow == "ws" and r.rows == 128)
    wl = gemm_workload(big)
    ss = cost.evaluate(design_for(big, "scalesim"), wl)
    tiled = cost.evaluate(design_for(big, "tiled"), wl)
    assert float(ss.dram_filter_read_bytes[0]) == big.sim["sim_dram_filter_reads"]
    assert float(tiled.dram_filter_read_bytes[0]) < float(ss.dram_filter_read_bytes[0]) / 10
