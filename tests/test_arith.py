"""Exact and smooth twins: the smooth ones tend to the exact ones and have finite gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hw import arith
from hw.arith import EXACT, Arith

rng = np.random.default_rng(0)
XS = jnp.asarray(np.concatenate([rng.uniform(0.01, 50, 400), np.arange(0.0, 20.0)]))


@pytest.mark.parametrize("op", [arith.ceil, arith.round_])
def test_smooth_staircases_tend_to_exact(op):
    exact = op(XS, EXACT)
    errs = [float(jnp.max(jnp.abs(op(XS, Arith.smooth(t)) - exact))) for t in (0.3, 0.03, 3e-3)]
    # Away from the jump points the error decays with t; random points sit near a jump
    # with probability ~t, so check the median error and the trend.
    assert errs[0] > errs[2]
    med = float(jnp.median(jnp.abs(op(XS, Arith.smooth(1e-3)) - exact)))
    assert med < 1e-6


def test_smooth_ceil_is_exact_at_integers_and_monotone():
    ints = jnp.arange(0.0, 30.0)
    np.testing.assert_allclose(arith.ceil(ints, Arith.smooth(0.5)), ints, atol=1e-12)
    xs = jnp.linspace(0.0, 10.0, 5001)
    ys = arith.ceil(xs, Arith.smooth(0.2))
    assert bool(jnp.all(jnp.diff(ys) >= -1e-12))


@pytest.mark.parametrize("op", [arith.maximum, arith.minimum])
def test_smooth_max_min_tend_to_exact(op):
    a, b = XS + 0.1, XS[::-1] + 0.1
    exact = op(a, b, EXACT)
    rel = jnp.abs(op(a, b, Arith.smooth(1e-3)) / exact - 1)
    assert float(jnp.max(rel)) < 1e-2  # the 1000-norm is within 2**(1/1000) of the max


def test_smooth_max_is_never_below_the_max():
    a, b = XS, XS[::-1]
    assert bool(jnp.all(arith.maximum(a, b, Arith.smooth(0.5)) >= jnp.maximum(a, b) - 1e-9))


@settings(max_examples=200, deadline=None)
@given(x=st.floats(0.0, 1e6), t=st.floats(1e-3, 2.0))
def test_gradients_are_finite_everywhere(x, t):
    ar = Arith.smooth(t)
    for f in (
        lambda v: arith.ceil(v, ar),
        lambda v: arith.round_(v, ar),
        lambda v: arith.maximum(v, 1.0, ar),
        lambda v: arith.minimum(v, 1.0, ar),
        lambda v: arith.ceil_div(v, 7.0, ar),
        lambda v: arith.step(v - 1.5, ar),
    ):
        g = jax.grad(f)(jnp.asarray(x))
        assert bool(jnp.isfinite(g)), (x, t)


def test_exact_integer_ceil_div_stays_integer():
    with jax.enable_x64(True):
        out = arith.ceil_div(jnp.asarray([7, 8, 9], dtype=jnp.int64), 4, EXACT)
    assert out.dtype == jnp.int64
    assert out.tolist() == [2, 2, 3]


def test_smooth_needs_positive_temperature():
    with pytest.raises(ValueError, match="temperature"):
        Arith.smooth(0.0)


def test_arith_is_a_pytree_with_a_static_mode_and_a_traced_temperature():
    leaves, tree = jax.tree_util.tree_flatten(Arith.smooth(0.25))
    assert [float(x) for x in leaves] == [0.25]
    assert jax.tree_util.tree_unflatten(tree, [0.5]) == Arith.smooth(0.5)

    @jax.jit
    def f(x, ar):
        return arith.ceil(x, ar)

    for t in (0.3, 0.03, 0.003):
        f(XS, Arith.smooth(t))
    assert f._cache_size() == 1
    np.testing.assert_array_equal(f(XS, EXACT), jnp.ceil(XS))
    assert f._cache_size() == 2  # exact is a second code path, compiled once
