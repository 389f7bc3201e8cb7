"""The gradient search over two JAX processes (``jax.distributed`` over localhost, CPU
collectives) finds what one process finds: the same designs evaluated in the same order."""

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from dse import gradient
from npu_dse import distributed
from npu_dse.cli import main
from npu_dse.cli_errors import EXIT_USAGE

SPACE = {
    "rows": [8, 16, 32],
    "cols": [8, 16],
    "dataflow": ["os", "ws"],
    "sram_kib": [64, 256],
    "w_bits": [4, 8],
}
WORKLOAD = {
    "name": "tiny",
    "layers": [
        {"name": "g", "type": "gemm", "m": 64, "k": 128, "n": 64},
        {"name": "h", "type": "gemm", "m": 32, "k": 64, "n": 96},
    ],
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _history(folder: Path) -> list[dict]:
    """The run folder's evaluations, without their wall-clock column."""
    with open(folder / "evaluations.csv", newline="") as f:
        return [{k: v for k, v in row.items() if k != "wall_s"} for row in csv.DictReader(f)]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("distributed")
    (root / "tiny.json").write_text(json.dumps(WORKLOAD))
    (root / "space.json").write_text(json.dumps(SPACE))
    return root


def _args(root: Path, out: str) -> list[str]:
    return [
        *("search", "--workload", str(root / "tiny.json"), "--space", str(root / "space.json")),
        *("--method", "gradient", "--starts", "6", "--steps", "8", "--seed", "5"),
        *("--json", "--out", str(root / out)),
    ]


def test_two_processes_find_what_one_finds(files, capsys):
    port = _free_port()
    # one device per process (whatever device count XLA_FLAGS asks of this one), compiled as
    # this process compiles (tests/conftest.py), so that both compute the same floats
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if "device_count" not in f]
    env = {**os.environ, "NPU_DSE_COMPILE_CACHE": "off", "XLA_FLAGS": " ".join(flags)}
    procs = [
        subprocess.Popen(
            [
                *(sys.executable, "-m", "npu_dse.cli", *_args(files, f"two{i}")),
                *("--coordinator", f"127.0.0.1:{port}", "--num-processes", "2"),
                *("--process-id", str(i)),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in (0, 1)
    ]
    assert main(_args(files, "one")) == 0  # meanwhile, one process alone
    one = json.loads(capsys.readouterr().out)
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-2000:]
    two = [json.loads(out) for out, _ in outs]  # stdout carries the answer alone
    for doc in two:
        assert doc["best"] == one["best"] and doc["evaluations"] == one["evaluations"]
    assert one["best"] is not None and one["evaluations"] > 6
    # Process 0 alone wrote a run folder, holding every evaluation one process made, in order.
    assert not (files / "two1").exists()
    assert _history(files / "two0") == _history(files / "one")


def test_one_process_holds_the_whole_population():
    n, part = gradient.population_split(6)
    assert part == slice(0, n) and n >= 6


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--num-processes", "2"], "several processes need --coordinator HOST:PORT"),
        (
            ["--coordinator", "localhost", "--num-processes", "2", "--process-id", "0"],
            "--coordinator must be HOST:PORT",
        ),
        (
            ["--coordinator", "h:1", "--num-processes", "2", "--process-id", "2"],
            "--process-id must be in 0..1, got 2",
        ),
        (
            ["--coordinator", "h:1", "--num-processes", "0", "--process-id", "0"],
            "--num-processes must be in 1..4096, got 0",
        ),
    ],
)
def test_bad_process_flags_are_one_line(files, capsys, flags, message):
    assert main([*_args(files, "bad")[:-3], *flags]) == EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert err.startswith("npu-dse: error: ") and message in err and "\n" not in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--method", "random"], "only the gradient search runs over several processes"),
        (["--time-budget-s", "10"], "takes neither --time-budget-s"),
    ],
)
def test_what_processes_cannot_share_is_refused(files, capsys, extra, message):
    flags = ["--coordinator", "127.0.0.1:1", "--num-processes", "2", "--process-id", "0"]
    assert main([*_args(files, "bad")[:-3], *flags, *extra]) == EXIT_USAGE
    assert message in capsys.readouterr().err


def test_one_process_flags_mean_one_process():
    assert distributed.check_args(None, None, None) is False
    assert distributed.check_args(None, 1, 0) is False
