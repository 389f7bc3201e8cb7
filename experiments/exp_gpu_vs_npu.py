"""GPU-like vs NPU-like designs: latency, energy, TOPS/W and where the energy goes.

Networks: the trained digits CNN and transformer (``trained_model``; the quick ones with
``--quick``) and, for scale, ResNet-18 and a BERT-base layer (sequence 128) from
``models.zoo``, all at batch 1. Designs:

* GPU (``hw.gpu``): ``edge-gpu-like`` (Jetson Orin Nano class) and ``datacenter-gpu-like``
  (A100 class), each at fp16 and int8;
* NPU (``hw.cost``): ``edge-tpu-like`` (int8, and w4/a4 for the precision study) and
  ``tpu-v1-like`` (int8);
* matched NPUs, int8, on the GPU's memory system: the same process node, DRAM bandwidth and
  DRAM energy per bit as the GPU they are matched to.
  ``npu-peak-matched-edge``: ``edge-tpu-like`` with a 128 x 64 array at the edge GPU's 625 MHz,
  2 * 8192 * 625 MHz = 10.24 TOPS, the edge GPU's int8 peak.
  ``npu-peak-matched-datacenter``: ``tpu-v1-like`` with a 384 x 576 array at 1410 MHz,
  623.7 TOPS, the A100-class int8 peak, and a weight buffer four array tiles deep as on
  TPU v1 (4 x 384 x 576 bytes = 864 KiB; the preset's 256 KiB cannot hold one fold).
  ``npu-power-matched-edge``: ``edge-tpu-like`` (its own 480 MHz clock) with the square array
  whose full-load power (an 8192^3 int8 GEMM) is closest to the edge GPU's at int8.
  Vector lanes follow the array's columns (one per column, as the presets).

Produces, under ``--out``: ``results.csv`` (per network, design and precision: latency_s,
energy_j, power_w, tops_per_w = 2 MACs / energy, tops_per_w_dynamic (static power left out),
peak_tops, the data-movement and arithmetic shares of dynamic energy, the energy breakdown
in J, all_layers_fit), ``designs.csv`` (the designs, with
their full-load power), ``layers.csv`` (per GEMM layer: arithmetic intensity against the
design's ridge point and the energy gain of the lower precision), ``tops_per_w.png/svg``
(log bars) and ``energy_breakdown.png/svg`` (stacked shares).

Arithmetic intensity of a layer = 2 MACs / its DRAM bytes on the design at the higher
precision; the ridge point = peak ops/s / DRAM bytes/s. A layer below the ridge is
memory-bound. Gains: GPU fp16 -> int8 energy per layer, NPU 8-bit -> 4-bit.

Command: ``.venv/bin/python experiments/exp_gpu_vs_npu.py --out runs/exp_gpu_vs_npu [--quick]``

Run time on the 2-core CPU: 21 s in full with the trained models cached (the first run
trains the full CNN and transformer, about 65 s more); 22 s with ``--quick`` (the two quick
models only, no zoo networks; about 26 s more the first time, training them).

Expected headline (full), int8 effective TOPS/W, NPU / GPU, for CNN, transformer, ResNet-18,
BERT layer: ``edge`` (edge-tpu-like / edge GPU) 16.6, 78.7, 1.68, 1.40; ``datacenter``
(tpu-v1-like / A100-class) 112, 213, 4.0, 2.0; ``peak_matched_edge`` 18.0, 87.1, 1.99, 1.64;
``peak_matched_datacenter`` 746, 2082, 21.8, 12.2; ``power_matched_edge`` (176 x 176 array,
8.7 W at full load against the GPU's 8.9 W) 18.0, 82.2, 2.04, 1.67. The >= 10x claim holds
for the tiny digits models (kernel launches and the GPU's static power dominate their
microsecond inferences) and for the peak-matched datacenter NPU (7 nm, HBM), and fails for
ResNet-18 and BERT on the other four pairs. On dynamic energy alone (static power and leakage
left out) the ratios are 0.26-1.76: at batch 1 both fetch the same weights from DRAM.
Data movement (on chip + DRAM) is 76-100 % of dynamic energy on every design: the claim holds.
Lower precision gains more on memory-bound GEMM layers? GPU fp16 -> int8: no (edge GPU 1.42x on
32 memory-bound layers vs 2.06x on 19 compute-bound; A100-class 1.37x vs 1.55x: int8 MACs
cost far less than fp16 ones); NPU 8 -> 4 bits: edge-tpu-like 1.75x on 50 memory-bound layers
vs 1.38x on its one compute-bound layer; on tpu-v1-like every layer is memory-bound (1.58x).
"""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
from tqdm import tqdm

