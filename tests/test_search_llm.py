"""``search MODEL``: a zoo decoder's step searched for tokens/s or energy per token.

The cheap tests check ``dse.llmstep`` (operand-class widths, residency) against the LLM use
case (``npu_dse.llm``) it must reproduce, and the one-line refusals. The search runs compile
the 195-layer GPT-2 decode step (about 20-40 s each on a 2-core CPU) and are marked slow.
"""

import csv
import json

import jax
import numpy as np
import pytest

from dse import llmstep
from hw.arith import EXACT, Arith
from hw.x64 import x64
from npu_dse import llm
from npu_dse.cli import main
from tests.test_cli_search import run, strict_json

CONTEXT, BATCH, KV_BITS, POWER_W = 127, 2, 4, 5.0
# 16 MiB of SRAM keeps the 2.4 MB KV cache of gpt2 (12 layers x 2 x 128 tokens x 768 x
# 2 sequences at 4 bits) in the room of half its filter buffer; 512 KiB keeps nothing.
SPACE = {
    "base": "edge-tpu-like",
    "rows": [16, 32],
    "sram_kib": [512, 16384],
    "w_bits": [4, 8],
    "a_bits": [8],
    "per_layer_bits": False,
}


def _step(kv_bits=KV_BITS):
    request = llm.LLMRequest("gpt2", context=CONTEXT, batch=BATCH, kv_bits=kv_bits)
    return llm.llm_workload(request), llmstep.LLMStep(BATCH, kv_bits, resident=True)


@pytest.mark.parametrize("kv_bits", [None, 4])
def test_operand_bits_are_the_llm_use_cases(kv_bits):
    wl, step = _step(kv_bits)
    n = wl.num_layers
    got = llmstep.operand_bits(wl, np.full(n, 6.0), np.full(n, 8.0), step)
    want = llm.operand_bits(wl, 6.0, 8.0, 8.0 if kv_bits is None else kv_bits)
    np.testing.assert_array_equal(got.w_bits, want.w_bits)
    np.testing.assert_array_equal(got.a_bits, want.a_bits)


def test_exact_residency_is_the_llm_use_cases_at_every_threshold():
    wl, step = _step()
    bits = llm.operand_bits(wl, 4.0, 8.0, KV_BITS)
    kinds = np.array(wl.kinds)
    filt = np.asarray(wl.filter_elems) * np.asarray(bits.w_bits) / 8
    w, kv = filt[kinds == "dense"].sum(), filt[kinds == "matmul"].sum()
    rooms = [1.0, kv - 1, kv, w - 1, w, w + kv - 1, w + kv, 2 * (w + kv)]
    seen = set()
    for room in rooms:
        want, res_w, res_kv = llm.with_residency(wl, bits, room)
        filt_got, ofmap_got = llmstep.resident_elems(wl, bits, room, EXACT)
        np.testing.assert_array_equal(filt_got, want.filter_elems)
        np.testing.assert_array_equal(ofmap_got, want.ofmap_elems)
        seen.add((res_w, res_kv))
    assert seen == {(False, False), (False, True), (True, False), (True, True)}


@x64
def test_smooth_residency_tends_to_the_exact_one_with_finite_gradients():
    wl, _ = _step()
    bits = llm.operand_bits(wl, 4.0, 8.0, KV_BITS)
    kinds = np.array(wl.kinds)
    kv = (np.asarray(wl.filter_elems) * np.asarray(bits.w_bits) / 8)[kinds == "matmul"].sum()

    def dram_elems(room, ar):
        filt, ofmap = llmstep.resident_elems(wl, bits, room, ar)
        return filt.sum() + ofmap.sum()

    for room in (0.9 * kv, 1.1 * kv):  # 10 % either side of the cache's threshold
        exact = float(dram_elems(room, EXACT))
        assert float(dram_elems(room, Arith.smooth(1e-3))) == pytest.approx(exact, rel=1e-9)
    grad = jax.grad(dram_elems)(kv, Arith.smooth(0.1))
    assert np.isfinite(grad) and grad < 0  # more room, less DRAM traffic


