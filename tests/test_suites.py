"""Suites in the application (``npu_dse.suites``): suite files, the flags they stand for, a
technology file, and ``npu-dse search --suite`` with each network's figures in the reports."""

import contextlib
import io
import json

import pytest

from dse import Budgets
from npu_dse.cli import main
from npu_dse.suites import load_suite, networks_from_flags, suite_problem

SPACE = {"rows": [8, 16], "cols": [8, 16], "w_bits": [8], "a_bits": [8]}
A = {"name": "a", "layers": [{"name": "g", "type": "gemm", "m": 64, "k": 64, "n": 64}]}
B = {"name": "b", "layers": [{"name": "fc", "type": "gemm", "m": 8, "k": 512, "n": 512}]}
GEMM_CSV = "Layer, M, N, K,\nqk, 32, 32, 64,\n"


@pytest.fixture
def files(tmp_path):
    (tmp_path / "space.json").write_text(json.dumps(SPACE))
    (tmp_path / "a.json").write_text(json.dumps(A))
    (tmp_path / "b.json").write_text(json.dumps(B))
    (tmp_path / "c.csv").write_text(GEMM_CSV)
    (tmp_path / "tech.json").write_text(json.dumps({"mac_pj": 2.0, "dram_pj_per_bit": 100.0}))
    return tmp_path


def write_suite(folder, workloads, name="suite.json"):
    path = folder / name
    path.write_text(json.dumps({"workloads": workloads}))
    return path


def run(args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return code, out.getvalue(), err.getvalue()


def test_suite_file_builds_the_problem_of_the_flags(files):
    suite = write_suite(
        files,
        [
            {"path": "a.json", "weight": 3, "max_latency_s": 1e-3},
            {"path": "b.json", "weight": 1, "max_latency_s": 2e-3},
            {"path": str(files / "c.csv"), "weight": 1, "max_latency_s": 4e-3, "gemm": True},
        ],
    )
    by_file, source = suite_problem(files / "space.json", "edp", Budgets(), load_suite(suite))
    flags = networks_from_flags(
        [files / "a.json", files / "b.json"], [3.0, 1.0], [1e-3, 2e-3]
    ) + networks_from_flags([files / "c.csv"], [1.0], [4e-3], gemm=True)
    by_flags, _ = suite_problem(files / "space.json", "edp", Budgets(), flags)
    assert source == "a + b + c"
    assert by_file.suite == by_flags.suite and by_file.budgets == by_flags.budgets
    assert by_file.suite.weights == pytest.approx((0.6, 0.2, 0.2))
    assert by_file.budgets.network_latency_s == (("a", 1e-3), ("b", 2e-3), ("c", 4e-3))
    assert by_file.workload.names == ("a/g", "b/fc", "c/qk")
    # the CSV went through the GEMM reader: M=32, K=64, N=32 (header order M, N, K)
    assert int(by_file.workload.gemm_k[2]) == 64 and int(by_file.workload.gemm_n[2]) == 32


@pytest.mark.parametrize(
    "doc, match",
    [
        ([], "at least two workloads, got 0"),
        ([{"path": "a.json"}], "at least two workloads, got 1"),
        ({"path": "a.json"}, "one key, 'workloads'"),
        ([{"path": "a.json"}, "b.json"], "workload 2: must be an object"),
        ([{"path": "a.json"}, {"file": "b.json"}], "workload 2: unknown key 'file'; allowed"),
        ([{"path": "a.json"}, {"weight": 1}], "workload 2: 'path' must be"),
        ([{"path": "a.json", "weight": 1}, {"path": "b.json"}], "every workload a 'weight'"),
        ([{"path": "a.json", "weight": -1}, {"path": "b.json"}], "'weight' must be a positive"),
        ([{"path": "a.json", "weight": True}, {"path": "b.json"}], "'weight' must be a positive"),
        ([{"path": "a.json", "max_latency_s": 0}, {"path": "b.json"}], "'max_latency_s' must"),
        ([{"path": "a.json", "batch": 0}, {"path": "b.json"}], "'batch' must be a positive"),
        ([{"path": "a.json", "gemm": "yes"}, {"path": "b.json"}], "'gemm' must be true or"),
        ([{"path": "a.json", "name": "x/y"}, {"path": "b.json"}], "'name' must be"),
        ([{"path": "a.json", "name": "b"}, {"path": "b.json"}], "two workloads are named 'b'"),
        ([{"path": "a.json"}, {"path": "missing.json"}], "workload file not found"),
    ],
)
def test_bad_suite_files_are_one_line_errors(files, doc, match):
    path = files / "suite.json"
    path.write_text(json.dumps(doc if isinstance(doc, dict) else {"workloads": doc}))
    code, out, err = run(["search", "--suite", str(path), "--space", str(files / "space.json")])
    assert code == 2 and out == "" and match in err and len(err.strip().splitlines()) == 1


def test_suite_file_with_another_top_level_key_is_refused(files):
    path = files / "suite.json"
    path.write_text(json.dumps({"workloads": [{"path": "a.json"}] * 2, "weights": [1, 1]}))
    code, _, err = run(["search", "--suite", str(path), "--space", str(files / "space.json")])
    assert code == 2 and "one key, 'workloads'" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "extra, match",
    [
        (["--workload", "a.json"], "--suite takes no --workload"),
        (["--max-latency-s", "0.1"], "--suite takes no --max-latency-s"),
        (["--batch", "2"], "--suite takes no --batch"),
        (["--checkpoint", "model"], "a suite cannot take --checkpoint"),
    ],
)
def test_suite_flag_conflicts_are_one_line_errors(files, extra, match):
    suite = write_suite(files, [{"path": "a.json"}, {"path": "b.json"}])
    args = ["search", "--suite", str(suite), "--space", str(files / "space.json"), *extra]
    code, out, err = run(args)
    assert code == 2 and out == "" and match in err and len(err.strip().splitlines()) == 1


