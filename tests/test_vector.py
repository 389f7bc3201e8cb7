"""Vector unit: each precision within its stated bound of fp32, fp32 equal to jax, masks, errors."""

import math

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen
from hypothesis import given, settings
from hypothesis import strategies as st

from hw import vector
from hw.vector import ERROR_BOUNDS, OPS, PRECISIONS

LOW = ("int16", "fp16")
POOLS = ((2, 2), (3, 2), ((2, 3), (1, 2)), (5, 3))  # (window, stride)


def uniform(seed, shape, lo=-8.0, hi=8.0):
    x = np.random.default_rng(seed).uniform(lo, hi, shape).astype(np.float32)
    x.flat[0] = hi  # the edge of the documented range sets the coarsest int16 scale
    return x


def inputs(op, seed):
    """Arguments of ``op`` in its documented range (see the table in ``hw.vector``)."""
    rng = np.random.default_rng(seed)
    if op == "softmax":  # spread rows, and rows where 1..4 logits near the top take it all
        x = uniform(seed, (16, 1024))
        x[8:, 4:] = -8.0
        x[8:, :4] = rng.uniform(5, 8, (8, 4)) * (np.arange(8)[:, None] % 4 >= np.arange(4))
        return (x,)
    if op == "layernorm":
        n = (16, 768)[seed % 2]
        return (
            rng.normal(size=(64, n)).astype(np.float32),
            (1 + 0.1 * rng.normal(size=n)).astype(np.float32),
            (0.1 * rng.normal(size=n)).astype(np.float32),
        )
    if op == "add":
        return uniform(seed, (4096,)), uniform(seed + 100, (4096,))
    if op in ("max_pool2d", "avg_pool2d"):
        return (uniform(seed, (2, 17, 17, 8)),)
    return (np.concatenate([np.linspace(-8, 8, 16001), uniform(seed, (4096,))]),)


def max_err(op, precision, args, **kw):
    got = getattr(vector, op)(*args, precision=precision, **kw)
    want = getattr(vector, op)(*args, precision="fp32", **kw)
    assert got.dtype == jnp.float32 and got.shape == want.shape
    return float(jnp.max(jnp.abs(got - want)))


@pytest.mark.parametrize("precision", LOW)
@pytest.mark.parametrize("op", OPS)
def test_within_stated_bound(op, precision):
    kws = [dict(window=w, stride=s) for w, s in POOLS] if "pool" in op else [{}]
    for seed in range(3):
        for kw in kws:
            err = max_err(op, precision, inputs(op, seed), **kw)
            assert err <= ERROR_BOUNDS[(op, precision)], (op, precision, seed, kw, err)


@pytest.mark.parametrize("precision", LOW)
def test_bounds_are_not_loose(precision):
    # each measured bound is at most 3x what the documented inputs reach
    for op in ("softmax", "gelu", "relu", "layernorm"):
        err = max(max_err(op, precision, inputs(op, seed)) for seed in range(3))
        assert err > ERROR_BOUNDS[(op, precision)] / 3, (op, precision, err)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_softmax_rows_sum_to_one(precision):
    for n in (2, 16, 1024):
        x = uniform(n, (16, n))
        total = jnp.sum(vector.softmax(x, precision=precision), axis=-1)
        assert float(jnp.max(jnp.abs(total - 1))) <= ERROR_BOUNDS[("softmax", precision)] + 1e-6


@pytest.mark.parametrize("precision", PRECISIONS)
def test_softmax_other_axis(precision):
    x = uniform(3, (5, 40, 3))
    got = vector.softmax(x, axis=1, precision=precision)
    want = jnp.moveaxis(vector.softmax(jnp.moveaxis(x, 1, -1), precision=precision), -1, 1)
    np.testing.assert_allclose(got, want, atol=ERROR_BOUNDS[("softmax", precision)])


