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


def _frac(x):
    """Fractional part ``x - floor(x)`` with the gradient of ``x`` (floor is a constant)."""
    return x - jax.lax.stop_gradient(jnp.floor(x))


def ceil(x, ar: Arith):
    """``ceil(x)``; smooth: ``x + (1 - f) * tanh(f / t)`` with ``f = x - floor(x)``.

    The smooth twin is continuous (it equals ``x`` at integers from both sides), monotone
    non-decreasing, and tends to ``ceil(x)`` as ``t -> 0``.
    """
    if ar.exact:
        return jnp.ceil(x)
    f = _frac(x)
    return x + (1.0 - f) * jnp.tanh(f / ar.temperature)


def ceil_div(a, b, ar: Arith):
    """``ceil(a / b)`` for positive ``b``; integer arithmetic when exact and both are ints."""
    if ar.exact and jnp.issubdtype(jnp.result_type(a, b), jnp.integer):
        return -(-a // b)
    return ceil(a / b, ar)


def round_(x, ar: Arith):
    """Round half up; smooth: a continuous logistic staircase that tends to it as ``t -> 0``."""
    if ar.exact:
        return jnp.floor(x + 0.5)
    t = ar.temperature
    f = _frac(x)
    lo, hi = jax.nn.sigmoid(-0.5 / t), jax.nn.sigmoid(0.5 / t)
    step = (jax.nn.sigmoid((f - 0.5) / t) - lo) / (hi - lo)
    return x - f + step


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
