"""Start-up of ``npu-dse`` against a bare Python and a bare JAX start, measured in one run.

Each figure is the median wall time of ``--repeats`` fresh processes:

- ``python -c "import numpy"`` (bare Python) and ``python -c "import jax;
  jax.numpy.zeros(1).block_until_ready()"`` (bare JAX: import and the first dispatch);
- ``npu-dse --help`` and ``npu-dse presets`` (no JAX imported);
- ``npu-dse simulate`` of two GEMMs, cold (an empty compilation cache folder each time) and
  warm (the same folder, filled by an earlier run), with ``--compile-cache DIR``;
- ``npu-dse simulate`` of three other GEMMs (other names, shapes and length) with the cache
  the two-GEMM run filled, restored before each run: another network of a nearby length, as
  a user adding a layer runs it (both are padded to the same bucket of lengths, hw.buckets);
- with ``--search``, ``npu-dse search`` of the bundled two-GEMM space cold and warm, and warm
  with other budgets (the limits are traced, so the warm programs serve them).

Each line gives seconds and the ratios to bare Python and bare JAX. Goals: ``presets`` and
``--help`` near bare Python, a warm ``simulate`` within 2x bare JAX.

Command: ``.venv/bin/python benchmarks/bench_startup.py [--repeats 5] [--search]``; about a
minute with the defaults on the 2-core CPU (the search adds a few minutes).
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PY = [sys.executable]
CLI = [sys.executable, "-m", "npu_dse.cli"]
GEMMS = "Layer, M, N, K,\ng0, 512, 256, 128,\ng1, 256, 512, 256,\n"
OTHER = "Layer, M, N, K,\nqkv, 128, 768, 256,\nout, 128, 256, 768,\nfc, 64, 1024, 256,\n"
SPACE = '{"rows": [16, 32, 64], "cols": [16, 32, 64], "sram_kib": [64, 256, 1024]}'


def _time(cmd: list[str], before=None) -> float:
    if before is not None:
        before()
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()}")
    return wall


def _median(cmd: list[str], repeats: int, before=None) -> float:
    return statistics.median(_time(cmd, before) for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--search", action="store_true", help="also time a small search")
    args = parser.parse_args()
    n = args.repeats
    print(f"python {platform.python_version()}, {platform.machine()}, median of {n} processes")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "two.csv").write_text(GEMMS)
        (tmp / "space.json").write_text(SPACE)
        cache = tmp / "cache"

        def empty():
            shutil.rmtree(cache, ignore_errors=True)

        sim = [*CLI, "--compile-cache", str(cache), "simulate", str(tmp / "two.csv"), "--gemm"]
        rows = [
            ("bare python (import numpy)", _median([*PY, "-c", "import numpy"], n)),
            (
                "bare JAX (import, first op)",
                _median([*PY, "-c", "import jax; jax.numpy.zeros(1).block_until_ready()"], n),
            ),
            ("npu-dse --help", _median([*CLI, "--help"], n)),
            ("npu-dse presets", _median([*CLI, "presets"], n)),
            ("simulate 2 GEMMs, cold cache", _median(sim, n, before=empty)),
        ]
        _time(sim)  # fill the cache
        rows.append(("simulate 2 GEMMs, warm cache", _median(sim, n)))
        (tmp / "other.csv").write_text(OTHER)
        filled = tmp / "filled"
        shutil.copytree(cache, filled)

        def as_filled():
            shutil.rmtree(cache, ignore_errors=True)
            shutil.copytree(filled, cache)

        other_sim = [*sim[:-2], str(tmp / "other.csv"), "--gemm"]
        rows.append(("simulate 3 GEMMs, 2's cache", _median(other_sim, n, before=as_filled)))
        if args.search:
            search = [*CLI, "--compile-cache", str(cache), "search", "--workload"]
            search += [str(tmp / "two.csv"), "--gemm", "--space", str(tmp / "space.json")]
            search += ["--starts", "16", "--steps", "40", "--json"]
            rows.append(("search, cold cache", _median(search, 1, before=empty)))
            _time([*search, "--max-power-w", "1"])
            rows.append(("search, warm cache", _median([*search, "--max-power-w", "1"], n)))
            other = [*search, "--max-power-w", "0.3"]
            rows.append(("search, warm, other budget", _median(other, n)))
    numpy_s, jax_s = rows[0][1], rows[1][1]
    print(f"{'':30} {'s':>7} {'x python':>9} {'x JAX':>7}")
    for name, s in rows:
        print(f"{name:30} {s:7.2f} {s / numpy_s:9.1f} {s / jax_s:7.2f}")


if __name__ == "__main__":
    main()
