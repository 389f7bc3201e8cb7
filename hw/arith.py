"""Exact and smooth twins of the discrete operations of the cost model.

Every discrete step of the cost model (ceil, round, max, min, a comparison) is written once,
as a call to one of the functions below, and the caller picks the arithmetic with one setting,
:class:`Arith`: a pytree whose mode (exact or smooth) is static and whose temperature is a
traced leaf, so that a jitted cost function compiles once per mode, not once per temperature:

>>> import jax.numpy as jnp
>>> from hw.arith import EXACT, Arith, ceil
>>> int(ceil(jnp.asarray(2.5), EXACT))
3
>>> float(ceil(jnp.asarray(2.5), Arith.smooth(1e-6)))
3.0

The smooth twins tend to the exact ones as ``temperature -> 0`` and have finite gradients
everywhere (including at integers and at zero), so that a search can differentiate the whole
model. Reported numbers always come from ``EXACT``.

The smoothing scales with what it smooths. A staircase (``ceil``, ``round_``) at ``x`` is a
sum of logistic steps of width ``w = W0 tanh(t sqrt(1 + x^2) / W0)``: a fraction ``t`` of
``x`` for small counts, and at most ``W0`` (0.65) of a count, where the steps have merged into
the straight line ``x + 1/2`` (the staircase's mean; the ripple of its slope is below 0.02 %). An
absolute width (a tenth of a count whatever the count) would leave the smooth ceil of 10^5 cycles a
staircase, flat between integers and steep at them, whose gradient is zero almost everywhere
although the count grows in proportion to ``x``. The smooth twins are infinitely
differentiable (no kink at integers, where designs sit), so ``jax.grad`` equals finite
differences of the same function. The max, min (``1/t``-norms) and the step of a log-ratio
are scale-free already.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from hw.types import Array, pytree_dataclass, static

# Smallest positive value used to keep logarithms of non-negative quantities finite.
_TINY = 1e-30


@pytree_dataclass
class Arith:
    """Which arithmetic the cost model uses: an ordinary (non-static) argument of jitted code.

    Attributes:
      temperature: smoothing strength of the smooth twins (a leaf: it may be traced, e.g.
        annealed inside a jit, without recompiling); ignored when ``exact``. At 0.01 the
        smooth model is within about 1 % of the exact one; at 1 it is a gentle trend.
      exact: static; True for integer-exact ceil/max/round (reporting, SCALE-Sim parity),
        False for their smooth twins (gradients).
    """

    temperature: Array = np.float64(0.0)
    exact: bool = static(True)

    @staticmethod
    def smooth(temperature=0.1) -> Arith:
        """Smooth arithmetic at ``temperature`` (> 0; a traced value is not checked)."""
        if isinstance(temperature, jax.core.Tracer):
            return Arith(temperature=temperature, exact=False)
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0 for smooth arithmetic, got {temperature}")
        return Arith(temperature=np.float64(temperature), exact=False)


EXACT = Arith()


_MAX_WIDTH = 0.65
"""``W0``: the widest step, in counts; wider steps would change nothing but the cost, as the
staircase's slope is within 0.02 % of 1 from there on."""
_TERMS = 16
"""Steps summed on each side of ``x``; a step ``_TERMS - 1`` widths ``W0`` away is settled to
within ``exp(-15 / 0.65) = 1e-10``."""


