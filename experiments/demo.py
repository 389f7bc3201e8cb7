"""The main job, end to end: train the small CNN, run it on simulated NPUs, search for a design.

1. Train the digits CNN (``npu-dse train --model cnn``; resumed if already trained).
2. Evaluate it at float, INT8 and INT4 on every NPU preset: accuracy by executing the
   quantized model bit-accurately (``hw.run_model``), latency, energy, power and TOPS/W of one
   inference from the exact cost model. The float row costs the design at 16-bit widths.
3. Search ``npu_dse/data/spaces/edge.json`` (arrays, dataflow, buffer, per-layer widths and
   tiles) for the lowest-energy design of one inference under default budgets: latency at most
   the ``edge-tpu-like`` preset's at INT8, average power at most ``DEFAULT_POWER_W`` and
   accuracy at most one point below float (proxy calibrated by execution, the chosen design
   re-checked by execution). Gradient search, then random search with as many evaluations.
4. Write the run folder: ``precision.csv``, ``evaluations.csv`` (every exactly evaluated design
   of both searches), ``pareto.png``/``.svg`` (latency against energy, best designs labelled),
   ``accuracy_energy.png``/``.svg``, ``search_trace.png``/``.svg``, ``best.json``,
   ``run.json`` (command, seed, config, package versions) and ``summary.md``.

Command: ``.venv/bin/python experiments/demo.py --out runs/demo [--quick]`` (``make demo``).
Run time on the 2-core CPU: about 2 minutes (``--quick``: about 1 minute). Every number in
``summary.md`` except wall times is the same on every run with the same seed.
"""

from __future__ import annotations

import dataclasses
import json
import sys

import numpy as np
from tqdm import tqdm

from dse import Budgets, GradientSettings, Problem, SearchBudget, describe, methods
from experiments.common import Run, parse_args, trained_model
from hw import evaluate, get_preset, graph
from hw.x64 import x64
from models import data, train
from npu_dse import calibration as acc_io
from npu_dse import plots as search_report
from npu_dse.calibration import calibration_bits, recheck_accuracy
from npu_dse.designs import DesignFile
from npu_dse.evaluate import evaluate as evaluate_on_npu
from npu_dse.rundir import write_atomic
from npu_dse.search import design_file
from npu_dse.spaces import load_space
from npu_dse.workloads import bundled_space

SPACE = bundled_space("edge.json")
DEFAULT_POWER_W = 0.5
ACCURACY_MARGIN = 0.01
PRECISIONS = {"float": None, "int8": 8, "int4": 4}
NPU_PRESETS = ("edge-tpu-like", "tpu-v1-like", "eyeriss-like")


def precision_rows(model, cfg, folder, bar) -> list[dict]:
    """Accuracy and cost of one inference per preset and precision."""
    ds = data.load(cfg.model)
    float_acc = float(train.evaluate(model, ds.x_test, ds.y_test)["accuracy"])
    rows = []
    for preset in NPU_PRESETS:
        for name, bits in PRECISIONS.items():
            npu = get_preset(preset)
            width = 16 if bits is None else bits
            npu = dataclasses.replace(npu, w_bits=np.float64(width), a_bits=np.float64(width))
            if bits is None:
                wl = graph.workload(model.to_graph(), (1, *ds.x_test.shape[1:]))
                rep = evaluate(npu, wl)
                r = {"accuracy": float_acc, "latency_s": float(rep.total_latency_s)}
                r |= {"energy_j": float(rep.total_energy_j), "macs": float(np.sum(rep.macs))}
            else:
                r = evaluate_on_npu(folder, DesignFile(npu), preset).to_dict()
            rows.append(
                {
                    "preset": preset,
                    "precision": name,
                    "w_bits": width,
                    "a_bits": width,
                    "accuracy": round(r["accuracy"], 6),
                    "latency_s": r["latency_s"],
                    "energy_j": r["energy_j"],
                    "power_w": r["energy_j"] / r["latency_s"],
                    "tops_per_w": 2 * r["macs"] / r["energy_j"] / 1e12,
                }
            )
            bar.update()
    return rows


