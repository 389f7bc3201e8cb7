"""npu-dse against Timeloop/Accelergy's reference outputs on its default conv layer
(``../shared/reference/timeloop/README.md``; npu_dse.peers).

Targets: DRAM bytes within 5 % on the three designs; energy with Timeloop's per-access
energies within 25 % on eyeriss_like. The simple designs' energy gap is explained in the
README's validation section: Timeloop's exercise restricts their mapspaces to 12 or 16 of
256 PEs, so operands are refetched from the global buffer and the per-PE scratchpads, which
npu-dse (all 256 PEs, no PE-local level) does not pay.
"""

import pytest

from npu_dse import peers_timeloop

AVAILABLE, WHY = peers_timeloop.timeloop_available()
pytestmark = pytest.mark.skipif(not AVAILABLE, reason=WHY)

EYERISS_ENERGY_GAP = (
    "0.74x: Timeloop spends 0.4-1.5 pJ per MAC (4-16 uJ of 59.3) in eyeriss_like's per-PE "
    "scratchpads, which the README's per-access table does not give and npu-dse does not model "
    "(no PE-local storage level: rf_pj_per_bit 0)"
)


@pytest.fixture(scope="module")
def results():
    return {n: peers_timeloop.compare_timeloop(n) for n in peers_timeloop.TIMELOOP_DESIGNS}


def test_readme_table_and_workload():
    table = peers_timeloop.timeloop_table()
    assert set(table) == set(peers_timeloop.TIMELOOP_DESIGNS)
    eyeriss = table["eyeriss_like"]
    assert (eyeriss["rows"], eyeriss["cols"], eyeriss["word_bits"]) == (14, 12, 8)
    # "18.18 / 64 = 0.284": the last number of the cell; "0.506" alone repeats the row above
    assert eyeriss["glb_pj_per_bit"] == 0.284
    assert table["simple_output_stationary"]["glb_pj_per_bit"] == 0.506
    wl = peers_timeloop.timeloop_workload()
    # 3 channels, 32 filters of 3x3, 112x112 outputs: 112 * 112 * 27 * 32 MACs
    assert int(wl.macs[0]) == 10_838_016 == 112 * 112 * 27 * 32


@pytest.mark.parametrize("name", peers_timeloop.TIMELOOP_DESIGNS)
def test_dram_bytes_within_5_percent(results, name):
    assert results[name]["dram_ratio"] == pytest.approx(1.0, abs=0.05)


@pytest.mark.xfail(reason=EYERISS_ENERGY_GAP, strict=True)
def test_eyeriss_energy_within_25_percent(results):
    assert results["eyeriss_like"]["energy_ratio"] == pytest.approx(1.0, abs=0.25)


def test_simple_designs_spend_less_than_timeloop(results):
    # The gap is all on chip: DRAM and MAC energy agree (DRAM bytes within 5 % at the same
    # 8 pJ/bit), and what npu-dse leaves out is what Timeloop spends in the global buffer and
    # the PEs of a 12- or 16-PE mapping (explained in the README).
    for name in ("simple_weight_stationary", "simple_output_stationary"):
        r = results[name]
        assert r["energy_ratio"] < 1.0
        ref = peers_timeloop.timeloop_table()[name]
        ref_dram_pj = ref["dram_words"] * ref["word_bits"] * ref["dram_pj_per_bit"]
        assert r["energy_dram_pj"] / ref_dram_pj == pytest.approx(1.0, abs=0.05)