def test_search_suite_with_tech_reports_each_network(files, tmp_path):
    suite = write_suite(
        files,
        [
            {"path": "a.json", "weight": 0.7, "max_latency_s": 1.0},
            {"path": "b.json", "weight": 0.3},
        ],
    )
    out_dir = tmp_path / "run"
    args = ["search", "--suite", str(suite), "--space", str(files / "space.json")]
    args += ["--tech", str(files / "tech.json"), "--method", "exhaustive", "--json"]
    code, out, err = run([*args, "--out", str(out_dir)])
    assert code == 0, err
    best = json.loads(out)["best"]
    nets = best["networks"]
    assert set(nets) == {"a", "b"} and nets["a"]["max_latency_s"] == 1.0
    assert "max_latency_s" not in nets["b"]
    for key in ("latency_s", "energy_j"):  # the chip's totals are the networks' sums
        assert best[key] == pytest.approx(nets["a"][key] + nets["b"][key], rel=1e-9)
    for net in nets.values():  # power is each network's energy over its own latency
        assert net["power_w"] == pytest.approx(net["energy_j"] / net["latency_s"], rel=1e-9)
    want = sum(n["weight"] * n["relative_objective"] for n in nets.values())
    assert best["suite_objective"] == pytest.approx(want, rel=1e-9)
    header = (out_dir / "evaluations.csv").read_text().splitlines()[0].split(",")
    assert {f"{k}@{n}" for k in ("latency_s", "energy_j", "power_w") for n in "ab"} <= set(header)
    saved = json.loads((out_dir / "best.json").read_text())
    assert saved["networks"] == nets and saved["tech"]["mac_pj"] == 2.0
    # without the technology file the same chip (one point in this space) costs less energy
    one = files / "one.json"
    one.write_text(json.dumps({**SPACE, "rows": [16], "cols": [16]}))
    args[args.index(str(files / "space.json"))] = str(one)
    code, out_tech, _ = run(args)
    code_plain, out_plain, _ = run(
        [a for a in args if a not in ("--tech", str(files / "tech.json"))]
    )
    assert code == code_plain == 0
    tech, plain = json.loads(out_tech)["best"], json.loads(out_plain)["best"]
    assert tech["hardware"] == plain["hardware"]
    for name in ("a", "b"):
        assert tech["networks"][name]["energy_j"] > 1.5 * plain["networks"][name]["energy_j"]


def test_a_quantized_onnx_network_keeps_its_widths_in_a_suite(files):
    import onnx
    from onnx import TensorProto
    from test_onnx_import import q_model

    onnx.save(
        q_model("MatMulInteger", TensorProto.UINT8, TensorProto.INT8, False), files / "q.onnx"
    )
    nets = load_suite(write_suite(files, [{"path": "a.json"}, {"path": "q.onnx"}]))
    problem, _ = suite_problem(files / "space.json", "edp", Budgets(), nets)
    assert problem.workload.names == ("a/g", "q/q") and problem.space.fixed_bits == ((1, 8.0, 8.0),)
