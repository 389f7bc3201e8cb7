"""The ``npu-dse`` command line.

Usage::

    npu-dse presets [--json]
    npu-dse simulate TOPOLOGY [--gemm] [--preset NAME] [--rows R --cols C --dataflow {os,ws,is}]
                    [--sram-kib KIB | --ifmap-kib KIB --filter-kib KIB --ofmap-kib KIB]
                    [--dram-bw GBPS] [--clock-mhz MHZ] [--w-bits B --a-bits B --acc-bits B]
                    [--no-stall] [--json]

Each subcommand is a :class:`Command` (its arguments and its run function) listed in
:data:`COMMANDS`; adding one is adding an entry there. Bad input ends with exit code 2 and one
line on stderr, ``npu-dse: error: ...``, naming what was wrong and what is allowed; an
internal error ends with exit code 3 and asks for a report (``npu_dse.cli_errors``).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import importlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from hw.bounds import InputError
from npu_dse import compile_cache, preset_table, report
from npu_dse.cli_errors import EXIT_USAGE, debug_requested, run_guarded  # noqa: F401 (API)
from npu_dse.inputs import boundary

if TYPE_CHECKING:
    from npu_dse.designs import DesignFile

# Modules that import JAX are imported where a command needs them (``_lazy``):
# ``--help``, ``presets`` without a NAME and usage errors start without JAX.
FULL_LOAD_GEMM = 4096  # hw.checks.FULL_LOAD_GEMM (tests/test_preset_table.py checks it)
DEFAULT_PRESET = "scalesim-32x32"  # npu_dse.designs.DEFAULT_BASE (the same test checks it)


class UsageError(InputError):
    """Bad command-line arguments (raised instead of argparse's print-and-exit)."""


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors become one-line :class:`UsageError`\\ s."""

    def error(self, message: str):
        raise UsageError(message)


@dataclasses.dataclass(frozen=True)
class Command:
    """A subcommand: its name, one-line help, argument setup and run function."""

    name: str
    help: str
    description: str | Callable[[], str]  # a function: imported only when needed
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


# ---- presets ------------------------------------------------------------------------------

_N = FULL_LOAD_GEMM
PRESETS_HELP = f"""List the named designs. Peak TOPS counts 2 ops per MAC per cycle. Power at
full load is the average power while the design runs one {_N}x{_N}x{_N} GEMM (M = K = N =
{_N}, the cost model's default tiling) with infinite DRAM bandwidth (no stalls, as in
SCALE-Sim's CALC mode), so the array stays busy: MAC, operand movement, SRAM, DRAM-traffic and
leakage energy divided by the compute time. With a NAME and --json, print that preset as a
design file (every field, the technology included), to edit and pass to --design."""


def _add_presets_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", metavar="NAME", help="one preset, as a design file")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _run_presets(args: argparse.Namespace) -> int:
    if args.name is not None:
        return _jax(_run_preset)(args)
    rows = preset_table.ROWS  # the exact model's figures, stored (no JAX to import)
    if args.json:
        note = f"full_load_power_w: {FULL_LOAD_GEMM}^3 GEMM, stall=False"
        print(json.dumps({"presets": rows, "full_load": note}, indent=2, allow_nan=False))
    else:
        print(report.format_presets(rows))
    return 0


def _run_preset(args: argparse.Namespace) -> int:
    from hw.checks import full_load_power_w
    from npu_dse import designs
    from npu_dse.simulate import resolve_design

    config = resolve_design(preset=args.name).config
    if args.json:
        print(json.dumps(designs.config_to_dict(config), indent=2, allow_nan=False))
    else:
        print(report.format_presets([report.preset_dict(config, full_load_power_w(config))]))
    return 0


# ---- simulate -----------------------------------------------------------------------------

# Command-line flag (argparse dest) -> design-file key.
_OVERRIDES = {
    "rows": "rows",
    "cols": "cols",
    "dataflow": "dataflow",
    "clock_mhz": "clock_mhz",
    "sram_kib": "sram_kib",
    "ifmap_kib": "ifmap_sram_kib",
    "filter_kib": "filter_sram_kib",
    "ofmap_kib": "ofmap_sram_kib",
    "dram_bw": "dram_bw_gbps",
    "dram_capacity_gib": "dram_capacity_gib",
    "pe_local_bytes": "pe_local_bytes",
    "w_bits": "w_bits",
    "a_bits": "a_bits",
    "acc_bits": "acc_bits",
    "memory_model": "memory_model",
    "grouped_lowering": "grouped_lowering",
}
# Config field -> the flags that set it, for error messages.
_FLAGS = {key: "--" + dest.replace("_", "-") for dest, key in _OVERRIDES.items()}
_FLAGS |= {f"{b}_sram_kib": f"--sram-kib or --{b}-kib" for b in ("ifmap", "filter", "ofmap")}
_FLAGS |= {"unsupported_ops": "--unsupported"}


def add_design_args(p: argparse.ArgumentParser) -> None:
    """The design flags shared by ``simulate`` and ``evaluate`` (see :func:`design_from_args`)."""
    from hw.grouped import GROUPED_LOWERINGS
    from hw.schedule import LAYER_KINDS
    from hw.types import DATAFLOWS
    from hw.validate import MEMORY_MODELS

    g = p.add_argument_group(
        "design",
        f"start from --design FILE or --preset NAME (default {DEFAULT_PRESET}) and override "
        "single values",
    )
    g.add_argument("--design", metavar="FILE", help="a design file (README; `presets --json NAME`)")
    g.add_argument("--preset", metavar="NAME", help=", ".join(preset_table.NAMES))
    g.add_argument("--tech", metavar="FILE", help="technology file over the design's (README)")
    g.add_argument("--rows", type=int, metavar="R", help="MAC array rows (height)")
    g.add_argument("--cols", type=int, metavar="C", help="MAC array columns (width)")
    g.add_argument("--dataflow", choices=DATAFLOWS, help="output, weight or input stationary")
    g.add_argument("--clock-mhz", type=float, metavar="MHZ", help="core clock, MHz")
    g.add_argument(
        "--sram-kib",
        type=float,
        metavar="KIB",
        help="total SRAM, KiB, split over the ifmap, filter and ofmap buffers in the design's "
        "proportions",
    )
    for buf in ("ifmap", "filter", "ofmap"):
        g.add_argument(
            f"--{buf}-kib", type=float, metavar="KIB", help=f"{buf} SRAM, KiB (beats --sram-kib)"
        )
    g.add_argument(
        "--dram-bw",
        type=float,
        metavar="GBPS",
        help="DRAM bandwidth, GB/s (for each of the 3 streams where the preset's DRAM is per "
        "stream, as scalesim-32x32's)",
    )
    g.add_argument(
        "--dram-capacity-gib",
        type=float,
        metavar="GIB",
        help="device DRAM capacity, GiB (an LLM's weights plus KV cache must fit)",
    )
    g.add_argument(
        "--pe-local-bytes",
        type=float,
        metavar="BYTES",
        help="PE-local storage (register file / scratchpads) per PE, bytes; 0: none",
    )
    for kind, what, hi in (
        ("w", "weight", 16),
        ("a", "activation", 16),
        ("acc", "accumulator", 32),
    ):
        g.add_argument(f"--{kind}-bits", type=int, metavar="B", help=f"{what} width, 2-{hi} bits")
    p.add_argument(
        "--memory-model",
        choices=MEMORY_MODELS,
        help="DRAM stall model: tiled (tiles that fit the buffers, roofline; the presets' "
        "default) or scalesim (SCALE-Sim 3.0.0's prefetcher, for parity with its USER mode)",
    )
    p.add_argument(
        "--grouped-lowering",
        choices=GROUPED_LOWERINGS,
        help="grouped and depthwise convs: auto (per layer, per-group GEMMs or channel-parallel "
        "columns; the default) or gemm (SCALE-Sim's per-group GEMMs)",
    )
    p.add_argument(
        "--unsupported",
        metavar="KINDS",
        help="comma-separated layer kinds the NPU lacks; they run on the host "
        f"({', '.join(LAYER_KINDS)})",
    )
    p.add_argument(
        "--no-fusion",
        action="store_true",
        help="write every intermediate to DRAM (default: fuse GEMM->activation and attention)",
    )
    p.add_argument(
        "--cross-layer",
        action="store_true",
        help="keep a layer's output on chip for the next layer where it fits (hw.residency)",
    )


def _add_simulate_args(p: argparse.ArgumentParser) -> None:
    from npu_dse import cli_llm
    from npu_dse import workloads as topology

    p.add_argument(
        "topology",
        metavar="TOPOLOGY",
        help="SCALE-Sim topology .csv (conv format; GEMM format with --gemm), npu-dse "
        f"workload .json, ONNX .onnx (examples in {topology.bundled('')}) or a decoder model "
        "(LLM flags)",
    )
    p.add_argument("--gemm", action="store_true", help="TOPOLOGY is SCALE-Sim's Layer, M, N, K")
    p.add_argument(
        "--batch",
        type=int,
        metavar="N",
        help="sequences of a decoder model (default 1); value of symbolic ONNX dimensions",
    )
    add_design_args(p)
    p.add_argument(
        "--no-stall",
        action="store_true",
        help="infinite DRAM bandwidth, as SCALE-Sim's CALC mode: total = compute + vector",
    )
    p.add_argument(
        "--steady-state",
        action="store_true",
        help="also report an inference in a stream, with the weights that fit kept on chip "
        "from the one before (default: a single cold inference only)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    cli_llm.add_llm_args(p)


@boundary
def design_from_args(args: argparse.Namespace) -> DesignFile:
    """The design file or preset (default ``DEFAULT_PRESET``) with the flags' overrides."""
    from npu_dse.simulate import resolve_design

    if args.sram_kib is not None and not args.sram_kib > 0:
        raise InputError(f"--sram-kib must be a number > 0 KiB, got {args.sram_kib:g}")
    overrides = {key: getattr(args, dest) for dest, key in _OVERRIDES.items()}
    if args.unsupported:
        overrides["unsupported_ops"] = [k.strip() for k in args.unsupported.split(",") if k.strip()]
    if args.no_fusion:
        overrides["fusion"] = False
    if args.cross_layer:
        overrides["cross_layer"] = True
    preset = args.preset if args.design is not None else (args.preset or DEFAULT_PRESET)
    try:
        return resolve_design(
            args.design, preset=preset, overrides=overrides, flags=_FLAGS, tech=args.tech
        )
    except ValueError as err:
        if args.design is not None and args.preset is not None:
            raise InputError("give --design FILE or --preset NAME, not both") from None
        if str(err).startswith("unsupported_ops"):
            raise InputError(f"--unsupported: {str(err).split(': ', 1)[1]}") from None
        raise


def design_label(args: argparse.Namespace) -> str:
    """What the design started from: the design file's name or the preset."""
    return Path(args.design).name if args.design else (args.preset or DEFAULT_PRESET)


def _run_simulate(args: argparse.Namespace) -> int:
    from npu_dse import cli_llm
    from npu_dse import workloads as topology
    from npu_dse.simulate import simulate

    design = design_from_args(args)
    if cli_llm.is_llm(args.topology):
        return cli_llm.run_llm(args, design)
    workload, widths = topology.load_model_widths(args.topology, gemm=args.gemm, batch=args.batch)
    sim = simulate(
        workload,
        design,
        stall=not args.no_stall,
        base=design_label(args),
        widths=widths,
        steady_state=args.steady_state,
    )
    result = sim.to_dict()
    result["workload"] = {"path": str(args.topology), "gemm_format": args.gemm}
    if args.json:
        print(report.simulation_json(result))
    else:
        print(report.format_simulation(result, Path(args.topology).name, stall=not args.no_stall))
    return 0


# ---- registry and entry point -------------------------------------------------------------


def _lazy(module: str, name: str, **kwargs) -> Callable:
    """``npu_dse.<module>.<name>`` (with ``kwargs`` bound), imported when first called."""

    def call(*args):
        fn = getattr(importlib.import_module(f"npu_dse.{module}"), name)
        return fn(*args, **kwargs)

    return call


def _jax(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A command's run function with JAX set up: the persistent compilation cache
    (``--compile-cache``, ``npu_dse.compile_cache``) and 64-bit arithmetic (``hw.x64``)."""

    def with_jax(args: argparse.Namespace) -> int:
        compile_cache.configure(getattr(args, "compile_cache", None))
        from hw.x64 import x64_scope

        with x64_scope():
            return run(args)

    return with_jax


COMMANDS: tuple[Command, ...] = (
    Command("presets", "list the named designs", PRESETS_HELP, _add_presets_args, _run_presets),
    Command(
        "simulate",
        "cycles, energy and power of a workload on one design",
        "Run a SCALE-Sim topology or an npu-dse workload through the cost model. Without "
        f"--preset the design is {DEFAULT_PRESET}; the flags override single values. "
        "Example: npu-dse simulate resnet18.csv --preset tpu-v1-like --sram-kib 4096 --json",
        _add_simulate_args,
        _jax(_run_simulate),
    ),
    Command(
        "train",
        "train the small CNN or transformer on the bundled digits, or the char LM on the plays",
        "Train with optax, checkpoint every epoch into --out and resume from it. Example: "
        "npu-dse train --model cnn --quick --out runs/cnn",
        _lazy("cli_models", "add_train_args"),
        _jax(_lazy("cli_models", "run_train")),
    ),
    Command(
        "evaluate",
        "accuracy, latency, energy and power of a trained model on a simulated NPU",
        "Quantize a trained checkpoint post-training, run the test set bit-accurately on the "
        f"design (--preset, default {DEFAULT_PRESET}, or the design flags) and report accuracy "
        "beside float accuracy with the cost of one inference (a charlm: perplexity by "
        "token-by-token decode, and the cost of one token). Example: npu-dse evaluate "
        "--checkpoint runs/cnn --preset edge-tpu-like --w-bits 8 --a-bits 8",
        _lazy("cli_models", "add_evaluate_args", add_design_args=add_design_args),
        _jax(
            _lazy(
                "cli_models",
                "run_evaluate",
                design_from_args=design_from_args,
                design_label=design_label,
            )
        ),
    ),
    Command(
        "search",
        "search a design space for the best design under budgets",
        "Search hardware, per-layer mappings and per-layer bit widths of a design space (--space "
        "FILE, see the README) for a workload, minimizing EDP, energy or latency under latency, "
        "power, area and accuracy budgets, by gradient (default), exhaustive, random or NSGA-II "
        "search on the exact cost model. Example: npu-dse search --workload resnet18.csv "
        "--space space.json --max-latency-s 0.005 --max-power-w 1 --json",
        _lazy("cli_search", "add_search_args"),
        _jax(_lazy("cli_search", "run_search")),
    ),
    Command(
        "sensitivity",
        "d log metric / d log parameter of a workload on one design, per layer's bottleneck",
        lambda: importlib.import_module("npu_dse.cli_sensitivity").DESCRIPTION,
        _lazy("cli_sensitivity", "add_sensitivity_args", add_design_args=add_design_args),
        _jax(
            _lazy(
                "cli_sensitivity",
                "run_sensitivity",
                design_from_args=design_from_args,
                design_label=design_label,
            )
        ),
    ),
    Command(
        "calibrate",
        "fit technology fields to measured latency, energy or power",
        lambda: importlib.import_module("npu_dse.cli_calibrate").DESCRIPTION,
        _lazy("cli_calibrate", "add_calibrate_args"),
        _jax(_lazy("cli_calibrate", "run_calibrate")),
    ),
)
"""The subcommands, in the order ``--help`` lists them."""


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The ``npu-dse`` parser with one subparser per entry of :data:`COMMANDS`.

    Given the arguments ``argv``, only the subcommand they name gets its arguments (some
    import JAX to list their choices); without, every subcommand does."""
    parser = _Parser(prog="npu-dse", description="Differentiable design-space explorer for NPUs.")
    parser.add_argument("--debug", action="store_true", help="traceback of an internal error")
    compile_cache.add_argument(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = None if argv is None else _command_named(argv)
    for cmd in COMMANDS:
        full = argv is None or cmd.name == chosen
        about = cmd.description() if full and callable(cmd.description) else cmd.description
        p = sub.add_parser(cmd.name, help=cmd.help, description=about if full else None)
        p.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
        compile_cache.add_argument(p, hidden=True)
        if full:
            cmd.add_arguments(p)
        p.set_defaults(run=cmd.run)
    return parser


def _command_named(argv: list[str]) -> str | None:
    """The subcommand that ``argv`` names (its first positional argument), if any."""
    words = iter(argv)
    for word in words:
        if word == compile_cache.FLAG:
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def main(argv: list[str] | None = None) -> int:
    """Run ``npu-dse``; returns the exit code (0 ok, 2 bad input, 3 internal error: see
    ``npu_dse.cli_errors``).

    Run as a process (``argv`` None), it exits at once when a search gave up a compilation at
    its time budget, instead of waiting for that compilation (``dse.deadline``)."""
    code = _main(argv)
    deadline = sys.modules.get("dse.deadline")  # imported by a search, if one ran
    if argv is None and deadline is not None and deadline.pending():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _main(argv: list[str] | None) -> int:
    return run_guarded(functools.partial(_parse_and_run, argv), debug_requested(argv))


def _parse_and_run(argv: list[str] | None) -> int:
    parser = build_parser(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
        return args.run(args)
    except SystemExit as stop:  # --help: argparse printed and asked to exit
        return stop.code if isinstance(stop.code, int) else 0
    except BrokenPipeError:  # the reader went away (``| head``): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
