"""The NPU's vector unit: softmax, layernorm, GELU, ReLU, residual add and pooling, by precision.

Every op takes float arrays (the dequantized values an NPU holds), returns float32, is jitted
(``precision``, ``axis``, ``window`` and ``stride`` static) and runs at one of :data:`PRECISIONS`:

- ``fp32``: the exact reference, what the host CPU computes on fallback (``jax.nn.softmax``,
  exact-erf ``jax.nn.gelu``, two-pass ``jax.nn.standardize``, ``lax.reduce_window``).
- ``fp16``: elementwise math in float16 (rounded after every step; ``exp``, ``tanh`` in float16;
  GELU by the tanh approximation, Hendrycks & Gimpel 2016); reductions (softmax sum, layernorm
  mean and variance, average-pool sum) accumulate in float32, as fp16 vector units do.
- ``int16``: 16-bit fixed point. A tensor is held as ``q = round(x 2^f)`` with a per-tensor
  power-of-two scale, ``f`` in [0, 24] the most fractional bits with ``max|x| 2^f <= 2^15 - 1``
  (what calibration would pick). Right shifts round half up, ``(q + 2^(s-1)) >> s``; stored
  values saturate to 16 bits. Non-linear ops follow I-BERT (Kim et al., ICML 2021): i-exp with
  a Newton-Raphson reciprocal for softmax, i-GELU, integer mean/variance and i-sqrt for
  layernorm. Intermediates fit 32 bits except softmax's exponential sum and its product with
  the reciprocal, and layernorm's variance, division and affine (up to 50 bits, as a wide
  accumulator would hold them); the simulation holds integers in int32 where their bounds
  (derived from the widths, per op) allow and in int64 elsewhere, with the same bits.

``ERROR_BOUNDS[(op, precision)]`` is the largest absolute error against fp32 over the
documented input range, checked by tests. Simple ops' bounds are worst cases by analysis (half
a storage step per rounding); the others are measured maxima on random and edge inputs plus a
margin (measured in brackets):

================  ==================  ==================  =====================================
op                int16               fp16                input range
================  ==================  ==================  =====================================
softmax           1.5e-3 [9.2e-4]     2.0e-3 [1.3e-3]     logits in [-8, 8], rows <= 1024
layernorm         1.5e-3 [7.9e-4]     1.2e-2 [8.6e-3]     x ~ N(0, 1), 16..1024 features,
                                                          gamma ~ N(1, .1^2), beta ~ N(0, .1^2)
gelu              2.0e-2 [1.9e-2]     5.0e-3 [3.4e-3]     x in [-8, 8]
relu, max_pool2d  2.5e-4 = 2^-12      2.0e-3 = 2^-9       x in [-8, 8]
add               1.0e-3 ~ 2^-10      8.0e-3 ~ 2^-7       x, y in [-8, 8]
avg_pool2d        7.5e-4 ~ 3 2^-12    4.0e-3 ~ 2^-8       x in [-8, 8]
================  ==================  ==================  =====================================

int16 GELU's error is i-GELU's own (0.0155 at ``x = -2.5`` alone). Rows of random logits sum
to 1 within the softmax bound (measured: 6.0e-4 for int16, 5.1e-4 for fp16 at 1024 columns); an
adversarial int16 row can lose up to ``n 2^-17`` of its sum, as probabilities below half a
Q0.16 step round to 0. fp32 is exact: every ``(op, "fp32")`` bound is 0.

>>> import jax.numpy as jnp
>>> x = jnp.array([1.0, 2.0, 3.0])
>>> [round(float(p), 3) for p in softmax(x, precision="int16")]
[0.09, 0.245, 0.665]
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

from hw.x64 import x64

PRECISIONS = ("int16", "fp16", "fp32")
OPS = ("softmax", "layernorm", "gelu", "relu", "add", "max_pool2d", "avg_pool2d")

_BOUNDS = {  # op: (int16, fp16) bounds, see the module docstring's table
    "softmax": (1.5e-3, 2.0e-3),
    "layernorm": (1.5e-3, 1.2e-2),
    "gelu": (2.0e-2, 5.0e-3),
    "relu": (2.5e-4, 2.0e-3),
    "add": (1.0e-3, 8.0e-3),
    "max_pool2d": (2.5e-4, 2.0e-3),
    "avg_pool2d": (7.5e-4, 4.0e-3),
}
ERROR_BOUNDS = {(op, p): b for op, (i16, f16) in _BOUNDS.items() for p, b in
                (("int16", i16), ("fp16", f16), ("fp32", 0.0))}  # fmt: skip

_F16 = jnp.float16
_WORD_MIN, _WORD_MAX = -(2**15), 2**15 - 1


def _check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")


def error_bound(op: str, precision: str) -> float:
    """The stated max absolute error of ``op`` at ``precision`` (:data:`ERROR_BOUNDS`).

    >>> error_bound("relu", "fp32")
    0.0
    """
    if op not in OPS:
        raise ValueError(f"op must be one of {', '.join(OPS)}, got {op!r}")
    _check_precision(precision)
    return ERROR_BOUNDS[(op, precision)]


# ---- fixed point (int16): q = round(x 2^f), held in int32 wherever every intermediate provably
# fits (each op states its bound), else in int64; both give the same bits (tests compare them)

_WIDE = jnp.int64
_IEXP_MAX = 2**22 + 2**11
"""Largest i-exp output (``exp(0)`` in Q1.22 plus the polynomial's error; a test walks every
Q4.11 input): a softmax row of ``n`` columns sums in int32 when ``n _IEXP_MAX < 2^31``."""


def _frac_bits(x):
    """Per-tensor scale: the most fractional bits f in [0, 24] with ``max|x| 2^f <= 2^15 - 1``."""
    f = jnp.floor(jnp.log2(_WORD_MAX / jnp.max(jnp.abs(x))))  # an all-zero x gives inf -> 24
    return jnp.clip(f, 0, 24).astype(jnp.int32)


def _pow2(n):
    """``2^n`` as float32 for an integer scalar ``n`` in [-126, 127] (its exponent field, one
    instruction); multiplying by it is exact (as ``ldexp``) wherever the product neither
    overflows nor leaves the normal range."""
    biased = jnp.left_shift(jnp.asarray(n).astype(jnp.int32) + 127, 23)
    return jax.lax.bitcast_convert_type(biased, jnp.float32)


def _sat(q):
    return jnp.clip(q, _WORD_MIN, _WORD_MAX)


def _quant(x, f, dtype=_WIDE):
    """``sat(round(x 2^f))``; ``|x| 2^f`` stays below 2^15 (or f = 0), so the product is exact."""
    return _sat(jnp.round(x * _pow2(f))).astype(dtype)


def _dequant(q, f):
    return q.astype(jnp.float32) * _pow2(-f)


def _shift(q, n):
    """``q 2^n``: a left shift, or for ``n < 0`` a right shift by ``r = -n`` rounding half up,
    ``(q + 2^(r-1)) >> r``. In a ``W``-bit dtype a shift by ``r > W - 2`` gives 0, the rounded
    value for ``|q| < 2^(W-2)``; callers keep ``q + 2^(r-1)`` and left-shifted values in range.
    A constant ``n`` (a Python int) is one or two instructions."""
    if isinstance(n, int):
        return q << n if n >= 0 else (q + (1 << (-n - 1))) >> -n
    top = jnp.iinfo(q.dtype).bits - 2
    n = jnp.asarray(n).astype(q.dtype)
    r = jnp.clip(-n, 0, top)
    half = jnp.left_shift(jnp.ones((), q.dtype), r) >> 1
    down = jnp.where(-n > top, 0, jnp.right_shift(q + half, r))
    return jnp.where(n >= 0, jnp.left_shift(q, jnp.maximum(n, 0)), down)


def _requant(acc, frac):
    """A wide accumulator with ``frac`` fractional bits stored as a 16-bit word, dequantized.
    The word's scale ``f`` makes ``|acc| 2^(f - frac) <= 2^15``: a right shift by at most
    ``frac - 14 + log2 max|acc|`` (17 for an int32 ``acc`` and ``frac <= 35``)."""
    acc = _held(acc)
    f = _frac_bits(_dequant(acc, frac))
    return _dequant(_sat(_shift(acc, f - frac)), f)


def _int_sum(q, axis: int):
    """The sum of integers ``q`` along ``axis`` (kept), in ``q``'s dtype (the caller bounds
    it), accumulated in float64: exact below 2^53 in any order, and XLA's float reductions
    are the vectorised ones on CPU."""
    return jnp.sum(q.astype(jnp.float64), axis, keepdims=True).astype(q.dtype)


def _held(q):
    """``q`` (arrays) computed once and stored: XLA would otherwise recompute the arithmetic
    that produced it inside each pass that reads it (a per-row value in every element)."""
    return jax.lax.optimization_barrier(q)


def _iexp(d):
    """exp(d) in Q1.22 for d <= 0 in Q4.11, by I-BERT's i-exp (Kim et al., ICML 2021).

    ``d = -z ln2 + p`` with ``p`` in (-ln2, 0] (``z = floor(-d log2(e))`` by a Q.14 multiply,
    ``ln2`` in Q.15 so that ``z ln2`` is exact to 2^-15), ``exp(p) ~ 0.3585 (p + 1.353)^2 +
    0.344`` in Q1.14 (relative error <= 3.1e-3), ``exp(d) = exp(p) 2^(8 - z)``: the 8 extra
    bits keep the tail of a long row (down to exp(-16) ~ 2^-23) in the sum. For ``d`` in
    [-2^15, 0] every step fits int32 (``-d log2(e) 2^14 < 2^30``, ``t^2 < 2^24``; a test walks
    all inputs), the result at most :data:`_IEXP_MAX`.
    """
    z = ((-d) * round(math.log2(math.e) * 2**14)) >> 25
    t = d + _shift(z * round(math.log(2) * 2**15), -4) + round(1.353 * 2**11)  # p + 1.353, Q.11
    e = _shift(_shift(t * t, -8) * round(0.3585 * 2**15), -15) + round(0.344 * 2**14)
    return _shift(e, 8 - z)


def _reciprocal(sn):
    """``1 / sn`` in Q2.14 for ``sn`` in [1/2, 1) (Q0.15): ``r0 = 48/17 - 32/17 sn`` (relative
    error <= 1/17), then three Newton-Raphson steps ``r <- r (2 - sn r)``, each squaring the
    error. Every product is below 2^31 (``sn r <= 2^30``; a test walks all 2^14 inputs)."""
    r = round(48 / 17 * 2**14) - _shift(round(32 / 17 * 2**14) * sn, -15)
    for _ in range(3):
        r = _shift(r * (2**15 - _shift(sn * r, -15)), -14)
    return r


def _divide_uq16(e, s):
    """``e / s`` as an unsigned Q0.16 word for ``0 <= e <= s``, by a Newton-Raphson reciprocal.

    No divider: ``s = sn 2^(k+1)`` with ``sn`` in [1/2, 1) (Q0.15) from a leading-zero count,
    ``r = 1 / sn`` (:func:`_reciprocal`), ``e / s = e r 2^-(k+1)``, saturating at
    ``1 - 2^-16``. A zero ``s`` gives 0. ``e r`` reaches ``2^38`` (a 34-bit sum times a 16-bit
    reciprocal): that one product is taken in int64 whatever the dtype of ``e`` and ``s``.
    """
    live = s > 0
    s = jnp.where(live, s, 1)
    k = jnp.iinfo(s.dtype).bits - 1 - jax.lax.clz(s)
    k, r = _held((k, _reciprocal(_shift(s, 14 - k))))  # once per row
    q = _shift(e.astype(_WIDE) * r, (1 - k).astype(_WIDE))
    return jnp.where(live, jnp.minimum(q, 2**16 - 1), 0).astype(e.dtype)


def _floordiv(a, b):
    """``a // b`` for int64 ``|a|, |b| < 2^52``, ``b > 0``: a float64 quotient corrected by one
    either way (exact; vectorised float division is much faster than int64 division on CPUs)."""
    q = jnp.floor(a.astype(jnp.float64) / b.astype(jnp.float64)).astype(jnp.int64)
    q = jnp.where(q * b > a, q - 1, q)
    return jnp.where((q + 1) * b <= a, q + 1, q)


def _isqrt(n):
    """``floor(sqrt(n))`` for int64 ``n >= 0`` by Newton's method from above (I-BERT's i-sqrt).

    Starts at ``2^ceil(bits(n) / 2) >= sqrt(n)``; ``x <- floor((x + floor(n / x)) / 2)``
    decreases to ``floor(sqrt(n))`` and stays there; eight steps cover ``n < 2^62``.
    """
    bits = 64 - jax.lax.clz(n)
    x = jnp.left_shift(jnp.int64(1), (bits + 1) // 2)
    for _ in range(8):
        x = jnp.minimum(x, (x + jax.lax.div(n, jnp.maximum(x, 1))) >> 1)
    return x


def _isqrt_by_float(n):
    """:func:`_isqrt` on its domain ``0 <= n < 2^62`` (the same values), in one pass: the
    float64 root is within ``2^-21`` of ``sqrt(n)``, so its floor is off by at most one, which
    one exact comparison each way corrects (``(s + 1)^2 < 2^63``). The hardware iterates
    Newton's steps; the simulation takes this shortcut to the same integers."""
    s = jnp.floor(jnp.sqrt(n.astype(jnp.float64))).astype(jnp.int64)
    s = jnp.where(s * s > n, s - 1, s)
    return jnp.where((s + 1) * (s + 1) <= n, s + 1, s)


