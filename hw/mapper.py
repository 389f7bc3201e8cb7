"""The mapper: a grid of DRAM-level tiles and loop orders, pruned in closed form, and its pick.

The full grid holds, for every layer, the power-of-two tiles ``clip(2**i, lo, dim)`` for
``i < TILE_EXPONENTS`` and the full dimension, on each of ``M``, ``K`` and ``N``, in each of
the three loop orders: ``(TILE_EXPONENTS + 1)**3 * 3`` = 17,496 candidates, shape ``(C, L)``
(:func:`tile_grid`). ``lo`` is the smallest legal tile (:func:`min_tiles`).

Most of them are dominated. In each loop order (``hw.memory``'s table) one loop's trip count
enters the DRAM traffic only through whether it exceeds one: ``nk`` in order ``out``, ``nm``
in ``weight``, ``nn`` in ``input``. Every tile that keeps that loop at more than one trip
moves the same bytes on every stream, and the smallest of them (``lo``) has the smallest
tiles, hence the shortest prologue and epilogue and the best chance to fit: it dominates the
others. The same holds, once that loop has one trip, for the loop that then matters only
through ``> 1``. So the grid keeps, per order (``F``: every candidate, ``L``: ``lo``,
``D``: the full dimension, for ``(tm, tk, tn)``)::

    out     FLF  FDL  LDD
    weight  LFF  DLF  DDL
    input   FFL  FLD  LDD

``3 * (18**2 + 18 + 1)`` = 1,029 candidates (:func:`pruned_grid`), of which every candidate
of the full grid has one with no more bytes on any stream, no more prologue or epilogue
cycles, and tiles no larger: the optimum of any score increasing in those is the same on both
grids (a test checks it on random layers and designs). Candidate 0 is the smallest tiles in
loop order ``out``. :func:`default_mapping` scores the grid by cycles; ``dse.mapper`` scores
the same grid by a weighted energy and latency.
"""

from __future__ import annotations

import math

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
    """The full grid: every candidate tiling and loop order, shape=(C, L), in the order
    (tm, tk, tn, order). The reference that :func:`pruned_grid` is checked against."""
    lo_m, lo_k, lo_n = min_tiles(config, workload)
    tm = _candidates(workload.gemm_m, lo_m)[:, None, None, None, :]
    tk = _candidates(workload.gemm_k, lo_k)[None, :, None, None, :]
    tn = _candidates(workload.gemm_n, lo_n)[None, None, :, None, :]
    order = jnp.arange(3)[None, None, None, :, None]
    e, layers = TILE_EXPONENTS + 1, workload.gemm_m.shape[-1]
    shape = (e, e, e, 3, layers)
    return Mapping(*(jnp.broadcast_to(x, shape).reshape(-1, layers) for x in (tm, tk, tn, order)))


PRUNED_BLOCKS = (("FLF", "FDL", "LDD"), ("LFF", "DLF", "DDL"), ("FFL", "FLD", "LDD"))
"""Per loop order (``out``, ``weight``, ``input``), the kept blocks of ``(tm, tk, tn)``:
``F`` every candidate, ``L`` the smallest legal tile, ``D`` the full dimension."""


def pruned_blocks(config: NPUConfig, workload: Workload) -> list[Mapping]:
    """The blocks of :func:`pruned_grid`, each a Mapping whose fields broadcast to
    ``(n_m, n_k, n_n, L)`` (18 candidates on an ``F`` axis, 1 elsewhere), so that per-axis
    quantities (trip counts, tile bytes) are computed once per axis, not per candidate."""
    lows = min_tiles(config, workload)
    dims = [jnp.maximum(d, 1) for d in (workload.gemm_m, workload.gemm_k, workload.gemm_n)]
    cands = [_candidates(d, lo) for d, lo in zip(dims, lows, strict=True)]
    blocks = []
    for order, kinds in enumerate(PRUNED_BLOCKS):
        for block in kinds:
            tiles = []
            for i, kind in enumerate(block):
                axis = cands[i] if kind == "F" else (lows[i] if kind == "L" else dims[i])[None]
                tiles.append(jnp.expand_dims(axis, [j for j in range(3) if j != i]))
            blocks.append(Mapping(*tiles, jnp.full((1, 1, 1, 1), order)))
    return blocks


def _flat(block_values, layers: int):
    """Broadcast each block's values to its full shape and stack them: shape=(C, L)."""
    return jnp.concatenate(
        [
            jnp.broadcast_to(
                v,
                jnp.broadcast_shapes(
                    *(jnp.shape(x) for x in jax.tree_util.tree_leaves(b)), (layers,)
                ),
            ).reshape(-1, layers)
            for b, v in block_values
        ],
        axis=0,
    )


