"""Hostile input through the command line: one line and exit 2, never a traceback; an internal
error exits 3 and asks for a report. Each case here was once a traceback, a silent overflow,
a non-finite figure or a slow refusal."""

import importlib
import os

import pytest

from dse import space as space_mod
from npu_dse import cli, cli_search, rundir
from npu_dse.cli_errors import EXIT_INTERNAL, EXIT_USAGE, run_guarded

CONV_HEADER = (
    "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, "
    "Strides,\n"
)
FILES = {
    "dense.json": '{"layers":[{"type":"dense","in_features":1000000000,'
    '"out_features":1000000000,"tokens":1000000000}]}',
    "gemm_max.csv": "Layer, M, N, K,\ng1, 9223372036854775807, 8, 8,\n",
    "gemm_2_63.csv": "Layer, M, N, K,\ng1, 9223372036854775808, 8, 8,\n",
    "channels.csv": CONV_HEADER + "c1, 8, 8, 3, 3, 1000000000000, 8, 1,\n",
    "arabic.csv": "Layer, M, N, K,\ng1, \u0661\u0662, 8, 8,\n",
    "underscore.csv": "Layer, M, N, K,\ng1, 1_000, 8, 8,\n",
    "gemm_header_conv_rows.csv": "Layer, M, N, K,\nc1, 8, 8, 3, 3, 16, 8, 1,\n",
    "wrong_header.csv": "Layer, X, Y, Z,\ng1, 8, 8, 8,\n",
    "type_list.json": '{"layers":[{"type":["relu"]}]}',
    "deep.json": '{"layers":' + "[" * 50_000 + "]" * 50_000 + "}",
    "nan.json": '{"layers":[{"type":"relu","elems":NaN}]}',
    "huge_float.json": '{"layers":[{"type":"relu","elems":1e400}]}',
    "long_int.json": '{"layers":[{"type":"relu","elems":' + "9" * 5000 + "}]}",
    "ok.csv": "Layer, M, N, K,\ng1, 64, 64, 64,\n",
    "sp_inf_rows.json": '{"rows":[Infinity]}',
    "sp_inf_max.json": '{"rows":{"min":8,"max":Infinity}}',
    "sp_clock.json": '{"clock_mhz":[1e-300]}',
    "sp_sram.json": '{"sram_kib":[Infinity]}',
    "sp_bw.json": '{"dram_bw_gbps":[1e-300]}',
    "sp_tiny_pow2.json": '{"clock_mhz":{"min":1e-300,"max":1e-290,"pow2":true}}',
    "sp_wide.json": '{"rows":{"min":1,"max":2e7}}',
    "sp_wide_1e9.json": '{"cols":{"min":1,"max":1e9}}',
    "sp_ok.json": '{"rows":[8,16]}',
}


@pytest.fixture
def files(tmp_path):
    for name, text in FILES.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


SIM = [
    (["dense.json"], "ifmap_elems = 1000000000000000000 is outside 0..2^50"),
    (["gemm_max.csv", "--gemm"], "gemm_m = 9223372036854775807 is outside 0..2^50"),
    (["gemm_2_63.csv", "--gemm"], "gemm_m = 9223372036854775808 is outside 0..2^50"),
    (["channels.csv"], "workload too large"),
    (["arabic.csv", "--gemm"], "'M' must be a positive integer, got '\u0661\u0662'"),
    (["underscore.csv", "--gemm"], "'M' must be a positive integer, got '1_000'"),
    (["gemm_header_conv_rows.csv", "--gemm"], "8 fields but the header has 4"),
    (["wrong_header.csv", "--gemm"], "header column 2 is 'X', expected 'M'"),
    (["ok.csv"], "the header has 4 fields; this looks like a GEMM topology"),
    (["channels.csv", "--gemm"], "the header has 8 fields; this looks like a conv topology"),
    (["type_list.json"], "'type' must be a string, got list"),
    (["deep.json"], "JSON nested deeper than 32 levels"),
    (["nan.json"], "NaN is not a finite JSON number"),
    (["huge_float.json"], "1e400 is too large for a number"),
    (["long_int.json"], "an integer of 5000 digits"),
    (["ok.csv", "--gemm", "--rows", "9223372036854775808"], "rows must be in 1..16384 PEs"),
    (["ok.csv", "--gemm", "--clock-mhz", "1e-300"], "clock_mhz must be in 1..100000 MHz"),
    (["ok.csv", "--gemm", "--dram-bw", "inf"], "dram_bw_gbps must be in 0.001..100000"),
    (["ok.csv", "--gemm", "--w-bits", "1" + "0" * 400], "w_bits must be in"),
]


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("npu-dse: error: "), err
    return err


@pytest.mark.parametrize(("args", "message"), SIM)
def test_simulate_refuses_in_one_line(files, capsys, args, message):
    assert cli.main(["simulate", str(files / args[0]), *args[1:]]) == EXIT_USAGE
    assert message in _one_line(capsys)


