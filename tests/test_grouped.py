"""Channel-parallel grouped and depthwise convolutions (hw.grouped): a brute-force walk, the
per-layer choice against the GEMM lowering, the report and the design-file field."""

import dataclasses
import itertools
import json

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hw import cost, grouped, layers, mac_array, presets
from hw.arith import EXACT, Arith
from hw.types import DATAFLOWS, LayerBits, Mapping, canonical
from hw.x64 import x64
from npu_dse import simulate
from npu_dse.cli import main
from npu_dse.designs import config_to_dict, design_from_dict


def _walk(m, k, n, g, rows, cols, dataflow):
    """Brute force: place the ``g`` groups on the columns one by one (a group goes into the
    current column fold if its ``Sc`` columns are still free there, else opens the next; a
    group wider than the array takes its own folds), then walk every fold and wavefront.

    Stream element ``t`` reaches PE ``(i, j)`` at cycle ``preload + t + i + j``; a fold ends
    one cycle after the array's last PE has worked on the last wavefront. Per fold, every
    group present streams its own operand (the per-column path), the stationary operand is
    read once, and outputs leave as in ``tests/test_mac_array.py``'s walk.
    """
    sr, sc, t_len = {"os": (m, n, k), "ws": (k, n, m), "is": (k, m, n)}[dataflow]
    preload = 0 if dataflow == "os" else rows
    col_folds, free = [], 0  # each fold: a list of (group, columns it holds)
    for group in range(g):
        if sc > cols:
            col_folds += [[(group, min(cols, sc - c0))] for c0 in range(0, sc, cols)]
            free = 0
            continue
        if free < sc:
            col_folds.append([])
            free = cols
        col_folds[-1].append((group, sc))
        free -= sc
    cycles = ifmap = filt = ofmap = 0
    for r0, fold in itertools.product(range(0, sr, rows), col_folds):
        vr = min(rows, sr - r0)
        last = max(preload + t_len - 1 + i + j for i in range(rows) for j in range(cols))
        cycles += last + 1
        for _, vc in fold:
            if dataflow == "ws":  # weights K x N preloaded; the group's M x K inputs stream
                filt, ifmap, ofmap = filt + vr * vc, ifmap + t_len * vr, ofmap + t_len * vc
            elif dataflow == "os":  # outputs stay; inputs per row, filters per column stream
                ifmap, filt, ofmap = ifmap + t_len * vr, filt + t_len * vc, ofmap + vr * vc
            else:  # is: inputs K x M preloaded; the group's K x N filters stream
                ifmap, filt, ofmap = ifmap + vr * vc, filt + t_len * vr, ofmap + t_len * vc
    return cycles, ifmap, filt, ofmap


@settings(max_examples=40, deadline=None)
@given(
    m=st.integers(1, 9),
    k=st.integers(1, 9),
    n=st.integers(1, 9),
    g=st.integers(1, 9),
    rows=st.integers(1, 6),
    cols=st.integers(1, 12),
    dataflow=st.sampled_from(DATAFLOWS),
)
@x64
def test_closed_form_equals_brute_force_walk(m, k, n, g, rows, cols, dataflow):
    args = (m, k, n, g, rows, cols, DATAFLOWS.index(dataflow))
    cycles = int(grouped.compute_cycles(*args, EXACT))
    ifmap, filt, ofmap = (int(x) for x in grouped.sram_traffic(*args, EXACT))
    if dataflow == "os":
        fr, fc = (int(x) for x in grouped.folds(*args, EXACT))
        ofmap -= fr * fc * (rows + cols)  # SCALE-Sim's drain count, not a physical write
    assert (cycles, ifmap, filt, ofmap) == _walk(m, k, n, g, rows, cols, dataflow)


@x64
def test_never_more_cycles_than_the_gemm_lowering_and_equal_without_packing():
    rng = np.random.default_rng(13)
    m, k, n, g = (rng.integers(1, 400, 2000) for _ in range(4))
    r, c, df = rng.integers(1, 128, 2000), rng.integers(1, 128, 2000), rng.integers(0, 3, 2000)
    cp = np.asarray(grouped.compute_cycles(m, k, n, g, r, c, df, EXACT))
    gemm = g * np.asarray(mac_array.compute_cycles(m, k, n, r, c, df, EXACT))
    assert np.all(cp <= gemm) and np.any(cp < gemm)
    _, sc, _ = mac_array.spatial_temporal(m, k, n, df)
    no_packing = np.asarray(2 * sc > c)  # p = 1: one group per column fold
    np.testing.assert_array_equal(cp[no_packing], gemm[no_packing])