def _narrow_when(fits, kernel):
    """``kernel(dtype)`` with ``dtype`` int32 where ``fits`` (a traced bool), else int64: both
    branches are compiled, one runs."""
    return jax.lax.cond(fits, lambda: kernel(jnp.int32), lambda: kernel(_WIDE))


# ---- the ops


@x64
@functools.partial(jax.jit, static_argnames=("axis", "precision"))
def softmax(x, axis: int = -1, precision: str = "fp32", mask=None):
    """Softmax along ``axis``; ``mask`` (boolean, broadcast to ``x``) False excludes a position.

    Excluded positions get probability 0; a row with every position excluded gives zeros.
    int16: ``x`` at its per-tensor scale, ``d = x - max`` requantized to Q4.11 (``d <= -16``,
    where exp < 2^-23, gives 0), i-exp to Q1.22 (24 bits), their sum (a 34-bit accumulator for
    1024 columns), then ``e / sum`` as an unsigned Q0.16 word by a Newton-Raphson reciprocal
    (``_divide_uq16``). fp16: ``exp(x - max)`` in float16, the sum in float32, its reciprocal
    rounded to float16, the product in float16.

    >>> [round(float(p), 4) for p in softmax(jnp.zeros(2), precision="fp16")]
    [0.5, 0.5]
    >>> softmax(jnp.ones(3), mask=jnp.array([True, False, True])).tolist()
    [0.5, 0.0, 0.5]
    """
    _check_precision(precision)
    x = jnp.asarray(x, jnp.float32)
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis must be in [-{x.ndim}, {x.ndim}), got {axis}")
    keep = jnp.ones(x.shape, bool)
    if mask is not None:
        mask = jnp.asarray(mask, bool)
        try:
            keep = jnp.broadcast_to(mask, x.shape)
        except ValueError:
            raise ValueError(f"mask shape {mask.shape} does not broadcast to x {x.shape}") from None
    live = jnp.any(keep, axis=axis, keepdims=True)
    if precision == "fp32":
        if mask is None:
            return jax.nn.softmax(x, axis=axis)
        return jnp.where(live, jax.nn.softmax(x, axis=axis, where=keep | ~live), 0.0)
    if precision == "fp16":
        h = jnp.where(keep, x.astype(_F16), -jnp.inf)
        e = jnp.where(keep, jnp.exp(h - jnp.where(live, h.max(axis, keepdims=True), 0)), 0)
        s = jnp.sum(e.astype(jnp.float32), axis, keepdims=True)
        r = jnp.where(live, 1 / jnp.where(live, s, 1), 0).astype(_F16)
        return (e * r).astype(jnp.float32)
    fits = x.shape[axis] * _IEXP_MAX < 2**31  # the row's sum of exponentials fits int32
    return _softmax_int16(x, keep, axis, jnp.int32 if fits else _WIDE)