SPACES = [
    ("sp_inf_rows.json", "Infinity is not a finite JSON number"),
    ("sp_inf_max.json", "Infinity is not a finite JSON number"),
    ("sp_clock.json", "'clock_mhz': values must be in 1..100000, got 1e-300"),
    ("sp_sram.json", "Infinity is not a finite JSON number"),
    ("sp_bw.json", "'dram_bw_gbps': values must be in 0.001..100000, got 1e-300"),
    ("sp_tiny_pow2.json", "'clock_mhz': values must be in 1..100000"),
    ("sp_wide.json", "'rows': range max must be at most 16384"),
    ("sp_wide_1e9.json", "'cols': range max must be at most 16384"),
]


@pytest.mark.parametrize(("space", "message"), SPACES)
def test_search_refuses_bad_spaces_at_once(files, capsys, monkeypatch, space, message):
    """Refused while the space file is read: neither the search nor the space's grid is reached
    (a range of 1e9 values once took seconds and gigabytes before its refusal)."""

    def reached(*args, **kwargs):
        raise AssertionError("the space was enumerated or searched before its refusal")

    monkeypatch.setattr(cli_search, "search", reached)
    monkeypatch.setattr(space_mod.Space, "hardware_grid", reached)
    args = ["search", "--workload", str(files / "ok.csv"), "--gemm", "--space"]
    assert cli.main([*args, str(files / space), "--method", "random"]) == EXIT_USAGE
    assert message in _one_line(capsys)


@pytest.mark.parametrize(
    "args",
    [
        ["search", "--seed", "18446744073709551616"],
        ["search", "--seed", "-1"],
        ["search", "--evaluations", "10000000000000000"],
        ["search", "--starts", "1000000000"],
        ["search", "--time-budget-s", "nan"],
    ],
)
def test_search_flags_are_bounded(files, capsys, args):
    space = ["--workload", str(files / "ok.csv"), "--gemm", "--space", str(files / "sp_ok.json")]
    assert cli.main([*args, *space]) == EXIT_USAGE
    assert "must be" in _one_line(capsys)


@pytest.mark.parametrize("method", ["exhaustive", "random", "nsga2"])
def test_search_checkpoint_of_a_method_without_one_is_refused_first(
    files, capsys, method, tmp_path
):
    """Refused before the search starts (no progress bar on stderr before the line)."""
    args = ["search", "--workload", str(files / "ok.csv"), "--gemm"]
    args += ["--space", str(files / "sp_ok.json"), "--method", method]
    assert cli.main([*args, "--search-checkpoint", str(tmp_path / "ck")]) == EXIT_USAGE
    assert "keeps no checkpoints" in _one_line(capsys)


@pytest.mark.parametrize("seed", ["18446744073709551616", "-3"])
def test_train_seed_is_bounded(tmp_path, capsys, seed):
    args = ["train", "--model", "cnn", "--quick", "--out", str(tmp_path / "r"), "--seed", seed]
    assert cli.main(args) == EXIT_USAGE
    assert "seed must be an integer in 0..4294967295" in _one_line(capsys)
    assert not (tmp_path / "r").exists()


def test_internal_errors_are_not_bad_input(files, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("an internal inconsistency")

    # The module, not the package attribute of the same name (the function).
    monkeypatch.setattr(importlib.import_module("npu_dse.simulate"), "simulate", broken)
    args = ["simulate", str(files / "ok.csv"), "--gemm"]
    assert cli.main(args) == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert "npu-dse: internal error: ValueError: an internal inconsistency" in err
    assert "please report it" in err and "Traceback" not in err
    assert cli.main(["--debug", *args]) == EXIT_INTERNAL
    assert "Traceback" in capsys.readouterr().err
    monkeypatch.setenv("NPU_DSE_DEBUG", "1")
    assert cli.main(args) == EXIT_INTERNAL
    assert "Traceback" in capsys.readouterr().err


def test_os_errors_naming_a_file_are_bad_input_others_internal(capsys):
    def denied():
        raise PermissionError(13, "Permission denied", "/runs/out")

    def bare():
        raise OSError("no file named")

    assert run_guarded(denied, debug=False) == EXIT_USAGE
    assert _one_line(capsys) == "npu-dse: error: /runs/out: Permission denied\n"
    assert run_guarded(bare, debug=False) == EXIT_INTERNAL
    assert "internal error: OSError: no file named" in capsys.readouterr().err


def test_stale_temporary_files_are_removed(tmp_path):
    dead = 2**22 + 12345  # above the default pid_max of 2^22: no such process
    stale = tmp_path / f".best.json.tmp-{dead}"
    stale.write_text("half")
    live = tmp_path / f".best.json.tmp-{os.getppid()}"  # a running process's write
    live.write_text("busy")
    rundir.write_atomic(tmp_path / "best.json", "{}")
    assert not stale.exists() and live.exists()
    assert (tmp_path / "best.json").read_text() == "{}"


def test_training_cleans_what_a_killed_run_left(tmp_path, monkeypatch):
    train_use_case = importlib.import_module("npu_dse.train")
    folder = tmp_path / "run" / "checkpoint"
    folder.mkdir(parents=True)
    stale = folder / f".checkpoint.msgpack.tmp-{2**22 + 7}"
    stale.write_bytes(b"partial")
    monkeypatch.setattr(train_use_case.training, "train_and_evaluate", lambda *a, **k: {})
    train_use_case.train(train_use_case.train_config("cnn", quick=True), tmp_path / "run")
    assert not stale.exists()
