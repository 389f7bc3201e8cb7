"""Does anything wrong get through? Thousands of hostile inputs, in process, classified.

A seeded generator builds each case from pools of hostile values (zero, negative, 2^63,
10^400, NaN, Infinity, 1e-300, ``1_000``, digits of other scripts, lists where strings
belong, deep nesting, truncated files) mixed with good ones, so that many cases get past the
first check: files (SCALE-Sim CSVs, workload JSON, design and space files, training and
search checkpoints), flags and values, across every subcommand (``presets``, ``simulate``,
``search``, ``train``, ``evaluate``, ``sensitivity``, ``calibrate``) and the public API
(``hw.validate.checked_evaluate``, ``hw.layers``, ``npu_dse.simulate``, ``resolve_design``,
``design_from_dict``, ``dse.Space.from_dict``). Each case is classified:

- ``ok``: exit 0 (or a returned result) whose numbers are all finite and >= 0;
- ``clean``: exit 2 with one line ``npu-dse: error: ...`` (or a one-line ``ValueError``);
- ``traceback``: anything else (exit 3, an escaped exception, a multi-line message);
- ``nonfinite`` / ``negative``: exit 0 with a NaN or infinite number, or a negative one
  (every quantity printed is a count, time, energy, power, area, byte total or ratio);
- ``hang``: a case over the per-case time limit.

Case ``i`` of seed ``s`` is rebuilt by ``random.Random(f"{s}:{i}")``: ``--show I`` prints it.

Command: ``.venv/bin/python benchmarks/fuzz_cli.py --cases 10000 --seed 0`` (most cases are
refused in milliseconds; those that run compile the cost model for their shapes, which is
most of the time). ``--first I`` starts at case ``I``, so that two processes split a run:
``--first 0 --cases 5000`` and ``--first 5000 --cases 5000`` together are cases 0-9999.
Failures are printed to stderr as they happen. Expected: 0 traceback, 0 nonfinite,
0 negative, 0 hang.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import io
import json
import math
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hw import layers, presets
from hw.validate import checked_evaluate
from npu_dse import cli
from npu_dse.designs import FIELDS, design_from_dict
from npu_dse.simulate import resolve_design, simulate

BAD_INTS = [0, -1, -(2**63), 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, 10**12, 10**40]
GOOD_INTS = [1, 2, 3, 7, 8, 16, 33, 64, 128, 256]
BAD_NUMS = ["0", "-1", "1e-300", "1e300", "inf", "-inf", "nan", "1e400", "-0.0", "5e-324"]
GOOD_NUMS = ["0.5", "1", "4", "64", "100", "400", "1000", "25.6", "4096", "1e4"]
BAD_TEXT = ["1_000", "\u0661\u0662", "+5", "0x10", "1e3", "", "nan", "\uff18", "8.0", "2 3"]
JSON_ODDITIES = ["Infinity", "-Infinity", "NaN", "1e400", "9" * 40, '"8"', "[8]", "{}", "null"]
JSON_ODDITIES += [
    "true",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[8]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
]
PRESETS = presets.preset_names()
CONV_HEADER = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
CONV_HEADER += "Num Filter, Strides,"
SIGNED_PARENTS = frozenset({"gradient", "exact"})
"""Output keys under which numbers may be negative: ``sensitivity``'s derivatives (and, by
:func:`_signed_key`, ``calibrate``'s errors; every other quantity printed is a count, time,
energy, power, area, byte total or ratio)."""


class Hang(Exception):
    """Raised in the main thread when a case passes its time limit."""


# ---- generators -----------------------------------------------------------------------------


def _int(r: random.Random, good: float = 0.8) -> int:
    return r.choice(GOOD_INTS) if r.random() < good else r.choice(BAD_INTS)


def _num(r: random.Random, good: float = 0.7) -> str:
    return r.choice(GOOD_NUMS) if r.random() < good else r.choice(BAD_NUMS)


def _cell(r: random.Random) -> str:
    x = r.random()
    return str(_int(r, 1.0)) if x < 0.85 else r.choice(BAD_TEXT) if x < 0.93 else str(_int(r, 0))


def _json_value(r: random.Random, good: str) -> str:
    """A JSON value's text: ``good`` most of the time, else an oddity or a bad integer."""
    x = r.random()
    return good if x < 0.75 else r.choice(JSON_ODDITIES) if x < 0.9 else str(_int(r, 0))


