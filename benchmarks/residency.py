"""MobileNetV2 224 (batch 1) on ``edge-tpu-like``: what stays on chip (hw/residency.py).

Prints, with cross-layer residency off (the per-layer model) and on (``NPUConfig.cross_layer``),
a single cold inference and the steady state of a stream (weights kept on chip when they
fit): latency, its ratio to the Coral Edge TPU's published 2.4 ms (coral.ai benchmarks:
2.3-2.5 ms), DRAM bytes by kind; then the depthwise layers' share of cycles beside their share
of MACs and the utilization of depthwise and other GEMM layers. All figures come from the exact
model; nothing is timed.
Run: ``.venv/bin/python benchmarks/residency.py`` (about 1 min on a 2-core CPU). Expected:
off cold 4.45 ms, off steady 3.80 ms; on cold 1.64 ms, on steady 1.14 ms (0.47x of 2.4 ms);
17.08 MB of DRAM traffic per cold inference off, 0.58 MB in the steady state on; depthwise
12.5 % of the cycles for 6.9 % of the MACs.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from hw import presets
from models.zoo import get_network
from npu_dse import simulate

PUBLISHED_S = 2.4e-3  # Coral Edge TPU, MobileNetV2 224 (coral.ai benchmarks: 2.3-2.5 ms)
KINDS = ("ifmap_read", "filter_read", "ofmap_write", "ofmap_read")


def _row(label: str, rep) -> str:
    mb = [float(np.asarray(getattr(rep, f"dram_{k}_bytes")).sum()) / 1e6 for k in KINDS]
    lat = float(rep.total_latency_s)
    return (
        f"{label:22s} {1e3 * lat:7.3f} ms {lat / PUBLISHED_S:6.2f}x "
        + " ".join(f"{x:9.3f}" for x in mb)
        + f" {sum(mb):9.3f}   {int(np.asarray(rep.output_resident).sum()):3d}"
    )


def _depthwise(workload, rep, pes: float) -> str:
    dw = np.array([kind == "depthwise" for kind in workload.kinds])
    gemm = np.asarray(workload.gemm_count) > 0
    macs = np.asarray(rep.macs, dtype=float)
    total = np.asarray(rep.total_cycles, dtype=float)
    compute = np.asarray(rep.compute_cycles, dtype=float)
    util_dw = macs[dw].sum() / (pes * total[dw].sum())
    rest = gemm & ~dw
    util_rest = macs[rest].sum() / (pes * total[rest].sum())
    return (
        f"depthwise: {macs[dw].sum() / macs.sum():.1%} of MACs, "
        f"{total[dw].sum() / total.sum():.1%} of cycles ({compute[dw].sum() / compute.sum():.1%} "
        f"of compute cycles); utilization {util_dw:.2%} against {util_rest:.2%} for the other "
        f"GEMM layers ({util_rest / util_dw:.1f}x)"
    )


def main() -> None:
    workload = get_network("mobilenet_v2", batch=1, image=224)
    base = presets.get_preset("edge-tpu-like")
    print("MobileNetV2 224, batch 1, on edge-tpu-like (64x64 ws, 480 MHz, 8 MiB unified SRAM,")
    print(f"4 GB/s DRAM); published Coral Edge TPU {1e3 * PUBLISHED_S:.1f} ms. DRAM in MB.")
    print(
        f"{'residency / inference':22s} {'latency':>10s} {'ratio':>7s} "
        + " ".join(f"{k:>9s}" for k in KINDS)
        + f" {'total':>9s}   {'kept':>3s}"
    )
    steady_on = None
    for cross_layer in (False, True):
        config = dataclasses.replace(base, cross_layer=cross_layer)
        sim = simulate(workload, config, steady_state=True)
        label = "on " if cross_layer else "off"
        print(_row(f"{label} cold", sim.report))
        print(_row(f"{label} steady state", sim.steady))
        steady_on = sim.steady
    print(_depthwise(workload, steady_on, float(base.rows * base.cols)) + " (on, steady state)")


if __name__ == "__main__":
    main()