def pruned_grid(config: NPUConfig, workload: Workload) -> Mapping:
    """The candidates of :func:`tile_grid` that no other candidate dominates in closed form
    (module docs), shape=(1029, L); candidate 0 is the smallest tiles in loop order ``out``."""
    blocks = pruned_blocks(config, workload)
    layers = workload.gemm_m.shape[-1]
    fields = zip(*(jax.tree_util.tree_leaves(b) for b in blocks), strict=True)
    return Mapping(
        *(_flat([(b, x) for b, x in zip(blocks, xs, strict=True)], layers) for xs in fields)
    )


def pick(cands: Mapping, key) -> Mapping:
    """Per layer, the candidate with the lowest ``key`` (shape=(C, L); the first on ties)."""
    best = jnp.argmin(key, axis=0)
    return jax.tree_util.tree_map(lambda c: jnp.take_along_axis(c, best[None, :], axis=0)[0], cands)


@x64
@jax.jit
def default_mapping(
    config: NPUConfig, workload: Workload, layer_bits: LayerBits | None = None
) -> Mapping:
    """Per layer, the fitting candidate of :func:`pruned_grid` with the fewest cycles
    (``dram_cycles + exposed_cycles``), ties going to the fewest DRAM bytes: the optimum of
    the full :func:`tile_grid`. Where nothing fits, the smallest legal tiles are returned
    (``CostReport.fits`` is then False). ``layer_bits``: the layers' widths (``None``: the
    config's for every layer).
    """
    if layer_bits is None:
        layer_bits = LayerBits.of(config)
    bits = layer_bits if isinstance(layer_bits, LayerBits) else LayerBits(*layer_bits)
    best = [_block_best(config, workload, b, bits) for b in pruned_blocks(config, workload)]
    stacked = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *best)
    mappings, cycles, total_bytes = stacked
    index = _fewest(cycles, total_bytes)[2][None, :]
    return jax.tree_util.tree_map(lambda c: jnp.take_along_axis(c, index, axis=0)[0], mappings)


def _fewest(cycles, total_bytes):
    """``(cycles, bytes, index)`` of the candidate with the fewest cycles, then the fewest
    bytes, per layer (shape=(C, L) in, (L,) out; the first on ties; cycles are ``inf``
    where a candidate does not fit, and index 0 is returned where none does)."""
    fewest = jnp.min(cycles, axis=0)
    masked = jnp.where((cycles == fewest) & (cycles < jnp.inf), total_bytes, jnp.inf)
    fewest_bytes = jnp.min(masked, axis=0)
    # The first index holding the minimum (an argmin made of plain reductions).
    iota = jnp.arange(cycles.shape[0])[:, None]
    index = jnp.min(jnp.where(masked == fewest_bytes, iota, cycles.shape[0]), axis=0)
    return fewest, fewest_bytes, index % cycles.shape[0]


def _block_best(config: NPUConfig, workload: Workload, block: Mapping, bits: LayerBits):
    """``(mapping, cycles, bytes)`` of a block's best candidate per layer (:func:`_fewest`);
    the tiles are read off the block's axes, not gathered from a materialized grid."""
    layers = workload.gemm_m.shape[-1]
    tiles = (block.tile_m, block.tile_k, block.tile_n)
    shape = (*(t.shape[i] for i, t in enumerate(tiles)), layers)
    cycles, total_bytes, ok = grid_cycles_bytes(config, workload, block, bits)
    cycles = jnp.broadcast_to(jnp.where(ok, cycles, jnp.inf), shape).reshape(-1, layers)
    total_bytes = jnp.broadcast_to(total_bytes, shape).reshape(-1, layers)
    fewest, fewest_bytes, index = _fewest(cycles, total_bytes)
    picked = []
    for i, t in enumerate(tiles):
        axis_index = (index // math.prod(shape[i + 1 : 3])) % shape[i]
        picked.append(jnp.take_along_axis(t.reshape(-1, layers), axis_index[None], axis=0)[0])
    order = jnp.broadcast_to(block.loop_order.reshape(()), (layers,))
    return Mapping(*picked, order), fewest, fewest_bytes


def grid_cycles_bytes(config: NPUConfig, workload: Workload, grid: Mapping, bits: LayerBits):
    """``(cycles, dram_bytes, fits)`` of every candidate of ``grid`` (cycles: DRAM transfer
    plus prologue and epilogue), in the grid's (broadcast) shape."""
    traffic = memory.dram_traffic(config, workload, grid, bits, EXACT)
    cycles = memory.dram_cycles(config, traffic, EXACT) + memory.exposed_cycles(
        config, workload, grid, bits, EXACT
    )
    return cycles, traffic.total_bytes, memory.fits(config, grid, bits)
