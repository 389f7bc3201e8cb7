"""Files from design searches: the CSV of every evaluated design and the figures.

:func:`write_evaluations_csv` writes one row per exactly evaluated design (the ``rows`` of a
:class:`~dse.result.SearchResult`), :func:`plot_fronts` the feasible designs of each method
with its Pareto front, and :func:`plot_trace` the best objective found against wall time.
Figures are written as PNG and SVG through :class:`matplotlib.figure.Figure`, without
pyplot's global state.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from dse.objective import OBJECTIVES
from dse.pareto import MAXIMIZED, pareto_front
from dse.result import METRICS, SearchResult
from hw.types import DATAFLOWS
from npu_dse.rundir import write_atomic

COLUMNS = (
    "method",
    "seed",
    "evaluation",
    "wall_s",
    "rows",
    "cols",
    "dataflow",
    "sram_kib",
    "clock_mhz",
    "dram_bw_gbps",
    "w_bits",
    "a_bits",
    "mean_w_bits",
    "mean_a_bits",
    *METRICS,
    "accuracy",
    "fits",
    "feasible",
)
"""CSV column order; columns no row has are left out, unknown ones follow in first-seen order."""

_FORMATS = ("png", "svg")
_LABELS = {
    "latency_s": "latency (s)",
    "energy_j": "energy (J)",
    "power_w": "power (W)",
    "area_mm2": "area (mm²)",
    "edp_js": "energy-delay product (J·s)",
    "accuracy": "accuracy",
}


def _axis_label(metric: str) -> str:
    return _LABELS.get(metric, metric)


def dataflow_name(code) -> str:
    """A dataflow code (0, 1, 2) or name as its name: ``dataflow_name(1)`` is ``"ws"``."""
    return code if isinstance(code, str) else DATAFLOWS[int(code)]


def result_rows(result: SearchResult) -> list[dict]:
    """The rows of ``result`` with its ``method`` and ``seed`` added (to pool several runs)."""
    return [{"method": result.method, "seed": result.seed, **r} for r in result.rows]


def columns(rows: Sequence[Mapping]) -> list[str]:
    """The CSV header for ``rows``: :data:`COLUMNS` present in any row, then the others."""
    seen = dict.fromkeys(k for r in rows for k in r)
    known = [c for c in COLUMNS if c in seen]
    return known + [k for k in seen if k not in COLUMNS]


def write_evaluations_csv(path, rows: Sequence[Mapping]) -> Path:
    """Write one line per evaluated design (dataflow as ``os``/``ws``/``is``); returns the path.

    With no rows only the header of a :class:`~dse.result.Recorder` row is written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = columns(rows) or [c for c in COLUMNS if c not in ("method", "seed", "accuracy")]
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=header)
    writer.writeheader()
    for row in rows:
        out = dict(row)
        if "dataflow" in out:
            out["dataflow"] = dataflow_name(out["dataflow"])
        writer.writerow(out)
    return write_atomic(path, text.getvalue())


def _bits(widest, mean) -> str:
    """``"8"`` for a uniform width, ``"5.5/8"`` (mean/widest) for mixed precision."""
    return f"{widest:g}" if abs(mean - widest) < 1e-9 else f"{mean:.1f}/{widest:g}"


def design_label(design) -> str:
    """Short text for a design: ``"64x32 ws 2048 KiB w8a8"``.

    ``design`` is a result row, a hardware dict (``ifmap_sram_kib`` etc. instead of
    ``sram_kib``) or a :class:`~dse.design.Design`. Mixed precision shows the mean and the
    widest width (``w5.5/8``).

    >>> design_label({"rows": 64, "cols": 32, "dataflow": 1, "sram_kib": 2048.0,
    ...               "w_bits": 8, "a_bits": 8})
    '64x32 ws 2048 KiB w8a8'
    >>> design_label({"rows": 8, "cols": 8, "dataflow": "os", "ifmap_sram_kib": 64,
    ...               "filter_sram_kib": 64, "ofmap_sram_kib": 32, "w_bits": 8,
    ...               "mean_w_bits": 5.5, "a_bits": 8})
    '8x8 os 160 KiB w5.5/8a8'
    """
    d = design if isinstance(design, Mapping) else vars(design)
    sram = d.get("sram_kib")
    if sram is None:
        sram = sum(float(d[f"{b}_sram_kib"]) for b in ("ifmap", "filter", "ofmap"))
    w, a = np.asarray(d["w_bits"], dtype=float), np.asarray(d["a_bits"], dtype=float)
    mean_w, mean_a = d.get("mean_w_bits", w.mean()), d.get("mean_a_bits", a.mean())
    size = f"{float(d['rows']):g}x{float(d['cols']):g}"
    bits = f"w{_bits(float(w.max()), float(mean_w))}a{_bits(float(a.max()), float(mean_a))}"
    return f"{size} {dataflow_name(d['dataflow'])} {float(sram):.0f} KiB {bits}"


