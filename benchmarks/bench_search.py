"""Search quality and speed: the gradient method against exhaustive, random and NSGA-II search.

Run: ``.venv/bin/python benchmarks/bench_search.py [--quick] [--seed 0]`` (about 6 minutes on a
2-core CPU; ``--quick`` runs the small-space part only).

Part 1, small spaces that exhaustive search enumerates (7x7 arrays of 4-256 PEs per side,
three dataflows, nine buffer sizes from 32 KiB to 8 MiB, two clocks, W4/W8 x A4/A8: 10,584
designs), on six CNN and transformer layers (or short layer chains) under a latency budget
(the base preset's latency) and a power budget (1.5x the base preset's): the gradient method's
best EDP against the exhaustive optimum, and both wall times.

Part 2, spaces too large to enumerate (arrays 8-256 per side, buffers 64 KiB-8 MiB, clock
200-1000 MHz, per-layer W4/W8 and A4/A8 widths: over 10**15 points with per-layer widths) on
full ResNet-18 and one BERT-base encoder layer: the gradient method runs first, then random
search and NSGA-II with the gradient run's wall time as their time budget, and again with four
times that. Reported: best EDP and the hypervolume of the feasible latency-energy front,
normalized over all runs of the workload (``dse.pareto.normalized_hypervolume``; higher is
better).

Part 3 (``--exact``), gaps to the exact optimum (``dse.exact``) on spaces of 10**20 designs and
more, under the latency and power budgets of part 2: ResNet-18 (48 layers) and one BERT-base
encoder layer (14 layers) with per-layer weight and activation widths 2-16 bits on 2 x 2 arrays
(16-32 x 32-64 PEs, weight-stationary, 2 MiB of buffers: 4 hardware points x 225 multiplier
widths), and the BERT layer on a 32 x 64 array with the buffers' total (1, 2 or 4 MiB, split in
the preset's proportions: the space has no per-buffer sizes) and the clock (400 or 800 MHz) free
(6 x 225). Per space: the design count (hardware points times per-layer
width assignments, before tilings), then exact, gradient, and random search and NSGA-II with
the gradient's and with exact's wall time as their time budgets; every run in a fresh process
with JAX's persistent compilation cache off, so each pays its own compilation. The table gives
wall time, evaluations, best EDP and the gap to the exact optimum. About 20 minutes on a
loaded 2-core CPU (``--case NAME`` runs one space); ``--quick --exact`` runs them on the
three-layer CNN stem.

Every figure comes from the exact model; times include compilation.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys

import jax

from dse import METHODS, pareto, search
from dse.baselines import exhaustive_size
from dse.problem import Problem, SearchBudget
from dse.space import Space, load_space
from hw import layers
from models import zoo
from npu_dse.search import budgets_for
from npu_dse.workloads import bundled, bundled_space, load_workload


def small_workloads() -> dict:
    """The six workloads of part 1, as Workloads."""
    conv = layers.conv2d
    chains = {
        "resnet conv3x3 28x28x128": [
            conv("c", ifmap_h=30, ifmap_w=30, channels=128, num_filters=128, filter_h=3, filter_w=3)
        ],
        "mobilenet dw+pw 56x56": [
            conv(
                "dw",
                ifmap_h=58,
                ifmap_w=58,
                channels=144,
                num_filters=144,
                filter_h=3,
                filter_w=3,
                groups=144,
            ),
            conv(
                "pw", ifmap_h=56, ifmap_w=56, channels=144, num_filters=24, filter_h=1, filter_w=1
            ),
        ],
        "bert qkv projection": [layers.gemm("qkv", m=128, k=768, n=2304)],
        "bert attention scores": [
            layers.batched_matmul("qk", m=128, k=64, n=128, count=12),
            layers.batched_matmul("av", m=128, k=128, n=64, count=12),
        ],
        "bert ffn": [
            layers.gemm("ffn1", m=128, k=768, n=3072),
            layers.gemm("ffn2", m=128, k=3072, n=768),
        ],
    }
    return {name: layers.workload(c) for name, c in chains.items()} | {
        "cnn stem 3 layers": load_workload(bundled("cnn_stem.json"))[0]
    }


def part1(seed: int) -> None:
    space = load_space(bundled_space("enumerable.json"))
    print(f"## Part 1: gradient vs exhaustive ({space.num_hardware_points} designs per space)\n")
    print("| workload | exhaustive EDP (J*s) | gradient EDP | gap | exhaustive s | gradient s |")
    print("|---|---|---|---|---|---|")
    for name, wl in small_workloads().items():
        b = budgets_for(space, wl)
        problem = Problem(space, wl, "edp", b)
        ex = search(problem, "exhaustive", seed=seed)
        gr = search(problem, "gradient", seed=seed)
        e = ex.best_metrics["edp_js"] if ex.best else float("nan")
        g = gr.best_metrics["edp_js"] if gr.best else float("nan")
        print(
            f"| {name} | {e:.4g} | {g:.4g} | {100 * (g / e - 1):+.2f} % | {ex.wall_s:.1f} "
            f"| {gr.wall_s:.1f} |",
            flush=True,
        )


def part2(seed: int) -> None:
    space = load_space(bundled_space("large.json"))
    nets = {
        "resnet18": zoo.get_network("resnet18"),
        "bert-base layer": zoo.get_network("bert_base_layer"),
    }
    print("\n## Part 2: equal wall time on spaces too large to enumerate\n")
    print("| workload | method | evaluations | wall s | best EDP (J*s) | hypervolume |")
    print("|---|---|---|---|---|---|")
    for name, wl in nets.items():
        b = budgets_for(space, wl)
        problem = Problem(space, wl, "edp", b)
        results = {"gradient": search(problem, "gradient", seed=seed)}
        t = results["gradient"].wall_s
        for method in ("random", "nsga2"):
            results[method] = search(problem, method, SearchBudget(time_s=t), seed=seed)
            results[f"{method} (4x time)"] = search(
                problem, method, SearchBudget(time_s=4 * t), seed=seed
            )
        hv = pareto.normalized_hypervolume(
            {k: r.rows for k, r in results.items()}, ("latency_s", "energy_j")
        )
        for method, r in results.items():
            best = r.best_metrics["edp_js"] if r.best else float("nan")
            print(
                f"| {name} | {method} | {r.evaluations} | {r.wall_s:.1f} | {best:.4g} "
                f"| {hv[method]:.4f} |",
                flush=True,
            )


EXACT_HARDWARE = {
    "base": "edge-tpu-like",
    "rows": [16, 32],
    "cols": [32, 64],
    "dataflow": ["ws"],
    "sram_kib": [2048],
    "w_bits": {"min": 2, "max": 16},
    "a_bits": {"min": 2, "max": 16},
}
BUFFERS_CLOCK = {
    "base": "edge-tpu-like",
    "rows": [32],
    "cols": [64],
    "dataflow": ["ws"],
    "sram_kib": [1024, 2048, 4096],
    "clock_mhz": [400, 800],
    "w_bits": {"min": 2, "max": 16},
    "a_bits": {"min": 2, "max": 16},
}
EXACT_CASES = {
    "resnet18": ("resnet18", EXACT_HARDWARE),
    "bert-base layer": ("bert_base_layer", EXACT_HARDWARE),
    "bert-base layer, buffer and clock free": ("bert_base_layer", BUFFERS_CLOCK),
}
"""Part 3's spaces: name -> (network, space). ``--quick`` runs them on the CNN stem."""