@pytest.fixture(scope="module")
def llm_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("llmsearch")
    space = folder / "space.json"
    space.write_text(json.dumps(SPACE))
    out = folder / "run"
    args = ["search", "gpt2", "--phase", "decode", "--context", str(CONTEXT)]
    args += ["--batch", str(BATCH), "--kv-bits", str(KV_BITS), "--space", str(space)]
    args += ["--objective", "tokens_per_s", "--max-power-w", str(POWER_W)]
    code, text, err = run([*args, "--method", "exhaustive", "--json", "--out", str(out)])
    assert code == 0, err
    return strict_json(text), out


@pytest.mark.slow
def test_llm_search_reports_the_step_figures_of_its_best_design(llm_run):
    doc, out = llm_run
    best, fig = doc["best"], doc["best"]["llm"]
    assert doc["objective"] == "tokens_per_s" and doc["evaluations"] == 8
    assert fig["latency_s"] == pytest.approx(best["latency_s"], rel=1e-12)
    assert fig["energy_j"] == pytest.approx(best["energy_j"], rel=1e-12)
    assert fig["tokens_per_s"] == pytest.approx(BATCH / best["latency_s"], rel=1e-12)
    assert fig["energy_per_token_j"] == pytest.approx(best["energy_j"] / BATCH, rel=1e-12)
    assert fig["time_per_output_token_s"] == pytest.approx(best["latency_s"], rel=1e-12)
    assert best["power_w"] <= POWER_W and fig["fits_in_dram"]
    assert (fig["kv_bits"], best["hardware"]["w_bits"]) == (KV_BITS, max(fig["w_bits"], KV_BITS))
    assert fig["resident"] == {"weights": False, "kv_cache": True}  # the 16 MiB design
    with (out / "evaluations.csv").open() as f:
        rows = [r for r in csv.DictReader(f) if r["feasible"] == "True"]
    assert best["latency_s"] == pytest.approx(min(float(r["latency_s"]) for r in rows), rel=1e-12)


@pytest.mark.slow
def test_simulate_of_the_best_design_file_prints_the_same_figures(llm_run):
    doc, out = llm_run
    fig = doc["best"]["llm"]
    args = ["simulate", "gpt2", "--design", str(out / "best.json"), "--context", str(CONTEXT)]
    args += ["--batch", str(BATCH), "--w-bits", str(int(fig["w_bits"]))]
    args += ["--a-bits", str(int(fig["a_bits"])), "--kv-bits", str(KV_BITS), "--json"]
    code, text, err = run(args)
    assert code == 0, err
    sim = strict_json(text)
    for key in ("tokens_per_s", "energy_per_token_j", "time_per_output_token_s", "resident"):
        assert sim[key] == pytest.approx(fig[key], rel=1e-12), key


@pytest.mark.slow
def test_prefill_search_for_energy_per_token_reports_time_to_first_token(tmp_path):
    space = tmp_path / "space.json"
    # The cache wider than the activations: kv_store writes 8 bits from 4-bit multipliers.
    space.write_text(json.dumps({**SPACE, "sram_kib": [512], "a_bits": [4]}))
    args = ["search", "gpt2", "--phase", "prefill", "--prompt", "16", "--space", str(space)]
    args += ["--kv-bits", "8"]
    args += ["--objective", "energy_per_token", "--method", "random", "--evaluations", "4"]
    code, text, err = run(args)
    assert code == 0, err
    assert "time to first token" in text and "mJ per token" in text
    code, text, err = run([*args, "--json"])
    doc = strict_json(text)
    fig = doc["best"]["llm"]
    assert fig["time_to_first_token_s"] == pytest.approx(doc["best"]["latency_s"], rel=1e-12)
    assert fig["energy_per_token_j"] == pytest.approx(doc["best"]["energy_j"] / 16, rel=1e-12)
    assert fig["resident"] == {"weights": False, "kv_cache": False}  # prefill keeps nothing
    assert (fig["a_bits"], fig["kv_bits"], doc["best"]["hardware"]["a_bits"]) == (4, 8, 4)


