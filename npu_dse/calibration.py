"""Accuracy of per-layer bit widths by execution: the search's proxy calibrated, designs re-checked.

:func:`calibrate` fits ``dse.accuracy``'s sensitivities to a trained checkpoint: it executes the
quantized model (``hw.engine``) on the test digits with every width at ``REFERENCE_BITS`` (the
proxy's ``float_accuracy``), then once per layer and calibration width with only that layer's
weights, or only its output activations, narrowed, and fits ``dse.accuracy.fit`` to the
accuracies. :func:`measure` executes one design's per-layer widths on the whole test set, the
way ``npu-dse evaluate`` does for one width (same calibration samples, same engine path).

On the 2-core CPU, ``calibrate`` with ``bits=(8, 4)`` takes about 13 s for the digits CNN, quick
or full (4 weight and 5 activation layers: 19 quantized models, each compiled and run on the
359 test digits); ``measure`` about 0.3 s once the checkpoint is loaded.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from dse import accuracy
from hw import engine, graph, presets
from hw.types import NPUConfig, Workload
from hw.x64 import x64
from models import data, set_qat, train

CALIBRATION_SAMPLES = 512
"""Training samples that calibrate post-training quantization."""

logger = logging.getLogger(__name__)

REFERENCE_BITS = 16
"""Width of every layer not being measured: its rounding noise is ``4^-8`` of 8 bits'."""

CALIBRATION_ACC_BITS = 64
"""Accumulator of the calibration runs: no sum of 16-bit products overflows it, so the
accuracies measure rounding alone (a design's own accumulator is :func:`measure`'s concern)."""

DEFAULT_PRESET = "edge-tpu-like"


class _Run(NamedTuple):
    """A loaded checkpoint: its graph, data and the activation ranges QAT learned."""

    model: tuple
    learned: dict
    calib_x: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    fp32_accuracy: float


def _stamp(checkpoint_dir) -> tuple[str, int]:
    path = Path(checkpoint_dir).resolve()
    ckpt = path / train.CHECKPOINT
    return str(path), ckpt.stat().st_mtime_ns if ckpt.exists() else 0


@functools.lru_cache(maxsize=4)
def _load(checkpoint_dir: str, mtime_ns: int) -> _Run:
    """The checkpoint (cached per folder and checkpoint time, so a retrained run reloads)."""
    model, cfg = train.load_checkpoint(checkpoint_dir)
    if cfg.model not in ("cnn", "transformer"):
        raise ValueError(
            f"{checkpoint_dir} holds a {cfg.model}: an accuracy model is calibrated on a cnn or "
            "transformer checkpoint (a charlm takes a perplexity budget: --max-perplexity)"
        )
    ds = data.load(cfg.model)
    set_qat(model, False)
    fp32 = train.evaluate(model, ds.x_test, ds.y_test)["accuracy"]
    calib_x = np.asarray(ds.x_train[:CALIBRATION_SAMPLES], np.float32)
    learned = model.activation_qparams()
    return _Run(model.to_graph(), learned, calib_x, ds.x_test, ds.y_test, float(fp32))


def _quantize(run: _Run, w_bits: dict, a_bits: dict) -> engine.QuantizedModel:
    """``models.train.ptq`` per layer: QAT ranges kept where their width is the tensor's."""
    widths = engine.activation_widths(run.model, run.x_test.shape, a_bits)
    learned = {k: qp for k, qp in run.learned.items() if widths.get(k) == qp.bits}
    return engine.quantize_model(
        run.model, run.calib_x, w_bits=w_bits, a_bits=a_bits, act_qparams=learned
    )


def _accuracy(run: _Run, qm: engine.QuantizedModel, config: NPUConfig, idx) -> float:
    """Top-1 accuracy of ``qm`` executed on ``config`` over the test samples ``idx``."""
    config = dataclasses.replace(config, w_bits=np.float64(qm.w_bits), a_bits=np.float64(qm.a_bits))
    x = run.x_test[idx]
    forward, _, _ = engine.compile_model(qm, x.shape, config)
    logits = np.asarray(forward(x))
    return float(np.mean(np.argmax(logits, axis=-1) == run.y_test[idx]))


def _per_layer(field: str, bits, names: tuple[str, ...]) -> dict:
    """``{layer: width}`` from one width or a sequence aligned with ``names``."""
    values = np.broadcast_to(bits, (len(names),)) if np.ndim(bits) == 0 else np.asarray(bits)
    if values.shape != (len(names),) or not np.all(values == np.round(values)):
        raise ValueError(
            f"{field} must be an integer or {len(names)} integers (one per layer {names}), "
            f"got {np.asarray(bits).tolist()}"
        )
    return {n: int(b) for n, b in zip(names, values, strict=True)}