def _csv(r: random.Random, gemm: bool) -> str:
    header = "Layer, M, N, K," if gemm != (r.random() < 0.05) else CONV_HEADER
    width = 3 if gemm else 7
    rows = []
    for i in range(r.randint(1, 3)):
        cells = [f"l{i}"] + [_cell(r) for _ in range(width + (r.random() < 0.05))]
        if not gemm:  # a filter no larger than the input, most of the time
            cells[3], cells[4] = r.choice(["1", "3", cells[3]]), r.choice(["1", "3", cells[4]])
        rows.append(", ".join(cells) + ",")
    return "\n".join([header, *rows]) + "\n"


LAYER_KEYS = {
    "gemm": ("m", "k", "n"),
    "dense": ("in_features", "out_features", "tokens"),
    "matmul": ("m", "k", "n", "count"),
    "relu": ("elems",),
    "softmax": ("elems",),
    "add": ("elems", "inputs"),
    "conv2d": ("ifmap_h", "ifmap_w", "channels", "num_filters", "filter_h", "filter_w"),
    "pool": ("ifmap_h", "ifmap_w", "channels", "window", "stride"),
}


def _workload_json(r: random.Random) -> str:
    specs = []
    for i in range(r.randint(1, 3)):
        kind = r.choice(list(LAYER_KEYS))
        typ = _json_value(r, json.dumps(kind))
        items = [f'"name": "l{i}"', f'"type": {typ}']
        for key in LAYER_KEYS[kind]:
            good = "1" if key in ("filter_h", "filter_w", "window", "stride") else str(_int(r, 1))
            items.append(f'"{key}": {_json_value(r, good)}')
        if r.random() < 0.05:
            items.append(f'"{r.choice(["stride", "padding", "colour"])}": {_json_value(r, "1")}')
        specs.append("{" + ", ".join(items) + "}")
    return '{"name": "fuzz", "layers": [' + ", ".join(specs) + "]}"


DESIGN_FLAGS = {
    "--rows": lambda r: str(_int(r)),
    "--cols": lambda r: str(_int(r)),
    "--dataflow": lambda r: r.choice(["os", "ws", "is", "rs"]),
    "--clock-mhz": _num,
    "--sram-kib": _num,
    "--ifmap-kib": _num,
    "--dram-bw": _num,
    "--w-bits": lambda r: str(r.choice([2, 4, 8, 16, 1, 17, 0, 2**64])),
    "--a-bits": lambda r: str(r.choice([2, 4, 8, 16, 1, 17, 0])),
    "--acc-bits": lambda r: str(r.choice([16, 24, 32, 33, 1])),
    "--memory-model": lambda r: r.choice(["tiled", "scalesim", "magic"]),
    "--unsupported": lambda r: r.choice(["softmax", "gemm,relu", "warp", ","]),
    "--preset": lambda r: r.choice([*PRESETS, "tpu-v9"]),
    "--pe-local-bytes": lambda r: r.choice(["0", "520", "4096", "1048577", "0.5", *BAD_NUMS]),
}


def _design_flags(r: random.Random, folder: Path) -> list[str]:
    out = []
    for flag in r.sample(list(DESIGN_FLAGS), r.randint(0, 4)):
        out += [flag, DESIGN_FLAGS[flag](r)]
    if r.random() < 0.15:
        keys = r.sample([k for k in FIELDS if k != "name"], 3)
        items = [f'"{k}": {_json_value(r, json.dumps(_good_field(r, k)))}' for k in keys]
        (folder / "design.json").write_text("{" + ", ".join(items) + "}")
        out += ["--design", str(folder / "design.json")]
    return out


def _good_field(r: random.Random, key: str):
    config = presets.get_preset(r.choice(PRESETS))
    from npu_dse.designs import config_to_dict

    return config_to_dict(config)[key]