from experiments.common import Run, new_figure, parse_args, trained_workload
from hw import canonical, evaluate, evaluate_gpu, get_gpu_preset, get_preset, layers, tech
from hw.x64 import x64
from models import get_network

TRAINED = ("cnn", "transformer")
ZOO = ("resnet18", "bert_base_layer")
FULL_LOAD = layers.workload([layers.gemm("full_load", m=8192, k=8192, n=8192)])
"""The GEMM whose power is a design's full-load power (as in ``hw.gpu``'s docstring)."""

PAIRS = {  # NPU design / GPU design compared at int8
    "edge": ("edge-tpu-like", "edge-gpu-like"),
    "datacenter": ("tpu-v1-like", "datacenter-gpu-like"),
    "peak_matched_edge": ("npu-peak-matched-edge", "edge-gpu-like"),
    "peak_matched_datacenter": ("npu-peak-matched-datacenter", "datacenter-gpu-like"),
    "power_matched_edge": ("npu-power-matched-edge", "edge-gpu-like"),
}
PRECISION_STUDIES = (  # (design, higher precision, lower precision)
    ("edge-gpu-like", "fp16", "int8"),
    ("datacenter-gpu-like", "fp16", "int8"),
    ("edge-tpu-like", "int8", "int4"),
    ("tpu-v1-like", "int8", "int4"),
)
CLAIM_RATIO = 10.0


def _gpu(name: str, precision: str):
    return dataclasses.replace(get_gpu_preset(name), precision=precision, name="gpu")


def _npu(base, precision: str = "int8", **changes):
    """An NPU config; the name is made common so that designs share one compilation."""
    bits = {"int8": 8.0, "int4": 4.0}[precision]
    return canonical(dataclasses.replace(base, w_bits=bits, a_bits=bits, name="npu", **changes))


def _on_gpu_memory(base, gpu, **changes):
    """``base`` on the GPU's node, DRAM bandwidth and DRAM energy per bit."""
    t = dataclasses.replace(
        tech.default_tech(float(gpu.node_nm)), dram_pj_per_bit=gpu.dram_pj_per_bit
    )
    return _npu(base, tech=t, dram_bw_gbps=gpu.dram_bw_gbps, **changes)


def power_matched(base, gpu) -> tuple:
    """The square array (side 8..512, step 8) whose full-load power is closest to the GPU's."""
    target = float(evaluate_gpu(gpu, FULL_LOAD).power_w)
    best = None
    for side in range(8, 513, 8):
        cfg = _on_gpu_memory(base, gpu, rows=side, cols=side, vector_lanes=side)
        gap = abs(np.log(float(evaluate(cfg, FULL_LOAD).power_w) / target))
        if best is None or gap < best[0]:
            best = (gap, cfg)
    return best[1]


