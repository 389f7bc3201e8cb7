"""Suites in the application: several workload files searched for one chip (``dse.suite``).

``npu-dse search --workload a.onnx --workload b.csv --workload-weights 0.7,0.3
--max-latency-s 0.003,0.01`` builds the problem with :func:`suite_problem`: networks are named
after their files' stems (made unique), weights are shares (normalized to sum 1; default
equal), and a latency budget is one value per network or one for all; power and area budgets
apply to the chip. Reports carry each network's latency, energy, power and EDP
(:func:`network_report`).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

from dse import Budgets, Problem
from dse.suite import make_suite, metric_key
from npu_dse.inputs import boundary
from npu_dse.spaces import load_space
from npu_dse.workloads import load_workload


@boundary
def parse_floats(text: str | None, flag: str, count: int) -> list[float] | None:
    """``"0.7,0.3"`` as floats: ``count`` values, or one value for all; ``None`` stays None."""
    if text is None:
        return None
    try:
        values = [float(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{flag} must be comma-separated numbers, got {text!r}") from None
    if len(values) == 1:
        values *= count
    if len(values) != count:
        raise ValueError(
            f"{flag} needs one number per workload ({count}) or one for all, got {text!r}"
        )
    return values


def network_names(paths) -> list[str]:
    """Each file's stem, with ``_2``, ``_3``... where stems repeat."""
    seen: Counter = Counter()
    out = []
    for path in paths:
        stem = Path(path).stem.replace("/", "_").replace("@", "_") or "network"
        seen[stem] += 1
        out.append(stem if seen[stem] == 1 else f"{stem}_{seen[stem]}")
    return out


@boundary
def suite_problem(
    space: str | Path,
    objective: str,
    budgets: Budgets,
    workloads,
    *,
    weights: list[float] | None = None,
    latency_s: list[float] | None = None,
    gemm: bool = False,
    batch: int | None = None,
) -> tuple[Problem, str]:
    """The problem of one chip for several workload files (see the module docstring).

    ``latency_s`` is one budget per network (``budgets.max_latency_s`` must then be None).
    """
    found = load_space(space)
    names = network_names(workloads)
    loaded = {
        n: load_workload(p, gemm=gemm, batch=batch)[0]
        for n, p in zip(names, workloads, strict=True)
    }
    shares = None if weights is None else dict(zip(names, weights, strict=True))
    suite, wl = make_suite(found, loaded, shares, objective)
    if latency_s is not None:
        per = tuple(zip(names, (float(v) for v in latency_s), strict=True))
        budgets = dataclasses.replace(budgets, network_latency_s=per).check()
    return Problem(found, wl, objective, budgets, suite=suite), " + ".join(names)


def network_report(problem: Problem, metrics: dict) -> dict:
    """Each network's ``latency_s``, ``energy_j``, ``power_w``, ``edp_js`` and its objective
    relative to the base design, from a design's exact metrics."""
    suite = problem.suite
    key = {"edp": "edp_js", "energy": "energy_j", "latency": "latency_s"}[suite.objective]
    out = {}
    for name, ref, share in zip(suite.names, suite.reference, suite.weights, strict=True):
        parts = {p: metrics[metric_key(p, name)] for p in ("latency_s", "energy_j", "power_w")}
        parts["edp_js"] = metrics[metric_key("edp_js", name)]
        out[name] = parts | {"weight": share, "relative_objective": parts[key] / ref}
    return out