def _space(r: random.Random) -> str:
    choices = {
        "rows": ("[8, 16]", '{"min": 8, "max": 32, "pow2": true}', "[0]", '{"min": 1, "max": 2e7}'),
        "cols": ("[8, 16]", "[16]", '{"min": 4, "max": 1e9}', '{"min": 8, "max": 4}'),
        "sram_kib": ("[64, 256]", "[Infinity]", "[1e-300]", '{"min": 64, "max": 1024, "pow2": 1}'),
        "clock_mhz": ("[400, 800]", "[1e-300]", '{"min": 1e-300, "max": 1e-290, "pow2": true}'),
        "dram_bw_gbps": ("[4, 25.6]", "[1e-300]", "[-4]", '["4"]'),
        "dataflow": ('["os", "ws"]', '["rs"]', '"os"', "[]"),
        "w_bits": ("[4, 8]", "[1]", "[8.5]"),
        "a_bits": ("[8]", "[32]", '{"min": 2, "max": Infinity}'),
        "base": (json.dumps(r.choice(PRESETS)), '"tpu-v9"', "[1]", '"design.json"'),
    }
    items = []
    for key in r.sample(list(choices), r.randint(1, 4)):
        good = choices[key][0]
        items.append(f'"{key}": {good if r.random() < 0.6 else r.choice(choices[key][1:])}')
    return "{" + ", ".join(items) + "}"


def _workload_file(r: random.Random, folder: Path) -> list[str]:
    x = r.random()
    if x < 0.35:
        (folder / "w.csv").write_text(_csv(r, gemm=False), encoding="utf-8")
        return [str(folder / "w.csv")]
    if x < 0.7:
        (folder / "w.csv").write_text(_csv(r, gemm=True), encoding="utf-8")
        return [str(folder / "w.csv"), "--gemm"]
    if x < 0.97:
        (folder / "w.json").write_text(_workload_json(r), encoding="utf-8")
        return [str(folder / "w.json")]
    odd = r.choice([b"", b"\xff\xfe\x00", b"{" * 100, b"Layer, M, N, K,\n" + b"g, 8, 8, 8,\n" * 3])
    name = r.choice(["w.csv", "w.json", "w.txt"])
    (folder / name).write_bytes(odd)
    return [str(folder / name)]


def _checkpoint_dir(r: random.Random, folder: Path, name: str) -> Path:
    """A folder holding nothing, an empty, truncated or foreign checkpoint file."""
    out = folder / name
    kind = r.choice(["missing", "empty-folder", "empty", "truncated", "junk", "file"])
    if kind == "missing":
        return out
    if kind == "file":
        out.write_text("not a folder")
        return out
    (out / "checkpoint").mkdir(parents=True)
    blob = {"empty": b"", "truncated": b"\x87\xa6format", "junk": bytes(range(256))}
    if kind in blob:
        (out / "checkpoint" / "checkpoint.msgpack").write_bytes(blob[kind])
        (out / "search.npz").write_bytes(blob[kind])
    return out


FIT_FIELDS = ["dram_pj_per_bit", "mult_pj_8b", "sram_pj_per_64b_ref", "mac_pj", "leak_mw_per_mm2"]
FIT_FIELDS += ["node_nm", "rows", "", "dram_pj_per_bit,dram_pj_per_bit"]
METRICS = ["energy_j", "energy_j", "power_w", "latency_s", "edp_js", ""]


def _calibrate(r: random.Random, folder: Path) -> list[str]:
    """``calibrate``: a measurements CSV whose rows name a workload file and a design (a preset,
    a design file or junk), a metric and a figure; a few fields; few steps."""
    wl = _workload_file(r, folder)  # --gemm and other flags do not apply here
    rows = ["workload,design,metric,measured"] if r.random() < 0.9 else [r.choice(["", "a,b"])]
    for _ in range(r.randint(0, 4)):
        design = r.choice([*PRESETS, "design.json", "nope", ""])
        if design == "design.json":
            _design_flags(r, folder)  # may write design.json
        rows.append(",".join([Path(wl[0]).name, design, r.choice(METRICS), _num(r, 0.6)]))
    (folder / "meas.csv").write_text("\n".join(rows) + "\n")
    fit = ",".join(r.sample(FIT_FIELDS, r.randint(1, 3)))
    args = ["calibrate", str(folder / "meas.csv"), "--fit", fit, "--out", str(folder / "cal")]
    return [*args, "--steps", str(r.choice([1, 5, _int(r, 0.7)])), "--json"]


