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

:func:`default_mapping` computes what depends on one tile axis once per axis, then the
candidates' cycles and bytes with the same float64 operations as :func:`grid_cycles_bytes`
(so the same values, bit for bit, and the same pick, ties included: a test checks it), one
slab of a block at a time, without materializing the grid.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from hw import buckets, memory
from hw.arith import EXACT
from hw.types import LayerBits, Mapping, NPUConfig, Workload, anonymous
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
def default_mapping(
    config: NPUConfig, workload: Workload, layer_bits: LayerBits | None = None
) -> Mapping:
    """Per layer, the fitting candidate of :func:`pruned_grid` with the fewest cycles
    (``dram_cycles + exposed_cycles``), ties going to the fewest DRAM bytes: the optimum of
    the full :func:`tile_grid`. Where nothing fits, the smallest legal tiles are returned
    (``CostReport.fits`` is then False). ``layer_bits``: the layers' widths (``None``: the
    config's for every layer). The compiled program is keyed on the layer count (its bucket,
    :mod:`hw.buckets`, at the top level) and the config's switches, not on names or layer
    kinds (the tiles depend on neither).
    """
    config, workload = anonymous(config, workload)
    n = len(workload.kinds)
    if not buckets.applies(config, workload, layer_bits):
        return _default_mapping(config, workload, layer_bits)
    size = buckets.bucket(n)  # a top-level call: the bucket's program (hw.buckets)
    workload = buckets.pad_workload(workload, size)
    layer_bits = buckets.pad_bits(layer_bits, n, size)
    return buckets.cut_mapping(_default_mapping(config, workload, layer_bits), n)


@jax.jit
def _default_mapping(config: NPUConfig, workload: Workload, layer_bits) -> Mapping:
    if layer_bits is None:
        layer_bits = LayerBits.of(config)
    bits = layer_bits if isinstance(layer_bits, LayerBits) else LayerBits(*layer_bits)
    blocks = pruned_blocks(config, workload)
    orders = [o for o, kinds in enumerate(PRUNED_BLOCKS) for _ in kinds]
    best = [_block_best(config, workload, b, o, bits) for b, o in zip(blocks, orders, strict=True)]
    stacked = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *best)
    mappings, cycles, total_bytes = stacked
    index = _fewest(cycles, total_bytes)[2][None, :]
    return jax.tree_util.tree_map(lambda c: jnp.take_along_axis(c, index, axis=0)[0], mappings)


def _fewest(cycles, total_bytes):
    """``(cycles, bytes, index)`` of the candidate with the fewest cycles, then the fewest
    bytes, per layer (shape=(..., L) in, the candidates on the leading axes, flattened in
    row-major order by ``index``; (L,) out; the first on ties; cycles are ``inf`` where a
    candidate does not fit, and index 0 is returned where none does)."""
    axes = tuple(range(cycles.ndim - 1))
    count = math.prod(cycles.shape[:-1])
    fewest = jnp.min(cycles, axis=axes, keepdims=True)
    masked = jnp.where((cycles == fewest) & (cycles < jnp.inf), total_bytes, jnp.inf)
    fewest_bytes = jnp.min(masked, axis=axes, keepdims=True)
    # The first index holding the minimum (an argmin made of plain reductions, which XLA
    # runs several times faster than its variadic argmin).
    iota = jnp.arange(count).reshape((*cycles.shape[:-1], 1))
    index = jnp.min(jnp.where(masked == fewest_bytes, iota, count), axis=axes)
    return fewest.reshape(-1), fewest_bytes.reshape(-1), index % count


