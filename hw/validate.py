"""Boundary checks: a bad design or workload raises ``ValueError`` before anything is traced.

Inside ``jit`` nothing raises (infeasibility is a flag or a penalty); these checks run on
concrete values where they enter the program (the CLI, file readers, a search's start
points). Each message names the field, the value and what is allowed:

>>> from hw.presets import get_preset
>>> import dataclasses
>>> try:
...     validate_config(dataclasses.replace(get_preset("scalesim-32x32"), rows=0))
... except ValueError as err:
...     print(err)
rows must be an integer >= 1, got 0

Batched configs and workloads (leading axes) are checked element by element; the message gives
the first offending value.
"""

from __future__ import annotations

import numpy as np

from hw.schedule import LAYER_KINDS
from hw.types import DATAFLOWS, MEMORY_MODELS, NPUConfig, Workload
from hw.vector import PRECISIONS

BIT_RANGES = {"w_bits": (2, 16), "a_bits": (2, 16), "acc_bits": (2, 32)}
"""Allowed operand and accumulator widths, bits (inclusive)."""

"""Values of ``NPUConfig.memory_model`` that ``hw.cost.evaluate`` knows."""

_POSITIVE = {
    "clock_mhz": "MHz",
    "ifmap_sram_kib": "KiB",
    "filter_sram_kib": "KiB",
    "ofmap_sram_kib": "KiB",
    "dram_bw_gbps": "GB/s",
}
"""Config fields that must be finite and > 0, with their units."""


class InvalidFieldError(ValueError):
    """A ``ValueError`` that also records which field was wrong (``.field``)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def _values(value) -> np.ndarray:
    """A field as a flat float64 array (scalars become one element)."""
    try:
        return np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        return np.array([np.nan])


def _first_bad(value, ok) -> float | None:
    """The first element of ``value`` where ``ok`` is False, or None if all are fine."""
    x = _values(value)
    bad = ~(np.isfinite(x) & ok(x))
    return x[bad][0].item() if bad.any() else None


def _show(x: float):
    """A value as a user would have typed it: ``4`` rather than ``4.0``."""
    return int(x) if np.isfinite(x) and x == int(x) else x


def _check(field: str, value, ok, allowed: str) -> None:
    bad = _first_bad(value, ok)
    if bad is not None:
        raise InvalidFieldError(field, f"{field} must be {allowed}, got {_show(bad)}")


def _is_int(x: np.ndarray) -> np.ndarray:
    return x == np.round(x)


def validate_config(config: NPUConfig) -> NPUConfig:
    """Check a design's values; return it unchanged or raise :class:`InvalidFieldError`.

    Allowed: ``rows``, ``cols`` and ``vector_lanes`` integers >= 1; ``dataflow`` an integer in
    0..2 (``DATAFLOWS``); clock, SRAM sizes and DRAM bandwidth finite and > 0; ``w_bits`` and
    ``a_bits`` in 2..16, ``acc_bits`` in 2..32 (non-integer widths are allowed for smooth
    search; legalized designs round them); ``memory_model`` one of :data:`MEMORY_MODELS`.
    """
    for field in ("rows", "cols", "vector_lanes"):
        _check(field, getattr(config, field), lambda x: _is_int(x) & (x >= 1), "an integer >= 1")
    names = ", ".join(f"{i} ({n})" for i, n in enumerate(DATAFLOWS))
    _check(
        "dataflow",
        config.dataflow,
        lambda x: _is_int(x) & (x >= 0) & (x < len(DATAFLOWS)),
        f"one of {names}",
    )
    for field, unit in _POSITIVE.items():
        _check(field, getattr(config, field), lambda x: x > 0, f"a number > 0 {unit}")
    if config.memory_model not in MEMORY_MODELS:
        raise InvalidFieldError(
            "memory_model",
            f"memory_model must be one of {', '.join(MEMORY_MODELS)}, got {config.memory_model!r}",
        )
    if config.vector_precision not in PRECISIONS:
        raise InvalidFieldError(
            "vector_precision",
            f"vector_precision must be one of {', '.join(PRECISIONS)}, "
            f"got {config.vector_precision!r}",
        )
    unknown = [k for k in config.unsupported_ops if k not in LAYER_KINDS]
    if unknown:
        raise InvalidFieldError(
            "unsupported_ops",
            f"unsupported_ops: unknown layer kind {unknown[0]!r}; known: {', '.join(LAYER_KINDS)}",
        )
    for field, (lo, hi) in BIT_RANGES.items():
        _check(
            field,
            getattr(config, field),
            lambda x, a=lo, b=hi: (x >= a) & (x <= b),
            f"between {lo} and {hi} bits",
        )
    return config


_COUNTS = ("gemm_count", "ifmap_elems", "filter_elems", "ofmap_elems", "vector_ops")
_DIMS = ("gemm_m", "gemm_k", "gemm_n")


def _check_layers(workload: Workload, field: str, bad: np.ndarray, x, allowed: str) -> None:
    """Raise naming the first layer where ``bad`` holds (``bad`` and ``x`` of shape (..., L))."""
    if not bad.any():
        return
    hit = np.argwhere(bad)[0]
    index = int(hit[-1])
    name = workload.names[index]
    value = "" if x is None else f", got {_show(x[tuple(hit)].item())}"
    raise ValueError(f"layer {name!r} (index {index}): {field} {allowed}{value}")


def validate_workload(workload: Workload) -> Workload:
    """Check a workload's shapes and counts; return it unchanged or raise ``ValueError``.

    Allowed: at least one layer; every per-layer field of shape ``(..., L)`` with
    ``L = len(names) = len(kinds)``; counts integers >= 0; GEMM dimensions integers >= 1 where
    ``gemm_count > 0``; every layer does some work (a GEMM or vector operations).
    """
    n = len(workload.names)
    if n == 0:
        raise ValueError("a workload needs at least one layer, got 0")
    if len(workload.kinds) != n:
        raise ValueError(f"workload has {n} names but {len(workload.kinds)} kinds")
    fields = {f: np.asarray(getattr(workload, f), dtype=np.float64) for f in _DIMS + _COUNTS}
    for field, x in fields.items():
        if x.ndim < 1 or x.shape[-1] != n:
            raise ValueError(f"{field} must have shape (..., {n}), got {x.shape}")
    for field in _COUNTS:
        x = fields[field]
        bad = ~(np.isfinite(x) & _is_int(x) & (x >= 0))
        _check_layers(workload, field, bad, x, "must be an integer >= 0")
    has_gemm = fields["gemm_count"] > 0
    for field in _DIMS:
        x = fields[field]
        bad = has_gemm & ~(np.isfinite(x) & _is_int(x) & (x >= 1))
        _check_layers(workload, field, bad, x, "must be an integer >= 1 when gemm_count > 0")
    idle = ~has_gemm & (fields["vector_ops"] == 0)
    _check_layers(workload, "vector_ops", idle, None, "must be > 0 when gemm_count is 0 (no work)")
    return workload