def cli_case(r: random.Random, folder: Path) -> list[str]:
    """One command line (files written into ``folder``)."""
    commands = ["simulate", "search", "train", "evaluate", "presets", "sensitivity", "calibrate"]
    cmd = r.choices(commands, [5, 3, 1, 1, 0.3, 0.5, 0.5])[0]
    if cmd == "calibrate":
        return _calibrate(r, folder)
    if cmd == "presets":
        return ["presets", *r.sample([r.choice([*PRESETS, "x", ""]), "--json"], r.randint(0, 2))]
    if cmd == "simulate":
        return ["simulate", *_workload_file(r, folder), *_design_flags(r, folder), "--json"]
    if cmd == "sensitivity":
        args = ["sensitivity", *_workload_file(r, folder), *_design_flags(r, folder), "--json"]
        return [*args, "--temperature", _num(r)] if r.random() < 0.3 else args
    if cmd == "evaluate":
        ckpt = _checkpoint_dir(r, folder, "model")
        return ["evaluate", "--checkpoint", str(ckpt), *_design_flags(r, folder), "--json"]
    if cmd == "train":
        out = _checkpoint_dir(r, folder, "run")
        if out.is_dir() and not (out / "checkpoint" / "checkpoint.msgpack").exists():
            (out / "checkpoint" / "checkpoint.msgpack").write_bytes(b"")  # never a real run
        args = ["train", "--model", r.choice(["cnn", "transformer", "mlp"]), "--out", str(out)]
        for flag in r.sample(["--epochs", "--seed", "--qat"], r.randint(0, 3)):
            n = 2 if flag == "--qat" else 1
            args += [flag, *(str(_int(r, 0.5)) for _ in range(n))]
            if flag == "--epochs" and int(args[-1]) > 3 and int(args[-1]) in GOOD_INTS:
                # a valid long training run is not malformed input: keep it to a few epochs
                args[-1] = str(r.randint(1, 3))
        return args
    (folder / "space.json").write_text(_space(r))
    wl = _workload_file(r, folder)
    args = ["search", "--workload", wl[0], *wl[1:], "--space", str(folder / "space.json")]
    args += ["--method", r.choice(["random", "exhaustive", "nsga2"]), "--json"]
    for flag in r.sample(["--seed", "--max-latency-s", "--max-power-w", "--max-area-mm2"], 2):
        args += [flag, str(_int(r, 0.6)) if flag == "--seed" else _num(r)]
    if r.random() < 0.1:
        args += ["--search-checkpoint", str(_checkpoint_dir(r, folder, "ckpt"))]
    return [*args, "--evaluations", str(r.choice([1, 2, 4])), "--time-budget-s", "20"]


# ---- the public API -------------------------------------------------------------------------


def _api_value(r: random.Random, good):
    x = r.random()
    if x < 0.7:
        return good
    return r.choice([0, -1, 2**63 - 1, 2**63, 10**400, math.nan, math.inf, 1e-300, "8", [8], None])


def _api_workload(r: random.Random):
    found = []
    for i in range(r.randint(1, 3)):
        kind = r.choice(["gemm", "dense", "relu", "conv2d", "pool"])
        kwargs = {
            k: _api_value(r, 1 if k in ("filter_h", "filter_w", "window") else _int(r, 1))
            for k in LAYER_KEYS.get(kind, LAYER_KEYS["gemm"])
        }
        build = layers.vector if kind == "relu" else getattr(layers, kind)
        if kind == "relu":
            kwargs["op"] = "relu"
        found.append(build(f"l{i}", **kwargs))
    return layers.workload(found)


