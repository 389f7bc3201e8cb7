"""Tests of dse.suite: one chip searched for several networks, each with its own mappings and
widths, a weighted normalized objective and per-network latency budgets."""

import dataclasses

import jax
import numpy as np
import pytest

import dse
from dse import Budgets, Problem, SearchBudget, Space, baselines, legal, methods
from dse import design as dz
from dse.suite import make_suite, metric_key
from hw import evaluate, layers
from hw.bounds import InputError
from models import get_network

SMALL = {"rows": [8, 16, 32], "cols": [8, 16], "w_bits": [4, 8], "a_bits": [8]}


def two_networks():
    a = layers.workload(
        [layers.gemm("g", m=64, k=64, n=64), layers.vector("act", "relu", elems=4096)]
    )
    b = layers.workload([layers.dense("fc", in_features=512, out_features=512, tokens=8)])
    return {"a": a, "b": b}


@pytest.mark.slow
def test_combined_workload_and_per_network_metrics_match_separate_runs():
    space = Space.from_dict(SMALL)
    nets = two_networks()
    suite, wl = make_suite(space, nets, {"a": 3.0, "b": 1.0}, "energy")
    assert wl.names == ("a/g", "a/act", "b/fc") and suite.weights == (0.75, 0.25)
    design = dz.base_design(space, wl)
    m = dz.metrics(dz.evaluate(space.base_config(), wl, design), suite)
    total = 0.0
    for name, net in nets.items():
        alone = evaluate(space.base_config(), net)  # the exact mapper's tiles, as the base's
        energy = float(alone.total_energy_j)
        assert float(m[metric_key("energy_j", name)]) == pytest.approx(energy, rel=1e-12)
        assert float(m[metric_key("latency_s", name)]) == pytest.approx(
            float(alone.total_latency_s), rel=1e-12
        )
        total += suite.weights[suite.names.index(name)] * energy / energy
    # the base design scores the weights' sum, 1, by construction
    assert float(m["suite_objective"]) == pytest.approx(total) == pytest.approx(1.0)
    assert float(m["energy_j"]) == pytest.approx(sum(float(m[f"energy_j@{n}"]) for n in nets))


def test_suite_errors_are_one_line():
    space = Space.from_dict(SMALL)
    with pytest.raises(ValueError, match="at least two networks"):
        make_suite(space, {"a": two_networks()["a"]}, None, "edp")
    with pytest.raises(ValueError, match="weights must be positive"):
        make_suite(space, two_networks(), {"a": 1.0, "b": -1.0}, "edp")
    suite, wl = make_suite(space, two_networks(), None, "edp")
    with pytest.raises(ValueError, match="names network 'c'"):
        Problem(space, wl, "edp", Budgets(network_latency_s=(("c", 1.0),)), suite=suite)
    with pytest.raises(ValueError, match="differs from the suite's"):
        Problem(space, wl, "energy", Budgets(), suite=suite)


@pytest.mark.parametrize(
    "method",
    # the gradient search of a suite also runs in test_suites.py (with a technology file)
    [
        pytest.param(m, marks=pytest.mark.slow) if m == "gradient" else m
        for m in sorted(methods.METHODS)
    ],
)
def test_every_method_searches_a_suite_under_per_network_budgets(method):
    # "b/fc" is a quantized model's integer GEMM whose widths the model fixes at w8/a8
    space = dataclasses.replace(Space.from_dict(SMALL), fixed_bits=((2, 8.0, 8.0),))
    suite, wl = make_suite(space, two_networks(), {"a": 0.7, "b": 0.3}, "edp")
    # Met by the 16x16 and 32x16 arrays only (8 of the 24 designs): the 16x16 array takes
    # 5.2-5.8 us on "a" and 116-117 us on "b", 32x8 takes 168 us on "b".
    limits = (("a", 6e-6), ("b", 1.2e-4))
    problem = Problem(space, wl, "edp", Budgets(network_latency_s=limits), suite=suite)
    settings = None
    if method == "gradient":
        settings = dse.GradientSettings(starts=2, steps=4, legalize_every=2)
    if method == "exact":  # its programme sums one network's layers: a suite is refused
        with pytest.raises(InputError, match="does not apply to a suite"):
            dse.search(problem, method, SearchBudget(evaluations=24), seed=0)
        return
    res = dse.search(problem, method, SearchBudget(evaluations=24), seed=0, settings=settings)
    m = res.best_metrics
    assert res.best is not None
    assert m["latency_s@a"] <= limits[0][1] and m["latency_s@b"] <= limits[1][1]
    want = 0.7 * m["edp_js@a"] / suite.reference[0] + 0.3 * m["edp_js@b"] / suite.reference[1]
    assert m["suite_objective"] == pytest.approx(want, rel=1e-9)
    # each network keeps its own per-layer widths: one row per layer of the combined workload
    assert np.shape(res.best.w_bits) == (3,) and np.shape(res.best.mapping.tile_m) == (3,)
    assert (float(res.best.w_bits[2]), float(res.best.a_bits[2])) == (8.0, 8.0)


