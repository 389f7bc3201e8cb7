"""Figures of ONNX import and suite search, against ZigZag and against single-network searches.

1. ZigZag's shape-only ``resnet18.onnx`` (``../shared/reference/onnx/``): MACs and GEMM count
   against ``models.zoo`` ResNet-18, and the DRAM traffic of its Conv/Gemm layers on the npu-dse
   design closest to ZigZag's ``edge_tpu_like`` (``../shared/reference/zigzag/README.md``)
   against ZigZag's 16.08 MB.
2. One chip for ResNet-18 plus a BERT-base layer under per-network latency budgets (the space
   and budgets of ``tests/test_suite.py``): the suite's exhaustive winner, and each
   single-network winner evaluated on the suite (its hardware with the suite's mapping).

Command: ``.venv/bin/python benchmarks/onnx_suite_figures.py``; a few minutes on a 2-core CPU
(the suite part runs three exhaustive searches over four arrays). Expected: 1,814,073,344 MACs
in 21 GEMMs, traffic within 5 % of 16.08 MB; a suite winner that meets both budgets and whose
suite objective is at most that of every single-network winner that meets both.
"""

from __future__ import annotations

import numpy as np

import dse
from dse import Budgets, Problem, SearchBudget, Space
from dse.suite import make_suite
from hw import evaluate, layers
from models import get_network
from npu_dse import resolve_design
from npu_dse.onnx_import import import_onnx
from npu_dse.reference import reference_path

ZIGZAG_TRAFFIC_BYTES = 16.08e6  # ZigZag on edge_tpu_like, Conv/Gemm only (reference README)
HW_KEYS = ("rows", "cols", "dataflow", "sram_kib", "dram_bw_gbps")
SUITE_SPACE = {
    "base": "edge-tpu-like",
    "rows": [64, 128],
    "cols": [64, 128],
    "w_bits": [8],
    "a_bits": [8],
    "per_layer_bits": False,
}
LIMITS_S = {"resnet18": 4.6e-3, "bert": 2.75e-3}


def resnet18_figures() -> None:
    path = reference_path().parent / "onnx" / "resnet18.onnx"
    imported = import_onnx(path)
    gemms = [lay for lay in imported.layers if lay.gemm_count]
    macs = sum(lay.macs for lay in imported.layers)
    print(f"resnet18.onnx: {macs:,} MACs in {len(gemms)} GEMMs ({len(imported.layers)} layers)")
    print(f"models.zoo resnet18: {int(np.sum(get_network('resnet18').macs)):,} MACs")
    overrides = dict(rows=32, cols=32, clock_mhz=1000, dram_bw_gbps=8.0, w_bits=8, a_bits=8)
    overrides |= dict(ifmap_sram_kib=1024, filter_sram_kib=32, ofmap_sram_kib=1024, acc_bits=16)
    design = resolve_design(preset="edge-tpu-like", overrides=overrides | {"dataflow": "ws"})
    rep = evaluate(design.config, layers.workload(gemms))
    parts = ("ifmap_read", "filter_read", "ofmap_write", "ofmap_read")
    moved = {p: float(np.sum(np.asarray(getattr(rep, f"dram_{p}_bytes")))) for p in parts}
    total = sum(moved.values())
    print(
        f"DRAM traffic {total / 1e6:.3f} MB vs ZigZag {ZIGZAG_TRAFFIC_BYTES / 1e6:.2f} MB "
        f"({100 * (total / ZIGZAG_TRAFFIC_BYTES - 1):+.2f} %); "
        + ", ".join(f"{p} {v / 1e6:.3f} MB" for p, v in moved.items())
    )


def _hardware(row) -> tuple:
    return tuple(float(row[k]) for k in HW_KEYS)


def suite_figures() -> None:
    space = Space.from_dict(SUITE_SPACE)
    nets = {"resnet18": get_network("resnet18"), "bert": get_network("bert_base_layer")}
    suite, wl = make_suite(space, nets, None, "edp")
    budgets = Budgets(network_latency_s=tuple(LIMITS_S.items()))
    whole = dse.search(
        Problem(space, wl, "edp", budgets, suite=suite), "exhaustive", SearchBudget(100)
    )
    rows = {_hardware(r): r for r in whole.rows}
    best = whole.best_metrics
    print(f"suite (equal weights, EDP normalized by the base design), limits {LIMITS_S} s:")
    print(
        f"  suite winner {int(whole.best.rows)}x{int(whole.best.cols)}: objective "
        f"{best['suite_objective']:.5f}, resnet18 {best['latency_s@resnet18'] * 1e3:.3f} ms, "
        f"bert {best['latency_s@bert'] * 1e3:.3f} ms"
    )
    for name, net in nets.items():
        alone = Problem(space, net, "edp", Budgets(max_latency_s=LIMITS_S[name]))
        single = dse.search(alone, "exhaustive", SearchBudget(100)).best
        row = rows[_hardware({k: np.asarray(getattr(single, k)) for k in HW_KEYS})]
        print(
            f"  {name} alone picks {int(single.rows)}x{int(single.cols)}: on the suite "
            f"objective {row['suite_objective']:.5f}, resnet18 "
            f"{row['latency_s@resnet18'] * 1e3:.3f} ms, bert {row['latency_s@bert'] * 1e3:.3f} "
            f"ms, meets both budgets: {bool(row['feasible'])}"
        )


def main() -> None:
    resnet18_figures()
    suite_figures()


if __name__ == "__main__":
    main()
