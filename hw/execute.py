"""Bit-accurate integer GEMM on the simulated MAC array, and integer-only requantization.

:func:`run_gemm` returns what an array with an ``acc_bits`` accumulator computes for
``(M x K) . (K x N)`` integer operands. Per output element, with exact products
``p_k = a[m, k] w[k, n]`` and the running sum ``s`` (``s_0 = 0``):

    s <- f(s + p_k)                      for k = 0, 1, ..., K - 1 (increasing k)
    s <- f(spill(s))                     after the last k of every chunk but the last

where ``f`` wraps modulo ``2^acc`` into ``[-2^(acc-1), 2^(acc-1) - 1]`` (``wrap``) or clamps to
it (``saturate``). K is reduced in chunks of ``tile_k`` if given, else of one fold's K-extent:
``rows`` for ws and is (K runs down the rows), all of K for os (K is temporal, the PE keeps the
sum); columns never change the numbers. With ``psum_bits`` the sum leaves the array between
chunks as a ``psum_bits`` word: ``spill(s) = f_psum(round(s / 2^d)) 2^d``, ``d = acc - psum``,
rounding half up (``floor(s / 2^d + 1/2)``: add, shift), ``f_psum`` wrapping or saturating it.

>>> import numpy as np
>>> a, w = np.array([[100, 100, -50]]), np.ones((3, 1), np.int8)
>>> run_gemm(a, w, rows=4, cols=4, dataflow="ws", acc_bits=8).tolist()  # 150 wraps to -106
[[-106]]
>>> run_gemm(a, w, rows=4, cols=4, dataflow="ws", acc_bits=8, overflow="saturate").tolist()
[[77]]

Fast paths give the same bits: exact matmuls wrapped once (wrapping is associative; nothing
clamps if ``K max|a| max|w| < 2^(acc-1)``), per-chunk matmuls and a scan over chunks with
``psum_bits``; only ``saturate`` near overflow walks k one step at a time.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from hw.quant import qrange
from hw.types import DATAFLOWS
from hw.x64 import x64

OVERFLOW_POLICIES = ("wrap", "saturate")
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
# Operand dtype of each matmul method (see _dot_method); int8 accumulates in int32.
_DOT_DTYPES = dict(i8=jnp.int8, f32=jnp.float32, f64=jnp.float64, i32=jnp.int32, i64=jnp.int64)


def _int_in(field: str, v, lo: int, hi: int) -> None:
    if isinstance(v, bool) or not isinstance(v, int | np.integer) or not lo <= v <= hi:
        raise ValueError(f"{field} must be an integer in {lo}..{hi}, got {v!r}")


def _check_ints(field: str, values, lo: int, hi: int) -> None:
    if not _traced(values):  # every element an integer in lo..hi
        v = np.asarray(values, np.float64).reshape(-1)
        bad = v[~((v >= lo) & (v <= hi) & (v == np.round(v)))]
        if bad.size:
            raise ValueError(f"{field} must be an integer in {lo}..{hi}, got {bad[0]:g}")


def _operand(name: str, x):
    x = x if hasattr(x, "dtype") else np.asarray(x)
    if x.ndim != 2 or not jnp.issubdtype(x.dtype, jnp.integer) or x.size == 0:
        raise ValueError(f"{name} must be a non-empty 2-D integer array, got {x.dtype} {x.shape}")
    return x


def _value_ranges(a, w, known=None) -> tuple[int, int, int, int]:
    """``(min a, max a, min w, max w)``: the values (checked to fit in int32) when concrete, in
    one device round trip; when traced, the ``known`` bounds if given, else the dtypes' ranges,
    either clipped to int32."""
    if _traced(a, w):
        dtype_ranges = [v for x in (a, w) for v in (jnp.iinfo(x.dtype).min, jnp.iinfo(x.dtype).max)]
        ranges = dtype_ranges if known is None else known
        return tuple(min(max(int(v), _INT32_MIN), _INT32_MAX) for v in ranges)
    if isinstance(a, np.ndarray) and isinstance(w, np.ndarray):
        pairs = ((a.min(), a.max()), (w.min(), w.max()))
    else:
        pairs = jax.device_get(_minmax(jnp.asarray(a), jnp.asarray(w)))
    ranges = tuple(int(v) for pair in pairs for v in pair)
    for name, lo, hi in (("a", *ranges[:2]), ("w", *ranges[2:])):
        if lo < _INT32_MIN or hi > _INT32_MAX:
            raise ValueError(f"{name} values must fit in int32, got range {lo}..{hi}")
    return ranges


_minmax = jax.jit(lambda a, w: (jnp.stack([a.min(), a.max()]), jnp.stack([w.min(), w.max()])))


def _traced(*xs) -> bool:
    return any(isinstance(x, jax.core.Tracer) for x in xs)


@functools.cache
def _int8_dot_is_exact() -> bool:
    """Whether the backend's int8 x int8 -> int32 matmul is exact (no saturating kernels)."""
    a = np.full((4, 512), -128, np.int8)
    a[1] = 127  # products of +-2^7 operands, sums up to 2^23
    with jax.ensure_compile_time_eval():  # a concrete check, also when first called under jit
        got = np.asarray(_dot(jnp.asarray(a), jnp.asarray(a.T), "i8", (((1,), (0,)), ((), ()))))
    return bool(np.array_equal(got, a.astype(np.int64) @ a.T.astype(np.int64)))


