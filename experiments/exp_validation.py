"""Validation: compute and stall cycles against SCALE-Sim 3.0.0, peak TOPS against datasheets.

Produces, under ``--out``:

* ``compute_parity.csv``: every reference row (``shared/reference/scalesim_v3_public.csv``),
  our compute cycles (``hw.cost.evaluate(..., stall=False)``, the ``tiled`` design of
  ``experiments.reference.design_for``) beside SCALE-Sim's (``total - stall`` cycles);
* ``compute_error.csv``: per setting and dataflow, rows and max / median absolute relative
  error (expected: exactly 0, the array model reproduces SCALE-Sim's folds cycle for cycle);
* ``stall_error.csv`` and ``stall_rows.csv``: total cycles with a bandwidth limit on the
  setting-B rows (64 KB SRAMs, 16 words per cycle per stream), for both memory models
  (``scalesim``: the simulator's prefetcher in closed form; ``tiled``: the search's physical
  model), median and worst error on the stalling rows and on all B rows (the logic of
  ``benchmarks/stall_error.py``);
* ``datasheet.csv``: the presets' peak TOPS against their datasheets (TPU v1 92 TOPS, Jouppi
  et al. ISCA 2017; Coral Edge TPU 4 TOPS; A100 312 TFLOPS fp16 and 624 TOPS int8 dense,
  NVIDIA A100 whitepaper 2020);
* ``compute_parity.png/svg`` (log-log, y = x) and ``stall_parity.png/svg``;
* ``peers.csv``: ZigZag 3.9.1's five accelerators on ResNet-18 (energy, latency, DRAM bytes)
  and Timeloop's three example designs on its default layer (DRAM bytes, energy, cycles), each
  translated by ``npu_dse.peers`` or ``npu_dse.peers_timeloop`` and costed with the peer's
  per-access energies, beside the peer's figure; ``zigzag_<accelerator>.json``, the
  translated design files (``--design``);
* ``eyeriss.csv``: the ``eyeriss-like`` preset on AlexNet CONV1-5 at batch 4 beside the Eyeriss
  chip's measured 278 mW and 115 ms (Chen et al., JSSC 2017; ``npu_dse.published``), with the
  on-chip energy by term;
* ``ratios.csv`` and ``ratios.png/svg``: every reference (SCALE-Sim, ZigZag, Timeloop, the
  datasheets, Eyeriss) as the ratio npu-dse / reference, with the target band of each (Eyeriss:
  within 1.5x in power and 1.3x in latency, written as the low side of those bands, 1/3 and
  0.23).

Without the reference data the script runs the datasheet and Eyeriss parts only and says so in
the headline (``reference``, ``zigzag``, ``timeloop``: ``"skipped: ..."``).

Command: ``.venv/bin/python experiments/exp_validation.py --out runs/exp_validation [--quick]``
(``--quick`` replays every fourth reference row).

Run time on the 2-core CPU: 13 s in full (289 compute rows, 95 B rows x 2 memory models),
13 s with ``--quick`` (73 and 24 rows; compiling dominates), before the Eyeriss part, which adds
about 8 s of CPU (compiling AlexNet's layers; 37 s of CPU in all with ``--quick`` on a shared
machine).

Expected headline (both modes), npu-dse / ZigZag: energy 1.06, 1.05, 0.92, 0.93, 1.08 and
latency 1.07, 0.83, 1.01, 1.07, 1.14 (edge_tpu_like, tpu_like, ascend_like, tesla_npu_like,
meta_prototype), DRAM bytes 1.04 and 1.02 on edge_tpu_like and tpu_like; npu-dse / Timeloop
DRAM bytes 1.00, 0.97, 0.97 and energy 0.62, 0.79, 1.03 (simple_weight_stationary,
simple_output_stationary, eyeriss_like); npu-dse / Eyeriss on AlexNet CONV1-5: on-chip power
0.81 (224 mW), latency 0.75 (86.7 ms, outside its band: row stationary is not modelled).

Expected headline (full): compute cycles max relative error 0.0 on all 289 rows (settings A, B
and C, os/ws/is): the array model reproduces SCALE-Sim's folds cycle for cycle. Total cycles
with stalls on the 95 B rows, median / worst absolute error: ``scalesim`` model 6.9 % / 43 % on
the 18 stalling rows (0.0 % median over all 95), ``tiled`` model 74 % / 96 % on the stalling
rows (it fetches each operand as its loop order needs and stalls far less than SCALE-Sim's
refetching prefetcher). Peak TOPS: TPU v1 91.75 vs 92 (-0.3 %), Edge TPU 3.93 vs 4 (-1.7 %, the
assumed 480 MHz clock), A100 311.9 / 623.7 vs 312 / 624 (-0.04 %).
"""

