"""64-bit arithmetic for the cost model, scoped to its entry points.

Exact cycle and access counts exceed 2**31 (and float32's 2**24) on large layers, so the cost
model computes in int64 and float64. Switching ``jax_enable_x64`` for the whole process would
change the precision of the caller's own JAX code, so the switch is local instead: every
public function that computes (and every report property computed with ``jax.numpy``) runs
inside ``jax.enable_x64(True)``. A jitted function is traced inside the scope as well, and
since the setting is part of jit's cache key, a call always finds the 64-bit compilation.

Outside the scope, JAX truncates int64 and float64 to 32 bits, with a warning, in any
``jax.numpy`` operation; convert reported arrays with ``np.asarray`` or ``int``/``float``, or
compute on them inside :func:`x64_scope`. Likewise, ``jax.jit``, ``jax.grad`` or ``jax.vmap``
of the package's functions in the caller's code must be traced inside :func:`x64_scope` (or
decorated with :func:`x64`), so that the whole trace is 64-bit.

>>> import jax, jax.numpy as jnp
>>> @x64
... def big(n):
...     return jnp.asarray(n, dtype=jnp.int64) * n
>>> int(big(2**20)), jax.config.jax_enable_x64
(1099511627776, False)
"""

from __future__ import annotations

import functools

import jax

# Methods of a jitted function that callers and tests use (cache size, lowering); a wrapper
# keeps them, so that ``@x64`` over ``@jax.jit`` stays a drop-in replacement.
_JIT_ATTRIBUTES = ("_cache_size", "clear_cache", "lower", "trace", "eval_shape")

# ``jax.enable_x64`` since JAX 0.6; earlier releases have it under ``jax.experimental``.
if hasattr(jax, "enable_x64"):
    _enable_x64 = jax.enable_x64
else:  # pragma: no cover
    from jax.experimental import enable_x64 as _enable_x64


def x64_scope():
    """Context in which JAX computes in 64 bits (int64, float64)."""
    return _enable_x64(True)


def x64(fn):
    """Decorate ``fn`` (a function or a jitted function) to run, and trace, with 64-bit JAX."""

    @functools.wraps(fn)
    def scoped(*args, **kwargs):
        with x64_scope():
            return fn(*args, **kwargs)

    if hasattr(fn, "__wrapped__"):  # a jitted function: keep ``__wrapped__`` the Python one
        scoped.__wrapped__ = fn.__wrapped__
    for name in _JIT_ATTRIBUTES:
        if hasattr(fn, name):
            setattr(scoped, name, _scoped_method(getattr(fn, name)))
    return scoped


def _scoped_method(method):
    def scoped(*args, **kwargs):
        with x64_scope():
            return method(*args, **kwargs)

    return scoped


def x64_property(fn):
    """A read-only property computed with 64-bit JAX (report totals and derived figures)."""
    return property(x64(fn))
