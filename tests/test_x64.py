"""64-bit arithmetic stays inside the package: importing it changes no JAX setting, counts above
2**31 are exact with 64-bit JAX off in the caller, and the caller's own JAX code keeps its
32-bit defaults."""

import dataclasses
import math
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from hw import cost, layers, presets, run_gemm
from hw.x64 import x64


@pytest.mark.parametrize(
    "imports", ["import hw", "import hw, dse, models, experiments"], ids=["hw", "all"]
)
def test_import_leaves_x64_off(imports):
    code = f"import jax; {imports}; print(jax.config.jax_enable_x64)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    assert out.stdout.strip() == "False", out.stderr


def _cycles(m, k, n, rows, cols, dataflow):
    """The module formula of hw.mac_array in Python integers."""
    sr, sc, t = {0: (m, n, k), 1: (k, n, m), 2: (k, m, n)}[dataflow]
    folds = math.ceil(sr / rows) * math.ceil(sc / cols)
    return folds * (t + rows + cols - 2 + (rows if dataflow else 0))


@pytest.mark.parametrize("dataflow", range(3))
@pytest.mark.parametrize("shape", [(65536, 65536, 65536), (50000, 70001, 60000)])
def test_counts_above_2_31_are_exact_with_x64_off(shape, dataflow):
    m, k, n = shape
    wl = layers.workload([layers.gemm("big", m=m, k=k, n=n)])
    with jax.enable_x64(False):  # the caller's setting
        config = dataclasses.replace(
            presets.get_preset("scalesim-32x32"), dataflow=np.int64(dataflow)
        )
        rep = cost.evaluate(config, wl, stall=False)
        latency_s = float(rep.total_latency_s)
        assert not jax.config.jax_enable_x64
    expected = _cycles(m, k, n, 32, 32, dataflow)
    assert expected > 2**31 and m * k * n > 2**31
    assert rep.compute_cycles.dtype == np.int64 and rep.macs.dtype == np.int64
    assert rep.total_cycles.dtype == np.float64  # exact below 2**53
    assert int(rep.total_cycles[0]) == expected
    assert int(rep.macs[0]) == m * k * n
    assert int(rep.sram_ifmap_reads[0]) == m * k * (math.ceil(n / 32) if dataflow < 2 else 1)
    assert latency_s == pytest.approx(expected / (float(config.clock_mhz) * 1e6), rel=1e-15)


def test_stalled_report_of_a_big_layer_is_int64():
    wl = layers.workload([layers.gemm("big", m=65536, k=65536, n=65536)])
    with jax.enable_x64(False):
        rep = cost.evaluate(presets.get_preset("scalesim-32x32"), wl)
    assert rep.compute_cycles.dtype == np.int64 and rep.total_cycles.dtype == np.float64
    assert int(rep.total_cycles[0]) >= int(rep.compute_cycles[0]) > 2**31
    assert np.isfinite(float(rep.total_energy_j)) and float(rep.edp_js) > 0


def test_integer_gemm_sums_above_2_31_are_exact_with_x64_off():
    a = np.full((2, 8), 2**20, np.int64)
    w = np.full((8, 3), -(2**20) + 1, np.int64)
    with jax.enable_x64(False):
        out = run_gemm(a, w, rows=4, cols=4, dataflow="os", acc_bits=64)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(np.asarray(out), np.full((2, 3), 8 * 2**20 * (-(2**20) + 1)))


def test_caller_code_stays_32_bit_after_the_cost_model_runs():
    wl = layers.workload([layers.dense("fc", in_features=64, out_features=32, tokens=8)])
    cost.evaluate(presets.get_preset("edge-tpu-like"), wl)
    assert not jax.config.jax_enable_x64
    model = nnx.Linear(64, 32, rngs=nnx.Rngs(0))
    y = model(jnp.ones((8, 64)))
    assert y.dtype == jnp.float32 and model.kernel[...].dtype == jnp.float32
    assert jnp.arange(3).dtype == jnp.int32 and (jnp.ones(2) * 0.1).dtype == jnp.float32


def test_decorator_scopes_the_trace_and_keeps_the_jit_cache():
    @x64
    @jax.jit
    def square(n):
        return jnp.asarray(n, jnp.int64) * n

    assert int(square(3_000_000_000)) == 9_000_000_000_000_000_000  # above 2**62
    size = square._cache_size()
    square(5)
    assert square._cache_size() == size
    assert not jax.config.jax_enable_x64
