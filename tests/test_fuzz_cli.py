"""A sample of benchmarks/fuzz_cli.py's hostile cases: none may end in a traceback, a
non-finite or negative figure, or a hang."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "fuzz_cli.py"
_SPEC = importlib.util.spec_from_file_location("fuzz_cli", _PATH)
fuzz_cli = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(fuzz_cli)

BAD = ("traceback", "nonfinite", "negative", "hang")


_RUN = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("fuzz_cli", sys.argv[1])
fuzz_cli = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fuzz_cli)
found = fuzz_cli.fuzz(int(sys.argv[2]), int(sys.argv[3]), limit_s=120)
print(json.dumps({"counts": dict(found["counts"]), "failures": found["failures"][:5]}))
"""


def _check(cases: int, seed: int) -> None:
    # In a process of its own: hostile searches that run out of time leave abandoned
    # compilations running on worker threads (dse.deadline), which must not outlive the sample.
    done = subprocess.run(
        [sys.executable, "-c", _RUN, str(_PATH), str(cases), str(seed)],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert sum(found["counts"].values()) == cases
    assert not any(found["counts"].get(b, 0) for b in BAD), found["failures"][:5]
    assert found["counts"].get("clean", 0) > 0


def test_fuzz_sample():
    _check(40, seed=1)


@pytest.mark.slow
def test_fuzz_larger_sample():
    _check(300, seed=2)


def test_outputs_are_checked():
    assert fuzz_cli.check_output({"total": {"energy_j": float("inf")}}) == "nonfinite"
    assert fuzz_cli.check_output({"layers": [{"total_cycles": -3}]}) == "negative"
    assert fuzz_cli.check_output({"x": [1, 2.5]}) == "ok"
    # sensitivity's derivatives are signed; nothing else is, even under the same key names
    assert fuzz_cli.check_output({"gradient": {"latency_s": {"rows": -1.0}}}) == "ok"
    assert fuzz_cli.check_output({"layers": [{"exact": {"w_bits": -0.5}}]}) == "ok"
    assert fuzz_cli.check_output({"hardware": {"rows": -1.0}}) == "negative"
    assert fuzz_cli.check_output({"gradient": {"rows": float("nan")}}) == "nonfinite"
