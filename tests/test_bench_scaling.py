"""The scaling benchmark's smoke test: the tables have the advertised shape (no timings)."""

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_scaling  # noqa: E402

ROW = re.compile(r"^\s*(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.e+-]+)\s+(nan|[\d.]+)$")


@pytest.mark.slow  # compiles the simulation for two layer counts (tens of seconds)
def test_quick_tables_have_one_row_per_size(capsys):
    bench_scaling.main(["--quick", "--tables", "simulate,evaluate"])
    out = capsys.readouterr().out
    blocks = out.split("\n\n")[1:]
    assert len(blocks) == 2
    for block, sizes in zip(blocks, ([10, 100], [1, 10, 100]), strict=True):
        lines = block.splitlines()
        assert lines[1] == bench_scaling.HEADER
        rows = [ROW.match(line) for line in lines[2 : 2 + len(sizes)]]
        assert all(rows), lines
        assert [int(r.group(1)) for r in rows] == sizes
        assert rows[0].group(5) == "nan" and all(r.group(5) != "nan" for r in rows[1:])
        assert lines[2 + len(sizes)].startswith("peak RSS after this table: ")
        assert lines[3 + len(sizes)].startswith("linearity: ")


def test_an_unknown_table_is_refused(capsys):
    with pytest.raises(SystemExit) as err:
        bench_scaling.main(["--tables", "simulate,nope"])
    assert err.value.code == 2
    assert "--tables: unknown table 'nope'" in capsys.readouterr().err