def _dot_method(bound: int, fits_int8: bool, mod_bits: int) -> str:
    """Fastest matmul that is exact modulo ``2^mod_bits`` when no sum of products exceeds
    ``bound`` in magnitude: int8 with int32 accumulation, float32 (integers below 2^24 are
    exact), float64 (below 2^53), int32 (exact modulo 2^32) or int64 (modulo 2^64)."""
    if fits_int8 and (bound < 2**31 or mod_bits <= 32) and _int8_dot_is_exact():
        return "i8"
    if bound <= 2**24:
        return "f32"
    if bound <= 2**53:
        return "f64"
    return "i32" if mod_bits <= 32 else "i64"


def _dot(x, y, method: str, dims):
    """``lax.dot_general`` in the method's dtypes, returned as int64."""
    op_t = _DOT_DTYPES[method]
    x, y, acc_t = x.astype(op_t), y.astype(op_t), jnp.int32 if method == "i8" else op_t
    out = jax.lax.dot_general(x, y, dims, jax.lax.Precision.HIGHEST, preferred_element_type=acc_t)
    return out.astype(jnp.int64)


def _fit(x, bits: int, saturate: bool):
    """Wrap ``x`` (int64) modulo ``2^bits`` into, or clamp it to, ``[-2^(b-1), 2^(b-1) - 1]``."""
    if bits >= 64:
        return x
    if saturate:
        return jnp.clip(x, -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    return jnp.right_shift(jnp.left_shift(x, 64 - bits), 64 - bits)


def _saturating_add(s, p, acc_bits: int):
    """``clamp(s + p)`` to the accumulator range; at 64 bits an int64 overflow clamps."""
    if acc_bits < 64:  # |s| <= 2^62 and |p| <= 2^62: s + p fits in int64
        return _fit(s + p, acc_bits, True)
    r = s + p  # wraps on int64 overflow, which flips the sign away from that of s and p
    up, down = (s >= 0) & (p > 0) & (r < 0), (s < 0) & (p < 0) & (r >= 0)
    return jnp.where(up, 2**63 - 1, jnp.where(down, -(2**63), r))


def _spill(s, acc_bits: int, psum_bits: int, saturate: bool):
    """``f_psum(floor(s / 2^d + 1/2)) * 2^d``, ``d = acc - psum``, without int64 overflow."""
    d = acc_bits - psum_bits
    word = jnp.right_shift(s, d) + (jnp.right_shift(s, d - 1) & 1)
    return jnp.left_shift(_fit(word, psum_bits, saturate), d)


def _chunks(a, w, chunk: int):
    """Zero-pad K to whole chunks: ``(M, C, chunk)`` and ``(C, chunk, N)``."""
    pad = -a.shape[1] % chunk
    a, w = jnp.pad(a, ((0, 0), (0, pad))), jnp.pad(w, ((0, pad), (0, 0)))
    return a.reshape(a.shape[0], -1, chunk), w.reshape(-1, chunk, w.shape[1])


@functools.partial(jax.jit, static_argnames=("chunk", "method", "acc_bits", "psum_bits"))
def _gemm_wrapping(a, w, *, chunk: int, method: str, acc_bits: int, psum_bits: int | None):
    """Per-chunk matmuls (exact modulo ``2^acc``), summed with wrapping; with ``psum_bits``
    a scan over chunks spills between them."""
    a3, w3 = _chunks(a, w, chunk)
    parts = _dot(a3, w3, method, (((2,), (1,)), ((1,), (0,))))  # shape=(C, M, N)
    if psum_bits is None:
        return _fit(jnp.sum(parts, axis=0), acc_bits, False)

    def step(s, part):
        return _spill(_fit(s + part, acc_bits, False), acc_bits, psum_bits, False), None

    s = jax.lax.scan(step, jnp.zeros(parts.shape[1:], jnp.int64), parts[:-1])[0]
    return _fit(s + parts[-1], acc_bits, False)


@functools.partial(jax.jit, static_argnames=("chunk", "acc_bits", "psum_bits"))
def _gemm_saturating(a, w, *, chunk: int, acc_bits: int, psum_bits: int | None):
    """Sequential saturating adds over k (one M x N outer product a step), spilling per chunk."""
    a3, w3 = _chunks(a.astype(jnp.int64), w.astype(jnp.int64), chunk)
    a3 = jnp.transpose(a3, (1, 2, 0))  # shape=(C, chunk, M)

    def k_step(s, xs):
        return _saturating_add(s, xs[0][:, None] * xs[1][None, :], acc_bits), None

    def chunk_step(s, xs):
        return _spill(jax.lax.scan(k_step, s, xs)[0], acc_bits, psum_bits, True), None

    s = jnp.zeros((a.shape[0], w.shape[1]), jnp.int64)
    if psum_bits is not None:
        s = jax.lax.scan(chunk_step, s, (a3[:-1], w3[:-1]))[0]
    return jax.lax.scan(k_step, s, (a3[-1], w3[-1]))[0]


def _chunk_size(a, w, rows, cols, dataflow, acc_bits, overflow, tile_k, psum_bits) -> int:
    """Validate :func:`run_gemm`'s arguments (one-line ``ValueError``); return the K chunk."""
    (m, k), (k_w, n) = a.shape, w.shape
    if k != k_w:
        raise ValueError(f"a is {m}x{k} but w is {k_w}x{n}: the inner dimensions must match")
    known = isinstance(dataflow, str | int | np.integer) and not isinstance(dataflow, bool)
    if not known or dataflow not in (*DATAFLOWS, *range(len(DATAFLOWS))):
        raise ValueError(f"dataflow must be one of os, ws, is or a code 0..2, got {dataflow!r}")
    _int_in("rows", rows, 1, 2**31)
    _int_in("cols", cols, 1, 2**31)
    _int_in("acc_bits", acc_bits, 2, 64)
    if tile_k is not None:
        _int_in("tile_k", tile_k, 1, 2**31)
    if psum_bits is not None:
        _int_in("psum_bits", psum_bits, 1, acc_bits - 1)
    if overflow not in OVERFLOW_POLICIES:
        raise ValueError(f"overflow must be 'wrap' or 'saturate', got {overflow!r}")
    return k if tile_k is None and dataflow in ("os", 0) else min(tile_k or rows, k)


@x64
def run_gemm(
    a,
    w,
    *,
    rows,
    cols,
    dataflow,
    acc_bits,
    overflow="wrap",
    tile_k=None,
    psum_bits=None,
    ranges=None,
):
    """``a @ w`` (int64, ``M x N``) as the array computes it; see the module docstring.

    ``a`` (``M x K``) and ``w`` (``K x N``) are NumPy or JAX integer arrays whose values fit in
    int32; ``rows``, ``cols`` and ``tile_k`` are positive ints; ``dataflow`` is ``"os"``,
    ``"ws"``, ``"is"`` or its code 0..2; ``acc_bits`` is 2..64 and ``psum_bits`` (``None``: no
    spill rounding) below it. ``ranges`` (``(a_lo, a_hi, w_lo, w_hi)``, ints) bounds the
    values of traced operands, as their bit widths give them, where their dtypes are wider: a
    tighter bound picks a faster exact matmul (float32 below 2^24). Bad arguments raise a
    one-line ``ValueError``.
    """
    a, w = _operand("a", a), _operand("w", w)
    chunk = _chunk_size(a, w, rows, cols, dataflow, acc_bits, overflow, tile_k, psum_bits)
    k, n_chunks = a.shape[1], -(-a.shape[1] // chunk)
    spill = psum_bits if n_chunks > 1 else None
    chunk = chunk if spill else k  # without spills the chunking does not change the numbers
    a_lo, a_hi, w_lo, w_hi = _value_ranges(a, w, ranges)
    a_max, w_max = max(-a_lo, a_hi), max(-w_lo, w_hi)
    fits_int8 = min(a_lo, w_lo) >= -128 and max(a_hi, w_hi) <= 127
    bound = k * a_max * w_max  # no partial sum of products exceeds this in magnitude
    # Room psum rounding needs: a spill moves s by <= 2^(d-1); its word tops at 2^(acc-1) - 2^d.
    headroom = n_chunks * 2 ** (acc_bits - spill - 1) + 2 ** (acc_bits - spill) if spill else 1
    limit, saturate = 2 ** (acc_bits - 1), overflow == "saturate"
    if saturate and limit < bound + headroom and bound < 2**63 and not _traced(a, w):
        # The per-element bound max_mn sum_k |a_mk w_kn| is tighter; one int64 matmul gives it.
        abs_a, abs_w = jnp.abs(jnp.asarray(a, jnp.int64)), jnp.abs(jnp.asarray(w, jnp.int64))
        method = _dot_method(bound, a_max < 128 and w_max < 128, 64)
        sums = _gemm_wrapping(abs_a, abs_w, chunk=k, method=method, acc_bits=64, psum_bits=None)
        bound = int(jnp.max(sums))
    if bound + headroom <= limit or not saturate:  # wrap, or saturate that never clamps
        method = _dot_method(chunk * a_max * w_max, fits_int8, acc_bits)
        return _gemm_wrapping(a, w, chunk=chunk, method=method, acc_bits=acc_bits, psum_bits=spill)
    return _gemm_saturating(a, w, chunk=chunk, acc_bits=acc_bits, psum_bits=spill)


def quantize_multiplier(real_scale):
    """``(multiplier, shift)`` with ``real_scale ~= multiplier * 2^-(31 + shift)`` and
    ``multiplier`` in ``[2^30, 2^31)`` (gemmlowp's quantized multiplier, relative error below
    ``2^-31``). Works per channel: returns int64 NumPy arrays shaped like ``real_scale``.

    >>> m, shift = quantize_multiplier(0.75 / 64)
    >>> int(m), int(shift), int(m) == 3 * 2**29
    (1610612736, 6, True)
    """
    r = np.asarray(real_scale, dtype=np.float64)
    frac, exp = np.frexp(np.where(np.isfinite(r) & (r > 0), r, 0.0))  # frac in [0.5, 1) or 0
    multiplier = np.round(frac * 2.0**31).astype(np.int64)
    carry = multiplier == 2**31
    multiplier, shift = np.where(carry, 2**30, multiplier), -(exp + carry).astype(np.int64)
    bad = r[(multiplier == 0) | (shift < -30) | (shift > 31)]
    if bad.size:
        raise ValueError(f"real_scale must be finite and in [2**-32, 2**30), got {bad[0]}")
    return multiplier, shift


@functools.partial(jax.jit, static_argnames=("qmin", "qmax", "relu", "small"))
def _requantize(x, multiplier, shift, zero_point, *, qmin: int, qmax: int, relu: bool, small):
    """``clip(sign(x) floor((|x| m + 2^(n-1)) / 2^n) + z)``, ``n = 31 + shift``, in int64: with
    ``|x| = h 2^31 + l`` and ``L = l m + 2^(n-1)`` it is ``(h m + L >> 31) >> (n - 31)`` for
    ``n >= 31``, ``L >> n`` for ``n < 31`` (where ``h > 0`` saturates); all terms < 2^63.
    ``small`` (every ``|x| < 2^31``, so ``h = 0``): ``L >> n`` alone, ``L < 2^62 + 2^61``."""
    big = 2**40  # beyond any out_bits range, so clipping it gives qmin or qmax
    m, n = multiplier.astype(jnp.int64), 31 + shift.astype(jnp.int64)
    if small:
        ax = jnp.abs(x)
        mag = jnp.minimum(jnp.right_shift(ax * m + jnp.left_shift(1, n - 1), n), big)
    else:
        ax = jnp.abs(jnp.maximum(x, -(2**63) + 1))
        h, low = jnp.right_shift(ax, 31), ax & (2**31 - 1)
        lo_sum = low * m + jnp.left_shift(1, n - 1)
        wide = jnp.right_shift(h * m + jnp.right_shift(lo_sum, 31), jnp.maximum(n - 31, 0))
        narrow = jnp.where(h == 0, jnp.right_shift(lo_sum, jnp.minimum(n, 62)), big)
        mag = jnp.minimum(jnp.where(n >= 31, wide, narrow), big)
    q = jnp.where(x < 0, -mag, mag) + zero_point
    return jnp.clip(q, jnp.maximum(qmin, zero_point) if relu else qmin, qmax)


@x64
def requantize(
    acc,
    *,
    multiplier,
    shift,
    zero_point=0,
    bias=None,
    out_bits=8,
    signed=True,
    relu=False,
    acc_bound=None,
):
    """Integer-only requantization of accumulators to ``out_bits`` (Jacob et al., CVPR 2018):

        out = clip(round((acc + bias) * multiplier / 2^(31 + shift)) + zero_point, lo, qmax)

    with ``lo = max(qmin, zero_point)`` under ``relu`` (ReLU clips at real 0.0), else ``qmin``.
    ``round`` rounds the exact product once, half away from zero, overflow-free for any int64
    ``acc + bias``; gemmlowp/TFLite round twice (``SaturatingRoundingDoublingHighMul``, then
    ``RoundingDivideByPOT``) and can differ by one on ties. ``multiplier`` and ``shift`` come
    from :func:`quantize_multiplier`; they, ``bias`` and ``zero_point`` broadcast against
    ``acc`` (per channel along the last axis). Returns int32. ``acc_bound`` (an int) is a bound
    on ``|acc|`` that the caller guarantees (from the operands' bit widths): with a concrete
    ``bias`` it lets the rounding take a shorter path when ``|acc + bias| < 2^31``.

    >>> m, s = quantize_multiplier(0.25)
    >>> requantize(jnp.array([10, -10, 6, 1000]), multiplier=m, shift=s).tolist()
    [3, -3, 2, 127]
    """
    _int_in("out_bits", out_bits, 2, 16)
    _check_ints("multiplier", multiplier, 2**30, 2**31 - 1)
    _check_ints("shift", shift, -30, 31)
    qmin, qmax = qrange(out_bits, bool(signed))
    if acc_bound is not None:
        _int_in("acc_bound", acc_bound, 0, 2**63 - 1)
    small = acc_bound is not None and acc_bound + _max_abs(bias) < 2**31
    x = jnp.asarray(acc, jnp.int64) + (0 if bias is None else jnp.asarray(bias, jnp.int64))
    m, n, z = (jnp.asarray(v, jnp.int64) for v in (multiplier, shift, zero_point))
    q = _requantize(x, m, n, z, qmin=qmin, qmax=qmax, relu=bool(relu), small=small)
    return q.astype(jnp.int32)


def _max_abs(bias) -> float:
    """``max |bias|`` of a concrete bias (0 for none), infinity for a traced one."""
    if bias is None:
        return 0
    if _traced(bias):
        return float("inf")
    return int(np.max(np.abs(np.asarray(bias, np.int64)), initial=0))
