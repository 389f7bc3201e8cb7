"""LLM inference on the cost model: the DRAM bound, weight bits, KV growth, prefill as GEMMs,
residency, the DRAM fit and the CLI."""

import json

import numpy as np
import pytest

from hw import cost, layers, presets
from models.decoder import ZOO, param_count
from npu_dse import designs, resolve_design
from npu_dse.cli import main
from npu_dse.llm import LLMRequest, operand_bits, simulate_llm

GPT2 = ZOO["gpt2"]


def _edge(**overrides):
    return resolve_design(preset="edge-tpu-like", overrides=overrides)


def test_decode_never_beats_the_dram_bound_and_meets_it_unless_fill_bound():
    """Random designs and contexts: tokens/s <= bandwidth / DRAM bytes per token always; where
    the step's compute is below its DRAM time and nothing is resident, within 10 % of the bound
    unless the report names another limit (fill-bound GEMMs or exposed tile prologues)."""
    rng = np.random.default_rng(0)
    within, other = 0, 0
    for _ in range(12):
        design = _edge(
            rows=int(2 ** rng.integers(4, 9)),
            cols=int(2 ** rng.integers(4, 9)),
            dataflow=str(rng.choice(["os", "ws", "is"])),
            sram_kib=float(2 ** rng.integers(7, 13)),
            dram_bw_gbps=float(np.exp(rng.uniform(0, np.log(30)))),  # 1-30 GB/s
            clock_mhz=float(rng.uniform(200, 1500)),
        )
        context = int(rng.integers(0, 1000))
        sim = simulate_llm("gpt2", design, context=context, batch=int(rng.integers(1, 5)))
        d = sim.to_dict()
        assert d["tokens_per_s"] <= d["dram_bound_tokens_per_s"] * (1 + 1e-12)
        rep = sim.report
        busy = float(np.sum(np.asarray(rep.compute_cycles) + np.asarray(rep.vector_cycles)))
        if busy < float(np.asarray(rep.dram_cycles).sum()) and not any(d["resident"].values()):
            if d["tokens_per_s"] >= 0.9 * d["dram_bound_tokens_per_s"]:
                within += 1
            else:
                other += 1
                assert d["limited_by"] in ("compute", "exposed")
                split = d["time_split_s"]
                assert split["compute"] + split["exposed"] > 0.1 * sum(split.values())
    assert within >= 4 and within >= other


def test_weight_stationary_array_at_batch_one_can_be_fill_bound():
    # 256 x 256 ws at 1.5 GHz with 400 GB/s: each 256 x 256 weight fold takes 2*256 + 256 - 1
    # cycles for one token, so loading weights into the array is slower than DRAM
    design = _edge(rows=256, cols=256, dataflow="ws", clock_mhz=1500, dram_bw_gbps=400)
    d = simulate_llm("gpt2", design, context=127).to_dict()
    assert d["limited_by"] == "compute"
    assert d["tokens_per_s"] < 0.9 * d["dram_bound_tokens_per_s"]


@pytest.mark.parametrize(("high", "low"), [(16, 8), (8, 4)])
def test_halving_weight_bits_speeds_up_weight_bound_decode(high, low):
    design = _edge(w_bits=16, a_bits=16)
    fast = simulate_llm("gpt2", design, context=127, w_bits=low, kv_bits=8).to_dict()
    slow = simulate_llm("gpt2", design, context=127, w_bits=high, kv_bits=8).to_dict()
    assert slow["dram"]["weights_bytes"] > 0.9 * slow["dram"]["total_bytes"]  # weight-bound
    assert fast["tokens_per_s"] >= 1.6 * slow["tokens_per_s"]


@pytest.mark.parametrize("batch", [1, 3])
def test_next_token_reads_one_more_kv_entry_per_layer(batch):
    design = _edge(sram_kib=512)  # 256 KiB may stay on chip: the 1.8 MB cache does not
    kv = [
        simulate_llm("gpt2", design, context=c, batch=batch, kv_bits=4).dram_split()
        for c in (200, 201)
    ]
    entry = 2 * GPT2.kv_heads * GPT2.head_dim * 4 / 8  # K and V of one position, bytes
    assert kv[1]["kv_cache_bytes"] - kv[0]["kv_cache_bytes"] == GPT2.n_layers * entry * batch


