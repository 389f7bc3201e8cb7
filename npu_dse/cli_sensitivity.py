"""``npu-dse sensitivity``: d log(latency, energy, power, area, EDP) / d log(parameter) of one
workload on one design, per hardware value and per layer width, with each layer's bottleneck."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from npu_dse import workloads as topology
from npu_dse.rundir import write_atomic
from npu_dse.sensitivity import (
    DEFAULT_TEMPERATURE,
    TEMPERATURE_RANGE,
    format_sensitivity,
    plot_tornado,
    sensitivity,
)

DESCRIPTION = (
    "How the design's latency, energy, power, area and EDP answer to each hardware value and "
    "each layer's weight and activation widths: d log metric / d log parameter by the gradient "
    "of the smooth model (what the gradient search follows), beside the exact model's change "
    "over one allowed step (x2 for hardware, +1 bit for a width), and each layer's bottleneck "
    "(compute, dram, vector or host). The design flags are simulate's. Example: npu-dse "
    "sensitivity resnet18.csv --preset edge-tpu-like --out runs/sens"
)


def add_sensitivity_args(p: argparse.ArgumentParser, add_design_args) -> None:
    p.add_argument(
        "topology",
        metavar="WORKLOAD",
        help="the workload as simulate reads it (SCALE-Sim .csv, npu-dse .json, ONNX .onnx)",
    )
    p.add_argument("--gemm", action="store_true", help="WORKLOAD is SCALE-Sim's Layer, M, N, K")
    p.add_argument("--batch", type=int, metavar="N", help="value of symbolic ONNX dimensions")
    add_design_args(p)
    lo, hi = TEMPERATURE_RANGE
    p.add_argument(
        "--temperature",
        type=float,
        default=DEFAULT_TEMPERATURE,
        metavar="T",
        help=f"the smooth model's relative temperature, {lo:g}-{hi:g} (default "
        f"{DEFAULT_TEMPERATURE:g}, where the gradient search ends)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.add_argument(
        "--out",
        metavar="DIR",
        help="also write DIR/sensitivity.json and tornado charts of EDP and latency (PNG, SVG)",
    )


def run_sensitivity(args: argparse.Namespace, design_from_args, design_label) -> int:
    design = design_from_args(args)
    workload, _ = topology.load_workload(args.topology, gemm=args.gemm, batch=args.batch)
    s = sensitivity(workload, design, temperature=args.temperature, base=design_label(args))
    result = s.to_dict()
    result["workload"] = {"path": str(args.topology), "gemm_format": args.gemm}
    text = json.dumps(result, indent=2, allow_nan=False)
    if args.out is not None:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        write_atomic(out / "sensitivity.json", text + "\n")
        for metric in ("edp_js", "latency_s"):
            plot_tornado(s, out, metric)
    print(text if args.json else format_sensitivity(s, Path(args.topology).name))
    if args.out is not None and not args.json:
        print(f"wrote {Path(args.out) / 'sensitivity.json'} and tornado charts")
    return 0
