"""npu-dse against ZigZag 3.9.1 on its five reference accelerators, ResNet-18 (npu_dse.peers).

Each accelerator is translated from ZigZag's own hardware file and costed with ZigZag's
per-access energies as a technology file; the targets are ZigZag's asserted energy within
10 %, latency within 15 % and DRAM traffic within 5 %. A case out of reach is a strict xfail
whose reason gives the measured ratio and why (``README.md``, validation section): if the model
changes so that it passes, the test fails until the xfail is removed.
"""

import pytest

from npu_dse import peers, techfiles
from npu_dse.designs import design_from_dict

AVAILABLE, WHY = peers.zigzag_available()
pytestmark = pytest.mark.skipif(not AVAILABLE, reason=WHY)

ENERGY_GAPS: dict[str, str] = {}
LATENCY_GAPS = {
    "tpu_like": "0.83x, from ResNet-18's first layer: ZigZag's mapping unrolls its 3 input "
    "channels alone on the 32 rows (9.4 % of the MACs busy: 1.25 M cycles in ZigZag 3.9.1), "
    "npu-dse's im2col lowering puts C x FY x FX = 147 on them (92 %: 0.13 M cycles); on the "
    "other 20 layers npu-dse takes 1.13x ZigZag's cycles (SCALE-Sim's fold fill and drain on "
    "the deep layers with few output pixels)",
}


def _cases(gaps: dict[str, str]):
    return [
        pytest.param(n, marks=pytest.mark.xfail(reason=gaps[n], strict=True)) if n in gaps else n
        for n in peers.ZIGZAG_ACCELERATORS
    ]


@pytest.fixture(scope="module")
def results():
    wl = peers.zigzag_workload()
    return {n: peers.compare_zigzag(n, wl) for n in peers.ZIGZAG_ACCELERATORS}


def test_translation_reads_zigzags_files():
    design = peers.zigzag_design_dict("edge_tpu_like")
    # 8 x 8 x 4 x 4 = 1024 MACs -> 32 x 32; K x C on D1 x D2 -> ws
    assert (design["rows"], design["cols"], design["dataflow"]) == (32, 32, "ws")
    # sram_2MB (16777216 bits) holds I1 and O: 2048 KiB split in two; sram_32KB holds I2
    assert (design["ifmap_sram_kib"], design["filter_sram_kib"]) == (1024.0, 32.0)
    tech = design["tech"]
    assert tech["mac_pj"] == 0.04 and tech["dram_pj_per_bit"] == 700 / 64
    assert tech["filter_sram_pj_per_bit"] == 22.9 / 512  # r_cost / read port bits
    assert tech["ifmap_sram_pj_per_bit"] == tech["ofmap_sram_pj_per_bit"] == 416.16 / 2048
    # tpu_like: the 128 B weight registers, one per PE (no served dimension), are the filter
    # buffer: 1024 bits x 1024 PEs = 128 KiB at 0.095 pJ per 8-bit access
    tpu = peers.zigzag_design_dict("tpu_like")
    assert tpu["filter_sram_kib"] == 128.0 and tpu["tech"]["filter_sram_pj_per_bit"] == 0.095 / 8
    # tesla_npu_like has 32 x 32 x 4 MACs, but ZigZag's mapping unrolls K 32 x OX 8 x OY 4 =
    # 1024 of them (its spatial utilization is 0.25): a 32 x 32 array; K x OX -> os
    tesla = peers.zigzag_design_dict("tesla_npu_like")
    assert (tesla["rows"], tesla["cols"], tesla["dataflow"]) == (32, 32, "os")
    # every translated design and technology is valid input for the design-file reader
    for name in peers.ZIGZAG_ACCELERATORS:
        spec = peers.zigzag_design_dict(name)
        assert set(spec["tech"]) <= set(techfiles.TECH_KEYS)
        assert design_from_dict(spec).config.tech.overrides


@pytest.mark.parametrize("name", _cases(ENERGY_GAPS))
def test_energy_within_10_percent(results, name):
    assert results[name]["energy_ratio"] == pytest.approx(1.0, abs=0.10)


@pytest.mark.parametrize("name", _cases(LATENCY_GAPS))
def test_latency_within_15_percent(results, name):
    assert results[name]["latency_ratio"] == pytest.approx(1.0, abs=0.15)


@pytest.mark.parametrize(
    ("name", "zigzag_bytes"),
    [
        # ZigZag's per-layer output: 16.08 MB (weights 11.68, inputs 1.92, outputs 2.48;
        # ../shared/reference/zigzag/README.md)
        ("edge_tpu_like", 16.08e6),
        # ZigZag 3.9.1 rerun on tpu_like (its energy reproduced to the pJ): the DRAM level's
        # word accesses summed over the 21 layers, 2,010,421 words of 8 bytes
        ("tpu_like", 16_083_368),
    ],
)
def test_dram_traffic_within_5_percent(results, name, zigzag_bytes):
    assert results[name]["dram_bytes"] / zigzag_bytes == pytest.approx(1.0, abs=0.05)


def test_energy_follows_the_technology_file(results):
    # The per-access energies are used as given: DRAM energy is bytes x 8 x 700 / 64 exactly,
    # and MAC energy is 0.04 pJ per MAC of ResNet-18 (1,814,073,344 MACs).
    for r in results.values():
        assert r["energy_dram_pj"] == pytest.approx(r["dram_bytes"] * 8 * 700 / 64, rel=1e-12)
        assert r["energy_mac_pj"] == pytest.approx(1_814_073_344 * 0.04, rel=1e-12)
