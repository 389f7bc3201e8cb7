"""LLM inference on NPU- and GPU-like designs: tokens/s and energy per token against the
DRAM bandwidth bound, the effect of weight and KV-cache bits, and a prefill/decode roofline.

Models: the decoder zoo (``models.decoder``: gpt2, llama_3_2_1b, llama_2_7b, mistral_7b).
Designs:

* the NPU presets (``hw.presets``), at w8 / a8 / kv8;
* ``laptop-npu-45tops``: a design of the class of the "40+ TOPS" NPUs of Copilot+ PCs.
  Assumption, typical figures of that class rather than one chip's: a 128 x 128 INT8 array at
  1.4 GHz, 2 * 16384 * 1.4e9 = 45.9 TOPS; LPDDR5X-8533 on a 128-bit bus, 8533e6 * 16 bytes =
  136.5 GB/s; 16 GiB of DRAM; 8 MiB of unified on-chip SRAM; 4 nm; weight stationary;
* the GPU-like models (``hw.gpu``) at fp16 and int8, with the DRAM of the chips they follow
  (A100-SXM4-40GB: 40 GiB; Jetson Orin Nano 8GB: 8 GiB; NVIDIA datasheets).

Decode of the 1024th token (1023 in the cache) at batch 1 and 8, prefill of a 512-token
prompt at batch 1. The bound is ``bandwidth / DRAM bytes per token`` of the same run.

Produces, under ``--out``: ``decode.csv`` and ``prefill.csv`` (every model on every design),
``bits.csv`` (laptop design: weights at 16/8/4 bits with a 16-bit cache, then the cache at
16/8/4 bits with 4-bit weights, context 4095, or 1023 for gpt2), ``claim.csv`` (the laptop
design, weight or output stationary, at half TOPS (half clock) and double bandwidth:
decode tokens/s of 4-bit weights, 16-bit activations and an 8-bit cache, and time to first
token), ``roofline.csv`` and ``decode_vs_bound.png/svg``, ``bits.png/svg``,
``roofline.png/svg``. With ``--charlm DIR`` (a ``npu-dse train --model charlm`` folder) also
``charlm.csv`` and ``charlm.png/svg``: the char LM's perplexity against energy per token of one
decode step on ``edge-tpu-like``, for uniform widths (weights = activations = cache, 3-8
bits; ``npu-dse evaluate``) and for the widths (and tiles) that ``search --checkpoint DIR
--objective energy_per_token --max-perplexity P`` finds (exhaustive over weights and
activations of 3-8 bits) at budgets of 1.01, 1.05 and 1.2 times the uniform 8-bit perplexity;
each perplexity by bit-accurate execution of ``CHARLM_VAL_CHARS`` validation characters.

Command: ``.venv/bin/python experiments/exp_llm.py --out runs/exp_llm [--quick] [--charlm DIR]``

Run time on the 2-core CPU: about 1 minute of CPU in full (2-3 minutes of wall time on a
loaded machine; most of it compiling one cost model per model depth and buffer organisation);
about 12 s of CPU with ``--quick`` (gpt2, two NPUs, one GPU).

Expected headline (full). Decode never exceeds the bound. ``laptop-npu-45tops`` at batch 1,
w8 / a8 / kv8, context 1023: gpt2 369 tokens/s (bound 953), llama_3_2_1b 47.1 (108.5),
llama_2_7b 8.70 (19.8), mistral_7b 8.33 (19.0); 1.13 J per token for llama_2_7b, 99.5 % of
it DRAM (20.3 pJ/bit, ``hw.tech``'s DRAM figure); 0.12 of its 45.9 TOPS used. Prefill of 512
tokens is compute-bound (llama_2_7b: 0.28 s, 23.8 TOPS achieved). The claim, llama_2_7b
with 4-bit weights at batch 1: 8.70 tokens/s weight stationary, 23.7 output stationary (23 %
and 62 % of the 136.5 GB/s bound); half the TOPS by half the clock halves both; by half the
rows: x0.75 (ws), x1.02 (os); twice the bandwidth: x1.00; time to first token 0.29 s, x1.96
at half the clock, x0.98 at twice the bandwidth. Weight bits (llama_2_7b, context 4095):
output stationary 8.79 / 15.3 / 17.9 tokens/s at 16 / 8 / 4 bits (DRAM-bound at 16 and 8,
fill-bound at 4), weight stationary 7.78 at all three.

Caveat, printed with the table: at batch 1 decode is a chain of matrix-vector products. A
weight-stationary R x C array spends ``2R + C - 1`` cycles loading each R x C weight fold for
one token, so the laptop design takes weights in at 59.9 GB/s against 136.5 GB/s of DRAM:
decode is fill-bound, at 39-44 % of the bandwidth bound, and fewer weight bits do not speed
it up. An output-stationary array takes ``C`` weights per cycle (C x clock x bits / 8: 90 GB/s
at 4 bits, 179 GB/s at 8) and reaches the bound at 8 and 16 bits. What decides decode is the
array's edge times its clock and the DRAM bandwidth, not its TOPS (rows x columns).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from dse import Budgets
from experiments.common import Run, new_figure, parse_args
from hw import canonical, evaluate_gpu, get_gpu_preset, get_preset, tech
from hw.types import NPUConfig
from hw.x64 import x64
from models import decoder
from npu_dse import report
from npu_dse.designs import DesignFile
from npu_dse.evaluate_lm import evaluate_lm
from npu_dse.llm import LLMRequest, footprint_bytes, llm_workload, simulate_llm
from npu_dse.search import search
from npu_dse.search_lm import LMTarget, lm_problem

MODELS = ("gpt2", "llama_3_2_1b", "llama_2_7b", "mistral_7b")
NPUS = ("tpu-v1-like", "edge-tpu-like", "eyeriss-like", "scalesim-32x32")
GPUS = {"datacenter-gpu-like": 40.0, "edge-gpu-like": 8.0}
"""GPU preset -> device DRAM, GiB (A100-SXM4-40GB, Jetson Orin Nano 8GB datasheets)."""
LAPTOP = "laptop-npu-45tops"
CONTEXT = 1023  # decode of the 1024th token: gpt2's longest context
LONG_CONTEXT = 4095  # the bits study's cache: Llama 2's longest context
PROMPT = 512
BATCHES = (1, 8)
BITS = (16, 8, 4)
CHARLM_WIDTHS = (3, 4, 5, 6, 8)
CHARLM_BUDGETS = (1.01, 1.05, 1.2)  # perplexity budgets, times the uniform 8-bit perplexity
CHARLM_VAL_CHARS = 256


def laptop_npu(dataflow: str = "ws") -> NPUConfig:
    """The ``laptop-npu-45tops`` design (assumption; see the module docstring)."""
    base = get_preset("edge-tpu-like")  # unified SRAM, as the laptop design
    df = ("os", "ws", "is").index(dataflow)
    return canonical(
        dataclasses.replace(
            base,
            rows=128,
            cols=128,
            dataflow=df,
            clock_mhz=1400.0,
            ifmap_sram_kib=2048.0,
            filter_sram_kib=4096.0,
            ofmap_sram_kib=2048.0,
            dram_bw_gbps=8533e6 * 16 / 1e9,
            dram_capacity_gib=16.0,
            vector_lanes=128,
            tech=tech.default_tech(4.0),
            name="npu",
        )
    )


def npu_designs(quick: bool) -> dict[str, NPUConfig]:
    """Design label -> config; one common name so that designs share a compilation."""
    npus = ("edge-tpu-like",) if quick else NPUS
    out = {LAPTOP: laptop_npu()}
    out |= {n: canonical(dataclasses.replace(get_preset(n), name="npu")) for n in npus}
    return out


def npu_row(model: str, design: str, cfg: NPUConfig, **request) -> dict:
    """One run of ``simulate_llm`` as a CSV row (figures of a model that does not fit the
    design's DRAM are kept, with ``fits_in_dram`` false)."""
    sim = simulate_llm(model, cfg, require_fit=False, **request)
    d, rep = sim.to_dict(), sim.report
    latency = float(rep.total_latency_s)
    weights = np.array(sim.workload.kinds) == "dense"
    busy_s = float(np.sum(np.asarray(rep.compute_cycles)[weights])) / (float(cfg.clock_mhz) * 1e6)
    return {
        "model": model,
        "design": design,
        "platform": "npu",
        "dataflow": cfg.dataflow_name,
        "phase": d["phase"],
        "batch": d["batch"],
        "formats": "/".join(d["formats"].values()),
        "fits_in_dram": d["fits_in_dram"],
        "tokens_per_s": d["tokens_per_s"],
        "bound_tokens_per_s": d["dram_bound_tokens_per_s"],
        "fraction_of_bound": d["tokens_per_s"] / d["dram_bound_tokens_per_s"],
        "latency_s": latency,
        "energy_per_token_j": d["energy_per_token_j"],
        "dram_bytes_per_token": d["dram_bytes_per_token"],
        "dram_weights_bytes": d["dram"]["weights_bytes"],
        "dram_kv_cache_bytes": d["dram"]["kv_cache_bytes"],
        "dram_activations_bytes": d["dram"]["activations_bytes"],
        "limited_by": d["limited_by"],
        "dram_energy_share": float(np.sum(rep.energy_dram_pj)) * 1e-12 / d["energy_j"],
        "intensity_ops_per_byte": 2.0 * d["macs"] / d["dram"]["total_bytes"],
        "achieved_tops": 2.0 * d["macs"] / latency / 1e12,
        "peak_tops": float(cfg.peak_ops_per_s) / 1e12,
        "dram_bw_gbps": float(cfg.dram_bw_gbps),
        # weight bytes over the dense layers' array time: how fast the array takes weights in
        "array_weight_intake_gbps": d["dram"]["weights_bytes"] / max(busy_s, 1e-30) / 1e9,
    }


def gpu_row(model: str, design: str, precision: str, phase: str, batch: int) -> dict:
    """One decode or prefill step on a GPU-like design at ``precision`` (weights, activations
    and KV cache alike)."""
    gpu = dataclasses.replace(get_gpu_preset(design), precision=precision, name="gpu")
    request = LLMRequest(model, phase=phase, prompt=PROMPT, context=CONTEXT, batch=batch)
    wl = llm_workload(request)
    rep = evaluate_gpu(gpu, wl)
    bits = 16.0 if precision == "fp16" else 8.0
    held = sum(footprint_bytes(request, decoder.get_decoder(model), bits, bits))
    tokens = batch * (PROMPT if phase == "prefill" else 1)
    latency, moved = float(np.sum(rep.latency_s)), float(np.sum(rep.dram_bytes))
    macs, dram_s = float(np.sum(wl.macs)), float(np.sum(rep.dram_s))
    bound = float(gpu.dram_bw_gbps) * 1e9 * tokens / moved
    return {
        "model": model,
        "design": design,
        "platform": "gpu",
        "dataflow": "",
        "phase": phase,
        "batch": batch,
        "formats": precision,
        "fits_in_dram": held <= GPUS[design] * 2.0**30,
        "tokens_per_s": tokens / latency,
        "bound_tokens_per_s": bound,
        "fraction_of_bound": tokens / latency / bound,
        "latency_s": latency,
        "energy_per_token_j": float(np.sum(rep.energy_pj)) * 1e-12 / tokens,
        "dram_energy_share": float(np.sum(rep.energy_dram_pj)) / float(np.sum(rep.energy_pj)),
        "dram_bytes_per_token": moved / tokens,
        "limited_by": "dram" if dram_s >= 0.9 * latency else "compute or launch",
        "intensity_ops_per_byte": 2.0 * macs / moved,
        "achieved_tops": 2.0 * macs / latency / 1e12,
        "peak_tops": float(gpu.peak_ops_per_s) / 1e12,
        "dram_bw_gbps": float(gpu.dram_bw_gbps),
    }


def phase_rows(models, designs: dict, phase: str, batches, gpus) -> list[dict]:
    """Every model on every NPU and GPU design for one phase."""
    size = {"context": CONTEXT} if phase == "decode" else {"prompt": PROMPT}
    jobs = [(m, d, b) for m in models for d in designs for b in batches]
    rows = []
    for m, d, b in tqdm(jobs, desc=phase, unit="run", file=sys.stderr, leave=False):
        rows.append(npu_row(m, d, designs[d], phase=phase, batch=b, w_bits=8, a_bits=8, **size))
    for m, g, p, b in [(m, g, p, b) for m in models for g in gpus for p in ("fp16", "int8")
                       for b in batches]:  # fmt: skip
        rows.append(gpu_row(m, g, p, phase, b))
    return rows


def bits_rows(models) -> list[dict]:
    """The laptop design, weight and output stationary: weights at 16/8/4 bits (16-bit
    cache), then the cache at 16/8/4 bits (4-bit weights); 16-bit activations, a long
    context, batch 1."""
    rows = []
    studies = (("weights", [(w, 16) for w in BITS]), ("kv", [(4, k) for k in BITS]))
    for dataflow in ("ws", "os"):
        cfg = laptop_npu(dataflow)
        for model in models:
            ctx = min(LONG_CONTEXT, decoder.get_decoder(model).max_context - 1)
            for study, pairs in studies:
                for w, kv in pairs:
                    widths = {"w_bits": w, "a_bits": 16, "kv_bits": kv}
                    row = npu_row(model, LAPTOP, cfg, context=ctx, **widths)
                    rows.append({"study": study, **widths, "context": ctx, **row})
    return rows


def claim_rows(models) -> list[dict]:
    """The laptop design against half its TOPS (half the clock, or half the rows) and twice
    its bandwidth."""
    rows = []
    for dataflow in ("ws", "os"):
        base = laptop_npu(dataflow)
        variants = {
            "base": base,
            "half_tops_clock": dataclasses.replace(base, clock_mhz=base.clock_mhz / 2),
            "half_tops_rows": dataclasses.replace(base, rows=base.rows // 2),
            "double_bandwidth": dataclasses.replace(base, dram_bw_gbps=base.dram_bw_gbps * 2),
        }
        for model in models:
            for name, cfg in variants.items():
                widths = {"w_bits": 4, "a_bits": 16, "kv_bits": 8}
                dec = npu_row(model, LAPTOP, cfg, context=CONTEXT, **widths)
                pre = npu_row(model, LAPTOP, cfg, phase="prefill", prompt=PROMPT, **widths)
                rows.append(
                    {
                        "model": model,
                        "dataflow": dataflow,
                        "variant": name,
                        "peak_tops": dec["peak_tops"],
                        "dram_bw_gbps": dec["dram_bw_gbps"],
                        "decode_tokens_per_s": dec["tokens_per_s"],
                        "decode_bound_tokens_per_s": dec["bound_tokens_per_s"],
                        "decode_limited_by": dec["limited_by"],
                        "decode_energy_per_token_j": dec["energy_per_token_j"],
                        "time_to_first_token_s": pre["latency_s"],
                        "prefill_limited_by": pre["limited_by"],
                    }
                )
    return rows


def _pick(rows, **match) -> dict:
    return next(r for r in rows if all(r[k] == v for k, v in match.items()))


def bound_figure(rows: list[dict]):
    """Decode tokens/s against the bound, batch 1 and 8, every design (hollow: does not fit)."""
    fig, ax = new_figure(7.0, 5.0)
    designs = list(dict.fromkeys((r["design"], r["formats"]) for r in rows))
    for i, (design, fmt) in enumerate(designs):
        mine = [r for r in rows if (r["design"], r["formats"]) == (design, fmt)]
        for fits in (True, False):
            pts = [r for r in mine if r["fits_in_dram"] == fits]
            if pts:
                ax.scatter(
                    [r["bound_tokens_per_s"] for r in pts],
                    [r["tokens_per_s"] for r in pts],
                    color=f"C{i % 10}",
                    marker="os^v<>Dp"[i % 8],
                    facecolors=None if fits else "none",
                    label=f"{design} {fmt}" if fits or not any(r["fits_in_dram"] for r in mine)
                    else None,
                )  # fmt: skip
    lo = min(min(r["tokens_per_s"], r["bound_tokens_per_s"]) for r in rows)
    hi = max(r["bound_tokens_per_s"] for r in rows)
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8, label="bound: bandwidth / bytes per token")
    ax.set(xscale="log", yscale="log", xlabel="DRAM bound, tokens/s", ylabel="tokens/s")
    ax.set_title(f"Decode (context {CONTEXT}, batch 1 and 8); hollow: does not fit the DRAM")
    ax.legend(fontsize=6, loc="upper left")
    fig.tight_layout()
    return fig


def bits_figure(rows: list[dict]):
    fig, ax0 = new_figure(10.0, 4.0)
    fig.delaxes(ax0)
    axes = fig.subplots(1, 2)
    for ax, study, key in zip(axes, ("weights", "kv"), ("w_bits", "kv_bits"), strict=True):
        for i, model in enumerate(dict.fromkeys(r["model"] for r in rows)):
            for df, style in (("ws", "o-"), ("os", "s--")):
                pts = [r for r in rows if (r["study"], r["model"], r["dataflow"]) ==
                       (study, model, df)]  # fmt: skip
                xs, ys = [r[key] for r in pts], [r["tokens_per_s"] for r in pts]
                ax.plot(xs, ys, style, color=f"C{i}", label=f"{model} {df}")
        ax.set(xlabel=key.replace("_", " "), ylabel="decode tokens/s", yscale="log")
        ax.set_xticks(BITS)
        what = "weights (16-bit cache)" if study == "weights" else "KV cache (4-bit weights)"
        ax.set_title(f"{LAPTOP}: {what}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def roofline_figure(rows: list[dict], cfg: NPUConfig):
    fig, ax = new_figure(7.0, 5.0)
    peak, bw = float(cfg.peak_ops_per_s), float(cfg.dram_bw_gbps) * 1e9
    xs = np.logspace(-1, 4, 200)
    ax.plot(xs, np.minimum(peak, bw * xs), "k-", lw=1.0, label=f"{LAPTOP} roof")
    marks = {"prefill": "s", "decode": "o"}
    for i, model in enumerate(dict.fromkeys(r["model"] for r in rows)):
        for r in (r for r in rows if r["model"] == model):
            ax.scatter(
                r["intensity_ops_per_byte"], r["achieved_tops"] * 1e12, color=f"C{i}",
                marker=marks[r["phase"]], facecolors="none" if r["batch"] > 1 else None,
            )  # fmt: skip
        ax.scatter([], [], color=f"C{i}", label=model)
    ax.scatter([], [], color="gray", marker="s", label=f"prefill, prompt {PROMPT}")
    ax.scatter([], [], color="gray", marker="o", label="decode, batch 1 (hollow: 8)")
    ax.set(xscale="log", yscale="log", xlabel="ops per DRAM byte", ylabel="achieved ops/s")
    ax.set_title(f"{LAPTOP}: prefill near the compute roof, decode under the bandwidth slope")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def caveat(decode: list[dict]) -> str:
    """Why the laptop design's batch-1 decode sits below its bound (from the exact runs)."""
    r = _pick(decode, design=LAPTOP, batch=1, model=decode[0]["model"])
    rows, cols = int(laptop_npu().rows), int(laptop_npu().cols)
    return (
        f"caveat: {LAPTOP} decodes at {r['fraction_of_bound']:.0%} of its bandwidth bound at "
        f"batch 1 ({r['model']}, limited by {r['limited_by']}): its weight-stationary "
        f"{rows}x{cols} array takes weights in at {r['array_weight_intake_gbps']:.3g} GB/s "
        f"(2R+C-1 = {2 * rows + cols - 1} cycles to load each {rows}x{cols} weight fold for "
        f"one token) against {r['dram_bw_gbps']:.4g} GB/s of DRAM"
    )


def claim_headline(rows: list[dict]) -> dict:
    """Decode and time-to-first-token ratios: half TOPS and double bandwidth over the base."""
    out = {}
    for model in dict.fromkeys(r["model"] for r in rows):
        for df in ("ws", "os"):
            base = _pick(rows, model=model, dataflow=df, variant="base")
            rec = {"decode_tokens_per_s": base["decode_tokens_per_s"]}
            rec["decode_fraction_of_bound"] = (
                base["decode_tokens_per_s"] / base["decode_bound_tokens_per_s"]
            )
            for v in ("half_tops_clock", "half_tops_rows", "double_bandwidth"):
                r = _pick(rows, model=model, dataflow=df, variant=v)
                rec[f"{v}_decode_ratio"] = r["decode_tokens_per_s"] / base["decode_tokens_per_s"]
                rec[f"{v}_ttft_ratio"] = r["time_to_first_token_s"] / base["time_to_first_token_s"]
            out[f"{model}_{df}"] = rec
    return out


def verdict(claim: list[dict]) -> str:
    """What the model says of "a 40-45 TOPS NPU runs local LLMs efficiently", in one line,
    from the claim runs of the largest model there."""
    model = claim[-1]["model"]
    by = {(r["dataflow"], r["variant"]): r for r in claim if r["model"] == model}
    ws, os_ = by["ws", "base"], by["os", "base"]

    def ratio(df, v, key="decode_tokens_per_s"):
        return by[df, v][key] / by[df, "base"][key]

    return (
        f"{model}, 4-bit weights, batch 1, on {ws['peak_tops']:.3g} TOPS and "
        f"{ws['dram_bw_gbps']:.4g} GB/s: decode {ws['decode_tokens_per_s']:.3g} tokens/s (ws) "
        f"/ {os_['decode_tokens_per_s']:.3g} (os), "
        f"{ws['decode_tokens_per_s'] / ws['decode_bound_tokens_per_s']:.0%} / "
        f"{os_['decode_tokens_per_s'] / os_['decode_bound_tokens_per_s']:.0%} of the bandwidth "
        f"bound, {ws['decode_energy_per_token_j']:.3g} J per token (ws); half the TOPS by "
        f"half the clock: x{ratio('ws', 'half_tops_clock'):.2f} / "
        f"x{ratio('os', 'half_tops_clock'):.2f} tokens/s; by half the rows: "
        f"x{ratio('ws', 'half_tops_rows'):.2f} / x{ratio('os', 'half_tops_rows'):.2f}; twice "
        f"the bandwidth: x{ratio('ws', 'double_bandwidth'):.2f} / "
        f"x{ratio('os', 'double_bandwidth'):.2f}. Time to first token ({PROMPT} tokens): "
        f"{ws['time_to_first_token_s']:.3g} s (ws), x"
        f"{ratio('ws', 'half_tops_clock', 'time_to_first_token_s'):.2f} at half the clock, x"
        f"{ratio('ws', 'double_bandwidth', 'time_to_first_token_s'):.2f} at twice the bandwidth"
    )


def headline(decode, prefill, bits, claim) -> dict:
    lap = {
        m: _pick(decode, design=LAPTOP, batch=1, model=m)
        for m in dict.fromkeys(r["model"] for r in decode)
    }
    speed = {}
    for m, df in dict.fromkeys((r["model"], r["dataflow"]) for r in bits):
        mine = [r for r in bits if (r["model"], r["dataflow"]) == (m, df)]
        tps = [_pick(mine, study="weights", w_bits=b)["tokens_per_s"] for b in BITS]
        kv = [_pick(mine, study="kv", kv_bits=b)["tokens_per_s"] for b in BITS]
        speed[f"{m}_{df}"] = {
            "w8_over_w16": tps[1] / tps[0],
            "w4_over_w8": tps[2] / tps[1],
            "kv8_over_kv16": kv[1] / kv[0],
            "kv4_over_kv8": kv[2] / kv[1],
        }
    return {
        "laptop_decode_batch1_w8": {
            m: {
                k: r[k]
                for k in (
                    "tokens_per_s",
                    "bound_tokens_per_s",
                    "energy_per_token_j",
                    "dram_energy_share",
                    "achieved_tops",
                    "limited_by",
                )
            }
            for m, r in lap.items()
        },
        "decode_never_above_bound": all(
            r["tokens_per_s"] <= r["bound_tokens_per_s"] * (1 + 1e-9) for r in decode
        ),
        "prefill_limited_by_on_laptop": sorted(
            {r["limited_by"] for r in prefill if r["design"] == LAPTOP}
        ),
        "bits_speedup": speed,
        "claim": claim_headline(claim),
        "claim_verdict": verdict(claim),
        "caveat": caveat(decode),
    }


def charlm_rows(checkpoint, out: Path, val_chars=CHARLM_VAL_CHARS, budgets=CHARLM_BUDGETS):
    """The char LM's perplexity and energy per token at uniform widths, then at the widths a
    perplexity-budget search finds (see the module docstring)."""
    base, rows = get_preset("edge-tpu-like"), []
    for b in CHARLM_WIDTHS:
        config = dataclasses.replace(base, w_bits=np.float64(b), a_bits=np.float64(b))
        r = evaluate_lm(checkpoint, DesignFile(config), val_chars=val_chars).to_dict()
        rows.append({"widths": "uniform", "max_perplexity": None, "w_bits": b, "a_bits": b,
                     "kv_bits": r["kv_bits"], "perplexity": r["perplexity"],
                     "energy_per_token_j": r["energy_per_token_j"]})  # fmt: skip
    p8 = next(r["perplexity"] for r in rows if r["w_bits"] == 8)
    space = Path(out) / "charlm_space.json"
    widths = list(range(min(CHARLM_WIDTHS), 9))
    space.write_text(json.dumps({"base": "edge-tpu-like", "w_bits": widths, "a_bits": widths,
                                 "per_layer_bits": False}))  # fmt: skip
    for f in budgets:
        target = LMTarget(str(checkpoint), "energy_per_token", None, f * p8, val_chars)
        problem, source = lm_problem(target, space, Budgets())
        best = search(problem, "exhaustive", source=source, llm_target=target).to_dict()["best"]
        if best is None:  # no design meets the budget by execution
            continue
        fig = best["llm"]
        rows.append({"widths": "searched", "max_perplexity": f * p8,
                     **{k: int(fig[k]) for k in ("w_bits", "a_bits", "kv_bits")},
                     "perplexity": best["perplexity"],
                     "energy_per_token_j": fig["energy_per_token_j"]})  # fmt: skip
    return rows


def charlm_figure(rows: list[dict]):
    fig, ax = new_figure(6.4, 4.4)
    uni = [r for r in rows if r["widths"] == "uniform"]
    ax.plot([r["energy_per_token_j"] for r in uni], [r["perplexity"] for r in uni], "o-",
            label="uniform widths (w = a = kv)")  # fmt: skip
    for r in uni:
        ax.annotate(f"{r['w_bits']}b", (r["energy_per_token_j"], r["perplexity"]), fontsize=7)
    for r in (r for r in rows if r["widths"] == "searched"):
        ax.scatter(r["energy_per_token_j"], r["perplexity"], marker="*", s=80, color="C3")
        label = f"w{r['w_bits']}a{r['a_bits']}kv{r['kv_bits']} (P <= {r['max_perplexity']:.3g})"
        ax.annotate(label, (r["energy_per_token_j"], r["perplexity"]), fontsize=7)
    ax.scatter([], [], marker="*", color="C3", label="searched under a perplexity budget")
    ax.set(xlabel="energy per token, J", ylabel="perplexity (executed)", xscale="log")
    ax.set_title("Char LM decode on edge-tpu-like")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _table(rows: list[dict]) -> str:
    head = [["model", "design", "formats", "batch", "tok/s", "bound", "J/token", "limit", "fits"]]
    body = [
        [
            r["model"], r["design"], r["formats"], str(r["batch"]),
            f"{r['tokens_per_s']:.4g}", f"{r['bound_tokens_per_s']:.4g}",
            f"{r['energy_per_token_j']:.3g}", r["limited_by"], str(r["fits_in_dram"]),
        ]
        for r in rows
    ]  # fmt: skip
    return report.table(head, body)


def _extra(p) -> None:
    p.add_argument("--charlm", metavar="DIR", help="a trained charlm: the perplexity study")


@x64
def main(argv=None) -> dict:
    args = parse_args(__doc__, argv, extra=_extra)
    run = Run("exp_llm", args, argv)
    models = ("gpt2",) if args.quick else MODELS
    designs = npu_designs(args.quick)
    gpus = ("edge-gpu-like",) if args.quick else tuple(GPUS)
    batches = (1, 4) if args.quick else BATCHES
    decode = phase_rows(models, designs, "decode", batches, gpus)
    prefill = phase_rows(models, designs, "prefill", (1,), gpus)
    bits = bits_rows(models)
    claim = claim_rows(models if args.quick else ("llama_3_2_1b", "llama_2_7b"))
    roof = [r for r in decode + prefill if r["design"] == LAPTOP]
    for rows, name in ((decode, "decode"), (prefill, "prefill"), (bits, "bits"),
                       (claim, "claim"), (roof, "roofline")):  # fmt: skip
        run.csv(name, [{**r, "seed": args.seed} for r in rows])
    run.figure("decode_vs_bound", bound_figure(decode))
    run.figure("bits", bits_figure(bits))
    run.figure("roofline", roofline_figure(roof, designs[LAPTOP]))
    head = headline(decode, prefill, bits, claim)
    if args.charlm is not None:
        lm = charlm_rows(args.charlm, run.out)
        run.csv("charlm", [{**r, "seed": args.seed} for r in lm])
        run.figure("charlm", charlm_figure(lm))
        head["charlm"] = lm
    print(_table(decode))
    print(head["caveat"])
    print(head["claim_verdict"])
    return run.finish(head)


if __name__ == "__main__":
    main()