def _softmax_int16(x, keep, axis: int, dtype):
    """int16 softmax (see :func:`softmax`) computed in ``dtype``: the codes and ``d`` fit 17
    and 28 bits (``q - max`` shifted left by at most 11), i-exp fits int32, the row sum
    ``n _IEXP_MAX``."""
    f = _frac_bits(jnp.where(keep, x, 0))
    q = jnp.where(keep, _quant(x, f, dtype), _WORD_MIN)
    top = jnp.max(q.astype(jnp.float32), axis, keepdims=True).astype(dtype)  # 16-bit: exact
    d = jnp.maximum(_shift(q - top, 11 - f), _WORD_MIN)
    e = _held(jnp.where(keep & (d > _WORD_MIN), _iexp(d), 0))
    return _dequant(_divide_uq16(e, _int_sum(e, axis)), 16)


@x64
@functools.partial(jax.jit, static_argnames="precision")
def layernorm(x, gamma, beta, eps: float = 1e-5, precision: str = "fp32"):
    """``(x - mean) / sqrt(var + eps) * gamma + beta`` over the last axis (biased variance).

    int16 (as I-BERT): integer mean and variance (rounded integer divisions), ``sigma =
    i-sqrt((var + eps) 2^16)`` with 8 extra fractional bits (exact below 2^62: for eps < 1/4),
    ``(x - mean) / sigma`` in Q4.11 (saturating at |16|, reached only beyond 16 standard
    deviations, i.e. > 257 features), then ``* gamma + beta`` at their own per-tensor scales,
    stored at the output's scale.
    fp16: ``x``, ``x - mean``, the scaled result and the affine in float16; mean and variance
    accumulated in float32, ``rsqrt(var + eps)`` in float32 then rounded to float16.

    >>> y = layernorm(jnp.array([1.0, 2.0, 3.0]), jnp.ones(3), jnp.zeros(3), precision="int16")
    >>> [round(float(v), 3) for v in y]
    [-1.225, 0.0, 1.225]
    """
    _check_precision(precision)
    x, gamma, beta = (jnp.asarray(a, jnp.float32) for a in (x, gamma, beta))
    if x.ndim < 1:
        raise ValueError("layernorm: x must have at least one axis (the features)")
    for name, a in (("gamma", gamma), ("beta", beta)):
        if a.shape != x.shape[-1:]:
            raise ValueError(f"layernorm: {name} shape must be {x.shape[-1:]}, got {a.shape}")
    if precision == "fp32":
        return jax.nn.standardize(x, -1, epsilon=eps, algorithm="stable") * gamma + beta
    if precision == "fp16":
        h = x.astype(_F16)
        mean = jnp.mean(h.astype(jnp.float32), -1, keepdims=True)
        var = jnp.mean(jnp.square(h.astype(jnp.float32) - mean), -1, keepdims=True)
        y = (h - mean.astype(_F16)) * jax.lax.rsqrt(var + eps).astype(_F16)
        return (y * gamma.astype(_F16) + beta.astype(_F16)).astype(jnp.float32)
    fits = x.shape[-1] < 2**14  # the row sum of 16-bit codes fits int32
    return _layernorm_int16(x, gamma, beta, eps, jnp.int32 if fits else _WIDE)


