"""Bit-accurate GEMM against a NumPy reference loop, and integer-only requantization."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hw.execute import _gemm_wrapping, quantize_multiplier, requantize, run_gemm
from hw.types import DATAFLOWS


def reference_gemm(a, w, *, chunk, acc_bits, overflow, psum_bits=None):
    """Walk k in increasing order on Python integers (object arrays, no int64 shortcuts): add
    each product, wrap or clamp to ``acc_bits``; before each chunk but the first, spill the sum
    as a ``psum_bits`` word rounded half up and wrapped or clamped to ``psum_bits``."""
    a, w = np.asarray(a).astype(object), np.asarray(w).astype(object)

    def fit(x, bits):
        lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        if overflow == "wrap":
            return (x - lo) % 2**bits + lo
        return np.minimum(np.maximum(x, lo), hi)

    s = np.zeros((a.shape[0], w.shape[1]), dtype=object)
    for k in range(a.shape[1]):
        if k and k % chunk == 0 and psum_bits is not None:
            d = acc_bits - psum_bits
            s = fit((s + 2 ** (d - 1)) // 2**d, psum_bits) * 2**d
        s = fit(s + np.outer(a[:, k], w[k, :]), acc_bits)
    return s


def chunk_of(k, rows, dataflow, tile_k):
    """The K chunk run_gemm documents: tile_k, else rows for ws/is and all of K for os."""
    if tile_k is not None:
        return min(tile_k, k)
    return k if dataflow in ("os", 0) else min(rows, k)


def operand(rng, shape, bits, extreme):
    """Random ``bits``-wide signed integers in the narrowest NumPy dtype that holds them; with
    ``extreme`` most entries sit at the range ends so that accumulators overflow."""
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    x = rng.integers(lo, hi + 1, shape)
    if extreme:
        x = np.where(rng.random(shape) < 0.7, rng.choice([lo, hi], shape), x)
    return x.astype(np.int8 if bits <= 8 else np.int16)


@settings(max_examples=30, deadline=None)
@given(
    m=st.integers(1, 40),
    n=st.integers(1, 40),
    k=st.integers(1, 40),
    a_bits=st.integers(2, 16),
    w_bits=st.integers(2, 16),
    acc_bits=st.integers(8, 32),
    overflow=st.sampled_from(["wrap", "saturate"]),
    dataflow=st.sampled_from([*DATAFLOWS, 0, 1, 2]),
    rows=st.integers(1, 20),
    cols=st.integers(1, 20),
    tile_k=st.none() | st.integers(1, 20),
    psum_drop=st.none() | st.integers(1, 6),
    extreme=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_run_gemm_matches_reference_loop(
    m,
    n,
    k,
    a_bits,
    w_bits,
    acc_bits,
    overflow,
    dataflow,
    rows,
    cols,
    tile_k,
    psum_drop,
    extreme,
    seed,
):
    rng = np.random.default_rng(seed)
    a, w = operand(rng, (m, k), a_bits, extreme), operand(rng, (k, n), w_bits, extreme)
    psum_bits = None if psum_drop is None else acc_bits - psum_drop
    numbers = dict(acc_bits=acc_bits, overflow=overflow, psum_bits=psum_bits)
    got = run_gemm(a, w, rows=rows, cols=cols, dataflow=dataflow, tile_k=tile_k, **numbers)
    want = reference_gemm(a, w, chunk=chunk_of(k, rows, dataflow, tile_k), **numbers)
    assert got.dtype == jnp.int64 and got.shape == (m, n)
    np.testing.assert_array_equal(np.asarray(got), want.astype(np.int64))


def test_goldens_by_hand():
    a, w = np.array([[100, 100, -50]]), np.ones((3, 1), np.int8)
    # wrap: 100, 200 -> -56, -106; saturate: 100, 200 -> 127, 77
    assert run_gemm(a, w, rows=1, cols=1, dataflow="os", acc_bits=8).tolist() == [[-106]]
    sat = run_gemm(a, w, rows=1, cols=1, dataflow="os", acc_bits=8, overflow="saturate")
    assert sat.tolist() == [[77]]
    # ws, 2 rows: chunks (3, 3), (3, 3). Sum 6 spills as a 6-bit word of an 8-bit accumulator
    # (d = 2): 6 / 4 = 1.5 rounds half up to 2 -> 8; then 8 + 3 + 3 = 14 (exact: 12).
    a, w = np.full((1, 4), 3), np.ones((4, 1), np.int8)
    assert run_gemm(a, w, rows=2, cols=1, dataflow="ws", acc_bits=8, psum_bits=6).item() == 14
    # A 4-bit word (d = 4): 120 / 16 = 7.5 -> 8 overflows the word: saturate keeps 7 -> 112,
    # wrap gives -8 -> -128; then + 1.
    a, w = np.array([[100, 20, 1]]), np.ones((3, 1), np.int8)
    kw = dict(rows=2, cols=1, dataflow="is", acc_bits=8, psum_bits=4)
    assert run_gemm(a, w, overflow="saturate", **kw).item() == 113
    assert run_gemm(a, w, overflow="wrap", **kw).item() == -127


@pytest.mark.parametrize("dataflow", DATAFLOWS)
@pytest.mark.parametrize(("rows", "tile_k"), [(1, None), (7, None), (128, None), (4, 3), (9, 64)])
def test_wide_accumulator_is_exact_and_wrap_is_modular(dataflow, rows, tile_k):
    rng = np.random.default_rng(rows)
    a, w = operand(rng, (13, 50), 8, True), operand(rng, (50, 11), 8, True)
    exact = a.astype(np.int64) @ w.astype(np.int64)
    kw = dict(rows=rows, cols=5, dataflow=dataflow, tile_k=tile_k)
    for overflow in ("wrap", "saturate"):  # K max|a| max|w| = 50 * 128 * 128 = 819200 < 2^20
        np.testing.assert_array_equal(run_gemm(a, w, acc_bits=21, overflow=overflow, **kw), exact)
    for acc_bits in (8, 12, 16):
        want = (exact + 2 ** (acc_bits - 1)) % 2**acc_bits - 2 ** (acc_bits - 1)
        np.testing.assert_array_equal(run_gemm(a, w, acc_bits=acc_bits, **kw), want)


@pytest.mark.parametrize("overflow", ["wrap", "saturate"])
@pytest.mark.parametrize(("acc_bits", "psum_bits"), [(64, None), (64, 40), (40, None), (33, 20)])
def test_int32_operands_and_wide_accumulators(overflow, acc_bits, psum_bits):
    rng = np.random.default_rng(acc_bits)
    a = rng.choice(np.array([-(2**31), 2**31 - 1, -7, 3], np.int64), (6, 9))
    w = rng.choice(np.array([-(2**31), 2**31 - 1, 5, -1], np.int32), (9, 4))
    kw = dict(acc_bits=acc_bits, overflow=overflow, psum_bits=psum_bits)
    got = run_gemm(a, w, rows=4, cols=4, dataflow="ws", **kw)
    np.testing.assert_array_equal(got, reference_gemm(a, w, chunk=4, **kw).astype(np.int64))


def test_jax_inputs_jit_and_unsigned_dtypes_agree_with_numpy():
    rng = np.random.default_rng(3)
    a, w = rng.integers(0, 256, (9, 30)).astype(np.uint8), operand(rng, (30, 7), 8, True)
    for numbers in (
        dict(acc_bits=16, overflow="wrap", psum_bits=None),
        dict(acc_bits=14, overflow="saturate", psum_bits=10),
    ):
        want = reference_gemm(a, w, chunk=8, **numbers).astype(np.int64)
        kw = dict(rows=8, cols=8, dataflow="ws", **numbers)
        np.testing.assert_array_equal(run_gemm(a, w, **kw), want)
        np.testing.assert_array_equal(run_gemm(jnp.asarray(a), jnp.asarray(w), **kw), want)
        jitted = jax.jit(lambda x, y, kw=kw: run_gemm(x, y, **kw))  # dtype-range bounds
        np.testing.assert_array_equal(jitted(a, w), want)


def test_new_values_of_the_same_shape_do_not_recompile():
    rng = np.random.default_rng(4)
    kw = dict(rows=8, cols=8, dataflow="ws", acc_bits=32)
    run_gemm(operand(rng, (16, 24), 8, False), operand(rng, (24, 8), 8, False), **kw)
    size = _gemm_wrapping._cache_size()
    run_gemm(operand(rng, (16, 24), 8, False), operand(rng, (24, 8), 8, False), **kw)
    assert _gemm_wrapping._cache_size() == size


@pytest.mark.parametrize(
    ("a", "w", "kw", "match"),
    [
        (np.ones((4, 3), int), np.ones((5, 2), int), {}, "a is 4x3 but w is 5x2: the inner"),
        (np.ones((4, 3)), np.ones((3, 2), int), {}, "a must be a non-empty 2-D integer array"),
        (np.ones(3, int), np.ones((3, 2), int), {}, "a must be a non-empty 2-D integer"),
        (np.ones((2, 3), int), np.ones((3, 2), int), dict(overflow="clip"), "overflow must be"),
        (np.ones((2, 3), int), np.ones((3, 2), int), dict(acc_bits=65), "acc_bits must be an"),
        (np.ones((2, 3), int), np.ones((3, 2), int), dict(psum_bits=32), "psum_bits must be"),
        (np.ones((2, 3), int), np.ones((3, 2), int), dict(dataflow="rs"), "dataflow must be"),
        (np.ones((2, 3), int), np.ones((3, 2), int), dict(dataflow=3), "dataflow must be"),
        (np.ones((2, 3), int), np.ones((3, 2), int), dict(rows=0), "rows must be an integer"),
        (np.ones((2, 3), int), np.ones((3, 2), int), dict(cols=2.0), "cols must be an integer"),
        (np.ones((2, 3), int), np.ones((3, 2), int), dict(tile_k=0), "tile_k must be"),
        (np.full((2, 3), 2**31), np.ones((3, 2), int), {}, "a values must fit in int32"),
    ],
)
def test_bad_arguments_raise_one_line_value_errors(a, w, kw, match):
    kw = dict(rows=4, cols=4, dataflow="ws", acc_bits=32) | kw
    with pytest.raises(ValueError, match=match) as err:
        run_gemm(a, w, **kw)
    assert "\n" not in str(err.value)


def python_requantize(x, m, shift, zp, qmin, qmax):
    """``clip(sign(x) floor((|x| m + 2^(n-1)) / 2^n) + zp)`` with Python integers."""
    n = 31 + shift
    mag = (abs(x) * m + 2 ** (n - 1)) >> n
    return min(max((mag if x >= 0 else -mag) + zp, qmin), qmax)


def test_requantize_matches_float_rounding_within_one_lsb():
    rng = np.random.default_rng(5)
    acc = rng.integers(-(2**24), 2**24, (64, 16))
    bias = rng.integers(-(2**12), 2**12, 16)
    real = rng.uniform(1e-6, 3e-4, 16)  # per output channel, like s_a s_w / s_out
    m, shift = quantize_multiplier(real)
    for relu, zp in ((False, 0), (True, -5), (False, 17)):
        got = np.asarray(
            requantize(acc, multiplier=m, shift=shift, zero_point=zp, bias=bias, relu=relu)
        )
        want = np.clip(np.round((acc + bias) * real) + zp, zp if relu else -128, 127)
        assert got.dtype == np.int32 and np.max(np.abs(got - want)) <= 1
        assert np.mean(got == want) > 0.99


def test_requantize_is_exact_for_any_int64_accumulator():
    rng = np.random.default_rng(6)
    wide = [rng.integers(-(2**e), 2**e, 100) for e in (62, 47, 40, 31, 10)]
    acc = np.concatenate([*wide, [2**63 - 1, -(2**63) + 1, 0, 1, -1, 2**31, -(2**31)]])
    for real in (2.0**-32, 3.3e-10, 1e-6, 0.37, 5.5, 2.0**20):
        m, s = quantize_multiplier(real)
        got = np.asarray(requantize(acc, multiplier=m, shift=s, out_bits=16, zero_point=3))
        want = [python_requantize(int(x), int(m), int(s), 3, -(2**15), 2**15 - 1) for x in acc]
        np.testing.assert_array_equal(got, want)


@settings(max_examples=200, deadline=None)
@given(real=st.floats(2.0**-32, 2.0**29))
def test_quantize_multiplier_reconstructs_the_scale(real):
    m, s = quantize_multiplier(real)
    assert 2**30 <= int(m) < 2**31 and -30 <= int(s) <= 31
    assert abs(int(m) * 2.0 ** -(31 + int(s)) / real - 1) <= 2.0**-31


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: quantize_multiplier(0.0), "real_scale must be finite and in"),
        (lambda: quantize_multiplier([0.1, np.nan]), "real_scale must be finite"),
        (lambda: quantize_multiplier(2.0**31), "real_scale must be finite and in"),
        (lambda: requantize([1], multiplier=2**29, shift=0), "multiplier must be an integer"),
        (lambda: requantize([1], multiplier=2**30, shift=40), "shift must be an integer in"),
        (lambda: requantize([1], multiplier=2**30, shift=0, out_bits=1), "out_bits must be"),
    ],
)
def test_requantize_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_requantize_with_an_accumulator_bound_takes_the_short_path_with_the_same_bits():
    # |acc + bias| < 2^31: one multiply-add and a shift, against exact Python integers, at every
    # shift and the extreme multipliers
    rng = np.random.default_rng(7)
    bias = np.array([0, 5, -5, 2**20])
    acc = np.concatenate([rng.integers(-(2**31) + 2**20 + 1, 2**31 - 2**20, 400), [0, 1, -1]])
    acc = np.concatenate([acc, [2**31 - 1 - 2**20, -(2**31) + 1 + 2**20]])[:, None]
    for shift in range(-30, 32):
        for mult in (2**30, 2**31 - 1, 1518500250):
            m, s = np.full(4, mult), np.full(4, shift)
            kw = dict(multiplier=m, shift=s, bias=bias, out_bits=16, zero_point=-7)
            got = np.asarray(requantize(acc, acc_bound=2**31 - 1 - 2**20, **kw))
            x = (acc + bias).reshape(-1)
            want = [python_requantize(int(v), mult, shift, -7, -(2**15), 2**15 - 1) for v in x]
            np.testing.assert_array_equal(got.reshape(-1), want)
    with pytest.raises(ValueError, match="acc_bound must be an integer"):
        requantize([1], multiplier=2**30, shift=0, acc_bound=-1)
