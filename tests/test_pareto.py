"""Pareto masks and hypervolumes against hand arithmetic and brute-force references."""

import itertools

import numpy as np
import pytest

from dse import pareto
from dse.pareto import (
    hypervolume,
    normalized_hypervolume,
    objective_points,
    pareto_front,
    pareto_mask,
)


def brute_force_mask(p: np.ndarray) -> np.ndarray:
    """O(N^2) loop: drop a point another dominates, or an identical earlier point."""
    keep = np.ones(len(p), dtype=bool)
    for i, j in itertools.product(range(len(p)), repeat=2):
        dominates = np.all(p[j] <= p[i]) and np.any(p[j] < p[i])
        if dominates or (j < i and np.array_equal(p[j], p[i])):
            keep[i] = False
    return keep


def grid_hypervolume(p: np.ndarray, ref: np.ndarray) -> float:
    """Exact for integer points: count the unit cells [c, c+1)^D dominated by some point."""
    axes = [np.arange(0, int(r)) for r in ref]
    cells = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(ref))
    covered = np.any(np.all(p[None, :, :] <= cells[:, None, :], axis=-1), axis=1)
    return float(covered.sum())


@pytest.mark.parametrize("d", [2, 3, 4])
def test_pareto_mask_matches_brute_force(d):
    rng = np.random.default_rng(d)
    for _ in range(20):
        p = rng.integers(0, 5, size=(rng.integers(1, 25), d)).astype(float)
        np.testing.assert_array_equal(pareto_mask(p), brute_force_mask(p))


def test_pareto_mask_chunks_agree(monkeypatch):
    p = np.random.default_rng(0).random((200, 3))
    whole = pareto_mask(p)
    monkeypatch.setattr(pareto, "_CHUNK_ELEMENTS", 7)
    np.testing.assert_array_equal(pareto_mask(p), whole)


def test_duplicates_keep_the_first_only():
    p = [[2, 2], [1, 3], [2, 2], [1, 3], [3, 3]]
    assert pareto_mask(p).tolist() == [True, True, False, False, False]


def test_pareto_mask_edge_cases():
    assert pareto_mask(np.zeros((0, 2))).tolist() == []
    assert pareto_mask([[1.0, np.inf]]).tolist() == [True]
    with pytest.raises(ValueError, match="NaN"):
        pareto_mask([[1.0, np.nan]])
    with pytest.raises(ValueError, match="shape"):
        pareto_mask([1.0, 2.0])


def test_hand_computed_hypervolumes():
    # staircase (1,3),(2,2),(3,1) under (4,4): columns 1*3 + 1*2 + 1*1 = 6
    assert hypervolume([[1, 3], [2, 2], [3, 1]], [4, 4]) == 6.0
    # a dominated point (3,3) and a point beyond ref (5,0) change nothing
    assert hypervolume([[1, 3], [3, 3], [2, 2], [3, 1], [5, 0]], [4, 4]) == 6.0
    # 3D: (0,0,2) gives 2*2*1 = 4; (1,1,0) gives 1*1*3 = 3; overlap 1*1*1 = 1 -> 6
    assert hypervolume([[0, 0, 2], [1, 1, 0]], [2, 2, 3]) == 6.0
    # under (3,3,3): (1,1,1) covers the 2x2x2 = 8 cells of {1,2}^3; (0,2,2), (2,0,2) and
    # (2,2,0) each cover a 1x1x3 bar, of which only the cell with a 0 lies outside: 8 + 3 = 11
    p = [[0, 2, 2], [2, 0, 2], [2, 2, 0], [1, 1, 1]]
    assert hypervolume(p, [3, 3, 3]) == 11.0
    assert hypervolume([[1.0]], [3.0]) == 2.0
    assert hypervolume(np.zeros((0, 3)), [1, 1, 1]) == 0.0


@pytest.mark.parametrize("d", [2, 3])
def test_hypervolume_matches_grid_count(d):
    rng = np.random.default_rng(10 + d)
    ref = np.full(d, 6.0)
    for _ in range(25):
        p = rng.integers(0, 8, size=(rng.integers(1, 12), d)).astype(float)
        assert hypervolume(p, ref) == grid_hypervolume(np.minimum(p, ref), ref)


