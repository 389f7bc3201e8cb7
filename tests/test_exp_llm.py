"""Smoke run of experiments/exp_llm.py (quick: gpt2): files, the DRAM bound, weight bits."""

import csv
import json

import pytest

from experiments import exp_llm
from models.decoder import ZOO, param_count


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _pick(rows, **match):
    return next(r for r in rows if all(r[k] == v for k, v in match.items()))


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("exp_llm")
    return out, exp_llm.main(["--quick", "--out", str(out)])


def test_files_and_headline(quick_run):
    out, headline = quick_run
    for name in ("decode", "prefill", "bits", "claim", "roofline"):
        assert _rows(out / f"{name}.csv"), name
    for name in ("decode_vs_bound", "bits", "roofline"):
        for ext in ("png", "svg"):
            assert (out / f"{name}.{ext}").stat().st_size > 0
    assert json.loads((out / "headline.json").read_text()) == headline
    assert headline["decode_never_above_bound"]
    assert headline["caveat"].startswith(f"caveat: {exp_llm.LAPTOP} decodes at ")
    assert headline["claim_verdict"].startswith("gpt2, 4-bit weights, batch 1, on 45.9 TOPS")


def test_tokens_per_s_never_beat_the_bandwidth_bound(quick_run):
    out, _ = quick_run
    rows = _rows(out / "decode.csv") + _rows(out / "prefill.csv")
    assert {r["platform"] for r in rows} == {"npu", "gpu"}
    for r in rows:
        assert 0 < float(r["tokens_per_s"]) <= float(r["bound_tokens_per_s"]) * (1 + 1e-9)
    for r in _rows(out / "roofline.csv"):  # under the roof: min(peak, bandwidth x intensity)
        roof = min(float(r["peak_tops"]), float(r["dram_bw_gbps"]) * 1e-3 *
                   float(r["intensity_ops_per_byte"]))  # fmt: skip
        assert float(r["achieved_tops"]) <= roof * (1 + 1e-9)


def test_fewer_weight_and_cache_bits_never_slow_decode(quick_run):
    out, _ = quick_run
    bits = _rows(out / "bits.csv")
    assert {r["dataflow"] for r in bits} == {"ws", "os"}
    for df in ("ws", "os"):
        for study, key in (("weights", "w_bits"), ("kv", "kv_bits")):
            tps = {int(r[key]): float(r["tokens_per_s"]) for r in bits
                   if (r["study"], r["dataflow"]) == (study, df)}  # fmt: skip
            # 1e-3: the mapper takes the largest tile that fits, and a narrower cache's larger
            # attention tile has a longer unhidden prologue (11 cycles of 30,000 a layer)
            assert tps[4] >= tps[8] * (1 - 1e-3) and tps[8] >= tps[16] * (1 - 1e-3), (df, study)
    assert all(float(r["tokens_per_s"]) <= float(r["bound_tokens_per_s"]) for r in bits)
    os16, os8 = (_pick(bits, dataflow="os", study="weights", w_bits=str(b)) for b in (16, 8))
    assert os16["limited_by"] == "dram"  # 16-bit weights outrun the DRAM on an os array:
    assert float(os8["tokens_per_s"]) > 1.5 * float(os16["tokens_per_s"])  # halving them pays
    weights = {int(r["w_bits"]): float(r["dram_weights_bytes"]) for r in bits
               if r["study"] == "weights"}  # fmt: skip
    assert weights[8] == 2 * weights[4] and weights[16] == 2 * weights[8]


def test_more_bandwidth_never_slows_and_fewer_tops_never_speed_up(quick_run):
    out, _ = quick_run
    claim = _rows(out / "claim.csv")
    for df in ("ws", "os"):
        by = {r["variant"]: r for r in claim if r["dataflow"] == df}
        base = float(by["base"]["decode_tokens_per_s"])
        assert float(by["double_bandwidth"]["decode_tokens_per_s"]) >= base
        assert float(by["half_tops_clock"]["decode_tokens_per_s"]) <= base
        ttft = float(by["base"]["time_to_first_token_s"])
        assert float(by["half_tops_clock"]["time_to_first_token_s"]) >= ttft


def test_fit_follows_the_design_capacity(quick_run):
    """edge-tpu-like has 1 GiB: gpt2 at 8 bits, 124 MB of weights plus 2 * 12 * 768 bytes
    per cached token and sequence, fits at every batch of the quick run."""
    out, _ = quick_run
    rows = [r for r in _rows(out / "decode.csv") if r["design"] == "edge-tpu-like"]
    assert rows
    for r in rows:
        held = param_count(ZOO["gpt2"]) + 2 * 12 * 768 * (exp_llm.CONTEXT + 1) * int(r["batch"])
        assert r["fits_in_dram"] == str(held <= 2**30)
