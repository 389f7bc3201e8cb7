"""The ``search`` use case: a design space searched for a workload under budgets.

:func:`problem_from_files` builds the problem from what a user gives (a space file, a
workload file or a trained checkpoint, the objective and budgets); :func:`search` runs a
method on it, re-checks an accuracy budget by execution and returns a :class:`SearchOutcome`,
whose :meth:`~SearchOutcome.to_dict` is what ``npu-dse search --json`` prints and whose
:meth:`~SearchOutcome.best_design` is a design file (``best.json``) that ``simulate``
reproduces exactly. :func:`write_run` writes the run folder atomically.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import dse
from dse import Budgets, Problem, SearchBudget, Space, base_design, metrics
from dse import design as dz
from hw import bounds
from hw.bounds import InputError
from hw.x64 import x64
from npu_dse import plots, search_llm, suites
from npu_dse.calibration import calibration_bits, recheck_accuracy
from npu_dse.designs import design_to_dict
from npu_dse.inputs import boundary
from npu_dse.rundir import versions
from npu_dse.spaces import load_space, with_model_widths, with_tech
from npu_dse.workloads import load_model_widths

METHODS = tuple(dse.METHODS)


@dataclasses.dataclass
class SearchOutcome:
    """A finished search: the problem, the method's result and the accuracy re-check."""

    problem: Problem
    result: object  # dse.SearchResult
    source: str  # what the workload came from, for tables
    measured_accuracy: float | None = None  # the best design's accuracy by execution
    miss_line: str | None = None  # why no design is feasible, in one line
    # An LLM step's target (search_llm.LLMTarget, search_lm.LMTarget): figures, re-check.
    llm_target: object = None
    llm: dict | None = None  # the best design's LLM figures (search_llm.llm_figures)
    measured_perplexity: float | None = None  # a char LM's best design, by execution

    def to_dict(self) -> dict:
        """The JSON object of a search: ``best`` (or null), evaluations, wall time, ..."""
        problem, result = self.problem, self.result
        best = None
        if result.best is not None:
            m = result.best_metrics
            best = {
                **(
                    dz.describe(problem.space, result.best, problem.workload)
                    if problem.llm is None
                    else search_llm.describe(problem, result.best)
                ),
                **{k: m[k] for k in ("latency_s", "energy_j", "power_w", "area_mm2", "edp_js")},
                "feasible": True,
            }
            if problem.suite is not None:
                best |= {"suite_objective": m["suite_objective"]}
                best["networks"] = suites.network_report(problem, m)
            if "accuracy" in m and self.llm_target is not None:  # 1 / perplexity (search_lm)
                best["perplexity_proxy"] = 1.0 / float(m["accuracy"])
            elif "accuracy" in m:
                best["accuracy_proxy"] = m["accuracy"]
            if self.measured_perplexity is not None:
                best["perplexity"] = self.measured_perplexity
            if self.measured_accuracy is not None:
                best["accuracy"] = self.measured_accuracy
            if self.llm is not None:
                best["llm"] = self.llm
        out = {
            "best": best,
            "evaluations": result.evaluations,
            "wall_s": round(result.wall_s, 3),
            "stopped": result.stopped,
            "budget": {"evaluations": result.budget.evaluations, "time_s": result.budget.time_s},
            "method": result.method,
            "seed": result.seed,
            "objective": problem.objective,
        }
        if self.llm_target is not None:
            out["objective"] = self.llm_target.objective
            out["llm"] = self.llm_target.to_dict()
        if result.best is None and result.closest_miss is not None:
            name, miss = result.closest_miss
            out["closest_miss"] = {"budget": name, "relative_miss": miss}
        return out

    def best_design(self) -> dict | None:
        """The best design as a design file's object (``npu_dse.designs``), or None."""
        if self.result.best is None:
            return None
        found = design_file(self.problem, self.result.best)
        if self.problem.suite is not None:
            found["networks"] = suites.network_report(self.problem, self.result.best_metrics)
        return found

    def no_design_line(self) -> str:
        """One line saying why there is no best design."""
        if self.miss_line is not None:
            return self.miss_line
        if self.result.closest_miss is None:
            if self.result.stopped == "time":
                return (
                    "no design was evaluated: the time budget of "
                    f"{self.result.budget.time_s:g} s ran out first (compilation counts)"
                )
            return "no design was evaluated"
        name, miss = self.result.closest_miss
        if name == "accuracy" and self.llm_target is not None:  # 1 / perplexity: convert
            name, miss = "perplexity", miss / (1.0 - miss)
        if name == "fits":
            return "no feasible design: no evaluated design's tiles fit its buffers"
        limit = "below" if name == "accuracy" else "above"
        return (
            f"no feasible design: the {name} budget could not be met; the closest design is "
            f"{100 * miss:.1f} % {limit} it"
        )


@x64
def design_file(problem: Problem, design: dz.Design) -> dict:
    """A searched design as a design file: the hardware the search evaluated (the base with
    the design's values) and every layer's widths and mapping."""
    if problem.llm is not None:
        return search_llm.design_file(problem, design)
    config = dz.to_config(problem.base, design, problem.workload)
    config = dataclasses.replace(config, name=f"searched-{problem.space.base}")
    return design_to_dict(config, problem.workload, design.mapping, (design.w_bits, design.a_bits))


