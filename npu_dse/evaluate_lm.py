"""The ``evaluate`` use case for the character LM: perplexity by execution, cost per token.

:func:`evaluate_lm` loads a ``charlm`` checkpoint and

* scores ``val_chars`` characters of the validation plays (rounded up to whole windows of
  the model's ``context``, spread evenly over the text; each read from its start) with the float
  model: ``float_val_loss`` (nats per character) and ``float_perplexity = exp(loss)``;
* quantizes the model post-training at the design's widths (weights ``w_bits``, activations
  ``a_bits``, the KV cache ``kv_bits``, default ``a_bits``; calibrated on
  ``CALIBRATION_WINDOWS`` training windows) and decodes the same windows token by token with
  the KV cache on the design (``hw.kv_decode.run_decode``: attention, softmax, norms and the
  cache at their widths): ``val_loss`` and ``perplexity``;
* simulates one decode step of the model on the design with the exact cost model: the
  step with a full window in the cache (``context - 1`` cached characters), batch 1, as
  ``npu_dse.llm`` runs the zoo decoders (weights and cache resident in SRAM where they fit):
  ``time_per_token_s``, ``tokens_per_s``, ``energy_per_token_j``.

The embedding is a lookup of two table rows and an add (``models.charlm``), costed as the
vector unit's ``embed`` layer and not executed on the array; its float sum is quantized at
the input's width.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import jax
import numpy as np

from hw import checks, cost, engine, layers
from hw.kv_decode import kv_widths, run_decode
from hw.types import NPUConfig
from hw.validate import validate_config
from hw.x64 import x64
from models import decoder, text, train
from npu_dse import llm
from npu_dse.designs import DesignFile
from npu_dse.inputs import boundary

VAL_CHARS = 512
"""Validation characters scored by default: a few seconds of decoding on the 2-core CPU."""

CALIBRATION_WINDOWS = 64
"""Training windows (random offsets, seed 0) that calibrate post-training quantization."""


@dataclasses.dataclass(frozen=True)
class LMEvaluation:
    """Perplexity by execution beside the float model's, and the cost of one token."""

    design: str
    w_bits: int
    a_bits: int
    kv_bits: int
    context: int  # the model's window, characters
    val_chars: int  # validation characters scored
    val_loss: float  # nats per character, decoded on the design
    float_val_loss: float  # the float model's
    unigram_entropy: float  # nats per character of the training text's character frequencies
    decode: dict  # one decode step's exact cost (see the module docstring)

    def to_dict(self) -> dict:
        """The JSON object of ``npu-dse evaluate --json`` for a ``charlm`` checkpoint."""
        out = {"model": "charlm"} | dataclasses.asdict(self)
        out.pop("decode")
        out |= {
            "perplexity": math.exp(self.val_loss),
            "float_perplexity": math.exp(self.float_val_loss),
        }
        return out | self.decode


def _cross_entropy(logits, targets) -> float:
    """Mean ``-log softmax(logits)[target]`` in float64, nats."""
    z = np.asarray(logits, np.float64)
    z = z - z.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    return float(-np.take_along_axis(logp, targets[..., None], -1).mean())


def decoder_config(cfg) -> decoder.DecoderConfig:
    """The char LM's shape as a ``models.decoder`` configuration (for its decode workload)."""
    return decoder.DecoderConfig(
        "charlm",
        cfg.blocks,
        cfg.d_model,
        cfg.heads,
        cfg.heads,
        cfg.d_model // cfg.heads,
        cfg.mlp_ratio * cfg.d_model,
        len(cfg.vocab),
        "layernorm",
        "gelu",
        positions=cfg.context,
        bias=True,
        max_context=cfg.context,
        source="models.charlm (trained here)",
    )


@x64
def decode_cost(cfg, config: NPUConfig, w_bits: int, a_bits: int, kv_bits: int) -> dict:
    """The exact cost of one decode step (batch 1, ``context - 1`` characters cached)."""
    wl = layers.workload(decoder.decode(decoder_config(cfg), cfg.context - 1))
    bits = llm.operand_bits(wl, w_bits, a_bits, kv_bits)
    wl, res_w, res_kv = llm.with_residency(wl, bits, llm.resident_bytes(config))
    mapping = cost.default_mapping(config, wl, bits)
    rep = cost.evaluate(config, wl, mapping, layer_bits=bits)
    error = checks.fit_error(config, wl, rep.fits)
    if error is not None:
        raise ValueError(error)
    latency, energy = float(rep.total_latency_s), float(rep.total_energy_j)
    return {
        "time_per_token_s": latency,
        "tokens_per_s": 1.0 / latency,
        "energy_per_token_j": energy,
        "power_w": energy / latency,
        "area_mm2": float(rep.area_mm2),
        "macs_per_token": int(np.sum(rep.macs)),
        "resident": {"weights": res_w, "kv_cache": res_kv},
    }


