"""How time and memory grow with the work: layers per simulation, designs per batched exact
evaluation, starts per gradient search.

Run: ``.venv/bin/python benchmarks/bench_scaling.py [--quick] [--max-designs 1000000]
[--max-starts 4096] [--tables simulate,evaluate,search,search_layers]``
(a few minutes with the defaults on the 2-core CPU, each new shape compiling for up to a
minute; ``--quick`` is a smoke test of a few seconds on the smallest sizes). Four tables, one
line per size:

* ``simulate``: ``npu_dse.simulate`` plus the report (``to_dict``) of 10 to 10,000 random
  GEMM layers on the scalesim-32x32 preset; first call (compilation included) and the
  median of ``--repeats`` warm calls;
* ``evaluate``: ``hw.cost.evaluate`` jitted and vmapped over 1 to ``--max-designs`` random
  designs (``bench_cost_model.random_designs``) on ResNet-18's layers, the mapping fixed;
* ``search``: ``dse.gradient.run`` of a two-GEMM problem with 1 to ``--max-starts`` starts
  (64; at most 4096) and a few steps; each start count is a new shape, so the first call
  compiles;
* ``search_layers``: the same search with 4 starts on 10 to 10,000 random GEMM layers (each
  layer count compiles anew too).

Each line gives seconds, seconds per unit (layer, design or start) and that per-unit time as
a ratio to the previous line's: near 1 is linear growth, well below 1 means a fixed cost (the
call's dispatch, compilation, Python set-up) still dominates, above 1 means the work grows
faster than the size (caches spilled, memory). The peak resident memory of the process
(``ru_maxrss``) is printed after each table: it is a high-water mark, so it reads the largest
size of that table (and everything before it).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cost_model import random_designs  # noqa: E402

from dse import gradient  # noqa: E402
from dse import objective as obj  # noqa: E402
from dse.problem import Problem, SearchBudget  # noqa: E402
from dse.space import Space  # noqa: E402
from hw import cost, layers, presets  # noqa: E402
from hw.types import canonical  # noqa: E402
from hw.x64 import x64_scope  # noqa: E402
from npu_dse.simulate import resolve_design, simulate  # noqa: E402
from npu_dse.workloads import bundled, load_workload  # noqa: E402

TABLES = ("simulate", "evaluate", "search", "search_layers")
HEADER = f"{'size':>9s} {'first s':>9s} {'warm s':>9s} {'warm s/unit':>12s} {'vs prev':>8s}"


def _peak_rss_mib() -> float:
    """The process's peak resident memory, MiB (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _gemms(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    dims = (2.0 ** rng.uniform(3, 11, (n, 3))).astype(int)
    return layers.workload(
        [layers.gemm(f"g{i}", m=int(m), k=int(k), n=int(c)) for i, (m, k, c) in enumerate(dims)]
    )


def _timed(fn, repeats: int) -> tuple[float, float]:
    """``(first, median of repeats)`` wall seconds of ``fn()``."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return first, statistics.median(times)


def _table(title: str, unit: str, sizes, run, repeats: int) -> list[tuple]:
    """Time ``run(size)`` (a zero-argument callable's maker) at each size; print and return
    the rows ``(size, first_s, warm_s, per_unit_s, ratio)``."""
    print(f"\n{title} (unit: {unit})")
    print(HEADER)
    rows, prev = [], None
    for size in sizes:
        first, warm = _timed(run(size), repeats)
        per = warm / size
        ratio = per / prev if prev else float("nan")
        prev = per
        rows.append((size, first, warm, per, ratio))
        print(f"{size:9d} {first:9.3f} {warm:9.4f} {per:12.3e} {ratio:8.2f}")
    print(f"peak RSS after this table: {_peak_rss_mib():,.0f} MiB")
    _verdict(rows)
    return rows


def _verdict(rows) -> None:
    """Where growth stops being linear, read off the per-unit ratios (see the module docs)."""
    notes = []
    for size, _, _, _, ratio in rows[1:]:
        if ratio < 0.5:
            notes.append(f"{size}: sub-linear (fixed per-call cost still dominates)")
        elif ratio > 1.5:
            notes.append(f"{size}: super-linear (per-unit time up {ratio:.1f}x: caches/memory)")
    print("linearity: " + ("; ".join(notes) if notes else "linear within 2x per step"))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smallest sizes only (smoke test)")
    parser.add_argument("--max-designs", type=int, default=100_000)
    parser.add_argument("--max-starts", type=int, default=64, help="largest start count")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--tables", default="simulate,evaluate,search", help="which tables, comma-separated"
    )
    args = parser.parse_args(argv)
    tables = set(args.tables.split(","))
    unknown = sorted(tables - set(TABLES))
    if unknown:
        parser.error(f"--tables: unknown table {unknown[0]!r}; known: {', '.join(TABLES)}")
    quick = args.quick
    repeats = 1 if quick else args.repeats
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__} "
        f"on {jax.devices()[0].platform}"
    )
    with x64_scope():
        design = resolve_design(preset="scalesim-32x32")

        def sim(n):
            wl = _gemms(n)
            return lambda: simulate(wl, design).to_dict()

        layer_sizes = (10, 100) if quick else (10, 100, 1_000, 10_000)
        if "simulate" in tables:
            _table("simulate + report", "layer", layer_sizes, sim, repeats)

        wl, _ = load_workload(bundled("resnet18.csv"))
        mapping = cost.default_mapping(canonical(presets.get_preset("scalesim-32x32")), wl)
        evaluate = jax.jit(jax.vmap(lambda d: cost.evaluate(d, wl, mapping).total_cycles))

        def batched(n):
            designs = random_designs(n, seed=0)
            return lambda: evaluate(designs)

        top = 100 if quick else args.max_designs
        design_sizes = [n for n in (1, 10, 100, 1_000, 10_000, 100_000, 1_000_000) if n <= top]
        if "evaluate" in tables:
            _table(
                f"exact evaluation, ResNet-18 ({wl.num_layers} layers)",
                "design",
                design_sizes,
                batched,
                repeats,
            )

        space = Space.from_dict({"rows": [8, 16, 32], "cols": [8, 16, 32], "sram_kib": [64, 256]})
        problem = Problem(space, _gemms(2), "edp", obj.Budgets())

        def search(starts, on=problem):
            settings = gradient.GradientSettings(
                starts=starts, steps=4, legalize_every=2, polish_top=1, polish_rounds=1
            )
            settings = dataclasses.replace(settings, steps=2) if quick else settings
            return lambda: gradient.run(on, SearchBudget(), seed=0, settings=settings).best

        top = 2 if quick else args.max_starts
        start_sizes = [n for n in (1, 2, 4, 16, 64, 256, 1024, 4096) if n <= top]
        start_sizes = [n for n in start_sizes if n != 2 or quick]
        if "search" in tables:
            _table("gradient search, 2 GEMMs, 4 steps", "start", start_sizes, search, repeats)

        def search_layers(n):
            return search(4, Problem(space, _gemms(n), "edp", obj.Budgets()))

        if "search_layers" in tables:
            _table(
                "gradient search, 4 starts, 4 steps", "layer", layer_sizes, search_layers, repeats
            )


if __name__ == "__main__":
    main()
