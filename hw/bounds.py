"""The documented ranges of every size, count and rate that enters the program, and why.

Everything a user brings (a workload, a design, a space, a flag, a seed) is checked against
these ranges at the boundary, before anything is traced, so that every count the cost model
derives stays exact in 64-bit integers and every time, energy and power is finite and >= 0.
A value outside its range raises :class:`InputError`, a ``ValueError`` that marks bad input
(the command line exits 2 on it; any other exception is an internal error).

The derivation. The cost model's integer counts of one GEMM layer ``(M x K) . (K x N)``
repeated ``g`` times on an ``R x C`` array (``hw.mac_array``) are at most

    compute cycles  g * ceil(Sr/R) * ceil(Sc/C) * (T + 2R + C)  <=  g (M+X)(K+X)(N+X)
    SRAM words      g * M K ceil(N/C)  (and the other two)      <=  g (M+X)(K+X)(N+X)

with ``X = 2R + C`` and ``{Sr, Sc, T} = {M, K, N}`` (``ceil(S/R) <= S`` for ``R >= 1``, and
each factor ``S + X`` covers its own term of ``T + 2R + C``). The *work* of a workload on an
array,

    W = sum over layers of  [g > 0] g (M+X)(K+X)(N+X) + vector_ops + ifmap + filter + ofmap,

therefore bounds every cycle and word count, and DRAM bytes are at most ``12 W`` (operands of
at most 16 bits, partial sums of at most 32 bits, written and read back: 2 + 2 + 4 + 4 bytes
per word). With ``W <= WORK_MAX = 2^50`` every integer count is below ``2^54``, far inside
int64 (``2^63``), and every cycle count is below ``2^53``, so it is also exact in float64.
The rates keep times and energies finite and positive: a clock of at least ``CLOCK_MHZ[0]``
turns ``2^53`` cycles into at most ~9e6 s, a DRAM bandwidth of at least ``DRAM_BW_GBPS[0]``
moves ``12 W`` bytes in finite time, and technology energies of at most ``TECH_MAX`` pJ times
counts below ``2^64`` stay below 1e26 pJ, far from float64's 1.8e308.

Ranges of the design (inclusive; ``CONFIG_RANGES``), each wider than any chip built:

- ``rows``, ``cols``: 1 to ``ARRAY_DIM_MAX = 2^14`` PEs (TPU v1 is 256 x 256; Jouppi et al.,
  ISCA 2017);
- ``clock_mhz``: 1 to 1e5 MHz (100 GHz, ten times any CMOS logic clock);
- SRAM buffers: 1e-3 KiB (one byte) to 2^30 KiB (1 TiB, above a wafer-scale chip's 40 GB;
  Cerebras WSE-2, Hot Chips 2021);
- ``dram_bw_gbps``: 1e-3 GB/s to 1e5 GB/s (H200's HBM3e: 4.8 TB/s, NVIDIA datasheet 2024);
- ``vector_lanes``: 1 to 2^20; ``host_gops``: 1e-3 to 1e9; ``host_link_gbps``: 1e-3 to 1e5;
- ``dram_capacity_gib``: 1e-3 GiB (1 MiB) to 2^20 GiB (1 PiB, far above any accelerator's
  memory; H200: 141 GB of HBM3e, NVIDIA datasheet 2024);
- ``pe_local_bytes``: 0 (no PE-local level) to 2^20 bytes per PE (Eyeriss: 520 B; Chen et
  al., JSSC 2017);
- technology: energies and areas 0 to ``TECH_MAX`` (pJ, um^2, mW/mm^2), ``node_nm`` 1 to
  1000, ``sram_ref_kib`` as an SRAM buffer, ``sram_energy_exp`` 0 to 2 (CACTI's access energy
  grows about as size^0.5).

Seeds are integers in ``0 .. SEED_MAX = 2^32 - 1``, what ``jax.random.PRNGKey`` and NumPy's
generators (NSGA-II's) both accept.
"""

from __future__ import annotations

import math

import numpy as np

ARRAY_DIM_MAX = 2**14
"""Largest ``rows`` or ``cols`` of a MAC array, PEs."""

WORK_MAX = 2**50
"""Largest work ``W`` of a workload on a design (see the module docstring)."""

LAYERS_MAX = 2**16
"""Most layers in one workload."""

SEED_MAX = 2**32 - 1
"""Largest seed (``jax.random.PRNGKey`` and NumPy generators accept 0 .. 2^32 - 1)."""

TECH_MAX = 1e6
"""Largest technology energy (pJ), area (um^2) or leakage (mW/mm^2) per unit."""

PE_LOCAL_BYTES_MAX = 2.0**20
"""Largest PE-local storage per PE, bytes (1 MiB; Eyeriss has 520 B per PE)."""

SRAM_KIB = (1e-3, 2.0**30)
CLOCK_MHZ = (1.0, 1e5)
DRAM_BW_GBPS = (1e-3, 1e5)

CONFIG_RANGES: dict[str, tuple[float, float, str]] = {
    "rows": (1, ARRAY_DIM_MAX, "PEs"),
    "cols": (1, ARRAY_DIM_MAX, "PEs"),
    "vector_lanes": (1, 2**20, "lanes"),
    "clock_mhz": (*CLOCK_MHZ, "MHz"),
    "ifmap_sram_kib": (*SRAM_KIB, "KiB"),
    "filter_sram_kib": (*SRAM_KIB, "KiB"),
    "ofmap_sram_kib": (*SRAM_KIB, "KiB"),
    "dram_bw_gbps": (*DRAM_BW_GBPS, "GB/s"),
    "host_gops": (1e-3, 1e9, "Gop/s"),
    "host_link_gbps": (1e-3, 1e5, "GB/s"),
    "dram_capacity_gib": (1e-3, 2.0**20, "GiB"),
    "pe_local_bytes": (0.0, PE_LOCAL_BYTES_MAX, "bytes"),
}
"""Design field -> (smallest, largest, unit), inclusive."""