def default_budgets(rows: list[dict], float_acc: float) -> Budgets:
    edge_int8 = next(r for r in rows if r["preset"] == "edge-tpu-like" and r["w_bits"] == 8)
    return Budgets(
        max_latency_s=edge_int8["latency_s"],
        max_power_w=DEFAULT_POWER_W,
        min_accuracy=round(float_acc - ACCURACY_MARGIN, 4),
    )


def search(space, folder, budgets: Budgets, quick: bool, seed: int):
    """Gradient search, its accuracy re-check, then random search with as many evaluations."""
    wl, proxy, _ = acc_io.calibrate(folder, bits=calibration_bits(space))
    problem = Problem(space, wl, "energy", budgets, proxy)
    settings = GradientSettings(starts=32 if quick else 64, steps=120 if quick else 240)
    grad = methods.search(problem, "gradient", seed=seed, settings=settings)
    measured, miss = recheck_accuracy(folder, problem, grad)
    rand = methods.search(problem, "random", SearchBudget(evaluations=grad.evaluations), seed=seed)
    rand_measured, _ = recheck_accuracy(folder, problem, rand)
    return problem, grad, measured, miss, rand, rand_measured


def write_plots(run: Run, problem, results: dict, labels: dict) -> None:
    run.files += search_report.plot_fronts(run.out, results, labels=labels)
    run.files += search_report.plot_trace(run.out, results)
    run.files += search_report.plot_fronts(
        run.out, results, x="energy_j", y="accuracy", labels=labels, stem="accuracy_energy"
    )


def summary_md(run: Run, rows, problem, grad, measured, miss, rand, rand_measured) -> str:
    b = problem.budgets
    lines = [
        "# npu-dse demo",
        "",
        f"Seed {run.args.seed}; {'quick' if run.args.quick else 'full'} CNN on the digits "
        f"({len(data.load('cnn').y_test)} test images).",
        "",
        "## The CNN on the presets (one inference)",
        "",
        "| preset | precision | accuracy | latency (us) | energy (uJ) | power (mW) | TOPS/W |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['preset']} | {r['precision']} | {r['accuracy']:.4f} | "
            f"{r['latency_s'] * 1e6:.2f} | {r['energy_j'] * 1e6:.3f} | "
            f"{r['power_w'] * 1e3:.1f} | {r['tops_per_w']:.3g} |"
        )
    narrow = [p for p in NPU_PRESETS if float(get_preset(p).acc_bits) < 24]
    if narrow:
        lines += [
            "",
            f"{', '.join(narrow)} {'accumulates' if len(narrow) == 1 else 'accumulate'} in "
            "fewer than 24 bits: INT8 sums wrap around there (executed bit for bit), which is "
            "what the accuracy shows.",
        ]
    lines += [
        "",
        "## Design search",
        "",
        f"Minimum energy per inference with latency <= {b.max_latency_s * 1e6:.2f} us, "
        f"power <= {b.max_power_w} W and accuracy >= {b.min_accuracy} "
        f"(space `npu_dse/data/spaces/{SPACE.name}`).",
        "",
    ]
    if grad.best is None:
        lines.append(f"No feasible design: {miss or 'see evaluations.csv'}.")
    else:
        m, hw = grad.best_metrics, describe(problem.space, grad.best, problem.workload)
        h = hw["hardware"]
        widths = ", ".join(f"{x['name']} w{x['w_bits']}a{x['a_bits']}" for x in hw["layers"])
        lines += [
            f"- Best (gradient): {h['rows']}x{h['cols']} {h['dataflow']}, {h['sram_kib']:g} KiB, "
            f"w{h['w_bits']}a{h['a_bits']} multipliers; energy {m['energy_j'] * 1e6:.3f} uJ, "
            f"latency {m['latency_s'] * 1e6:.2f} us, power {m['power_w'] * 1e3:.1f} mW, "
            f"area {m['area_mm2']:.3f} mm^2; accuracy {measured:.4f} measured "
            f"(proxy {m['accuracy']:.4f}).",
            f"- Per-layer widths: {widths}.",
        ]
    rbest = rand.best_metrics
    rtext = (
        "none feasible"
        if rbest is None
        else f"{rbest['energy_j'] * 1e6:.3f} uJ at measured accuracy {rand_measured:.4f}"
    )
    lines += [
        f"- Gradient search: {grad.evaluations} exact evaluations; random search with as many: "
        f"best {rtext}.",
        "",
        "## Files",
        "",
        "- `precision.csv`: the table above; `evaluations.csv`: every evaluated design.",
        "- `pareto.png` / `.svg`: latency against energy; `accuracy_energy.png` / `.svg`; "
        "`search_trace.png` / `.svg`: best energy against wall time.",
        "- `best.json`: the chosen design as a design file (`npu-dse simulate --design`); "
        "`search.json`: its figures; `run.json`: command, seed, versions.",
    ]
    return "\n".join(lines) + "\n"


