"""Host fallback and fusion: placement, fused edges, and their cost on small hand cases."""

import dataclasses
import math

import numpy as np
import pytest

from hw import cost, layers, presets, schedule
from hw.types import canonical

FC = layers.dense("fc", in_features=8, out_features=8, tokens=4)  # 4 x 8 outputs = 32
RELU = layers.vector("act", "relu", elems=32)
SOFTMAX = layers.vector("sm", "softmax", elems=1000)


def design(**kw):
    return canonical(dataclasses.replace(presets.get_preset("scalesim-32x32"), **kw))


def test_fused_edges_follow_the_rules():
    kinds = ("conv", "relu", "pool", "dense", "matmul", "softmax", "matmul", "layernorm", "add")
    fused = schedule.fused_edges(kinds, unsupported=(), fusion=True)
    assert fused.tolist() == [False, True, True, False, False, True, True, False, True]
    assert not schedule.fused_edges(kinds, (), fusion=False).any()
    # nothing fuses across a layer that runs on the host
    on_host = schedule.fused_edges(kinds, unsupported=("softmax",), fusion=True)
    assert on_host.tolist() == [False, True, True, False, False, False, False, False, True]


def test_fusion_removes_the_intermediate_round_trip():
    wl = layers.workload([FC, RELU])
    on = cost.evaluate(design(), wl)
    off = cost.evaluate(design(fusion=False), wl)
    # fc's 32 one-byte outputs are neither written by fc nor read back by relu
    assert float(off.dram_ofmap_write_bytes[0]) - float(on.dram_ofmap_write_bytes[0]) == 32
    assert float(off.dram_ifmap_read_bytes[1]) == 32 and float(on.dram_ifmap_read_bytes[1]) == 0
    saved_pj = 64 * 8 * float(design().tech.dram_pj_per_bit)
    assert float(
        np.asarray(off.energy_dram_pj).sum() - np.asarray(on.energy_dram_pj).sum()
    ) == pytest.approx(saved_pj)
    assert float(on.total_energy_j) < float(off.total_energy_j)


def test_fallback_costs_host_time_and_link_transfers():
    cfg = design(unsupported_ops=("softmax",))
    rep = cost.evaluate(cfg, layers.workload([SOFTMAX]))
    native = cost.evaluate(design(), layers.workload([SOFTMAX]))
    # 1000 elements x 5 ops on a 50 Gop/s host, 2000 bytes over a 4 GB/s link, 1 GHz clock:
    # 5000 / 50e9 s = 100 ns and 2000 / 4e9 s = 500 ns -> 600 cycles.
    host_s = 5000 / (float(cfg.host_gops) * 1e9) + 2000 / (float(cfg.host_link_gbps) * 1e9)
    assert float(rep.host_cycles[0]) == math.ceil(host_s * float(cfg.clock_mhz) * 1e6) == 600
    assert bool(rep.on_host[0]) and float(rep.vector_cycles[0]) == 0
    # energy: 5000 host ops x 8.75 pJ + 2000 link bytes x 80 pJ
    assert float(rep.energy_host_pj[0]) == pytest.approx(5000 * 8.75 + 2000 * 80)
    assert float(rep.energy_vector_pj[0]) == 0
    assert float(native.vector_cycles[0]) == math.ceil(5000 / float(cfg.vector_lanes))
    assert float(native.energy_host_pj[0]) == 0
    assert float(rep.total_latency_s) > float(native.total_latency_s)


def test_gemm_fallback_moves_activations_not_weights():
    cfg = design(unsupported_ops=("dense",))
    rep = cost.evaluate(cfg, layers.workload([FC]))
    assert float(rep.compute_cycles[0]) == 0 and float(rep.energy_mac_pj[0]) == 0
    assert float(rep.utilization[0]) == 0  # the array did none of it
    assert float(rep.dram_filter_read_bytes[0]) == 0
    host_s = 2 * FC.macs / 50e9 + (32 + 32) / 4e9
    assert float(rep.host_cycles[0]) == math.ceil(host_s * 1e9)
    np.testing.assert_array_equal(rep.fits, [True])