def _conv(name, c, f, groups, h=14):
    return layers.conv2d(
        name, ifmap_h=h, ifmap_w=h, channels=c, num_filters=f, filter_h=3, filter_w=3,
        padding=1, groups=groups,
    )  # fmt: skip


WL = layers.workload(
    [
        _conv("conv", 32, 64, 1),
        layers.vector("relu", "relu", elems=14 * 14 * 64),
        _conv("dw", 64, 64, 64),
        _conv("grouped", 64, 64, 4),  # g > 1, not depthwise: K = 9 * 16, N = 16 per group
        layers.batched_matmul("heads", m=16, k=8, n=8, count=8),  # copies, not conv groups
    ]
)


def _design(preset="scalesim-32x32", **kw):
    return canonical(dataclasses.replace(presets.get_preset(preset), **kw))


@pytest.mark.parametrize("dataflow", [0, 1, 2])
@pytest.mark.slow
def test_auto_picks_the_cheaper_lowering_and_only_for_conv_groups(dataflow):
    auto = cost.evaluate(_design(dataflow=dataflow), WL)
    gemm = cost.evaluate(_design(dataflow=dataflow, grouped_lowering="gemm"), WL)
    cp = np.asarray(auto.channel_parallel)
    assert not np.asarray(gemm.channel_parallel).any()
    assert not cp[[0, 1, 4]].any()  # plain conv, vector op, attention heads
    assert np.all(np.asarray(auto.compute_cycles) <= np.asarray(gemm.compute_cycles))
    assert np.all(np.asarray(auto.total_cycles) <= np.asarray(gemm.total_cycles))
    # Where the pick went to channel-parallel it is strictly cheaper; elsewhere identical.
    assert np.all(np.asarray(auto.compute_cycles)[cp] < np.asarray(gemm.compute_cycles)[cp])
    for field in ("compute_cycles", "sram_ifmap_reads", "mapping_efficiency", "energy_sram_pj"):
        np.testing.assert_array_equal(
            np.asarray(getattr(auto, field))[~cp], np.asarray(getattr(gemm, field))[~cp]
        )
    np.testing.assert_array_equal(auto.dram_cycles, gemm.dram_cycles)  # DRAM: unchanged


def test_depthwise_and_grouped_conv_on_ws_by_hand():
    rep = cost.evaluate(_design(dataflow=1), WL)
    assert np.asarray(rep.channel_parallel).tolist() == [False, False, True, True, False]
    fold = 196 + 32 + 32 - 2 + 32  # T = M = 14*14 positions, R + C - 2 fill/drain, R preload
    # dw: K = 9 taps on the rows (1 row fold), 64 channels on 32 columns: 2 column folds
    # (the GEMM lowering: 64 single-column GEMMs, 64 folds).
    assert int(rep.compute_cycles[2]) == 2 * fold
    # grouped: K = 144 taps (5 row folds), N = 16 per group, 2 groups per column fold: 2.
    assert int(rep.compute_cycles[3]) == 5 * 2 * fold
    eff = 64 * 9 / (2 * 32 * 32)
    assert float(rep.mapping_efficiency[2]) == pytest.approx(eff, rel=1e-12)


def test_gemm_mode_keeps_the_per_group_gemm_figures():
    rep = cost.evaluate(_design(grouped_lowering="gemm", dataflow=2), WL)
    m, k, n, g = (np.asarray(x) for x in (WL.gemm_m, WL.gemm_k, WL.gemm_n, WL.gemm_count))
    with jax.enable_x64(True):
        per_gemm = np.asarray(mac_array.compute_cycles(m, k, n, 32, 32, 2, EXACT))
        reads = [np.asarray(x) for x in mac_array.sram_traffic(m, k, n, 32, 32, 2, EXACT)]
    np.testing.assert_array_equal(rep.compute_cycles, g * per_gemm)
    np.testing.assert_array_equal(rep.sram_ifmap_reads, g * reads[0])
    np.testing.assert_array_equal(rep.sram_ofmap_writes, g * reads[2])


