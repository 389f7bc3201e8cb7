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

    def median_rel_err(t):
        return float(jnp.median(jnp.abs(op(XS, Arith.smooth(t)) - exact) / jnp.maximum(exact, 1)))

    # The width is relative (t of the count, at most half a count), so the error is too: about
    # 1 / (2 x) where the steps have merged, and falling with t below that.
    with jax.enable_x64(True):
        errs = [median_rel_err(t) for t in (0.3, 0.03, 3e-3, 1e-4)]
    assert max(errs) < 0.02
    assert errs[1:] == sorted(errs[1:], reverse=True)
    assert errs[-1] < 1e-4


@pytest.mark.parametrize("t", [0.3, 0.03, 3e-3, 1e-4])
def test_smooth_ceil_at_integers_is_within_its_relative_width(t):
    with jax.enable_x64(True):
        ints = jnp.arange(1.0, 200.0)
        rel = float(jnp.max(jnp.abs(arith.ceil(ints, Arith.smooth(t)) / ints - 1)))
    assert rel <= 1.5 * t


@pytest.mark.parametrize("t", [2.0, 0.3, 0.03, 3e-3])
def test_smooth_staircases_are_monotone(t):
    with jax.enable_x64(True):
        xs = jnp.linspace(0.0, 12.0, 12001)
        for op in (arith.ceil, arith.round_):
            assert bool(jnp.all(jnp.diff(op(xs, Arith.smooth(t))) >= -1e-12))


@pytest.mark.parametrize("t", [0.3, 0.1, 0.01])
@pytest.mark.parametrize("x", [1e5, 3.0e5 + 0.5, 4096.0])
def test_smooth_ceil_of_a_large_count_grows_like_the_count(x, t):
    # An absolute width of t counts made this a staircase: slope ~0 between integers.
    with jax.enable_x64(True):
        slope = jax.grad(lambda v: arith.ceil(v, Arith.smooth(t)))(jnp.float64(x))
    assert float(slope) == pytest.approx(1.0, abs=3e-3)


@pytest.mark.parametrize("t", [0.3, 0.1, 0.01])
def test_smooth_ceil_gradient_equals_finite_differences_at_integers(t):
    # Designs sit at integer counts (powers of two dividing the layer): no kink there.
    ar, h = Arith.smooth(t), 1e-6
    with jax.enable_x64(True):
        for x in map(jnp.float64, (1.0, 2.0, 9.0, 64.0, 1000.0)):
            g = float(jax.grad(lambda v: arith.ceil(v, ar))(x))
            fd = float((arith.ceil(x + h, ar) - arith.ceil(x - h, ar)) / (2 * h))
            assert g == pytest.approx(fd, rel=1e-4, abs=1e-6), x


@pytest.mark.parametrize("op", [arith.maximum, arith.minimum])
def test_smooth_max_min_tend_to_exact(op):
    a, b = XS + 0.1, XS[::-1] + 0.1
    exact = op(a, b, EXACT)
    rel = jnp.abs(op(a, b, Arith.smooth(1e-3)) / exact - 1)
    assert float(jnp.max(rel)) < 1e-2  # the 1000-norm is within 2**(1/1000) of the max


def test_smooth_max_is_never_below_the_max():
    a, b = XS, XS[::-1]
    assert bool(jnp.all(arith.maximum(a, b, Arith.smooth(0.5)) >= jnp.maximum(a, b) - 1e-9))


@settings(max_examples=20, deadline=None)  # eager gradients: each example costs seconds
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
        lambda v: arith.max_along(jnp.stack([v, 1.0, v / 2]), ar),
    ):
        g = jax.grad(f)(jnp.asarray(x))
        assert bool(jnp.isfinite(g)), (x, t)


def test_smooth_max_along_is_unbiased_at_ties_and_tends_to_the_max():
    tied = jnp.full((64,), 8.0)
    assert float(arith.max_along(tied, Arith.smooth(0.3))) == pytest.approx(8.0, rel=1e-12)
    xs = jnp.asarray([2.0, 4.0, 8.0, 0.0])
    assert float(arith.max_along(xs, Arith.smooth(0.3))) <= 8.0
    assert float(arith.max_along(xs, Arith.smooth(1e-3))) == pytest.approx(8.0, rel=1e-9)
    assert float(arith.max_along(xs, EXACT)) == 8.0


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
