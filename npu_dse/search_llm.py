"""The ``search`` use case for a zoo decoder: one prefill or decode step as the workload.

``npu-dse search gpt2 --phase decode --context 1024 --space FILE --objective tokens_per_s``
searches the designs of a space for one step of a decoder of ``models.decoder.ZOO``
(:func:`llm_problem`). The step is ``npu_dse.llm.llm_workload``; what depends on the design
(the operand-class widths and which weights and KV cache stay in SRAM across tokens) is
applied inside the search's cost model by ``dse.llmstep``, exactly for every evaluated design
and smoothly for the gradient.

Objectives. ``tokens_per_s`` is ``tokens / step latency`` and ``energy_per_token`` is
``step energy / tokens``; at a fixed batch (and prompt) the tokens of a step are fixed, so
they are the ``latency`` and ``energy`` objectives of the step, reported converted.

Widths. The space's ``w_bits`` and ``a_bits`` are the weights' and activations' widths (one
each for the network: ``per_layer_bits`` is off, and a space that asks for it is refused);
the KV cache is at ``kv_bits`` (``None``: the activations'). Widths whose weights and KV cache
do not fit the base design's DRAM (``dram_capacity_gib``, not searched) are dropped from the
space; a space left with a width pair that does not fit, or with none, is refused in one line.

The best design's figures (:func:`llm_figures`) are those of ``npu_dse.llm.simulate_llm`` on
the searched design file, which ``npu-dse simulate MODEL --design best.json`` reproduces.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from pathlib import Path

from dse import Budgets, Problem
from dse import design as dz
from dse.llmstep import LLMStep, apply
from hw import bounds
from hw.x64 import x64
from models import decoder
from npu_dse import llm
from npu_dse.designs import design_from_dict, design_to_dict
from npu_dse.inputs import boundary
from npu_dse.rundir import read_json
from npu_dse.spaces import load_space, with_tech

log = logging.getLogger(__name__)

OBJECTIVES = {"tokens_per_s": "latency", "energy_per_token": "energy"}
"""The LLM objectives and the objective of the step each is (at a fixed token count)."""


@dataclasses.dataclass(frozen=True)
class LLMTarget:
    """What an LLM search was asked for: the step and the objective as the user named it."""

    request: llm.LLMRequest
    objective: str

    def figures(self, problem: Problem, design: dz.Design, metrics: dict) -> dict:
        """The best design's figures (:func:`llm_figures`; ``metrics`` are not needed)."""
        return llm_figures(problem, design, self)

    def to_dict(self) -> dict:
        """The step searched for, as the JSON result states it."""
        r = self.request
        size = ("prompt", r.prompt) if r.phase == "prefill" else ("context", r.context)
        return {
            "model": r.model,
            "phase": r.phase,
            size[0]: size[1],
            "batch": r.batch,
            "kv_bits": r.kv_bits,
        }


@boundary
@x64
def llm_problem(
    target: LLMTarget,
    space: str | Path,
    budgets: Budgets,
    tech: str | Path | None = None,
) -> tuple[Problem, str]:
    """The problem of one step of ``target.request`` over the designs of a space file (see
    the module docstring); returns it with a label of the step for tables."""
    r = target.request
    llm.check_request(r)
    if (r.w_bits, r.a_bits, r.w_format, r.a_format, r.kv_format) != (None,) * 5:
        raise ValueError("an LLM search takes its weights' and activations' widths from the space")
    workload = llm.llm_workload(r)
    found = llm_space(space, tech, r, decoder.get_decoder(r.model), workload)
    objective = OBJECTIVES.get(target.objective, target.objective)
    step = LLMStep(tokens=_tokens(r), kv_bits=r.kv_bits, resident=r.phase == "decode")
    problem = Problem(found, workload, objective, budgets.check(), llm=step)
    sizes = f"prompt {r.prompt}" if r.phase == "prefill" else f"context {r.context}"
    return problem, f"{decoder.get_decoder(r.model).name} {r.phase} ({sizes}, batch {r.batch})"


def _tokens(r: llm.LLMRequest) -> int:
    return r.batch * (r.prompt if r.phase == "prefill" else 1)


def llm_space(space: str | Path, tech, r: llm.LLMRequest, cfg: decoder.DecoderConfig, workload):
    """The space file's space for a decoder step: one width per operand class (a space that
    asks for per-layer widths is refused), without widths whose weights and KV cache cannot
    fit the base design's DRAM."""
    spec = read_json(Path(space), "design space file")
    if isinstance(spec, dict) and spec.get("per_layer_bits") is True:
        raise ValueError(
            f"{Path(space).name}: an LLM's widths are per operand class (weights, activations, "
            '--kv-bits), not per layer: set "per_layer_bits": false'
        )
    found = dataclasses.replace(with_tech(load_space(space), tech), per_layer_bits=False)
    found = _fitting_widths(found, r, cfg)
    bounds.check_work(workload, max(found.rows), max(found.cols))
    return found


