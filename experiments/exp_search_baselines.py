"""Search methods against wall time: gradient, random, NSGA-II and exhaustive search.

Two parts, both minimizing EDP under a latency budget (the base preset's latency) and a power
budget (1.5x the base preset's power), on ``edge-tpu-like`` as the base:

a. ``small``: a space exhaustive search enumerates (``SMALL``, ``spaces/enumerable.json``:
   7x7 arrays of 4-256 PEs per side, three dataflows, nine buffer sizes from 32 KiB to 8 MiB,
   two clocks, W4/W8 x A4/A8, one width for the network: 10,584 designs) on a three-layer CNN
   stem. The gradient search runs first, then random search and NSGA-II with its wall time as
   their budget, then exhaustive search to the end.
b. ``resnet18``: ResNet-18 (``models.zoo``) on ``LARGE`` (``spaces/large.json``: arrays 8-256
   per side, buffers 64 KiB-8 MiB, five clocks, per-layer W4/W8 and A4/A8: over 10**15
   points): gradient, then random and NSGA-II with its wall time.

``benchmarks/bench_search.py`` uses the same spaces, budgets and CNN stem. Every figure comes
from the exact model; wall times include compilation. Hypervolume is that of the feasible
latency-energy front (``dse.pareto.normalized_hypervolume``: log scale, a box shared by every
method and time of a part, 0 to 1, higher is better), at ``CHECKPOINTS`` wall times from the
rows each method had evaluated by then.

Produces, under ``--out``: ``<part>_evaluations.csv`` (every evaluated design of every method,
``search_report.write_evaluations_csv``), ``summary.csv`` (per part and method: evaluations,
wall_s, best EDP and its latency and energy, final hypervolume, gap to the exhaustive optimum),
``hypervolume.csv`` (per part, method and checkpoint), ``<part>_trace.png/svg`` (best EDP so
far against wall time), ``<part>_pareto.png/svg`` (latency-energy fronts) and
``hypervolume.png/svg`` (hypervolume against wall time, both parts).

Command: ``.venv/bin/python experiments/exp_search_baselines.py --out runs/exp_search_baselines
[--quick]`` (``--quick``: a 900-design space, a two-layer GEMM chain instead of ResNet-18, a small
gradient search, random and NSGA-II stopped at ``QUICK_EVALUATIONS`` if sooner).

Run time on the 2-core CPU (shared with other work, so the times are noisy): about 135 s in
full, about 30 s with ``--quick``. Random search and NSGA-II run for the gradient search's wall
time, so their evaluation counts, and so their results, depend on the machine's speed and load.

Expected headline (full, seed 0). Small part (10,584 designs): exhaustive search finds EDP
5.362e-10 J*s in 16 s (10,584 evaluations); the gradient search finds the same design (gap 0 %)
in 9.5 s (1,642 evaluations), NSGA-II too in that time (5,376), random search is 0.39 % above
(3,712). Hypervolume: gradient 0.9997, NSGA-II 0.9998, exhaustive 0.9998, random 0.9960.
ResNet-18 on ``LARGE`` in 27 s each: gradient EDP 3.37e-6 J*s (738 evaluations), NSGA-II
4.29e-6 (+27 %, 640), random 5.18e-6 (+53 %, 576); hypervolume 0.9998, 0.760 and 0.602.
"""

from __future__ import annotations

import math
import sys

import numpy as np
from tqdm import tqdm

from dse import (
    GradientSettings,
    Problem,
    SearchBudget,
    Space,
    baselines,
    load_space,
    pareto,
    search,
)
from experiments.common import Run, new_figure, parse_args
from hw import layers
from hw.x64 import x64
from models import zoo
from npu_dse import plots as search_report
from npu_dse.search import budgets_for
from npu_dse.workloads import bundled, bundled_space, load_workload

