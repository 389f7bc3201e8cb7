"""Speed of ``npu-dse simulate`` on large workloads: layers per second beyond start-up.

Writes a SCALE-Sim conv topology of ``--layers`` random layers (seeded) and one of a single
layer, and times ``npu-dse simulate`` on both as fresh processes (the compilation cache warm,
filled by a first run), as a table (the default) and with ``--json``, the two files in
alternation. The figure is ``(layers - 1) / (time of layers - time of one)``, the median over
the pairs: the rate beyond start-up (imports, JAX, loading compiled programs), in wall time
and in CPU time (user + system of the process: steadier than wall time on a shared machine).
Then, in this process, the same workload stage by stage (reading the CSV, mapping and
evaluation, the report's dict, its JSON, its table), each a median of ``--repeats`` warm
calls, wall and CPU time. Goal: 20,000 layers/s or more beyond start-up.

Command: ``.venv/bin/python benchmarks/bench_simulate.py [--layers 20000] [--repeats 5]``;
about two minutes on the 2-core CPU (figures there are noisy when other work shares it).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CLI = [sys.executable, "-m", "npu_dse.cli"]
HEADER = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
HEADER += "Num Filter, Strides,\n"


def topology(n: int, seed: int = 0) -> str:
    """A SCALE-Sim conv topology of ``n`` random layers (1x1 and 3x3 convs, 7 to 56 pixels)."""
    rng = np.random.default_rng(seed)
    out = rng.choice([7, 14, 28, 56], n)
    kernel = rng.choice([1, 3], n)
    channels, filters = rng.choice([16, 32, 64, 128], (2, n))
    rows = (
        f"conv{i}, {o + k - 1}, {o + k - 1}, {k}, {k}, {c}, {f}, 1,\n"
        for i, (o, k, c, f) in enumerate(zip(out, kernel, channels, filters, strict=True))
    )
    return HEADER + "".join(rows)


def _run(cmd: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system, the child's threads together) of a process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu


def _median(fn, repeats: int) -> tuple[float, float]:
    """Median wall and CPU seconds (all threads of this process) of ``fn()``."""
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
    return statistics.median(walls), statistics.median(cpus)


def _rate(n: int, extra_s: float) -> str:
    return f"{(n - 1) / extra_s:,.0f}" if extra_s > 0 else "n/a (noise)"


def processes(one: Path, many: Path, n: int, cache: Path, repeats: int) -> None:
    """The CLI as fresh processes, one layer against ``n``, table and ``--json``: the runs
    alternate, and each figure is the median over the pairs of the difference in a pair."""
    print(f"npu-dse simulate, fresh processes, warm compilation cache, median of {repeats} pairs")
    print(
        f"{'output':8s} {'1 layer s':>10s} {f'{n} layers s':>14s} {'extra s':>8s} "
        f"{'layers/s':>12s} {'extra CPU s':>12s} {'layers/CPU s':>13s}"
    )
    for label, flags in (("table", []), ("--json", ["--json"])):
        cmds = [
            [*CLI, "--compile-cache", str(cache), "simulate", str(p), *flags] for p in (one, many)
        ]
        for cmd in cmds:
            _run(cmd)  # fills the cache for this shape
        pairs = [(_run(cmds[0]), _run(cmds[1])) for _ in range(repeats)]
        t1 = statistics.median(a[0] for a, _ in pairs)
        tn = statistics.median(b[0] for _, b in pairs)
        extra = statistics.median(b[0] - a[0] for a, b in pairs)
        extra_cpu = statistics.median(b[1] - a[1] for a, b in pairs)
        print(
            f"{label:8s} {t1:10.2f} {tn:14.2f} {extra:8.2f} {_rate(n, extra):>12s} "
            f"{extra_cpu:12.2f} {_rate(n, extra_cpu):>13s}"
        )


def stages(many: Path, n: int, repeats: int) -> None:
    """The same workload stage by stage in this process (warm: each stage run once before)."""
    from hw.x64 import x64_scope
    from npu_dse import report
    from npu_dse.simulate import resolve_design, simulate
    from npu_dse.workloads import load_workload

    with x64_scope():
        design = resolve_design(preset="scalesim-32x32")
        wl, _ = load_workload(many)
        sim = simulate(wl, design)
        result = sim.to_dict()
        steps = (
            ("read the CSV", lambda: load_workload(many)),
            ("map and evaluate", lambda: simulate(wl, design)),
            ("report dict", sim.to_dict),
            ("JSON text", lambda: report.simulation_json(result)),
            ("table text", lambda: report.format_simulation(result, many.name, stall=True)),
        )
        print(f"\nin one process, {n} layers, median of {repeats} warm calls")
        print(f"{'stage':18s} {'wall s':>8s} {'layers/s':>10s} {'CPU s':>8s}")
        wall_sum = cpu_sum = 0.0
        for label, fn in steps:
            fn()
            wall, cpu = _median(fn, repeats)
            wall_sum, cpu_sum = wall_sum + wall, cpu_sum + cpu
            print(f"{label:18s} {wall:8.3f} {n / wall:10,.0f} {cpu:8.3f}")
        print(f"{'all five':18s} {wall_sum:8.3f} {n / wall_sum:10,.0f} {cpu_sum:8.3f}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--stages-only", action="store_true", help="skip the process timings")
    args = parser.parse_args(argv)
    if args.layers < 2:
        parser.error(f"--layers must be at least 2, got {args.layers}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        one, many = tmp / "one.csv", tmp / f"layers{args.layers}.csv"
        one.write_text(topology(1))
        many.write_text(topology(args.layers))
        if not args.stages_only:
            processes(one, many, args.layers, tmp / "cache", args.repeats)
        stages(many, args.layers, args.repeats)


if __name__ == "__main__":
    main()