def test_prefill_costs_the_same_as_its_gemms():
    design = _edge(sram_kib=512)
    sim = simulate_llm("gpt2", design, phase="prefill", prompt=32, batch=2, kv_bits=4)
    d, h, rows = GPT2.d_model, GPT2.heads, 2 * 32
    block = [
        layers.dense("q", in_features=d, out_features=d, tokens=rows),
        layers.dense("k", in_features=d, out_features=d, tokens=rows),
        layers.dense("v", in_features=d, out_features=d, tokens=rows),
        layers.batched_matmul("qk", m=32, k=64, n=32, count=2 * h),
        layers.batched_matmul("av", m=32, k=32, n=64, count=2 * h),
        layers.dense("o", in_features=d, out_features=d, tokens=rows),
        layers.dense("fc1", in_features=d, out_features=4 * d, tokens=rows),
        layers.dense("fc2", in_features=4 * d, out_features=d, tokens=rows),
    ]
    head = layers.dense("lm_head", in_features=d, out_features=GPT2.vocab, tokens=2)
    gemms = layers.workload(block * GPT2.n_layers + [head])
    bits = operand_bits(gemms, 8.0, 8.0, 4.0)
    alone = cost.evaluate(sim.config, gemms, cost.default_mapping(sim.config, gemms, bits),
                          layer_bits=bits)  # fmt: skip
    mine = np.array(sim.workload.gemm_count) > 0
    for field in ("macs", "compute_cycles", "dram_filter_read_bytes", "sram_filter_reads"):
        np.testing.assert_array_equal(np.asarray(getattr(sim.report, field))[mine],
                                      np.asarray(getattr(alone, field)), err_msg=field)  # fmt: skip


def test_weights_stay_resident_when_they_fit_on_chip():
    big = _edge(sram_kib=256 * 1024)  # 128 MiB may stay: gpt2 at 4 bits is 62 MB
    res = simulate_llm("gpt2", big, context=63, w_bits=4)
    assert res.resident_weights and res.dram_split()["weights_bytes"] == 0
    streamed = simulate_llm("gpt2", _edge(dram_capacity_gib=1), context=63, w_bits=4)
    assert streamed.to_dict()["fits_in_dram"]
    prefill = simulate_llm("gpt2", big, phase="prefill", prompt=16, w_bits=4)
    assert not prefill.resident_weights  # loaded once per prompt


def test_a_model_that_does_not_fit_the_dram_is_refused_in_one_line():
    request = LLMRequest("llama_2_7b", w_bits=16, a_bits=16)
    tpu = resolve_design(preset="tpu-v1-like")  # 8 GiB of DDR3: 13.5 GB of fp16 weights
    with pytest.raises(ValueError, match=r"^llama_2_7b does not fit the device DRAM: weights "):
        simulate_llm(request, tpu)


def test_presets_carry_their_dram_capacity():
    assert float(presets.get_preset("tpu-v1-like").dram_capacity_gib) == 8.0  # Jouppi 2017
    for name in presets.preset_names():
        design = designs.design_from_dict(designs.config_to_dict(presets.get_preset(name)))
        assert design.config.dram_capacity_gib == presets.get_preset(name).dram_capacity_gib
    spec = {"base": "edge-tpu-like", "dram_capacity_gib": 2.5}
    assert float(designs.design_from_dict(spec).config.dram_capacity_gib) == 2.5
    for bad in (0, 2.0**21, -1.0):
        with pytest.raises(
            ValueError, match=r"^design: 'dram_capacity_gib' must be in 0.001..1048576 GiB, got "
        ):
            designs.design_from_dict({"dram_capacity_gib": bad})


