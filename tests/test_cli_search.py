"""``npu-dse search``: JSON and table output, run folders, budgets that cannot be met, errors."""

import contextlib
import csv
import io
import json

import pytest

from npu_dse import workloads as topology
from npu_dse.cli import main

SPACE = {
    "rows": [8, 16, 32],
    "cols": [8, 16],
    "dataflow": ["os", "ws"],
    "sram_kib": [64, 256],
    "w_bits": [4, 8],
    "a_bits": [8],
}
WORKLOAD = {
    "name": "tiny",
    "layers": [
        {"name": "g", "type": "gemm", "m": 64, "k": 128, "n": 64},
        {
            "name": "c",
            "type": "conv2d",
            "ifmap_h": 8,
            "ifmap_w": 8,
            "channels": 16,
            "num_filters": 32,
            "filter_h": 3,
            "filter_w": 3,
        },
    ],
}
BEST_KEYS = {
    "hardware",
    "layers",
    "latency_s",
    "energy_j",
    "power_w",
    "area_mm2",
    "edp_js",
    "feasible",
}


def run(args):
    """``main(args)`` with captured output: ``(exit code, stdout, stderr)``."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return code, out.getvalue(), err.getvalue()


def strict_json(text: str):
    def reject(token):
        raise AssertionError(f"non-finite number in JSON: {token}")

    return json.loads(text, parse_constant=reject)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("search")
    (root / "tiny.json").write_text(json.dumps(WORKLOAD))
    (root / "space.json").write_text(json.dumps(SPACE))
    assert len(topology.read_workload_json(root / "tiny.json")) == 2
    return {"workload": str(root / "tiny.json"), "space": str(root / "space.json"), "root": root}


def search(files, *extra):
    return run(["search", "--workload", files["workload"], "--space", files["space"], *extra])


@pytest.fixture(scope="module")
def random_run(files):
    code, out, err = search(files, "--method", "random", "--evaluations", "16", "--json")
    assert code == 0, err
    return strict_json(out)


def test_json_output(random_run):
    doc = random_run
    assert {"best", "evaluations", "wall_s", "method", "seed"} <= set(doc)
    assert set(doc["best"]) == BEST_KEYS
    assert doc["method"] == "random" and doc["seed"] == 0 and doc["objective"] == "edp"
    assert doc["evaluations"] == 16 and doc["wall_s"] > 0
    best = doc["best"]
    assert best["feasible"] is True
    assert best["edp_js"] == pytest.approx(best["energy_j"] * best["latency_s"], rel=1e-9)
    assert best["power_w"] == pytest.approx(best["energy_j"] / best["latency_s"], rel=1e-9)
    assert best["hardware"]["rows"] in SPACE["rows"]
    assert best["hardware"]["dataflow"] in SPACE["dataflow"]
    assert [layer["name"] for layer in best["layers"]] == ["g", "c"]
    assert "closest_miss" not in doc


def test_table_output(files, random_run):
    code, out, err = search(files, "--method", "random", "--evaluations", "16")
    assert code == 0, err
    assert "search: random on tiny.json, objective edp, seed 0" in out
    assert "16 exact evaluations" in out
    hw = random_run["best"]["hardware"]  # the same seed finds the same design
    assert f"best: {hw['rows']}x{hw['cols']} {hw['dataflow']}, " in out
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("layer"))
    assert [line.split()[0] for line in lines[header + 1 :]] == ["g", "c"]


@pytest.mark.parametrize("method", ["random", "gradient"])
@pytest.mark.slow
def test_evaluation_and_time_budgets(files, method):
    code, out, err = search(files, "--method", method, "--evaluations", "5", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["evaluations"] == 5 and doc["stopped"] == "evaluations"
    code, out, err = search(files, "--method", method, "--time-budget-s", "1e-6", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["evaluations"] == 0 and doc["best"] is None and doc["stopped"] == "time"
    assert "the time budget of 1e-06 s ran out first" in err


@pytest.fixture(scope="module")
def gradient_run(files):
    """A gradient search under a power budget no design meets (the lowest power in the space
    is about 0.12 W), with a run folder."""
    out_dir = files["root"] / "run"
    code, out, err = search(
        files,
        *("--method", "gradient", "--starts", "8", "--steps", "20", "--seed", "3"),
        *("--max-power-w", "1e-3", "--json", "--out", str(out_dir)),
    )
    return code, out, err, out_dir


def test_budgets_that_cannot_be_met(gradient_run):
    code, out, err, out_dir = gradient_run
    assert code == 0, err
    doc = strict_json(out)
    assert {"best", "evaluations", "wall_s", "method", "seed"} <= set(doc)
    assert doc["best"] is None
    assert doc["method"] == "gradient" and doc["seed"] == 3 and doc["evaluations"] >= 8
    assert doc["closest_miss"]["budget"] == "power_w"
    with open(out_dir / "evaluations.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == doc["evaluations"]
    lowest = min(float(r["power_w"]) for r in rows if r["fits"] == "True")
    assert doc["closest_miss"]["relative_miss"] == pytest.approx(lowest / 1e-3 - 1, rel=1e-9)
    lines = [line for line in err.splitlines() if "no feasible design" in line]
    assert len(lines) == 1
    miss = 100 * doc["closest_miss"]["relative_miss"]
    assert (
        f"the power_w budget could not be met; the closest design is {miss:.1f} % above it"
        in (lines[0])
    )


def test_run_folder(gradient_run):
    code, out, err, out_dir = gradient_run
    assert code == 0, err
    names = {p.name for p in out_dir.iterdir()}
    assert {"evaluations.csv", "search.json", "pareto.png", "pareto.svg", "run.json"} <= names
    assert "best.json" not in names  # no design met the budget
    assert not any(n.startswith(".") for n in names)
    assert strict_json((out_dir / "search.json").read_text()) == strict_json(out)
    run_doc = json.loads((out_dir / "run.json").read_text())
    assert run_doc["seed"] == 3
    assert run_doc["args"]["max_power_w"] == 1e-3
    assert run_doc["space"]["rows"] == [float(v) for v in SPACE["rows"]]
    assert run_doc["versions"]["jax"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-power-w", "-1"], "budget max_power_w must be a positive number"),
        (["--max-latency-s", "0"], "budget max_latency_s must be a positive number"),
        (["--min-accuracy", "0.9"], "--min-accuracy needs --checkpoint"),
        (["--min-accuracy", "2"], "budget min_accuracy must be in (0, 1]"),
        (["--starts", "0"], "--starts must be an integer in 1..16384"),
        (["--evaluations", "0"], "--evaluations must be an integer in 1.."),
        (["--time-budget-s", "-5"], "--time-budget-s must be in (0, "),
    ],
)
def test_contradictory_arguments(files, capsys, args, message):
    assert main(["search", "--workload", files["workload"], "--space", files["space"], *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("npu-dse: error: ")
    assert message in captured.err


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({**SPACE, "rowz": [8]}, "bad.json: design space: unknown key 'rowz'"),
        ({**SPACE, "w_bits": [1, 8]}, "bit widths must be in 2..16"),
        ('{"rows": [8,', "is not valid JSON"),
    ],
)
def test_malformed_space(files, tmp_path, capsys, space, message):
    path = tmp_path / "bad.json"
    path.write_text(space if isinstance(space, str) else json.dumps(space))
    assert main(["search", "--workload", files["workload"], "--space", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1
    assert message in captured.err


def test_missing_workload(files, capsys):
    assert main(["search", "--space", files["space"]]) == 2
    assert "give --workload FILE or --checkpoint DIR" in capsys.readouterr().err
    assert main(["search", "--space", files["space"], "--workload", "nope.json"]) == 2
    assert "workload file not found" in capsys.readouterr().err


@pytest.fixture(scope="module")
def found_run(files):
    """A feasible random search with a run folder: its ``best.json`` is a design file."""
    out_dir = files["root"] / "found"
    code, out, err = search(
        files, "--method", "random", "--evaluations", "12", "--json", "--out", str(out_dir)
    )
    assert code == 0, err
    return strict_json(out), out_dir


def test_best_json_simulates_to_the_search_figures(files, found_run):
    doc, out_dir = found_run
    best = strict_json((out_dir / "best.json").read_text())
    assert best["format"] == "npu-dse-design" and set(best["layers"]) == {"g", "c"}
    code, out, err = run(
        ["simulate", files["workload"], "--design", str(out_dir / "best.json"), "--json"]
    )
    assert code == 0, err
    total = strict_json(out)["total"]
    for key in ("latency_s", "energy_j", "power_w", "area_mm2"):
        assert total[key] == doc["best"][key], key  # exactly, not approximately


def test_best_json_through_the_python_api(files, found_run):
    from npu_dse import load_design, simulate

    doc, out_dir = found_run
    workload, _ = topology.load_workload(files["workload"])
    sim = simulate(workload, load_design(out_dir / "best.json"))
    assert float(sim.report.total_energy_j) == doc["best"]["energy_j"]
    assert float(sim.report.total_latency_s) == doc["best"]["latency_s"]
    widths = {d["name"]: (d["w_bits"], d["a_bits"]) for d in doc["best"]["layers"]}
    assert {d["name"]: (d["w_bits"], d["a_bits"]) for d in sim.to_dict()["layers"]} == widths


def test_out_naming_a_file_is_refused_before_any_work(files):
    target = files["root"] / "a_file"
    target.write_text("keep me")
    code, out, err = search(files, "--method", "random", "--out", str(target))
    assert code == 2 and "is a file" in err and out == ""
    assert target.read_text() == "keep me"
