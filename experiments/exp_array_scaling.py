"""Array size and on-chip SRAM vs latency and EDP, for a CNN (ResNet-18) and a transformer
(one BERT-base layer, sequence 128), batch 1, on the ``edge-tpu-like`` design.

The sweep changes the square array side (8 to 256 PEs; vector lanes follow the columns, one
per column as in the preset) and the unified SRAM pool (64 KiB to 16 MiB, split 1:2:1 between
ifmap, filter and ofmap as the preset's 2/4/2 MiB); clock (480 MHz), DRAM (4 GB/s), widths
(8/8/32 bits) and node (14 nm) stay the preset's. Every point is the exact cost model with the
default mapper (``hw.cost.evaluate``). A layer is DRAM-bound when its DRAM cycles exceed its
compute plus vector cycles; the DRAM-bound share is the share of total cycles spent in such
layers. Points whose tiles do not fit the SRAM (``all_layers_fit`` false) are kept in the
table but never chosen as best.

Produces, under ``--out``: ``sweep.csv`` (workload, array side, SRAM, latency_s, energy_j,
edp_js, utilization, dram_bound_share, stall_share, fits), ``layers.csv`` (the roofline
points of the preset design), ``roofline.png/svg`` (attainable ops/s against arithmetic
intensity, each GEMM layer a point, with the 64 x 64 design's compute roof and bandwidth
slope), ``edp_heatmap.png/svg`` (EDP over side x SRAM, per workload) and
``scaling_lines.png/svg`` (latency, utilization and DRAM-bound share against the side at the
preset's 8 MiB, EDP against the side at several SRAM sizes).

Command: ``.venv/bin/python experiments/exp_array_scaling.py --out runs/exp_array_scaling
[--quick]`` (``--quick``: sides 8..256 in powers of two, SRAM 64 KiB, 1 MiB, 8 MiB, 16 MiB).

Run time on the 2-core CPU: 8 s in full (10 sides x 9 SRAM sizes x 2 workloads), 7 s with
``--quick`` (compiling dominates).

Expected headline (full): at the preset's 8 MiB both workloads turn DRAM-bound (> 50 % of
cycles in DRAM-bound layers) at a 48 x 48 array (ResNet-18 56 %, BERT 94 %; at 32 x 32, 12 %
and 5 %); latency stops improving (< 10 % per step) after 64 x 64 for ResNet-18 and 48 x 48
for BERT (4 GB/s of DRAM caps both). With less than 512 KiB of SRAM BERT turns DRAM-bound
sooner (24 x 24 at 64-128 KiB). Best EDP: ResNet-18 96 x 96 with 512 KiB (1.41e-5 J s,
4.51 ms, 3.13 mJ); BERT 96 x 96 with 1 MiB (5.09e-6 J s, 2.76 ms, 1.84 mJ): SRAM beyond
what the tiles need only adds leakage and access energy.
"""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
from tqdm import tqdm

from experiments.common import Run, new_figure, parse_args
from hw import canonical, evaluate, get_preset
from hw.x64 import x64
from models import get_network

WORKLOADS = ("resnet18", "bert_base_layer")
PRESET = "edge-tpu-like"
SIDES = (8, 16, 24, 32, 48, 64, 96, 128, 192, 256)
SRAM_KIB = (64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)
QUICK_SIDES = (8, 16, 32, 64, 128, 256)
QUICK_SRAM_KIB = (64, 1024, 8192, 16384)
BASE_SRAM_KIB = 8192  # the preset's pool
SATURATION = 1.1  # a side "saturates" when the next one is less than 10 % faster


def design(side: int, sram_kib: float):
    """The preset with a ``side x side`` array and a ``sram_kib`` pool split 1:2:1."""
    base = get_preset(PRESET)
    return canonical(
        dataclasses.replace(
            base,
            rows=side,
            cols=side,
            vector_lanes=side,
            ifmap_sram_kib=sram_kib / 4,
            filter_sram_kib=sram_kib / 2,
            ofmap_sram_kib=sram_kib / 4,
            name="npu",
        )
    )


def dram_bound(rep) -> np.ndarray:
    """Per layer: DRAM cycles exceed the compute and vector cycles, shape=(L,)."""
    busy = np.asarray(rep.compute_cycles + rep.vector_cycles + rep.host_cycles)
    return np.asarray(rep.dram_cycles) > busy