def designs() -> list[tuple[str, str, str, object]]:
    """``(design, platform, precision, config)`` for every design of the study."""
    edge, tpu = get_preset("edge-tpu-like"), get_preset("tpu-v1-like")
    gpu_e, gpu_d = _gpu("edge-gpu-like", "int8"), _gpu("datacenter-gpu-like", "int8")
    out = [
        (g, "gpu", p, _gpu(g, p))
        for g in ("edge-gpu-like", "datacenter-gpu-like")
        for p in ("fp16", "int8")
    ]
    out += [
        ("edge-tpu-like", "npu", "int8", _npu(edge)),
        ("edge-tpu-like", "npu", "int4", _npu(edge, "int4")),
        ("tpu-v1-like", "npu", "int8", _npu(tpu)),
        ("tpu-v1-like", "npu", "int4", _npu(tpu, "int4")),
    ]
    peak_e = _on_gpu_memory(edge, gpu_e, rows=128, cols=64, vector_lanes=64, clock_mhz=625.0)
    peak_d = _on_gpu_memory(
        tpu, gpu_d, rows=384, cols=576, vector_lanes=576, clock_mhz=1410.0, filter_sram_kib=864.0
    )
    out += [
        ("npu-peak-matched-edge", "npu", "int8", peak_e),
        ("npu-peak-matched-datacenter", "npu", "int8", peak_d),
        ("npu-power-matched-edge", "npu", "int8", power_matched(edge, gpu_e)),
    ]
    return out


def design_row(design: str, platform: str, precision: str, cfg) -> dict:
    """What a design is: its size, clock, memory, peak and full-load power."""
    gpu = platform == "gpu"
    full = evaluate_gpu(cfg, FULL_LOAD) if gpu else evaluate(cfg, FULL_LOAD)
    return {
        "design": design,
        "platform": platform,
        "precision": precision,
        "array": f"{int(cfg.sms)} SMs" if gpu else f"{int(cfg.rows)}x{int(cfg.cols)}",
        "clock_mhz": float(cfg.clock_mhz),
        "dram_bw_gbps": float(cfg.dram_bw_gbps),
        "node_nm": float(cfg.node_nm if gpu else cfg.tech.node_nm),
        "peak_tops": float(cfg.peak_ops_per_s) / 1e12,
        "full_load_power_w": float(full.power_w),
    }


def breakdown_j(platform: str, rep) -> dict:
    """Energy per inference by where it goes, J: arithmetic, on chip, DRAM, static, host."""
    s = lambda x: float(np.sum(x)) * 1e-12  # noqa: E731
    if platform == "gpu":
        onchip, static, host = s(rep.energy_onchip_pj), s(rep.energy_static_pj), 0.0
    else:
        onchip = s(rep.energy_array_pj) + s(rep.energy_sram_pj)
        static, host = s(rep.energy_leak_pj), s(rep.energy_host_pj)
    return {
        "energy_arith_j": s(rep.energy_mac_pj) + s(rep.energy_vector_pj),
        "energy_onchip_j": onchip,
        "energy_dram_j": s(rep.energy_dram_pj),
        "energy_static_j": static,
        "energy_host_j": host,
    }


def result_row(network: str, wl, design: str, platform: str, precision: str, cfg, rep) -> dict:
    """One (network, design, precision) row of ``results.csv``."""
    parts = breakdown_j(platform, rep)
    dynamic = sum(v for k, v in parts.items() if k != "energy_static_j")
    energy, latency = float(rep.total_energy_j), float(rep.total_latency_s)
    macs = float(np.sum(wl.macs))
    return {
        "network": network,
        "design": design,
        "platform": platform,
        "precision": precision,
        "macs": int(macs),
        "latency_s": latency,
        "energy_j": energy,
        "power_w": energy / latency,
        "tops_per_w": 2.0 * macs / energy / 1e12,
        "tops_per_w_dynamic": 2.0 * macs / dynamic / 1e12,
        "peak_tops": float(cfg.peak_ops_per_s) / 1e12,
        "all_layers_fit": bool(np.all(rep.fits)) if platform == "npu" else True,
        "data_movement_share": (parts["energy_onchip_j"] + parts["energy_dram_j"]) / dynamic,
        "arithmetic_share": parts["energy_arith_j"] / dynamic,
        **parts,
    }


