"""The exact per-layer mapper (dse.mapper): fitting tiles, the loss-weighted score, candidates."""

import dataclasses
import functools

import jax
import numpy as np
import pytest

import hw
from dse import design as dz
from dse import mapper
from dse import objective as obj
from dse.space import Space
from hw import cost, layers
from hw.x64 import x64

FREE = obj.Budgets()


@pytest.fixture(scope="module")
def workload():
    return layers.workload(
        [
            layers.gemm("g", m=64, k=128, n=64),
            layers.conv2d(
                "c", ifmap_h=8, ifmap_w=8, channels=16, num_filters=32, filter_h=3, filter_w=3
            ),
        ]
    )


@pytest.fixture(scope="module")
def space():
    return Space.from_dict({})


def design(space, workload, **changes) -> dz.Design:
    d = dz.base_design(space, workload)
    return dataclasses.replace(d, **{k: np.asarray(v) for k, v in changes.items()})


DESIGNS = {
    "base": {},
    "small-ws": {"rows": 16.0, "cols": 8.0, "sram_kib": 24.0},
    "os-narrow": {"dataflow": 0, "sram_kib": 16.0, "w_bits": [4.0, 8.0], "a_bits": [8.0, 4.0]},
    "is-fast-dram": {"dataflow": 2, "rows": 32.0, "cols": 32.0, "dram_bw_gbps": 64.0},
}


@x64
@functools.partial(jax.jit, static_argnames=("objective", "budgets"))
def map_full(base, workload, d, objective, budgets):
    return mapper.map_design(base, workload, d, objective, budgets)


@x64
@jax.jit
def select_full(base, workload, d, weights):
    config = dz.to_config(base, d, workload)
    return mapper.select(base, workload, d, mapper.full_candidates(config, workload), weights)


@x64
@jax.jit
def candidate_fits(base, workload, d):
    config = dz.to_config(base, d, workload)
    cands = mapper.full_candidates(config, workload)
    return jax.vmap(
        lambda mp: dz.evaluate(base, workload, dataclasses.replace(d, mapping=mp)).fits
    )(cands)


def layer_score(base, workload, d, weights):
    rep = dz.evaluate(base, workload, d)
    return weights[0] * np.asarray(rep.energy_pj) * 1e-12 + weights[1] * np.asarray(rep.latency_s)


@pytest.mark.parametrize("name", ["small-ws", "os-narrow"])
@pytest.mark.parametrize("weights", [(1e-6, 1.0), (1.0, 1e-6), (1.0, 1.0)])
def test_select_fits_when_a_candidate_fits(space, workload, name, weights):
    base = space.base_config()
    d = design(space, workload, **DESIGNS[name])
    fits = np.asarray(candidate_fits(base, workload, d))  # (C, L)
    some = fits.any(axis=0)
    assert (some & ~fits.all(axis=0)).any()  # some layer has a real choice
    picked = select_full(base, workload, d, tuple(np.float64(w) for w in weights))
    rep = dz.evaluate(base, workload, dataclasses.replace(d, mapping=picked))
    assert np.asarray(rep.fits)[some].all()
    # where nothing fits (os-narrow's GEMM in 16 KiB), the smallest tiles
    smallest = mapper.min_mapping(dz.to_config(base, d, workload), workload)
    for a, b in zip(
        jax.tree_util.tree_leaves(picked), jax.tree_util.tree_leaves(smallest), strict=True
    ):
        np.testing.assert_array_equal(np.asarray(a)[~some], np.asarray(b)[~some])


