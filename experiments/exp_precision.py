"""Uniform against searched per-layer bit widths on ``edge-tpu-like``: accuracy by execution,
energy and latency from the cost model.

Network: the trained digits CNN (``trained_model``; the quick one with ``--quick``), batch 1.

* Uniform widths 16, 8, 6, 4 and 2 bits (weights and activations equal). Accuracy is executed
  bit-accurately (``experiments.accuracy.measure``) on ``edge-tpu-like`` with its 32-bit
  accumulator. At 16 bits the products are 32 bits wide and the sums overflow it (the engine
  saturates), so the 16-bit point is also run with a ``WIDE_ACC_BITS`` accumulator, which is
  the one a 16-bit design needs; both rows are in the table (``acc_bits``).
* Searched mixed widths: the gradient search (``dse.search``) over per-layer weight and
  activation widths in ``SEARCH_BITS`` on the fixed ``edge-tpu-like`` hardware, minimizing
  energy, for accuracy floors ``float - 0.5, 1, 2, 5`` points. The floor is enforced through
  the accuracy proxy (``dse.accuracy``), calibrated by ``npu_dse.calibration.calibrate`` at
  ``calibration_bits(space)``; the search's best designs (``result.top``) are then executed and
  the first whose measured accuracy meets the floor is chosen (``npu-dse search``'s re-check).
  Every design of ``result.top`` is measured, for the proxy error statistics.

Every design's cost is ``hw.evaluate`` with its per-layer widths, the multipliers as wide as the
widest layer, and its tiles and loop orders chosen by the search's mapper (``dse.mapper``, full
grid, energy objective), so that the widths alone separate the designs;
``default_mapping_energy_j`` is the cost with the preset's default mapping instead.

Produces, under ``--out``: ``designs.csv`` (one row per design: kind ``uniform`` or ``mixed``,
the floor, per-layer widths (``mean_w_bits`` and ``mean_a_bits`` average every layer of the
workload, weightless ones included), measured accuracy, proxy accuracy, ``proxy_error`` = measured -
proxy, energy_j, latency_s, on the accuracy-energy Pareto front or not, chosen by the re-check or
not), ``calibration.csv`` (the proxy's per-layer sensitivities) and ``accuracy_energy.png/svg``
(uniform and mixed designs and the Pareto front of accuracy, maximized, against energy, whole
range and near the float accuracy).

Command: ``.venv/bin/python experiments/exp_precision.py --out runs/exp_precision [--quick]``
(``--quick``: the quick CNN, one floor, 2 points, a small search).

Run time on the 2-core CPU (shared with other work, so the times are noisy): about 155 s in
full with the trained CNN cached (four searches of 64 starts x 240 steps, each compiled anew,
about 33 s apiece), about 26 s with ``--quick`` (the quick CNN trains once in about 5 s more).

Expected headline (full, seed 0; 359 test digits, one digit is 0.28 points). Measured accuracy
and energy per inference: float 0.9805; w16a16 on a 48-bit accumulator 0.9805 at 15.0 uJ, on
the preset's 32-bit one 0.493 (overflow); w8a8 0.9805 at 7.50 uJ; w6a6 0.9805 at 5.67 uJ;
w4a4 0.9749 at 3.84 uJ; w2a2 0.326 at 2.06 uJ. Mixed, chosen per floor: -0.5 pt: 0.9805 at
5.26 uJ, 7.2 % below w6a6; -1 pt: 0.9749 at 3.80 uJ, 1.1 % below w4a4; -2 pt: 0.9666 at
3.63 uJ, 5.5 % below w4a4; -5 pt: 0.9415 at 3.50 uJ, 9.0 % below w4a4 (the largest saving,
with 3.3 points less accuracy than w4a4; the re-check rejected nine designs the proxy passed,
measured 0.916-0.922 against the 0.9305 floor). Proxy error (measured - proxy) over the 64
measured mixed designs: mean +0.20, rms 0.67, from -1.77 to +0.87 points; on uniform w2a2 it
is -40 points (proxy 0.730: the first-order model fails with every layer at 2 bits). The mixed
designs keep some layer at 6-8 bits, which sizes the multipliers (``dse.design.to_config``), so
the savings stay small. The mapper's mapping costs exactly the default mapping's energy on this
fixed hardware.

The transformer is left out: calibrating its proxy (32 layers, each quantized model compiled)
takes about 6 minutes on this CPU.
"""