def api_case(r: random.Random, folder: Path):
    """A call of the public API: a zero-argument function returning what it returned."""
    kind = r.choice(["checked_evaluate", "simulate", "design_from_dict", "space", "layers"])
    if kind == "layers":
        return lambda: _api_workload(r)
    if kind == "design_from_dict":
        keys = r.sample([k for k in FIELDS if k != "name"], 3)
        spec = {k: _api_value(r, _good_field(r, k)) for k in keys}
        return lambda: design_from_dict(spec)
    if kind == "space":
        from dse import Space

        spec = json.loads(_space(r).replace("Infinity", "1e308").replace('"design.json"', "1"))
        return lambda: Space.from_dict(spec)
    overrides = {
        key: _api_value(r, _good_field(r, key))
        for key in r.sample(["rows", "cols", "clock_mhz", "dram_bw_gbps", "w_bits"], 2)
    }

    field = r.choice(["rows", "cols", "clock_mhz", "dram_bw_gbps", "vector_lanes", "host_gops"])
    raw = _api_value(r, _good_field(r, field) if field in FIELDS else 64)
    preset = r.choice(PRESETS)

    def run():
        wl = _api_workload(r)
        if kind == "simulate":
            return simulate(wl, resolve_design(preset=preset, overrides=overrides)).to_dict()
        config = dataclasses.replace(presets.get_preset(preset), **{field: raw})
        return checked_evaluate(config, wl)

    return run


# ---- classification -------------------------------------------------------------------------


def _numbers(value, signed=False):
    """``(signed, number)`` for every number in a JSON-like value or a report's arrays;
    ``signed`` when the number lies under a key of :data:`SIGNED_PARENTS`."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _numbers(v, signed or str(k) in SIGNED_PARENTS or _signed_key(k))
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _numbers(v, signed)
    elif dataclasses.is_dataclass(value):
        for f in dataclasses.fields(value):
            yield from _numbers(getattr(value, f.name), signed or f.name in SIGNED_PARENTS)
    elif isinstance(value, bool | str) or value is None:
        return
    elif isinstance(value, int | float):
        yield signed, float(value)
    elif hasattr(value, "shape"):
        arr = np.asarray(value)
        if arr.dtype.kind in "iuf":
            for x in arr.astype(np.float64).reshape(-1):
                yield signed, float(x)


def _signed_key(key) -> bool:
    """``calibrate``'s per-row errors (predicted against measured) may be negative."""
    return str(key).startswith("error_")


def check_output(value) -> str:
    """``ok``, ``nonfinite`` or ``negative`` for what a case produced."""
    for signed, x in _numbers(value):
        if not math.isfinite(x):
            return "nonfinite"
        if x < 0 and not signed:
            return "negative"
    return "ok"


def _classify_cli(code: int, out: str, err: str) -> str:
    if code == 0:
        try:
            return check_output(json.loads(out)) if out.strip() else "ok"
        except json.JSONDecodeError:
            return "nonfinite" if any(t in out.lower() for t in ("nan", "inf")) else "ok"
    lines = [line for line in err.splitlines() if line.strip() and "\r" not in line]
    if code == 2 and len(lines) == 1 and lines[0].startswith("npu-dse: error: "):
        return "clean"
    return "traceback"


def _alarm(signum, frame):
    raise Hang


def run_case(seed: int, index: int, root: Path, limit_s: float) -> tuple[str, str, str]:
    """``(outcome, what, detail)`` of case ``index``; ``what`` is the command or the call."""
    r = random.Random(f"{seed}:{index}")
    folder = root / f"case{index}"
    folder.mkdir()
    is_api = r.random() < 0.3
    argv = [] if is_api else cli_case(random.Random(f"{seed}:{index}:c"), folder)
    what = "api" if is_api else " ".join(argv)
    if is_api:
        call = api_case(r, folder)
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, limit_s)
    started = time.perf_counter()
    try:
        if is_api:
            outcome, detail = _run_api(call)
        else:
            outcome, detail = _run_cli(argv)
    except Hang:
        outcome, detail = "hang", f"over {limit_s:g} s"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    if time.perf_counter() - started > limit_s:
        outcome, detail = "hang", f"{time.perf_counter() - started:.1f} s"
    _bound_compilations()
    return outcome, what, detail


