"""benchmarks/suite_compiles.py: its table of compilations, and one real run on one test."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import suite_compiles  # noqa: E402


def test_summary_sums_per_function_and_per_file():
    lines = [
        "tests/test_a.py::t1\tjit(_evaluate)\t1.5\n",
        "tests/test_a.py::t2\tjit(_evaluate)\t0.5\n",
        "tests/test_b.py::t\tjit(step)\t3.0\n",
    ]
    text = suite_compiles.summarize(lines, top=5)
    assert text.splitlines()[0] == "3 compilations, 5.0 s (test processes only)"
    assert any(line.split() == ["jit(_evaluate)", "2", "2.0"] for line in text.splitlines())
    assert any(line.split() == ["tests/test_a.py", "2.0"] for line in text.splitlines())


def test_a_run_counts_the_cost_models_compilation():
    # its own pytest run, with its own shared cache (none of this run's programs)
    env = {k: v for k, v in os.environ.items() if k != "NPU_DSE_TEST_SHARED_CACHE"}
    test = "tests/test_cost.py::test_report_totals_are_consistent"
    cmd = [sys.executable, str(REPO / "benchmarks" / "suite_compiles.py"), "--", "-q", test]
    done = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, check=True)
    rows = [line.split() for line in done.stdout.splitlines()]
    evaluate = [row for row in rows if row and row[0] == "jit(_evaluate)"]
    assert evaluate and int(evaluate[0][1]) >= 1, done.stdout
    assert "(pytest exited" not in done.stdout, done.stdout
