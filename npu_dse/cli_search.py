"""``npu-dse search``: find the best design of a space for a workload under budgets.

The methods (``dse.gradient``, ``dse.baselines``) share the exact cost model, the space and
the budgets. Output: a table (or one JSON object with ``--json``) with the best feasible
design, its exact figures, the number of exact evaluations, the wall time, the method and the
seed. With ``--out DIR`` the run folder holds ``evaluations.csv`` (every exactly evaluated
design), ``best.json``, ``pareto.png``/``.svg`` (latency against energy, best design
labelled), ``search_trace.png``/``.svg`` and ``run.json`` (arguments, space, seed, package
versions). When no design meets the budgets the exit code is still 0, ``best`` is null and one
line names the budget the closest design misses, and by how much.

``search MODEL`` (a zoo decoder) searches one prefill or decode step (``npu_dse.search_llm``),
and a charlm ``--checkpoint`` its decode step under an optional ``--max-perplexity``
(``npu_dse.search_lm``); ``best.llm`` then holds the step's tokens/s and energy per token.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path

from tqdm import tqdm

from dse import exact, gradient
from dse import objective as obj
from hw import bounds
from hw.bounds import InputError
from models import decoder
from npu_dse import cli_llm, distributed, search_llm
from npu_dse.evaluate_lm import VAL_CHARS, checkpoint_model
from npu_dse.inputs import boundary
from npu_dse.llm import PHASES, LLMRequest
from npu_dse.search import METHODS, check_out_dir, problem_from_files, search, write_run
from npu_dse.search_llm import LLMTarget, llm_problem
from npu_dse.search_lm import LMTarget, lm_problem
from npu_dse.suites import load_suite, networks_from_flags, parse_floats, suite_problem


def add_search_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "model",
        nargs="?",
        metavar="MODEL",
        help=f"a zoo decoder ({', '.join(decoder.ZOO)}): search for one prefill or decode step",
    )
    p.add_argument(
        "--workload",
        metavar="FILE",
        action="append",
        help="topology CSV, workload JSON or ONNX; repeat for a suite searched for one chip",
    )
    p.add_argument("--workload-weights", metavar="W,W", help="suite: each workload's share")
    p.add_argument(
        "--suite",
        metavar="FILE",
        help="suite file (JSON): workloads with weights, latency budgets and options (README)",
    )
    p.add_argument("--gemm", action="store_true", help="the CSV is in SCALE-Sim's GEMM format")
    p.add_argument(
        "--batch",
        type=int,
        metavar="N",
        help="symbolic ONNX input dimensions' value; with MODEL, the sequences (default 1)",
    )
    p.add_argument(
        "--checkpoint",
        metavar="DIR",
        help="a trained model (npu-dse train): its layers are the "
        "workload and --min-accuracy applies to it",
    )
    p.add_argument("--space", metavar="FILE", required=True, help="design space JSON (README)")
    p.add_argument("--tech", metavar="FILE", help="technology file for the base design (README)")
    p.add_argument(
        "--objective",
        choices=(*obj.OBJECTIVES, *search_llm.OBJECTIVES),
        default="edp",
        help="tokens_per_s and energy_per_token: with MODEL",
    )
    p.add_argument(
        "--max-latency-s", metavar="X[,X]", help="latency budget, s (suite: per workload)"
    )
    p.add_argument("--max-power-w", type=float, metavar="P", help="average power budget, W")
    p.add_argument("--max-area-mm2", type=float, metavar="A", help="area budget, mm^2")
    p.add_argument("--min-accuracy", type=float, metavar="Q", help="accuracy floor, 0-1")
    p.add_argument(
        "--max-perplexity",
        type=float,
        metavar="P",
        help="perplexity budget of a charlm --checkpoint, checked by execution",
    )
    p.add_argument(
        "--val-chars",
        type=int,
        metavar="N",
        help=f"--max-perplexity: validation characters per execution ({VAL_CHARS})",
    )
    p.add_argument("--method", choices=METHODS, default="gradient")
    g = p.add_argument_group("LLM step", "with MODEL; widths: the space's w_bits and a_bits")
    g.add_argument("--phase", choices=PHASES, help="default: decode")
    g.add_argument("--prompt", type=int, metavar="N", help="prefill tokens (128)")
    g.add_argument("--context", type=int, metavar="N", help="tokens in the KV cache (128)")
    g.add_argument(
        "--kv-bits",
        type=int,
        metavar="B",
        help="KV cache width (default: a_bits); also for a charlm --checkpoint",
    )
    p.add_argument("--evaluations", type=int, metavar="N", help="exact evaluation budget")
    p.add_argument("--time-budget-s", type=float, metavar="T", help="wall-time budget, s")
    p.add_argument("--seed", type=int, default=0, metavar="S")
    p.add_argument("--starts", type=int, metavar="N", help="gradient: parallel starts (128)")
    p.add_argument("--steps", type=int, metavar="N", help="gradient: optimizer steps (480)")
    p.add_argument(
        "--search-checkpoint",
        metavar="DIR",
        help="gradient: save state here after every "
        "chunk and resume from it when rerun with the same arguments",
    )
    p.add_argument("--out", metavar="DIR", help="run folder for CSV, plots and the best design")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    g = p.add_argument_group(
        "several processes (gradient)",
        "start every process with the same arguments and its own --process-id (README)",
    )
    g.add_argument("--coordinator", metavar="HOST:PORT", help="where process 0 listens")
    g.add_argument("--num-processes", type=int, metavar="N", help="processes in the search")
    g.add_argument("--process-id", type=int, metavar="I", help="this process, 0..N-1")


# Flag -> largest value: an evaluation budget beyond any run, the gradient search's batch of
# starts and its optimizer steps kept to what fits memory and time.
_FLAG_MAX = {"evaluations": 2**40, "starts": 2**14, "steps": 10**7}
TIME_BUDGET_MAX_S = 3.2e7
"""Longest time budget, s (about a year)."""


@boundary
def _budgets(args) -> obj.Budgets:
    for name, top in _FLAG_MAX.items():
        v = getattr(args, name)
        if v is not None and not 1 <= v <= top:
            raise InputError(f"--{name} must be an integer in 1..{top}, got {v}")
    t = args.time_budget_s
    if t is not None and not (math.isfinite(t) and 0 < t <= TIME_BUDGET_MAX_S):
        raise InputError(f"--time-budget-s must be in (0, {TIME_BUDGET_MAX_S:g}] s, got {t}")
    bounds.check_seed(args.seed, "--seed")
    lat = _latencies(args)
    budgets = obj.Budgets(
        max_latency_s=lat[0] if lat and not _is_suite(args) else None,
        max_power_w=args.max_power_w,
        max_area_mm2=args.max_area_mm2,
        min_accuracy=args.min_accuracy,
    ).check()
    if budgets.min_accuracy is not None and args.checkpoint is None:
        raise InputError("--min-accuracy needs --checkpoint (a trained model to measure)")
    p = args.max_perplexity
    if p is not None and not (math.isfinite(p) and p > 1):
        raise InputError(f"--max-perplexity must be a number above 1, got {p}")
    return budgets


_LLM_FLAGS = ("phase", "prompt", "context", "kv_bits")


def _lm_target(args) -> LMTarget | None:
    """The char LM step of ``search --checkpoint DIR`` (None for another checkpoint or none);
    a perplexity budget without a char LM checkpoint is refused in one line."""
    # a suite refuses --checkpoint itself (_suite_problem), before the folder is read
    given = args.checkpoint is not None and not _is_suite(args)
    charlm = given and checkpoint_model(args.checkpoint) == "charlm"
    if not charlm:
        if args.max_perplexity is not None:
            raise InputError(
                "--max-perplexity needs a charlm --checkpoint DIR (npu-dse train --model charlm)"
            )
        return None
    if args.val_chars is not None and args.max_perplexity is None:
        raise InputError("--val-chars sets the executions of --max-perplexity; give both")
    val_chars = VAL_CHARS if args.val_chars is None else args.val_chars
    if not 1 <= val_chars <= 10**6:
        raise InputError(f"--val-chars must be an integer in 1..1000000, got {val_chars}")
    given = [f for f in _LLM_FLAGS if f != "kv_bits" and getattr(args, f) is not None]
    if given:
        flag = "--" + given[0]
        raise InputError(f"{flag} is a zoo decoder MODEL's; a charlm is searched at its window")
    return LMTarget(
        str(args.checkpoint), args.objective, args.kv_bits, args.max_perplexity, val_chars
    )


def _llm_target(args) -> LLMTarget | LMTarget | None:
    """The LLM step of ``search MODEL`` or of a charlm ``--checkpoint`` (None for other
    workloads); flags that do not go with it, or that need it, are refused in one line."""
    if args.model is None:
        lm = _lm_target(args)
        if lm is not None:
            return lm
        if args.val_chars is not None:
            raise InputError("--val-chars needs a charlm --checkpoint and --max-perplexity")
        given = [f for f in _LLM_FLAGS if getattr(args, f) is not None]
        if given:
            flag = "--" + given[0].replace("_", "-")
            raise InputError(f"{flag} needs a zoo decoder MODEL (e.g. npu-dse search gpt2 ...)")
        if args.objective in search_llm.OBJECTIVES:
            raise InputError(
                f"--objective {args.objective} needs a zoo decoder MODEL; for a workload file "
                "use latency or energy"
            )
        return None
    if not cli_llm.is_llm(args.model):
        raise InputError(
            f"MODEL {args.model!r} is not a zoo decoder ({', '.join(decoder.ZOO)}); give a "
            "workload file with --workload FILE"
        )
    for flag, value in (
        ("--workload", args.workload),
        ("--suite", args.suite),
        ("--checkpoint", args.checkpoint),
        ("--gemm", args.gemm or None),
        ("--min-accuracy", args.min_accuracy),
        ("--max-perplexity", args.max_perplexity),
        ("--val-chars", args.val_chars),
        ("--workload-weights", args.workload_weights),
    ):
        if value is not None:
            raise InputError(f"a zoo decoder MODEL takes no {flag}: its step is the workload")
    if args.phase == "prefill" and args.context is not None:
        raise InputError("--context is the decode phase's; prefill takes --prompt")
    if args.phase != "prefill" and args.prompt is not None:
        raise InputError("--prompt is the prefill phase's (--phase prefill); decode: --context")
    request = LLMRequest(
        args.model,
        phase=args.phase or "decode",
        prompt=128 if args.prompt is None else args.prompt,
        context=128 if args.context is None else args.context,
        batch=1 if args.batch is None else args.batch,
        kv_bits=args.kv_bits,
    )
    return LLMTarget(request, args.objective)


def _is_suite(args) -> bool:
    return args.suite is not None or len(args.workload or ()) > 1


def _latencies(args) -> list[float] | None:
    return parse_floats(args.max_latency_s, "--max-latency-s", max(len(args.workload or ()), 1))


def _settings(args):
    if args.method != "gradient":
        return None
    settings = gradient.GradientSettings()
    overrides = {k: getattr(args, k) for k in ("starts", "steps") if getattr(args, k)}
    if args.steps:
        overrides["legalize_every"] = min(settings.legalize_every, args.steps)
    return dataclasses.replace(settings, **overrides)


def run_search(args: argparse.Namespace) -> int:
    if args.search_checkpoint is not None and args.method != "gradient":
        raise InputError(
            f"--search-checkpoint: the {args.method} search keeps no checkpoints (only gradient "
            "does); drop it"
        )
    target = _llm_target(args)
    budgets = _budgets(args)
    several = distributed.check_args(args.coordinator, args.num_processes, args.process_id)
    if several:
        if args.method != "gradient":
            raise InputError(
                f"only the gradient search runs over several processes, not {args.method}"
            )
        if args.time_budget_s is not None or args.search_checkpoint is not None:
            raise InputError(
                "a search over several processes takes neither --time-budget-s (each process "
                "would stop at its own step) nor --search-checkpoint; bound --evaluations instead"
            )
        with distributed.stdout_to_stderr():
            distributed.start(args.coordinator, args.num_processes, args.process_id)
    if args.out:
        check_out_dir(args.out)
    if isinstance(target, LMTarget):
        problem, source = lm_problem(target, args.space, budgets, tech=args.tech)
    elif target is not None:
        problem, source = llm_problem(target, args.space, budgets, tech=args.tech)
    elif _is_suite(args):
        problem, source = _suite_problem(args, budgets)
    else:
        if args.workload_weights is not None:
            raise InputError("--workload-weights needs several --workload files (a suite)")
        workload = args.workload[0] if args.workload else None
        problem, source = problem_from_files(
            args.space,
            args.objective,
            budgets,
            workload,
            args.gemm,
            args.checkpoint,
            tech=args.tech,
            batch=args.batch,
        )
    if args.method == "exact":  # refused before the progress bar starts
        reason = exact.refusal(problem, exact.ExactSettings())
        if reason is not None:
            raise InputError(reason)
    quiet = distributed.stdout_to_stderr(several)
    with (
        quiet,
        tqdm(desc=f"search ({args.method})", unit="chunk", file=sys.stderr, leave=False) as bar,
    ):

        def progress(done, total):
            if total is not None and bar.total != total:
                bar.total = total
            bar.n = done
            bar.refresh()

        outcome = search(
            problem,
            args.method,
            source=source,
            accuracy_checkpoint=args.checkpoint,
            llm_target=target,
            seed=args.seed,
            evaluations=args.evaluations,
            time_budget_s=args.time_budget_s,
            settings=_settings(args),
            checkpoint=args.search_checkpoint,
            progress=progress,
        )
    out = outcome.to_dict()
    if args.out and (not several or args.process_id == 0):  # one run folder per search
        run = {
            "command": "npu-dse search " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else "",
            "args": {k: v for k, v in vars(args).items() if k != "run"},
            "seed": args.seed,
        }
        write_run(Path(args.out), outcome, run)
    if outcome.result.best is None:
        print(outcome.no_design_line(), file=sys.stderr)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        _print_table(out, source)
    return 0


def _suite_problem(args, budgets: obj.Budgets):
    """The suite of ``--suite FILE`` or of repeated ``--workload`` flags."""
    if args.checkpoint is not None:
        raise InputError(
            "a suite cannot take --checkpoint: its accuracy proxy and re-check by execution "
            "cover one trained model; search it alone, or export it (npu_dse.onnx_export) and "
            "add the .onnx file to the suite without an accuracy budget"
        )
    if args.suite is None:
        weights = parse_floats(args.workload_weights, "--workload-weights", len(args.workload))
        networks = networks_from_flags(
            args.workload, weights, _latencies(args), gemm=args.gemm, batch=args.batch
        )
    else:
        given = [
            flag
            for flag, value in (
                ("--workload", args.workload),
                ("--workload-weights", args.workload_weights),
                ("--max-latency-s", args.max_latency_s),
                ("--gemm", args.gemm or None),
                ("--batch", args.batch),
            )
            if value is not None
        ]
        if given:
            raise InputError(
                f"--suite takes no {given[0]}: give it per workload in the suite file "
                "(path, weight, max_latency_s, gemm, batch)"
            )
        networks = load_suite(args.suite)
    return suite_problem(args.space, args.objective, budgets, networks, tech=args.tech)


def _print_llm(d: dict) -> None:
    per = (
        f"time to first token {d['time_to_first_token_s'] * 1e3:.4g} ms"
        if d["phase"] == "prefill"
        else f"time per output token {d['time_per_output_token_s'] * 1e3:.4g} ms"
    )
    print(
        f"  {d['model']} {d['phase']}: {d['tokens_per_s']:.4g} tokens/s, "
        f"{d['energy_per_token_j'] * 1e3:.4g} mJ per token, {per}"
    )
    res = d["resident"]
    print(
        f"  weights w{d['w_bits']:g}, activations a{d['a_bits']:g}, KV cache kv{d['kv_bits']:g}; "
        f"resident in SRAM: weights {res['weights']}, KV cache {res['kv_cache']}; "
        f"limited by {d['limited_by']}"
    )


def _print_table(out: dict, source: str) -> None:
    print(f"search: {out['method']} on {source}, objective {out['objective']}, seed {out['seed']}")
    print(f"{out['evaluations']} exact evaluations in {out['wall_s']:.1f} s")
    best = out["best"]
    if best is None:
        return
    hw = best["hardware"]
    print(
        f"best: {hw['rows']}x{hw['cols']} {hw['dataflow']}, {hw['sram_kib']:g} KiB SRAM, "
        f"{hw['clock_mhz']:g} MHz, {hw['dram_bw_gbps']:g} GB/s, w{hw['w_bits']}a{hw['a_bits']}"
    )
    print(
        f"  latency {best['latency_s'] * 1e3:.4g} ms, energy {best['energy_j'] * 1e3:.4g} mJ, "
        f"power {best['power_w']:.4g} W, area {best['area_mm2']:.4g} mm^2, "
        f"EDP {best['edp_js']:.4g} J*s"
    )
    for name, net in best.get("networks", {}).items():
        print(
            f"  {name}: latency {net['latency_s'] * 1e3:.4g} ms, energy "
            f"{net['energy_j'] * 1e3:.4g} mJ, power {net['power_w']:.4g} W, "
            f"{net['relative_objective']:.3g}x the base design's {out['objective']}"
        )
    if "accuracy" in best:
        print(f"  accuracy {best['accuracy']:.4f} (proxy {best['accuracy_proxy']:.4f})")
    if "llm" in best:
        _print_llm(best["llm"])
    print(f"{'layer':<24}{'w':>3}{'a':>3}{'tile_m':>8}{'tile_k':>8}{'tile_n':>8}  order")
    for layer in best["layers"]:
        print(
            f"{layer['name'][:23]:<24}{layer['w_bits']:>3}{layer['a_bits']:>3}"
            f"{layer['tile_m']:>8}{layer['tile_k']:>8}{layer['tile_n']:>8}  {layer['loop_order']}"
        )
