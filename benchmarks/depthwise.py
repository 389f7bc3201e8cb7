"""MobileNetV2 224 (batch 1) on ``edge-tpu-like`` with grouped convs as per-group GEMMs and
channel-parallel (``NPUConfig.grouped_lowering``, hw/grouped.py).

Prints, per lowering, the latency with DRAM stalls and without (compute only), the depthwise
layers' share of compute cycles beside their share of MACs, and their utilization (MACs over
PEs x compute cycles). All figures come from the exact model; nothing is timed.
Run: ``.venv/bin/python benchmarks/depthwise.py`` (about 30 s on a 2-core CPU). Expected:
gemm about 11.1 ms (8.5 ms compute only), depthwise 92 % of compute cycles for 7 % of the
MACs; auto about 4.4 ms (1.0 ms compute only), depthwise 17 % of compute cycles.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from hw import presets
from hw.grouped import GROUPED_LOWERINGS
from models.zoo import get_network
from npu_dse import simulate


def figures(workload, lowering: str) -> dict:
    """The benchmark's figures for one lowering (exact model)."""
    config = dataclasses.replace(presets.get_preset("edge-tpu-like"), grouped_lowering=lowering)
    stalled = simulate(workload, config, stall=True).report
    compute_only = simulate(workload, config, stall=False).report
    dw = np.array([kind == "depthwise" for kind in workload.kinds])
    macs = np.asarray(stalled.macs, dtype=float)
    compute = np.asarray(stalled.compute_cycles, dtype=float)
    pes = float(config.rows * config.cols)
    return {
        "latency_ms": 1e3 * float(stalled.total_latency_s),
        "compute_only_ms": 1e3 * float(compute_only.total_latency_s),
        "dw_cycle_share": compute[dw].sum() / compute.sum(),
        "dw_mac_share": macs[dw].sum() / macs.sum(),
        "dw_utilization": macs[dw].sum() / (pes * compute[dw].sum()),
        "channel_parallel_layers": int(np.asarray(stalled.channel_parallel).sum()),
        "depthwise_layers": int(dw.sum()),
    }


def main() -> None:
    workload = get_network("mobilenet_v2", batch=1, image=224)
    print("MobileNetV2 224, batch 1, on edge-tpu-like (64x64 ws, 480 MHz, 4 GB/s DRAM)")
    print(
        f"{'lowering':9s} {'latency':>9s} {'compute':>9s} {'dw cycles':>10s} {'dw MACs':>8s} "
        f"{'dw util':>8s} {'channel-parallel':>17s}"
    )
    for lowering in reversed(GROUPED_LOWERINGS):  # gemm (before), then auto (after)
        f = figures(workload, lowering)
        print(
            f"{lowering:9s} {f['latency_ms']:7.2f}ms {f['compute_only_ms']:7.2f}ms "
            f"{f['dw_cycle_share']:10.1%} {f['dw_mac_share']:8.1%} {f['dw_utilization']:8.2%} "
            f"{f['channel_parallel_layers']:>8d} of {f['depthwise_layers']} dw"
        )


if __name__ == "__main__":
    main()
