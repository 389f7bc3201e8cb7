"""``npu-dse sensitivity``: the figures it prints are the smooth model's gradient (checked
against central finite differences of the same model), beside the exact model's one-step
change, on the design simulate would cost; bad input is one line, exit 2."""

import contextlib
import io
import json

import numpy as np
import pytest

from dse import sensitivity as sens
from npu_dse import workloads as topology
from npu_dse.cli import main
from npu_dse.sensitivity import BOTTLENECKS

TINY = str(topology.bundled("tiny_transformer.json"))


def run(args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def gemms(tmp_path_factory):
    """A DRAM-bound GEMM and a compute-bound one on edge-tpu-like."""
    path = tmp_path_factory.mktemp("sens") / "g.csv"
    path.write_text("Layer, M, N, K,\nwide, 4096, 256, 256,\nsquare, 512, 512, 512,\n")
    return str(path)


@pytest.fixture(scope="module")
def result(gemms, tmp_path_factory):
    out = tmp_path_factory.mktemp("sens_out")
    code, text, err = run(
        ["sensitivity", gemms, "--gemm", "--preset", "edge-tpu-like", "--json", "--out", str(out)]
    )
    assert code == 0, err
    return json.loads(text), out


def test_json_covers_every_parameter_metric_and_layer(result):
    r, _ = result
    assert set(r["gradient"]) == set(sens.METRICS) == set(r["exact"])
    names = {"rows", "cols", "sram_kib", "clock_mhz", "dram_bw_gbps"}
    names |= {f"{w}[{n}]" for w in ("w_bits", "a_bits") for n in ("wide", "square")}
    for m in sens.METRICS:
        assert set(r["gradient"][m]) == names
        assert all(np.isfinite(v) for v in r["gradient"][m].values())
    assert [x["name"] for x in r["layers"]] == ["wide", "square"]
    assert all(x["bottleneck"] in BOTTLENECKS for x in r["layers"])
    assert sum(x["latency_share"] for x in r["layers"]) == pytest.approx(1.0)


def test_totals_are_simulates(gemms, result):
    r, _ = result
    code, text, err = run(["simulate", gemms, "--gemm", "--preset", "edge-tpu-like", "--json"])
    assert code == 0, err
    total = json.loads(text)["total"]
    for key in ("latency_s", "energy_j", "power_w", "area_mm2"):
        assert r["totals"][key] == pytest.approx(total[key], rel=1e-12)


def test_gradient_means_what_it_says(result):
    """The printed derivatives equal central differences of the smooth model (log step 1e-4),
    recomputed here from the same design, within 10 %; and the area does not depend on the
    clock or the bandwidth, nor latency on the area-only SRAM beyond what fits."""
    from dse import design as dz
    from dse.space import Space
    from hw import layers
    from npu_dse import resolve_design, simulate

    r, _ = result
    wl = layers.workload(
        [layers.gemm("wide", m=4096, k=256, n=256), layers.gemm("square", m=512, k=512, n=512)]
    )
    sim = simulate(wl, resolve_design(preset="edge-tpu-like"))
    space = Space.from_dict({"base": "edge-tpu-like"}, base_design=sim.config)
    d = dz.base_design(space, wl, sim.mapping)
    fd = np.asarray(sens.smooth_differences(sim.config, wl, d, r["temperature"], h=1e-4))
    names = sens.param_names(wl)
    for i, m in enumerate(sens.METRICS):
        for j, p in enumerate(names):
            g = r["gradient"][m][p]
            assert abs(g - fd[i, j]) <= 0.1 * abs(fd[i, j]) + 1e-3, (m, p, g, fd[i, j])
    assert r["gradient"]["area_mm2"]["dram_bw_gbps"] == 0.0


def test_bottlenecks_and_signs_match_the_physics(result):
    """The wide GEMM streams its activations from DRAM: it is DRAM-bound and latency falls
    with bandwidth; wider weights never make anything faster or cheaper."""
    r, _ = result
    wide = r["layers"][0]
    assert wide["bottleneck"] == "dram"
    assert r["gradient"]["latency_s"]["dram_bw_gbps"] < -0.1
    assert r["exact"]["latency_s"]["dram_bw_gbps"] < 0
    for layer in r["layers"]:
        assert layer["gradient"]["energy_j"]["w_bits"] >= 0
        assert layer["exact"]["energy_j"]["w_bits"] >= 0


def test_out_writes_json_and_charts(result):
    r, out = result
    assert json.loads((out / "sensitivity.json").read_text())["gradient"] == r["gradient"]
    for stem in ("sensitivity_edp", "sensitivity_latency"):
        for ext in ("png", "svg"):
            assert (out / f"{stem}.{ext}").stat().st_size > 1000


def test_table(gemms):
    code, text, err = run(["sensitivity", gemms, "--gemm", "--preset", "edge-tpu-like"])
    assert code == 0, err
    assert "dram_bw_gbps" in text and "largest on EDP" in text
    assert text.count("\n") > 10


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--temperature", "0"], "temperature must be a number in [0.001, 1]"),
        (["--temperature", "nan"], "temperature"),
        (["--rows", "0"], "rows"),
    ],
)
def test_bad_input_is_one_line(gemms, args, needle):
    code, text, err = run(["sensitivity", gemms, "--gemm", *args])
    assert code == 2
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.slow
def test_a_json_workload(tmp_path):
    code, text, err = run(["sensitivity", TINY, "--preset", "edge-tpu-like", "--json"])
    assert code == 0, err
    r = json.loads(text)
    assert len(r["layers"]) > 3
    assert {x["kind"] for x in r["layers"]} - {"gemm", "dense", "matmul", "conv"}
