"""Throughput of the cost model: exact (layer, design) evaluations and smooth gradients per second.

Run: ``.venv/bin/python benchmarks/bench_cost_model.py [--designs 4096] [--repeats 7]``
(about a minute on a 2-core CPU). The workload is ResNet-18's 20 conv layers
(``npu_dse/data/topologies/resnet18.csv``); each call evaluates every layer on every one of
``--designs`` random designs (array 4-256 per side, all three dataflows, 16 KiB-16 MiB buffers,
1-256 GB/s, 2-16-bit operands), jitted and vmapped over the designs. Five figures, medians of
``--repeats`` timed calls after one warm-up (compilation) call:

* exact, fixed mapping: the cost model proper (cycles, traffic, energy, area) for given tiles;
* exact, with the mapper: the same plus ``default_mapping``'s per-layer search over the 1,029
  undominated tilings and loop orders (what ``npu-dse simulate`` runs);
* pruned grid, generic: the same pick (where a candidate fits) made by scoring the
  materialized 1,029-candidate grid with the generic model (``hw.memory`` through
  ``grid_cycles_bytes``), as the mapper did before it computed per-axis terms once and
  scored a block a slab at a time;
* full-grid mapper (reference): the pick over all 17,496 candidates, on the same designs, so
  that the pruned mapper's speed-up is measured side by side;
* smooth gradient: value and gradient of log EDP with respect to every design parameter.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from hw import cost, mapper, presets
from hw.arith import Arith
from hw.types import LayerBits, canonical
from hw.x64 import x64
from npu_dse.workloads import bundled, load_workload


def random_designs(n: int, seed: int):
    """``n`` random designs around the scalesim-32x32 preset, stacked on a leading axis."""
    rng = np.random.default_rng(seed)
    base = canonical(presets.get_preset("scalesim-32x32"))
    sram = 2.0 ** rng.uniform(4, 14, n)
    fields = dict(
        rows=2 ** rng.integers(2, 9, n),
        cols=2 ** rng.integers(2, 9, n),
        dataflow=rng.integers(0, 3, n),
        ifmap_sram_kib=sram,
        filter_sram_kib=sram,
        ofmap_sram_kib=sram,
        dram_bw_gbps=2.0 ** rng.uniform(0, 8, n),
        w_bits=rng.integers(2, 17, n).astype(float),
        a_bits=rng.integers(2, 17, n).astype(float),
    )
    stacked = jax.tree_util.tree_map(lambda x: np.broadcast_to(x, (n, *np.shape(x))), base)
    return canonical(dataclasses.replace(stacked, **fields))


def _timed(fn, repeats: int) -> float:
    jax.block_until_ready(fn())  # compile
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--designs", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)

    wl, _ = load_workload(bundled("resnet18.csv"))
    designs = random_designs(args.designs, seed=0)
    mapping = cost.default_mapping(canonical(presets.get_preset("scalesim-32x32")), wl)
    pairs = args.designs * wl.num_layers

    def figures(rep):  # cycles, energy and area, so that no part is compiled away
        return rep.total_cycles, rep.energy_pj, rep.area_mm2

    exact = jax.jit(jax.vmap(lambda d: figures(cost.evaluate(d, wl, mapping))))
    mapped = jax.jit(jax.vmap(lambda d: figures(cost.evaluate(d, wl))))

    def full_grid_cycles(d):  # the best cycles over the whole grid, as the mapper did before
        grid = mapper.tile_grid(d, wl)
        cycles, _, ok = mapper.grid_cycles_bytes(d, wl, grid, LayerBits.of(d))
        return jnp.min(jnp.where(ok, cycles, jnp.inf), axis=0)

    full = x64(jax.jit(jax.vmap(full_grid_cycles)))

    def pruned_grid_generic(d):  # the same pick with the generic model on the whole pruned grid
        grid = mapper.pruned_grid(d, wl)
        cycles, total_bytes, ok = mapper.grid_cycles_bytes(d, wl, grid, LayerBits.of(d))
        cycles = jnp.where(ok, cycles, jnp.inf)
        masked = jnp.where(cycles == jnp.min(cycles, axis=0), total_bytes, jnp.inf)
        return mapper.pick(grid, masked)

    generic = x64(
        jax.jit(jax.vmap(lambda d: figures(cost.evaluate(d, wl, pruned_grid_generic(d)))))
    )

    def log_edp(d):
        return jnp.log(cost.evaluate(d, wl, mapping, Arith.smooth(0.1)).edp_js)

    # Gradients flow to every float field; array sizes become floats, the dataflow stays a code.
    grad = jax.jit(jax.vmap(jax.value_and_grad(log_edp, allow_int=True)))
    floats = dataclasses.replace(
        designs,
        rows=designs.rows.astype(float),
        cols=designs.cols.astype(float),
        vector_lanes=designs.vector_lanes.astype(float),
    )

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__} "
        f"on {jax.devices()[0].platform}"
    )
    print(
        f"workload: ResNet-18, {wl.num_layers} layers; designs per call: {args.designs}; "
        f"(layer, design) pairs per call: {pairs}; median of {args.repeats}"
    )
    few = max(1, args.designs // 16)  # the mapper is ~10^4 times the work per pair
    small = jax.tree_util.tree_map(lambda x: x[:few], designs)
    for label, fn, n in (
        ("exact, fixed mapping", lambda: exact(designs), pairs),
        ("exact, with the mapper", lambda: mapped(small), few * wl.num_layers),
        ("pruned grid, generic", lambda: generic(small), few * wl.num_layers),
        ("full-grid mapper (ref.)", lambda: full(small), few * wl.num_layers),
        ("smooth value+gradient", lambda: grad(floats), pairs),
    ):
        s = _timed(fn, args.repeats)
        print(f"{label:24s} {s * 1e3:9.1f} ms/call  {n / s:14,.0f} layer evaluations/s")


if __name__ == "__main__":
    main()
