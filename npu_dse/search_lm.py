"""``search --checkpoint DIR`` for a trained character LM, under a perplexity budget.

The workload is the char LM's decode step as ``npu-dse evaluate`` costs it (batch 1, a full
window of ``context - 1`` characters cached), searched as an LLM step (``dse.llmstep``: one
width per operand class, ``kv_bits`` for the KV cache, weights and cache resident in SRAM
where they fit), for ``tokens_per_s``, ``energy_per_token`` or any objective.

Perplexity budget (``--max-perplexity P``). Inside the search the budget is an accuracy floor
on the geometric-mean probability of the right next character, ``1 / perplexity`` (in
``(0, 1]``, so ``perplexity <= P`` is ``1 / perplexity >= 1 / P``), predicted by the proxy of
``dse.accuracy``:

    1 / perplexity = 1 / ppl_ref - s_w 4^-w_bits - s_a 4^-a_bits

calibrated by execution (:func:`calibrate`): the char LM is decoded bit-accurately
(``npu_dse.evaluate_lm.perplexity``) with every width at ``REFERENCE_BITS`` (the KV cache at
``kv_bits`` when it is given, as every design runs it), then with the weights, or the
activations (and the cache, when it follows them), at each calibration width. The widths are
one per operand class, so each class's sensitivity sits on the step's first dense layer.
After the search the best designs by the proxy are decoded on their own hardware, best first,
until one meets the budget (:meth:`LMTarget.recheck`); the reported perplexity is that
execution's.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path

import numpy as np

from dse import Budgets, Problem, accuracy
from dse import design as dz
from dse.llmstep import LLMStep
from hw import layers
from hw.x64 import x64
from models import decoder, train
from npu_dse import evaluate_lm, llm, search_llm
from npu_dse.calibration import calibration_bits
from npu_dse.inputs import boundary

log = logging.getLogger(__name__)

REFERENCE_BITS = 12
"""Width of the operand classes not being measured in calibration: its rounding noise is
``4^-4`` of 8 bits', and 12-bit products summed over the char LM's reductions stay inside the
32-bit accumulator the calibration runs with (the widest ``hw.validate`` allows)."""

CALIBRATION_ACC_BITS = 32


@dataclasses.dataclass(frozen=True)
class LMTarget:
    """A char LM checkpoint's decode step, its KV width and perplexity budget."""

    checkpoint: str
    objective: str
    kv_bits: int | None = None  # None: the activations' width
    max_perplexity: float | None = None
    val_chars: int = evaluate_lm.VAL_CHARS  # validation characters each execution scores

    def to_dict(self) -> dict:
        return {
            "model": "charlm",
            "checkpoint": self.checkpoint,
            "phase": "decode",
            "batch": 1,
            "kv_bits": self.kv_bits,
            "max_perplexity": self.max_perplexity,
            "val_chars": self.val_chars,
        }

    def figures(self, problem: Problem, design: dz.Design, metrics: dict) -> dict:
        """One decode step's figures from the exact metrics of the best design (one token)."""
        latency, energy = float(metrics["latency_s"]), float(metrics["energy_j"])
        out = {"model": "charlm", "phase": "decode", "batch": 1}
        out |= search_llm.widths(design, self.kv_bits)
        return out | {
            "tokens_per_s": 1.0 / latency,
            "energy_per_token_j": energy,
            "time_per_output_token_s": latency,
            "latency_s": latency,
            "energy_j": energy,
        }

    @x64
    def perplexity(self, npu, w_bits: int, a_bits: int) -> float:
        kv = a_bits if self.kv_bits is None else self.kv_bits
        return evaluate_lm.perplexity(self.checkpoint, npu, w_bits, a_bits, kv, self.val_chars)

    def recheck(self, problem: Problem, result) -> tuple[float | None, str | None]:
        """Decode the best designs by the proxy (``result.top``) until one meets the budget;
        ``(perplexity, None)`` of the new best (``result.best`` replaced), else ``(None,
        line)``."""
        measured = []
        for design, metrics in result.top:
            config, _ = search_llm.hardware(problem, design)
            w, a = (int(max(x)) for x in (design.w_bits, design.a_bits))
            ppl = self.perplexity(config, w, a)
            measured.append(ppl)
            if ppl <= self.max_perplexity:
                result.best, result.best_metrics = design, metrics
                return ppl, None
        result.best = result.best_metrics = None
        return None, (
            f"no feasible design: the perplexity budget {self.max_perplexity:g} could not be "
            f"met; the {len(measured)} best designs by the proxy measure at least "
            f"{min(measured):.4g} when executed"
        )


def _workload(cfg):
    return layers.workload(decoder.decode(evaluate_lm.decoder_config(cfg), cfg.context - 1))


@boundary
@x64
def lm_problem(
    target: LMTarget, space: str | Path, budgets: Budgets, tech: str | Path | None = None
) -> tuple[Problem, str]:
    """The problem of the char LM's decode step over a space file's designs (module docs)."""
    cfg = train.read_config(target.checkpoint)
    if cfg.model != "charlm":
        raise ValueError(
            f"{target.checkpoint} holds a {cfg.model}: a perplexity budget needs a charlm "
            "checkpoint (npu-dse train --model charlm); a classifier takes --min-accuracy"
        )
    if budgets.min_accuracy is not None:
        raise ValueError("a charlm is measured by perplexity: use --max-perplexity")
    p = target.max_perplexity
    if p is not None and not (math.isfinite(p) and p > 1):
        raise ValueError(f"--max-perplexity must be a number above 1, got {p}")
    wl = _workload(cfg)
    request = llm.LLMRequest("charlm", context=cfg.context - 1, kv_bits=target.kv_bits)
    llm.check_request(request)
    dcfg = evaluate_lm.decoder_config(cfg)
    found = search_llm.llm_space(space, tech, request, dcfg, wl)
    step = LLMStep(tokens=1, kv_bits=target.kv_bits, resident=True)
    objective = search_llm.OBJECTIVES.get(target.objective, target.objective)
    proxy = None
    if p is not None:
        proxy = calibrate(target, found.base_config(), wl, calibration_bits(found))
        budgets = dataclasses.replace(budgets, min_accuracy=1.0 / p)
    problem = Problem(found, wl, objective, budgets.check(), proxy, llm=step)
    return problem, f"charlm {target.checkpoint} decode (context {cfg.context - 1}, batch 1)"


def calibrate(target: LMTarget, npu, workload, bits) -> accuracy.AccuracyModel:
    """The proxy of ``1 / perplexity`` (module docstring), measured on ``npu``."""
    ref = REFERENCE_BITS
    # The widest accumulator: the proxy measures rounding, not a design's overflow.
    npu = dataclasses.replace(npu, acc_bits=np.float64(CALIBRATION_ACC_BITS))
    reference = 1.0 / target.perplexity(npu, ref, ref)
    first = list(workload.kinds).index("dense")
    measured = {k: np.full((len(bits), workload.num_layers), np.nan) for k in "wa"}
    for i, b in enumerate(bits):
        measured["w"][i, first] = 1.0 / target.perplexity(npu, int(b), ref)
        measured["a"][i, first] = 1.0 / target.perplexity(npu, ref, int(b))
    log.info("perplexity proxy: reference %.4g, measured %s", 1 / reference, measured)
    return accuracy.fit(reference, bits, measured["w"], measured["a"])
