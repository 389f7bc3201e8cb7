"""Tests of the npu-dse command line: outputs, golden cycle counts, exit codes, one-line errors."""

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from hw import presets
from hw.presets import preset_names
from npu_dse import workloads as topology
from npu_dse.cli import main

RESNET = str(topology.bundled("resnet18.csv"))
BERT = str(topology.bundled("bert_base_layer_gemm.csv"))
TINY = str(topology.bundled("tiny_transformer.json"))
REPO = Path(__file__).resolve().parents[1]


def run(args):
    """``main(args)`` with captured output: ``(exit code, stdout, stderr)``."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return code, out.getvalue(), err.getvalue()


def strict_json(text: str):
    """Parse JSON, failing on NaN or Infinity (which ``json.loads`` accepts by default)."""

    def reject(token):
        raise AssertionError(f"non-finite number in JSON: {token}")

    return json.loads(text, parse_constant=reject)


@pytest.fixture
def gemm64(tmp_path):
    path = tmp_path / "g.csv"
    path.write_text("Layer, M, N, K,\ng64, 64, 64, 64,\n")
    return str(path)


@pytest.fixture(scope="module")
def resnet_json():
    code, out, err = run(["simulate", RESNET, "--json"])
    assert code == 0, err
    return strict_json(out)


# ---- presets ------------------------------------------------------------------------------


def test_presets_table(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    for name in preset_names():
        assert name in out
    assert max(len(line) for line in out.splitlines()) <= 100


def test_presets_json(capsys):
    assert main(["presets", "--json"]) == 0
    rows = strict_json(capsys.readouterr().out)["presets"]
    assert [r["name"] for r in rows] == list(preset_names())
    tpu = rows[0]
    assert (tpu["rows"], tpu["cols"], tpu["dataflow"]) == (256, 256, "ws")
    assert tpu["peak_tops"] == pytest.approx(91.75, rel=1e-3)  # 2 * 65536 * 700e6
    assert all(r["full_load_power_w"] > 0 and r["area_mm2"] > 0 for r in rows)


# ---- simulate: numbers --------------------------------------------------------------------


def test_gemm_golden_cycles(gemm64, capsys):
    # os on 32x32: 2 x 2 folds of (K + R + C - 2) = 64 + 32 + 32 - 2 = 126 cycles -> 504.
    args = ["simulate", gemm64, "--gemm", "--rows", "32", "--cols", "32", "--dataflow", "os"]
    assert main([*args, "--no-stall", "--json"]) == 0
    (layer,) = strict_json(capsys.readouterr().out)["layers"]
    assert layer["compute_cycles"] == 504
    assert layer["stall_cycles"] == 0
    assert layer["total_cycles"] == 504
    assert layer["macs"] == 64**3
    assert layer["mapping_efficiency"] == 1


def test_conv_matches_scalesim_reference_count(tmp_path, capsys):
    # SCALE-Sim 3.0.0, resnet18_conv2_x on 32x32 ws (shared/reference, setting A):
    # sim_total_cycles 108359, i.e. 108360 cycles. By hand: M = 54*54 = 2916, K = 576, N = 64;
    # ceil(576/32) * ceil(64/32) = 36 folds of 2916 + 32 + 32 - 2 + 32 = 3010 cycles.
    path = tmp_path / "r.csv"
    path.write_text(topology.bundled("resnet18.csv").read_text().splitlines()[0] + "\n")
    with path.open("a") as f:
        f.write("conv2_x, 56, 56, 3, 3, 64, 64, 1,\n")
    args = ["simulate", str(path), "--rows", "32", "--cols", "32", "--dataflow", "ws"]
    assert main([*args, "--no-stall", "--json"]) == 0
    (layer,) = strict_json(capsys.readouterr().out)["layers"]
    assert layer["compute_cycles"] == 108360


def test_no_stall_gives_zero_stalls(capsys):
    assert main(["simulate", RESNET, "--no-stall", "--json"]) == 0
    result = strict_json(capsys.readouterr().out)
    assert all(r["stall_cycles"] == 0 for r in result["layers"])
    assert result["stall"] is False


def test_json_structure(resnet_json):
    layers_ = resnet_json["layers"]
    assert len(layers_) == 21
    assert {"design", "layers", "total"} <= set(resnet_json)
    for r in layers_:
        for key in ("compute_cycles", "stall_cycles", "total_cycles", "macs"):
            assert isinstance(r[key], int)
        assert r["total_cycles"] == r["compute_cycles"] + r["vector_cycles"] + r["stall_cycles"]
        assert 0 < r["mapping_efficiency"] <= 1 and 0 < r["utilization"] <= 1
        parts = r["energy_breakdown_j"]
        assert set(parts) == {"mac", "array", "rf", "sram", "dram", "vector", "leakage", "host"}
        assert sum(parts.values()) == pytest.approx(r["energy_j"])
        assert r["dram_bytes"] > 0 and r["sram_reads"] > 0
    total = resnet_json["total"]
    assert total["cycles"] == sum(r["total_cycles"] for r in layers_)
    assert total["energy_j"] == pytest.approx(sum(r["energy_j"] for r in layers_))
    assert total["power_w"] == pytest.approx(total["energy_j"] / total["latency_s"])
    assert sum(total["energy_breakdown_j"].values()) == pytest.approx(total["energy_j"])
    assert total["edp_js"] == pytest.approx(total["energy_j"] * total["latency_s"])
    assert resnet_json["design"]["name"] == "scalesim-32x32"


@pytest.mark.parametrize(
    ("path", "extra", "count"),
    [(BERT, ["--gemm"], 30), pytest.param(TINY, [], 15, marks=pytest.mark.slow)],
)
def test_simulate_bundled_json(capsys, path, extra, count):
    assert main(["simulate", path, *extra, "--preset", "edge-tpu-like", "--json"]) == 0
    result = strict_json(capsys.readouterr().out)
    assert len(result["layers"]) == count
    assert result["design"]["name"] == "edge-tpu-like"
    assert result["total"]["latency_s"] > 0


def test_flags_override_the_preset(capsys):
    args = ["simulate", TINY, "--preset", "tpu-v1-like", "--clock-mhz", "350", "--sram-kib", "96"]
    assert main([*args, "--filter-kib", "64", "--w-bits", "4", "--json"]) == 0
    design = strict_json(capsys.readouterr().out)["design"]
    assert (design["rows"], design["dataflow"], design["clock_mhz"]) == (256, "ws", 350)
    sizes = (design["ifmap_sram_kib"], design["filter_sram_kib"], design["ofmap_sram_kib"])
    base = presets.get_preset("tpu-v1-like")  # --sram-kib keeps the preset's proportions
    total = float(base.ifmap_sram_kib + base.filter_sram_kib + base.ofmap_sram_kib)
    share = (96 * float(base.ifmap_sram_kib) / total, 96 * float(base.ofmap_sram_kib) / total)
    assert sizes == (pytest.approx(share[0]), 64, pytest.approx(share[1]))
    assert (design["w_bits"], design["a_bits"]) == (4, 8)
    assert (design["name"], design["base_preset"]) == ("custom", "tpu-v1-like")


def test_memory_model_flag(gemm64, capsys):
    assert main(["simulate", gemm64, "--gemm", "--memory-model", "scalesim", "--json"]) == 0
    result = strict_json(capsys.readouterr().out)
    assert result["design"]["memory_model"] == "scalesim"
    assert result["layers"][0]["compute_cycles"] == 504


# ---- simulate: human output ---------------------------------------------------------------


def test_table_output(capsys):
    assert main(["simulate", TINY]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert any(line.startswith("layer") and "MACs" in line for line in lines)
    for name in ("patch_embed", "attn_softmax", "classifier"):
        assert any(line.startswith(name) for line in lines)
    assert any(line.startswith("total") for line in lines)
    assert "TOPS/W" in out and "avg power" in out
    assert max(len(line) for line in lines) <= 100


# ---- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["simulate", "missing.csv"], "workload file not found: missing.csv"),
        (["simulate", RESNET, "--preset", "tpu-v9"], "unknown preset 'tpu-v9'"),
        (["simulate", RESNET, "--dataflow", "rs"], "invalid choice: 'rs'"),
        (["simulate", RESNET, "--rows", "-8"], "rows must be in 1..16384 PEs, got -8"),
        (["simulate", RESNET, "--cols", "0"], "cols must be in 1..16384 PEs, got 0"),
        (["simulate", RESNET, "--sram-kib", "-1"], "--sram-kib must be a number > 0 KiB"),
        (
            ["simulate", RESNET, "--ofmap-kib", "0"],
            "ofmap_sram_kib must be in 0.001..1073741824 KiB",
        ),
        (["simulate", RESNET, "--dram-bw", "0"], "dram_bw_gbps must be in 0.001..100000 GB/s"),
        (["simulate", RESNET, "--clock-mhz", "-1"], "clock_mhz must be in 1..100000 MHz"),
        (["simulate", RESNET, "--acc-bits", "64"], "acc_bits must be between 2 and 32 bits"),
        (["simulate", RESNET, "--a-bits", "1"], "a_bits must be between 2 and 16 bits"),
        (["simulate", RESNET, "--memory-model", "dram"], "invalid choice: 'dram'"),
        (["simulate", RESNET, "--gemm"], "resnet18.csv row 1"),
        (["simulate", BERT], "looks like a GEMM topology"),
        (["simulate"], "required: TOPOLOGY"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        ([], "required: COMMAND"),
    ],
)
def test_bad_input_exits_2_with_one_line(capsys, args, expected):
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("npu-dse: error: ")
    assert captured.err.count("\n") == 1
    assert "Traceback" not in captured.err
    assert expected in captured.err


def test_malformed_row_is_named(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text("Layer, M, N, K,\na, 4, 4, 4,\nb, 4, four, 4,\n")
    assert main(["simulate", str(path), "--gemm"]) == 2
    err = capsys.readouterr().err
    assert "bad.csv row 3: 'N' must be a positive integer, got 'four'" in err


def test_tiny_buffers_name_the_layer(gemm64, capsys):
    args = ["simulate", gemm64, "--gemm", "--sram-kib", "0.01", "--rows", "128", "--cols", "128"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "layer 'g64' does not fit the on-chip buffers" in err


def test_help_exits_0(capsys):
    assert main(["--help"]) == 0
    assert "simulate" in capsys.readouterr().out
    assert main(["simulate", "--help"]) == 0
    assert "--no-stall" in capsys.readouterr().out


# ---- the installed entry point ------------------------------------------------------------


def entry_points():
    script = Path(sys.executable).parent / "npu-dse"
    found = [[sys.executable, "-m", "npu_dse.cli"]]
    return found + ([[str(script)]] if script.exists() else [])


@pytest.mark.parametrize("command", entry_points(), ids=lambda c: Path(c[-1]).name)
def test_entry_point_runs(command):
    done = subprocess.run(
        [*command, "--help"], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "presets" in done.stdout and "simulate" in done.stdout
    failed = subprocess.run(
        [*command, "simulate", "missing.csv"], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert failed.returncode == 2
    # The last line is ours; JAX may log a backend notice before it on some machines.
    assert failed.stderr.splitlines()[-1] == "npu-dse: error: workload file not found: missing.csv"
    assert "Traceback" not in failed.stderr