def test_hypervolume_3d_matches_monte_carlo():
    rng = np.random.default_rng(3)
    p, ref = rng.random((15, 3)), np.ones(3)
    samples = rng.random((200_000, 3))
    covered = np.zeros(len(samples), dtype=bool)
    for q in p:
        covered |= np.all(samples >= q, axis=1)
    assert hypervolume(p, ref) == pytest.approx(covered.mean(), abs=5e-3)


def test_hypervolume_rejects_bad_input():
    with pytest.raises(ValueError, match="D = 4"):
        hypervolume(np.zeros((2, 4)), np.ones(4))
    with pytest.raises(ValueError, match="ref"):
        hypervolume(np.zeros((2, 2)), np.ones(3))
    with pytest.raises(ValueError, match="ref"):
        hypervolume(np.zeros((2, 2)), [1.0, np.inf])


ROWS = [
    {"latency_s": 1.0, "energy_j": 4.0, "accuracy": 0.90, "feasible": True},
    {"latency_s": 2.0, "energy_j": 2.0, "accuracy": 0.80, "feasible": True},
    {"latency_s": 2.0, "energy_j": 2.0, "accuracy": 0.95, "feasible": True},
    {"latency_s": 3.0, "energy_j": 5.0, "accuracy": 0.99, "feasible": True},
    {"latency_s": 0.1, "energy_j": 0.1, "accuracy": 0.99, "feasible": False},
]


def test_pareto_front_negates_accuracy_and_skips_infeasible():
    assert objective_points(ROWS[:1], ["accuracy"]).tolist() == [[-0.9]]
    front = pareto_front(ROWS, ["latency_s", "energy_j"])
    assert front == [ROWS[0], ROWS[1]]  # row 2 duplicates row 1 in these keys
    front = pareto_front(ROWS, ["latency_s", "energy_j", "accuracy"])
    assert front == [ROWS[0], ROWS[2], ROWS[3]]
    assert pareto_front(ROWS, ["latency_s"], feasible_only=False) == [ROWS[4]]
    assert pareto_front([], ["latency_s"]) == []


def test_normalized_hypervolume_shares_one_box():
    # log2 scale (margin 2): a = (0, 0), b = (1, 1); ideal 0, ref 1 + 1 = 2
    sets = {"a": np.array([[1.0, 1.0]]), "b": np.array([[2.0, 2.0]]), "none": np.zeros((0, 2))}
    hv = normalized_hypervolume(sets, ["latency_s", "energy_j"], margin=2.0)
    assert hv == {"a": 1.0, "b": pytest.approx(0.25), "none": 0.0}


def test_normalized_hypervolume_maximizes_accuracy_from_rows():
    keys = ["latency_s", "accuracy"]
    hv = normalized_hypervolume({"x": ROWS[:2], "y": ROWS[3:]}, keys)
    # y has the best accuracy and the worst latency; its only feasible row is row 3
    assert 0 < hv["y"] < 1 and 0 < hv["x"] < 1
    better = normalized_hypervolume({"x": ROWS[:2], "y": ROWS[:4]}, keys)
    assert better["y"] > better["x"]
    assert set(normalized_hypervolume({}, keys)) == set()


def test_normalized_hypervolume_rejects_bad_input():
    keys = ["latency_s", "energy_j"]
    with pytest.raises(ValueError, match="margin"):
        normalized_hypervolume({"a": np.ones((1, 2))}, keys, margin=1.0)
    with pytest.raises(ValueError, match="energy_j"):
        normalized_hypervolume({"a": np.array([[1.0, 0.0]])}, keys)
    with pytest.raises(ValueError, match="columns"):
        normalized_hypervolume({"a": np.ones((2, 3))}, keys)
    with pytest.raises(ValueError, match="metrics"):
        normalized_hypervolume({"a": np.ones((2, 4))}, ["a", "b", "c", "d"])