from __future__ import annotations

import dataclasses
import json
import sys

import numpy as np
from tqdm import tqdm

from experiments.common import Run, new_figure, parse_args
from hw import cost, get_gpu_preset, get_preset, layers
from hw.x64 import x64
from npu_dse import peers, peers_timeloop, published
from npu_dse.designs import design_to_dict
from npu_dse.reference import design_for, gemm_workload, load_reference, reference_path
from npu_dse.rundir import write_atomic

MEMORY_MODELS = ("scalesim", "tiled")

# (design, precision, datasheet peak in TOPS, source)
DATASHEETS = (
    ("tpu-v1-like", "int8", 92.0, "Jouppi et al., ISCA 2017: 92 TOPS"),
    ("edge-tpu-like", "int8", 4.0, "Coral Edge TPU datasheet: 4 TOPS int8"),
    ("datacenter-gpu-like", "fp16", 312.0, "NVIDIA A100 whitepaper 2020: 312 TFLOPS dense fp16"),
    ("datacenter-gpu-like", "int8", 624.0, "NVIDIA A100 whitepaper 2020: 624 TOPS dense int8"),
)


def _one_layer(wl):
    """The workload with a fixed layer name: names are static, so this avoids recompiling."""
    return dataclasses.replace(wl, names=("layer",))


def compute_parity(rows) -> list[dict]:
    """Our compute cycles (no stalls) beside SCALE-Sim's ``total - stall`` cycles, per row."""
    out = []
    for r in tqdm(rows, desc="compute parity", unit="row", file=sys.stderr, leave=False):
        rep = cost.evaluate(
            design_for(r, "tiled"), _one_layer(layers.workload([r.layer])), stall=False
        )
        sim = r.sim_cycles - int(r.sim["sim_stall_cycles"])
        ours = int(rep.compute_cycles[0])
        out.append(
            {
                "setting": r.setting,
                "layer": r.layer.name,
                "dataflow": r.dataflow,
                "array_rows": r.rows,
                "array_cols": r.cols,
                "scalesim_compute_cycles": sim,
                "ours_compute_cycles": ours,
                "rel_error": ours / sim - 1.0,
            }
        )
    return out


def error_table(parity: list[dict]) -> list[dict]:
    """Max and median absolute relative error per (setting, dataflow), and over all rows."""
    groups: dict[tuple[str, str], list[float]] = {}
    for p in parity:
        err = abs(p["rel_error"])
        groups.setdefault((p["setting"], p["dataflow"]), []).append(err)
        groups.setdefault(("all", "all"), []).append(err)
    return [
        {
            "setting": s,
            "dataflow": df,
            "rows": len(e),
            "max_abs_rel_error": float(np.max(e)),
            "median_abs_rel_error": float(np.median(e)),
        }
        for (s, df), e in sorted(groups.items())
    ]


def stall_cycles(row, model: str) -> float:
    """Total cycles of a bandwidth-limited row under one memory model (as
    ``benchmarks/stall_error.py``: the im2col GEMM, the row's per-stream bandwidth)."""
    wl = _one_layer(gemm_workload(row))
    return float(cost.evaluate(design_for(row, model), wl).total_cycles[0])