@x64
def budgets_for(space: Space, workload) -> Budgets:
    """Latency at most the base preset's; power at most 1.5x the base preset's."""
    m = metrics(dz.evaluate(space.base_config(), workload, base_design(space, workload)))
    return Budgets(max_latency_s=float(m["latency_s"]), max_power_w=1.5 * float(m["power_w"]))


@boundary
@x64
def problem_from_files(
    space: str | Path,
    objective: str,
    budgets: Budgets,
    workload: str | Path | None = None,
    gemm: bool = False,
    checkpoint: str | Path | None = None,
    tech: str | Path | None = None,
    batch: int | None = None,
) -> tuple[Problem, str]:
    """The problem of a space file and a workload file (or a trained ``checkpoint``, whose
    layers are the workload and whose accuracy the proxy, calibrated here, predicts); ``tech``,
    a technology file, replaces the base design's table."""
    budgets = budgets.check()
    if budgets.min_accuracy is not None and checkpoint is None:
        raise ValueError("an accuracy budget needs a trained model (--checkpoint DIR) to measure")
    found = with_tech(load_space(space), tech)
    accuracy = None
    if checkpoint is not None:
        from npu_dse import calibration

        wl, accuracy, _ = calibration.calibrate(checkpoint, bits=calibration_bits(found))
        source = f"model {checkpoint}"
    elif workload is not None:
        wl, widths = load_model_widths(workload, gemm=gemm, batch=batch)
        found = with_model_widths(found, wl.names, widths)
        source = Path(workload).name
    else:
        raise ValueError("give --workload FILE or --checkpoint DIR (a trained model)")
    bounds.check_work(wl, max(found.rows), max(found.cols))  # the largest array searched
    return Problem(found, wl, objective, budgets, accuracy), source


def run_method(
    problem: Problem,
    method: str,
    *,
    seed: int = 0,
    evaluations: int | None = None,
    time_budget_s: float | None = None,
    settings=None,
    checkpoint: str | Path | None = None,
    progress=None,
):
    """Run one search method (``dse.METHODS``) on ``problem`` under the exact-evaluation and
    wall-time budgets; returns its ``dse.SearchResult``."""
    seed = bounds.check_seed(seed)
    budget = SearchBudget(evaluations, time_budget_s)
    return dse.search(
        problem,
        method,
        budget,
        seed=seed,
        settings=settings,
        checkpoint=checkpoint,
        progress=progress,
    )


@x64
def search(
    problem: Problem,
    method: str = "gradient",
    *,
    source: str = "",
    accuracy_checkpoint: str | Path | None = None,
    llm_target=None,
    **kwargs,
) -> SearchOutcome:
    """Search ``problem`` with ``method`` (keyword arguments as :func:`run_method`); with an
    accuracy model, execute the best designs from ``accuracy_checkpoint`` until one meets the
    accuracy budget (``calibration.recheck_accuracy``). With an LLM step (``llm_target``: the
    problem is ``search_llm.llm_problem``'s or ``search_lm.lm_problem``'s), the best design's
    step figures; a char LM's perplexity budget is re-checked by execution the same way
    (``search_lm.LMTarget.recheck``)."""
    result = run_method(problem, method, **kwargs)
    outcome = SearchOutcome(problem, result, source, llm_target=llm_target)
    if result.best is not None and problem.accuracy is not None and llm_target is not None:
        outcome.measured_perplexity, outcome.miss_line = llm_target.recheck(problem, result)
    elif result.best is not None and problem.accuracy is not None:
        if accuracy_checkpoint is None:
            raise ValueError("an accuracy model needs its checkpoint to re-check by execution")
        measured, miss = recheck_accuracy(accuracy_checkpoint, problem, result)
        outcome.measured_accuracy, outcome.miss_line = measured, miss
    if result.best is not None and llm_target is not None:  # the re-checked best's figures
        outcome.llm = llm_target.figures(problem, result.best, result.best_metrics)
    return outcome


def check_out_dir(out: str | Path) -> Path:
    """Refuse, before any work, an output folder that names an existing file."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; give a folder (it is created if absent)")
    return out


def write_run(out: str | Path, outcome: SearchOutcome, run: dict) -> Path:
    """Write the run folder: ``evaluations.csv``, ``best.json`` (a design file; absent when
    no design is feasible), ``search.json`` (:meth:`SearchOutcome.to_dict`), the Pareto and
    trace plots and ``run.json`` (``run`` plus the space and package versions).

    Everything is written into a temporary folder beside ``out`` and moved into place when
    complete, so an interrupted run never leaves a half-written or mixed folder.
    """
    out = check_out_dir(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        _write_files(tmp, outcome, run)
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        if out.exists():
            os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _write_files(folder: Path, outcome: SearchOutcome, run: dict) -> None:
    problem, result = outcome.problem, outcome.result
    plots.write_evaluations_csv(folder / "evaluations.csv", plots.result_rows(result))
    summary = outcome.to_dict()
    (folder / "search.json").write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n")
    best = outcome.best_design()
    if best is not None:
        (folder / "best.json").write_text(json.dumps(best, indent=2, allow_nan=False) + "\n")
    labels = {}
    if result.best is not None:
        labels[f"best {problem.objective}"] = {**summary["best"]["hardware"], **result.best_metrics}
    plots.plot_fronts(folder, {result.method: result}, labels=labels)
    plots.plot_trace(folder, {result.method: result})
    meta = {**run, "space": problem.space.to_dict(), "versions": versions()}
    (folder / "run.json").write_text(json.dumps(meta, indent=2, allow_nan=False) + "\n")