@x64
def measure(
    checkpoint_dir: str | os.PathLike,
    w_bits_per_layer,
    a_bits_per_layer,
    config: NPUConfig | None = None,
) -> float:
    """Test accuracy of the checkpoint's model quantized to per-layer widths, by execution.

    The widths are integers, one per layer of the model's workload (``hw.graph.workload``
    order) or one for all. The model is quantized as ``npu-dse evaluate`` does
    (``CALIBRATION_SAMPLES`` training digits) and executed bit-accurately on ``config``
    (default ``DEFAULT_PRESET``; its multipliers are set to the widest widths), over the whole
    test set. Uniform widths give exactly ``npu-dse evaluate``'s accuracy.
    """
    run = _load(*_stamp(checkpoint_dir))
    names = graph.workload(run.model, run.x_test.shape).names
    w = _per_layer("w_bits_per_layer", w_bits_per_layer, names)
    a = _per_layer("a_bits_per_layer", a_bits_per_layer, names)
    config = presets.get_preset(DEFAULT_PRESET) if config is None else config
    return _accuracy(run, _quantize(run, w, a), config, slice(None))


@x64
def calibrate(
    checkpoint_dir: str | os.PathLike,
    workload_names: tuple[str, ...] | None = None,
    bits: tuple[int, ...] = (8, 4),
    *,
    samples: int | None = None,
    seed: int = 0,
    preset: str = DEFAULT_PRESET,
) -> tuple[Workload, accuracy.AccuracyModel, dict]:
    """``(workload, proxy, info)`` of a trained checkpoint.

    ``workload`` is ``hw.graph.workload`` of the model for one sample (batch 1), the layers
    the proxy's arrays follow; ``workload_names``, when given, must be its layer names (a
    check that the proxy fits the workload a search already has). Each layer whose weight
    (activation) width changes the model (``hw.engine.layers_with_widths``) is measured at
    each of ``bits`` with every other width at ``REFERENCE_BITS``, executed on ``preset``
    with a ``CALIBRATION_ACC_BITS`` accumulator over ``samples`` test digits (all when
    ``None``; else a subset drawn with ``seed``). ``info`` holds the measurements, the seed and
    the time taken.
    """
    t0 = time.perf_counter()
    run = _load(*_stamp(checkpoint_dir))
    wl = graph.workload(run.model, (1, *run.x_test.shape[1:]))
    if workload_names is not None and tuple(workload_names) != wl.names:
        raise ValueError(f"workload_names {tuple(workload_names)} are not the model's {wl.names}")
    n_test = len(run.y_test)
    if samples is not None and not 1 <= samples <= n_test:
        raise ValueError(f"samples must be in 1..{n_test}, got {samples}")
    idx = slice(None)
    if samples is not None:
        idx = np.sort(np.random.default_rng(seed).choice(n_test, samples, replace=False))
    config = dataclasses.replace(
        presets.get_preset(preset), acc_bits=np.float64(CALIBRATION_ACC_BITS)
    )
    reference = dict.fromkeys(wl.names, REFERENCE_BITS)
    ref_acc = _accuracy(run, _quantize(run, reference, reference), config, idx)
    layers = dict(zip("wa", engine.layers_with_widths(run.model, run.x_test.shape), strict=True))
    measured = {kind: np.full((len(bits), wl.num_layers), np.nan) for kind in "wa"}
    for i, b in enumerate(bits):
        for kind in "wa":
            for name in layers[kind]:
                narrow = reference | {name: int(b)}
                w, a = (narrow, reference) if kind == "w" else (reference, narrow)
                acc = _accuracy(run, _quantize(run, w, a), config, idx)
                measured[kind][i, wl.names.index(name)] = acc
                logger.info("%s_bits[%s] = %d: accuracy %.4f", kind, name, b, acc)
    proxy = accuracy.fit(ref_acc, bits, measured["w"], measured["a"])
    info = {
        "seed": seed,
        "samples": n_test if samples is None else samples,
        "bits": tuple(int(b) for b in bits),
        "reference_bits": REFERENCE_BITS,
        "reference_accuracy": ref_acc,
        "fp32_accuracy": run.fp32_accuracy,
        "accuracy_w": measured["w"],
        "accuracy_a": measured["a"],
        "calibration_time_s": time.perf_counter() - t0,
    }
    return wl, proxy, info


def calibration_bits(space) -> tuple[int, ...]:
    """Widths the accuracy proxy is calibrated at: the two narrowest of the space (the proxy
    must be right where it is most optimistic), and 8 when the space is all wider."""
    widths = sorted({int(b) for b in (*space.w_bits, *space.a_bits) if b < 16})
    return tuple(widths[:2]) or (8,)


@x64
def recheck_accuracy(checkpoint, problem, result) -> tuple[float | None, str | None]:
    """Execute the best designs (by the proxy) until one meets ``--min-accuracy``.

    Returns the measured accuracy of the new best (``result.best`` and ``best_metrics`` are
    replaced by it), or ``(None, line)`` when none of the kept designs passes.
    """
    floor = problem.budgets.min_accuracy
    measured = []
    for design, metrics in result.top:
        acc = measure(checkpoint, design.w_bits.astype(int), design.a_bits.astype(int))
        measured.append(acc)
        if floor is None or acc >= floor:
            result.best, result.best_metrics = design, metrics
            return acc, None
    result.best = result.best_metrics = None
    line = (
        f"no feasible design: the accuracy budget {floor} could not be met; the "
        f"{len(measured)} best designs by the proxy measure at most {max(measured):.4f} when "
        "executed"
    )
    return None, line