def stall_rows(rows) -> list[dict]:
    """SCALE-Sim's total cycles beside both memory models' on the setting-B rows."""
    b_rows = [r for r in rows if r.setting.startswith("B_")]
    out = []
    for r in tqdm(b_rows, desc="stall error", unit="row", file=sys.stderr, leave=False):
        rec = {
            "layer": r.layer.name,
            "dataflow": r.dataflow,
            "array_rows": r.rows,
            "array_cols": r.cols,
            "stalls": bool(r.stalls),
            "scalesim_total_cycles": r.sim_cycles,
        }
        for model in MEMORY_MODELS:
            ours = stall_cycles(r, model)
            rec[f"{model}_total_cycles"] = ours
            rec[f"{model}_rel_error"] = ours / r.sim_cycles - 1.0
        out.append(rec)
    return out


def stall_summary(rows: list[dict]) -> list[dict]:
    """Median and worst absolute relative error per memory model, stalling rows and all rows."""
    out = []
    for model in MEMORY_MODELS:
        for label, sel in (("stalling", lambda r: r["stalls"]), ("all", lambda r: True)):
            e = np.abs([r[f"{model}_rel_error"] for r in rows if sel(r)])
            if len(e):
                out.append(
                    {
                        "memory_model": model,
                        "rows": label,
                        "n": len(e),
                        "median_abs_rel_error": float(np.median(e)),
                        "max_abs_rel_error": float(np.max(e)),
                    }
                )
    return out


def datasheet_table() -> list[dict]:
    """Each preset's modelled peak TOPS beside its datasheet figure."""
    out = []
    for name, precision, sheet, source in DATASHEETS:
        if name.endswith("gpu-like"):
            cfg = dataclasses.replace(get_gpu_preset(name), precision=precision)
        else:
            cfg = get_preset(name)
        peak = float(cfg.peak_ops_per_s) / 1e12
        out.append(
            {
                "design": name,
                "precision": precision,
                "model_peak_tops": peak,
                "datasheet_peak_tops": sheet,
                "rel_error": peak / sheet - 1.0,
                "source": source,
            }
        )
    return out


