"""Do searches stop within their budgets? ``npu-dse search`` run as a user runs it.

For each case the command runs in a fresh process (so compilation is included); the table
gives the evaluation budget N and the time budget T, the evaluations reported, the search's
own wall time (from the method's call: compilation counts), the whole process's wall time, and
the process start-up: everything the process did before and after the search (imports, reading
the files, for a checkpoint the accuracy calibration by execution and the final re-check),
measured as process time minus search time. A search within budget has evaluations <= N and
search wall time <= T plus at most one step's overrun.

Command: ``.venv/bin/python benchmarks/bench_budget.py [--repeats 3]``; about 4 minutes on the
2-core CPU with the default 3 repeats (medians are printed).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from npu_dse.workloads import bundled, bundled_space

CLI = [sys.executable, "-m", "npu_dse.cli"]
RESNET = ["--workload", str(bundled("resnet18.csv")), "--space", str(bundled_space("edge.json"))]
RESNET += ["--max-latency-s", "0.003", "--max-power-w", "1"]


def _run(args: list[str]) -> tuple[dict, float]:
    start = time.perf_counter()
    done = subprocess.run([*CLI, *args, "--json"], capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed: {done.stderr.strip()}")
    return json.loads(done.stdout), wall


def _cases(model_dir: Path) -> list[tuple[str, list[str], int, float]]:
    cnn = ["--checkpoint", str(model_dir), "--space", str(bundled_space("edge.json"))]
    cnn += ["--min-accuracy", "0.9", "--max-power-w", "1"]
    return [
        ("resnet18 N=200 T=30", ["search", *RESNET], 200, 30.0),
        ("resnet18 N=20 T=5", ["search", *RESNET], 20, 5.0),
        ("cnn + accuracy N=100 T=10", ["search", *cnn], 100, 10.0),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"python {platform.python_version()}, {platform.machine()}, repeats {args.repeats}")
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "cnn"
        subprocess.run(
            [*CLI, "train", "--model", "cnn", "--quick", "--out", str(model_dir)],
            capture_output=True,
            check=True,
        )
        header = f"{'case':<28}{'evals':>7}{'N':>5}{'search s':>10}{'T':>6}{'process s':>11}"
        print(header + f"{'start-up s':>12}  stopped")
        for name, cmd, n, t in _cases(model_dir):
            runs = [
                _run([*cmd, "--evaluations", str(n), "--time-budget-s", str(t)])
                for _ in range(args.repeats)
            ]
            evals = max(doc["evaluations"] for doc, _ in runs)
            search_s = statistics.median(doc["wall_s"] for doc, _ in runs)
            process_s = statistics.median(wall for _, wall in runs)
            startup_s = statistics.median(wall - doc["wall_s"] for doc, wall in runs)
            stopped = ",".join(sorted({doc.get("stopped", "?") for doc, _ in runs}))
            print(
                f"{name:<28}{evals:>7}{n:>5}{search_s:>10.1f}{t:>6g}{process_s:>11.1f}"
                f"{startup_s:>12.1f}  {stopped}"
            )


if __name__ == "__main__":
    main()
