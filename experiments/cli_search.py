"""``npu-dse search``: find the best design of a space for a workload under budgets.

The methods (``dse.gradient``, ``dse.baselines``) share the exact cost model, the space and
the budgets. Output: a table (or one JSON object with ``--json``) with the best feasible
design, its exact figures, the number of exact evaluations, the wall time, the method and the
seed. With ``--out DIR`` the run folder holds ``evaluations.csv`` (every exactly evaluated
design), ``best.json``, ``pareto.png``/``.svg`` (latency against energy, best design
labelled), ``search_trace.png``/``.svg`` and ``run.json`` (arguments, space, seed, package
versions). When no design meets the budgets the exit code is still 0, ``best`` is null and one
line names the budget the closest design misses, and by how much.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from tqdm import tqdm

import dse
from dse import design as dz
from dse import objective as obj
from dse.problem import Problem, SearchBudget
from dse.space import load_space
from experiments import search_report, topology
from experiments.common import versions

METHODS = tuple(dse.METHODS)


def add_search_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workload", metavar="FILE", help="SCALE-Sim topology CSV or workload JSON")
    p.add_argument("--gemm", action="store_true", help="the CSV is in SCALE-Sim's GEMM format")
    p.add_argument(
        "--checkpoint",
        metavar="DIR",
        help="a trained model (npu-dse train): its layers are the "
        "workload and --min-accuracy applies to it",
    )
    p.add_argument("--space", metavar="FILE", required=True, help="design space JSON (README)")
    p.add_argument("--objective", choices=tuple(obj.OBJECTIVES), default="edp")
    p.add_argument("--max-latency-s", type=float, metavar="X", help="total latency budget, s")
    p.add_argument("--max-power-w", type=float, metavar="P", help="average power budget, W")
    p.add_argument("--max-area-mm2", type=float, metavar="A", help="area budget, mm^2")
    p.add_argument("--min-accuracy", type=float, metavar="Q", help="accuracy floor, 0-1")
    p.add_argument("--method", choices=METHODS, default="gradient")
    p.add_argument("--evaluations", type=int, metavar="N", help="exact evaluation budget")
    p.add_argument("--time-budget-s", type=float, metavar="T", help="wall-time budget, s")
    p.add_argument("--seed", type=int, default=0, metavar="S")
    p.add_argument("--starts", type=int, metavar="N", help="gradient: parallel starts (128)")
    p.add_argument("--steps", type=int, metavar="N", help="gradient: optimizer steps (480)")
    p.add_argument(
        "--search-checkpoint",
        metavar="DIR",
        help="gradient: save state here after every "
        "chunk and resume from it when rerun with the same arguments",
    )
    p.add_argument("--out", metavar="DIR", help="run folder for CSV, plots and the best design")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _budgets(args) -> obj.Budgets:
    budgets = obj.Budgets(
        max_latency_s=args.max_latency_s,
        max_power_w=args.max_power_w,
        max_area_mm2=args.max_area_mm2,
        min_accuracy=args.min_accuracy,
    ).check()
    if budgets.min_accuracy is not None and args.checkpoint is None:
        raise ValueError("--min-accuracy needs --checkpoint (a trained model to measure)")
    for name in ("evaluations", "starts", "steps"):
        v = getattr(args, name)
        if v is not None and v < 1:
            raise ValueError(f"--{name} must be a positive integer, got {v}")
    if args.time_budget_s is not None and not args.time_budget_s > 0:
        raise ValueError(f"--time-budget-s must be positive, got {args.time_budget_s}")
    return budgets


def _problem(args, budgets: obj.Budgets) -> tuple[Problem, str]:
    space = load_space(args.space)
    accuracy = None
    if args.checkpoint is not None:
        from experiments import accuracy as acc_io

        workload, accuracy, _ = acc_io.calibrate(args.checkpoint, bits=calibration_bits(space))
        source = f"model {args.checkpoint}"
    elif args.workload is not None:
        workload, _ = topology.load_workload(args.workload, gemm=args.gemm)
        source = Path(args.workload).name
    else:
        raise ValueError("give --workload FILE or --checkpoint DIR")
    return Problem(space, workload, args.objective, budgets, accuracy), source


def calibration_bits(space) -> tuple[int, ...]:
    """Widths the accuracy proxy is calibrated at: the two narrowest of the space (the proxy
    must be right where it is most optimistic), and 8 when the space is all wider."""
    widths = sorted({int(b) for b in (*space.w_bits, *space.a_bits) if b < 16})
    return tuple(widths[:2]) or (8,)


def recheck_accuracy(checkpoint, problem: Problem, result) -> tuple[float | None, str | None]:
    """Execute the best designs (by the proxy) until one meets ``--min-accuracy``.

    Returns the measured accuracy of the new best (``result.best`` and ``best_metrics`` are
    replaced by it), or ``(None, line)`` when none of the kept designs passes.
    """
    from experiments import accuracy as acc_io

    floor = problem.budgets.min_accuracy
    measured = []
    for design, metrics in result.top:
        acc = acc_io.measure(checkpoint, design.w_bits.astype(int), design.a_bits.astype(int))
        measured.append(acc)
        if floor is None or acc >= floor:
            result.best, result.best_metrics = design, metrics
            return acc, None
    result.best = result.best_metrics = None
    line = (
        f"no feasible design: the accuracy budget {floor} could not be met; the "
        f"{len(measured)} best designs by the proxy measure at most {max(measured):.4f} when "
        "executed"
    )
    return None, line


def _search(problem: Problem, args, bar):
    def progress(done, total):
        if total is not None and bar.total != total:
            bar.total = total
        bar.n = done
        bar.refresh()

    budget = SearchBudget(args.evaluations, args.time_budget_s)
    settings = None
    if args.method == "gradient":
        settings = dse.GradientSettings()
        overrides = {k: getattr(args, k) for k in ("starts", "steps") if getattr(args, k)}
        if args.steps:
            overrides["legalize_every"] = min(settings.legalize_every, args.steps)
        settings = dataclasses.replace(settings, **overrides)
    return dse.search(
        problem,
        args.method,
        budget,
        seed=args.seed,
        settings=settings,
        checkpoint=args.search_checkpoint,
        progress=progress,
    )


def summary(problem: Problem, result, checked_accuracy=None) -> dict:
    """The JSON object of a search (see the module docstring)."""
    best = None
    if result.best is not None:
        m = result.best_metrics
        best = {
            **dz.describe(problem.space, result.best, problem.workload),
            **{k: m[k] for k in ("latency_s", "energy_j", "power_w", "area_mm2", "edp_js")},
            "feasible": True,
        }
        if "accuracy" in m:
            best["accuracy_proxy"] = m["accuracy"]
        if checked_accuracy is not None:
            best["accuracy"] = checked_accuracy
    out = {
        "best": best,
        "evaluations": result.evaluations,
        "wall_s": round(result.wall_s, 3),
        "stopped": result.stopped,
        "method": result.method,
        "seed": result.seed,
        "objective": problem.objective,
    }
    if result.best is None and result.closest_miss is not None:
        name, miss = result.closest_miss
        out["closest_miss"] = {"budget": name, "relative_miss": miss}
    return out


def _miss_line(result) -> str:
    if result.closest_miss is None:
        if result.stopped == "time":
            return (
                f"no design was evaluated: the time budget of {result.budget.time_s:g} s ran out "
                "first (compilation counts)"
            )
        return "no design was evaluated"
    name, miss = result.closest_miss
    if name == "fits":
        return "no feasible design: no evaluated design's tiles fit its buffers"
    limit = "above" if name != "accuracy" else "below"
    return (
        f"no feasible design: the {name} budget could not be met; the closest design is "
        f"{100 * miss:.1f} % {limit} it"
    )


def run_search(args: argparse.Namespace) -> int:
    budgets = _budgets(args)
    problem, source = _problem(args, budgets)
    started = time.perf_counter()
    with tqdm(desc=f"search ({args.method})", unit="chunk", file=sys.stderr, leave=False) as bar:
        result = _search(problem, args, bar)
    checked, miss_line = None, None
    if result.best is not None and problem.accuracy is not None:
        checked, miss_line = recheck_accuracy(args.checkpoint, problem, result)
    out = summary(problem, result, checked)
    if args.out:
        _write_run(Path(args.out), args, problem, result, out, time.perf_counter() - started)
    if result.best is None:
        print(miss_line or _miss_line(result), file=sys.stderr)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        _print_table(out, source)
    return 0


def _print_table(out: dict, source: str) -> None:
    print(f"search: {out['method']} on {source}, objective {out['objective']}, seed {out['seed']}")
    print(f"{out['evaluations']} exact evaluations in {out['wall_s']:.1f} s")
    best = out["best"]
    if best is None:
        return
    hw = best["hardware"]
    print(
        f"best: {hw['rows']}x{hw['cols']} {hw['dataflow']}, {hw['sram_kib']:g} KiB SRAM, "
        f"{hw['clock_mhz']:g} MHz, {hw['dram_bw_gbps']:g} GB/s, w{hw['w_bits']}a{hw['a_bits']}"
    )
    print(
        f"  latency {best['latency_s'] * 1e3:.4g} ms, energy {best['energy_j'] * 1e3:.4g} mJ, "
        f"power {best['power_w']:.4g} W, area {best['area_mm2']:.4g} mm^2, "
        f"EDP {best['edp_js']:.4g} J*s"
    )
    if "accuracy" in best:
        print(f"  accuracy {best['accuracy']:.4f} (proxy {best['accuracy_proxy']:.4f})")
    print(f"{'layer':<24}{'w':>3}{'a':>3}{'tile_m':>8}{'tile_k':>8}{'tile_n':>8}  order")
    for layer in best["layers"]:
        print(
            f"{layer['name'][:23]:<24}{layer['w_bits']:>3}{layer['a_bits']:>3}"
            f"{layer['tile_m']:>8}{layer['tile_k']:>8}{layer['tile_n']:>8}  {layer['loop_order']}"
        )


def _write_run(out_dir: Path, args, problem: Problem, result, out: dict, wall_s: float) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = search_report.result_rows(result)
    search_report.write_evaluations_csv(out_dir / "evaluations.csv", rows)
    (out_dir / "best.json").write_text(json.dumps(out, indent=2) + "\n")
    labels = {}
    if result.best is not None:
        labels[f"best {problem.objective}"] = {**out["best"]["hardware"], **result.best_metrics}
    search_report.plot_fronts(out_dir, {result.method: result}, labels=labels)
    search_report.plot_trace(out_dir, {result.method: result})
    run = {
        "command": "npu-dse search " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else "",
        "args": {k: v for k, v in vars(args).items() if k != "run"},
        "space": problem.space.to_dict(),
        "seed": args.seed,
        "wall_s": round(wall_s, 3),
        "versions": versions(),
    }
    (out_dir / "run.json").write_text(json.dumps(run, indent=2) + "\n")
