"""Gradients against finite differences: does ``jax.grad`` of the smooth model mean what it says?

For each workload, design and temperature, prints per parameter (hardware values and every
layer's widths) and metric the log-log sensitivity ``d log metric / d log parameter`` three
ways (``dse.sensitivity``): ``jax.jacfwd`` of the smooth model, central finite differences
of the same smooth model (log step 1e-6), and the exact model over one allowed step (a
doubling, one bit); then the worst relative error of the gradient against the smooth
differences and the share of sensitivities whose sign agrees with the exact step.

    .venv/bin/python benchmarks/bench_gradients.py            # adds ResNet-18 and a BERT layer
    .venv/bin/python benchmarks/bench_gradients.py --quick    # two-layer workload, ~40 s

Expected: every relative error below 10 % at every temperature (``|grad - fd| <= 0.1 |fd| +
1e-3``), and the exact step's sign matched wherever the exact step is at least 0.05.
"""

from __future__ import annotations

import argparse

import numpy as np

from dse import design as dz
from dse import sensitivity as sens
from dse.space import Space
from hw import layers
from models import get_network

TEMPERATURES = (0.3, 0.1, 0.03, 0.01)
ABS_TOL = 1e-3
"""Sensitivities this small count as zero: a 0.07 % change of the metric per doubling."""


def two_layers():
    return layers.workload(
        [
            layers.conv2d(
                "conv", ifmap_h=56, ifmap_w=56, channels=64, num_filters=64, filter_h=3,
                filter_w=3, padding=1,
            ),
            layers.dense("fc", in_features=768, out_features=3072, tokens=128),
        ]
    )  # fmt: skip


def cases(quick: bool):
    yield "two-layer", "edge-tpu-like", two_layers()
    if not quick:
        yield "resnet18", "edge-tpu-like", get_network("resnet18")
        yield "bert_base_layer", "tpu-v1-like", get_network("bert_base_layer")


def compare(base_name: str, workload, temperature: float) -> dict:
    """The three estimates at the base design, and their agreement."""
    space = Space.from_dict({"base": base_name})
    base, design = space.base_config(), dz.base_design(space, workload)
    grad = np.asarray(sens.gradient(base, workload, design, temperature))
    fd = np.asarray(sens.smooth_differences(base, workload, design, temperature))
    exact = np.asarray(sens.exact_step(base, workload, design))
    err = np.abs(grad - fd) / (np.abs(fd) + ABS_TOL / 0.1)
    strong = np.abs(exact) >= 0.05
    signs = np.sign(grad[strong]) == np.sign(exact[strong])
    return {"grad": grad, "fd": fd, "exact": exact, "err": err, "signs": signs}


def print_case(label: str, workload, out: dict, temperature: float, verbose: bool):
    names = sens.param_names(workload)
    m, k = np.unravel_index(np.argmax(out["err"]), out["err"].shape)
    print(
        f"\n{label}  t={temperature}  worst |grad-fd|/(|fd|+0.01) = {out['err'][m, k]:.4f}"
        f" (d log {sens.METRICS[m]} / d log {names[k]}: grad {out['grad'][m, k]:.4f},"
        f" fd {out['fd'][m, k]:.4f})"
    )
    print(f"  sign agrees with the exact step: {out['signs'].mean():.0%} of {out['signs'].size}")
    if not verbose:
        return
    i = sens.METRICS.index("latency_s")
    j = sens.METRICS.index("energy_j")
    print(f"  {'parameter':<26}{'dlogL grad':>11}{'fd':>9}{'exact':>9}{'dlogE grad':>12}{'fd':>9}")
    for k, name in enumerate(names):
        g, f, e = out["grad"], out["fd"], out["exact"]
        print(
            f"  {name[:26]:<26}{g[i, k]:>11.4f}{f[i, k]:>9.4f}{e[i, k]:>9.4f}"
            f"{g[j, k]:>12.4f}{f[j, k]:>9.4f}"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the two-layer workload only")
    args = parser.parse_args(argv)
    worst = 0.0
    for label, base_name, wl in cases(args.quick):
        for t in TEMPERATURES:
            out = compare(base_name, wl, t)
            print_case(f"{label} on {base_name}", wl, out, t, verbose=wl.num_layers <= 4)
            worst = max(worst, float(out["err"].max()))
    print(f"\nworst relative error over all cases: {worst:.4f} (target < 0.1)")


if __name__ == "__main__":
    main()
