"""Suites in the application: several workload files searched for one chip (``dse.suite``).

A suite is a list of :class:`Network` entries, given on the command line with flags or in a
suite file. ``npu-dse search --workload a.onnx --workload b.csv --workload-weights 0.7,0.3
--max-latency-s 0.003,0.01`` (:func:`networks_from_flags`) and ``npu-dse search --suite
suite.json`` (:func:`load_suite`) with the file::

    {"workloads": [
      {"path": "a.onnx", "weight": 0.7, "max_latency_s": 0.003, "batch": 1},
      {"path": "b.csv", "weight": 0.3, "max_latency_s": 0.01, "gemm": true, "name": "bert"}
    ]}

build the same problem (:func:`suite_problem`). In a suite file each workload has a ``path``
(relative to the suite file's folder unless absolute) and optionally a ``name`` (default: the
file's stem, made unique with ``_2``, ``_3``...), a ``weight`` (its share; give every workload
one or none: default equal shares), a ``max_latency_s`` budget of its own, ``batch`` (the value
of an ONNX model's symbolic dimensions) and ``gemm`` (a SCALE-Sim CSV in the GEMM format).
Weights are normalized to sum 1; power and area budgets (flags) apply to the chip. Reports
carry each network's latency, energy, power and EDP (:func:`network_report`).
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from pathlib import Path

from dse import Budgets, Problem
from dse.suite import make_suite, metric_key
from hw import bounds
from npu_dse.inputs import boundary
from npu_dse.rundir import read_json
from npu_dse.spaces import load_space, with_model_widths, with_tech
from npu_dse.workloads import load_model_widths

SUITE_KEYS = ("path", "name", "weight", "max_latency_s", "batch", "gemm")
"""Keys of a workload in a suite file (only ``path`` is required)."""


@dataclasses.dataclass(frozen=True)
class Network:
    """One workload of a suite and its own options."""

    path: Path
    name: str
    weight: float | None = None  # share of the objective; None: equal shares
    max_latency_s: float | None = None  # this network's latency budget, s
    batch: int | None = None  # value of an ONNX model's symbolic dimensions
    gemm: bool = False  # a SCALE-Sim CSV in the GEMM format


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


def networks_from_flags(
    paths,
    weights: list[float] | None = None,
    latency_s: list[float] | None = None,
    *,
    gemm: bool = False,
    batch: int | None = None,
) -> list[Network]:
    """The suite of repeated ``--workload`` flags: ``--gemm`` and ``--batch`` apply to all."""
    n = len(paths)
    weights = weights if weights is not None else [None] * n
    latency_s = latency_s if latency_s is not None else [None] * n
    return [
        Network(Path(p), name, w, lat, batch, gemm)
        for p, name, w, lat in zip(paths, network_names(paths), weights, latency_s, strict=True)
    ]


def _number(where: str, key: str, value) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not (ok and math.isfinite(value) and value > 0):
        raise ValueError(f"{where}: {key!r} must be a positive number, got {value!r}")
    return float(value)


def _entry(file: Path, index: int, spec) -> dict:
    """One workload of a suite file, checked; ``path`` resolved against the file's folder."""
    where = f"{file} workload {index}"
    if not isinstance(spec, dict):
        raise ValueError(f"{where}: must be an object with a 'path', got {type(spec).__name__}")
    unknown = sorted(set(spec) - set(SUITE_KEYS))
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(SUITE_KEYS)}")
    path = spec.get("path")
    if not isinstance(path, str) or not path:
        raise ValueError(f"{where}: 'path' must be a workload file's path, got {path!r}")
    out = {"path": Path(path) if Path(path).is_absolute() else file.parent / path}
    name = spec.get("name")
    if name is not None and (not isinstance(name, str) or not name or set(name) & set("/@")):
        raise ValueError(f"{where}: 'name' must be a non-empty string without '/' or '@'")
    out["name"] = name
    for key in ("weight", "max_latency_s"):
        if spec.get(key) is not None:
            out[key] = _number(where, key, spec[key])
    batch = spec.get("batch")
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int) or batch < 1):
        raise ValueError(f"{where}: 'batch' must be a positive integer, got {batch!r}")
    out["batch"] = batch
    gemm = spec.get("gemm", False)
    if not isinstance(gemm, bool):
        raise ValueError(f"{where}: 'gemm' must be true or false, got {gemm!r}")
    out["gemm"] = gemm
    return out


@boundary
def load_suite(path: str | Path) -> list[Network]:
    """The networks of a suite file (see the module docstring); errors name the file, the
    workload (counted from 1) and the field."""
    path = Path(path)
    doc = read_json(path, "suite file")
    if not isinstance(doc, dict) or set(doc) != {"workloads"}:
        raise ValueError(f"{path}: a suite file is an object with one key, 'workloads' (a list)")
    specs = doc["workloads"]
    if not isinstance(specs, list) or len(specs) < 2:
        got = len(specs) if isinstance(specs, list) else type(specs).__name__
        raise ValueError(f"{path}: 'workloads' must list at least two workloads, got {got}")
    entries = [_entry(path, i, s) for i, s in enumerate(specs, start=1)]
    weighted = sum("weight" in e for e in entries)
    if weighted not in (0, len(entries)):
        raise ValueError(
            f"{path}: give every workload a 'weight' or none (equal shares); {weighted} of "
            f"{len(entries)} have one"
        )
    stems = network_names(e["path"] for e in entries)
    names = [e.pop("name") or stem for e, stem in zip(entries, stems, strict=True)]
    repeated = [n for n, c in Counter(names).items() if c > 1]
    if repeated:
        raise ValueError(f"{path}: two workloads are named {repeated[0]!r}; give each a 'name'")
    return [Network(name=n, **e) for n, e in zip(names, entries, strict=True)]


@boundary
def suite_problem(
    space: str | Path,
    objective: str,
    budgets: Budgets,
    networks: list[Network],
    *,
    tech: str | Path | None = None,
) -> tuple[Problem, str]:
    """The problem of one chip for several networks (see the module docstring); ``tech``, a
    technology file, replaces the base design's table before the networks' references are
    taken. Networks' ``max_latency_s`` become per-network budgets (``budgets.max_latency_s``
    must then be None)."""
    found = with_tech(load_space(space), tech)
    loaded, widths = {}, {}
    for n in networks:
        loaded[n.name], own = load_model_widths(n.path, gemm=n.gemm, batch=n.batch)
        widths |= {f"{n.name}/{layer}": bits for layer, bits in own.items()}
    weights = [n.weight for n in networks]
    shares = None if None in weights else {n.name: n.weight for n in networks}
    names = [f"{net}/{layer}" for net, w in loaded.items() for layer in w.names]
    found = with_model_widths(found, names, widths)
    suite, wl = make_suite(found, loaded, shares, objective)
    bounds.check_work(wl, max(found.rows), max(found.cols))  # the largest array searched
    per = tuple((n.name, float(n.max_latency_s)) for n in networks if n.max_latency_s)
    if per:
        budgets = dataclasses.replace(budgets, network_latency_s=per)
    budgets = budgets.check()
    return Problem(found, wl, objective, budgets, suite=suite), " + ".join(loaded)


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
        limit = dict(problem.budgets.network_latency_s).get(name)
        if limit is not None:
            out[name]["max_latency_s"] = limit
    return out