def layer_rows(network: str, wl, design: str, hi: tuple, lo_rep) -> list[dict]:
    """Per GEMM layer: intensity at the higher precision, the ridge point, the energy gain."""
    hi_prec, cfg, hi_rep = hi
    if hasattr(hi_rep, "dram_bytes"):
        dram_bytes, bw = np.asarray(hi_rep.dram_bytes), float(cfg.dram_bw_gbps)
    else:
        traffic = ("ifmap_read", "filter_read", "ofmap_write", "ofmap_read")
        dram_bytes = sum(np.asarray(getattr(hi_rep, f"dram_{t}_bytes")) for t in traffic)
        bw = float(cfg.dram_bw_gbps) * (3.0 if cfg.dram_per_stream else 1.0)
    ridge = float(cfg.peak_ops_per_s) / (bw * 1e9)
    macs = np.asarray(wl.macs, dtype=float)
    intensity = 2.0 * macs / np.maximum(dram_bytes, 1.0)
    e_hi, e_lo = np.asarray(hi_rep.energy_pj), np.asarray(lo_rep.energy_pj)
    return [
        {
            "network": network,
            "design": design,
            "comparison": f"{hi_prec}->{'int8' if hi_prec == 'fp16' else 'int4'}",
            "layer": wl.names[i],
            "kind": wl.kinds[i],
            "macs": int(macs[i]),
            "intensity_ops_per_byte": float(intensity[i]),
            "ridge_ops_per_byte": ridge,
            "bound": "memory" if intensity[i] < ridge else "compute",
            "energy_hi_j": float(e_hi[i]) * 1e-12,
            "energy_lo_j": float(e_lo[i]) * 1e-12,
            "energy_gain": float(e_hi[i] / e_lo[i]),
        }
        for i in range(wl.num_layers)
        if macs[i] > 0
    ]


def evaluate_all(nets: dict, table: list) -> tuple[list[dict], list[dict]]:
    """Every network on every design: ``results.csv`` rows and ``layers.csv`` rows."""
    results, reports = [], {}
    jobs = [(n, d) for n in nets for d in table]
    for network, (design, platform, precision, cfg) in tqdm(
        jobs, desc="evaluate", unit="run", file=sys.stderr, leave=False
    ):
        wl = nets[network]
        rep = evaluate_gpu(cfg, wl) if platform == "gpu" else evaluate(cfg, wl)
        reports[network, design, precision] = (precision, cfg, rep)
        results.append(result_row(network, wl, design, platform, precision, cfg, rep))
    per_layer = []
    for network, wl in nets.items():
        for design, hi, lo in PRECISION_STUDIES:
            lo_rep = reports[network, design, lo][2]
            per_layer += layer_rows(network, wl, design, reports[network, design, hi], lo_rep)
    return results, per_layer


def _lookup(results: list[dict], network: str, design: str, precision: str) -> dict:
    return next(
        r
        for r in results
        if (r["network"], r["design"], r["precision"]) == (network, design, precision)
    )


def ratio_headline(results: list[dict], networks) -> dict:
    """Int8 NPU/GPU TOPS/W per pair and network, and whether every ratio reaches 10x."""
    ratios = {
        pair: {
            n: _lookup(results, n, npu, "int8")["tops_per_w"]
            / _lookup(results, n, gpu, "int8")["tops_per_w"]
            for n in networks
        }
        for pair, (npu, gpu) in PAIRS.items()
    }
    dynamic = {
        pair: {
            n: _lookup(results, n, npu, "int8")["tops_per_w_dynamic"]
            / _lookup(results, n, gpu, "int8")["tops_per_w_dynamic"]
            for n in networks
        }
        for pair, (npu, gpu) in PAIRS.items()
    }
    held = {pair: all(v >= CLAIM_RATIO for v in r.values()) for pair, r in ratios.items()}
    return {
        "tops_per_w_ratio_int8": ratios,
        "claim_10x_held": held,
        "tops_per_w_ratio_int8_dynamic_only": dynamic,
    }


def movement_headline(results: list[dict]) -> dict:
    """Data-movement share of dynamic energy: range per design, and whether it is > 50 %."""
    by_design: dict[str, list[float]] = {}
    for r in results:
        by_design.setdefault(f"{r['design']}_{r['precision']}", []).append(r["data_movement_share"])
    shares = [r["data_movement_share"] for r in results]
    return {
        "data_movement_share_range": {k: [min(v), max(v)] for k, v in by_design.items()},
        "data_movement_share_min": min(shares),
        "claim_data_movement_dominates_held": min(shares) > 0.5,
    }


