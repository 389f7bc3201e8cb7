"""The ``calibrate`` use case: technology fields fitted by gradient to measured figures.

Not to be confused with :mod:`npu_dse.calibration` (the accuracy proxy's calibration).

A measurements file is a CSV with one measured figure per row and the columns of
:data:`COLUMNS`::

    workload,design,metric,measured
    gemm_a.json,big_sram.json,energy_j,1.52e-4
    gemm_b.json,edge-tpu-like,power_w,0.83

Relative paths are read from the CSV's folder; ``design`` is a design file or a preset name.
The chosen fields of the technology table (:data:`FITTABLE`, each positive in every row's
table and the same there) are fitted, shared by every row, by ``npu_dse.tech_fit``: Adam
through the smooth model in log space within ``start / 10 .. start * 10``, then an exact
finish. Every figure reported (before, after, leave-one-out) is the exact model's. The
leave-one-out prediction of row ``i`` is the exact model's figure for row ``i`` with the
fields fitted to every other row.

Latency does not depend on the technology (it enters energies only): a latency row is
reported but moves no field. A field that no row depends on is an error.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import re
from pathlib import Path

import jax
import numpy as np

from hw import tech
from hw.bounds import InputError
from hw.presets import preset_names
from hw.types import TechTable
from hw.x64 import x64
from npu_dse import tech_fit, techfiles
from npu_dse.inputs import read_text
from npu_dse.simulate import resolve_design, simulate
from npu_dse.workloads import load_workload

COLUMNS = {
    "workload": "workload file (.csv SCALE-Sim conv format, .json, .onnx)",
    "design": "design file (.json) or preset name",
    "metric": f"what was measured: {', '.join(tech_fit.METRICS)}",
    "measured": "the measured figure, > 0, in the metric's unit (s, J or W)",
}
"""The columns of a measurements file, in order."""

FITTABLE = tech_fit.FITTABLE
"""Fields ``--fit`` accepts."""

DEFAULT_STEPS = 200
"""Adam steps of each fit (the exact finish follows)."""

MAX_STEPS = 100_000
"""Most Adam steps of one fit."""

_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\Z", re.ASCII)

CSV_FIELDS = (
    "row",
    "workload",
    "design",
    "metric",
    "measured",
    "predicted_before",
    "predicted_after",
    "error_before",
    "error_after",
    "loo_predicted",
    "loo_error",
)
"""Columns of ``calibration.csv`` (errors are ``predicted / measured - 1``)."""


@dataclasses.dataclass(frozen=True)
class Row:
    """One measurement: where it came from and its exact simulation at the start."""

    line: int  # row number in the CSV (the header is row 1)
    workload: str  # as written
    design: str  # as written
    metric: str
    measured: float
    case: tuple  # (config, workload, mapping, layer_bits), names blanked


@dataclasses.dataclass(frozen=True)
class Calibration:
    """The result of :func:`calibrate` (every figure a Python float, from the exact model)."""

    source: str  # the measurements file
    fields: tuple[str, ...]
    start: dict  # field -> starting value
    smooth: dict  # field -> value after the Adam stage (smooth model)
    fitted: dict  # field -> value after the exact finish
    bounds: dict  # field -> [low, high]
    identified: int  # independent directions the rows give (full rank: len(fields))
    rows: list  # per row: the CSV_FIELDS
    rms_log_error: dict  # "before", "after", "leave_one_out": sqrt(mean(log(pred/meas)^2))
    steps: int
    seed: int | None
    tech_file: dict  # the fitted technology file (npu_dse.techfiles)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _where(path: Path, line: int, column: str) -> str:
    return f"{path} row {line}, column {column!r}"


def _resolve(base: Path, text: str) -> Path:
    p = Path(text)
    return p if p.is_absolute() else base / p


def _measured(text: str, where: str) -> float:
    value = float(text) if _NUMBER.match(text) else math.nan  # no 1_000, no other digits
    if not (math.isfinite(value) and value > 0):
        raise InputError(f"{where}: must be a finite number > 0, got {text!r}")
    return value


def _design(base: Path, text: str, tech_path, where: str):
    path = _resolve(base, text)
    if path.suffix.lower() == ".json" or path.exists():
        if not path.is_file():
            raise InputError(f"{where}: design file {str(path)!r} not found")
        return resolve_design(path, tech=tech_path)
    if text not in preset_names():
        raise InputError(
            f"{where}: {text!r} is neither a design file nor a preset ({', '.join(preset_names())})"
        )
    return resolve_design(preset=text, tech=tech_path)


def _case(sim) -> tuple:
    blank = ("",) * sim.workload.num_layers
    config = dataclasses.replace(sim.config, name="")
    workload = dataclasses.replace(sim.workload, names=blank)
    return (config, workload, sim.mapping, sim.layer_bits)


def _row(path: Path, line: int, cells: dict, tech_path, loaded: dict) -> Row:
    def where(column):
        return _where(path, line, column)

    if cells["metric"] not in tech_fit.METRICS:
        raise InputError(
            f"{where('metric')}: unknown metric {cells['metric']!r}; allowed: "
            f"{', '.join(tech_fit.METRICS)}"
        )
    measured = _measured(cells["measured"], where("measured"))
    wl_path = _resolve(path.parent, cells["workload"])
    try:
        if wl_path not in loaded:
            loaded[wl_path] = load_workload(wl_path)[0]
        design = _design(path.parent, cells["design"], tech_path, where("design"))
    except ValueError as err:
        column = "design" if wl_path in loaded else "workload"
        raise InputError(
            f"{where(column)}: {str(err).removeprefix(where(column) + ': ')}"
        ) from None
    try:
        sim = simulate(loaded[wl_path], design)
    except ValueError as err:
        raise InputError(f"{where('design')}: {err}") from None
    return Row(line, cells["workload"], cells["design"], cells["metric"], measured, _case(sim))


def read_measurements(path: str | Path, tech_path: str | Path | None = None) -> list[Row]:
    """The rows of a measurements file, each simulated exactly on its design (with the
    technology file ``tech_path`` over the design's table); bad rows are one-line errors
    naming the row and column."""
    path = Path(path)
    if tech_path is not None:
        techfiles.load_tech(tech_path, tech.default_tech())  # its errors name the file
    text = read_text(path, "measurements file")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        table = [(reader.line_num, [c.strip() for c in r]) for r in reader if any(r)]
    except csv.Error as err:
        raise InputError(f"{path} row {reader.line_num}: malformed CSV ({err})") from None
    if not table:
        raise InputError(f"{path}: empty; expected the columns {', '.join(COLUMNS)}")
    header = table[0][1]
    if header != list(COLUMNS):
        raise InputError(f"{path} row 1: the columns must be {', '.join(COLUMNS)}; got {header}")
    rows, loaded = [], {}
    for line, cells in table[1:]:
        if len(cells) != len(COLUMNS):
            raise InputError(f"{path} row {line}: {len(cells)} cells; expected {len(COLUMNS)}")
        rows.append(_row(path, line, dict(zip(COLUMNS, cells, strict=True)), tech_path, loaded))
    if not rows:
        raise InputError(f"{path}: no measurements (only the header)")
    return rows


def _start(rows: list[Row], fields: tuple[str, ...]) -> np.ndarray:
    """The fields' common starting value; one-line errors for a field that cannot be fitted."""
    for name in fields:
        if name not in FITTABLE:
            raise InputError(f"--fit: unknown field {name!r}; allowed: {', '.join(FITTABLE)}")
    if len(set(fields)) != len(fields):
        raise InputError(f"--fit: a field is named twice in {','.join(fields)}")
    start = []
    for name in fields:
        seen = {}
        for r in rows:
            t: TechTable = r.case[0].tech
            value = float(getattr(t, name))
            if name in tech.OVERRIDES and name not in t.overrides:
                raise InputError(
                    f"--fit: {name!r} is not set in the technology of row {r.line} (an override "
                    "counts only where a design or --tech file sets it); give its start with --tech"
                )
            if not value > 0:
                raise InputError(
                    f"--fit: {name!r} is {value:g} in the technology of row {r.line}; a fitted "
                    "field must start > 0 (give its start with --tech)"
                )
            seen.setdefault(value, r.line)
        if len(seen) > 1:
            (a, ra), (b, rb) = list(seen.items())[:2]
            raise InputError(
                f"--fit: {name!r} starts at {a:g} in row {ra} and {b:g} in row {rb} (designs at "
                "other nodes?); give one start for every row with --tech FILE"
            )
        start.append(next(iter(seen)))
    return np.array(start, dtype=np.float64)


def _first_theta(start: np.ndarray, seed: int | None) -> np.ndarray:
    """The table's values, or with a seed a log-uniform draw in ``start / 3 .. start * 3``."""
    if seed is None:
        return np.log(start)
    u = jax.random.uniform(jax.random.key(seed), start.shape, minval=-1.0, maxval=1.0)
    return np.log(start) + math.log(3.0) * np.asarray(u)


@x64
def calibrate(
    rows: list[Row],
    fields: tuple[str, ...],
    *,
    steps: int = DEFAULT_STEPS,
    seed: int | None = None,
    source: str = "",
    tech_spec: dict | None = None,
    progress=None,
) -> Calibration:
    """Fit ``fields`` to ``rows`` (see the module docstring) and leave each row out in turn.

    ``tech_spec`` is the starting technology file's body (written back with the fitted
    fields); ``progress(done, total)`` counts Adam steps over every fit.
    """
    if not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
        raise InputError(f"--steps must be an integer from 1 to {MAX_STEPS}, got {steps!r}")
    first = _start(rows, fields)  # checks the fields
    index = [FITTABLE.index(f) for f in fields]
    start = np.ones(len(FITTABLE))
    start[index] = first
    free = np.isin(np.arange(len(FITTABLE)), index)
    cases, metrics = [r.case for r in rows], [r.metric for r in rows]
    data = tech_fit.stack_rows(cases, metrics, [r.measured for r in rows])
    box = tech_fit.bounds(start, free)
    log_start = np.where(free, np.log(start), 0.0)
    r0, jac = (np.asarray(x) for x in tech_fit.exact_jacobian(log_start, free, data))
    for j, name in zip(index, fields, strict=True):
        if not np.any(jac[:, j] != 0):
            raise InputError(
                f"--fit: {name!r} does not affect any row's measured figure (latency depends "
                "on no technology field; an override hides the law it replaces)"
            )
    theta0 = np.where(free, _first_theta(start, seed), 0.0)
    total = (len(rows) + 1) * steps
    if progress is not None:
        progress(0, total)  # the first chunk compiles

    def fit(weights, k):
        report = None if progress is None else (lambda n: progress(k * steps + n, total))
        smooth = tech_fit.adam_stage(theta0, box, weights, free, data, steps, report)
        return smooth, tech_fit.exact_finish(smooth, box, weights, free, data)

    def values(theta) -> dict:
        return {f: float(np.exp(theta[j])) for j, f in zip(index, fields, strict=True)}

    smooth, theta = fit(np.ones(len(rows)), 0)
    r1 = np.asarray(tech_fit.exact_jacobian(theta, free, data)[0])
    loo = np.empty(len(rows))
    for i in range(len(rows)):
        weights = np.ones(len(rows))
        weights[i] = 0.0
        theta_i = fit(weights, i + 1)[1]
        loo[i] = np.asarray(tech_fit.exact_jacobian(theta_i, free, data)[0])[i]
    fitted = values(theta)
    body = {**(tech_spec or {}), **fitted}
    techfiles.tech_from_dict(body, rows[0].case[0].tech, "fitted technology")  # validates
    return Calibration(
        source=source,
        fields=fields,
        start=values(np.log(start)),
        smooth=values(smooth),
        fitted=fitted,
        bounds={
            f: [float(np.exp(box[0][j])), float(np.exp(box[1][j]))]
            for j, f in zip(index, fields, strict=True)
        },
        identified=tech_fit.identified(jac, np.ones(len(rows)), free),
        rows=[_row_dict(r, a, b, c) for r, a, b, c in zip(rows, r0, r1, loo, strict=True)],
        rms_log_error={
            k: float(np.sqrt(np.mean(v * v)))
            for k, v in (("before", r0), ("after", r1), ("leave_one_out", loo))
        },
        steps=steps,
        seed=seed,
        tech_file=_tech_file(body, fields, len(rows), source),
    )


def _row_dict(r: Row, before: float, after: float, loo: float) -> dict:
    m = r.measured
    return {
        "row": r.line,
        "workload": r.workload,
        "design": r.design,
        "metric": r.metric,
        "measured": m,
        "predicted_before": m * math.exp(before),
        "predicted_after": m * math.exp(after),
        "error_before": math.expm1(before),
        "error_after": math.expm1(after),
        "loo_predicted": m * math.exp(loo),
        "loo_error": math.expm1(loo),
    }


def _tech_file(body: dict, fields, n_rows: int, source: str) -> dict:
    note = f"npu-dse calibrate: fitted to {n_rows} measurements of {Path(source).name or 'rows'}"
    sources = dict(body.get("sources", {})) | {f: note for f in fields}
    values = {k: v for k, v in body.items() if k in techfiles.TECH_KEYS}
    return {"format": techfiles.FORMAT, "version": techfiles.VERSION, **values, "sources": sources}