def test_channel_parallel_needs_room_for_the_groups_side_by_side():
    # A 4 KiB buffer: one depthwise group's double-buffered tiles fit, 32 groups' do not.
    wl = layers.workload([_conv("dw", 64, 64, 64, h=28)])
    mapping = cost.default_mapping(_design(), wl)
    tiny = _design(ifmap_sram_kib=1.0, filter_sram_kib=1.0, ofmap_sram_kib=2.0)
    small = cost.evaluate(tiny, wl, mapping)
    assert bool(small.fits[0]) and not bool(small.channel_parallel[0])
    assert bool(cost.evaluate(_design(), wl, mapping).channel_parallel[0])


@x64
def test_smooth_pick_is_differentiable_and_tends_to_exact():
    config = _design(dataflow=1)
    ones = np.ones(WL.num_layers, dtype=np.int64)
    mapping = Mapping(ones, ones, ones, 0 * ones)  # the smallest tiles: every pick fits
    bits, host = LayerBits.of(config), np.zeros(WL.num_layers, dtype=bool)

    @jax.jit
    def cycles(rows, ar):
        lowered = grouped.lower(dataclasses.replace(config, rows=rows), WL, mapping, bits, host, ar)
        return lowered[0].sum()

    grad = jax.grad(cycles)(np.float64(32.0), Arith.smooth(0.05))
    assert np.isfinite(float(grad)) and float(grad) != 0.0
    exact = float(cycles(np.float64(32.0), EXACT))
    assert float(cycles(np.float64(32.0), Arith.smooth(1e-3))) == pytest.approx(exact, rel=0.02)


@pytest.mark.slow
def test_smooth_auto_is_differentiable_and_tends_to_exact():
    config = _design(dataflow=1)

    def latency(rows, ar):
        return cost.evaluate(dataclasses.replace(config, rows=rows), WL, ar=ar).total_latency_s

    rows = np.float64(32.0)
    grad = jax.grad(latency)(rows, Arith.smooth(0.05))
    assert np.isfinite(float(grad)) and float(grad) != 0.0
    exact = float(cost.evaluate(config, WL).total_latency_s)
    assert float(latency(rows, Arith.smooth(1e-3))) == pytest.approx(exact, rel=0.02)


def test_the_lowering_is_reported_per_layer():
    sim = simulate(WL, _design(dataflow=1))
    out = json.loads(json.dumps(sim.to_dict()))
    assert out["design"]["grouped_lowering"] == "auto"
    lowering = [layer["lowering"] for layer in out["layers"]]
    assert lowering == ["gemm", "gemm", "channel_parallel", "channel_parallel", "gemm"]
    sim = simulate(WL, _design(dataflow=1, grouped_lowering="gemm"))
    assert {layer["lowering"] for layer in sim.to_dict()["layers"]} == {"gemm"}


def test_design_files_take_the_field_and_refuse_other_values():
    config = design_from_dict({"base": "edge-tpu-like", "grouped_lowering": "gemm"}).config
    assert config.grouped_lowering == "gemm"
    assert design_from_dict(config_to_dict(config)).config.grouped_lowering == "gemm"
    assert design_from_dict({"base": "edge-tpu-like"}).config.grouped_lowering == "auto"
    with pytest.raises(ValueError) as err:
        design_from_dict({"grouped_lowering": "vector"})
    msg = str(err.value)
    assert "\n" not in msg and "grouped_lowering" in msg and "'vector'" in msg
    assert "auto, gemm" in msg
    with pytest.raises(ValueError, match="grouped_lowering"):
        design_from_dict({"grouped_lowering": 1})


def test_the_cli_flag_and_the_text_report(tmp_path, capsys):
    dw = {"name": "dw", "type": "conv2d", "ifmap_h": 14, "ifmap_w": 14, "channels": 64}
    dw |= {"num_filters": 64, "filter_h": 3, "filter_w": 3, "padding": 1, "groups": 64}
    path = tmp_path / "dw.json"
    path.write_text(json.dumps({"name": "dw", "layers": [dw]}))
    args = ["simulate", str(path), "--preset", "edge-tpu-like"]
    assert main(args) == 0
    assert "1 grouped conv(s) channel-parallel" in capsys.readouterr().out
    assert main([*args, "--grouped-lowering", "gemm", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["layers"][0]["lowering"] == "gemm" and out["design"]["grouped_lowering"] == "gemm"
    assert main([*args, "--grouped-lowering", "columns"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--grouped-lowering" in err and "'columns'" in err
