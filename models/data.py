"""Offline data: scikit-learn's bundled 8x8 digits, as images and as sequences of rows.

``load_digits`` reads the 1,797 digits that ship inside scikit-learn (nothing is downloaded),
scales the 0-16 grey levels to ``[0, 1]`` (``x / 16``, float32) and splits them 80/20, stratified
by class, with a seeded NumPy permutation, so the split is the same on every machine:

>>> ds = load_digits()
>>> ds.x_train.shape, ds.x_test.shape, ds.num_classes
((1438, 8, 8, 1), (359, 8, 8, 1), 10)

The transformer reads a digit as a sequence of 8 tokens, one per image row, each the row's 8
pixels followed by the one-hot code of the row index (:func:`as_sequences`, 16 features). The
one-hot part is how position reaches the model: ``hw.graph`` has no positional-embedding node,
but the first dense layer applied to ``[row, onehot(t)]`` computes ``W_x row + W_p[t] + b``,
i.e. a token embedding plus a learned positional embedding ``W_p[t]``, in one ``Dense`` node.

>>> as_sequences(ds).x_test.shape
(359, 8, 16)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

import jax
import numpy as np

GREY_LEVELS = 16.0  # load_digits' pixels are counts 0..16 of a 4x4 block of a 32x32 bitmap


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A train/test split: inputs float32, labels int32."""

    x_train: np.ndarray  # shape=(N_train, ...) float32
    y_train: np.ndarray  # shape=(N_train,) int32 in [0, num_classes)
    x_test: np.ndarray  # shape=(N_test, ...) float32
    y_test: np.ndarray  # shape=(N_test,) int32
    name: str
    num_classes: int


def stratified_split(
    y: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted ``(train_idx, test_idx)``: per class, ``round(n_c * test_fraction)`` samples go to
    the test set, drawn by a ``numpy.random.default_rng(seed)`` permutation."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        test.append(idx[: int(round(len(idx) * test_fraction))])
    test_idx = np.sort(np.concatenate(test))
    train_idx = np.setdiff1d(np.arange(len(y)), test_idx)
    return train_idx, test_idx


def load_digits(seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    """The 8x8 digits as NHWC images ``(N, 8, 8, 1)`` in ``[0, 1]``, split with ``seed``."""
    from sklearn.datasets import load_digits as _sk_load_digits

    bunch = _sk_load_digits()
    x = (np.asarray(bunch.images, np.float32) / np.float32(GREY_LEVELS))[..., None]
    y = np.asarray(bunch.target, np.int32)
    train_idx, test_idx = stratified_split(y, test_fraction, seed)
    return Dataset(
        x_train=x[train_idx],
        y_train=y[train_idx],
        x_test=x[test_idx],
        y_test=y[test_idx],
        name="digits",
        num_classes=int(y.max()) + 1,
    )


def rows_with_positions(x: np.ndarray) -> np.ndarray:
    """NHWC images ``(N, H, W, 1)`` -> sequences ``(N, H, W + H)``: each row's pixels, then the
    one-hot code of its index (the position input; see the module docstring)."""
    x = np.asarray(x, np.float32)
    if x.ndim != 4 or x.shape[-1] != 1:
        raise ValueError(f"expected NHWC images with one channel, got shape {x.shape}")
    n, h = x.shape[:2]
    pos = np.broadcast_to(np.eye(h, dtype=np.float32), (n, h, h))
    return np.concatenate([x[..., 0], pos], axis=-1)


def as_sequences(ds: Dataset) -> Dataset:
    """``ds`` with its images turned into row sequences by :func:`rows_with_positions`."""
    return dataclasses.replace(
        ds,
        x_train=rows_with_positions(ds.x_train),
        x_test=rows_with_positions(ds.x_test),
        name=f"{ds.name}-rows",
    )


def load(kind: str, seed: int = 0) -> Dataset:
    """The data set a model ``kind`` reads: ``cnn`` images or ``transformer`` sequences."""
    if kind == "cnn":
        return load_digits(seed)
    if kind == "transformer":
        return as_sequences(load_digits(seed))
    raise ValueError(f"model kind must be 'cnn' or 'transformer', got {kind!r}")


def num_batches(n: int, batch_size: int, drop_remainder: bool = True) -> int:
    """How many batches :func:`batches` yields for ``n`` samples."""
    return n // batch_size if drop_remainder else -(-n // batch_size)


def batches(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    *,
    seed: int | Sequence[int] | jax.Array | None = 0,
    drop_remainder: bool = True,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(x, y)`` batches in the order of a random permutation drawn from ``seed``.

    ``seed`` is a ``jax.random`` key (``jax.random.permutation``), or a NumPy seed for
    ``numpy.random.default_rng``: a sequence such as ``(run_seed, epoch)`` gives each epoch its
    own order, the same on every run. ``seed=None`` keeps the data's order. With
    ``drop_remainder`` every batch has ``batch_size`` samples (one compiled shape); the last
    partial batch is left out.

    >>> xb, yb = next(batches(np.zeros((10, 2)), np.arange(10), 4, seed=(0, 1)))
    >>> xb.shape, yb.shape
    ((4, 2), (4,))
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if len(x) != len(y):
        raise ValueError(f"x and y differ in length: {len(x)} vs {len(y)}")
    n = len(x)
    if seed is None:
        order = np.arange(n)
    elif isinstance(seed, jax.Array) and jax.dtypes.issubdtype(seed.dtype, jax.dtypes.prng_key):
        order = np.asarray(jax.random.permutation(seed, n))
    else:
        order = np.random.default_rng(seed).permutation(n)
    for i in range(num_batches(n, batch_size, drop_remainder)):
        idx = order[i * batch_size : (i + 1) * batch_size]
        yield x[idx], y[idx]
