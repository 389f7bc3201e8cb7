"""Pareto fronts and hypervolumes of evaluated designs (NumPy, minimization).

Every metric is minimized except those in :data:`MAXIMIZED` (accuracy), which are negated
before any comparison. A point ``q`` dominates ``p`` when ``q <= p`` in every coordinate and
``q < p`` in at least one; the front is the set of points no other point dominates.

The hypervolume of a set ``P`` with respect to a reference point ``r`` is the volume of the
region dominated by ``P`` and bounded by ``r``::

    HV(P, r) = vol( union_{p in P} [p_1, r_1] x ... x [p_D, r_D] )

>>> hypervolume([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]], ref=[4.0, 4.0])
6.0
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

MAXIMIZED = frozenset({"accuracy"})
"""Metrics where larger is better; they are negated before comparison."""

_CHUNK_ELEMENTS = 1 << 22  # pairwise comparisons held in memory at once by pareto_mask


def _as_points(points, what: str = "points") -> np.ndarray:
    """``points`` as a float array of shape (N, D); raises ``ValueError`` on NaN or bad shape."""
    p = np.asarray(points, dtype=float)
    if p.ndim != 2 or p.shape[1] < 1:
        raise ValueError(f"{what} must have shape (N, D) with D >= 1, got shape {p.shape}")
    if np.isnan(p).any():
        raise ValueError(f"{what} must not contain NaN")
    return p


def pareto_mask(points) -> np.ndarray:
    """Boolean mask of the non-dominated rows of ``points`` (shape (N, D), minimized).

    Of several identical non-dominated points only the first is kept. Costs O(N^2 D), done in
    chunks of rows so memory stays bounded.

    >>> pareto_mask([[1, 3], [2, 2], [2, 3], [3, 1], [2, 2]]).tolist()
    [True, True, False, True, False]
    """
    p = _as_points(points)
    n = p.shape[0]
    keep = np.ones(n, dtype=bool)
    chunk = max(1, _CHUNK_ELEMENTS // max(1, n * p.shape[1]))
    earlier = np.arange(n)
    for start in range(0, n, chunk):
        block = p[start : start + chunk, None, :]  # shape=(B, 1, D)
        no_worse = np.all(p[None, :, :] <= block, axis=-1)  # [i, j]: p_j <= p_i everywhere
        better = np.any(p[None, :, :] < block, axis=-1)  # [i, j]: p_j < p_i somewhere
        equal = np.all(p[None, :, :] == block, axis=-1)
        first = earlier[None, :] < np.arange(start, start + block.shape[0])[:, None]
        keep[start : start + chunk] = ~np.any((no_worse & better) | (equal & first), axis=1)
    return keep


def objective_points(rows: Sequence[Mapping], keys: Sequence[str]) -> np.ndarray:
    """The (N, D) minimization array of ``rows`` on ``keys`` (metrics in :data:`MAXIMIZED`
    negated).

    >>> objective_points([{"latency_s": 2.0, "accuracy": 0.9}], ["latency_s", "accuracy"])
    array([[ 2. , -0.9]])
    """
    return _metric_values(rows, keys) * _signs(keys)


def _signs(keys: Sequence[str]) -> np.ndarray:
    """-1 for metrics in :data:`MAXIMIZED`, +1 for the others; shape=(D,)."""
    if not keys:
        raise ValueError("keys must name at least one metric, got none")
    return np.array([-1.0 if k in MAXIMIZED else 1.0 for k in keys])


def _metric_values(rows: Sequence[Mapping], keys: Sequence[str]) -> np.ndarray:
    """The raw values of ``keys`` in ``rows``; shape=(N, D)."""
    values = np.array([[float(r[k]) for k in keys] for r in rows], dtype=float)
    return values.reshape(len(rows), len(keys))


def pareto_front(
    rows: Sequence[Mapping], keys: Sequence[str], feasible_only: bool = True
) -> list[Mapping]:
    """The rows on the Pareto front of ``keys``, in their original order.

    With ``feasible_only`` rows whose ``feasible`` entry is false are left out first (rows
    without that entry count as feasible).

    >>> rows = [{"latency_s": 1.0, "energy_j": 3.0, "feasible": True},
    ...         {"latency_s": 2.0, "energy_j": 4.0, "feasible": True},
    ...         {"latency_s": 0.5, "energy_j": 0.5, "feasible": False}]
    >>> [r["latency_s"] for r in pareto_front(rows, ["latency_s", "energy_j"])]
    [1.0]
    """
    kept = [r for r in rows if r.get("feasible", True)] if feasible_only else list(rows)
    if not kept:
        return []
    mask = pareto_mask(objective_points(kept, keys))
    return [r for r, m in zip(kept, mask, strict=True) if m]


def _hypervolume_2d(p: np.ndarray, ref: np.ndarray) -> float:
    """Sweep along x: ``HV = sum_i (x_{i+1} - x_i) * (r_y - min_{j <= i} y_j)`` with the points
    sorted by x and ``x_{N} = r_x`` (dominated points add nothing: the running minimum)."""
    order = np.lexsort((p[:, 1], p[:, 0]))
    x, y = p[order, 0], p[order, 1]
    widths = np.diff(np.append(x, ref[0]))
    heights = ref[1] - np.minimum.accumulate(y)
    return float(np.sum(widths * heights))


def _hypervolume_3d(p: np.ndarray, ref: np.ndarray) -> float:
    """Slicing along z: ``HV = sum_i (z_{i+1} - z_i) * HV_2d({p_j : j <= i})`` with the points
    sorted by z and ``z_{N} = r_z``."""
    p = p[pareto_mask(p)]
    p = p[np.argsort(p[:, 2], kind="stable")]
    depths = np.diff(np.append(p[:, 2], ref[2]))
    return float(
        sum(d * _hypervolume_2d(p[: i + 1, :2], ref[:2]) for i, d in enumerate(depths) if d > 0)
    )


def hypervolume(points, ref) -> float:
    """Exact hypervolume of ``points`` (shape (N, D), D = 1, 2 or 3, minimized) bounded by
    ``ref`` (shape (D,)); points not strictly better than ``ref`` in every coordinate add
    nothing.

    >>> hypervolume([[1.0, 1.0, 1.0]], ref=[2.0, 3.0, 4.0])  # 1 * 2 * 3
    6.0
    >>> hypervolume([[5.0, 0.0]], ref=[4.0, 4.0])
    0.0
    """
    p = _as_points(points)
    r = np.asarray(ref, dtype=float)
    if r.shape != (p.shape[1],) or not np.isfinite(r).all():
        raise ValueError(f"ref must be finite with shape ({p.shape[1]},), got {r.tolist()}")
    if p.shape[1] > 3:
        raise ValueError(f"hypervolume supports D = 1, 2 or 3 metrics, got D = {p.shape[1]}")
    p = p[np.all(p < r, axis=1)]
    if p.shape[0] == 0:
        return 0.0
    if p.shape[1] == 1:
        return float(r[0] - p[:, 0].min())
    return _hypervolume_2d(p, r) if p.shape[1] == 2 else _hypervolume_3d(p, r)


def _log_points(points, keys: Sequence[str], name: str) -> np.ndarray:
    """``s_k * log(v_k)`` per column (``s_k = -1`` for maximized metrics); values must be > 0."""
    v = _as_points(points, f"points of {name}")
    if v.shape[1] != len(keys):
        raise ValueError(f"{name}: points have {v.shape[1]} columns but keys name {len(keys)}")
    bad = ~(np.isfinite(v) & (v > 0))
    if bad.any():
        i, k = np.argwhere(bad)[0]
        raise ValueError(f"{name}: {keys[k]} must be finite and > 0 for a log scale, got {v[i, k]}")
    return np.log(v) * _signs(keys)


def normalized_hypervolume(
    point_sets: Mapping[str, np.ndarray | Sequence[Mapping]],
    keys: Sequence[str],
    margin: float = 1.1,
) -> dict[str, float]:
    """Hypervolume of each set in a box shared by all sets, so methods compare fairly.

    A set is a list of result rows (only feasible rows count) or an array of shape (N, D) of
    raw metric values in the order of ``keys`` (all taken as feasible). Each metric ``v_k`` is
    put on a log scale, ``z_k = s_k log v_k`` with ``s_k = -1`` for maximized metrics
    (accuracy) and ``+1`` otherwise. Over the union of all sets,

        ideal_k = min z_k,    ref_k = max z_k + log(margin),

    i.e. the reference is the worst value seen, made worse by the factor ``margin`` (a larger
    value, or a smaller accuracy), so that the worst points still add volume. Each set is
    scaled to ``(z - ideal) / (ref - ideal)`` and its hypervolume taken against ``(1, ..., 1)``:
    a number in [0, 1], 0 for an empty set.

    >>> sets = {"a": np.array([[1.0, 1.0]]), "b": np.array([[2.0, 2.0]])}
    >>> {k: round(v, 4) for k, v in normalized_hypervolume(sets, ["latency_s", "energy_j"],
    ...                                                     margin=2.0).items()}
    {'a': 1.0, 'b': 0.25}
    """
    if not 1 <= len(keys) <= 3:
        raise ValueError(f"keys must name 1, 2 or 3 metrics, got {list(keys)}")
    if not margin > 1:
        raise ValueError(f"margin must be > 1, got {margin}")
    logs = {}
    for name, points in point_sets.items():
        if not isinstance(points, np.ndarray):
            points = _metric_values([r for r in points if r.get("feasible", True)], keys)
        logs[name] = _log_points(points, keys, name)
    every = np.concatenate([np.zeros((0, len(keys))), *logs.values()], axis=0)
    if every.shape[0] == 0:
        return dict.fromkeys(logs, 0.0)
    ideal = every.min(axis=0)
    ref = every.max(axis=0) + np.log(margin)
    unit = np.ones(len(keys))
    return {name: hypervolume((z - ideal) / (ref - ideal), unit) for name, z in logs.items()}
