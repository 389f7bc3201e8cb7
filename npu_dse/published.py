"""Published chips' measured figures beside the exact model: Eyeriss on AlexNet.

Eyeriss (Chen, Krishna, Emer and Sze, "Eyeriss: an energy-efficient reconfigurable accelerator
for deep convolutional neural networks", IEEE JSSC 52(1), 2017) runs AlexNet's CONV1-5 at
batch 4 and 200 MHz at 35 frames/s (about 115 ms a batch) and 278 mW, measured on the chip
(DRAM not included). :func:`compare_eyeriss` runs the same layers (``models.zoo.alexnet_conv``)
on the ``eyeriss-like`` preset, the published design (168 PEs as 12 x 14, 200 MHz, 108 KB
global buffer, 16 bits, 520 B of scratchpads per PE) modelled as weight stationary plus its
PE-local level: row stationary maps filter rows and output rows onto the array, which a
workload lowered to GEMMs (``M x K . K x N``) no longer shows (``hw.presets.eyeriss_like``).
The ReLUs are not layers of their own: Eyeriss applies them to the outputs as they leave the
array, where a vector layer's DRAM write, which the per-layer roofline does not overlap with
the conv before it, would add 7.2 ms the chip does not spend.

On-chip power is every energy term but DRAM over the latency.

>>> EYERISS_ALEXNET["power_w"], EYERISS_ALEXNET["batch"]
(0.278, 4)
"""

from __future__ import annotations

from models import zoo
from npu_dse.peers import energy_pj, report_total
from npu_dse.simulate import resolve_design, simulate

EYERISS_ALEXNET = {
    "network": "alexnet_conv",
    "relu": False,
    "batch": 4,
    "latency_s": 0.115,  # 35 frames/s at batch 4 (JSSC 2017)
    "power_w": 0.278,  # chip power on AlexNet CONV1-5 at 200 MHz (JSSC 2017)
}
"""Eyeriss's measured AlexNet CONV1-5 figures (Chen et al., JSSC 2017)."""

_TERMS = ("mac", "array", "rf", "sram", "vector", "leak")  # on chip; DRAM apart


def compare_eyeriss() -> dict:
    """The ``eyeriss-like`` preset on AlexNet CONV1-5 at batch 4 beside Eyeriss's figures:
    latency, on-chip power, their ratios, and the on-chip energy by term (J)."""
    ref = EYERISS_ALEXNET
    wl = zoo.get_network(ref["network"], batch=ref["batch"], relu=ref["relu"])
    rep = simulate(wl, resolve_design(preset="eyeriss-like")).report
    latency = report_total(rep, "latency_s")
    dram_j = report_total(rep, "energy_dram_pj") * 1e-12
    onchip_j = energy_pj(rep) * 1e-12 - dram_j
    power = onchip_j / latency
    return {
        "design": "eyeriss-like",
        "latency_s": latency,
        "published_latency_s": ref["latency_s"],
        "latency_ratio": latency / ref["latency_s"],
        "onchip_power_w": power,
        "published_power_w": ref["power_w"],
        "power_ratio": power / ref["power_w"],
        "onchip_energy_j": onchip_j,
        "dram_energy_j": dram_j,
        "energy_breakdown_j": {t: report_total(rep, f"energy_{t}_pj") * 1e-12 for t in _TERMS},
    }
