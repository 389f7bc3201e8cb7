"""Smoke run of experiments/exp_array_scaling.py (quick sweep)."""

import csv

from experiments import exp_array_scaling


def test_quick_run(tmp_path):
    headline = exp_array_scaling.main(["--quick", "--out", str(tmp_path)])
    with open(tmp_path / "sweep.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for col in ("workload", "array_side", "sram_kib", "latency_s", "energy_j", "edp_js",
                "utilization", "dram_bound_share", "all_layers_fit", "seed"):  # fmt: skip
        assert col in rows[0], col
    sides, srams = exp_array_scaling.QUICK_SIDES, exp_array_scaling.QUICK_SRAM_KIB
    assert len(rows) == 2 * len(sides) * len(srams)
    for r in rows:
        assert 0 <= float(r["utilization"]) <= 1 and 0 <= float(r["dram_bound_share"]) <= 1
    with open(tmp_path / "layers.csv", newline="") as f:
        points = list(csv.DictReader(f))
    assert {"intensity_ops_per_byte", "attained_ops_per_s"} <= set(points[0])
    for name in ("roofline", "edp_heatmap", "scaling_lines"):
        for ext in ("png", "svg"):
            assert (tmp_path / f"{name}.{ext}").stat().st_size > 0
    for w in exp_array_scaling.WORKLOADS:
        h = headline[w]
        assert {"memory_bound_side", "saturation_side", "best_edp"} <= set(h)
        assert h["memory_bound_side"] in sides and h["best_edp"]["array_side"] in sides