def _hardware(row: dict) -> tuple:
    return tuple(row[k] for k in ("rows", "cols", "dataflow", "sram_kib", "dram_bw_gbps"))


@pytest.mark.slow  # benchmarks/onnx_suite_figures.py prints the same comparison
def test_resnet18_and_bert_suite_beats_single_network_winners():
    space = Space.from_dict(
        {
            "base": "edge-tpu-like",
            "rows": [64, 128],
            "cols": [64, 128],
            "w_bits": [8],
            "a_bits": [8],
            "per_layer_bits": False,
        }
    )
    nets = {"resnet18": get_network("resnet18"), "bert": get_network("bert_base_layer")}
    suite, wl = make_suite(space, nets, {"resnet18": 0.5, "bert": 0.5}, "edp")
    # DRAM-bound on edge-tpu-like (8x8 TOPS-class bandwidth). ResNet-18 / BERT latency (ms):
    # 64x64 4.571 / 2.731, 64x128 4.548 / 2.746, 128x64 4.566 / 2.746, 128x128 4.572 / 2.817.
    # ResNet-18 alone picks 128x128, which breaks BERT's budget; BERT alone picks 128x64.
    limits = (("resnet18", 4.6e-3), ("bert", 2.75e-3))
    budgets = Budgets(network_latency_s=limits)
    whole = dse.search(
        Problem(space, wl, "edp", budgets, suite=suite), "exhaustive", SearchBudget(100)
    )
    best = whole.best_metrics
    assert best["latency_s@resnet18"] <= 4.6e-3 and best["latency_s@bert"] <= 2.75e-3
    on_suite = {_hardware(r): r for r in whole.rows}  # every hardware point, on the suite
    compared = 0
    for (_, limit), net in zip(limits, nets.values(), strict=True):
        alone = Budgets(max_latency_s=limit)
        single = dse.search(Problem(space, net, "edp", alone), "exhaustive", SearchBudget(100))
        row = {"rows": int(single.best.rows), "cols": int(single.best.cols)}
        row |= {"dataflow": int(single.best.dataflow), "sram_kib": float(single.best.sram_kib)}
        row |= {"dram_bw_gbps": float(single.best.dram_bw_gbps)}
        suite_row = on_suite[_hardware(row)]
        if suite_row["feasible"]:  # the winner for one network that meets both budgets
            compared += 1
            assert best["suite_objective"] <= suite_row["suite_objective"]
    assert compared >= 1
    assert dataclasses.asdict(suite)["names"] == ("resnet18", "bert")


def test_fixed_widths_hold_in_the_base_design_and_every_legal_design():
    # Layer 2 ("b/fc", a quantized model's integer GEMM) is fixed at w16/a16 in a space whose
    # widths are 4 bits only: the base design, sampled, decoded and snapped designs keep it,
    # on 16-bit multipliers.
    space = dataclasses.replace(
        Space.from_dict({**SMALL, "w_bits": [4], "a_bits": [4]}), fixed_bits=((2, 16.0, 16.0),)
    )
    suite, wl = make_suite(space, two_networks(), None, "edp")
    base = dz.base_design(space, wl)
    # the base preset's widths (8) elsewhere
    assert np.asarray(base.w_bits).tolist() == [8, 8, 16] == np.asarray(base.a_bits).tolist()
    # the references are the base design's own figures on one chip: it scores exactly 1
    m = dz.metrics(dz.evaluate(space.base_config(), wl, base), suite)
    assert float(m["suite_objective"]) == pytest.approx(1.0, rel=1e-12)
    sampled = legal.sample(space, wl, jax.random.key(0), 3)
    decoded = legal.from_indices(space, wl, np.zeros((2, len(legal.gene_sizes(space, wl)))))
    for pop in (sampled, decoded):
        assert np.asarray(pop.w_bits)[:, 2].tolist() == [16] * len(pop.w_bits)
        assert np.asarray(pop.a_bits)[:, :2].max() == 4 and np.asarray(pop.a_bits)[0, 2] == 16
    assert dse.describe(space, base, wl)["hardware"]["w_bits"] == 16
    assert baselines.exhaustive_size(space, wl) == (space.num_hardware_points, 1)
