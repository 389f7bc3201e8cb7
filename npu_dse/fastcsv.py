"""The fast path of SCALE-Sim topology CSVs: plain files read as columns, in bulk.

A file qualifies when it has no quotes, no NUL and no lone carriage return, and every data
row is exactly the format's fields (a name, then ASCII decimal counts of at most 15 digits)
with at most trailing empty cells; blank rows may come anywhere. Such a file means the same
to :mod:`csv` and to a split on commas, so the columns here are what the row-by-row reader
(``npu_dse.workloads``) would find. Any other file, and any value the row-by-row reader would
refuse (a zero, a filter larger than its input, a count past ``hw.bounds.WORK_MAX``), makes
these functions return None: that reader then runs and names the row and the field.

>>> header, rows = split_rows("Layer, M, N, K,\\ng0, 64, 32, 16,\\n\\ng1, 8, 8, 8\\n", 4)
>>> header, rows
((1, ['Layer', 'M', 'N', 'K']), [('g0', '64', '32', '16'), ('g1', '8', '8', '8')])
>>> gemm_columns(rows)["filter_elems"].tolist()  # K x N
[512, 64]
"""

from __future__ import annotations

import re

import numpy as np

from hw.bounds import WORK_MAX

_NAME = r'[ \t]*([^,"\s](?:[^,"\n]*[^,"\s])?)[ \t]*'
_COUNT = r",[ \t]*([0-9]{1,15})[ \t]*"
_BLANK = " \t,"


def _row_pattern(n_fields: int) -> re.Pattern:
    """A data row: a name, ``n_fields - 1`` counts, then only empty cells (one line)."""
    return re.compile("^" + _NAME + _COUNT * (n_fields - 1) + r"(?:,[ \t]*)*$", re.MULTILINE)


def split_rows(text: str, n_fields: int) -> tuple[tuple[int, list[str]], list[tuple]] | None:
    """``((header row number, header cells), data rows as tuples of stripped cells)``, or None
    when ``text`` does not qualify (see the module docstring) or has no data row."""
    if '"' in text or "\0" in text or text.count("\r") != text.count("\r\n"):
        return None
    lines = text.replace("\r\n", "\n").split("\n")
    first = next((i for i, line in enumerate(lines) if line.strip(_BLANK)), None)
    if first is None:
        return None
    cells = [c.strip() for c in lines[first].split(",")]
    while cells and not cells[-1]:
        cells.pop()
    if not cells or not all(cells):
        return None  # an empty header cell: the row-by-row reader says what is wrong
    rest = lines[first + 1 :]
    filled = sum(1 for line in rest if line.strip(_BLANK))
    rows = _row_pattern(n_fields).findall("\n".join(rest))
    if not rows or len(rows) != filled:
        return None
    return (first + 1, cells), rows


def _counts(rows: list[tuple], n_fields: int) -> np.ndarray | None:
    """The rows' counts as int64, shape ``(n_fields - 1, rows)``; None if any is 0."""
    counts = np.array([row[1:] for row in rows], dtype=np.int64).T.reshape(n_fields - 1, -1)
    return None if (counts < 1).any() else counts


def conv_columns(rows: list[tuple]) -> dict[str, np.ndarray] | None:
    """SCALE-Sim's lowering of conv rows (``hw.layers.conv2d(..., rounding="ceil")``, no
    padding) as ``hw.types.Workload`` fields; None where a row would be refused."""
    counts = _counts(rows, 8)
    if counts is None:
        return None
    h, w, fh, fw, c, nf, stride = counts
    if (fh > h).any() or (fw > w).any():
        return None
    out_h, out_w = -(-(h - fh + stride) // stride), -(-(w - fw + stride) // stride)
    dims = {
        "gemm_m": (out_h, out_w),
        "gemm_k": (fh, fw, c),
        "gemm_n": (nf,),
        "ifmap_elems": (h, w, c),
        "filter_elems": (fh, fw, c, nf),
        "ofmap_elems": (out_h, out_w, nf),
    }
    return _products(dims, count=np.ones_like(h))


def gemm_columns(rows: list[tuple]) -> dict[str, np.ndarray] | None:
    """GEMM rows ``Layer, M, N, K`` (``hw.layers.gemm``) as ``hw.types.Workload`` fields."""
    counts = _counts(rows, 4)
    if counts is None:
        return None
    m, n, k = counts
    dims = {
        "gemm_m": (m,),
        "gemm_k": (k,),
        "gemm_n": (n,),
        "ifmap_elems": (m, k),
        "filter_elems": (k, n),
        "ofmap_elems": (m, n),
    }
    return _products(dims, count=np.ones_like(m))


def _products(dims: dict[str, tuple], count: np.ndarray) -> dict[str, np.ndarray] | None:
    """Each field the product of its factors, in int64 when every product is at most
    ``WORK_MAX / 2`` (checked in float64 first); None otherwise."""
    estimate = {f: np.prod([x.astype(np.float64) for x in xs], axis=0) for f, xs in dims.items()}
    if any(float(v.max()) > WORK_MAX / 2 for v in estimate.values()):
        return None
    exact = {f: np.prod(np.stack(xs), axis=0) for f, xs in dims.items()}
    exact["gemm_count"] = count
    exact["vector_ops"] = np.zeros_like(count)
    return exact
