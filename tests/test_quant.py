"""Quantizers: rounding error, ranges, per-channel parameters, calibration, STE, bad input."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hw.execute import run_gemm
from hw.quant import (
    MIN_SCALE,
    QParams,
    calibrate,
    dequantize,
    fake_quant,
    qrange,
    quantize,
)

rng = np.random.default_rng(0)
GAUSS = rng.normal(size=(64, 24)).astype(np.float32)
HEAVY = rng.laplace(0.0, 0.1, 20000).astype(np.float32)  # heavy tails: max ~ 10x the spread


def test_qrange_goldens():
    assert qrange(8, True) == (-128, 127)
    assert qrange(8, False) == (0, 255)
    assert qrange(2, True) == (-2, 1)
    assert qrange(16, False) == (0, 65535)


@settings(max_examples=80, deadline=None)
@given(
    bits=st.integers(2, 16),
    symmetric=st.booleans(),
    signed=st.booleans(),
    method=st.sampled_from(["minmax", "percentile", "mse"]),
    seed=st.integers(0, 2**16),
)
def test_dequantized_values_are_within_half_a_step_inside_the_range(
    bits, symmetric, signed, method, seed
):
    x = np.random.default_rng(seed).normal(1.0 if not signed else 0.0, 2.0, 500)
    x = np.abs(x) if symmetric and not signed else x  # unsigned symmetric is for x >= 0
    qp = calibrate(x, bits, symmetric=symmetric, signed=signed, method=method)
    q = np.asarray(quantize(x, qp))
    qmin, qmax = qrange(bits, signed)
    assert q.min() >= qmin and q.max() <= qmax
    s, z = float(qp.scale), int(qp.zero_point)
    err = np.abs(np.asarray(dequantize(q, qp)) - x)
    inside = (x >= (qmin - z) * s) & (x <= (qmax - z) * s)
    assert np.all(err[inside] <= s / 2 * (1 + 1e-6))
    if method == "minmax":  # min-max does not clip: the rounded zero point moves its range
        assert np.all(err <= s / 2 * (1 + 1e-6))  # by at most s / 2


def test_symmetric_and_asymmetric_ranges():
    x = np.array([-0.5, 0.25, 3.0, 1.0])
    sym = calibrate(x, 8)
    assert int(sym.zero_point) == 0 and float(sym.scale) == pytest.approx(3.0 / 127)
    # asymmetric signed 8 bits: [-0.5, 3] -> scale 3.5 / 255, zero point round(-128 + 0.5 / s)
    asym = calibrate(x, 8, symmetric=False)
    assert float(asym.scale) == pytest.approx(3.5 / 255)
    assert int(asym.zero_point) == round(-128 + 0.5 / (3.5 / 255)) == -92
    # unsigned asymmetric of positive data: the range widens to hold 0, so 0 maps to qmin
    pos = calibrate(np.array([2.0, 4.0]), 4, symmetric=False, signed=False)
    assert int(pos.zero_point) == 0 and float(pos.scale) == pytest.approx(4.0 / 15)
    for qp in (sym, asym, pos):  # 0.0 is exactly representable
        assert float(dequantize(quantize(jnp.zeros(1), qp), qp)[0]) == 0.0
    assert np.asarray(quantize(x, asym)).tolist()[2] == 127  # max maps to qmax


def test_per_channel_matches_per_tensor_on_each_channel():
    w = GAUSS * np.linspace(0.1, 10.0, 24)  # channels with very different ranges
    qp = calibrate(w, 4, per_channel_axis=1)
    assert qp.scale.shape == (24,) and qp.axis == 1
    np.testing.assert_allclose(qp.scale, np.abs(w).max(axis=0) / 7, rtol=1e-6)
    q = np.asarray(quantize(w, qp))
    for c in (0, 11, 23):
        alone = calibrate(w[:, c], 4)
        np.testing.assert_array_equal(q[:, c], quantize(w[:, c], alone))
    per_tensor = calibrate(w, 4)
    err_c = np.mean((np.asarray(dequantize(q, qp)) - w) ** 2)
    err_t = np.mean((np.asarray(fake_quant(w, per_tensor)) - w) ** 2)
    assert err_c < err_t / 4
    # A negative axis and a channel axis in front work the same way.
    neg = calibrate(w, 4, per_channel_axis=-1)
    np.testing.assert_array_equal(quantize(w, neg), q)
    front = calibrate(w.T, 4, per_channel_axis=0)
    np.testing.assert_array_equal(np.asarray(quantize(w.T, front)).T, q)


def mse(x, qp):
    return float(np.mean((np.asarray(fake_quant(x, qp)) - x) ** 2))


@pytest.mark.parametrize("symmetric", [True, False])
def test_calibration_methods_are_ordered_on_heavy_tailed_data(symmetric):
    errs = {
        m: mse(HEAVY, calibrate(HEAVY, 4, symmetric=symmetric, method=m, percentile=99.9))
        for m in ("minmax", "percentile", "mse")
    }
    assert errs["mse"] <= errs["minmax"]
    assert errs["mse"] < 0.5 * errs["minmax"]  # clipping the outliers pays at 4 bits
    assert errs["percentile"] < errs["minmax"]
    clip = calibrate(HEAVY, 4, method="percentile", percentile=99.0)
    assert float(clip.scale) * 7 == pytest.approx(np.percentile(np.abs(HEAVY), 99.0), rel=1e-5)


def test_mse_per_channel_is_no_worse_than_minmax_per_channel():
    x = np.stack([HEAVY[:5000], HEAVY[5000:10000] * 3, rng.normal(size=5000)], axis=1)
    by_mse = calibrate(x, 3, per_channel_axis=1, method="mse")
    by_minmax = calibrate(x, 3, per_channel_axis=1)
    err = [np.mean((np.asarray(fake_quant(x, qp)) - x) ** 2, axis=0) for qp in (by_mse, by_minmax)]
    assert np.all(err[0] <= err[1] * (1 + 1e-6))


def test_fake_quant_straight_through_gradients():
    qp = QParams(scale=jnp.float32(0.1), zero_point=jnp.int32(0), bits=4)  # range [-0.8, 0.7]
    x = jnp.array([-3.0, -0.79, -0.2, 0.0, 0.33, 0.7, 0.76, 5.0])
    grad = jax.grad(lambda v: fake_quant(v, qp).sum())(x)
    np.testing.assert_array_equal(grad, [0, 1, 1, 1, 1, 1, 0, 0])
    np.testing.assert_allclose(fake_quant(x, qp), [-0.8, -0.8, -0.2, 0, 0.3, 0.7, 0.7, 0.7])
    # Per channel, under jit, with an asymmetric zero point.
    qpc = QParams(jnp.array([0.5, 0.01]), jnp.array([-2, 3]), bits=3, axis=1)  # q in [-4, 3]
    xc = jnp.array([[-1.0, -0.05], [0.4, 0.2]])  # in range: (-1, -0.05), 0.4; clipped: 0.2
    gradc = jax.jit(jax.grad(lambda v: fake_quant(v, qpc).sum()))(xc)
    np.testing.assert_array_equal(gradc, [[1, 1], [1, 0]])
    # Clipped outputs (q - z) s pass gradient to the scale: d/ds = q - z for each.
    dscale = jax.grad(lambda s: fake_quant(x, dataclasses.replace(qp, scale=s)).sum())(0.1)
    assert float(dscale) == pytest.approx(-8 + 7 + 7)


def test_dense_layer_error_obeys_the_analytic_bound():
    """Per-tensor symmetric min-max quantization of ``y = x @ W`` never clips, so
    ``x_hat = x + e_x`` and ``W_hat = W + e_W`` with ``|e_x| <= s_x / 2``, ``|e_W| <= s_w / 2``;
    then ``y_q - y = x e_W + e_x W + e_x e_W`` and, elementwise,

        |y_q - y| <= sum_k (|x_k| s_w / 2 + |W_k| s_x / 2 + s_x s_w / 4).

    ``y_q`` is computed as the integer GEMM ``s_x s_w (q_x @ q_W)`` on the simulated array."""
    x, w = GAUSS[:16].astype(np.float64), rng.normal(size=(24, 10)) * 0.3
    for bits in (2, 4, 8):
        qx, qw = calibrate(x, bits), calibrate(w, bits)
        sx, sw = float(qx.scale), float(qw.scale)
        acc = run_gemm(quantize(x, qx), quantize(w, qw), rows=8, cols=8, dataflow="ws", acc_bits=32)
        y_q, y = sx * sw * np.asarray(acc, np.float64), x @ w
        bound = np.abs(x) @ np.full_like(w, sw / 2) + (sx / 2) * np.abs(w).sum(0) + 24 * sx * sw / 4
        assert np.all(np.abs(y_q - y) <= bound * (1 + 1e-9))
        assert np.max(np.abs(y_q - y)) > 0.05 * np.max(bound)  # the bound is not vacuous


def test_all_zero_tensor_gets_a_tiny_positive_scale():
    for symmetric in (True, False):
        qp = calibrate(np.zeros((3, 4)), 8, symmetric=symmetric)
        assert float(qp.scale) == MIN_SCALE > 0
        np.testing.assert_array_equal(dequantize(quantize(np.zeros(5), qp), qp), 0.0)
    # one dead channel among live ones
    w = np.ones((4, 3))
    w[:, 1] = 0.0
    qp = calibrate(w, 8, per_channel_axis=1, method="mse")
    assert np.all(np.isfinite(qp.scale)) and float(qp.scale[1]) == MIN_SCALE
    np.testing.assert_allclose(fake_quant(w, qp), w, atol=1e-6)


def test_changing_a_scale_does_not_recompile():
    f = jax.jit(quantize)
    qp = calibrate(GAUSS, 8)
    f(GAUSS, qp)
    size = f._cache_size()
    f(GAUSS, dataclasses.replace(qp, scale=qp.scale * 2))
    assert f._cache_size() == size


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: qrange(1, True), r"^bits must be an integer in 2\.\.16, got 1$"),
        (lambda: calibrate(GAUSS, 17), "bits must be an integer in 2..16, got 17"),
        (lambda: calibrate(GAUSS, 8.0), "bits must be an integer in 2..16, got 8.0"),
        (lambda: QParams(jnp.float32(1), jnp.int32(0), bits=0), "bits must be an integer"),
        (lambda: quantize(GAUSS, QParams(0.0, 0)), "scale must be finite and > 0, got 0.0"),
        (lambda: quantize(GAUSS, QParams(np.nan, 0)), "scale must be finite and > 0, got nan"),
        (lambda: fake_quant(GAUSS, QParams(-1.0, 0)), "scale must be finite and > 0, got -1.0"),
        (lambda: dequantize([1], QParams(np.inf, 0)), "scale must be finite and > 0, got inf"),
        (lambda: quantize(GAUSS, QParams(1.0, 200)), "zero_point must be an integer in -128..127"),
        (
            lambda: quantize(GAUSS, QParams(np.ones(5), np.zeros(5, int), axis=1)),
            r"per-channel scale must have shape \(24,\), got \(5,\)",
        ),
        (lambda: quantize(GAUSS, QParams(np.ones(24), 0, axis=2)), "axis must be in -2..1"),
        (lambda: quantize(GAUSS, QParams(np.ones(24), np.zeros(24, int))), "must be a scalar"),
        (lambda: calibrate(GAUSS, 8, method="kl"), "method must be one of minmax, percentile"),
        (lambda: calibrate(GAUSS, 8, percentile=0), r"percentile must be in \(0, 100\]"),
        (lambda: calibrate(GAUSS, 8, per_channel_axis=2), "per_channel_axis must be in -2..1"),
        (lambda: calibrate(np.array([1.0, np.nan]), 8), "NaN or infinity"),
        (lambda: calibrate(np.zeros((0, 3)), 8), "cannot calibrate an empty tensor"),
    ],
)
def test_bad_input_raises_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
