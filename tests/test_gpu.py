"""The GPU-like model: preset peaks, a hand-computed golden, roofline and fusion properties,
vmap against a loop, precision, and full-load power against the A100's TDP."""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hw import gpu, layers
from hw.arith import Arith
from hw.gpu import GPUConfig, evaluate_gpu, get_gpu_preset
from models.zoo import get_network

BIG = layers.workload([layers.gemm("g", m=8192, k=8192, n=8192)])
GEMM_RELU = layers.workload(
    [
        layers.dense("fc", in_features=1024, out_features=1024, tokens=256),
        layers.vector("act", "relu", elems=256 * 1024),
    ]
)


def preset(name: str, precision: str = "fp16", **kw) -> GPUConfig:
    return dataclasses.replace(get_gpu_preset(name), precision=precision, **kw)


def tiny(**kw) -> GPUConfig:
    fields = dict(
        sms=2.0,
        macs_per_sm=16.0,
        clock_mhz=1000.0,
        smem_kib=8.0,
        l2_kib=16.0,
        dram_bw_gbps=1.0,
        dram_pj_per_bit=10.0,
        launch_us=5.0,
        static_w=1.0,
        node_nm=45.0,
        vector_lanes_per_sm=4.0,
    )
    fields.update(kw)
    return GPUConfig(**{k: np.float64(v) for k, v in fields.items()})


@pytest.mark.parametrize(
    ("name", "precision", "tops"),
    [
        ("datacenter-gpu-like", "fp16", 2 * 108 * 1024 * 1.41e9 / 1e12),  # 311.87 (312)
        ("datacenter-gpu-like", "int8", 2 * 108 * 2048 * 1.41e9 / 1e12),  # 623.74 (624)
        ("datacenter-gpu-like", "fp32", 2 * 108 * 64 * 1.41e9 / 1e12),  # 19.49 (19.5)
        ("edge-gpu-like", "fp16", 2 * 8 * 512 * 625e6 / 1e12),  # 5.12
        ("edge-gpu-like", "int8", 2 * 8 * 1024 * 625e6 / 1e12),  # 10.24
        ("edge-gpu-like", "fp32", 2 * 8 * 128 * 625e6 / 1e12),  # 1.28
    ],
)
def test_preset_peak_tops(name, precision, tops):
    assert float(preset(name, precision).peak_ops_per_s) / 1e12 == pytest.approx(tops, rel=1e-12)
    rep = evaluate_gpu(preset(name, precision), BIG)
    assert float(rep.peak_ops_per_s) == pytest.approx(tops * 1e12, rel=1e-12)


