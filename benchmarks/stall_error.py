"""Stall-model error against SCALE-Sim 3.0.0 on the reference rows with a bandwidth limit.

Prints, for each stalling row of setting B (64 KB SRAMs, 16 words/cycle per stream), SCALE-Sim's
cycle count beside both memory models of npu-dse, then the median and worst relative error of
total cycles per setting. Run: ``.venv/bin/python benchmarks/stall_error.py`` (about 20 s).

* ``scalesim``: SCALE-Sim's prefetcher in closed form (hw/scalesim_memory.py): the parity model.
* ``tiled``: the physical model used for design search (hw/memory.py): tiles picked to fit the
  buffers, each operand fetched as often as the loop order needs. It stalls far less than
  SCALE-Sim, whose prefetcher refetches large operands many times (up to 28x K*N).
"""

from __future__ import annotations

import platform

import numpy as np

from hw import cost
from npu_dse.reference import design_for, gemm_workload, load_reference


def _cycles(row, model: str) -> float:
    return float(cost.evaluate(design_for(row, model), gemm_workload(row)).total_cycles[0])


def main() -> None:
    rows = [r for r in load_reference() if r.bw_words is not None]
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}; rows: {len(rows)}")
    print(
        f"{'layer':24s} {'df':2s} {'array':7s} {'scalesim':>9s} {'ours-ss':>9s} {'err':>6s} "
        f"{'ours-tiled':>10s} {'err':>6s}"
    )
    errs: dict[tuple[str, str, bool], list[float]] = {}
    for r in rows:
        sim = r.sim_cycles
        for model in ("scalesim", "tiled"):
            e = _cycles(r, model) / sim - 1
            errs.setdefault((r.setting, model, r.stalls), []).append(abs(e))
        if r.stalls and r.setting.startswith("B_"):
            ss, ti = _cycles(r, "scalesim"), _cycles(r, "tiled")
            print(
                f"{r.layer.name[:24]:24s} {r.dataflow:2s} {r.rows:3d}x{r.cols:<3d} {sim:9d} "
                f"{ss:9.0f} {ss / sim - 1:+6.1%} {ti:10.0f} {ti / sim - 1:+6.1%}"
            )
    print()
    for setting in sorted({k[0] for k in errs}):
        for model in ("scalesim", "tiled"):
            for label, sel in (("stalling rows", [True]), ("all rows", [True, False])):
                e = [x for s in sel for x in errs.get((setting, model, s), [])]
                if e:
                    print(
                        f"{setting:24s} {model:8s} {label:14s} n={len(e):3d} "
                        f"median {np.median(e):6.1%} worst {max(e):6.1%}"
                    )


if __name__ == "__main__":
    main()