def _staircase(x, ar: Arith):
    """``ceil(x)`` smoothed, for ``x > 0``: ``1 + sum_{n >= 1} sigmoid((x - n) / w - a)`` over
    the integers ``n`` near ``x``.

    Each step sits ``a = (3 + log(W0 / w)) (1 - w / W0)`` widths after its integer: for narrow
    steps, late enough that the value at an integer ``n`` is ``n + O(w)`` and tends to ``n``
    as ``t -> 0``; for wide ones, centred on it, so that the merged steps are the staircase's
    mean ``x + 1/2`` (the delay ``a w`` is at most half a count). The step at 0 is left sharp:
    a positive count below one is one (one fold of a small layer), whatever it is a fraction
    of. Monotone non-decreasing in ``x``.
    """
    w = _MAX_WIDTH * jnp.tanh(ar.temperature * jnp.sqrt(1.0 + x * x) / _MAX_WIDTH)
    shift = (3.0 + jnp.log(_MAX_WIDTH / w)) * (1.0 - w / _MAX_WIDTH) * w
    y = x - shift
    m = jax.lax.stop_gradient(jnp.floor(y))
    ks = jnp.arange(1 - _TERMS, _TERMS + 1, dtype=jnp.result_type(float))
    steps = jax.nn.sigmoid(((y - m)[..., None] - ks) / w[..., None])
    steps = jnp.where(m[..., None] + ks >= 1, steps, 0.0)
    below = jnp.maximum(m - _TERMS, 0.0)  # the settled steps 1 .. m - _TERMS
    return 1.0 + below + jnp.sum(steps, axis=-1)


def ceil(x, ar: Arith):
    """``ceil(x)``; smooth: the staircase of logistic steps of relative width (module docs) for
    ``x > 0`` (counts), the exact ``ceil`` elsewhere."""
    if ar.exact:
        return jnp.ceil(x)
    x = jnp.asarray(x, dtype=jnp.result_type(x, float))
    return jnp.where(x > 0, _staircase(x, ar), jnp.ceil(x))


def ceil_div(a, b, ar: Arith):
    """``ceil(a / b)`` for positive ``b``; integer arithmetic when exact and both are ints."""
    if ar.exact and jnp.issubdtype(jnp.result_type(a, b), jnp.integer):
        return -(-a // b)
    return ceil(a / b, ar)


def round_(x, ar: Arith):
    """Round half up; smooth: the smooth ``ceil(x + 1/2) - 1``, which tends to it as ``t -> 0``
    and to ``x`` where the steps have merged."""
    if ar.exact:
        return jnp.floor(x + 0.5)
    return ceil(x + 0.5, ar) - 1.0


def maximum(a, b, ar: Arith):
    """``max(a, b)`` of non-negative quantities; smooth: the ``1/t``-norm ``(a^p + b^p)^(1/p)``.

    The norm is scale-free (cycles and bytes can be 1 or 1e9), tends to the max as ``t -> 0``
    and is never below it.
    """
    if ar.exact:
        return jnp.maximum(a, b)
    return _pnorm(jnp.stack(jnp.broadcast_arrays(a, b)), 1.0 / ar.temperature)


def max_of(xs, ar: Arith):
    """Maximum of a sequence of non-negative arrays (the roofline's ``max``)."""
    xs = jnp.stack(jnp.broadcast_arrays(*xs))
    if ar.exact:
        return jnp.max(xs, axis=0)
    return _pnorm(xs, 1.0 / ar.temperature)


def max_along(x, ar: Arith, axis=-1):
    """Maximum of non-negative values along ``axis``; smooth: their mean weighted by
    ``softmax(log(x) / t)``, which is never above the max, equals it where all values tie (so a
    shared maximum of many layers carries no bias) and tends to it as ``t -> 0``."""
    if ar.exact:
        return jnp.max(x, axis=axis)
    weights = jax.nn.softmax(jnp.log(jnp.maximum(x, _TINY)) / ar.temperature, axis=axis)
    return jnp.sum(weights * x, axis=axis)


def minimum(a, b, ar: Arith):
    """``min(a, b)`` of positive quantities; smooth: the ``-1/t``-norm."""
    if ar.exact:
        return jnp.minimum(a, b)
    return _pnorm(jnp.stack(jnp.broadcast_arrays(a, b)), -1.0 / ar.temperature)


def step(x, ar: Arith):
    """Heaviside ``1[x > 0]``; smooth: ``sigmoid(x / t)`` (``x`` should be O(1)-scaled)."""
    if ar.exact:
        return (x > 0).astype(jnp.result_type(float))
    return jax.nn.sigmoid(x / ar.temperature)


def _pnorm(xs, p):
    """``(sum_i x_i^p)^(1/p)`` along axis 0, computed in log space for range and stability."""
    logs = jnp.log(jnp.maximum(xs, _TINY))
    return jnp.exp(jax.nn.logsumexp(p * logs, axis=0) / p)
