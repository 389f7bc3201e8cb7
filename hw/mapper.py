"""The exhaustive mapper: one grid of DRAM-level tiles and loop orders, and its pick per layer.

The grid holds, for every layer, the power-of-two tiles ``clip(2**i, lo, dim)`` for
``i < TILE_EXPONENTS`` and the full dimension, on each of ``M``, ``K`` and ``N``, in each of
the three loop orders: ``C = (TILE_EXPONENTS + 1)**3 * 3`` candidates, shape ``(C, L)``.
``lo`` is the smallest legal tile (:func:`min_tiles`), so candidate 0 is the smallest tiles in
loop order ``out``. :func:`default_mapping` scores the grid by cycles; ``dse.mapper`` scores
the same grid by a weighted energy and latency.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from hw import memory
from hw.arith import EXACT
from hw.types import LayerBits, Mapping, NPUConfig, Workload
from hw.x64 import x64

TILE_EXPONENTS = 17
"""Tile candidates ``2**0 .. 2**16`` (and the full dimension)."""


def min_tiles(config: NPUConfig, workload: Workload):
    """Smallest legal tiles ``(tm, tk, tn)``: one array fold of the stationary operand.

    The spatial GEMM dimensions of the dataflow must cover one fold (``min(dim, R)`` on the
    rows, ``min(dim, C)`` on the columns); the temporal one can be 1.
    """
    m, k, n = workload.gemm_m, workload.gemm_k, workload.gemm_n
    r, c, df = config.rows, config.cols, config.dataflow
    one = jnp.ones_like(m)
    tm = jnp.where(df == 0, jnp.minimum(m, r), jnp.where(df == 2, jnp.minimum(m, c), one))
    tk = jnp.where(df == 0, one, jnp.minimum(k, r))
    tn = jnp.where(df == 2, one, jnp.minimum(n, c))
    return jnp.maximum(tm, 1), jnp.maximum(tk, 1), jnp.maximum(tn, 1)


def _candidates(dim, lo):
    """``clip(2**i, lo, dim)`` for i < TILE_EXPONENTS, and ``dim``: shape (E + 1, L)."""
    pows = 2 ** jnp.arange(TILE_EXPONENTS, dtype=jnp.int64)
    cand = jnp.clip(pows[:, None], lo[None, :], jnp.maximum(dim, 1)[None, :])
    return jnp.concatenate([cand, jnp.maximum(dim, 1)[None, :]], axis=0)


def tile_grid(config: NPUConfig, workload: Workload) -> Mapping:
    """Every candidate tiling and loop order, shape=(C, L), in the order (tm, tk, tn, order)."""
    lo_m, lo_k, lo_n = min_tiles(config, workload)
    tm = _candidates(workload.gemm_m, lo_m)[:, None, None, None, :]
    tk = _candidates(workload.gemm_k, lo_k)[None, :, None, None, :]
    tn = _candidates(workload.gemm_n, lo_n)[None, None, :, None, :]
    order = jnp.arange(3)[None, None, None, :, None]
    e, layers = TILE_EXPONENTS + 1, workload.gemm_m.shape[-1]
    shape = (e, e, e, 3, layers)
    return Mapping(*(jnp.broadcast_to(x, shape).reshape(-1, layers) for x in (tm, tk, tn, order)))


def pick(cands: Mapping, key) -> Mapping:
    """Per layer, the candidate with the lowest ``key`` (shape=(C, L); the first on ties)."""
    best = jnp.argmin(key, axis=0)
    return jax.tree_util.tree_map(lambda c: jnp.take_along_axis(c, best[None, :], axis=0)[0], cands)


@x64
@jax.jit
def default_mapping(
    config: NPUConfig, workload: Workload, layer_bits: LayerBits | None = None
) -> Mapping:
    """Per layer, the fitting candidate of :func:`tile_grid` with the fewest cycles,

        key = dram_cycles + exposed_cycles + dram_bytes / (max dram_bytes + 1)

    (ties go to the fewest DRAM bytes). Where nothing fits, the smallest legal tiles are
    returned (``CostReport.fits`` is then False). ``layer_bits``: the layers' widths
    (``None``: the config's for every layer).
    """
    if layer_bits is None:
        layer_bits = LayerBits.of(config)
    bits = layer_bits if isinstance(layer_bits, LayerBits) else LayerBits(*layer_bits)
    grid = tile_grid(config, workload)
    traffic = memory.dram_traffic(config, workload, grid, bits, EXACT)
    cycles = memory.dram_cycles(config, traffic, EXACT) + memory.exposed_cycles(
        config, workload, grid, bits, EXACT
    )
    total_bytes = traffic.total_bytes
    key = cycles + total_bytes / (jnp.max(total_bytes) + 1.0)
    return pick(grid, jnp.where(memory.fits(config, grid, bits), key, jnp.inf))