def _layernorm_int16(x, gamma, beta, eps, dtype):
    """int16 layernorm (see :func:`layernorm`): codes, their row sum and deviations (17 bits)
    in ``dtype``; the squares (34 bits) summed exactly in float64 (below 2^53 for rows under
    2^19); the per-row variance and sigma, the division ``dev 2^20 / sigma`` (38 bits) and the
    affine (``beta`` shifted by up to 35 bits, as gamma's and beta's scales fall) in int64."""
    n = x.shape[-1]
    f = _frac_bits(x)
    q = _quant(x, f, dtype)
    dev = q - (2 * _int_sum(q, -1) + n) // (2 * n)
    if dtype == _WIDE:
        squares = jnp.sum(dev * dev, -1, keepdims=True)
    else:
        squares = jnp.sum(jnp.square(dev.astype(jnp.float64)), -1, keepdims=True).astype(_WIDE)
    var = (2 * squares + n) // (2 * n)  # scale 2^-2f
    sigma = _held(_isqrt_by_float((var + jnp.round(jnp.ldexp(eps, 2 * f)).astype(_WIDE)) << 16))
    dev = dev.astype(_WIDE)
    y = _sat(_floordiv(2 * (dev << 19) + sigma, 2 * sigma))  # Q4.11: dev 2^19 / sigma, rounded
    fg, fb = _frac_bits(gamma), _frac_bits(beta)
    acc = y * _quant(gamma, fg) + _shift(_quant(beta, fb), 11 + fg - fb)
    return _requant(acc, 11 + fg)


