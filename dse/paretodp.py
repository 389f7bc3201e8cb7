"""Exact dynamic programme over independent per-layer choices with additive costs (NumPy).

Each layer ``l`` offers options, each a cost vector ``c_l[j]`` (shape=(D,), minimized); a
solution picks one option per layer and costs ``sum_l c_l[j_l]``. For any objective and
budgets that only get worse as a coordinate of the total grows, an optimal solution extends an
optimal prefix that no other prefix weakly dominates: if prefix ``p <= q`` in every coordinate,
every completion of ``q`` is matched by the same completion of ``p`` at no greater cost. So

    F_0 = {0},    F_l = front(F_{l-1} + options_l)        (Minkowski sum, then Pareto filter)

keeps everything an optimum needs (Bellman's principle on Pareto sets). Prefixes that cannot
meet a budget even with the cheapest rest of every coordinate, or whose objective cannot beat
the best known solution, are dropped too (``admissible``); neither cut loses an optimum. No
front is ever truncated.

>>> opts = [np.array([[1.0, 4.0], [2.0, 2.0], [3.0, 3.0]]), np.array([[0.0, 1.0], [1.0, 0.0]])]
>>> pts, picks = solve(opts)
>>> pts.tolist(), picks.tolist()
([[1.0, 5.0], [2.0, 3.0], [3.0, 2.0]], [[0, 0], [1, 0], [1, 1]])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

_BLOCK = 512  # candidates compared against the kept front at once (general dimension)
_SUMS_MAX = 1 << 21  # prefix x option sums formed at once


def front(points: np.ndarray) -> np.ndarray:
    """Indices of the rows of ``points`` (shape=(N, D), minimized) that no other row weakly
    dominates, in lexicographic order; of equal rows the first in that order is kept.

    In lexicographic order a row can only be weakly dominated by a row before it, so one
    sweep suffices: O(N log N) for D <= 2, blocks of pairwise comparisons with the kept rows
    for D > 2.
    """
    n, d = points.shape
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort(points.T[::-1])
    p = points[order]
    if d == 1:
        return order[:1]
    if d == 2:
        best = np.minimum.accumulate(p[:, 1])
        keep = np.concatenate([[True], p[1:, 1] < best[:-1]])
        return order[keep]
    rest = p[:, 1:]  # the first coordinate is sorted: earlier rows are never larger in it
    kept = np.zeros((0, d - 1))
    out = []
    for start in range(0, n, _BLOCK):
        blk = rest[start : start + _BLOCK]
        dead = np.zeros(blk.shape[0], dtype=bool)
        for k0 in range(0, kept.shape[0], 4 * _BLOCK):
            dead |= np.any(_leq(kept[k0 : k0 + 4 * _BLOCK], blk), axis=0)
        inner = _leq(blk, blk)
        dead |= np.any(np.triu(inner, k=1), axis=0)  # dominated by an earlier row of the block
        alive = np.flatnonzero(~dead)
        kept = np.concatenate([kept, blk[alive]])
        out.append(start + alive)
    return order[np.concatenate(out)]


def _leq(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``out[i, j] = all(a[i] <= b[j])``, one coordinate at a time (no (I, J, D) array)."""
    out = a[:, None, 0] <= b[None, :, 0]
    for j in range(1, a.shape[1]):
        out &= a[:, None, j] <= b[None, :, j]
    return out


Admissible = Callable[[np.ndarray, int], np.ndarray]
"""``admissible(prefix_sums, l) -> mask``: which prefix sums over layers ``0..l`` may still
lead to a solution worth having (budgets reachable, objective able to beat the best known)."""


def solve(
    options: Sequence[np.ndarray],
    admissible: Admissible | None = None,
    floor: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The Pareto set of totals over all per-layer choices (see the module docstring).

    ``options[l]``: shape=(J_l, D), layer ``l``'s cost vectors. ``floor`` (shape=(D,)): sums
    are raised to it after every layer (a count saturated at ``-1`` says "some layer did it";
    raising is monotone, so the dominance argument holds). Returns ``(totals, picks)``:
    totals shape=(S, D), the non-dominated admissible totals, and picks shape=(S, L), the
    option chosen in each layer for each of them.
    """
    d = options[0].shape[1] if options else 0
    totals = np.zeros((1, d))
    picks = np.zeros((1, 0), dtype=np.int64)
    for layer, opts in enumerate(options):
        totals, picks = _step(totals, picks, opts, layer, admissible, floor)
        if totals.shape[0] == 0:
            break
    return totals, picks


def _step(totals, picks, opts, layer, admissible, floor):
    """``front(totals + opts)`` restricted to admissible sums, formed in slices of prefixes."""
    per = max(1, _SUMS_MAX // max(opts.shape[0], 1))
    parts_t, parts_p = [], []
    for s0 in range(0, totals.shape[0], per):
        sums = (totals[s0 : s0 + per, None, :] + opts[None, :, :]).reshape(-1, opts.shape[1])
        parent = s0 + np.repeat(np.arange(min(per, totals.shape[0] - s0)), opts.shape[0])
        choice = np.tile(np.arange(opts.shape[0]), min(per, totals.shape[0] - s0))
        if floor is not None:
            sums = np.maximum(sums, floor)
        if admissible is not None:
            ok = np.flatnonzero(admissible(sums, layer))
            sums, parent, choice = sums[ok], parent[ok], choice[ok]
        keep = front(sums)
        parts_t.append(sums[keep])
        parts_p.append(np.concatenate([picks[parent[keep]], choice[keep, None]], axis=1))
    sums = np.concatenate(parts_t)
    new_picks = np.concatenate(parts_p)
    if len(parts_t) > 1:
        keep = front(sums)
        sums, new_picks = sums[keep], new_picks[keep]
    return sums, new_picks