def test_the_fit_is_weights_plus_cache_against_the_design_capacity():
    """At w8 / kv8, gpt2 holds its parameters plus 2 * 12 * 768 bytes per cached token; a
    capacity one byte below that refuses it, the exact figure fits."""
    held = param_count(GPT2) + 2 * 12 * 768 * (63 + 1)
    exact = _edge(dram_capacity_gib=held / 2**30)
    d = simulate_llm("gpt2", exact, context=63).to_dict()
    assert d["fits_in_dram"] and d["memory"]["total_bytes"] == held
    assert d["memory"]["capacity_bytes"] == pytest.approx(held, rel=1e-15)
    assert (d["memory"]["weights_bytes"], d["memory"]["dram_capacity_gib"]) == (
        param_count(GPT2),
        held / 2**30,
    )
    short = _edge(dram_capacity_gib=(held - 1) / 2**30)
    with pytest.raises(ValueError, match="does not fit the device DRAM"):
        simulate_llm("gpt2", short, context=63)
    loose = simulate_llm("gpt2", short, context=63, require_fit=False).to_dict()
    assert not loose["fits_in_dram"]
    assert loose["tokens_per_s"] == d["tokens_per_s"]  # the capacity changes nothing else


def test_cli_refuses_a_model_above_the_design_capacity(capsys):
    edge = ["simulate", "gpt2", "--preset", "edge-tpu-like", "--context", "63"]
    assert main([*edge, "--dram-capacity-gib", "0.1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("npu-dse: error: gpt2 does not fit the device DRAM") and "\n" not in err
    assert "dram_capacity_gib 0.1" in err
    assert main([*edge, "--dram-capacity-gib", "0"]) == 2
    assert "(set with --dram-capacity-gib)" in capsys.readouterr().err
    assert main([*edge, "--dram-capacity-gib", "0.2", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["fits_in_dram"] and d["memory"]["capacity_bytes"] == 0.2 * 2**30
    assert d["design"]["dram_capacity_gib"] == 0.2


def test_cli_simulate_takes_a_decoder_and_prints_the_llm_figures(capsys):
    assert main(["simulate", "gpt2", "--phase", "decode", "--context", "64", "--batch", "2",
                 "--kv-bits", "4", "--preset", "edge-tpu-like", "--json"]) == 0  # fmt: skip
    d = json.loads(capsys.readouterr().out)
    for key in ("time_per_output_token_s", "tokens_per_s", "energy_per_token_j"):
        assert d[key] > 0
    assert set(d["dram"]) == {"weights_bytes", "kv_cache_bytes", "activations_bytes",
                              "total_bytes"}  # fmt: skip
    assert d["tokens_per_s"] == pytest.approx(2 / d["time_per_output_token_s"])
    edge = ["--preset", "edge-tpu-like"]
    assert main(["simulate", "gpt-3", "--phase", "prefill", *edge]) == 2
    assert main(["simulate", "gpt2", "--phase", "prefill", "--prompt", "16", "--json", *edge]) == 0
    assert json.loads(capsys.readouterr().out)["time_to_first_token_s"] > 0
    assert main(["simulate", "gpt2", "--w-format", "int4", "--a-format", "bf16", *edge]) == 0
    assert (
        "gpt2 decode (context 128, batch 1; w int4 / a bf16 / kv bf16)" in capsys.readouterr().out
    )
    assert main(["simulate", "gpt2", "--kv-bits", "1", *edge]) == 2
    assert "kv_bits must be between 2 and 16 bits, got 1" in capsys.readouterr().err


def test_weight_only_int4_with_bf16_activations_against_bf16():
    design = _edge(w_bits=16, a_bits=16)
    bf16 = simulate_llm("gpt2", design, context=127, w_format="bf16", a_format="bf16").to_dict()
    mixed = simulate_llm("gpt2", design, context=127, w_format="int4", a_format="bf16").to_dict()
    assert mixed["formats"] == {"w": "int4", "a": "bf16", "kv": "bf16"}
    assert (mixed["w_bits"], mixed["kv_bits"]) == (4.0, 16.0)
    assert mixed["tokens_per_s"] >= 3 * bf16["tokens_per_s"]  # weights are 1/4 of the bytes
    assert mixed["energy_per_token_j"] < bf16["energy_per_token_j"]
    int16 = simulate_llm("gpt2", design, context=127, w_bits=16, a_bits=16).to_dict()
    assert bf16["area_mm2"] > int16["area_mm2"]  # float MACs are larger than 16-bit integer ones
    with pytest.raises(ValueError, match="w_bits 8 contradicts w_format bf16 .16."):
        simulate_llm("gpt2", design, w_bits=8, w_format="bf16")
