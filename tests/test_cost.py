"""The whole cost model: SCALE-Sim parity through evaluate, physics properties, smoothness,
jit/vmap behaviour and hand-computed traffic goldens."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hw import cost, layers, memory, presets
from hw.arith import EXACT, Arith
from hw.types import DramTraffic, LayerBits, Mapping, NPUConfig, canonical
from hw.x64 import x64
from npu_dse.reference import design_for

WL = layers.workload(
    [
        layers.conv2d(
            "conv",
            ifmap_h=56,
            ifmap_w=56,
            channels=64,
            num_filters=64,
            filter_h=3,
            filter_w=3,
            padding=1,
        ),
        layers.conv2d(
            "dw",
            ifmap_h=28,
            ifmap_w=28,
            channels=96,
            num_filters=96,
            filter_h=3,
            filter_w=3,
            padding=1,
            groups=96,
        ),
        layers.dense("fc", in_features=768, out_features=3072, tokens=128),
        layers.batched_matmul("qk", m=128, k=64, n=128, count=12),
        layers.vector("softmax", "softmax", elems=12 * 128 * 128),
    ]
)


def design(**kw) -> NPUConfig:
    return canonical(dataclasses.replace(presets.get_preset("scalesim-32x32"), **kw))


def test_evaluate_no_stall_equals_scalesim_cycles(reference_rows):
    rows = [r for r in reference_rows if r.setting.startswith("A_")]
    for r in rows:
        rep = cost.evaluate(design_for(r, "tiled"), layers.workload([r.layer]), stall=False)
        assert int(rep.total_cycles[0]) == r.sim_cycles, (r.layer.name, r.dataflow)
        assert int(rep.stall_cycles[0]) == 0
        assert float(rep.mapping_efficiency[0]) == pytest.approx(
            r.sim["sim_mapping_eff_pct"] / 100, rel=1e-12
        )


def test_report_totals_are_consistent():
    rep = cost.evaluate(design(), WL)
    assert rep.total_cycles.shape == (5,)
    cycles = {
        f: np.asarray(getattr(rep, f"{f}_cycles")) for f in ("compute", "vector", "stall", "total")
    }
    np.testing.assert_allclose(
        cycles["total"], cycles["compute"] + cycles["vector"] + cycles["stall"]
    )
    assert float(rep.power_w) == pytest.approx(
        float(rep.total_energy_j) / float(rep.total_latency_s)
    )
    assert bool(np.all(cycles["stall"] >= 0)) and bool(np.all(np.asarray(rep.fits)))
    assert float(rep.energy_vector_pj[4]) > 0 and float(rep.energy_mac_pj[4]) == 0
    for f in dataclasses.fields(rep):
        v = getattr(rep, f.name)
        if not isinstance(v, tuple):
            assert bool(np.all(np.isfinite(v))), f.name


@pytest.mark.parametrize("df", range(3))
@pytest.mark.slow
def test_more_bandwidth_never_adds_latency(df):
    bws = [0.5, 1, 2, 4, 8, 16, 64, 256, 1e4]
    lat = [
        float(cost.evaluate(design(dram_bw_gbps=bw, dataflow=df), WL).total_latency_s) for bw in bws
    ]
    assert all(b <= a * (1 + 1e-12) for a, b in zip(lat, lat[1:], strict=False))
    unlimited = float(cost.evaluate(design(dataflow=df), WL, stall=False).total_latency_s)
    assert lat[-1] >= unlimited


def test_bigger_buffers_never_add_dram_traffic():
    sizes = [8.0, 32.0, 128.0, 512.0, 2048.0]
    traffic = []
    for s in sizes:
        rep = cost.evaluate(
            design(ifmap_sram_kib=s, filter_sram_kib=s, ofmap_sram_kib=s, dram_bw_gbps=1.0), WL
        )
        traffic.append(
            float(np.asarray(rep.dram_cycles).sum() + np.asarray(rep.stall_cycles).sum())
        )
    assert all(b <= a for a, b in zip(traffic, traffic[1:], strict=False))


def test_dram_traffic_golden():
    # One 100 x 60 x 40 GEMM, 8-bit operands, 32-bit accumulators, tiles 50 x 30 x 40:
    # nm = 2, nk = 2, nn = 1.
    wl = layers.workload([layers.gemm("g", m=100, k=60, n=40)])
    cfg = design(w_bits=8.0, a_bits=8.0, acc_bits=32.0)
    tiles = dict(tile_m=np.array([50]), tile_k=np.array([30]), tile_n=np.array([40]))
    out = [
        memory.dram_traffic(
            cfg, wl, Mapping(**tiles, loop_order=np.array([o])), LayerBits.of(cfg), EXACT
        )
        for o in range(3)
    ]
    # out (m, n, k): ifmap once per n tile (nn = 1) -> 6000 B; weights once per m tile when
    # nk > 1 -> 2 * 2400 = 4800 B; outputs written once, 4000 B.
    assert _streams(out[0]) == [6000, 4800, 4000, 0]
    # weight (n, k, m): weights once 2400 B; ifmap nn = 1 -> 6000 B; nm > 1 so partial sums
    # spill nk - 1 = 1 time: 4000 x 4 B written and read back.
    assert _streams(out[1]) == [6000, 2400, 4000 + 16000, 16000]
    # input (m, k, n): ifmap once; weights nm = 2 times (nk > 1); nn = 1 so no spill.
    assert _streams(out[2]) == [6000, 4800, 4000, 0]
    assert float(out[1].total_bytes[0]) == 6000 + 2400 + 20000 + 16000


def _streams(t: DramTraffic):
    """The layer-0 bytes of ``(ifmap_read, filter_read, ofmap_write, ofmap_read)``."""
    streams = (t.ifmap_read_bytes, t.filter_read_bytes, t.ofmap_write_bytes, t.ofmap_read_bytes)
    return [float(x[0]) for x in streams]


def test_smooth_model_tends_to_exact():
    cfg = design(dram_bw_gbps=4.0)
    mapping = cost.default_mapping(cfg, WL)
    exact = cost.evaluate(cfg, WL, mapping)
    errs = []
    for t in (0.3, 0.03, 0.003):
        sm = cost.evaluate(cfg, WL, mapping, Arith.smooth(t))
        errs.append(
            float(np.max(np.abs(np.asarray(sm.total_cycles) / np.asarray(exact.total_cycles) - 1)))
        )
        assert float(sm.total_energy_j) / float(exact.total_energy_j) == pytest.approx(1, rel=2 * t)
    assert errs[2] < errs[0] and errs[2] < 0.02


def _smooth_loss(params, wl, mapping):
    r, c, sram, bw, wb, ab, tm, tk, tn = params
    cfg = design(
        rows=r,
        cols=c,
        ifmap_sram_kib=sram,
        filter_sram_kib=sram,
        ofmap_sram_kib=sram,
        dram_bw_gbps=bw,
        w_bits=wb,
        a_bits=ab,
    )
    m = Mapping(tile_m=tm, tile_k=tk, tile_n=tn, loop_order=mapping.loop_order)
    rep = cost.evaluate(cfg, wl, m, Arith.smooth(0.1))
    return jnp.log(rep.edp_js)


@settings(max_examples=25, deadline=None)
@given(
    r=st.floats(1.0, 512.0),
    c=st.floats(1.0, 512.0),
    sram=st.floats(1.0, 65536.0),
    bw=st.floats(0.1, 2000.0),
    wb=st.floats(2.0, 16.0),
    ab=st.floats(2.0, 16.0),
    tile=st.floats(1.0, 4096.0),
)
def test_gradients_finite_everywhere_in_the_box(r, c, sram, bw, wb, ab, tile):
    mapping = cost.default_mapping(design(), WL)
    tiles = [
        np.clip(np.full(5, tile), 1.0, np.maximum(d, 1).astype(float))
        for d in (WL.gemm_m, WL.gemm_k, WL.gemm_n)
    ]
    params = [np.float64(x) for x in (r, c, sram, bw, wb, ab)] + tiles
    with jax.enable_x64(True):  # differentiate in the cost model's 64-bit arithmetic
        grads = jax.grad(_smooth_loss)(params, WL, mapping)
    for g in grads:
        assert bool(np.all(np.isfinite(g)))


def test_gradient_signs_make_sense():
    mapping = cost.default_mapping(design(), WL)
    params = [np.float64(x) for x in (32.0, 32.0, 256.0, 10.0, 8.0, 8.0)] + [
        np.asarray(mapping.tile_m, float),
        np.asarray(mapping.tile_k, float),
        np.asarray(mapping.tile_n, float),
    ]
    with jax.enable_x64(True):
        g = jax.grad(_smooth_loss)(params, WL, mapping)
    assert float(g[3]) < 0  # more bandwidth, lower EDP
    assert float(g[4]) > 0 and float(g[5]) > 0  # wider operands cost energy and traffic


@pytest.mark.slow
def test_jit_equals_no_jit_and_batch_equals_loop():
    cfgs = [
        design(rows=r, cols=c, dataflow=d)
        for r, c, d in [(8, 8, 0), (16, 32, 1), (128, 64, 2), (32, 32, 1)]
    ]
    loop = [cost.evaluate(c, WL) for c in cfgs]
    with jax.disable_jit():
        nojit = cost.evaluate(cfgs[1], WL)
    np.testing.assert_allclose(nojit.total_cycles, loop[1].total_cycles)
    np.testing.assert_allclose(nojit.energy_pj, loop[1].energy_pj)
    batch = jax.tree_util.tree_map(lambda *xs: np.stack(xs), *cfgs)
    with jax.enable_x64(True):
        rep = jax.vmap(cost.evaluate, in_axes=(0, None))(batch, WL)
    assert rep.total_cycles.shape == (4, 5)
    for i, one in enumerate(loop):
        np.testing.assert_array_equal(rep.total_cycles[i], one.total_cycles)
        np.testing.assert_allclose(rep.total_energy_j[i], one.total_energy_j, rtol=1e-12)
        np.testing.assert_allclose(rep.total_latency_s[i], one.total_latency_s, rtol=1e-12)


def test_changing_values_does_not_recompile():
    cost.evaluate(design(rows=16), WL)
    before = cost._evaluate._cache_size()
    for r in (8, 24, 64):
        cost.evaluate(design(rows=r, dram_bw_gbps=float(r)), WL)
    assert cost._evaluate._cache_size() == before


def test_another_workload_of_the_same_length_runs_the_same_program():
    """Names, layer kinds and the preset's name are not part of the compiled program's key;
    the kinds still decide where each layer runs and which edges fuse."""
    relu = layers.workload(
        [layers.gemm("g", m=64, k=64, n=64), layers.vector("act", "relu", elems=64 * 64)]
    )
    softmax = layers.workload(
        [layers.gemm("h", m=32, k=64, n=64), layers.vector("p", "softmax", elems=32 * 64)]
    )
    fused = cost.evaluate(design(), relu)
    before = cost._evaluate._cache_size()
    unfused = cost.evaluate(dataclasses.replace(design(), name="other"), softmax)
    host = cost.evaluate(design(unsupported_ops=("softmax",)), softmax)
    assert cost._evaluate._cache_size() == before + 1  # unsupported_ops is a code-path switch
    assert fused.names == ("g", "act") and unfused.names == ("h", "p")
    # a relu fuses into the GEMM before it (no DRAM write of the GEMM's output); a softmax
    # after a GEMM does not; a softmax the NPU does not run goes to the host
    assert float(fused.dram_ofmap_write_bytes[0]) == 0
    assert float(unfused.dram_ofmap_write_bytes[0]) > 0
    assert [bool(h) for h in host.on_host] == [False, True]
    assert [bool(h) for h in unfused.on_host] == [False, False]


def test_tiles_that_do_not_fit_are_flagged():
    tiny = design(rows=128, cols=128, ifmap_sram_kib=1.0, filter_sram_kib=1.0, ofmap_sram_kib=1.0)
    rep = cost.evaluate(tiny, WL)
    assert not bool(rep.fits[2])  # a 128 x 128 weight fold needs 2 x 16 KiB


@pytest.mark.slow
def test_layer_bits_at_the_config_widths_change_nothing():
    cfg = design(w_bits=8.0, a_bits=8.0)
    plain = cost.evaluate(cfg, WL)
    uniform = LayerBits(w_bits=np.full(5, 8.0), a_bits=np.full(5, 8.0))
    for bits in (uniform, LayerBits.of(cfg), (uniform.w_bits, uniform.a_bits)):
        rep = cost.evaluate(cfg, WL, layer_bits=bits)
        leaves = zip(jax.tree_util.tree_leaves(plain), jax.tree_util.tree_leaves(rep), strict=True)
        for a, b in leaves:
            np.testing.assert_array_equal(a, b)


def test_narrow_layer_bits_halve_traffic_but_keep_the_hardware():
    # Layer 1 (dense 128 x 768 x 3072) at 4-bit weights and activations on 8-bit multipliers:
    # its ifmap and weight bytes halve at the same tiles; the config (area, leakage per
    # second) is unchanged, and the other layers are untouched.
    cfg = design(w_bits=8.0, a_bits=8.0, ifmap_sram_kib=4096.0, filter_sram_kib=4096.0)
    mapping = cost.default_mapping(cfg, WL)
    bits = LayerBits(w_bits=np.array([8.0, 4.0, 8, 8, 8]), a_bits=np.array([8.0, 4.0, 8, 8, 8]))
    full = cost.evaluate(cfg, WL, mapping)
    narrow = cost.evaluate(cfg, WL, mapping, layer_bits=bits)
    for f in ("dram_ifmap_read_bytes", "dram_filter_read_bytes"):
        assert float(getattr(narrow, f)[1]) == float(getattr(full, f)[1]) / 2
    assert float(narrow.energy_mac_pj[1]) < float(full.energy_mac_pj[1])
    assert float(narrow.area_mm2) == float(full.area_mm2)
    keep = np.array([0, 2, 3])
    np.testing.assert_array_equal(narrow.total_cycles[keep], full.total_cycles[keep])
    assert cfg.w_bits.shape == () and cfg.a_bits.shape == ()


def test_new_temperature_or_design_value_does_not_recompile():
    cfg = design(dram_bw_gbps=4.0)
    mapping = cost.default_mapping(cfg, WL)
    first = float(cost.evaluate(cfg, WL, mapping, Arith.smooth(0.1)).edp_js)
    before = cost._evaluate._cache_size()
    edps = [
        float(cost.evaluate(design(rows=r, dram_bw_gbps=4.0), WL, mapping, Arith.smooth(t)).edp_js)
        for t, r in ((0.3, 32), (0.01, 32), (0.05, 48))
    ]
    assert cost._evaluate._cache_size() == before
    assert len({first, *edps}) == 4  # the temperature and the design do reach the numbers


@pytest.mark.slow
def test_temperature_traced_inside_a_jit():
    cfg = design(dram_bw_gbps=4.0)
    mapping = cost.default_mapping(cfg, WL)

    @x64
    @jax.jit
    def log_edp(t):
        return jnp.log(cost.evaluate(cfg, WL, mapping, Arith.smooth(t)).edp_js)

    values = [float(log_edp(np.float64(t))) for t in (0.3, 0.1, 0.03)]
    assert log_edp._cache_size() == 1
    exact = float(np.log(float(cost.evaluate(cfg, WL, mapping).edp_js)))
    assert abs(values[-1] - exact) < abs(values[0] - exact)
    with jax.enable_x64(True):
        assert np.isfinite(float(jax.grad(log_edp)(np.float64(0.1))))
