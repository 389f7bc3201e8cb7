"""What operator fusion saves and what host fallback costs, on ``edge-tpu-like``.

Networks (batch 1): the trained digits CNN and transformer (``trained_model``; the quick ones
with ``--quick``) and a BERT-base layer (sequence 128, ``models.zoo``). Variants of the
``edge-tpu-like`` preset (``hw.schedule`` decides placement and fusion; ``hw.cost._host``
prices a fallback layer as host compute at 50 Gop/s plus its inputs and outputs over a
4 GB/s link):

* ``baseline``: everything on the NPU, fusion on;
* ``no_fusion``: every intermediate makes a DRAM round trip;
* ``host_softmax``: softmax on the host (``unsupported_ops=("softmax",)``);
* ``host_layernorm_gelu``: layernorm and GELU on the host;
* ``host_dense``: dense (fully connected) layers on the host. The CNN's first FC layer is a
  conv over the whole feature map (kind ``conv``), so only its classifier moves.

A variant that names no layer of a network (the CNN has no softmax, layernorm or GELU) costs
the same as the baseline: ``host_layers`` says how many layers moved.

Produces, under ``--out``: ``results.csv`` (network, variant, host_layers, latency_s,
energy_j, edp_js, latency_ratio and energy_ratio to the baseline) and ``ratios.png/svg``
(latency and energy multipliers, log scale).

Command: ``.venv/bin/python experiments/exp_fusion_fallback.py --out runs/exp_fusion_fallback
[--quick]``

Run time on the 2-core CPU: 26 s in full with the trained models cached (training them the
first time: about 65 s more); 23 s with ``--quick`` (the quick models only, no BERT layer).

Expected headline (full), latency x / energy x against the baseline:

===============  ===========  =============  ===================  =======================
network          no_fusion    host_softmax   host_layernorm_gelu  host_dense
===============  ===========  =============  ===================  =======================
cnn              1.15 / 1.24  1 / 1 (none)   1 / 1 (none)         0.96 / 0.99 (1 layer)
transformer      1.06 / 1.20  1.01 / 1.08    1.05 / 1.17          0.83 / 1.11 (14 layers)
bert_base_layer  1.17 / 1.16  1.07 / 1.08    1.10 / 1.13          13.6 / 8.6 (6 layers)
===============  ===========  =============  ===================  =======================

Moving the digits models' small dense layers to the host is slightly faster: their weights
stay on the host, while the NPU fetches them over its 4 GB/s DRAM; BERT's 768 x 3072 layers
at 50 Gop/s on the host cost 13.6x the latency.
"""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
from tqdm import tqdm

from experiments.common import Run, new_figure, parse_args, trained_workload
from hw import canonical, default_mapping, evaluate, get_preset
from hw.x64 import x64
from models import get_network

VARIANTS = {  # name -> changes to the preset
    "baseline": {},
    "no_fusion": {"fusion": False},
    "host_softmax": {"unsupported_ops": ("softmax",)},
    "host_layernorm_gelu": {"unsupported_ops": ("layernorm", "gelu")},
    "host_dense": {"unsupported_ops": ("dense",)},
}
PRESET = "edge-tpu-like"


def variant_rows(network: str, wl, base) -> list[dict]:
    """Every variant of ``base`` on one workload, with its ratios to the baseline."""
    rows = []
    # The mapper sees neither placement nor fusion: one mapping serves every variant (and
    # saves a compilation per variant, whose static fields differ).
    mapping = default_mapping(base, wl)
    baseline = evaluate(base, wl, mapping)
    for variant, changes in VARIANTS.items():
        moved = set(changes.get("unsupported_ops", ())) & set(wl.kinds)
        if variant == "baseline" or ("unsupported_ops" in changes and not moved):
            rep = baseline  # no layer moves: the variant is the baseline
        else:
            rep = evaluate(canonical(dataclasses.replace(base, **changes)), wl, mapping)
        rows.append(
            {
                "network": network,
                "variant": variant,
                "host_layers": int(np.sum(rep.on_host)),
                "latency_s": float(rep.total_latency_s),
                "energy_j": float(rep.total_energy_j),
                "edp_js": float(rep.edp_js),
                "host_energy_j": float(np.sum(rep.energy_host_pj)) * 1e-12,
            }
        )
    ref = rows[0]
    for r in rows:
        r["latency_ratio"] = r["latency_s"] / ref["latency_s"]
        r["energy_ratio"] = r["energy_j"] / ref["energy_j"]
    return rows


def ratio_figure(rows: list[dict]):
    networks = list(dict.fromkeys(r["network"] for r in rows))
    variants = [v for v in VARIANTS if v != "baseline"]
    fig, ax0 = new_figure(11.0, 4.4)
    fig.delaxes(ax0)
    axes = fig.subplots(1, 2)
    width = 0.8 / len(variants)
    x = np.arange(len(networks))
    for ax, metric in zip(axes, ("latency_ratio", "energy_ratio"), strict=True):
        for j, v in enumerate(variants):
            y = [
                next(r[metric] for r in rows if (r["network"], r["variant"]) == (n, v))
                for n in networks
            ]
            ax.bar(x + (j - len(variants) / 2 + 0.5) * width, y, width, label=v)
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set(
            xticks=x,
            xticklabels=networks,
            yscale="log",
            ylabel=f"{metric.split('_')[0]} / baseline",
        )
        ax.set_title(f"{metric.split('_')[0].capitalize()} multiplier on {PRESET}")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


@x64
def main(argv=None) -> dict:
    args = parse_args(__doc__, argv)
    run = Run("exp_fusion_fallback", args, argv)
    nets = {k: trained_workload(k, args.quick, run.out, args.seed) for k in ("cnn", "transformer")}
    if not args.quick:
        nets["bert_base_layer"] = get_network("bert_base_layer")
    base = canonical(dataclasses.replace(get_preset(PRESET), name="npu"))
    rows = []
    for network, wl in tqdm(nets.items(), desc="networks", file=sys.stderr, leave=False):
        rows += variant_rows(network, wl, base)
    for r in rows:
        r["seed"] = args.seed
    run.csv("results", rows)
    run.figure("ratios", ratio_figure(rows))
    headline = {
        "design": PRESET,
        "multipliers": {
            n: {
                r["variant"]: {
                    "latency_x": r["latency_ratio"],
                    "energy_x": r["energy_ratio"],
                    "host_layers": r["host_layers"],
                }
                for r in rows
                if r["network"] == n and r["variant"] != "baseline"
            }
            for n in nets
        },
    }
    return run.finish(headline)


if __name__ == "__main__":
    main()
