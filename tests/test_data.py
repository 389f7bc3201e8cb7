"""models.data: the bundled digits, the fixed split, row sequences and batching."""

import jax
import numpy as np
import pytest

from models import data


@pytest.fixture(scope="module")
def digits():
    return data.load_digits()


def test_shapes_dtypes_and_range(digits):
    assert digits.x_train.shape[1:] == digits.x_test.shape[1:] == (8, 8, 1)
    assert len(digits.x_train) + len(digits.x_test) == 1797
    assert digits.x_train.dtype == digits.x_test.dtype == np.float32
    assert digits.y_train.dtype == np.int32
    assert digits.x_train.min() >= 0.0 and digits.x_train.max() <= 1.0
    assert digits.num_classes == 10 and digits.name == "digits"


def test_split_is_stratified_disjoint_and_deterministic(digits):
    # 20 % of each class (about 180 digits per class) goes to the test set.
    counts = np.bincount(digits.y_test, minlength=10)
    assert np.all((counts >= 35) & (counts <= 37))
    assert abs(len(digits.x_test) - 0.2 * 1797) < 1
    again = data.load_digits()
    np.testing.assert_array_equal(again.x_test, digits.x_test)
    np.testing.assert_array_equal(again.y_train, digits.y_train)
    train_idx, test_idx = data.stratified_split(np.repeat(np.arange(3), 10), 0.2, seed=0)
    assert len(np.intersect1d(train_idx, test_idx)) == 0
    assert len(train_idx) + len(test_idx) == 30
    other = data.load_digits(seed=1)
    assert not np.array_equal(other.y_test, digits.y_test)


def test_bad_split_fraction():
    with pytest.raises(ValueError, match="test_fraction"):
        data.stratified_split(np.zeros(4), 1.5, seed=0)


def test_rows_with_positions(digits):
    seq = data.as_sequences(digits)
    assert seq.x_train.shape == (len(digits.x_train), 8, 16) and seq.x_train.dtype == np.float32
    np.testing.assert_array_equal(seq.x_test[..., :8], digits.x_test[..., 0])
    np.testing.assert_array_equal(seq.x_test[3, :, 8:], np.eye(8))
    np.testing.assert_array_equal(seq.y_test, digits.y_test)
    assert seq.name == "digits-rows"
    with pytest.raises(ValueError, match="NHWC"):
        data.rows_with_positions(np.zeros((2, 8, 8)))


def test_load_by_model_kind():
    assert data.load("transformer").x_test.shape[1:] == (8, 16)
    with pytest.raises(ValueError, match="model kind"):
        data.load("rnn")


@pytest.mark.parametrize("seed", [0, (3, 1), jax.random.key(5)])
def test_batches_are_a_seeded_permutation(seed):
    x, y = np.arange(10.0)[:, None], np.arange(10)
    got = list(data.batches(x, y, 4, seed=seed))
    assert len(got) == data.num_batches(10, 4) == 2
    assert all(xb.shape == (4, 1) and yb.shape == (4,) for xb, yb in got)
    seen = np.concatenate([yb for _, yb in got])
    assert len(np.unique(seen)) == 8
    np.testing.assert_array_equal(
        seen, np.concatenate([b for _, b in data.batches(x, y, 4, seed=seed)])
    )
    np.testing.assert_array_equal(np.concatenate([xb[:, 0] for xb, _ in got]), seen)


def test_batches_epochs_differ_and_remainder():
    x, y = np.zeros((10, 1)), np.arange(10)
    first = [b for _, b in data.batches(x, y, 5, seed=(0, 0))]
    second = [b for _, b in data.batches(x, y, 5, seed=(0, 1))]
    assert not np.array_equal(np.concatenate(first), np.concatenate(second))
    ordered = [b for _, b in data.batches(x, y, 4, seed=None, drop_remainder=False)]
    assert [len(b) for b in ordered] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate(ordered), y)


def test_batches_bad_input():
    with pytest.raises(ValueError, match="batch_size"):
        next(data.batches(np.zeros((4, 1)), np.zeros(4), 0))
    with pytest.raises(ValueError, match="differ in length"):
        next(data.batches(np.zeros((4, 1)), np.zeros(3), 2))