@x64
@functools.partial(jax.jit, static_argnames="precision")
def gelu(x, precision: str = "fp32"):
    """GELU, ``x Phi(x) = x / 2 (1 + erf(x / sqrt 2))``.

    fp32: exact erf. fp16: ``x / 2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`` in float16
    (Hendrycks & Gimpel 2016). int16: I-BERT's i-GELU, ``erf(u) ~ sgn(u) (a (min(|u|, -b) + b)^2
    + 1)`` with ``a = -0.2888, b = -1.769``, ``u = x / sqrt 2`` in Q2.13; the result at ``x``'s
    scale. i-GELU's own error peaks at 0.016 near ``|x| = 2.5``.

    >>> [round(float(v), 2) for v in gelu(jnp.array([-1.0, 0.0, 3.0]), precision="int16")]
    [-0.16, 0.0, 3.0]
    """
    _check_precision(precision)
    x = jnp.asarray(x, jnp.float32)
    if precision == "fp32":
        return jax.nn.gelu(x, approximate=False)
    if precision == "fp16":
        h = x.astype(_F16)
        c = _F16(math.sqrt(2 / math.pi))
        inner = c * (h + _F16(0.044715) * h * h * h)
        return (_F16(0.5) * h * (_F16(1) + jnp.tanh(inner))).astype(jnp.float32)
    f = _frac_bits(x)
    return _gelu_int16(_quant(x, f, jnp.int32), f)


