"""Where the test suite's compile time goes: XLA compilations per jitted function.

Runs pytest (by default the whole suite as ``make test`` runs it: ``-n 2 --dist loadfile``)
with a plugin that listens to JAX's backend-compilation events in every test process (not in
the CLI child processes some tests start) and writes one line per compilation: the test, the
function's name and the seconds (a program loaded from the run's shared compilation cache,
root conftest.py, is not a compilation). Then prints the total, the count, and the functions
with the most compile time, e.g. how many distinct programs of ``hw.evaluate``
(``_evaluate``) and ``default_mapping`` (``_default_mapping``) the suite compiles.

Command: ``.venv/bin/python benchmarks/suite_compiles.py [--top 15] [-- PYTEST ARGS]``; as
long as the suite (about 8 minutes on the 2-core CPU).
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENV = "NPU_DSE_COMPILE_LOG_DIR"
BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"


def _listen(folder: str) -> None:
    """In a test process: append ``test<TAB>function<TAB>seconds`` per compilation."""
    import jax

    out = open(Path(folder) / f"{os.getpid()}.tsv", "a", buffering=1)  # noqa: SIM115

    def listener(event, duration, **kw):
        if event == BACKEND_COMPILE:
            test = os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0]
            out.write(f"{test}\t{kw.get('fun_name', '?')}\t{duration:.6f}\n")

    jax.monitoring.register_event_duration_secs_listener(listener)


def pytest_configure(config):  # the plugin's hook (``-p benchmarks.suite_compiles``)
    folder = os.environ.get(ENV)
    if folder:
        _listen(folder)


def summarize(lines: list[str], top: int) -> str:
    """The report of the tab-separated compilation lines."""
    seconds: collections.Counter = collections.Counter()
    count: collections.Counter = collections.Counter()
    by_file: collections.Counter = collections.Counter()
    for line in lines:
        test, fun, s = line.rstrip("\n").split("\t")
        seconds[fun] += float(s)
        count[fun] += 1
        by_file[test.split("::")[0]] += float(s)
    total = sum(seconds.values())
    out = [f"{sum(count.values())} compilations, {total:.1f} s (test processes only)", ""]
    out.append(f"{'function':32} {'count':>6} {'s':>8}")
    out += [f"{f:32} {count[f]:6d} {s:8.1f}" for f, s in seconds.most_common(top)]
    out += ["", f"{'test file':48} {'s':>8}"]
    out += [f"{t:48} {s:8.1f}" for t, s in by_file.most_common(top)]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=15, help="rows per table")
    parser.add_argument("pytest_args", nargs="*", help="after --: pytest's arguments")
    args = parser.parse_args()
    pytest_args = args.pytest_args or ["-q", "-n", "2", "--dist", "loadfile"]
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, ENV: folder}
        cmd = [sys.executable, "-m", "pytest", "-p", "benchmarks.suite_compiles", *pytest_args]
        done = subprocess.run(cmd, env=env, cwd=REPO, check=False)
        lines = [line for f in sorted(Path(folder).glob("*.tsv")) for line in f.open()]
    print(summarize(lines, args.top))
    if done.returncode != 0:
        print(f"(pytest exited {done.returncode})")


if __name__ == "__main__":
    main()
