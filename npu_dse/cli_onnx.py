"""``npu-dse evaluate --onnx``: an ONNX model with weights executed on a design."""

from __future__ import annotations

import argparse
import json

from hw.bounds import InputError
from npu_dse.evaluate_onnx import evaluate_onnx, read_array


def add_onnx_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--onnx", metavar="FILE", help="an ONNX model with weights, instead of DIR")
    p.add_argument(
        "--inputs", metavar="FILE", help="--onnx: the input batch, .npy or .npz (the input's name)"
    )
    p.add_argument("--labels", metavar="FILE", help="--onnx: class labels (.npy/.npz) for accuracy")


def run_evaluate_onnx(args: argparse.Namespace, design, label: str) -> int:
    if args.inputs is None:
        raise InputError("--onnx needs --inputs FILE (.npy or .npz) holding the input batch")
    x = read_array(args.inputs, "--inputs", key="x")
    labels = None if args.labels is None else read_array(args.labels, "--labels")
    r = evaluate_onnx(args.onnx, x, design, labels=labels, label=label).to_dict()
    if args.json:
        print(json.dumps(r, indent=2, allow_nan=False))
        return 0
    acc = ""
    if r["accuracy"] is not None:
        acc = f"accuracy {r['accuracy']:.4f} (float {r['float_accuracy']:.4f}), "
    print(
        f"{r['model']} on {r['design']} at w{r['w_bits']}/a{r['a_bits']}, {r['samples']} inputs: "
        f"{acc}top-1 agreement with float {r['top1_agreement']:.4f}, relative error "
        f"{r['relative_error']:.3g}\nper inference: latency {r['latency_s'] * 1e6:.2f} us, "
        f"energy {r['energy_j'] * 1e6:.3f} uJ, power {r['power_w']:.3g} W; area "
        f"{r['area_mm2']:.3g} mm^2"
    )
    return 0