def exact_problem(case: str, quick: bool) -> Problem:
    """The problem of one part-3 case (EDP under the base preset's latency and 1.5x its
    power: ``npu_dse.search.budgets_for``)."""
    net, spec = EXACT_CASES[case]
    space = Space.from_dict(spec)
    wl = load_workload(bundled("cnn_stem.json"))[0] if quick else zoo.get_network(net)
    return Problem(space, wl, "edp", budgets_for(space, wl))


def child(method: str, case: str, quick: bool, seed: int, time_s: float | None) -> None:
    """One search in this (fresh) process; prints its figures as one JSON line."""
    problem = exact_problem(case, quick)
    budget = SearchBudget(time_s=time_s) if time_s else None
    r = search(problem, method, budget, seed=seed)
    figures = {
        "wall_s": r.wall_s,
        "evaluations": r.evaluations,
        "edp_js": r.best_metrics["edp_js"] if r.best else None,
        "stopped": r.stopped,
        "persistent_cache": bool(jax.config.jax_enable_compilation_cache)
        and jax.config.jax_compilation_cache_dir is not None,
    }
    print(json.dumps(figures))


def cold_run(method: str, case: str, quick: bool, seed: int, time_s: float | None = None):
    """:func:`child` in a fresh Python process with JAX's persistent compilation cache off,
    so every method pays its own compilation (the clock starts when the method is called)."""
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    env |= {"JAX_ENABLE_COMPILATION_CACHE": "false", "NPU_DSE_COMPILE_CACHE": "off"}
    args = [sys.executable, __file__, "--child", method, "--case", case, "--seed", str(seed)]
    args += ["--quick"] * quick + (["--time-s", repr(time_s)] if time_s else [])
    out = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{method} on {case} failed:\n{out.stderr[-2000:]}")
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    if figures["persistent_cache"]:
        raise RuntimeError("the persistent compilation cache was on in a cold run")
    return figures