@boundary
def checkpoint_model(checkpoint: str | Path) -> str:
    """The model kind of a ``npu-dse train`` folder (one-line error if it holds none)."""
    return train.read_config(checkpoint).model


def _check(val_chars: int, kv_bits) -> None:
    if isinstance(val_chars, bool) or not isinstance(val_chars, int) or val_chars < 1:
        raise ValueError(f"val_chars must be an integer >= 1, got {val_chars!r}")
    if kv_bits is not None and (
        isinstance(kv_bits, bool) or not isinstance(kv_bits, int) or not 2 <= kv_bits <= 16
    ):
        raise ValueError(f"kv_bits must be an integer in 2..16, got {kv_bits!r}")


def quantize_lm(model, cfg, w_bits: int, a_bits: int, kv_bits: int):
    """The post-training quantized blocks and head (``hw.ptq``), calibrated on
    ``CALIBRATION_WINDOWS`` training windows, keys and values at ``kv_bits``."""
    key = jax.random.key(0)
    ids = text.random_windows(text.train_ids(cfg.vocab), cfg.context, CALIBRATION_WINDOWS, key)
    calib = np.asarray(model.embed(ids[:, :-1]), np.float32)
    nodes = model.to_graph()
    return engine.quantize_model(
        nodes, calib, w_bits=w_bits, a_bits=kv_widths(nodes, a_bits, kv_bits)
    )


def _windows(cfg, val_chars: int) -> np.ndarray:
    """The validation windows that score ``val_chars`` characters (module docstring)."""
    val = text.val_ids(cfg.vocab)
    most = len(val) // (cfg.context + 1) * cfg.context
    if val_chars > most:
        raise ValueError(f"val_chars must be at most {most} (the validation text), got {val_chars}")
    return text.spread_windows(val, cfg.context, -(-val_chars // cfg.context))


def _quantized_loss(model, cfg, windows, npu: NPUConfig, w: int, a: int, kv: int):
    """``(val_loss, config)``: nats per character of the windows decoded on ``npu`` at the
    widths, and the design with its multipliers as the quantized model needs them."""
    x, y = windows[:, :-1], windows[:, 1:]
    qm = quantize_lm(model, cfg, w, a, kv)
    config = validate_config(
        dataclasses.replace(npu, w_bits=np.float64(qm.w_bits), a_bits=np.float64(qm.a_bits))
    )
    logits = run_decode(qm, np.asarray(model.embed(x), np.float32), config)
    return _cross_entropy(logits, y), config


@x64
def perplexity(
    checkpoint: str | Path, npu: NPUConfig, w_bits: int, a_bits: int, kv_bits: int, val_chars: int
) -> float:
    """``exp(val_loss)`` of the checkpoint's char LM decoded on ``npu`` at the widths, as
    :func:`evaluate_lm` measures it (same windows, same quantization)."""
    _check(val_chars, kv_bits)
    model, cfg = train.load_checkpoint(checkpoint)
    loss, _ = _quantized_loss(model, cfg, _windows(cfg, val_chars), npu, w_bits, a_bits, kv_bits)
    return math.exp(loss)


@boundary
@x64
def evaluate_lm(
    checkpoint: str | Path,
    design: DesignFile,
    label: str = "",
    *,
    val_chars: int = VAL_CHARS,
    kv_bits: int | None = None,
) -> LMEvaluation:
    """Execute the checkpoint's char LM on ``design`` (see the module docstring)."""
    _check(val_chars, kv_bits)
    model, cfg = train.load_checkpoint(checkpoint)
    if cfg.model != "charlm":
        raise ValueError(f"{checkpoint} holds a {cfg.model}, not a charlm")
    npu = design.config
    w, a = int(npu.w_bits), int(npu.a_bits)
    kv = a if kv_bits is None else kv_bits
    windows = _windows(cfg, val_chars)
    x, y = windows[:, :-1], windows[:, 1:]
    float_loss = _cross_entropy(model(x), y)
    val_loss, config = _quantized_loss(model, cfg, windows, npu, w, a, kv)
    train_ids = text.train_ids(cfg.vocab)
    return LMEvaluation(
        design=label or npu.name,
        w_bits=w,
        a_bits=a,
        kv_bits=kv,
        context=cfg.context,
        val_chars=int(y.size),
        val_loss=val_loss,
        float_val_loss=float_loss,
        unigram_entropy=text.unigram_entropy_nats(train_ids, len(cfg.vocab)),
        decode=decode_cost(cfg, config, w, a, kv),
    )
