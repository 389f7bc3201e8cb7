"""``npu-dse simulate MODEL --phase prefill|decode``: a zoo decoder in place of a topology.

``simulate`` hands over here when its TOPOLOGY names a decoder of ``models.decoder.ZOO``
(``gpt2``, ``llama_3_2_1b``, ``llama_2_7b``, ``mistral_7b``; hyphens accepted). The design
flags are ``simulate``'s: ``--w-bits`` is the weights' width, ``--a-bits`` the activations',
and ``--kv-bits`` the KV cache's (default: the activations'). The device DRAM is the design's
``dram_capacity_gib`` (``--dram-capacity-gib``); a model that does not fit it is refused.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from models import decoder
from npu_dse import report
from npu_dse.designs import DesignFile
from npu_dse.llm import PHASES, LLMRequest, simulate_llm


def add_llm_args(p: argparse.ArgumentParser) -> None:
    """The LLM flags of ``simulate`` (used when TOPOLOGY is a zoo decoder)."""
    g = p.add_argument_group(
        "LLM inference", f"when TOPOLOGY is a decoder model: {', '.join(decoder.ZOO)}"
    )
    g.add_argument("--phase", choices=PHASES, default="decode", help="default: decode")
    g.add_argument("--prompt", type=int, default=128, metavar="N", help="prefill tokens")
    g.add_argument("--context", type=int, default=128, metavar="N", help="tokens in the cache")
    g.add_argument("--kv-bits", type=int, metavar="B", help="KV cache width (default: --a-bits)")
    for cls, what in (("w", "weights"), ("a", "activations"), ("kv", "KV cache")):
        g.add_argument(
            f"--{cls}-format",
            metavar="FMT",
            help=f"{what}: fp16, bf16, fp8 or int2-int16 (sets the width; default: integers)",
        )


def is_llm(topology: str) -> bool:
    """True when ``topology`` names a zoo decoder and no file of that name exists."""
    key = topology.strip().lower().replace("-", "_").replace(".", "_")
    return key in decoder.ZOO and not Path(topology).exists()


def format_llm(d: dict) -> str:
    """The human-readable summary of :meth:`LLMSimulation.to_dict`."""
    what = (
        f"prompt {d['prompt']}" if d["phase"] == "prefill" else f"context {d['context']}"
    ) + f", batch {d['batch']}"
    widths = " / ".join(f"{k} {v}" for k, v in d["formats"].items())
    first = (
        ["time to first token", report.si(d["time_to_first_token_s"], "s")]
        if d["phase"] == "prefill"
        else ["time per output token", report.si(d["time_per_output_token_s"], "s")]
    )
    dram = d["dram"]
    rows = [
        first,
        ["tokens/s", f"{d['tokens_per_s']:.4g} (DRAM bound {d['dram_bound_tokens_per_s']:.4g})"],
        ["energy per token", report.si(d["energy_per_token_j"], "J")],
        ["limited by", d["limited_by"]],
        ["DRAM bytes per token", report.si(d["dram_bytes_per_token"], "B")],
        [
            "DRAM weights / KV / activations",
            " / ".join(report.si(dram[k], "B") for k in ("weights_bytes", "kv_cache_bytes"))
            + f" / {report.si(dram['activations_bytes'], 'B')}",
        ],
        ["resident weights / KV", f"{d['resident']['weights']} / {d['resident']['kv_cache']}"],
        [
            "DRAM held / capacity",
            f"{report.si(d['memory']['total_bytes'], 'B')} / "
            f"{report.si(d['memory']['capacity_bytes'], 'B')}",
        ],
    ]
    head = f"{d['model']} {d['phase']} ({what}; {widths}) on {d['design']['name']}"
    return head + "\n" + report.table([["figure", "value"]], rows)


def run_llm(args: argparse.Namespace, design: DesignFile) -> int:
    """Simulate the zoo decoder ``args.topology`` on ``design`` and print it."""
    request = LLMRequest(
        args.topology,
        phase=args.phase,
        prompt=args.prompt,
        context=args.context,
        batch=1 if args.batch is None else args.batch,
        kv_bits=args.kv_bits,
        w_format=args.w_format,
        a_format=args.a_format,
        kv_format=args.kv_format,
    )
    result = simulate_llm(request, design).to_dict()
    print(json.dumps(result, indent=2, allow_nan=False) if args.json else format_llm(result))
    return 0