def design_count(problem: Problem) -> tuple[int, int, int]:
    """``(hardware points, multiplier width pairs, designs)``: the designs are the hardware
    points times every per-layer width assignment (``dse.baselines.exhaustive_size``), before
    the per-layer tilings and loop orders, which multiply them further."""
    space = problem.space
    hardware, widths = exhaustive_size(space, problem.workload)
    return hardware, len(space.w_bits) * len(space.a_bits), hardware * widths


def part3(seed: int, quick: bool, only: str | None = None) -> None:
    label = " (cnn stem 3 layers)" if quick else ""
    print(f"\n## Part 3: gaps to the exact optimum{label}, every run from a cold cache\n")
    for case in [only] if only else EXACT_CASES:
        problem = exact_problem(case, quick)
        hardware, pairs, designs = design_count(problem)
        print(
            f"### {f'cnn stem, the space of {case!r}' if quick else case}: "
            f"{problem.workload.num_layers} layers, {hardware} hardware points x "
            f"{pairs} multiplier widths, {float(designs):.3g} designs (per-layer widths 2-16 "
            f"bits; tilings on top)\n",
            flush=True,
        )
        runs = {"exact": cold_run("exact", case, quick, seed)}
        runs["gradient"] = cold_run("gradient", case, quick, seed)
        for label, source in (("gradient's", "gradient"), ("exact's", "exact")):
            for method in ("random", "nsga2"):
                t = runs[source]["wall_s"]
                runs[f"{method} ({label} time)"] = cold_run(method, case, quick, seed, t)
        best = runs["exact"]["edp_js"]
        print("| method | wall s | evaluations | best EDP (J*s) | gap to exact |")
        print("|---|---|---|---|---|")
        for method, r in runs.items():
            edp = r["edp_js"]
            gap = "no feasible design" if edp is None else f"{100 * (edp / best - 1):+.2f} %"
            shown = "-" if edp is None else f"{edp:.6g}"
            print(f"| {method} | {r['wall_s']:.1f} | {r['evaluations']} | {shown} | {gap} |")
        print(flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="part 1 only")
    parser.add_argument("--part", type=int, choices=(1, 2), help="run one part only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--exact", action="store_true", help="part 3 only: gaps to the optimum")
    parser.add_argument("--child", choices=sorted(METHODS), help=argparse.SUPPRESS)
    parser.add_argument("--case", choices=sorted(EXACT_CASES), help="part 3: this space only")
    parser.add_argument("--time-s", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.case, args.quick, args.seed, args.time_s)
        return
    print(
        f"# bench_search: {platform.processor() or platform.machine()}, jax {jax.__version__}, "
        f"{len(jax.devices())} device(s), seed {args.seed}\n"
    )
    if args.exact:
        part3(args.seed, args.quick, args.case)
        return
    if args.part in (None, 1):
        part1(args.seed)
    if args.part in (None, 2) and not args.quick:
        part2(args.seed)


if __name__ == "__main__":
    main()
