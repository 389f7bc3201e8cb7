"""The accuracy proxy (dse.accuracy) and its calibration by execution (npu_dse.calibration)."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dse.accuracy import AccuracyModel, fit, predict
from models import cnn_config, train_and_evaluate
from npu_dse import calibration as measured
from npu_dse.cli import main

SENS = AccuracyModel(np.float64(0.95), np.array([4.0, 0.0, 16.0]), np.array([0.0, 2.0, 64.0]))


def test_predict_by_hand():
    # 0.95 - (4 / 4^2 + 16 / 4^4) - (2 / 4^4 + 64 / 4^8) = 0.95 - 0.3125 - 0.0087890625
    w, a = np.array([2.0, 8.0, 4.0]), np.array([8.0, 4.0, 8.0])
    assert float(predict(SENS, w, a)) == pytest.approx(0.95 - 0.3125 - 0.0087890625, abs=1e-15)
    # no sensitivity: the float accuracy whatever the widths
    zero = AccuracyModel(np.float64(0.9), np.zeros(3), np.zeros(3))
    assert float(predict(zero, w, a)) == 0.9


def test_batch_equals_loop_and_values_do_not_recompile():
    rng = np.random.default_rng(0)
    w, a = rng.uniform(2, 16, (5, 3)), rng.uniform(2, 16, (5, 3))
    batch = jax.vmap(predict, in_axes=(None, 0, 0))(SENS, w, a)
    loop = [predict(SENS, wi, ai) for wi, ai in zip(w, a, strict=True)]
    np.testing.assert_allclose(batch, loop, rtol=1e-14)
    np.testing.assert_allclose(predict(SENS, w, a), batch, rtol=1e-14)
    jitted = jax.jit(predict)
    jitted(SENS, w[0], a[0])
    other = AccuracyModel(np.float64(0.5), SENS.sens_w * 2, SENS.sens_a * 3)
    jitted(other, w[1], a[1])
    assert jitted._cache_size() == 1


def test_gradient_is_finite_and_more_bits_never_lose_accuracy():
    widths = jnp.linspace(2.0, 16.0, 29)
    grad = jax.vmap(jax.grad(predict, argnums=(1, 2)), in_axes=(None, 0, 0))
    gw, ga = grad(SENS, jnp.tile(widths[:, None], 3), jnp.tile(widths[:, None], 3))
    assert np.all(np.isfinite(gw)) and np.all(np.isfinite(ga))
    assert np.all(gw >= 0) and np.all(ga >= 0)
    assert np.all(gw[:, 0] > 0) and np.all(gw[:, 1] == 0)  # zero where the layer is insensitive
    acc = jax.vmap(predict, in_axes=(None, 0, 0))(
        SENS, jnp.tile(widths[:, None], 3), jnp.tile(widths[:, None], 3)
    )
    assert np.all(np.diff(acc) > 0) and float(acc[-1]) < 0.95


def test_fit_reproduces_one_width_and_ignores_gains():
    acc_w = np.array([[0.90, np.nan, 0.97]])  # layer 2 gained accuracy: no sensitivity
    acc_a = np.array([[0.95, 0.85, 0.95]])
    m = fit(0.95, [4], acc_w, acc_a)
    np.testing.assert_allclose(m.sens_w, [0.05 * 256, 0.0, 0.0])
    np.testing.assert_allclose(m.sens_a, [0.0, 0.1 * 256, 0.0])
    # two widths that follow 4^-b exactly are fitted exactly
    two = fit(0.95, [8, 4], np.array([[0.95 - 2 / 4**8], [0.95 - 2 / 4**4]]), np.full((2, 1), 0.95))
    np.testing.assert_allclose(two.sens_w, [2.0], rtol=1e-12)
    with pytest.raises(ValueError, match=r"accuracies must have shape \(1, L\)"):
        fit(0.9, [4], np.zeros((2, 3)), np.zeros((1, 3)))


@pytest.fixture(scope="session")
def quick_cnn(tmp_path_factory):
    out = tmp_path_factory.mktemp("quick_cnn")
    train_and_evaluate(cnn_config(quick=True), out)
    return out


@pytest.fixture(scope="session")
def calibrated(quick_cnn):
    return measured.calibrate(quick_cnn, bits=(8, 4))


def test_calibration_reproduces_the_measured_accuracies(calibrated):
    wl, proxy, info = calibrated
    names = wl.names
    assert names[:3] == ("conv1", "conv1_relu", "conv2") and proxy.sens_w.shape == (len(names),)
    assert info["seed"] == 0 and info["samples"] == 359 and info["calibration_time_s"] > 0
    # widths of ReLUs and max pooling (which act on codes) are not measured and cost nothing
    for name in ("conv1_relu", "pool", "fc1_relu"):
        i = names.index(name)
        assert np.isnan(info["accuracy_a"][:, i]).all() and proxy.sens_a[i] == 0
    ref = info["reference_accuracy"]
    assert float(proxy.float_accuracy) == ref and abs(ref - info["fp32_accuracy"]) < 0.01
    one_sample = 1 / info["samples"]
    for kind, sens in (("w", proxy.sens_w), ("a", proxy.sens_a)):
        for i, b in enumerate(info["bits"]):
            for layer in np.flatnonzero(~np.isnan(info[f"accuracy_{kind}"][i])):
                widths = {k: np.full(len(names), float(measured.REFERENCE_BITS)) for k in "wa"}
                widths[kind][layer] = b
                pred = float(predict(proxy, widths["w"], widths["a"]))
                want = min(info[f"accuracy_{kind}"][i, layer], ref)  # gains are not fitted
                # the lowest width is fitted (up to the 8-bit point's weight of 4^-8 / 4^-4)
                tol = 1e-3 if b == min(info["bits"]) else 3 * one_sample
                assert abs(pred - want) <= tol, (kind, names[layer], b, pred, want)
                assert sens[layer] >= 0


@pytest.mark.slow
def test_measure_at_8_bits_is_npu_dse_evaluate(quick_cnn, capsys):
    argv = ["evaluate", "--checkpoint", str(quick_cnn), "--preset", "edge-tpu-like"]
    assert main([*argv, "--w-bits", "8", "--a-bits", "8", "--json"]) == 0
    want = json.loads(capsys.readouterr().out)["accuracy"]
    assert measured.measure(quick_cnn, 8, 8) == want


def test_measure_per_layer_widths(quick_cnn, calibrated):
    wl = calibrated[0]
    eight = np.full(wl.num_layers, 8)
    assert measured.measure(quick_cnn, eight, eight) == measured.measure(quick_cnn, 8, 8)
    mixed = np.where(np.isin(wl.names, ("conv2", "fc1")), 4, 8)
    acc = measured.measure(quick_cnn, mixed, eight)
    assert 0.0 < acc <= 1.0 and acc * 359 == pytest.approx(round(acc * 359))
    with pytest.raises(ValueError, match=r"w_bits_per_layer must be an integer or 9 integers"):
        measured.measure(quick_cnn, eight[:3], eight)
    with pytest.raises(ValueError, match="workload_names"):
        measured.calibrate(quick_cnn, workload_names=("conv1",))