def _parity_plot(x, y, groups, title: str, ylabel: str):
    fig, ax = new_figure(5.6, 5.0)
    for g in sorted(set(groups)):
        sel = [i for i, gi in enumerate(groups) if gi == g]
        ax.scatter(np.take(x, sel), np.take(y, sel), s=14, alpha=0.7, label=g)
    lo, hi = min(np.min(x), np.min(y)), max(np.max(x), np.max(y))
    ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="y = x")
    ax.set(xscale="log", yscale="log", xlabel="SCALE-Sim 3.0.0 cycles", ylabel=ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def zigzag_rows(run: Run) -> list[dict]:
    """ZigZag's accelerators beside npu-dse's translation; writes each translated design."""
    wl = peers.zigzag_workload()
    out = []
    for name in tqdm(peers.ZIGZAG_ACCELERATORS, desc="ZigZag", file=sys.stderr, leave=False):
        out.append(peers.compare_zigzag(name, wl))
        spec = design_to_dict(peers.zigzag_design(name).config)
        text = json.dumps(spec, indent=2) + "\n"
        run.files.append(write_atomic(run.out / f"zigzag_{name}.json", text))
    return out


ZIGZAG_DRAM_BYTES = {"edge_tpu_like": 16.08e6, "tpu_like": 16_083_368}
"""ZigZag's DRAM traffic on ResNet-18: edge_tpu_like from the reference README, tpu_like from
ZigZag 3.9.1 rerun (tests/test_validation_zigzag.py)."""

# (peer row key, metric, ours, theirs, target band as the largest |ratio - 1|)
_ZIGZAG_METRICS = (
    ("energy", "energy_pj", "zigzag_energy_pj", 0.10),
    ("latency", "latency_cycles", "zigzag_latency_cycles", 0.15),
)
_TIMELOOP_METRICS = (
    ("dram_bytes", "dram_bytes", "timeloop_dram_bytes", 0.05),
    ("energy", "energy_pj", "timeloop_energy_pj", 0.25),
    ("cycles", "cycles", "timeloop_cycles", None),
)


_EYERISS_METRICS = (
    ("onchip_power", "onchip_power_w", "published_power_w", 1.0 - 1.0 / 1.5),
    ("latency", "latency_s", "published_latency_s", 1.0 - 1.0 / 1.3),
)


def eyeriss_row() -> dict:
    """``npu_dse.published.compare_eyeriss`` as one flat CSV row (energies in J)."""
    r = published.compare_eyeriss()
    parts = {f"onchip_{k}_j": v for k, v in r.pop("energy_breakdown_j").items()}
    return r | parts


def ratio_table(zigzag, timeloop, errors, stalls, sheets, eyeriss=()) -> list[dict]:
    """Every reference as npu-dse / reference, one row per (reference, case, metric)."""

    def row(ref, case, metric, ours, theirs, band):
        within = "" if band is None else abs(ours / theirs - 1.0) <= band
        return {
            "reference": ref,
            "case": case,
            "metric": metric,
            "npu_dse": ours,
            "reference_value": theirs,
            "ratio": ours / theirs,
            "target_abs_rel_error": "" if band is None else band,
            "within_target": within,
        }

    out = []
    for r in zigzag:
        for metric, ours, theirs, band in _ZIGZAG_METRICS:
            out.append(row("ZigZag 3.9.1", r["accelerator"], metric, r[ours], r[theirs], band))
        if r["accelerator"] in ZIGZAG_DRAM_BYTES:
            ref = ZIGZAG_DRAM_BYTES[r["accelerator"]]
            out.append(
                row("ZigZag 3.9.1", r["accelerator"], "dram_bytes", r["dram_bytes"], ref, 0.05)
            )
    for r in timeloop:
        for metric, ours, theirs, band in _TIMELOOP_METRICS:
            band = band if metric != "energy" or r["design"] == "eyeriss_like" else None
            out.append(row("Timeloop", r["design"], metric, r[ours], r[theirs], band))
    for e in errors:
        if e["setting"] == "all":
            worst = 1.0 + e["max_abs_rel_error"]
            out.append(
                row("SCALE-Sim 3.0.0", f"{e['rows']} rows", "compute_cycles_worst", worst, 1.0, 0.0)
            )
    for s in stalls:
        if s["rows"] == "stalling":
            med = 1.0 + s["median_abs_rel_error"]
            case = f"{s['n']} stalling rows, {s['memory_model']}"
            out.append(
                row("SCALE-Sim 3.0.0", case, "total_cycles_1_plus_median_abs_error", med, 1.0, None)
            )
    for r in eyeriss:
        for metric, ours, theirs, band in _EYERISS_METRICS:
            case = "eyeriss-like, AlexNet CONV1-5 batch 4"
            out.append(row("Eyeriss (JSSC 2017)", case, metric, r[ours], r[theirs], band))
    for s in sheets:
        case = f"{s['design']} {s['precision']}"
        out.append(
            row(
                "datasheet", case, "peak_tops", s["model_peak_tops"], s["datasheet_peak_tops"], 0.02
            )
        )
    return out


def _ratio_plot(rows: list[dict]):
    fig, ax = new_figure(7.0, 0.22 * len(rows) + 1.2)
    y = np.arange(len(rows))[::-1]
    colors = {"ZigZag 3.9.1": "C0", "Timeloop": "C1", "SCALE-Sim 3.0.0": "C2", "datasheet": "C3"}
    colors["Eyeriss (JSSC 2017)"] = "C4"
    for yi, r in zip(y, rows, strict=True):
        band = r["target_abs_rel_error"]
        if band != "":
            ax.plot([1 - band, 1 + band], [yi, yi], color="0.8", lw=5, solid_capstyle="butt")
        ax.scatter([r["ratio"]], [yi], color=colors[r["reference"]], s=18, zorder=3)
    ax.axvline(1.0, color="k", lw=0.8, ls="--")
    ax.set_yticks(y, [f"{r['reference']}: {r['case']} {r['metric']}" for r in rows], fontsize=6)
    ax.set(xscale="log", xlabel="npu-dse / reference (grey: target band)")
    ax.set_title("Validation: every reference as a ratio")
    fig.tight_layout()
    return fig


def _peer_headline(zigzag, timeloop) -> dict:
    out = {}
    if zigzag:
        out["zigzag_energy_ratio"] = {r["accelerator"]: r["energy_ratio"] for r in zigzag}
        out["zigzag_latency_ratio"] = {r["accelerator"]: r["latency_ratio"] for r in zigzag}
    if timeloop:
        out["timeloop_dram_ratio"] = {r["design"]: r["dram_ratio"] for r in timeloop}
        out["timeloop_energy_ratio"] = {r["design"]: r["energy_ratio"] for r in timeloop}
    return out


@x64
def main(argv=None) -> dict:
    args = parse_args(__doc__, argv)
    run = Run("exp_validation", args, argv)
    sheets = datasheet_table()
    run.csv("datasheet", sheets)
    headline = {
        "datasheet_peak_rel_error": {
            f"{s['design']}_{s['precision']}": s["rel_error"] for s in sheets
        },
        "datasheet_max_abs_rel_error": max(abs(s["rel_error"]) for s in sheets),
    }
    eyeriss = [eyeriss_row()]
    run.csv("eyeriss", eyeriss)
    headline["eyeriss_power_ratio"] = eyeriss[0]["power_ratio"]
    headline["eyeriss_latency_ratio"] = eyeriss[0]["latency_ratio"]
    zz_ok, zz_why = peers.zigzag_available()
    tl_ok, tl_why = peers_timeloop.timeloop_available()
    zigzag = zigzag_rows(run) if zz_ok else []
    tl_names = peers_timeloop.TIMELOOP_DESIGNS if tl_ok else ()
    timeloop = [peers_timeloop.compare_timeloop(n) for n in tl_names]
    if zigzag or timeloop:
        run.csv(
            "peers",
            [{"reference": "ZigZag 3.9.1", **r} for r in zigzag]
            + [{"reference": "Timeloop", **r} for r in timeloop],
        )
    headline |= {"zigzag": "compared" if zz_ok else f"skipped: {zz_why}"}
    headline |= {"timeloop": "compared" if tl_ok else f"skipped: {tl_why}"}
    headline |= _peer_headline(zigzag, timeloop)
    path = reference_path()
    errors, summary = [], []
    if not path.exists():
        headline["reference"] = f"skipped: SCALE-Sim reference data not found at {path}"
        return _finish_ratios(run, headline, zigzag, timeloop, errors, summary, sheets, eyeriss)
    rows = load_reference(path)
    if args.quick:
        rows = rows[::4]
    parity = compute_parity(rows)
    run.csv("compute_parity", parity)
    errors = error_table(parity)
    run.csv("compute_error", errors)
    run.figure(
        "compute_parity",
        _parity_plot(
            [p["scalesim_compute_cycles"] for p in parity],
            [p["ours_compute_cycles"] for p in parity],
            [f"{p['setting'][0]} {p['dataflow']}" for p in parity],
            "Compute cycles (no stalls)",
            "npu-dse compute cycles",
        ),
    )
    stalls = stall_rows(rows)
    run.csv("stall_rows", stalls)
    summary = stall_summary(stalls)
    run.csv("stall_error", summary)
    fig = _parity_plot(
        [r["scalesim_total_cycles"] for r in stalls] * 2,
        [r[f"{m}_total_cycles"] for m in MEMORY_MODELS for r in stalls],
        [f"{m} memory model" for m in MEMORY_MODELS for _ in stalls],
        "Total cycles with stalls (setting B: 64 KB, 16 words/cycle)",
        "npu-dse total cycles",
    )
    run.figure("stall_parity", fig)
    overall = next(e for e in errors if e["setting"] == "all")
    headline |= {
        "reference": str(path),
        "reference_rows": overall["rows"],
        "compute_cycles_max_abs_rel_error": overall["max_abs_rel_error"],
        "stall_error": {
            f"{s['memory_model']}_{s['rows']}": {
                "n": s["n"],
                "median": s["median_abs_rel_error"],
                "max": s["max_abs_rel_error"],
            }
            for s in summary
        },
    }
    return _finish_ratios(run, headline, zigzag, timeloop, errors, summary, sheets, eyeriss)


def _finish_ratios(run, headline, zigzag, timeloop, errors, summary, sheets, eyeriss) -> dict:
    ratios = ratio_table(zigzag, timeloop, errors, summary, sheets, eyeriss)
    run.csv("ratios", ratios)
    run.figure("ratios", _ratio_plot(ratios))
    return run.finish(headline)


if __name__ == "__main__":
    main()
