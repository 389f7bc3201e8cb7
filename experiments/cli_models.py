"""``npu-dse train`` and ``npu-dse evaluate``: small models trained, then run on simulated NPUs.

``train`` runs :func:`models.train.train_and_evaluate` (checkpointed every epoch, resumed when
the output folder already holds a run of the same config) with a progress bar on stderr.
``evaluate`` loads a checkpoint, quantizes the model post-training at the requested widths
(calibrated on 512 training samples), executes the test set bit-accurately on the design
(``hw.engine.run_model``) and reports accuracy beside the float accuracy, with the exact cost
of one inference (batch 1) on that design.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import numpy as np
from tqdm import tqdm

from hw import cost, graph, run_model
from models import configs, data, set_qat, train

CALIBRATION_SAMPLES = 512


def add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", choices=configs.MODELS, required=True, help="which model to train")
    p.add_argument("--out", required=True, metavar="DIR", help="run folder (resumed if present)")
    p.add_argument("--quick", action="store_true", help="a small model for a few epochs")
    p.add_argument("--epochs", type=int, metavar="N", help="total epochs (float + QAT)")
    p.add_argument("--seed", type=int, metavar="S", help="initialisation and data-order seed")
    p.add_argument(
        "--qat",
        nargs=2,
        type=int,
        metavar=("W_BITS", "A_BITS"),
        help="quantization-aware fine-tuning at these widths after the float epochs",
    )
    p.add_argument("--json", action="store_true", help="print the final metrics as JSON")


def train_config(args: argparse.Namespace) -> configs.TrainConfig:
    """The config the flags ask for: the model's default (or quick) config, overridden."""
    make = configs.cnn_config if args.model == "cnn" else configs.transformer_config
    cfg = make(quick=args.quick, qat_bits=tuple(args.qat) if args.qat else None)
    changes = {k: v for k, v in (("epochs", args.epochs), ("seed", args.seed)) if v is not None}
    return dataclasses.replace(cfg, **changes) if changes else cfg


def run_train(args: argparse.Namespace) -> int:
    cfg = train_config(args)
    bar = tqdm(total=cfg.epochs, desc=f"train {cfg.model}", unit="epoch", leave=False, disable=None)
    with bar:

        def progress(epoch: int, metrics: dict) -> None:
            bar.n = epoch
            bar.set_postfix(test_acc=f"{metrics['test_accuracy']:.3f}")
            bar.refresh()

        final = train.train_and_evaluate(cfg, args.out, progress=progress)
    if args.json:
        print(json.dumps(final | {"out": str(args.out)}, indent=2, allow_nan=False))
    else:
        print(
            f"{cfg.model}: epoch {final['epoch']}, test accuracy {final['test_accuracy']:.4f}, "
            f"test loss {final['test_loss']:.4f}; checkpoint and metrics in {args.out}"
        )
    return 0


def add_evaluate_args(p: argparse.ArgumentParser, add_design_args) -> None:
    p.add_argument("--checkpoint", required=True, metavar="DIR", help="a `npu-dse train` folder")
    add_design_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")


def evaluate_on_npu(model, cfg: configs.TrainConfig, npu, design: str) -> dict:
    """Float and bit-accurate accuracy on the test set, and the cost of one inference."""
    ds = data.load(cfg.model)
    set_qat(model, False)
    float_acc = train.evaluate(model, ds.x_test, ds.y_test)["accuracy"]
    qm = train.ptq(model, ds.x_train[:CALIBRATION_SAMPLES], int(npu.w_bits), int(npu.a_bits))
    logits, _ = run_model(qm, ds.x_test, npu)
    acc = float(np.mean(np.argmax(np.asarray(logits), -1) == ds.y_test))
    one = cost.evaluate(npu, graph.workload(qm.model, (1, *ds.x_test.shape[1:])))
    latency, energy = float(one.total_latency_s), float(one.total_energy_j)
    macs = float(np.sum(one.macs))
    return {
        "model": cfg.model,
        "design": design,
        "w_bits": int(npu.w_bits),
        "a_bits": int(npu.a_bits),
        "test_samples": int(len(ds.y_test)),
        "accuracy": acc,
        "float_accuracy": float(float_acc),
        "latency_s": latency,
        "energy_j": energy,
        "power_w": energy / latency,
        "tops_per_w": 2 * macs / energy / 1e12,
        "area_mm2": float(one.area_mm2),
        "macs": int(macs),
    }


def run_evaluate(args: argparse.Namespace, design_from_args) -> int:
    model, cfg = train.load_checkpoint(args.checkpoint)
    npu = design_from_args(args)
    result = evaluate_on_npu(model, cfg, npu, design=args.preset or npu.name)
    if args.json:
        print(json.dumps(result, indent=2, allow_nan=False))
        return 0
    r = result
    print(
        f"{r['model']} on {r['design']} at w{r['w_bits']}/a{r['a_bits']}: accuracy "
        f"{r['accuracy']:.4f} (float {r['float_accuracy']:.4f}) on {r['test_samples']} test "
        f"samples\nper inference: latency {r['latency_s'] * 1e6:.2f} us, energy "
        f"{r['energy_j'] * 1e6:.3f} uJ, power {r['power_w']:.3g} W, {r['tops_per_w']:.3g} "
        f"TOPS/W; area {r['area_mm2']:.3g} mm^2"
    )
    return 0