def test_single_gemm_golden():
    # M=256, K=64, N=128, fp16 (2 bytes), 2 SMs of 16 MACs at 1 GHz, 1 GB/s, 45 nm.
    # tiles = 2 * 1, waves = ceil(2 / 2) = 1: compute = 128 * 128 * 64 / 16 = 65536 cycles.
    # A 16384 + B 8192 elements = 48 KiB > 16 KiB of L2: block = 128 sqrt(2) = 181.02,
    # f_A = ceil(128 / 181.02) = 1, f_B = ceil(256 / 181.02) = 2; C = 32768 elements.
    # DRAM = 2 * (16384 + 2 * 8192 + 32768) = 131072 bytes = 131.072 us at 1 GB/s.
    # latency = max(65.536, 131.072) + 5 = 136.072 us.
    rep = evaluate_gpu(tiny(), layers.workload([layers.gemm("g", m=256, k=64, n=128)]))
    assert float(rep.compute_s[0]) == pytest.approx(65.536e-6, rel=1e-12)
    assert float(rep.dram_bytes[0]) == 131072
    assert float(rep.latency_s[0]) == pytest.approx(136.072e-6, rel=1e-12)
    # MACs = 2097152; MAC energy = 2097152 * (1.1 + 0.9) * 1.27 = 5326766.08 pJ.
    assert float(rep.energy_mac_pj[0]) == pytest.approx(5326766.08, rel=1e-12)
    # At 45 nm an 8 KiB SRAM (SMEM, and the 16 / 2 KiB L2 slice) costs 10 / 64 pJ/bit; the
    # 64 KiB register file 10 / 64 * 8 ** (ln 10 / ln 128) = 10 / 64 * 10 ** (3 / 7) pJ/bit.
    # L2 -> SMEM 2 tiles * 2 * 128 * 64 * 2 = 65536 B; SMEM -> RF 2097152 / 32 * 2 = 131072 B.
    # SMEM: 8 * (65536 + 131072) = 1572864 bits; L2: 8 * (65536 + 65536 out + 131072 DRAM)
    # = 2097152 bits; RF: 8 * 131072 + 7 * 2097152 = 15728640 bits.
    e_rf = 10 / 64 * 10 ** (3 / 7)
    onchip = (1572864 + 2097152) * 10 / 64 + 15728640 * e_rf
    assert float(rep.energy_onchip_pj[0]) == pytest.approx(onchip, rel=1e-12)
    assert float(rep.energy_dram_pj[0]) == pytest.approx(131072 * 8 * 10.0, rel=1e-12)
    assert float(rep.energy_static_pj[0]) == pytest.approx(136.072e-6 * 1e12, rel=1e-12)
    # With 1 MiB of L2 both operands fit: DRAM = 2 * (16384 + 8192 + 32768) = 114688 bytes.
    rep = evaluate_gpu(tiny(l2_kib=1024.0), layers.workload([layers.gemm("g", m=256, k=64, n=128)]))
    assert float(rep.dram_bytes[0]) == 114688


@pytest.mark.parametrize("name", list(gpu.GPU_PRESETS))
def test_more_bandwidth_never_adds_latency(name):
    wl = get_network("resnet18")
    lat = [evaluate_gpu(preset(name, dram_bw_gbps=np.float64(bw)), wl).latency_s for bw in
           (10.0, 100.0, 1000.0, 10000.0)]  # fmt: skip
    for slow, fast in zip(lat, lat[1:], strict=False):
        assert bool(jnp.all(fast <= slow))


def test_fusion_removes_launch_and_intermediate_traffic():
    fused = evaluate_gpu(preset("datacenter-gpu-like"), GEMM_RELU)
    unfused = evaluate_gpu(preset("datacenter-gpu-like", fusion=False), GEMM_RELU)
    assert float(fused.launch_s[1]) == 0.0
    assert float(unfused.launch_s[1]) == pytest.approx(5e-6)
    # The GEMM's fp16 write of its 256 x 1024 output and the ReLU's read of it disappear.
    saved = float(np.asarray(unfused.dram_bytes).sum() - np.asarray(fused.dram_bytes).sum())
    assert saved == 2 * 256 * 1024 * 2
    assert float(fused.total_latency_s) < float(unfused.total_latency_s)


def test_batch_of_configs_equals_loop():
    wl = get_network("resnet18")
    base = get_gpu_preset("edge-gpu-like")
    sms, bw = np.array([4.0, 8.0, 16.0]), np.array([34.0, 68.0, 136.0])
    batch = dataclasses.replace(
        jax.tree_util.tree_map(lambda x: np.broadcast_to(x, (3,)), base), sms=sms, dram_bw_gbps=bw
    )
    with jax.enable_x64(True):  # a vmap traced in the model's 64-bit arithmetic
        reps = jax.vmap(evaluate_gpu, in_axes=(0, None))(batch, wl)
    for i in range(3):
        one = evaluate_gpu(dataclasses.replace(base, sms=sms[i], dram_bw_gbps=bw[i]), wl)
        np.testing.assert_allclose(reps.latency_s[i], one.latency_s, rtol=1e-12)
        np.testing.assert_allclose(reps.energy_pj[i], one.energy_pj, rtol=1e-12)
        assert float(reps.edp_js[i]) == pytest.approx(float(one.edp_js), rel=1e-12)