@pytest.mark.parametrize("precision", PRECISIONS)
def test_causal_mask_and_fully_masked_row(precision):
    n = 8
    x = uniform(7, (2, n, n))
    causal = jnp.tril(jnp.ones((n, n), bool))
    y = vector.softmax(x, precision=precision, mask=causal)
    assert not jnp.any(jnp.isnan(y))
    assert float(jnp.max(jnp.abs(jnp.where(causal, 0.0, y)))) == 0.0  # masked positions are 0
    # each row equals the softmax of its kept prefix
    bound = ERROR_BOUNDS[("softmax", precision)]
    for i in range(n):
        kept = np.exp(x[:, i, : i + 1] - x[:, i, : i + 1].max(-1, keepdims=True))
        want = kept / kept.sum(-1, keepdims=True)
        np.testing.assert_allclose(np.asarray(y)[:, i, : i + 1], want, atol=bound + 1e-6)
    none = jnp.zeros((2, n), bool).at[0].set(True)  # row 1 fully masked
    z = vector.softmax(x[0, :2], mask=none, precision=precision)
    assert z[1].tolist() == [0.0] * n and not jnp.any(jnp.isnan(z))
    assert float(jnp.sum(z[0])) == pytest.approx(1, abs=bound + 1e-6)


def test_fp32_equals_jax_reference():
    # the ops are jitted, so each reference runs under jit too (XLA fuses both the same way)
    def same(got, reference, *args):
        assert jnp.array_equal(got, jax.jit(reference)(*args))

    x = uniform(0, (4, 64))
    mask = np.random.default_rng(0).random(x.shape) < 0.7
    same(vector.softmax(x), jax.nn.softmax, x)
    same(vector.softmax(x, mask=mask), lambda x, m: jax.nn.softmax(x, where=m), x, mask)
    same(vector.gelu(x), lambda x: jax.nn.gelu(x, approximate=False), x)
    same(vector.relu(x), jax.nn.relu, x)
    same(vector.add(x, 2 * x), jnp.add, x, 2 * x)

    def layernorm(x, g, b):
        mean = jnp.mean(x, -1, keepdims=True)
        var = jnp.mean(jnp.square(x - mean), -1, keepdims=True)
        return (x - mean) * jax.lax.rsqrt(var + 1e-5) * g + b

    x, g, b = inputs("layernorm", 1)
    same(vector.layernorm(x, g, b), layernorm, x, g, b)
    x64 = x.astype(np.float64)
    ref = (x64 - x64.mean(-1, keepdims=True)) / np.sqrt(x64.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(vector.layernorm(x, g, b), ref * g + b, atol=1e-5)


@pytest.mark.parametrize("window,stride", POOLS)
def test_fp32_pools_equal_flax_and_a_loop(window, stride):
    (x,) = inputs("max_pool2d", 0)
    wh, ww = (window, window) if isinstance(window, int) else window
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    got_max = vector.max_pool2d(x, window, stride)
    got_avg = vector.avg_pool2d(x, window, stride)
    assert jnp.array_equal(got_max, linen.max_pool(x, (wh, ww), (sh, sw)))
    assert jnp.array_equal(got_avg, linen.avg_pool(x, (wh, ww), (sh, sw)))
    out_h, out_w = (x.shape[1] - wh) // sh + 1, (x.shape[2] - ww) // sw + 1
    assert got_max.shape == (2, out_h, out_w, 8)
    for i in range(out_h):
        for j in range(out_w):
            patch = x[:, i * sh : i * sh + wh, j * sw : j * sw + ww, :]
            np.testing.assert_array_equal(got_max[:, i, j], patch.max(axis=(1, 2)))
            np.testing.assert_allclose(got_avg[:, i, j], patch.mean(axis=(1, 2)), atol=1e-6)


def test_int16_outputs_lie_on_a_16_bit_grid():
    p = vector.softmax(uniform(1, (4, 32)), precision="int16") * 2**16  # unsigned Q0.16
    assert jnp.array_equal(p, jnp.round(p)) and float(p.min()) >= 0 and float(p.max()) < 2**16
    # max|x| = 7.99: f = floor(log2(32767 / 7.99)) = 12 fractional bits
    y = vector.relu(uniform(2, (1000,), hi=7.99), precision="int16") * 2**12
    assert jnp.array_equal(y, jnp.round(y))


def test_int16_isqrt_is_exact():
    rng = np.random.default_rng(0)
    k = rng.integers(1, 2**31, 500)
    n = np.concatenate([np.arange(300), rng.integers(0, 2**62, 2000), k * k, k * k - 1])
    with jax.enable_x64(True):  # as inside the int16 vector ops
        got = vector._isqrt(jnp.asarray(n, jnp.int64))
        by_float = vector._isqrt_by_float(jnp.asarray(n, jnp.int64))
    assert got.tolist() == [math.isqrt(int(v)) for v in n] == by_float.tolist()


def test_jit_equals_no_jit_and_no_recompile():
    x = uniform(4, (2, 16))
    with jax.disable_jit():
        eager = vector.add(x, x[::-1], precision="int16")
    assert jnp.array_equal(vector.add(x, x[::-1], precision="int16"), eager)
    x = uniform(5, (3, 40))
    vector.softmax(x, precision="int16")
    before = vector.softmax._cache_size()
    vector.softmax(2 * x, precision="int16")  # new values, same shape: no new trace
    assert vector.softmax._cache_size() == before


@settings(max_examples=30, deadline=None)
@given(
    x=hnp.arrays(np.float32, (64,), elements=st.floats(-8, 8, width=32)),
    y=hnp.arrays(np.float32, (64,), elements=st.floats(-8, 8, width=32)),
    precision=st.sampled_from(LOW),
)
def test_elementwise_ops_within_bound_hypothesis(x, y, precision):
    for op, args in (("gelu", (x,)), ("relu", (x,)), ("add", (x, y)), ("softmax", (x,))):
        assert max_err(op, precision, args) <= ERROR_BOUNDS[(op, precision)], (op, x, y)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), precision=st.sampled_from(LOW))
