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
rows must be in 1..16384 PEs, got 0

Batched configs and workloads (leading axes) are checked element by element; the message gives
the first offending value.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from hw import bounds
from hw.bounds import CONFIG_RANGES, TECH_MAX, TECH_RANGES, InputError
from hw.grouped import GROUPED_LOWERINGS
from hw.schedule import LAYER_KINDS
from hw.types import DATAFLOWS, MEMORY_MODELS, NPUConfig, Workload
from hw.vector import PRECISIONS

BIT_RANGES = {"w_bits": (2, 16), "a_bits": (2, 16), "acc_bits": (2, 32)}
"""Allowed operand and accumulator widths, bits (inclusive)."""

"""Values of ``NPUConfig.memory_model`` that ``hw.cost.evaluate`` knows."""


class InvalidFieldError(InputError):
    """A ``ValueError`` that also records which field was wrong (``.field``)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def _values(value) -> np.ndarray:
    """A field as a flat float64 array (scalars become one element)."""
    try:
        return np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError, OverflowError):
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
    """Raise :class:`InvalidFieldError` unless ``ok`` holds for every element of ``value``."""
    bad = _first_bad(value, ok)
    if bad is not None:
        raise InvalidFieldError(field, f"{field} must be {allowed}, got {_show(bad)}")


def _is_int(x: np.ndarray) -> np.ndarray:
    return x == np.round(x)


def validate_config(config: NPUConfig) -> NPUConfig:
    """Check a design's values; return it unchanged or raise :class:`InvalidFieldError`.

    Allowed: ``rows``, ``cols`` and ``vector_lanes`` integers and, as clock, SRAM sizes, DRAM
    bandwidth, host rates and technology values, within the ranges of ``hw.bounds``;
    ``dataflow`` an integer in 0..2 (``DATAFLOWS``); ``w_bits`` and
    ``a_bits`` in 2..16, ``acc_bits`` in 2..32 (non-integer widths are allowed for smooth
    search; legalized designs round them); ``memory_model`` one of :data:`MEMORY_MODELS`;
    ``grouped_lowering`` one of ``hw.grouped.GROUPED_LOWERINGS``.
    """
    for field in ("rows", "cols", "vector_lanes", "dataflow", *CONFIG_RANGES):
        value = getattr(config, field)
        if isinstance(value, bool | str | list | tuple | dict) or value is None:
            raise InvalidFieldError(
                field, f"{field} must be a number, got {type(value).__name__} {value!r:.40}"
            )
    for field in ("rows", "cols", "vector_lanes"):
        _check(field, getattr(config, field), _is_int, "an integer")
    for field, (lo, hi, unit) in CONFIG_RANGES.items():
        try:
            bounds.check_range(field, getattr(config, field), lo, hi, unit)
        except InputError as err:
            raise InvalidFieldError(field, str(err)) from None
    names = ", ".join(f"{i} ({n})" for i, n in enumerate(DATAFLOWS))
    _check(
        "dataflow",
        config.dataflow,
        lambda x: _is_int(x) & (x >= 0) & (x < len(DATAFLOWS)),
        f"one of {names}",
    )
    _check_tech(config.tech)
    if config.memory_model not in MEMORY_MODELS:
        raise InvalidFieldError(
            "memory_model",
            f"memory_model must be one of {', '.join(MEMORY_MODELS)}, got {config.memory_model!r}",
        )
    if config.grouped_lowering not in GROUPED_LOWERINGS:
        raise InvalidFieldError(
            "grouped_lowering",
            f"grouped_lowering must be one of {', '.join(GROUPED_LOWERINGS)}, "
            f"got {config.grouped_lowering!r}",
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


def _check_tech(tech) -> None:
    """Every technology value finite and in its range (``hw.bounds.TECH_RANGES``)."""
    for field in dataclasses.fields(tech):
        if field.name == "overrides":  # static: the names of the per-access overrides in force
            continue
        lo, hi = TECH_RANGES.get(field.name, (0.0, TECH_MAX))
        try:
            bounds.check_range(f"tech {field.name}", getattr(tech, field.name), lo, hi)
        except InputError as err:
            raise InvalidFieldError(f"tech.{field.name}", str(err)) from None


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
    raise InputError(f"layer {name!r} (index {index}): {field} {allowed}{value}")


def validate_workload(workload: Workload) -> Workload:
    """Check a workload's shapes and counts; return it unchanged or raise ``ValueError``.

    Allowed: at least one layer; every per-layer field of shape ``(..., L)`` with
    ``L = len(names) = len(kinds)``; counts integers >= 0; GEMM dimensions integers >= 1 where
    ``gemm_count > 0``; every layer does some work (a GEMM or vector operations); at most
    ``hw.bounds.LAYERS_MAX`` layers and work up to ``hw.bounds.WORK_MAX``.
    """
    n = len(workload.names)
    if n > bounds.LAYERS_MAX:
        raise InputError(f"a workload has at most {bounds.LAYERS_MAX} layers, got {n}")
    if n == 0:
        raise InputError("a workload needs at least one layer, got 0")
    if len(workload.kinds) != n:
        raise InputError(f"workload has {n} names but {len(workload.kinds)} kinds")
    fields = {f: np.asarray(getattr(workload, f), dtype=np.float64) for f in _DIMS + _COUNTS}
    for field, x in fields.items():
        if x.ndim < 1 or x.shape[-1] != n:
            raise InputError(f"{field} must have shape (..., {n}), got {x.shape}")
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
    bounds.check_work(workload)
    return workload


def validate_pair(config: NPUConfig, workload: Workload) -> None:
    """Check that ``workload`` on ``config``'s array stays within ``hw.bounds.WORK_MAX`` (every
    derived count exact); both must have passed their own checks."""
    rows = int(np.max(np.asarray(config.rows)))
    cols = int(np.max(np.asarray(config.cols)))
    bounds.check_work(workload, rows, cols)


def checked_evaluate(config: NPUConfig, workload: Workload, mapping=None, stall: bool = True):
    """``hw.cost.evaluate`` (exact) after every boundary check: the design, the workload, their
    product (:func:`validate_pair`) and the mapping's tiles (integers in 1 .. the layer's
    dimension or ``2^16``). ``hw.evaluate`` itself checks nothing, being traced and vmapped.

    >>> from hw import layers
    >>> from hw.presets import get_preset
    >>> import dataclasses
    >>> wl = layers.workload([layers.gemm("g", m=64, k=64, n=64)])
    >>> try:
    ...     checked_evaluate(dataclasses.replace(get_preset("scalesim-32x32"), rows=0), wl)
    ... except ValueError as err:
    ...     print(err)
    rows must be in 1..16384 PEs, got 0
    """
    from hw import cost

    validate_config(config)
    validate_workload(workload)
    validate_pair(config, workload)
    if mapping is not None:
        for field, dim in (("tile_m", "gemm_m"), ("tile_k", "gemm_k"), ("tile_n", "gemm_n")):
            tile = np.asarray(getattr(mapping, field), dtype=np.float64)
            top = np.maximum(np.asarray(getattr(workload, dim), dtype=np.float64), 2.0**16)
            bad = ~(np.isfinite(tile) & _is_int(tile) & (tile >= 1) & (tile <= top))
            _check_layers(workload, field, bad, tile, "must be an integer in 1..max(dim, 2^16)")
    return cost.evaluate(config, workload, mapping, stall=stall)