def _gelu_int16(q, f):
    """i-GELU of the codes ``q`` (scale ``2^-f``), in the dtype of ``q``. In int32 every
    product stays below 2^30: ``|q| 2^15 / sqrt 2``, ``t^2 <= (1.769 2^13)^2``, ``q 2^14``."""
    b = round(1.769 * 2**13)
    u = _shift(jnp.abs(q) * round(2**15 / math.sqrt(2)), -2 - f)  # |x| / sqrt 2, Q2.13
    t = jnp.minimum(u, b) - b
    erf = jnp.sign(q) * (_shift(_shift(t * t, -13) * round(-0.2888 * 2**15), -15) + 2**13)
    return _dequant(_shift(q * (2**13 + erf), -14), f)


def _float(precision):
    return _F16 if precision == "fp16" else jnp.float32


@x64
@functools.partial(jax.jit, static_argnames="precision")
def relu(x, precision: str = "fp32"):
    """``max(x, 0)``, exact on the stored values (the error is the storage rounding).

    >>> relu(jnp.array([-1.0, 2.5]), precision="int16").tolist()
    [0.0, 2.5]
    """
    _check_precision(precision)
    x = jnp.asarray(x, jnp.float32)
    if precision != "int16":
        return jax.nn.relu(x.astype(_float(precision))).astype(jnp.float32)
    f = _frac_bits(x)
    return _dequant(jnp.maximum(_quant(x, f, jnp.int32), 0), f)