from __future__ import annotations

import dataclasses
import functools
import sys

import jax
import numpy as np
from tqdm import tqdm

from dse import Budgets, GradientSettings, Problem, Space, base_design, mapper, pareto, search
from dse import accuracy as proxy_model
from dse import design as dz
from experiments.common import Run, new_figure, parse_args, trained_model
from hw import evaluate
from hw.x64 import x64
from npu_dse import calibration as acc_io
from npu_dse.calibration import calibration_bits

PRESET = "edge-tpu-like"
UNIFORM_BITS = (16, 8, 6, 4, 2)
SEARCH_BITS = [2, 4, 6, 8]
WIDE_ACC_BITS = 48  # a 16x16-bit product is 32 bits: the sums need headroom above it
DROPS_PT = (0.5, 1.0, 2.0, 5.0)  # accuracy floors, points below the float accuracy
QUICK_DROPS_PT = (2.0,)
SETTINGS = GradientSettings(starts=64, steps=240)
QUICK_SETTINGS = GradientSettings(starts=8, steps=40)
MEASURED = 16  # designs of a search's top list executed, for the proxy error statistics
QUICK_MEASURED = 3


def search_space() -> Space:
    """``edge-tpu-like`` hardware, fixed; per-layer widths from ``SEARCH_BITS``."""
    return Space.from_dict(
        {"base": PRESET, "w_bits": SEARCH_BITS, "a_bits": SEARCH_BITS, "per_layer_bits": True}
    )


@x64
@functools.partial(jax.jit, static_argnames=("objective", "budgets"))
def _map(base, workload, design, objective, budgets):
    return mapper.map_design(base, workload, design, objective, budgets)


def cost(space: Space, workload, w_bits, a_bits, acc_bits: float | None = None) -> dict:
    """Energy and latency of per-layer widths on the space's base hardware (``acc_bits`` for
    a wider accumulator), mapped for energy, and the energy with the default mapping."""
    base = space.base_config()
    if acc_bits is not None:
        base = dataclasses.replace(base, acc_bits=np.float64(acc_bits))
    design = dataclasses.replace(
        base_design(space, workload),
        w_bits=np.asarray(w_bits, np.float64),
        a_bits=np.asarray(a_bits, np.float64),
    )
    mapped = jax.tree_util.tree_map(np.asarray, _map(base, workload, design, "energy", Budgets()))
    m = dz.metrics(dz.evaluate(base, workload, mapped))
    config = dz.to_config(base, design, workload)
    default = evaluate(config, workload, layer_bits=(design.w_bits, design.a_bits))
    return {
        "energy_j": float(m["energy_j"]),
        "latency_s": float(m["latency_s"]),
        "default_mapping_energy_j": float(default.total_energy_j),
        "fits": bool(m["fits"]),
    }


def _widths(bits) -> str:
    return " ".join(str(int(b)) for b in bits)


def design_row(kind: str, label: str, w, a, accuracy: float, proxy, cost_: dict, **extra):
    predicted = float(proxy_model.predict(proxy, np.asarray(w, float), np.asarray(a, float)))
    return {
        "kind": kind,
        "label": label,
        **extra,
        "w_bits_per_layer": _widths(w),
        "a_bits_per_layer": _widths(a),
        "mean_w_bits": float(np.mean(w)),
        "mean_a_bits": float(np.mean(a)),
        "accuracy": accuracy,
        "accuracy_proxy": predicted,
        "proxy_error": accuracy - predicted,
        **cost_,
    }


def uniform_rows(folder, space: Space, workload, proxy) -> list[dict]:
    """One row per uniform width; 16 bits twice, with the preset's and a wide accumulator."""
    base = space.base_config()
    jobs = [(b, float(base.acc_bits)) for b in UNIFORM_BITS]
    jobs.insert(1, (UNIFORM_BITS[0], float(WIDE_ACC_BITS)))
    rows = []
    for bits, acc_bits in tqdm(jobs, desc="uniform widths", file=sys.stderr, leave=False):
        config = dataclasses.replace(base, acc_bits=np.float64(acc_bits))
        w = np.full(workload.num_layers, bits)
        accuracy = acc_io.measure(folder, w, w, config=config)
        label = f"w{bits}a{bits}" + (f" acc{acc_bits:g}" if bits > 8 else "")
        c = cost(space, workload, w, w, acc_bits)
        rows.append(design_row("uniform", label, w, w, accuracy, proxy, c, acc_bits=acc_bits))
    return rows