SMALL = bundled_space("enumerable.json")
LARGE = bundled_space("large.json")
QUICK_SMALL = {
    "base": "edge-tpu-like",
    "rows": {"min": 8, "max": 128, "pow2": True},
    "cols": {"min": 8, "max": 128, "pow2": True},
    "dataflow": ["os", "ws", "is"],
    "sram_kib": [256, 1024, 4096],
    "w_bits": [4, 8],
    "a_bits": [4, 8],
    "per_layer_bits": False,
}
OBJECTIVE = "edp"
SMALL_SETTINGS = GradientSettings()
LARGE_SETTINGS = GradientSettings(starts=64, steps=240)
QUICK_SETTINGS = GradientSettings(
    starts=8, steps=20, legalize_every=20, polish_top=4, polish_rounds=1
)
QUICK_EVALUATIONS = 256  # --quick: random and NSGA-II stop here if the time runs longer
CHECKPOINTS = 24  # wall times at which the hypervolume is taken
FRONT_KEYS = ("latency_s", "energy_j")


def gemm_chain():
    """Two GEMMs of a BERT-base feed-forward block at 32 tokens (the ``--quick`` large part)."""
    return layers.workload(
        [layers.gemm("ffn1", m=32, k=768, n=3072), layers.gemm("ffn2", m=32, k=3072, n=768)]
    )


def _bar(desc: str, unit: str = "design"):
    bar = tqdm(desc=desc, unit=unit, file=sys.stderr, leave=False)

    def progress(done, total):
        bar.total = total
        bar.n = done
        bar.refresh()

    return bar, progress


def search_all(space: Space, workload, settings, exhaustive: bool, seed: int, cap=None) -> dict:
    """Gradient first; random and NSGA-II with its wall time (and at most ``cap``
    evaluations); exhaustive (optional) to the end."""
    budgets = budgets_for(space, workload)
    results = {}
    problem = Problem(space, workload, OBJECTIVE, budgets)
    bar, progress = _bar("gradient", "chunk")
    with bar:
        results["gradient"] = search(problem, seed=seed, settings=settings, progress=progress)
    equal = SearchBudget(evaluations=cap, time_s=results["gradient"].wall_s)
    methods = ["random", "nsga2"] + (["exhaustive"] if exhaustive else [])
    for name in methods:
        bar, progress = _bar(name)
        budget = None if name == "exhaustive" else equal
        with bar:
            results[name] = search(problem, name, budget, seed=seed, progress=progress)
    return results


def hypervolume_rows(part: str, results: dict) -> list[dict]:
    """Normalized hypervolume of each method's rows evaluated by each checkpoint time, in one
    box shared by all methods and times of the part."""
    end = max(r.wall_s for r in results.values())
    times = np.linspace(end / CHECKPOINTS, end, CHECKPOINTS)
    sets, counts = {}, {}
    for name, r in results.items():
        stamps = np.array([row["wall_s"] for row in r.rows])
        for i, t in enumerate(times):
            upto = int(np.searchsorted(stamps, t, side="right"))
            sets[(name, i)] = r.rows[:upto]
            counts[(name, i)] = upto
    keys = {f"{name}@{i}": rows for (name, i), rows in sets.items()}
    hv = pareto.normalized_hypervolume(keys, FRONT_KEYS)
    return [
        {
            "part": part,
            "method": name,
            "wall_s": float(times[i]),
            "evaluations": counts[(name, i)],
            "hypervolume": hv[f"{name}@{i}"],
        }
        for (name, i) in sets
    ]


def summary_rows(part: str, workload_name: str, results: dict, hv_rows: list[dict]) -> list[dict]:
    final = {r["method"]: r["hypervolume"] for r in hv_rows if r["wall_s"] == hv_rows[-1]["wall_s"]}
    exact = results.get("exhaustive")
    optimum = exact.best_metrics["edp_js"] if exact is not None and exact.best else None
    rows = []
    for name, r in results.items():
        m = r.best_metrics or {}
        best = m.get("edp_js")
        rows.append(
            {
                "part": part,
                "workload": workload_name,
                "method": name,
                "evaluations": r.evaluations,
                "wall_s": r.wall_s,
                "best_edp_js": best,
                "best_latency_s": m.get("latency_s"),
                "best_energy_j": m.get("energy_j"),
                "best_design": search_report.design_label(_best_row(r)) if r.best else None,
                "hypervolume": final[name],
                "gap_to_exhaustive": best / optimum - 1.0 if best and optimum else None,
            }
        )
    return rows