def point(workload: str, wl, side: int, sram_kib: float) -> dict:
    """One sweep point: latency, energy, EDP, utilization and where the time goes."""
    rep = evaluate(design(side, sram_kib), wl)
    total = np.asarray(rep.total_cycles, dtype=float)
    macs = float(np.sum(wl.macs))
    return {
        "workload": workload,
        "array_side": side,
        "sram_kib": sram_kib,
        "peak_tops": 2.0 * side * side * float(rep.clock_mhz) * 1e6 / 1e12,
        "latency_s": float(rep.total_latency_s),
        "energy_j": float(rep.total_energy_j),
        "edp_js": float(rep.edp_js),
        "utilization": macs / (side * side * total.sum()),
        "dram_bound_share": float(total[dram_bound(rep)].sum() / total.sum()),
        "stall_share": float(np.sum(rep.stall_cycles) / total.sum()),
        "all_layers_fit": bool(np.all(rep.fits)),
    }


def sweep(nets: dict, sides, srams) -> list[dict]:
    jobs = [(n, s, k) for n in nets for s in sides for k in srams]
    bar = tqdm(jobs, desc="sweep", unit="design", file=sys.stderr, leave=False)
    return [point(n, nets[n], s, k) for n, s, k in bar]


def roofline_rows(workload: str, wl) -> list[dict]:
    """Each GEMM layer on the preset design: intensity (ops per DRAM byte) and ops/s."""
    cfg = design(int(get_preset(PRESET).rows), BASE_SRAM_KIB)
    rep = evaluate(cfg, wl)
    traffic = ("ifmap_read", "filter_read", "ofmap_write", "ofmap_read")
    dram = sum(np.asarray(getattr(rep, f"dram_{t}_bytes")) for t in traffic)
    ops, lat = 2.0 * np.asarray(wl.macs, float), np.asarray(rep.latency_s)
    bound = dram_bound(rep)
    return [
        {
            "workload": workload,
            "layer": wl.names[i],
            "kind": wl.kinds[i],
            "ops": ops[i],
            "dram_bytes": float(dram[i]),
            "intensity_ops_per_byte": ops[i] / max(float(dram[i]), 1.0),
            "attained_ops_per_s": ops[i] / lat[i],
            "dram_bound": bool(bound[i]),
        }
        for i in range(wl.num_layers)
        if ops[i] > 0
    ]


def turning_points(rows: list[dict], workload: str, sides) -> dict:
    """At the preset's SRAM: the first side that is DRAM-bound (> 50 % of cycles), the first
    after which a bigger array gains < 10 % latency, and the best fitting EDP over the sweep."""
    base = {r["array_side"]: r for r in rows if r["workload"] == workload}
    base = {s: r for s, r in base.items() if r["sram_kib"] == BASE_SRAM_KIB} or base
    mem = next((s for s in sides if base[s]["dram_bound_share"] > 0.5), None)
    sat = next(
        (
            a
            for a, b in zip(sides, sides[1:], strict=False)
            if base[a]["latency_s"] / base[b]["latency_s"] < SATURATION
        ),
        sides[-1],
    )
    ok = [r for r in rows if r["workload"] == workload and r["all_layers_fit"]]
    best = min(ok, key=lambda r: r["edp_js"])
    by_sram = {}
    for k in sorted({r["sram_kib"] for r in ok}):
        at = sorted((r for r in ok if r["sram_kib"] == k), key=lambda r: r["array_side"])
        by_sram[str(k)] = next((r["array_side"] for r in at if r["dram_bound_share"] > 0.5), None)
    return {
        "memory_bound_side": mem,
        "saturation_side": sat,
        "memory_bound_side_by_sram_kib": by_sram,
        "best_edp": {
            k: best[k] for k in ("array_side", "sram_kib", "edp_js", "latency_s", "energy_j")
        },
    }


def _size(kib: float) -> str:
    return f"{kib / 1024:g} MiB" if kib >= 1024 else f"{kib:g} KiB"