TECH_RANGES: dict[str, tuple[float, float]] = {
    "node_nm": (1.0, 1000.0),
    "sram_ref_kib": SRAM_KIB,
    "sram_energy_exp": (0.0, 2.0),
}
"""Technology fields with their own range; every other one is 0 .. ``TECH_MAX``."""

SPACE_POINTS_MAX = 2**24
"""Most hardware points a space may enumerate at once (``dse.Space.hardware_grid``)."""


class InputError(ValueError):
    """Bad input: a value, file or flag outside what is allowed (one line, naming it)."""


def show(x) -> str:
    """A number as a user would have typed it: ``4`` rather than ``4.0``, ``1e-300`` as is."""
    x = float(x)
    return str(int(x)) if math.isfinite(x) and x == int(x) and abs(x) < 2**63 else f"{x:g}"


def check_range(field: str, value, lo: float, hi: float, unit: str = "") -> None:
    """Raise :class:`InputError` unless every element of ``value`` is finite and in
    ``[lo, hi]``; the message names the field, the first bad value and the range."""
    unit = f" {unit}" if unit else ""
    allowed = f"{field} must be in {show(lo)}..{show(hi)}{unit}"
    if isinstance(value, int) and not isinstance(value, bool):  # exact, whatever its size
        if not lo <= value <= hi:
            raise InputError(f"{allowed}, got {value}")
        return
    try:
        x = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{field} must be a number, got {value!r}") from None
    bad = ~(np.isfinite(x) & (x >= lo) & (x <= hi))
    if bad.any():
        raise InputError(f"{allowed}, got {show(x[bad][0])}")


def check_seed(seed, flag: str = "seed") -> int:
    """``seed`` as an int, or :class:`InputError` unless it is an integer in 0..SEED_MAX."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise InputError(f"{flag} must be an integer in 0..{SEED_MAX}, got {seed!r}")
    if not 0 <= int(seed) <= SEED_MAX:
        raise InputError(f"{flag} must be an integer in 0..{SEED_MAX}, got {seed}")
    return int(seed)


def _ints(value) -> list[int]:
    """The elements of a per-layer field as Python ints (exact, whatever their size)."""
    return [int(v) for v in np.asarray(value, dtype=object).reshape(-1).tolist()]


def layer_work(m: int, k: int, n: int, g: int, other: int, x: int) -> int:
    """Work of one layer (Python ints): ``[g > 0] g (M+X)(K+X)(N+X) + other``."""
    return (g * (m + x) * (k + x) * (n + x) if g > 0 else 0) + other


def _work_far_below_max(workload, x: int) -> int | None:
    """The exact work of ``workload`` (see :func:`check_work`) when a float estimate puts it
    at most ``WORK_MAX / 2``, counted in int64 arrays (exact: every term is then below 2^50);
    None otherwise, or for fields that are not finite and >= 0 (then the Python-int loop
    decides). The estimate's relative error is about 1e-15, far inside the factor 2."""
    names = ("gemm_m", "gemm_k", "gemm_n", "gemm_count")
    names += ("vector_ops", "ifmap_elems", "filter_elems", "ofmap_elems")
    f = [np.asarray(getattr(workload, name), dtype=np.float64).reshape(-1) for name in names]
    if not all(np.isfinite(v).all() and (v >= 0).all() and _is_integral(v) for v in f):
        return None
    m, k, n, g, *others = f
    with np.errstate(over="ignore", invalid="ignore"):
        work = np.where(g > 0, g * (m + x) * (k + x) * (n + x), 0.0) + sum(others)
        estimate = float(work.sum())
    if not estimate <= WORK_MAX / 2:
        return None
    m, k, n, g, *others = (v.astype(np.int64) for v in f)
    gemm = np.where(g > 0, g * (m + x) * (k + x) * (n + x), 0)
    return int(gemm.sum() + sum(int(o.sum()) for o in others))


def _is_integral(v: np.ndarray) -> bool:
    return bool((v == np.floor(v)).all())


def check_work(workload, rows_max=0, cols_max=0, names=None) -> int:
    """The work ``W`` of ``workload`` on arrays up to ``rows_max x cols_max`` (0: the workload
    alone), or :class:`InputError` naming the first layer that takes it past ``WORK_MAX``.

    ``workload`` has the fields of ``hw.types.Workload`` (shape ``(..., L)``); leading batch
    axes count each element. Exact: the sum is taken over Python ints."""
    x = 2 * int(rows_max) + int(cols_max)
    fast = _work_far_below_max(workload, x)
    if fast is not None:
        return fast
    fields = ("gemm_m", "gemm_k", "gemm_n", "gemm_count")
    dims = [_ints(getattr(workload, f)) for f in fields]
    others = [
        _ints(getattr(workload, f))
        for f in ("vector_ops", "ifmap_elems", "filter_elems", "ofmap_elems")
    ]
    names = list(names if names is not None else workload.names)
    total = 0
    for i, (m, k, n, g) in enumerate(zip(*dims, strict=True)):
        total += layer_work(m, k, n, g, sum(o[i] for o in others), x)
        if total > WORK_MAX:
            where = f"layer {names[i % len(names)]!r}" if names else f"layer {i}"
            on = f" on a {rows_max}x{cols_max} array" if x else ""
            raise InputError(
                f"workload too large{on}: at {where} its work (MACs and element counts "
                f"with array padding) passes 2^50 = {WORK_MAX}, beyond which counts lose "
                "exactness; split the workload or shrink the layer"
            )
    return total