@pytest.mark.slow
def test_gradient_search_of_a_decode_step(tmp_path):
    space = tmp_path / "space.json"
    space.write_text(json.dumps(SPACE))
    args = ["search", "gpt2", "--context", "63", "--space", str(space), "--json"]
    args += ["--objective", "energy_per_token", "--starts", "2", "--steps", "2"]
    code, text, err = run([*args, "--evaluations", "4"])
    assert code == 0, err
    doc = strict_json(text)
    assert doc["method"] == "gradient" and doc["best"]["llm"]["fits_in_dram"]
    assert doc["best"]["llm"]["energy_j"] == pytest.approx(doc["best"]["energy_j"], rel=1e-12)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workload", "w.json", "--phase", "decode"], "--phase needs a zoo decoder MODEL"),
        (["--workload", "w.json", "--objective", "tokens_per_s"], "needs a zoo decoder MODEL"),
        (["gpt2", "--workload", "w.json"], "a zoo decoder MODEL takes no --workload"),
        (["gpt2", "--min-accuracy", "0.9"], "takes no --min-accuracy"),
        (["--workload", "w.json", "--max-perplexity", "9"], "needs a charlm --checkpoint"),
        (["gpt2", "--max-perplexity", "9"], "a zoo decoder MODEL takes no --max-perplexity"),
        (["--workload", "w.json", "--val-chars", "64"], "--val-chars needs a charlm --checkpoint"),
        (["resnet99"], "MODEL 'resnet99' is not a zoo decoder"),
        (["gpt2", "--prompt", "8"], "--prompt is the prefill phase's"),
        (["gpt2", "--context", "5000"], "context must be below 1024 tokens for gpt2"),
        (["gpt2", "--kv-bits", "1"], "kv_bits must be between 2 and 16 bits"),
        (["gpt2", "--method", "exact"], "--method exact does not apply to an LLM step"),
        (["llama_2_7b"], "llama_2_7b does not fit the device DRAM"),
        (["gpt2", "--per-layer"], 'not per layer: set "per_layer_bits": false'),
    ],
)
def test_refusals_are_one_line(tmp_path, capsys, args, message):
    space = tmp_path / "space.json"
    per_layer = "--per-layer" in args
    args = [a for a in args if a != "--per-layer"]
    space.write_text(json.dumps({**SPACE, "per_layer_bits": per_layer}))
    assert main(["search", *args, "--space", str(space)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert message in captured.err, captured.err


def test_figures_are_those_of_the_design_the_perplexity_recheck_keeps(monkeypatch):
    """The re-check by execution may replace the proxy's best; the step figures follow it."""
    import importlib
    from types import SimpleNamespace

    use_case = importlib.import_module("npu_dse.search")  # the module, not npu_dse.search()

    result = SimpleNamespace(best="proxy best", best_metrics={})

    class Target:
        def recheck(self, problem, result):
            result.best = "second by the proxy, meets the budget"
            return 7.0, None

        def figures(self, problem, design, metrics):
            return {"design": design}

    monkeypatch.setattr(use_case, "run_method", lambda problem, method, **kw: result)
    problem = SimpleNamespace(accuracy="a proxy")
    outcome = use_case.search(problem, "random", llm_target=Target())
    assert outcome.llm == {"design": "second by the proxy, meets the budget"}
    assert outcome.measured_perplexity == 7.0


def test_widths_whose_weights_do_not_fit_the_dram_leave_the_space(tmp_path):
    """llama_3_2_1b's 1.24e9 parameters take 1.24 GB at 8 bits, above edge-tpu-like's 1 GiB,
    and 0.62 GB at 4 bits: the search keeps the 4-bit weights only."""
    from dse import Budgets
    from npu_dse.search_llm import LLMTarget, llm_problem

    space = tmp_path / "space.json"
    space.write_text(json.dumps(SPACE))
    target = LLMTarget(llm.LLMRequest("llama_3_2_1b", context=63, kv_bits=8), "tokens_per_s")
    problem, source = llm_problem(target, space, Budgets())
    assert problem.space.w_bits == (4.0,) and problem.space.a_bits == (8.0,)
    assert problem.objective == "latency" and problem.llm.tokens == 1 and problem.llm.resident
    assert source == "llama_3_2_1b decode (context 63, batch 1)"


def test_a_problem_with_an_llm_step_needs_one_width_per_operand_class():
    from dse import Problem, Space

    wl, step = _step()
    space = Space.from_dict({"base": "edge-tpu-like", "w_bits": [4, 8]})  # per-layer widths
    with pytest.raises(ValueError, match="per_layer_bits false"):
        Problem(space, wl, "latency", llm=step)
    flat = Space.from_dict({"base": "edge-tpu-like", "w_bits": [4, 8], "per_layer_bits": False})
    assert Problem(flat, wl, "latency", llm=step).llm == step