def roofline_figure(points: list[dict]):
    cfg = design(int(get_preset(PRESET).rows), BASE_SRAM_KIB)
    peak = float(cfg.peak_ops_per_s)
    bw = float(cfg.dram_bw_gbps) * 1e9
    fig, ax = new_figure(6.4, 4.6)
    x = np.array([p["intensity_ops_per_byte"] for p in points])
    grid = np.logspace(np.log10(max(x.min() / 2, 0.1)), np.log10(x.max() * 2), 200)
    ax.plot(grid, np.minimum(peak, bw * grid), "k-", lw=1.2, label="roof: min(peak, BW x I)")
    ax.axvline(peak / bw, color="grey", ls=":", lw=1, label=f"ridge {peak / bw:.0f} ops/B")
    for name, marker in zip(WORKLOADS, ("o", "s"), strict=True):
        sel = [p for p in points if p["workload"] == name]
        ax.scatter(
            [p["intensity_ops_per_byte"] for p in sel],
            [p["attained_ops_per_s"] for p in sel],
            marker=marker,
            s=18,
            alpha=0.7,
            label=name,
        )
    ax.set(xscale="log", yscale="log", xlabel="arithmetic intensity, ops per DRAM byte")
    ax.set(ylabel="attained ops/s")
    ax.set_title(f"Roofline of {PRESET} (64x64, 480 MHz, 4 GB/s), GEMM layers at batch 1")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def heatmap_figure(rows: list[dict], sides, srams):
    fig, ax0 = new_figure(11.0, 4.4)
    fig.delaxes(ax0)
    axes = fig.subplots(1, len(WORKLOADS))
    for ax, name in zip(axes, WORKLOADS, strict=True):
        grid = np.full((len(srams), len(sides)), np.nan)
        for r in rows:
            if r["workload"] == name and r["all_layers_fit"]:
                grid[srams.index(r["sram_kib"]), sides.index(r["array_side"])] = r["edp_js"]
        im = ax.imshow(np.log10(grid), origin="lower", aspect="auto", cmap="viridis_r")
        ax.set_xticks(range(len(sides)), [str(s) for s in sides], fontsize=7)
        ax.set_yticks(range(len(srams)), [_size(k) for k in srams], fontsize=7)
        best = np.unravel_index(np.nanargmin(grid), grid.shape)
        ax.plot(best[1], best[0], "r*", ms=12, label="best EDP")
        ax.legend(fontsize=7, loc="upper left")
        ax.set(xlabel="array side (PEs)", ylabel="SRAM pool", title=f"{name}: log10 EDP (J s)")
        fig.colorbar(im, ax=ax)
    fig.tight_layout()
    return fig


def lines_figure(rows: list[dict], sides, srams):
    fig, ax0 = new_figure(12.0, 3.8)
    fig.delaxes(ax0)
    ax_lat, ax_share, ax_edp = fig.subplots(1, 3)
    for name in WORKLOADS:
        at = sorted(
            (r for r in rows if r["workload"] == name and r["sram_kib"] == BASE_SRAM_KIB),
            key=lambda r: r["array_side"],
        )
        s = [r["array_side"] for r in at]
        ax_lat.plot(s, [r["latency_s"] * 1e3 for r in at], "o-", label=name)
        ax_share.plot(s, [r["utilization"] for r in at], "o-", label=f"{name} utilization")
        ax_share.plot(s, [r["dram_bound_share"] for r in at], "x--", label=f"{name} DRAM-bound")
        for k in (srams[0], BASE_SRAM_KIB):
            pts = sorted(
                (r for r in rows if r["workload"] == name and r["sram_kib"] == k),
                key=lambda r: r["array_side"],
            )
            ax_edp.plot(
                [r["array_side"] for r in pts if r["all_layers_fit"]],
                [r["edp_js"] for r in pts if r["all_layers_fit"]],
                "o-",
                label=f"{name}, {_size(k)}",
            )
    ax_lat.set(xscale="log", yscale="log", xlabel="array side", ylabel="latency, ms")
    ax_lat.set_title(f"Latency ({BASE_SRAM_KIB // 1024} MiB SRAM)")
    ax_share.set(xscale="log", xlabel="array side", ylabel="share", ylim=(0, 1.05))
    ax_share.set_title("Utilization and DRAM-bound share")
    ax_edp.set(xscale="log", yscale="log", xlabel="array side", ylabel="EDP, J s", title="EDP")
    for ax in (ax_lat, ax_share, ax_edp):
        ax.legend(fontsize=6)
    fig.tight_layout()
    return fig


@x64
def main(argv=None) -> dict:
    args = parse_args(__doc__, argv)
    run = Run("exp_array_scaling", args, argv)
    sides = list(QUICK_SIDES if args.quick else SIDES)
    srams = list(QUICK_SRAM_KIB if args.quick else SRAM_KIB)
    nets = {name: get_network(name) for name in WORKLOADS}
    rows = sweep(nets, sides, srams)
    for r in rows:
        r["seed"] = args.seed
    run.csv("sweep", rows)
    points = [p for name, wl in nets.items() for p in roofline_rows(name, wl)]
    run.csv("layers", points)
    run.figure("roofline", roofline_figure(points))
    run.figure("edp_heatmap", heatmap_figure(rows, sides, srams))
    run.figure("scaling_lines", lines_figure(rows, sides, srams))
    headline = {
        "design": PRESET,
        "base_sram_kib": BASE_SRAM_KIB,
        **{name: turning_points(rows, name, sides) for name in WORKLOADS},
    }
    return run.finish(headline)


if __name__ == "__main__":
    main()