@pytest.mark.parametrize("name", list(gpu.GPU_PRESETS))
@pytest.mark.parametrize("precision", gpu.PRECISIONS)
def test_energy_terms_non_negative_and_finite(name, precision):
    rep = evaluate_gpu(preset(name, precision), get_network("resnet18"))
    for field in ("energy_mac_pj", "energy_onchip_pj", "energy_dram_pj", "energy_vector_pj",
                  "energy_static_pj", "latency_s", "dram_bytes"):  # fmt: skip
        x = np.asarray(getattr(rep, field))
        assert np.all(np.isfinite(x)) and np.all(x >= 0), field
    assert 0 < float(rep.data_movement_share) < 1


def test_vector_only_workload():
    wl = layers.workload([layers.vector("sm", "softmax", elems=4096)])
    rep = evaluate_gpu(tiny(), wl)
    ops = float(wl.vector_ops[0])
    assert float(rep.compute_s[0]) == pytest.approx(ops / (2 * 4 * 1e9), rel=1e-12)
    assert float(rep.dram_bytes[0]) == 2 * (4096 + 4096)
    assert float(rep.energy_mac_pj[0]) == 0.0 and float(rep.energy_vector_pj[0]) > 0
    assert float(rep.launch_s[0]) == pytest.approx(5e-6)


def test_int8_faster_than_fp16_when_compute_bound():
    fp16 = evaluate_gpu(preset("datacenter-gpu-like", "fp16"), BIG)
    int8 = evaluate_gpu(preset("datacenter-gpu-like", "int8"), BIG)
    assert float(fp16.compute_s[0]) > float(fp16.dram_s[0])
    assert float(int8.total_latency_s) < 0.55 * float(fp16.total_latency_s)


def test_datacenter_full_load_power_near_tdp():
    rep = evaluate_gpu(preset("datacenter-gpu-like"), BIG)
    power = float(rep.power_w)
    print(f"datacenter-gpu-like, 8192^3 fp16 GEMM: {power:.0f} W (TDP 400 W)")
    assert 200.0 <= power <= 800.0
    # The waves are nearly full: 4096 tiles / 108 SMs = 37.9 -> 38 waves.
    ideal = 8192**3 / (108 * 1024 * 1.41e9)
    assert float(rep.compute_s[0]) == pytest.approx(ideal * 38 / (4096 / 108), rel=1e-12)


def test_changing_a_value_does_not_recompile():
    wl = get_network("resnet18")
    evaluate_gpu(preset("edge-gpu-like"), wl)
    size = gpu._evaluate._cache_size()
    evaluate_gpu(preset("edge-gpu-like", clock_mhz=np.float64(1020.0)), wl)
    assert gpu._evaluate._cache_size() == size


def test_smooth_gradient_is_finite_and_near_exact():
    wl = GEMM_RELU
    cfg = get_gpu_preset("edge-gpu-like")

    def latency(bw, ar):
        return evaluate_gpu(dataclasses.replace(cfg, dram_bw_gbps=bw), wl, ar).total_latency_s

    with jax.enable_x64(True):
        grad = jax.grad(latency)(jnp.float64(68.0), Arith.smooth(0.1))
    assert math.isfinite(float(grad)) and float(grad) <= 0
    exact = float(latency(68.0, Arith()))
    assert float(latency(68.0, Arith.smooth(1e-3))) == pytest.approx(exact, rel=0.02)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"precision": "bf16"}, "precision must be one of"),
        ({"sms": np.float64(0.0)}, "GPUConfig.sms must be > 0"),
        ({"static_w": np.float64(-1.0)}, "GPUConfig.static_w must be >= 0"),
    ],
)
def test_bad_config_raises(change, match):
    with pytest.raises(ValueError, match=match):
        evaluate_gpu(dataclasses.replace(tiny(), **change), GEMM_RELU)


def test_unknown_preset_lists_names():
    with pytest.raises(ValueError, match="datacenter-gpu-like, edge-gpu-like"):
        get_gpu_preset("tpu")
