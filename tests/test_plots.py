"""Search files: the CSV of evaluated designs round-trips, labels read well, figures appear."""

import csv

import numpy as np
import pytest

from dse.design import base_design
from dse.result import SearchResult
from dse.space import Space
from hw import layers
from npu_dse.plots import (
    columns,
    design_label,
    plot_fronts,
    plot_trace,
    result_rows,
    write_evaluations_csv,
)


def row(i: int, latency_s: float, energy_j: float, feasible: bool = True) -> dict:
    return {
        "evaluation": i,
        "wall_s": 0.01 * i,
        "rows": 64,
        "cols": 32,
        "dataflow": i % 3,
        "sram_kib": 2048.0,
        "clock_mhz": 800.0,
        "dram_bw_gbps": 25.6,
        "w_bits": 8.0,
        "a_bits": 8.0,
        "mean_w_bits": 8.0,
        "mean_a_bits": 8.0,
        "latency_s": latency_s,
        "energy_j": energy_j,
        "power_w": energy_j / latency_s,
        "area_mm2": 12.5,
        "edp_js": energy_j * latency_s,
        "fits": True,
        "feasible": feasible,
    }


def result(method: str, seed: int = 0) -> SearchResult:
    rng = np.random.default_rng(seed)
    rows = [row(i, *rng.uniform(1e-3, 1e-1, 2), feasible=i % 5 != 0) for i in range(40)]
    trace = [(0.1, 8, np.inf), (0.2, 16, 3e-4), (0.4, 32, 1e-4), (0.5, 40, 1e-4)]
    return SearchResult(method, seed, "edp", None, None, 40, 0.5, rows, trace=trace)


def test_csv_round_trip(tmp_path):
    res = result("random")
    rows = result_rows(res)
    path = write_evaluations_csv(tmp_path / "sub" / "evaluations.csv", rows)
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        back = list(reader)
    assert reader.fieldnames[:4] == ["method", "seed", "evaluation", "wall_s"]
    assert reader.fieldnames[-2:] == ["fits", "feasible"]
    assert "accuracy" not in reader.fieldnames
    assert len(back) == len(rows)
    assert [r["dataflow"] for r in back[:4]] == ["os", "ws", "is", "os"]
    for original, read in zip(rows, back, strict=True):
        assert float(read["latency_s"]) == original["latency_s"]  # repr round-trips exactly
        assert read["feasible"] == str(original["feasible"])
        assert read["method"] == "random" and read["seed"] == "0"


def test_csv_column_order_is_stable():
    rows = [{"zeta": 1, "energy_j": 1.0}, {"accuracy": 0.9, "alpha": 2, "latency_s": 1.0}]
    assert columns(rows) == ["latency_s", "energy_j", "accuracy", "zeta", "alpha"]


def test_empty_csv_has_the_recorder_header(tmp_path):
    path = write_evaluations_csv(tmp_path / "empty.csv", [])
    header = path.read_text().splitlines()
    assert header == [",".join(columns([row(0, 1.0, 1.0)]))]


def test_design_label_variants():
    assert design_label(row(1, 1.0, 1.0)) == "64x32 ws 2048 KiB w8a8"
    mixed = {**row(2, 1.0, 1.0), "mean_w_bits": 5.5, "a_bits": 16.0, "mean_a_bits": 16.0}
    assert design_label(mixed) == "64x32 is 2048 KiB w5.5/8a16"


def test_design_label_of_a_design():
    space = Space.from_dict({"base": "edge-tpu-like", "rows": [32, 64]})
    wl = layers.workload([layers.gemm("g", m=8, k=8, n=8), layers.gemm("h", m=8, k=8, n=8)])
    label = design_label(base_design(space, wl))
    assert label.startswith("64x64 ") and label.endswith(" KiB w8a8")


def assert_figures(paths, stem):
    assert [p.name for p in paths] == [f"{stem}.png", f"{stem}.svg"]
    assert paths[0].read_bytes().startswith(b"\x89PNG")
    assert paths[1].stat().st_size > 0 and b"<svg" in paths[1].read_bytes()


def test_plot_fronts_writes_png_and_svg(tmp_path):
    results = {"random": result("random", 0), "ga": result("ga", 1).rows}
    best = min(results["random"].rows[1:], key=lambda r: r["edp_js"])
    paths = plot_fronts(tmp_path / "figs", results, labels={"best edp": best})
    assert_figures(paths, "pareto")
    assert b"best edp: 64x32" in paths[1].read_bytes()


@pytest.mark.parametrize("infeasible", [True, False])
def test_plot_fronts_without_feasible_points(tmp_path, infeasible):
    rows = [row(0, 1.0, 1.0, feasible=False)] if infeasible else []
    paths = plot_fronts(tmp_path, {"none": rows}, x="area_mm2", y="power_w", stem="empty")
    assert_figures(paths, "empty")


def test_plot_trace_writes_png_and_svg(tmp_path):
    never = result("never", 2)
    never.trace = [(0.1, 8, np.inf)]
    paths = plot_trace(tmp_path, {"random": result("random"), "never": never})
    assert_figures(paths, "search_trace")