def test_layernorm_within_bound_hypothesis(seed, precision):
    rng = np.random.default_rng(seed)
    args = inputs("layernorm", int(rng.integers(2)))  # shapes as above: no new compiles
    x = rng.normal(size=args[0].shape).astype(np.float32)
    assert max_err("layernorm", precision, (x, *args[1:])) <= ERROR_BOUNDS[("layernorm", precision)]


def test_error_bound_table_is_complete():
    assert set(ERROR_BOUNDS) == {(op, p) for op in OPS for p in PRECISIONS}
    assert all(ERROR_BOUNDS[(op, "fp32")] == 0.0 for op in OPS)
    assert vector.error_bound("gelu", "int16") == ERROR_BOUNDS[("gelu", "int16")]


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: vector.relu(jnp.ones(3), precision="int8"), "precision must be one of int16"),
        (lambda: vector.error_bound("tanh", "fp16"), "op must be one of softmax"),
        (lambda: vector.error_bound("gelu", "bf16"), "got 'bf16'"),
        (lambda: vector.layernorm(jnp.ones((2, 4)), jnp.ones(3), jnp.zeros(4)), "gamma shape"),
        (lambda: vector.layernorm(jnp.ones((2, 4)), jnp.ones(4), jnp.zeros(2)), "beta shape"),
        (lambda: vector.max_pool2d(jnp.ones((1, 2, 2, 1)), 3, 1), "larger than the input"),
        (lambda: vector.avg_pool2d(jnp.ones((2, 2, 1)), 2, 1), "NHWC"),
        (lambda: vector.avg_pool2d(jnp.ones((1, 4, 4, 1)), 2, 0), "stride must be >= 1"),
        (lambda: vector.add(jnp.ones(3), jnp.ones(4)), "do not broadcast"),
        (lambda: vector.softmax(jnp.ones((2, 3)), mask=jnp.ones(2, bool)), "mask shape"),
        (lambda: vector.softmax(jnp.ones((2, 3)), axis=2), "axis must be in"),
    ],
)
def test_bad_input_errors(call, match):
    with pytest.raises(ValueError, match=match) as info:
        call()
    assert "\n" not in str(info.value)


def test_unknown_precision_message():
    with pytest.raises(ValueError) as info:
        vector.softmax(jnp.ones(3), precision="int8")
    assert str(info.value) == "precision must be one of int16, fp16, fp32, got 'int8'"


# ---- int16 computed in int32 where the bounds allow: the same bits as in int64

I32, I64 = jnp.int32, jnp.int64


def _both(fn, *args, **static):
    """``fn(*args, t=dtype)`` jitted (64-bit, as inside the ops) with int32 and with int64."""
    jitted = jax.jit(fn, static_argnames=("t", *static))
    with jax.enable_x64(True):
        return [np.asarray(jitted(*args, t=t, **static)) for t in (I32, I64)]


def _iexp(d, t):
    return vector._iexp(d.astype(t))