def _fitting_widths(space, r: llm.LLMRequest, cfg: decoder.DecoderConfig):
    """``space`` without the weight and activation widths whose weights and KV cache cannot
    fit the base design's DRAM (every remaining pair must fit)."""
    base = space.base_config()

    def error(w, a):
        kv = a if r.kv_bits is None else r.kv_bits
        weights, cache = llm.footprint_bytes(r, cfg, w, kv)
        return llm.fit_error(cfg.name, base, weights, cache, w, kv)

    w_ok = tuple(w for w in space.w_bits if error(w, space.a_bits[0]) is None)
    a_ok = tuple(a for a in space.a_bits if error(space.w_bits[0], a) is None)
    if not w_ok or not a_ok:
        raise ValueError(error(space.w_bits[0], space.a_bits[0]))
    for w, a in itertools.product(w_ok, a_ok):
        if error(w, a) is not None:
            raise ValueError(
                f"{error(w, a)} (w_bits {w:g} with a_bits {a:g}: narrow the space's widths)"
            )
    if (w_ok, a_ok) != (space.w_bits, space.a_bits):
        log.info("widths that do not fit the DRAM are left out: w %s, a %s", w_ok, a_ok)
    return dataclasses.replace(space, w_bits=w_ok, a_bits=a_ok)


def hardware(problem: Problem, design: dz.Design):
    """``(config, layer_bits)`` of a searched design of an LLM step: multipliers as wide as
    the widest right operand, every layer's widths by operand class."""
    config = dz.to_config(problem.base, design, problem.workload)
    config, _, bits = apply(config, problem.workload, design.w_bits, design.a_bits, problem.llm)
    return config, bits


@x64
def design_file(problem: Problem, design: dz.Design) -> dict:
    """A searched design of an LLM step as a design file: its hardware (multipliers as wide
    as the widest right operand) and every layer's mapping. The widths are the step's
    (``simulate MODEL --w-bits --a-bits --kv-bits``), not the file's: the KV cache's
    ``kv_store`` writes may be wider than the multipliers' activations."""
    config, _ = hardware(problem, design)
    config = dataclasses.replace(config, name=f"searched-{problem.space.base}")
    return design_to_dict(config, problem.workload, design.mapping)


@x64
def describe(problem: Problem, design: dz.Design) -> dict:
    """``dse.describe`` of a searched design of an LLM step, with the multipliers' and every
    layer's widths as the step runs them."""
    out = dz.describe(problem.space, design, problem.workload)
    config, bits = hardware(problem, design)
    out["hardware"] |= {"w_bits": int(config.w_bits), "a_bits": int(config.a_bits)}
    for i, layer in enumerate(out["layers"]):
        layer |= {"w_bits": int(bits.w_bits[i]), "a_bits": int(bits.a_bits[i])}
    return out


def widths(design: dz.Design, kv_bits: int | None) -> dict:
    """The searched design's widths of the weights, activations and KV cache."""
    w, a = float(max(design.w_bits)), float(max(design.a_bits))
    kv = a if kv_bits is None else float(kv_bits)
    return {"w_bits": w, "a_bits": a, "kv_bits": kv}


@x64
def llm_figures(problem: Problem, design: dz.Design, target: LLMTarget) -> dict:
    """The step's figures on the searched design, from ``npu_dse.llm.simulate_llm`` (the
    exact model, as ``simulate`` prints them)."""
    bits = widths(design, target.request.kv_bits)
    request = dataclasses.replace(target.request, **{k: int(v) for k, v in bits.items()})
    run = llm.simulate_llm(request, design_from_dict(design_file(problem, design))).to_dict()
    keep = (
        "tokens_per_s",
        "energy_per_token_j",
        "time_per_output_token_s",
        "time_to_first_token_s",
        "dram_bytes_per_token",
        "dram_bound_tokens_per_s",
        "limited_by",
        "resident",
        "fits_in_dram",
        "memory",
        "latency_s",
        "energy_j",
    )
    out = {"model": run["model"], "phase": run["phase"], "batch": run["batch"], **bits}
    size = "prompt" if run["phase"] == "prefill" else "context"
    out[size] = run[size]
    return out | {k: run[k] for k in keep if k in run}