def mixed_rows(folder, space: Space, workload, proxy, drops, settings, seed, top) -> list[dict]:
    """The gradient search per floor. Its ``top`` designs are executed in the search's order,
    at least ``top`` of them and on until one meets the floor: that one is ``chosen``."""
    acc_bits = float(space.base_config().acc_bits)
    measured: dict[tuple, float] = {}
    rows = []
    for drop in tqdm(drops, desc="accuracy floors", file=sys.stderr, leave=False):
        floor = float(proxy.float_accuracy) - drop / 100
        problem = Problem(space, workload, "energy", Budgets(min_accuracy=floor), proxy)
        result = search(problem, "gradient", seed=seed, settings=settings)
        found = False
        for rank, (design, _) in enumerate(result.top):
            if found and rank >= top:
                break
            w, a = design.w_bits.astype(int), design.a_bits.astype(int)
            key = (tuple(w), tuple(a))
            if key not in measured:
                measured[key] = acc_io.measure(folder, w, a)
            chosen = not found and measured[key] >= floor
            found |= chosen
            extra = {"acc_bits": acc_bits, "drop_pt": drop, "min_accuracy": floor, "rank": rank}
            c = cost(space, workload, w, a)
            label = f"-{drop:g}pt #{rank}"
            rows.append(
                design_row("mixed", label, w, a, measured[key], proxy, c, **extra, chosen=chosen)
            )
    return rows


def mark_front(rows: list[dict]) -> None:
    """``pareto``: on the front of measured accuracy (max) against energy (min)."""
    front = pareto.pareto_front(rows, ["energy_j", "accuracy"], feasible_only=False)
    ids = {id(r) for r in front}
    for r in rows:
        r["pareto"] = id(r) in ids


