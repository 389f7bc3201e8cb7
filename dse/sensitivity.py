"""Log-log sensitivities of a design's metrics: ``d log metric / d log parameter``.

The parameters are the hardware values of :data:`dse.legal.CONTINUOUS_KEYS` and every
layer's weight and activation width; the metrics are :data:`METRICS`. A sensitivity of
``-1`` says the metric halves when the parameter doubles; ``0`` that it does not care. The
mapping (tiles, loop orders) is held fixed.

Three estimates of the same quantity, one function each, all on one flat vector of log
parameters (:func:`log_params`, named by :func:`param_names`):

- :func:`gradient`: ``jax.jacfwd`` of the smooth model (``Arith.smooth(t)``), what the
  gradient search descends;
- :func:`smooth_differences`: central finite differences of the same smooth model (the check
  that the gradient means what it says);
- :func:`exact_step`: the exact model's change over one allowed step (:func:`steps`: a
  doubling of a hardware value, one more bit of a width, or one less at 16 bits).

>>> from hw import layers
>>> from dse.space import Space
>>> from dse import design as dz
>>> wl = layers.workload([layers.gemm("g", m=4096, k=256, n=256)])
>>> base = Space.from_dict({"base": "edge-tpu-like"}).base_config()
>>> d = dz.base_design(Space.from_dict({"base": "edge-tpu-like"}), wl)
>>> jac = gradient(base, wl, d, 0.1)  # shape=(len(METRICS), 5 + 2 L)
>>> i, j = METRICS.index("latency_s"), param_names(wl).index("dram_bw_gbps")
>>> round(float(jac[i, j]), 2)  # DRAM-bound: latency halves with twice the bandwidth
-1.0
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from hw.arith import EXACT, Arith
from hw.types import NPUConfig, Workload
from hw.x64 import x64

from . import design as dz
from .legal import CONTINUOUS_KEYS

METRICS = ("latency_s", "energy_j", "power_w", "area_mm2", "edp_js")
"""The whole-workload metrics whose sensitivities are reported, in order."""

WIDEST_BITS = 16
"""The widest width a layer may use (``dse.space``); one step below it instead of above."""


def param_names(workload: Workload) -> list[str]:
    """Names of the flat parameters: the hardware keys, then ``w_bits[l]``, ``a_bits[l]``."""
    names = workload.names
    return [
        *CONTINUOUS_KEYS,
        *(f"w_bits[{n}]" for n in names),
        *(f"a_bits[{n}]" for n in names),
    ]


def log_params(design: dz.Design) -> jnp.ndarray:
    """The flat vector of log parameters of one design, shape=(5 + 2 L,)."""
    hw = [jnp.log(jnp.asarray(getattr(design, k), float)).reshape(1) for k in CONTINUOUS_KEYS]
    return jnp.concatenate([*hw, jnp.log(design.w_bits), jnp.log(design.a_bits)])


def _with_params(design: dz.Design, x) -> dz.Design:
    n = design.w_bits.shape[-1]
    k = len(CONTINUOUS_KEYS)
    values = {key: jnp.exp(x[i]) for i, key in enumerate(CONTINUOUS_KEYS)}
    return dataclasses.replace(
        design, w_bits=jnp.exp(x[k : k + n]), a_bits=jnp.exp(x[k + n :]), **values
    )


def log_metrics(base: NPUConfig, workload: Workload, design: dz.Design, x, ar: Arith):
    """``log`` of :data:`METRICS` of ``design`` with the log parameters ``x`` put in."""
    rep = dz.evaluate(base, workload, _with_params(design, x), ar)
    values = (rep.total_latency_s, rep.total_energy_j, rep.power_w, rep.area_mm2, rep.edp_js)
    return jnp.log(jnp.stack(values))


@x64
def gradient(base: NPUConfig, workload: Workload, design: dz.Design, temperature: float):
    """``d log metric / d log parameter`` by ``jax.jacfwd`` of the smooth model,
    shape=(len(METRICS), len(param_names))."""
    ar = Arith.smooth(temperature)
    return jax.jacfwd(lambda x: log_metrics(base, workload, design, x, ar))(log_params(design))


@x64
def smooth_differences(
    base: NPUConfig, workload: Workload, design: dz.Design, temperature: float, h: float = 1e-6
):
    """Central finite differences of the smooth model with log step ``h`` (same shape as
    :func:`gradient`)."""
    ar = Arith.smooth(temperature)
    x = log_params(design)
    eye = h * jnp.eye(x.shape[0])
    f = jax.vmap(lambda dx: log_metrics(base, workload, design, x + dx, ar))
    return ((f(eye) - f(-eye)) / (2 * h)).T


def steps(design: dz.Design) -> np.ndarray:
    """One allowed step per parameter, in log units: ``log 2`` for hardware values, one bit
    more for widths (one less at :data:`WIDEST_BITS`)."""
    k = len(CONTINUOUS_KEYS)
    bits = np.concatenate([np.asarray(design.w_bits), np.asarray(design.a_bits)])
    up = np.where(bits + 1 <= WIDEST_BITS, bits + 1, bits - 1)
    return np.concatenate([np.full(k, np.log(2.0)), np.log(up / bits)])


@x64
def exact_step(base: NPUConfig, workload: Workload, design: dz.Design):
    """The exact model's ``(log m(x + s) - log m(x)) / s`` over one allowed step ``s`` of
    each parameter (:func:`steps`), same shape as :func:`gradient`."""
    x = log_params(design)
    s = jnp.asarray(steps(design))
    f = jax.vmap(lambda dx: log_metrics(base, workload, design, x + dx, EXACT))
    here = log_metrics(base, workload, design, x, EXACT)
    return ((f(jnp.diag(s)) - here) / s[:, None]).T