def _reciprocal(sn, t):
    return vector._reciprocal(sn.astype(t))


def _gelu(q, f, t):
    return vector._gelu_int16(q.astype(t), f)


def _softmax(x, keep, axis, t):
    return vector._softmax_int16(x, keep, axis, t)


def _layernorm(x, gamma, beta, t):
    return vector._layernorm_int16(x, gamma, beta, 1e-5, t)


def _add(x, y, t):
    return vector._add_int16(x, y, t)


def test_int16_iexp_and_reciprocal_fit_int32_on_every_input():
    # every Q4.11 input of i-exp, every Q0.15 input of the reciprocal
    e32, e64 = _both(_iexp, np.arange(-(2**15), 1))
    np.testing.assert_array_equal(e32, e64)
    assert e64.max() <= vector._IEXP_MAX < e64.max() + 2**10  # the stated bound, and tight
    sn = np.arange(2**14, 2**15)
    r32, r64 = _both(_reciprocal, sn)
    np.testing.assert_array_equal(r32, r64)
    assert np.max(sn * r64) < 2**31


def test_int16_gelu_int32_equals_int64_on_every_code_and_scale():
    q = np.arange(-(2**15), 2**15)
    for f in (0, 1, 11, 23, 24):
        got, want = _both(_gelu, q, np.int32(f))
        np.testing.assert_array_equal(got, want)


def _rows(rng, n, rows=12):
    """Logits at the edges: equal rows (the largest sum), one large logit, tiny and huge
    scales, saturated and random values."""
    scales = np.array([1, 1, 8, 1e-6, 3e4, 1, 1, 8, 2e2, 1, 1, 1])[:rows, None]
    x = rng.normal(size=(rows, n)) * scales
    x[0], x[1], x[1, 0] = 0.0, -3.0, 12.0
    x[2 % rows] = rng.choice([-8.0, 8.0], n)
    return x.astype(np.float32)


@pytest.mark.parametrize("n", [1, 16, (2**31 - 1) // vector._IEXP_MAX])  # up to the widest
def test_int16_softmax_int32_equals_int64_at_the_edges(n):
    rng = np.random.default_rng(n)
    x, keep = _rows(rng, n), rng.random((12, n)) < 0.8
    keep[2] = True
    keep[3] = False  # a fully masked row
    for axis in (-1, 0):
        got, want = _both(_softmax, x, keep, axis=axis)
        np.testing.assert_array_equal(got, want)
        # the public op picks int32 at this width and gives those bits
        public = vector.softmax(x, axis=axis, precision="int16", mask=keep)
        np.testing.assert_array_equal(public, got)


@pytest.mark.parametrize("n", [2, 64, 2**14 - 1])  # up to the widest row held in int32
def test_int16_layernorm_int32_equals_int64_at_the_edges(n):
    rng = np.random.default_rng(n)
    x = _rows(rng, n, rows=4 if n > 1000 else 12)
    x[-1] = 300.0  # a constant row at a coarse scale: zero variance, no epsilon left
    cases = [  # (gamma, beta): plain, wide-ranged, tiny gamma and large beta
        (np.ones(n), np.zeros(n)),
        (rng.normal(size=n) * 30, rng.normal(size=n)),
        (np.full(n, -1e-6), np.full(n, 100.0)),
    ]
    for gamma, beta in cases:
        gamma, beta = gamma.astype(np.float32), beta.astype(np.float32)
        got, want = _both(_layernorm, x, gamma, beta)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(vector.layernorm(x, gamma, beta, precision="int16"), want)


def test_int16_add_int32_equals_int64_for_every_scale_gap():
    rng = np.random.default_rng(3)
    base = rng.normal(size=(25, 256)).astype(np.float32)
    base[:, 0] = 1.0  # row i has max |x| = 2^-i: every frac-bits gap from 0 to 24
    x = base * 2.0 ** -np.arange(25)[:, None].astype(np.float32)
    y = (rng.choice([-1, 1], (25, 256)) * 32767.0 / 2**12).astype(np.float32)
    for gap in range(25):
        got, want = _both(_add, x[gap], y[gap])
        np.testing.assert_array_equal(vector.add(x[gap], y[gap], precision="int16"), want)
        if gap <= 14:  # where the public op takes int32
            np.testing.assert_array_equal(got, want)