@x64
def main(argv=None) -> dict:
    args = parse_args(__doc__, argv)
    run = Run("demo", args, argv)
    print(f"npu-dse demo: run folder {run.out}", file=sys.stderr)
    with tqdm(total=1, desc="train cnn", unit="run", file=sys.stderr, leave=False) as bar:
        model, cfg, folder = trained_model("cnn", args.quick, run.out, args.seed)
        bar.update()
    ds = data.load(cfg.model)
    float_acc = float(train.evaluate(model, ds.x_test, ds.y_test)["accuracy"])
    n = len(NPU_PRESETS) * len(PRECISIONS)
    with tqdm(total=n, desc="evaluate on presets", file=sys.stderr, leave=False) as bar:
        rows = precision_rows(model, cfg, folder, bar)
    run.csv("precision", rows)
    budgets = default_budgets(rows, float_acc)
    space = load_space(SPACE)
    run.meta["config"] = {
        "model": dataclasses.asdict(cfg),
        "space": space.to_dict(),
        "budgets": dataclasses.asdict(budgets),
        "objective": "energy",
    }
    with tqdm(total=1, desc="design search", unit="run", file=sys.stderr, leave=False) as bar:
        problem, grad, measured, miss, rand, rand_measured = search(
            space, folder, budgets, args.quick, args.seed
        )
        bar.update()
    results = {"gradient": grad, "random": rand}
    all_rows = search_report.result_rows(grad) + search_report.result_rows(rand)
    run.files.append(search_report.write_evaluations_csv(run.out / "evaluations.csv", all_rows))
    labels = {}
    if grad.best is not None:
        labels["best energy"] = grad.best_metrics | _hardware_fields(problem, grad)
    write_plots(run, problem, results, labels)
    found = None
    if grad.best is not None:
        found = describe(problem.space, grad.best, problem.workload) | grad.best_metrics
        found["accuracy_measured"] = measured
        best = design_file(problem, grad.best)
        run.files.append(write_atomic(run.out / "best.json", json.dumps(best, indent=2) + "\n"))
    run.files.append(
        write_atomic(run.out / "search.json", json.dumps(found, indent=2, default=float) + "\n")
    )
    (run.out / "summary.md").write_text(
        summary_md(run, rows, problem, grad, measured, miss, rand, rand_measured)
    )
    print((run.out / "summary.md").read_text())
    headline = {
        "float_accuracy": float_acc,
        "best_energy_j": None if grad.best is None else grad.best_metrics["energy_j"],
        "best_accuracy_measured": measured,
        "presets": {f"{r['preset']}/{r['precision']}": r["accuracy"] for r in rows},
    }
    return run.finish(headline)


def _hardware_fields(problem, result) -> dict:
    h = describe(problem.space, result.best, problem.workload)["hardware"]
    return {
        "rows": h["rows"],
        "cols": h["cols"],
        "dataflow": h["dataflow"],
        "sram_kib": h["sram_kib"],
        "w_bits": h["w_bits"],
        "a_bits": h["a_bits"],
    }


if __name__ == "__main__":
    main()