def figure(rows: list[dict], float_accuracy: float):
    fig, ax0 = new_figure(12.0, 4.6)
    fig.delaxes(ax0)
    axes = fig.subplots(1, 2)
    uniform = [r for r in rows if r["kind"] == "uniform"]
    mixed = [r for r in rows if r["kind"] == "mixed"]
    chosen = [r for r in mixed if r.get("chosen")]
    front = sorted((r for r in rows if r["pareto"]), key=lambda r: r["energy_j"])
    for ax, zoom in zip(axes, (False, True), strict=True):
        ax.scatter(*_xy(mixed), s=12, alpha=0.35, color="tab:blue", label="mixed (searched)")
        ax.scatter(*_xy(chosen), s=80, marker="*", color="tab:red", label="mixed, chosen")
        ax.scatter(*_xy(uniform), s=40, marker="s", color="tab:green", label="uniform")
        ax.step(*_xy(front), where="post", color="k", lw=1, label="Pareto front")
        shown = [r for r in uniform if not zoom or r["accuracy"] > float_accuracy - 0.07]
        for r in shown:
            ax.annotate(
                r["label"],
                (r["energy_j"], r["accuracy"]),
                fontsize=7,
                xytext=(4, -9),
                textcoords="offset points",
            )
        for r in chosen:
            ax.annotate(
                f"-{r['drop_pt']:g}pt",
                (r["energy_j"], r["accuracy"]),
                fontsize=7,
                xytext=(4, 4),
                textcoords="offset points",
                color="tab:red",
            )
        ax.axhline(float_accuracy, color="grey", lw=0.6, ls="--")
        ax.set(xscale="log", xlabel="energy per inference (J)", ylabel="measured accuracy")
        if zoom:
            ax.set_ylim(float_accuracy - 0.07, float_accuracy + 0.01)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_title(f"CNN on {PRESET}: all designs")
    axes[1].set_title("near the float accuracy")
    axes[0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def _xy(rows):
    return [r["energy_j"] for r in rows], [r["accuracy"] for r in rows]


def savings(rows: list[dict]) -> dict:
    """Per floor: the chosen mixed design against the cheapest uniform width (preset
    accumulator or wide) whose measured accuracy is at least the mixed design's."""
    uniform = [r for r in rows if r["kind"] == "uniform"]
    out = {}
    for r in (r for r in rows if r.get("chosen")):
        peers = [u for u in uniform if u["accuracy"] >= r["accuracy"]]
        ref = min(peers, key=lambda u: u["energy_j"]) if peers else None
        out[f"-{r['drop_pt']:g}pt"] = {
            "accuracy": r["accuracy"],
            "accuracy_proxy": r["accuracy_proxy"],
            "energy_j": r["energy_j"],
            "latency_s": r["latency_s"],
            "mean_w_bits": r["mean_w_bits"],
            "mean_a_bits": r["mean_a_bits"],
            "uniform_reference": ref and ref["label"],
            "uniform_energy_j": ref and ref["energy_j"],
            "energy_saving": ref and 1.0 - r["energy_j"] / ref["energy_j"],
        }
    return out


def error_stats(rows: list[dict]) -> dict:
    e = np.array([r["proxy_error"] for r in rows], float)
    if e.size == 0:
        return {"n": 0}
    return {
        "n": int(e.size),
        "mean": float(e.mean()),
        "rms": float(np.sqrt(np.mean(e**2))),
        "min": float(e.min()),
        "max": float(e.max()),
    }


def headline(rows: list[dict], info: dict, float_accuracy: float) -> dict:
    by_floor = savings(rows)
    known = [v for v in by_floor.values() if v["energy_saving"] is not None]
    best = max(known, key=lambda v: v["energy_saving"]) if known else None
    mixed = [r for r in rows if r["kind"] == "mixed"]
    return {
        "network": "cnn",
        "design": PRESET,
        "float_accuracy": float_accuracy,
        "fp32_accuracy": info["fp32_accuracy"],
        "uniform": {
            r["label"]: {k: r[k] for k in ("accuracy", "accuracy_proxy", "energy_j", "latency_s")}
            for r in rows
            if r["kind"] == "uniform"
        },
        "mixed_by_floor": by_floor,
        "best_mixed_energy_saving": best and best["energy_saving"],
        "best_mixed_vs": best and best["uniform_reference"],
        "proxy_error_mixed": error_stats(mixed),
        "proxy_error_chosen": error_stats([r for r in mixed if r.get("chosen")]),
        "proxy_error_uniform": {
            r["label"]: r["proxy_error"] for r in rows if r["kind"] == "uniform"
        },
        "designs_measured": len({(r["w_bits_per_layer"], r["a_bits_per_layer"]) for r in mixed}),
    }


def _model(quick: bool, out, seed: int):
    bar = tqdm(desc="train cnn", unit="epoch", file=sys.stderr, leave=False)
    with bar:
        _, _, folder = trained_model(
            "cnn", quick, out, seed, progress=lambda epoch, _m: bar.update(epoch - bar.n)
        )
    return folder


@x64
def main(argv=None) -> dict:
    args = parse_args(__doc__, argv)
    run = Run("exp_precision", args, argv)
    folder = _model(args.quick, run.out, args.seed)
    space = search_space()
    workload, proxy, info = acc_io.calibrate(folder, bits=calibration_bits(space))
    float_accuracy = float(proxy.float_accuracy)
    drops = QUICK_DROPS_PT if args.quick else DROPS_PT
    settings = QUICK_SETTINGS if args.quick else SETTINGS
    rows = uniform_rows(folder, space, workload, proxy)
    top = QUICK_MEASURED if args.quick else MEASURED
    rows += mixed_rows(folder, space, workload, proxy, drops, settings, args.seed, top)
    mark_front(rows)
    for r in rows:
        r["seed"] = args.seed
    run.csv("designs", rows)
    run.csv(
        "calibration",
        [
            {"layer": n, "kind": k, "sens_w": float(sw), "sens_a": float(sa), "seed": args.seed}
            for n, k, sw, sa in zip(
                workload.names, workload.kinds, proxy.sens_w, proxy.sens_a, strict=True
            )
        ],
    )
    run.figure("accuracy_energy", figure(rows, float_accuracy))
    return run.finish(headline(rows, info, float_accuracy))


if __name__ == "__main__":
    main()