def test_select_falls_back_to_the_smallest_tiles(space, workload):
    base = space.base_config()
    d = design(space, workload, sram_kib=0.01)  # 10 bytes: nothing fits
    picked = select_full(base, workload, d, (np.float64(1.0), np.float64(1.0)))
    smallest = mapper.min_mapping(dz.to_config(base, d, workload), workload)
    for a, b in zip(
        jax.tree_util.tree_leaves(picked), jax.tree_util.tree_leaves(smallest), strict=True
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("objective", ["edp", "energy"])
def test_map_design_beats_the_default_mapping(space, workload, objective):
    """At the loss weights of the latency-first pass, map_design's mapping scores no worse
    than hw.default_mapping's on every layer where the latter fits."""
    base = space.base_config()
    for name, changes in DESIGNS.items():
        d = design(space, workload, **changes)
        mapped = map_full(base, workload, d, objective, FREE)
        first = select_full(base, workload, d, (np.float64(1e-6), np.float64(1.0)))
        m = dz.metrics(dz.evaluate(base, workload, dataclasses.replace(d, mapping=first)))
        weights = tuple(float(w) for w in mapper.loss_weights(m, objective, FREE))
        assert all(np.isfinite(w) and w > 0 for w in weights)
        config = dz.to_config(base, d, workload)
        default = dataclasses.replace(d, mapping=hw.default_mapping(config, workload))
        ok = np.asarray(dz.evaluate(base, workload, default).fits)
        assert np.asarray(dz.evaluate(base, workload, mapped).fits)[ok].all(), name
        ours = layer_score(base, workload, mapped, weights)
        theirs = layer_score(base, workload, default, weights)
        assert (ours[ok] <= theirs[ok] * (1 + 1e-12)).all(), (name, ours, theirs)


def test_local_candidates_include_the_current_tiles():
    wl = layers.workload(
        [layers.gemm("a", m=64, k=128, n=256), layers.gemm("b", m=512, k=32, n=16)]
    )
    space = Space.from_dict({})
    base = space.base_config()
    rng = np.random.default_rng(0)
    for dataflow in (0, 1, 2):
        d = design(space, wl, dataflow=dataflow, rows=16.0, cols=32.0)
        config = dz.to_config(base, d, wl)
        lo = [np.asarray(x) for x in cost.min_tiles(config, wl)]
        dims = [np.asarray(x) for x in (wl.gemm_m, wl.gemm_k, wl.gemm_n)]
        for _ in range(3):
            tiles = [  # powers of two in the legal range of each layer
                2 ** rng.integers(np.log2(lo_), np.log2(dim) + 1)
                for lo_, dim in zip(lo, dims, strict=True)
            ]
            order = rng.integers(0, 3, size=2)
            current = hw.Mapping(*(t.astype(np.int64) for t in tiles), order)
            cands = mapper.local_candidates(config, wl, current)
            c = np.stack([np.asarray(x) for x in jax.tree_util.tree_leaves(cands)], -1)
            assert c.shape == (125 * 3 + 4, 2, 4)
            for layer in range(2):
                want = [int(t[layer]) for t in tiles] + [int(order[layer])]
                assert (c[:, layer] == want).all(axis=-1).any(), (dataflow, want)
                for i in range(3):
                    assert (c[:, layer, i] >= lo[i][layer]).all()
                    assert (c[:, layer, i] <= dims[i][layer]).all()
            smallest = mapper.min_mapping(config, wl)
            assert (
                c[-1, :, :3].tolist()
                == np.stack(
                    [np.asarray(x) for x in (smallest.tile_m, smallest.tile_k, smallest.tile_n)], -1
                ).tolist()
            )


def test_full_candidates_are_legal(space, workload):
    base = space.base_config()
    d = design(space, workload, dataflow=0, rows=16.0)
    config = dz.to_config(base, d, workload)
    cands = mapper.full_candidates(config, workload)
    assert np.shape(cands.tile_m) == (3 * (18**2 + 18 + 1) + 1, 2)  # the pruned grid
    lo = cost.min_tiles(config, workload)
    dims = (workload.gemm_m, workload.gemm_k, workload.gemm_n)
    for t, lo_, dim in zip(mapper.mapping_tiles(cands), lo, dims, strict=True):
        assert (np.asarray(t) >= np.asarray(lo_)).all() and (np.asarray(t) <= np.asarray(dim)).all()
    assert set(np.asarray(cands.loop_order).ravel().tolist()) == {0, 1, 2}
