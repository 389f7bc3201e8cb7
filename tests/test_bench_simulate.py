"""The simulate benchmark's smoke test: its topology is a plain SCALE-Sim file (the columnar
reader takes it) and the stage table has its rows (no timings asserted)."""

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_simulate  # noqa: E402

from npu_dse import workloads  # noqa: E402


def test_topology_is_read_as_columns(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(bench_simulate.topology(7))
    fast = workloads._scalesim_columns(path, gemm=False)
    assert fast is not None and fast.names == tuple(f"conv{i}" for i in range(7))
    assert workloads.load_workload(path)[1] == workloads.read_scalesim_conv(path)


def test_stage_table_has_a_row_per_stage(capsys):
    bench_simulate.main(["--layers", "3", "--repeats", "1", "--stages-only"])
    lines = capsys.readouterr().out.strip().splitlines()
    stages = ["read the CSV", "map and evaluate", "report dict", "JSON text", "table text"]
    rows = lines[-6:]
    for row, label in zip(rows, [*stages, "all five"], strict=True):
        assert re.fullmatch(rf"{label}\s+[\d.]+\s+[\d,]+\s+[\d.]+", row), row


def test_too_few_layers_are_refused(capsys):
    with pytest.raises(SystemExit):
        bench_simulate.main(["--layers", "1"])
    assert "--layers must be at least 2" in capsys.readouterr().err