MAPPINGS_CLEAR_AT = 40_000
"""Memory mappings of this process above which JAX's caches are cleared between cases."""


def _bound_compilations() -> None:
    """Every distinct compilation keeps a few memory mappings until JAX's caches drop it, and
    thousands of cases compile tens of thousands of shapes: past Linux's 65,530 mappings per
    process the next compilation fails ("Cannot allocate memory") and the process dies. The
    caches are cleared, as the test suite's conftest does, before that."""
    try:
        with open("/proc/self/maps", "rb") as f:
            mappings = sum(1 for _ in f)
    except OSError:
        return
    if mappings > MAPPINGS_CLEAR_AT:
        import gc

        import jax

        jax.clear_caches()
        gc.collect()


def _run_api(call) -> tuple[str, str]:
    try:
        result = call()
    except Hang:
        raise
    except ValueError as err:
        text = str(err)
        return ("clean" if text and "\n" not in text else "traceback"), text
    except Exception as err:  # noqa: BLE001 (what the harness counts)
        return "traceback", f"{type(err).__name__}: {err}"
    return check_output(result), ""


def _run_cli(argv: list[str]) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except Hang:
            raise
        except BaseException as exc:  # noqa: BLE001 (an escaped exception is a traceback)
            return "traceback", f"escaped {type(exc).__name__}: {exc}"
    return _classify_cli(code, out.getvalue(), err.getvalue()), err.getvalue().strip()[-300:]


def fuzz(cases: int, seed: int = 0, limit_s: float = 120.0, progress=None, first: int = 0) -> dict:
    """Run cases ``first`` to ``first + cases - 1`` of ``seed``; returns the counts by outcome
    and by command and the failures (each also passed to ``progress`` as it happens)."""
    counts, by_command, failures = collections.Counter(), collections.Counter(), []
    with tempfile.TemporaryDirectory(prefix="npu-dse-fuzz-") as tmp:
        for done, i in enumerate(range(first, first + cases), start=1):
            outcome, what, detail = run_case(seed, i, Path(tmp), limit_s)
            counts[outcome] += 1
            by_command[(what.split(" ")[0], outcome)] += 1
            failure = None
            if outcome not in ("ok", "clean"):
                failure = {"case": i, "outcome": outcome, "what": what, "detail": detail}
                failures.append(failure)
            if progress:
                progress(done, counts, failure)
    return {"counts": dict(counts), "by_command": dict(by_command), "failures": failures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--first", type=int, default=0, metavar="I", help="first case (split a run over processes)"
    )
    parser.add_argument("--limit-s", type=float, default=120.0, help="per-case time limit")
    parser.add_argument("--show", type=int, metavar="I", help="print case I and stop")
    args = parser.parse_args()
    if args.show is not None:
        with tempfile.TemporaryDirectory() as tmp:
            print(run_case(args.seed, args.show, Path(tmp), args.limit_s))
        return
    started = time.perf_counter()

    def progress(done, counts, failure):
        if failure is not None:
            print(json.dumps(failure), file=sys.stderr, flush=True)
        if done % 500 == 0:
            print(
                f"{done} cases, {time.perf_counter() - started:.0f} s: {dict(counts)}",
                file=sys.stderr,
                flush=True,
            )

    found = fuzz(args.cases, args.seed, args.limit_s, progress, args.first)
    wall = time.perf_counter() - started
    last = args.first + args.cases - 1
    print(
        f"fuzz_cli: {args.cases} cases ({args.first}-{last}), seed {args.seed}, {wall:.0f} s "
        f"({args.cases / wall:.1f} cases/s; machine shared with other work)"
    )
    for outcome in ("ok", "clean", "traceback", "nonfinite", "negative", "hang"):
        print(f"  {outcome:<10}{found['counts'].get(outcome, 0):>7}")
    print(
        "by command:",
        json.dumps({f"{c} {o}": n for (c, o), n in sorted(found["by_command"].items())}, indent=1),
    )
    for failure in found["failures"][:30]:
        print(json.dumps(failure))


if __name__ == "__main__":
    main()
