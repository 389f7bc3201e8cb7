"""The systolic-array model against SCALE-Sim 3.0.0 and against a brute-force walk."""

import csv
import itertools

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hw import mac_array
from hw.arith import EXACT
from hw.types import DATAFLOWS
from npu_dse.reference import gemm_shapes, reference_path


def _model(shapes):
    s = shapes
    args = (s["m"], s["k"], s["n"], s["rows"], s["cols"], s["dataflow"])
    with jax.enable_x64(True):  # as inside hw.cost.evaluate
        cycles = np.asarray(mac_array.compute_cycles(*args, EXACT))
        eff = np.asarray(mac_array.mapping_efficiency(*args, EXACT))
        reads = [np.asarray(x) for x in mac_array.sram_traffic(*args, EXACT)]
    return cycles, eff, reads


def test_compute_cycles_match_scalesim_on_every_row(reference_rows):
    cycles, _, _ = _model(gemm_shapes(reference_rows))
    # SCALE-Sim's total_cycles is the 0-based index of the last cycle; stalls add on top.
    sim = np.array([r.sim_cycles - r.sim["sim_stall_cycles"] for r in reference_rows])
    bad = [
        (r.setting, r.layer.name, r.dataflow, r.rows, r.cols, int(c), int(s))
        for r, c, s in zip(reference_rows, cycles, sim, strict=True)
        if c != s
    ]
    assert not bad, f"{len(bad)} rows differ, e.g. {bad[:3]}"
    assert len(reference_rows) > 200


def test_no_stall_rows_match_total_cycles(reference_rows):
    rows = [r for r in reference_rows if r.setting.startswith("A_")]
    assert rows and all(r.sim["sim_stall_cycles"] == 0 for r in rows)
    cycles, _, _ = _model(gemm_shapes(rows))
    np.testing.assert_array_equal(cycles, [r.sim_cycles for r in rows])


def test_mapping_efficiency_and_sram_counts_match(reference_rows):
    _, eff, (ifmap, filt, ofmap) = _model(gemm_shapes(reference_rows))
    sim = {k: np.array([r.sim[k] for r in reference_rows]) for k in reference_rows[0].sim}
    np.testing.assert_allclose(100 * eff, sim["sim_mapping_eff_pct"], rtol=1e-12)
    np.testing.assert_array_equal(ifmap, sim["sim_sram_ifmap_reads"])
    np.testing.assert_array_equal(filt, sim["sim_sram_filter_reads"])
    np.testing.assert_array_equal(ofmap, sim["sim_sram_ofmap_writes"])


def test_conv_lowering_matches_scalesim_gemm_shapes(reference_rows):
    with reference_path().open() as f:
        want = {row["layer_name"]: row for row in csv.DictReader(f)}
    for r in reference_rows:
        row = want[r.layer.name]
        got = (r.layer.gemm_m, r.layer.gemm_k, r.layer.gemm_n)
        assert got == (int(row["gemm_M"]), int(row["gemm_K"]), int(row["gemm_N"])), r.layer.name
        assert r.layer.macs == int(row["macs"])


def _walk(m, k, n, rows, cols, dataflow):
    """Brute force: walk every fold and every cycle of a small array, counting events.

    Stream element ``t`` reaches PE ``(i, j)`` at cycle ``preload + t + i + j`` (inputs skewed
    by one cycle per row and column); a fold ends one cycle after the last PE of the array
    has worked on the last wavefront. Edge PEs read one operand word per valid row per
    wavefront; the stationary operand is read once.
    """
    sr, sc, t_len = {"os": (m, n, k), "ws": (k, n, m), "is": (k, m, n)}[dataflow]
    preload = 0 if dataflow == "os" else rows
    cycles = reads_row_edge = reads_col_edge = writes = 0
    for r0, c0 in itertools.product(range(0, sr, rows), range(0, sc, cols)):
        vr, vc = min(rows, sr - r0), min(cols, sc - c0)
        last = 0
        for t in range(t_len):
            for i, j in itertools.product(range(rows), range(cols)):
                last = max(last, preload + t + i + j)
            reads_row_edge += vr  # one word per valid row enters from the left
            reads_col_edge += vc  # one word per valid column enters from the top
        cycles += last + 1
        # os: every valid PE holds one finished output; ws/is: every valid column emits one
        # partial sum per wavefront at the bottom edge.
        writes += vr * vc if dataflow == "os" else vc * t_len
    if dataflow == "os":  # rows carry ifmap (M x K), columns carry filters (K x N)
        return cycles, reads_row_edge, reads_col_edge, writes
    if dataflow == "ws":  # weights preloaded once per fold; the ifmap streams along the rows
        return cycles, reads_row_edge, k * n, writes
    return cycles, m * k, reads_row_edge, writes  # is: inputs preloaded; filters stream


@settings(max_examples=60, deadline=None)
@given(
    m=st.integers(1, 12),
    k=st.integers(1, 12),
    n=st.integers(1, 12),
    rows=st.integers(1, 5),
    cols=st.integers(1, 5),
    dataflow=st.sampled_from(DATAFLOWS),
)
def test_vectorised_model_equals_brute_force_walk(m, k, n, rows, cols, dataflow):
    code = DATAFLOWS.index(dataflow)
    args = (m, k, n, rows, cols, code)
    cycles = int(mac_array.compute_cycles(*args, EXACT))
    ifmap, filt, ofmap = (int(x) for x in mac_array.sram_traffic(*args, EXACT))
    fr, fc = (int(x) for x in mac_array.folds(*args, EXACT))
    if dataflow == "os":
        ofmap -= fr * fc * (rows + cols)  # SCALE-Sim's drain count, not a physical write
    assert (cycles, ifmap, filt, ofmap) == _walk(m, k, n, rows, cols, dataflow)


@pytest.mark.parametrize("dataflow", range(3))
def test_utilization_at_most_one_and_more_work_never_fewer_cycles(dataflow):
    # Note: more PEs can add cycles in this model (a fold's fill/drain grows with R + C while
    # the fold count may not drop), exactly as in SCALE-Sim, so that is not a property here.
    rng = np.random.default_rng(dataflow)
    m, k, n = (rng.integers(1, 600, 500) for _ in range(3))
    r, c = rng.integers(1, 64, 500), rng.integers(1, 64, 500)
    base = np.asarray(mac_array.compute_cycles(m, k, n, r, c, dataflow, EXACT))
    assert np.all(m * k * n <= base * r * c)
    for grown in ((m + 1, k, n), (m, k + 1, n), (m, k, n + 1)):
        assert np.all(np.asarray(mac_array.compute_cycles(*grown, r, c, dataflow, EXACT)) >= base)
