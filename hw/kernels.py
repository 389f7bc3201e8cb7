"""Integer kernels of the interpreter: operand narrowing, im2col and the exact float conv."""

from __future__ import annotations

import jax
import jax.numpy as jnp

EXACT_FLOAT32 = 2**24  # integers (and sums of them) below this magnitude are exact in float32
EXACT_FLOAT64 = 2**53


def narrow(q, bits: int):
    """``q`` in the smallest signed integer dtype that holds ``bits``-bit signed values."""
    return q.astype(jnp.int8 if bits <= 8 else jnp.int16 if bits <= 16 else jnp.int32)


def exact_conv(x, w_q, w_shape, *, stride: int, padding: int, groups: int, bound: int):
    """The integer convolution of ``x`` (NHWC) and ``w_q`` (reshaped to ``w_shape``, HWIO) as
    one XLA conv in float32 when every partial sum is below ``2^24`` (``bound``), else in
    float64 (exact below ``2^53``; see ``hw.interpreter.Runner.order_free``)."""
    dtype = jnp.float32 if bound < EXACT_FLOAT32 else jnp.float64
    w = jnp.asarray(w_q, dtype).reshape(w_shape)
    y = jax.lax.conv_general_dilated(
        x.astype(dtype),
        w,
        window_strides=(stride, stride),
        padding=[(padding, padding)] * 2,
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=groups,
        precision=jax.lax.Precision.HIGHEST,
    )
    return y.astype(jnp.int64)


def im2col(x, r: int, s: int, stride: int, padding: int):
    """NHWC patches as a ``(B Ho Wo) x (r s C)`` matrix (zero padding) and ``(B, Ho, Wo)``."""
    x = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    b, h, w, c = x.shape
    ho, wo = (h - r) // stride + 1, (w - s) // stride + 1
    taps = [
        x[:, i : i + stride * (ho - 1) + 1 : stride, j : j + stride * (wo - 1) + 1 : stride, :]
        for i in range(r)
        for j in range(s)
    ]
    return jnp.stack(taps, axis=3).reshape(b * ho * wo, r * s * c), (b, ho, wo)


def max_pool_codes(q, window: int, stride: int):
    """Max pooling of integer codes over NHWC windows (no padding)."""
    lowest = jnp.iinfo(q.dtype).min
    return jax.lax.reduce_window(
        q,
        jnp.asarray(lowest, q.dtype),
        jax.lax.max,
        (1, window, window, 1),
        (1, stride, stride, 1),
        "VALID",
    )
