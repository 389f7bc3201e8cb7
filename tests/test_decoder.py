"""The decoder zoo: published parameter counts, decode MACs, GQA shapes, prefill and decode."""

import pytest

from models import decoder
from models.decoder import ZOO, decode, get_decoder, kv_cache_elems, param_count, prefill


@pytest.mark.parametrize("name", list(ZOO))
def test_parameter_counts_within_one_percent_of_published(name):
    cfg = ZOO[name]
    assert abs(param_count(cfg) / cfg.params_published - 1) < 0.01, cfg.source


def test_parameter_counts_exact_where_the_config_fixes_them():
    # gpt2: wte 50257*768 + wpe 1024*768 + 12 * 7,087,872 + ln_f 1536 (HF's count);
    # llama_3_2_1b: 128256*2048 + 16 * 60,821,504 + 2048.
    assert param_count(ZOO["gpt2"]) == 124_439_808
    assert param_count(ZOO["llama_3_2_1b"]) == 1_235_814_400
    assert param_count(ZOO["llama_2_7b"]) == 6_738_415_616
    assert param_count(ZOO["mistral_7b"]) == 7_241_732_096


@pytest.mark.parametrize("name", list(ZOO))
@pytest.mark.parametrize("context", [0, 511, 1000])
def test_decode_macs_are_parameters_minus_embedding_plus_attention(name, context):
    cfg = ZOO[name]
    span = min(context + 1, cfg.window) if cfg.window else context + 1
    embedding = (cfg.vocab + cfg.positions) * cfg.d_model
    head = cfg.vocab * cfg.d_model if cfg.tied else 0  # the tied LM head multiplies it again
    attention = 2 * cfg.n_layers * cfg.heads * cfg.head_dim * span
    expected = param_count(cfg) - embedding + head + attention
    macs = sum(lay.macs for lay in decode(cfg, context=context))
    assert abs(macs / expected - 1) < 0.02
    # and exactly: the weight matrices once, plus Q K^T and A V over the span
    assert macs == decoder.weight_macs(cfg) + attention


def test_grouped_query_attention_reads_the_kv_cache_once_per_kv_head():
    cfg = ZOO["llama_3_2_1b"]  # 32 query heads, 8 KV heads: groups of 4
    lays = {lay.name: lay for lay in decode(cfg, context=99, batch=3)}
    qk, av = lays["block0.qk"], lays["block0.av"]
    assert (qk.gemm_m, qk.gemm_k, qk.gemm_n, qk.gemm_count) == (4, 64, 100, 24)
    assert (av.gemm_m, av.gemm_k, av.gemm_n, av.gemm_count) == (4, 100, 64, 24)
    per_layer = (qk.filter_elems + av.filter_elems) * cfg.n_layers
    assert per_layer == kv_cache_elems(cfg, 100, batch=3)
    stores = [lay for lay in lays.values() if lay.kind == "kv_store"]
    # one new entry per layer and sequence: K and V of 8 heads of 64
    assert sum(lay.ofmap_elems for lay in stores) == 16 * 2 * 8 * 64 * 3


def test_mistral_attends_at_most_its_window():
    cfg = ZOO["mistral_7b"]
    qk = next(lay for lay in decode(cfg, context=10_000) if lay.kind == "matmul")
    assert qk.gemm_n == 4096


def test_prefill_gemms_have_m_equal_to_the_prompt_tokens():
    cfg = ZOO["gpt2"]
    lays = {lay.name: lay for lay in prefill(cfg, prompt=64, batch=2)}
    assert (lays["block3.fc1"].gemm_m, lays["block3.fc1"].gemm_n) == (128, 3072)
    assert lays["block3.qk"].gemm_m == lays["block3.qk"].gemm_n == 64
    assert lays["lm_head"].gemm_m == 2  # the last position of each sequence
    stores = sum(lay.ofmap_elems for lay in lays.values() if lay.kind == "kv_store")
    assert stores == kv_cache_elems(cfg, 64, batch=2)


def test_names_accept_hyphens_and_reject_unknown_models():
    assert get_decoder("llama-3.2-1b") is ZOO["llama_3_2_1b"]
    assert get_decoder("Mistral-7B") is ZOO["mistral_7b"]
    with pytest.raises(ValueError, match="unknown decoder model 'gpt5'; known: gpt2"):
        get_decoder("gpt5")


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: decode(ZOO["gpt2"], context=-1), "context must be an integer >= 0"),
        (lambda: decode(ZOO["gpt2"], context=1024), "context must be below 1024"),
        (lambda: prefill(ZOO["gpt2"], prompt=0), "prompt must be an integer >= 1"),
        (lambda: prefill(ZOO["gpt2"], prompt=8, batch=2.5), "batch must be an integer"),
    ],
)
def test_bad_sizes_are_one_line_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