def precision_headline(per_layer: list[dict]) -> dict:
    """Mean energy gain of the lower precision on memory- and compute-bound GEMM layers."""
    out = {}
    for design, hi, lo in PRECISION_STUDIES:
        rows = [r for r in per_layer if r["design"] == design]
        rec = {"comparison": f"{hi}->{lo}"}
        for bound in ("memory", "compute"):
            gains = [r["energy_gain"] for r in rows if r["bound"] == bound]
            rec[f"{bound}_bound_layers"] = len(gains)
            rec[f"{bound}_bound_mean_gain"] = float(np.mean(gains)) if gains else None
        mem, comp = rec["memory_bound_mean_gain"], rec["compute_bound_mean_gain"]
        rec["larger_on_memory_bound"] = None if None in (mem, comp) else bool(mem > comp)
        out[design] = rec
    return out


def tops_per_w_figure(results: list[dict], networks):
    labels = list(dict.fromkeys(f"{r['design']} {r['precision']}" for r in results))
    fig, ax = new_figure(11.0, 4.8)
    width = 0.8 / len(labels)
    x = np.arange(len(networks))
    for j, label in enumerate(labels):
        design, precision = label.rsplit(" ", 1)
        y = [_lookup(results, n, design, precision)["tops_per_w"] for n in networks]
        ax.bar(x + (j - len(labels) / 2 + 0.5) * width, y, width, label=label)
    ax.set(xticks=x, xticklabels=list(networks), yscale="log", ylabel="effective TOPS/W")
    ax.set_title("Effective TOPS/W per inference (2 MACs / energy), batch 1")
    ax.legend(fontsize=6, ncol=2, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    return fig


def breakdown_figure(results: list[dict], networks):
    parts = ("arith", "onchip", "dram", "static", "host")
    fig, ax0 = new_figure(12.0, 7.5)
    fig.delaxes(ax0)
    axes = fig.subplots(2, (len(networks) + 1) // 2, squeeze=False).ravel()
    for ax, network in zip(axes, networks, strict=False):
        rows = [r for r in results if r["network"] == network]
        labels = [f"{r['design']} {r['precision']}" for r in rows]
        bottom = np.zeros(len(rows))
        for part in parts:
            share = np.array([r[f"energy_{part}_j"] / r["energy_j"] for r in rows]) * 100
            ax.bar(np.arange(len(rows)), share, bottom=bottom, label=part)
            bottom += share
        ax.set_xticks(np.arange(len(rows)), labels, rotation=70, ha="right", fontsize=6)
        ax.set(ylabel="% of energy per inference", title=network)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


@x64
def main(argv=None) -> dict:
    args = parse_args(__doc__, argv)
    run = Run("exp_gpu_vs_npu", args, argv)
    nets = {k: trained_workload(k, args.quick, run.out, args.seed) for k in TRAINED}
    if not args.quick:
        nets |= {k: get_network(k) for k in ZOO}
    table = designs()
    run.csv("designs", [design_row(*d) for d in table])
    results, per_layer = evaluate_all(nets, table)
    for r in results:
        r["seed"] = args.seed
    run.csv("results", results)
    run.csv("layers", per_layer)
    run.figure("tops_per_w", tops_per_w_figure(results, list(nets)))
    run.figure("energy_breakdown", breakdown_figure(results, list(nets)))
    power = next(d for d in table if d[0] == "npu-power-matched-edge")[3]
    headline = {
        "networks": list(nets),
        **ratio_headline(results, list(nets)),
        **movement_headline(results),
        "precision_gain_by_bound": precision_headline(per_layer),
        "all_npu_layers_fit": all(r["all_layers_fit"] for r in results),
        "power_matched_array": f"{int(power.rows)}x{int(power.cols)}",
    }
    return run.finish(headline)


if __name__ == "__main__":
    main()
