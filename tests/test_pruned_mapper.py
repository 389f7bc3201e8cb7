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
