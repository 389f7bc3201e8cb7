"""Gradients that mean what they say: ``jax.jacfwd`` of the smooth model against central finite
differences of the same model (every hardware parameter and every layer's widths, at the
search's temperatures) and against the exact model over one allowed step."""

import dataclasses

import numpy as np
import pytest

from dse import design as dz
from dse import sensitivity as sens
from dse.space import Space
from hw import layers

TEMPERATURES = (0.3, 0.1, 0.03, 0.01)  # dse.gradient anneals from 0.3 to 0.01


def readme_workload():
    return layers.workload(
        [
            layers.conv2d(
                "conv", ifmap_h=56, ifmap_w=56, channels=64, num_filters=64, filter_h=3,
                filter_w=3, padding=1,
            ),
            layers.dense("fc", in_features=768, out_features=3072, tokens=128),
        ]
    )  # fmt: skip


def mixed_workload():
    """Widths that differ per layer (no tie in the multipliers' width) and a vector layer."""
    return layers.workload(
        [
            layers.gemm("g", m=200, k=96, n=48),
            layers.conv2d(
                "c", ifmap_h=14, ifmap_w=14, channels=32, num_filters=24, filter_h=3, filter_w=3
            ),
            layers.dense("d", in_features=300, out_features=70, tokens=5),
        ]
    )


CASES = {
    "readme/edge-tpu-like": ("edge-tpu-like", readme_workload, None),
    "mixed/tpu-v1-like": ("tpu-v1-like", mixed_workload, ([4.0, 8.0, 6.0], [8.0, 5.0, 12.0])),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    preset, make, bits = CASES[request.param]
    wl = make()
    space = Space.from_dict({"base": preset})
    d = dz.base_design(space, wl)
    if bits is not None:
        d = dataclasses.replace(d, w_bits=np.asarray(bits[0]), a_bits=np.asarray(bits[1]))
    return space.base_config(), wl, d


@pytest.mark.parametrize("t", TEMPERATURES)
def test_gradient_agrees_with_finite_differences_of_the_smooth_model(case, t):
    base, wl, d = case
    grad = np.asarray(sens.gradient(base, wl, d, t))
    fd = np.asarray(sens.smooth_differences(base, wl, d, t))
    assert grad.shape == (len(sens.METRICS), len(sens.param_names(wl)))
    assert np.all(np.isfinite(grad))
    # Within 10 %; sensitivities below 1e-3 (0.07 % per doubling) count as zero.
    bad = np.abs(grad - fd) > 0.1 * np.abs(fd) + 1e-3
    names = sens.param_names(wl)
    where = [(sens.METRICS[m], names[k]) for m, k in zip(*np.nonzero(bad), strict=True)]
    assert not where, where


def test_gradient_has_the_sign_and_size_of_one_exact_step(case):
    """At the search's first temperature, every sensitivity of latency, energy, area and EDP
    that the exact model shows over one step (at least 0.05) has the gradient's sign and is
    within 10x of it. Power (a ratio of two sums) is left out: on the mixed case its
    sensitivity to rows is -0.012 locally and +0.117 over a doubling."""
    base, wl, d = case
    keep = [sens.METRICS.index(m) for m in ("latency_s", "energy_j", "area_mm2", "edp_js")]
    grad = np.asarray(sens.gradient(base, wl, d, 0.3))[keep]
    exact = np.asarray(sens.exact_step(base, wl, d))[keep]
    strong = np.abs(exact) >= 0.05
    assert strong.sum() >= 5
    assert np.all(np.sign(grad[strong]) == np.sign(exact[strong]))
    ratio = grad[strong] / exact[strong]
    assert np.all((ratio > 0.1) & (ratio < 10)), ratio


def test_a_dram_bound_workload_reads_as_dram_bound():
    """The README's workload on edge-tpu-like waits on DRAM: latency falls in proportion to the
    bandwidth and does not care about the clock (an absolute smoothing width said the
    opposite: -0.015 and -0.985)."""
    space, wl = Space.from_dict({"base": "edge-tpu-like"}), readme_workload()
    base, d = space.base_config(), dz.base_design(space, wl)
    grad = np.asarray(sens.gradient(base, wl, d, 0.1))
    names = sens.param_names(wl)
    lat = grad[sens.METRICS.index("latency_s")]
    assert lat[names.index("dram_bw_gbps")] == pytest.approx(-1.0, abs=0.05)
    assert abs(lat[names.index("clock_mhz")]) < 0.05