@x64
@functools.partial(jax.jit, static_argnames="precision")
def add(x, y, precision: str = "fp32"):
    """Residual add ``x + y`` (shapes broadcast). int16: both aligned to the finer scale, added
    exactly in the accumulator, stored at the sum's per-tensor scale. fp16: a float16 add.

    >>> add(jnp.array([1.5]), jnp.array([-0.25]), precision="int16").tolist()
    [1.25]
    """
    _check_precision(precision)
    x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
    try:
        jnp.broadcast_shapes(x.shape, y.shape)
    except ValueError:
        raise ValueError(f"add: shapes {x.shape} and {y.shape} do not broadcast") from None
    if precision != "int16":
        return (x.astype(_float(precision)) + y.astype(_float(precision))).astype(jnp.float32)
    fx, fy = _frac_bits(x), _frac_bits(y)
    # aligned codes below 2^15 2^14 each: their sum fits int32
    return _narrow_when(jnp.abs(fx - fy) <= 14, lambda t: _add_int16(x, y, t))


def _add_int16(x, y, dtype):
    """int16 residual add (see :func:`add`) computed in ``dtype``."""
    fx, fy = _frac_bits(x), _frac_bits(y)
    top = jnp.maximum(fx, fy)
    acc = _shift(_quant(x, fx, dtype), top - fx) + _shift(_quant(y, fy, dtype), top - fy)
    return _requant(acc, top)


def _pool(x, window, stride, name):
    """Validate an NHWC pool; return ``reduce(v, init, op)`` over its windows and their size."""
    wh, ww = (window, window) if isinstance(window, int) else tuple(window)
    sh, sw = (stride, stride) if isinstance(stride, int) else tuple(stride)
    if x.ndim != 4:
        raise ValueError(f"{name}: x must be NHWC (4 axes), got shape {x.shape}")
    if min(wh, ww, sh, sw) < 1:
        raise ValueError(f"{name}: window and stride must be >= 1, got {window!r}, {stride!r}")
    if wh > x.shape[1] or ww > x.shape[2]:
        raise ValueError(f"{name}: window {wh}x{ww} larger than the input {x.shape[1:3]}")

    def reduce(v, init, op):
        return jax.lax.reduce_window(v, init, op, (1, wh, ww, 1), (1, sh, sw, 1), "VALID")

    return reduce, wh * ww


@x64
@functools.partial(jax.jit, static_argnames=("window", "stride", "precision"))
def max_pool2d(x, window, stride, precision: str = "fp32"):
    """Max pooling over ``window`` (int or (h, w)) with ``stride``, no padding, NHWC.

    >>> float(max_pool2d(jnp.arange(4.0).reshape(1, 2, 2, 1), 2, 2, precision="int16")[0, 0, 0, 0])
    3.0
    """
    _check_precision(precision)
    x = jnp.asarray(x, jnp.float32)
    reduce, _ = _pool(x, window, stride, "max_pool2d")
    if precision != "int16":
        return reduce(x.astype(_float(precision)), -jnp.inf, jax.lax.max).astype(jnp.float32)
    f = _frac_bits(x)
    return _dequant(reduce(_quant(x, f, jnp.int32), jnp.int32(_WORD_MIN), jax.lax.max), f)


@x64
@functools.partial(jax.jit, static_argnames=("window", "stride", "precision"))
def avg_pool2d(x, window, stride, precision: str = "fp32"):
    """Average pooling, NHWC, no padding: window sum / window size.

    int16: the integer window sum times ``1 / size`` as a 16-bit mantissa ``round(2^(15+e) /
    size)`` in (2^14, 2^15] (relative error <= 2^-15), shifted back by ``15 + e`` with rounding.
    fp16: float16 values summed in float32, the mean rounded to float16.

    >>> float(avg_pool2d(jnp.arange(4.0).reshape(1, 2, 2, 1), 2, 2, precision="int16")[0, 0, 0, 0])
    1.5
    """
    _check_precision(precision)
    x = jnp.asarray(x, jnp.float32)
    reduce, size = _pool(x, window, stride, "avg_pool2d")
    if precision != "int16":
        s = reduce(x.astype(_float(precision)).astype(jnp.float32), 0.0, jax.lax.add)
        return (s / size).astype(_float(precision)).astype(jnp.float32)
    f = _frac_bits(x)
    s = reduce(_quant(x, f), jnp.int64(0), jax.lax.add)
    e = size.bit_length() - 1
    return _dequant(_shift(s * round(2 ** (15 + e) / size), -15 - e), f)