def hypervolume_figure(hv_rows: list[dict]):
    parts = list(dict.fromkeys(r["part"] for r in hv_rows))
    fig, ax0 = new_figure(5.5 * len(parts), 4.2)
    fig.delaxes(ax0)
    axes = np.atleast_1d(fig.subplots(1, len(parts)))
    for ax, part in zip(axes, parts, strict=True):
        rows = [r for r in hv_rows if r["part"] == part]
        for method in dict.fromkeys(r["method"] for r in rows):
            mine = [r for r in rows if r["method"] == method]
            t = [0.0] + [r["wall_s"] for r in mine]
            hv = [0.0] + [r["hypervolume"] for r in mine]
            ax.step(t, hv, where="post", marker=".", ms=3, label=method)
        ax.set(xlabel="wall time (s)", ylabel="normalized hypervolume (latency, energy)")
        ax.set_title(part)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def run_part(run: Run, part: str, workload_name: str, workload, space, settings, exhaustive):
    cap = QUICK_EVALUATIONS if run.args.quick else None
    results = search_all(space, workload, settings, exhaustive, run.args.seed, cap)
    rows = [row for r in results.values() for row in search_report.result_rows(r)]
    run.files.append(search_report.write_evaluations_csv(run.out / f"{part}_evaluations.csv", rows))
    run.files += search_report.plot_trace(run.out, results, stem=f"{part}_trace")
    labels = {f"best {name}": _best_row(r) for name, r in results.items() if r.best is not None}
    run.files += search_report.plot_fronts(run.out, results, labels=labels, stem=f"{part}_pareto")
    hv_rows = hypervolume_rows(part, results)
    return summary_rows(part, workload_name, results, hv_rows), hv_rows


def _best_row(result) -> dict:
    """The evaluated row of the best design (the first row with the best objective)."""
    feasible = [r for r in result.rows if r["feasible"]]
    return min(feasible, key=lambda r: r["edp_js"])


def headline(summary: list[dict], sizes: dict) -> dict:
    out = {"objective": OBJECTIVE}
    for part in dict.fromkeys(r["part"] for r in summary):
        rows = [r for r in summary if r["part"] == part]
        out[part] = {
            "workload": rows[0]["workload"],
            "designs": sizes[part],
            "best_edp_js": {r["method"]: r["best_edp_js"] for r in rows},
            "hypervolume": {r["method"]: r["hypervolume"] for r in rows},
            "evaluations": {r["method"]: r["evaluations"] for r in rows},
            "wall_s": {r["method"]: r["wall_s"] for r in rows},
        }
        gap = {r["method"]: r["gap_to_exhaustive"] for r in rows if r["method"] != "exhaustive"}
        if any(v is not None for v in gap.values()):
            out[part]["gap_to_exhaustive"] = gap
    return out


@x64
def main(argv=None) -> dict:
    args = parse_args(__doc__, argv)
    run = Run("exp_search_baselines", args, argv)
    if args.quick:
        small, large = Space.from_dict(QUICK_SMALL), load_space(LARGE)
        big = ("bert_ffn_32_tokens", gemm_chain())
        settings = (QUICK_SETTINGS, QUICK_SETTINGS)
    else:
        small, large = load_space(SMALL), load_space(LARGE)
        big = ("resnet18", zoo.get_network("resnet18"))
        settings = (SMALL_SETTINGS, LARGE_SETTINGS)
    stem, _ = load_workload(bundled("cnn_stem.json"))
    summary, hv_rows = run_part(run, "small", "cnn_stem_3_layers", stem, small, settings[0], True)
    more = run_part(run, "large", *big, large, settings[1], False)
    summary, hv_rows = summary + more[0], hv_rows + more[1]
    for r in (*summary, *hv_rows):
        r["seed"] = args.seed
    run.csv("summary", summary)
    run.csv("hypervolume", hv_rows)
    run.figure("hypervolume", hypervolume_figure(hv_rows))
    sizes = {
        "small": math.prod(baselines.exhaustive_size(small, stem)),
        "large": f"{float(math.prod(baselines.exhaustive_size(large, big[1]))):.3g}",
    }
    return run.finish(headline(summary, sizes))


if __name__ == "__main__":
    main()
