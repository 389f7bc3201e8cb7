"""Quantizers: uniform affine integer quantization at any width, per tensor or per channel.

A real value ``x`` maps to an integer and back (Jacob et al., CVPR 2018):

    q = clip(round(x / s) + z, qmin, qmax),      x_hat = (q - z) * s

with scale ``s > 0``, integer zero point ``z`` and ``round`` rounding half to even (NumPy's and
PyTorch's ``round``). Signed ``b``-bit integers span ``[-2^(b-1), 2^(b-1) - 1]``, unsigned ones
``[0, 2^b - 1]``. Inside the clipping range ``|x_hat - x| <= s / 2``:

>>> import jax.numpy as jnp
>>> qp = calibrate(jnp.array([-1.0, 0.5, 2.54]), 8)  # symmetric: s = 2.54 / 127 = 0.02
>>> quantize(jnp.array([0.5, 9.0]), qp).tolist()  # 0.5 / 0.02 = 25; 9.0 clips to qmax
[25, 127]

Per-channel parameters hold one scale and zero point per index of ``axis`` (for a dense
weight ``(K, N)``, ``axis=1`` gives one scale per output channel).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from hw.types import Array, pytree_dataclass, static
from hw.x64 import x64

MIN_SCALE = 2.0**-40
"""Smallest scale :func:`calibrate` returns. A tensor (or channel) that is all zeros has no
range; it gets this tiny positive scale, so that zeros quantize to the zero point and nothing
divides by zero. Any non-zero value later quantized with it saturates."""

METHODS = ("minmax", "percentile", "mse")
"""Calibration methods of :func:`calibrate`."""

MSE_RATIOS = np.linspace(0.3, 1.0, 100)
"""Clipping ratios (of the min-max range) that the ``mse`` calibration searches."""


def _check_bits(bits) -> None:
    if isinstance(bits, bool) or not isinstance(bits, int | np.integer) or not 2 <= bits <= 16:
        raise ValueError(f"bits must be an integer in 2..16, got {bits!r}")


@pytree_dataclass
class QParams:
    """Quantization parameters of one tensor; ``scale`` and ``zero_point`` are leaves."""

    scale: Array  # shape=() per tensor or (C,) per channel; real units per integer step, > 0
    zero_point: Array  # int, same shape as scale; the integer that represents 0.0
    bits: int = static(8)  # integer width, 2..16
    signed: bool = static(True)  # two's-complement range, else unsigned
    axis: int | None = static(None)  # channel axis of the tensor (per channel), None per tensor

    def __post_init__(self):
        _check_bits(self.bits)
        if not isinstance(self.signed, bool):
            raise ValueError(f"signed must be True or False, got {self.signed!r}")
        if self.axis is not None and (
            isinstance(self.axis, bool) or not isinstance(self.axis, int)
        ):
            raise ValueError(f"axis must be an integer or None, got {self.axis!r}")


def qrange(bits: int, signed: bool) -> tuple[int, int]:
    """``(qmin, qmax)``: ``(-2^(b-1), 2^(b-1) - 1)`` signed, ``(0, 2^b - 1)`` unsigned.

    >>> qrange(8, True), qrange(4, False)
    ((-128, 127), (0, 15))
    """
    _check_bits(bits)
    return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)


def _broadcast(qp: QParams, ndim: int):
    """Scale and zero point shaped to broadcast against a tensor of rank ``ndim``."""
    s, z = jnp.asarray(qp.scale), jnp.asarray(qp.zero_point)
    if qp.axis is None:
        return s, z
    shape = [1] * ndim
    shape[qp.axis % ndim] = -1
    return s.reshape(shape), z.reshape(shape)


def _check_qparams(qp: QParams, shape: tuple[int, ...]) -> None:
    """Shapes always; values (finite positive scale, integer zero point in range) when concrete."""
    ndim, s_shape = len(shape), np.shape(qp.scale)
    if qp.axis is None:
        if s_shape != ():
            raise ValueError(f"per-tensor scale must be a scalar, got shape {s_shape}")
    elif not -ndim <= qp.axis < ndim:
        raise ValueError(
            f"axis must be in {-ndim}..{ndim - 1} for a rank-{ndim} tensor, got {qp.axis}"
        )
    elif s_shape != (shape[qp.axis],):
        raise ValueError(f"per-channel scale must have shape ({shape[qp.axis]},), got {s_shape}")
    if np.shape(qp.zero_point) != s_shape:
        raise ValueError(f"zero_point shape {np.shape(qp.zero_point)} != scale shape {s_shape}")
    if not isinstance(qp.scale, jax.core.Tracer):
        s = np.asarray(qp.scale, dtype=np.float64).reshape(-1)
        bad = s[~(np.isfinite(s) & (s > 0))]
        if bad.size:
            raise ValueError(f"scale must be finite and > 0, got {bad[0]}")
    if not isinstance(qp.zero_point, jax.core.Tracer):
        z = np.asarray(qp.zero_point, dtype=np.float64).reshape(-1)
        qmin, qmax = qrange(qp.bits, qp.signed)
        bad = z[~((z == np.round(z)) & (z >= qmin) & (z <= qmax))]
        if bad.size:
            raise ValueError(f"zero_point must be an integer in {qmin}..{qmax}, got {bad[0]:g}")


def _round_clip(x, qp: QParams):
    """``(clip(round(x / s) + z), round(x / s) + z)`` as floats, for a checked ``qp``."""
    s, z = _broadcast(qp, x.ndim)
    qmin, qmax = qrange(qp.bits, qp.signed)
    q = jnp.round(x / s) + z
    return jnp.clip(q, qmin, qmax), q


@x64
def quantize(x, qp: QParams):
    """``q = clip(round(x / s) + z, qmin, qmax)`` as int32 (round half to even).

    Raises ``ValueError`` if a concrete scale is zero, negative or NaN, or shapes disagree.
    """
    x = jnp.asarray(x)
    _check_qparams(qp, x.shape)
    return _quantize(x, qp)


@jax.jit
def _quantize(x, qp: QParams):
    return _round_clip(x, qp)[0].astype(jnp.int32)


@x64
def dequantize(q, qp: QParams):
    """``x_hat = (q - z) * s``, in the scale's floating dtype.

    >>> qp = QParams(scale=jnp.float32(0.5), zero_point=jnp.int32(3), bits=4, signed=False)
    >>> dequantize(jnp.array([0, 3, 15]), qp).tolist()
    [-1.5, 0.0, 6.0]
    """
    q = jnp.asarray(q)
    _check_qparams(qp, q.shape)
    return _dequantize(q, qp)


@jax.jit
def _dequantize(q, qp: QParams):
    s, z = _broadcast(qp, q.ndim)
    return (q - z).astype(jnp.result_type(s, jnp.float32)) * s


@x64
def fake_quant(x, qp: QParams):
    """``dequantize(quantize(x))`` in floating point, with a straight-through gradient.

    The gradient with respect to ``x`` is 1 where ``round(x / s) + z`` lies in ``[qmin, qmax]``
    and 0 where it is clipped (PyTorch's ``fake_quantize`` convention). Clipped outputs
    ``(q - z) * s`` pass their gradient to the scale, as a learned clipping level does (PACT);
    the zero point gets none.

    >>> import jax
    >>> qp = QParams(scale=jnp.float32(0.1), zero_point=jnp.int32(0), bits=4)  # [-0.8, 0.7]
    >>> jax.grad(lambda v: fake_quant(v, qp).sum())(jnp.array([0.33, 5.0])).tolist()
    [1.0, 0.0]
    """
    x = jnp.asarray(x)
    _check_qparams(qp, x.shape)
    return _fake_quant(x, qp)


@jax.jit
def _fake_quant(x, qp: QParams):
    qc, q = jax.lax.stop_gradient(_round_clip(x, qp))
    s, z = _broadcast(qp, x.ndim)
    x_hat = (qc - z) * s
    inside = qc == q
    return jnp.where(inside, x + jax.lax.stop_gradient(x_hat - x), x_hat).astype(x.dtype)


def _from_range(lo, hi, qmin, qmax, symmetric: bool):
    """Scale and zero point that map ``[lo, hi]`` onto ``[qmin, qmax]``.

    Symmetric: ``s = max(|lo|, |hi|) / qmax``, ``z = 0``. Asymmetric: the range is widened to
    hold 0, ``s = (hi - lo) / (qmax - qmin)`` and ``z = clip(round(qmin - lo / s))``, so that
    0.0 is exactly representable. Scales below :data:`MIN_SCALE` are raised to it.
    """
    if symmetric:
        scale = jnp.maximum(jnp.maximum(-lo, hi) / qmax, MIN_SCALE)
        return scale, jnp.zeros(scale.shape, jnp.int32)
    lo, hi = jnp.minimum(lo, 0.0), jnp.maximum(hi, 0.0)
    scale = jnp.maximum((hi - lo) / (qmax - qmin), MIN_SCALE)
    zero_point = jnp.clip(jnp.round(qmin - lo / scale), qmin, qmax).astype(jnp.int32)
    return scale, zero_point


def _mse_ratio(x2, lo, hi, qmin, qmax, symmetric: bool):
    """Per row of ``x2`` (shape ``(C, n)``), the ratio of :data:`MSE_RATIOS` whose clipped
    range ``[r lo, r hi]`` gives the lowest mean squared quantization error."""

    def errors(r):  # shape=(C,) for one ratio
        scale, zero_point = _from_range(r * lo, r * hi, qmin, qmax, symmetric)
        s, z = scale[:, None], zero_point[:, None]
        x_hat = (jnp.clip(jnp.round(x2 / s) + z, qmin, qmax) - z) * s
        return jnp.mean((x_hat - x2) ** 2, axis=1)

    ratios = jnp.asarray(MSE_RATIOS, x2.dtype)
    errs = jax.lax.map(errors, ratios, batch_size=10)  # shape=(G, C)
    return ratios[jnp.argmin(errs, axis=0)]


@x64
def calibrate(
    x,
    bits: int,
    *,
    symmetric: bool = True,
    signed: bool = True,
    per_channel_axis: int | None = None,
    method: str = "minmax",
    percentile: float = 99.99,
) -> QParams:
    """Quantization parameters for ``x`` from its statistics.

    The clipping range ``[lo, hi]`` per tensor, or per index of ``per_channel_axis`` (reducing
    over all other axes), comes from ``method``:

    - ``minmax``: ``[min x, max x]``;
    - ``percentile``: symmetric: ``+-P_p(|x|)``, the ``percentile``-th percentile of ``|x|``;
      asymmetric: ``[P_(100-p)(x), P_p(x)]``;
    - ``mse``: ``r * [min x, max x]`` with the ratio ``r`` in :data:`MSE_RATIOS` (0.3..1) that
      minimizes ``mean((fake_quant(x) - x)^2)``, searched for all ratios at once. ``r = 1`` is
      min-max, so its error is never above min-max's.

    The range becomes a scale and zero point as in :func:`_from_range`; symmetric ranges have
    ``z = 0``. An all-zero tensor gets ``scale = MIN_SCALE`` (never 0 or NaN).

    >>> qp = calibrate(jnp.array([[-1.0, 4.0], [2.0, 0.5]]), 8, per_channel_axis=1)
    >>> (qp.scale * 127).round(3).tolist(), qp.axis
    ([2.0, 4.0], 1)
    """
    _check_bits(bits)
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {percentile}")
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float64)
    if x.size == 0:
        raise ValueError(f"cannot calibrate an empty tensor of shape {x.shape}")
    if not isinstance(x, jax.core.Tracer) and not np.isfinite(np.asarray(x)).all():
        raise ValueError("cannot calibrate a tensor that holds NaN or infinity")
    axis = per_channel_axis
    if axis is not None and (isinstance(axis, bool) or not isinstance(axis, int)):
        raise ValueError(f"per_channel_axis must be an integer or None, got {axis!r}")
    if axis is not None and not -x.ndim <= axis < x.ndim:
        raise ValueError(
            f"per_channel_axis must be in {-x.ndim}..{x.ndim - 1} for a rank-{x.ndim} tensor, "
            f"got {axis}"
        )
    dtype = jnp.result_type(x.dtype, jnp.float32)  # holds every qmin, qmax exactly
    qmin, qmax = (np.asarray(v, dtype) for v in qrange(bits, signed))  # traced: no recompiles
    kw = dict(axis=axis, symmetric=bool(symmetric), method=method, percentile=float(percentile))
    scale, zero_point = _calibrate(x, qmin, qmax, **kw)
    return QParams(scale, zero_point, bits=bits, signed=signed, axis=axis)


@functools.partial(jax.jit, static_argnames=("axis", "symmetric", "method", "percentile"))
def _calibrate(x, qmin, qmax, *, axis, symmetric, method, percentile):
    """Scale and zero point (shape ``()`` or ``(C,)``) of :func:`calibrate`, once validated."""
    x2 = x.reshape(1, -1) if axis is None else jnp.moveaxis(x, axis, 0).reshape(x.shape[axis], -1)
    lo, hi = jnp.min(x2, axis=1), jnp.max(x2, axis=1)
    if method == "percentile" and symmetric:
        hi = jnp.percentile(jnp.abs(x2), percentile, axis=1)
        lo = -hi
    elif method == "percentile":
        lo = jnp.percentile(x2, 100 - percentile, axis=1)
        hi = jnp.percentile(x2, percentile, axis=1)
    elif method == "mse":
        ratio = _mse_ratio(x2, lo, hi, qmin, qmax, symmetric)
        lo, hi = ratio * lo, ratio * hi
    scale, zero_point = _from_range(lo, hi, qmin, qmax, symmetric)
    return (scale[0], zero_point[0]) if axis is None else (scale, zero_point)
