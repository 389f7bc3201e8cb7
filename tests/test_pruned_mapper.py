"""The pruned tile grid returns the full grid's optimum on random layers and designs."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hw import layers, mapper, presets
from hw.types import LayerBits, canonical
from hw.x64 import x64

full_grid = x64(mapper.tile_grid)
pruned_grid = x64(mapper.pruned_grid)
min_tiles = x64(mapper.min_tiles)


def random_case(seed: int, n_layers: int = 12):
    rng = np.random.default_rng(seed)
    dims = np.maximum(1, (2.0 ** rng.uniform(0, 14, (n_layers, 3))).astype(int))
    wl = layers.workload(
        [layers.gemm(f"g{i}", m=int(m), k=int(k), n=int(n)) for i, (m, k, n) in enumerate(dims)]
    )
    sram = float(2.0 ** rng.uniform(2, 12))
    config = dataclasses.replace(
        canonical(presets.get_preset("scalesim-32x32")),
        rows=int(2 ** rng.integers(2, 8)),
        cols=int(2 ** rng.integers(2, 8)),
        dataflow=int(rng.integers(0, 3)),
        ifmap_sram_kib=sram,
        filter_sram_kib=float(2.0 ** rng.uniform(2, 12)),
        ofmap_sram_kib=sram,
        dram_bw_gbps=float(2.0 ** rng.uniform(0, 8)),
        w_bits=float(rng.integers(2, 17)),
        a_bits=float(rng.integers(2, 17)),
        unified_sram=bool(rng.integers(0, 2)),
        dram_per_stream=bool(rng.integers(0, 2)),
    )
    return canonical(config), wl


@x64
def scores(config, wl, grid):
    """``(cycles, bytes)`` per candidate, ``inf`` where the tiles do not fit."""
    cycles, total_bytes, ok = mapper.grid_cycles_bytes(config, wl, grid, LayerBits.of(config))
    return jnp.where(ok, cycles, jnp.inf), jnp.where(ok, total_bytes, jnp.inf)


@pytest.mark.parametrize("seed", range(8))
def test_pruned_mapper_finds_the_full_grid_optimum(seed):
    config, wl = random_case(seed)
    full_cycles, full_bytes = (np.asarray(x) for x in scores(config, wl, full_grid(config, wl)))
    best_cycles = full_cycles.min(axis=0)
    fewest = np.where(full_cycles == best_cycles, full_bytes, np.inf).min(axis=0)
    picked = jax.tree_util.tree_map(lambda x: x[None], mapper.default_mapping(config, wl))
    cycles, total_bytes = (np.asarray(x)[0] for x in scores(config, wl, picked))
    np.testing.assert_array_equal(cycles, best_cycles)
    fits = np.isfinite(best_cycles)
    np.testing.assert_array_equal(total_bytes[fits], fewest[fits])


def test_pruned_grid_is_a_subset_of_the_full_grid():
    config, wl = random_case(1)
    full = full_grid(config, wl)
    pruned = pruned_grid(config, wl)
    assert pruned.tile_m.shape == (3 * (18 * 18 + 18 + 1), wl.num_layers)
    full_set = {
        tuple(c)
        for c in np.stack([np.asarray(x) for x in jax.tree_util.tree_leaves(full)], -1).reshape(
            -1, 4
        )
    }
    rows = np.stack([np.asarray(x) for x in jax.tree_util.tree_leaves(pruned)], -1).reshape(-1, 4)
    assert all(tuple(r) in full_set for r in rows)


def test_nothing_fits_gives_the_smallest_tiles():
    config, wl = random_case(2)
    tiny = dataclasses.replace(
        config, ifmap_sram_kib=1e-3, filter_sram_kib=1e-3, ofmap_sram_kib=1e-3
    )
    got = mapper.default_mapping(canonical(tiny), wl)
    lo = min_tiles(canonical(tiny), wl)
    for g, want in zip((got.tile_m, got.tile_k, got.tile_n), lo, strict=True):
        np.testing.assert_array_equal(np.asarray(g), np.asarray(want))
    np.testing.assert_array_equal(np.asarray(got.loop_order), 0)


def reference_pick(config, wl, bits):
    """The pick over the materialized pruned grid with the generic model (hw.memory): fewest
    cycles, then fewest bytes, the first candidate on ties, candidate 0 where none fits."""
    grid = pruned_grid(config, wl)
    cycles, total_bytes, ok = x64(mapper.grid_cycles_bytes)(config, wl, grid, bits)
    cycles = np.where(np.asarray(ok), np.asarray(cycles), np.inf)
    total_bytes = np.where(np.isfinite(cycles), np.asarray(total_bytes), np.inf)
    fewest = cycles.min(axis=0)
    masked = np.where(cycles == fewest, total_bytes, np.inf)
    index = np.argmin(masked, axis=0)
    index = np.where(np.isfinite(fewest), index, 0)
    return jax.tree_util.tree_map(
        lambda c: np.take_along_axis(np.asarray(c), index[None], 0)[0], grid
    )


@pytest.mark.parametrize("seed", range(8, 14))
def test_the_fast_pick_is_the_reference_pick_candidate_for_candidate(seed):
    """Same tiles and loop order as the generic model's pick, ties included, with per-layer
    widths that are not whole bytes (or not whole bits) and, for odd seeds, array sides held
    as floats (as a gradient search holds them)."""
    config, wl = random_case(seed, n_layers=16)
    rng = np.random.default_rng(seed)
    if seed % 2:
        config = dataclasses.replace(
            config, rows=np.float64(config.rows), cols=np.float64(config.cols)
        )
    bits = LayerBits(
        w_bits=rng.integers(2, 17, wl.num_layers).astype(float) - 0.5 * (seed % 3 == 0),
        a_bits=rng.integers(2, 17, wl.num_layers).astype(float),
    )
    want = reference_pick(config, wl, bits)
    got = mapper.default_mapping(config, wl, bits)
    for g, w in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want), strict=True):
        np.testing.assert_array_equal(np.asarray(g), np.asarray(w))