def _save(fig: Figure, out_dir, stem: str) -> list[Path]:
    """Write ``fig`` as ``out_dir/stem.png`` and ``.svg`` (reproducible SVG ids, no date)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    with matplotlib.rc_context({"svg.hashsalt": stem}):
        for fmt in _FORMATS:
            path = out / f"{stem}.{fmt}"
            metadata = {"Date": None} if fmt == "svg" else {}
            buf = io.BytesIO()
            fig.savefig(buf, format=fmt, dpi=150, metadata=metadata)
            paths.append(write_atomic(path, buf.getvalue()))
    return paths


def _method_rows(results) -> dict[str, list[Mapping]]:
    """Method name -> rows, from a dict of results or of row lists."""
    return {m: list(getattr(v, "rows", v)) for m, v in results.items()}


def _xy(rows: Sequence[Mapping], x: str, y: str) -> tuple[np.ndarray, np.ndarray]:
    return (np.array([float(r[k]) for r in rows], dtype=float) for k in (x, y))


def _plot_method(ax, rows: list[Mapping], x: str, y: str, name: str, color) -> bool:
    """Faint feasible points and the Pareto front as a step line; False when none feasible."""
    feasible = [r for r in rows if r.get("feasible", True)]
    if not feasible:
        return False
    ax.scatter(*_xy(feasible, x, y), s=8, color=color, alpha=0.25, linewidths=0)
    front = pareto_front(feasible, [x, y])
    front.sort(key=lambda r: -float(r[x]) if x in MAXIMIZED else float(r[x]))
    fx, fy = _xy(front, x, y)
    ax.step(fx, fy, where="post", color=color, marker="o", ms=3, lw=1.2, label=name)
    return True


def _annotate(ax, labels: Mapping[str, Mapping], x: str, y: str) -> None:
    """Mark each chosen design and write ``"<name>: <design_label>"`` next to it."""
    for i, (name, row) in enumerate(labels.items()):
        xy = (float(row[x]), float(row[y]))
        ax.plot(*xy, marker="*", ms=10, color="black", ls="none")
        ax.annotate(
            f"{name}: {design_label(row)}",
            xy=xy,
            xytext=(8, 8 + 12 * i),
            textcoords="offset points",
            fontsize=7,
            arrowprops={"arrowstyle": "-", "lw": 0.5},
        )


def plot_fronts(
    out_dir,
    results: Mapping[str, SearchResult | Sequence[Mapping]],
    x: str = "latency_s",
    y: str = "energy_j",
    labels: Mapping[str, Mapping] | None = None,
    stem: str = "pareto",
) -> list[Path]:
    """Feasible designs of each method (faint) and its Pareto front in ``x``-``y`` (steps), with
    the designs in ``labels`` (name -> row) marked; writes ``stem.png`` and ``stem.svg``."""
    fig = Figure(figsize=(7, 5), layout="constrained")
    ax = fig.add_subplot()
    colors = matplotlib.colormaps["tab10"].colors
    drawn = [
        _plot_method(ax, rows, x, y, name, colors[i % len(colors)])
        for i, (name, rows) in enumerate(_method_rows(results).items())
    ]
    _annotate(ax, labels or {}, x, y)
    if any(drawn) or labels:
        ax.set_xscale("linear" if x in MAXIMIZED else "log")
        ax.set_yscale("linear" if y in MAXIMIZED else "log")
    else:
        ax.text(0.5, 0.5, "no feasible designs", ha="center", transform=ax.transAxes)
    if any(drawn):
        ax.legend(fontsize=8)
    ax.set_xlabel(_axis_label(x))
    ax.set_ylabel(_axis_label(y))
    ax.grid(True, which="both", alpha=0.3)
    return _save(fig, out_dir, stem)


def plot_trace(
    out_dir, results: Mapping[str, SearchResult], stem: str = "search_trace"
) -> list[Path]:
    """Best feasible objective so far against wall time, one step line per method; writes
    ``stem.png`` and ``stem.svg``. Before the first feasible design a method draws nothing."""
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    positive = True
    for name, result in results.items():
        t = np.array([s[0] for s in result.trace], dtype=float)
        best = np.array([s[2] for s in result.trace], dtype=float)
        ok = np.isfinite(best)
        if ok.any():
            positive &= bool(np.all(best[ok] > 0))
            label = f"{name} ({result.evaluations} evaluations)"
            ax.step(t[ok], best[ok], where="post", marker=".", ms=3, label=label)
    objectives = sorted({r.objective for r in results.values()})
    if ax.lines:
        ax.set_yscale("log" if positive else "linear")
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no feasible designs", ha="center", transform=ax.transAxes)
    ax.set_xlabel("wall time (s)")
    ax.set_ylabel("best " + " / ".join(_axis_label(OBJECTIVES.get(o, o)) for o in objectives))
    ax.grid(True, which="both", alpha=0.3)
    return _save(fig, out_dir, stem)