def _block_best(config: NPUConfig, workload: Workload, block: Mapping, order: int, bits: LayerBits):
    """``(mapping, cycles, bytes)`` of a block's best candidate per layer (:func:`_fewest`);
    the tiles are read off the block's axes, not gathered from a materialized grid.

    A block with two candidate axes is scored one slab (one value of its first axis) at a
    time in a loop, the best so far carried along: the per-axis terms are computed once,
    before the loop, and a slab's scores stay small.
    """
    layers = workload.gemm_m.shape[-1]
    tiles = (block.tile_m, block.tile_k, block.tile_n)
    shape = (*(t.shape[i] for i, t in enumerate(tiles)), layers)
    axes, layer = _block_terms(config, workload, block, bits)
    free = [i for i in range(3) if shape[i] > 1]
    if len(free) < 2:
        cycles, total_bytes = _slab_scores(config, order, axes, layer, shape)
        fewest, fewest_bytes, index = _fewest(cycles, total_bytes)
    else:
        axis, slab = free[0], math.prod(shape[free[1] : 3])
        slab_shape = (*shape[:axis], 1, *shape[axis + 1 :])

        def body(i, best):
            part = [_index_axis(x, axis, i, len(shape)) for x in axes]
            cycles, total_bytes = _slab_scores(config, order, part, layer, slab_shape)
            c, b, j = _fewest(cycles, total_bytes)
            # Strictly better only: on ties the earlier slab (the lower index) stays.
            better = (c < best[0]) | ((c == best[0]) & (b < best[1]))
            new = (c, b, i * slab + j)
            return tuple(jnp.where(better, n, o) for n, o in zip(new, best, strict=True))

        inf = jnp.full((layers,), jnp.inf)
        start = (inf, inf, jnp.zeros((layers,), jnp.int64))
        fewest, fewest_bytes, index = jax.lax.fori_loop(0, shape[axis], body, start)
    picked = []
    for i, t in enumerate(tiles):
        axis_index = (index // math.prod(shape[i + 1 : 3])) % shape[i]
        picked.append(jnp.take_along_axis(t.reshape(-1, layers), axis_index[None], axis=0)[0])
    order = jnp.broadcast_to(block.loop_order.reshape(()), (layers,))
    return Mapping(*picked, order), fewest, fewest_bytes


def _slab_scores(config: NPUConfig, order: int, axes, layer, shape):
    """:func:`_candidate_scores`, broadcast to ``shape`` (the candidates and the layers)."""
    cycles, total_bytes = _candidate_scores(config, order, axes, layer)
    return jnp.broadcast_to(cycles, shape), jnp.broadcast_to(total_bytes, shape)


def _index_axis(x, axis: int, i, ndim: int):
    """``x``'s entry ``i`` on ``axis`` (counted among the last ``ndim``), kept as a size-1
    axis; ``x`` as it is where that axis is broadcast (size 1) or absent."""
    x = jnp.asarray(x)
    pos = x.ndim - ndim + axis
    if pos < 0 or x.shape[pos] == 1:
        return x
    if isinstance(i, int):
        return jax.lax.index_in_dim(x, i, pos, keepdims=True)
    return jax.lax.dynamic_index_in_dim(x, i, pos, keepdims=True)


def _block_terms(config: NPUConfig, workload: Workload, block: Mapping, bits: LayerBits):
    """What :func:`_candidate_scores` needs of a block of :func:`pruned_blocks`: per tile axis
    (shape=(n_m, 1, 1, L), (1, n_k, 1, L) or (1, 1, n_n, L)) the tiles and trip counts, per
    layer the bytes and sizes no tile changes."""
    tm, tk, tn = block.tile_m, block.tile_k, block.tile_n
    wl = workload
    f64 = jnp.result_type(float)
    trips = []
    for dim, tile in zip((wl.gemm_m, wl.gemm_k, wl.gemm_n), (tm, tk, tn), strict=True):
        tile = jnp.maximum(tile, 1)
        if jnp.issubdtype(tile.dtype, jnp.integer):
            # ceil(d / t) in float64, exact for integers below 2**52 (a non-integer quotient
            # is at least 1/t from an integer, more than its rounding error); int64 division
            # does not vectorize and costs tens of cycles.
            trips.append(jnp.ceil(dim.astype(f64) / tile.astype(f64)))
        else:
            trips.append((-(-dim // tile)).astype(f64))  # memory.fetch_factors' ceil_div
    nm, nk, nn = trips
    # In float64 from here (exact: every count and tile is an integer below 2**53), so that
    # the per-candidate work vectorizes (int64 products and conversions do not on most CPUs).
    tm, tk, tn = (x.astype(f64) for x in (tm, tk, tn))
    # Per layer (shape=(L,) or scalar): the bytes and sizes that no tile changes.
    a_b, w_b, acc_b = bits.a_bits / 8.0, bits.w_bits / 8.0, config.acc_bits / 8.0
    sizes = (config.ifmap_sram_kib, config.filter_sram_kib, config.ofmap_sram_kib)
    layer = dict(
        streams=wl.gemm_count > 0,
        ifmap=wl.ifmap_elems,
        filter=wl.filter_elems,
        ofmap=wl.ofmap_elems,
        a_b=a_b,
        w_b=w_b,
        acc_b=acc_b,
        a_bits=bits.a_bits,
        w_bits=bits.w_bits,
        bw=memory.bw_bytes_per_cycle(config),
        room=1024.0 * sum(sizes) if config.unified_sram else tuple(1024.0 * s for s in sizes),
    )
    return (tm, tk, tn, nm, nk, nn), layer


def _candidate_scores(config: NPUConfig, order: int, axes, layer):
    """``(cycles, dram_bytes)`` of the candidates whose per-axis terms are ``axes`` (from
    :func:`_block_terms`, broadcast against each other): the operations of
    :func:`grid_cycles_bytes`, in the same order, for one static loop order."""
    tm, tk, tn, nm, nk, nn = axes
    p = layer
    one = jnp.ones((), jnp.result_type(float))

    def many(n):  # memory.fetch_factors' step, exact: 1.0 if the loop has more than one trip
        return (n > 1).astype(one.dtype)

    def either(a, b):
        return a + b - a * b

    # The loop-order table of hw.memory, for this block's order.
    if order == 0:
        f_in = 1 + (nn - 1) * many(nk)
        f_w = 1 + (nm - 1) * either(many(nk), many(nn))
        spill = None
    elif order == 1:
        f_in = 1 + (nn - 1) * either(many(nk), many(nm))
        f_w = one
        spill = (nk - 1) * many(nm)
    else:
        f_in = one
        f_w = 1 + (nm - 1) * either(many(nk), many(nn))
        spill = (nk - 1) * many(nn)
    # memory.dram_traffic and memory.dram_cycles
    streams = p["streams"]
    in_bytes = p["ifmap"] * jnp.where(streams, f_in, 1.0) * p["a_b"]
    w_bytes = p["filter"] * jnp.where(streams, f_w, 0.0) * p["w_b"]
    out_bytes = p["ofmap"] * p["a_b"]
    psum = 0.0 if spill is None else jnp.where(streams, spill, 0.0) * p["ofmap"] * p["acc_b"]
    total = in_bytes + w_bytes + (out_bytes + psum) + psum
    bw = p["bw"]
    if config.dram_per_stream:
        busiest = jnp.maximum(jnp.maximum(in_bytes, w_bytes), out_bytes + psum + psum)
        dram = jnp.ceil(busiest / bw)
    else:
        dram = jnp.ceil(total / bw)
    # memory.tile_bytes, memory.exposed_cycles and memory.capacity_slack
    a_tile = tm * tk * p["a_bits"] / 8.0
    w_tile = tk * tn * p["w_bits"] / 8.0
    tmn = tm * tn
    o_tile = tmn * config.acc_bits / 8.0
    first_a = jnp.minimum(a_tile, p["ifmap"] * p["a_b"])
    first_w = jnp.minimum(w_tile, p["filter"] * p["w_bits"] / 8.0)
    first = jnp.maximum(first_a, first_w) if config.dram_per_stream else first_a + first_w
    last = jnp.minimum(tmn * p["a_b"], out_bytes)
    exposed = jnp.ceil(first / bw) + jnp.ceil(last / bw)
    cycles = dram + jnp.where(streams, exposed, 0.0)
    if config.unified_sram:
        fits = p["room"] - 2.0 * (a_tile + w_tile + o_tile) >= 0
    else:
        room_i, room_f, room_o = p["room"]
        fits = (room_i - 2.0 * a_tile >= 0) & (room_f - 2.0 * w_tile >= 0)
        fits = fits & (room_o - 2.0 * o_tile >= 0)
    return jnp.where(fits, cycles, jnp.inf), total


def grid_cycles_bytes(config: NPUConfig, workload: Workload, grid: Mapping, bits: LayerBits):
    """``(cycles, dram_bytes, fits)`` of every candidate of ``grid`` (cycles: DRAM transfer
    plus prologue and epilogue), in the grid's (broadcast) shape."""
    traffic = memory.dram_traffic(config, workload, grid, bits, EXACT)
    cycles = memory.dram_cycles(config, traffic, EXACT) + memory.exposed_cycles(
        config, workload, grid, bits, EXACT
    )
    return cycles, traffic.total_bytes, memory.fits(config, grid, bits)
