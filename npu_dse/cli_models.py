"""``npu-dse train`` and ``npu-dse evaluate``: small models trained, then run on simulated NPUs.

``train`` runs :func:`models.train.train_and_evaluate` (checkpointed every epoch, resumed when
the output folder already holds a run of the same config) with a progress bar on stderr.
``evaluate`` loads a checkpoint, quantizes the model post-training at the requested widths
(calibrated on 512 training samples), executes the test set bit-accurately on the design
(``hw.engine.run_model``) and reports accuracy beside the float accuracy, with the exact cost
of one inference (batch 1) on that design; for a ``charlm`` checkpoint it decodes validation
text token by token with the KV cache on the design and reports perplexity beside the float
model's, with the cost of one token (``npu_dse.evaluate_lm``).
"""

from __future__ import annotations

import argparse
import json
import math

from tqdm import tqdm

from hw.bounds import InputError
from models import configs
from npu_dse import cli_onnx
from npu_dse.evaluate import evaluate
from npu_dse.evaluate_lm import VAL_CHARS, checkpoint_model, evaluate_lm
from npu_dse.train import train, train_config


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


def run_train(args: argparse.Namespace) -> int:
    qat = tuple(args.qat) if args.qat else None
    cfg = train_config(args.model, args.quick, args.epochs, args.seed, qat)
    bar = tqdm(total=cfg.epochs, desc=f"train {cfg.model}", unit="epoch", leave=False, disable=None)
    with bar:

        def progress(epoch: int, metrics: dict) -> None:
            bar.n = epoch
            bar.set_postfix(test_acc=f"{metrics['test_accuracy']:.3f}")
            bar.refresh()

        final = train(cfg, args.out, progress=progress)
    if args.json:
        print(json.dumps(final | {"out": str(args.out)}, indent=2, allow_nan=False))
    elif cfg.model == "charlm":
        print(
            f"charlm: epoch {final['epoch']}, validation loss {final['test_loss']:.4f} nats/char "
            f"(perplexity {math.exp(final['test_loss']):.3f}), next-character accuracy "
            f"{final['test_accuracy']:.4f}; checkpoint and metrics in {args.out}"
        )
    else:
        print(
            f"{cfg.model}: epoch {final['epoch']}, test accuracy {final['test_accuracy']:.4f}, "
            f"test loss {final['test_loss']:.4f}; checkpoint and metrics in {args.out}"
        )
    return 0


def add_evaluate_args(p: argparse.ArgumentParser, add_design_args) -> None:
    p.add_argument("--checkpoint", metavar="DIR", help="a `npu-dse train` folder")
    cli_onnx.add_onnx_args(p)
    add_design_args(p)
    g = p.add_argument_group("character LM", "for a charlm checkpoint")
    g.add_argument(
        "--val-chars",
        type=int,
        default=VAL_CHARS,
        metavar="N",
        help=f"validation characters decoded (whole windows; default {VAL_CHARS})",
    )
    g.add_argument("--kv-bits", type=int, metavar="B", help="KV cache width (default: --a-bits)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run_evaluate(args: argparse.Namespace, design_from_args, design_label) -> int:
    design = design_from_args(args)
    if (args.onnx is None) == (args.checkpoint is None):
        raise InputError("give --checkpoint DIR or --onnx FILE (one of them)")
    if args.onnx is not None:
        return cli_onnx.run_evaluate_onnx(args, design, design_label(args))
    if checkpoint_model(args.checkpoint) == "charlm":
        return _run_evaluate_lm(args, design, design_label(args))
    if args.kv_bits is not None:
        raise InputError("--kv-bits applies to a charlm checkpoint (a KV cache) only")
    result = evaluate(args.checkpoint, design, design_label(args)).to_dict()
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


def _run_evaluate_lm(args: argparse.Namespace, design, label: str) -> int:
    r = evaluate_lm(
        args.checkpoint, design, label, val_chars=args.val_chars, kv_bits=args.kv_bits
    ).to_dict()
    if args.json:
        print(json.dumps(r, indent=2, allow_nan=False))
        return 0
    print(
        f"charlm on {r['design']} at w{r['w_bits']}/a{r['a_bits']}/kv{r['kv_bits']}: perplexity "
        f"{r['perplexity']:.4f} (float {r['float_perplexity']:.4f}), validation loss "
        f"{r['val_loss']:.4f} nats/char (float {r['float_val_loss']:.4f}; unigram entropy "
        f"{r['unigram_entropy']:.4f}) on {r['val_chars']} characters\nper token: "
        f"{r['time_per_token_s'] * 1e6:.3f} us ({r['tokens_per_s']:.4g} tokens/s), energy "
        f"{r['energy_per_token_j'] * 1e6:.4g} uJ, power {r['power_w']:.3g} W; area "
        f"{r['area_mm2']:.3g} mm^2"
    )
    return 0
