"""Layer-count buckets (hw.buckets): a top-level evaluation runs its bucket's program on a
padded workload and gives, field for field, what the unpadded workload's own program gives."""

import dataclasses
from pathlib import Path

import jax
import numpy as np
import pytest

from hw import buckets, cost, grouped, layers, mapper, presets, schedule
from hw.arith import EXACT, Arith
from hw.types import LayerBits, canonical
from hw.x64 import x64_scope
from models.zoo import get_network
from npu_dse.simulate import resolve_design
from npu_dse.workloads import load_workload

DATA = Path(__file__).parent / "data"


def test_buckets_cover_every_length_with_little_padding():
    sizes = [buckets.bucket(n) for n in range(1, 5001)]
    assert all(b >= n for n, b in enumerate(sizes, start=1))
    assert all(b <= 1.25 * n for n, b in enumerate(sizes, start=1) if n > buckets.SMALLEST)
    assert sizes == sorted(sizes)
    assert len(set(sizes)) == 38  # 8, then four per octave up to 5,120
    assert all(buckets.bucket(b) == b for b in set(sizes))


def _unpadded(config, workload, mapping=None, ar=EXACT, stall=True, layer_bits=None, **kw):
    """``evaluate`` as it runs without buckets: the workload's own length."""
    host = schedule.on_host(workload.kinds, config.unsupported_ops)
    fused = schedule.fused_edges(workload.kinds, config.unsupported_ops, config.fusion)
    grp = grouped.grouped_layers(workload.kinds)
    anon_config, anon_workload = cost.anonymous(config, workload)
    return cost._evaluate(
        anon_config, anon_workload, mapping, ar, layer_bits, host, fused, grp,
        stall=stall, steady_state=kw.get("steady_state", False), any_grouped=bool(grp.any()),
    )  # fmt: skip


def _assert_same_report(padded, plain, floats_exact=True):
    for field in dataclasses.fields(padded):
        if field.name == "names":
            continue
        got, want = np.asarray(getattr(padded, field.name)), np.asarray(getattr(plain, field.name))
        assert got.shape == want.shape and got.dtype == want.dtype, field.name
        if floats_exact or got.dtype.kind != "f":
            np.testing.assert_array_equal(got, want, err_msg=field.name)
        else:
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=0, err_msg=field.name)


def _first(workload, n):
    """The first ``n`` layers of ``workload``."""
    arrays = {
        f.name: np.asarray(getattr(workload, f.name))[:n]
        for f in dataclasses.fields(workload)
        if f.name not in ("names", "kinds")
    }
    return dataclasses.replace(
        workload, **arrays, names=workload.names[:n], kinds=workload.kinds[:n]
    )


def _cases():
    bert = get_network("bert_base_layer")  # 14 layers: a bucket of its own
    edge = dataclasses.replace(presets.get_preset("edge-tpu-like"), cross_layer=True)
    with x64_scope():
        small, _ = load_workload(DATA / "simulate_small.json")
    resident = resolve_design(overrides={"cross_layer": True, "unsupported_ops": ["gelu"]})
    return {
        # host fallback, fusion, residency, a depthwise conv: the layers that couple
        "small-resident": (resident.config, small, {"steady_state": True}),
        "resnet18-edge": (edge, _first(get_network("resnet18"), 45), {"steady_state": True}),
        "bert-scalesim": (presets.get_preset("scalesim-32x32"), _first(bert, 13), {}),
        "mobilenet-tpu": (presets.get_preset("tpu-v1-like"), get_network("mobilenet_v2"), {}),
    }


# the zoo networks take a minute to compile twice: a sample of them runs in make test
LONG = {"resnet18-edge", "mobilenet-tpu"}


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, marks=[pytest.mark.slow] if c in LONG else []) for c in sorted(_cases())],
)
def test_padded_equals_unpadded_field_for_field(case):
    config, workload, kw = _cases()[case]
    config = canonical(config)
    assert buckets.bucket(workload.num_layers) > workload.num_layers  # padding happens
    with x64_scope():
        mapping = cost.default_mapping(config, workload)
        plain_mapping = mapper._default_mapping(*cost.anonymous(config, workload), None)
        for f in ("tile_m", "tile_k", "tile_n", "loop_order"):
            np.testing.assert_array_equal(getattr(mapping, f), getattr(plain_mapping, f))
        n = workload.num_layers
        bits = LayerBits(np.linspace(2, 8, n).round(), np.full(n, 8.0))
        variants = [{}]
        if case == "small-resident":  # given tiles and widths, no stalls, the smooth model
            smooth = Arith.smooth(0.3)
            variants += [
                {"mapping": mapping, "layer_bits": bits, "stall": False},
                {"mapping": mapping, "ar": smooth},
            ]
        for args in variants:
            padded = cost.evaluate(config, workload, **args, **kw)
            _assert_same_report(padded, _unpadded(config, workload, **args, **kw))
            assert padded.names == workload.names


def test_nearby_lengths_share_a_program_and_traced_calls_are_not_padded(monkeypatch):
    padded = []
    pad = buckets.pad_workload
    monkeypatch.setattr(
        buckets, "pad_workload", lambda wl, size: padded.append(size) or pad(wl, size)
    )
    config = canonical(presets.get_preset("scalesim-32x32"))

    def chain(n):
        return layers.workload([layers.gemm(f"g{i}", m=16 + i, k=32, n=48) for i in range(n)])

    cost.evaluate(config, chain(9))
    before = cost._evaluate._cache_size()
    rep = cost.evaluate(config, chain(10))  # bucket 10, as 9's
    assert cost._evaluate._cache_size() == before
    assert rep.total_cycles.shape == (10,) and rep.names == tuple(f"g{i}" for i in range(10))
    assert padded == [10]  # 9 layers padded to 10; 10 are a bucket already
    # Inside a trace the workload keeps its length.
    traced = jax.jit(lambda c: cost.evaluate(c, chain(9)).total_cycles)(config)
    assert padded == [10]
    np.testing.assert_array_equal(traced, cost.evaluate(config, chain(9)).total_cycles)
