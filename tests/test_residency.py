"""What stays on chip (hw.residency): activations between layers, weights across inferences."""

import dataclasses
import json

import jax
import numpy as np
import pytest

from hw import cost, layers, presets
from hw.arith import Arith
from hw.types import Mapping, canonical
from hw.x64 import x64
from models.zoo import _inverted_residual
from npu_dse import simulate
from npu_dse.cli import main
from npu_dse.designs import config_to_dict, design_from_dict

# Two dense layers, 16 tokens of 64 features: fc1's output (16 x 64 = 1,024 elements, 1 KiB at
# 8 bits) is fc2's input.
CHAIN = layers.workload(
    [layers.dense(f"fc{i}", in_features=64, out_features=64, tokens=16) for i in (1, 2)]
)
# Tiles 16 x 16 x 16 in loop order out: input tile 256 B, weight tile 256 B, accumulator
# tile 16 x 16 x 4 = 1,024 B, each double-buffered. nn = nk = 4, so each input is fetched
# 1 + (nn - 1) = 4 times.
TILES = Mapping(*(np.array([16, 16]) for _ in range(3)), np.array([0, 0]))

DRAM = ("dram_ifmap_read_bytes", "dram_filter_read_bytes", "dram_ofmap_write_bytes")
DRAM += ("dram_ofmap_read_bytes",)


def _split(ifmap_kib, *, cross_layer=True, filter_kib=1.0, **kw):
    """A 16 x 16 ws array with split buffers: ifmap ``ifmap_kib``, filter ``filter_kib``,
    ofmap 2 KiB (the accumulator tiles' 2 x 1,024 B)."""
    base = presets.get_preset("edge-tpu-like")
    return canonical(
        dataclasses.replace(
            base,
            rows=16,
            cols=16,
            unified_sram=False,
            ifmap_sram_kib=float(ifmap_kib),
            filter_sram_kib=float(filter_kib),
            ofmap_sram_kib=2.0,
            cross_layer=cross_layer,
            **kw,
        )
    )


def _fields(rep):
    return {f.name: np.asarray(getattr(rep, f.name)) for f in dataclasses.fields(rep)
            if f.name != "names"}  # fmt: skip


def test_the_middle_activation_stays_on_chip_when_it_fits():
    # Resident tensors live in the ifmap buffer beside the layer's two 256 B input tiles:
    # free = 1,024 I - 512 B. fc1 holds its 1 KiB output, fc2 its 1 KiB input: I = 1.5 KiB
    # leaves exactly 1,024 B.
    old = cost.evaluate(_split(1.5, cross_layer=False), CHAIN, TILES)
    new = cost.evaluate(_split(1.5), CHAIN, TILES)
    assert np.asarray(new.output_resident).tolist() == [True, False]
    assert np.asarray(old.dram_ofmap_write_bytes).tolist() == [1024.0, 1024.0]
    assert np.asarray(new.dram_ofmap_write_bytes).tolist() == [0.0, 1024.0]
    assert np.asarray(old.dram_ifmap_read_bytes).tolist() == [4096.0, 4096.0]  # 4 fetches
    assert np.asarray(new.dram_ifmap_read_bytes).tolist() == [4096.0, 0.0]
    assert np.array_equal(new.dram_filter_read_bytes, old.dram_filter_read_bytes)
    assert np.array_equal(new.compute_cycles, old.compute_cycles)
    assert float(new.total_latency_s) < float(old.total_latency_s)
    assert float(new.total_energy_j) < float(old.total_energy_j)


def test_a_buffer_too_small_for_the_activation_gives_exactly_the_old_numbers():
    # I = 1.25 KiB: free = 1,280 - 512 = 768 B < 1,024 B.
    old = _fields(cost.evaluate(_split(1.25, cross_layer=False), CHAIN, TILES))
    new = _fields(cost.evaluate(_split(1.25), CHAIN, TILES))
    assert not new["output_resident"].any()
    for name, value in old.items():
        assert np.array_equal(new[name], value), name


def _block_net():
    """A stem conv, then two MobileNetV2 bottlenecks (the second with a residual add)."""
    lays = layers.conv2d("stem", ifmap_h=16, ifmap_w=16, channels=3, num_filters=16,
                         filter_h=3, filter_w=3, padding=1)  # fmt: skip
    out = [lays, layers.vector("stem.relu", "relu", elems=lays.ofmap_elems)]
    out += _inverted_residual("b0", 16, 16, 24, 6, 2, 1)
    out += _inverted_residual("b1", 8, 24, 24, 6, 1, 1)
    return layers.workload(out)


BLOCKS = _block_net()


@pytest.mark.parametrize("unified", [True, pytest.param(False, marks=pytest.mark.slow)])
def test_residency_never_adds_dram_bytes_or_latency(unified):
    base = dataclasses.replace(presets.get_preset("edge-tpu-like"), rows=32, cols=32)
    for kib in (2.0, 8.0, 24.0, 64.0, 4096.0):  # values, not shapes: one compile per path
        config = canonical(
            dataclasses.replace(
                base,
                unified_sram=unified,
                ifmap_sram_kib=kib,
                filter_sram_kib=kib,
                ofmap_sram_kib=kib,
            )
        )
        mapping = cost.default_mapping(config, BLOCKS)
        old = cost.evaluate(config, BLOCKS, mapping)
        new = cost.evaluate(dataclasses.replace(config, cross_layer=True), BLOCKS, mapping)
        for f in DRAM:
            assert np.all(np.asarray(getattr(new, f)) <= np.asarray(getattr(old, f))), (kib, f)
        assert np.all(np.asarray(new.total_cycles) <= np.asarray(old.total_cycles)), kib
        assert np.array_equal(new.compute_cycles, old.compute_cycles)
        if kib == 4096.0:
            assert np.asarray(new.output_resident).sum() >= 4


def test_a_residual_skip_operand_is_still_written_and_read():
    config = canonical(dataclasses.replace(presets.get_preset("edge-tpu-like"), rows=32, cols=32))
    mapping = cost.default_mapping(config, BLOCKS)  # the same programs as the test above
    rep = cost.evaluate(dataclasses.replace(config, cross_layer=True), BLOCKS, mapping)
    names = list(BLOCKS.names)
    skip = names.index("b0.project")  # b1's input: read by b1.expand and by b1.add
    add = names.index("b1.add")
    skip_bytes = float(BLOCKS.ofmap_elems[skip])  # 8 x 8 x 24 at 8 bits
    assert bool(rep.output_resident[skip])
    assert float(rep.dram_ifmap_read_bytes[skip + 1]) == 0.0  # b1.expand reads it on chip
    assert float(rep.dram_ofmap_write_bytes[skip]) == skip_bytes  # ... and the add from DRAM
    assert float(rep.dram_ifmap_read_bytes[add]) == skip_bytes
    expand = names.index("b1.expand")  # its ReLU's output feeds b1.dw: not read again later
    assert bool(rep.output_resident[expand + 1])
    assert float(rep.dram_ofmap_write_bytes[expand + 1]) == 0.0


def test_steady_state_reads_no_weights_when_they_fit_and_the_cold_figure_otherwise():
    # fc1 and fc2 hold 64 x 64 = 4 KiB of weights each: 8 KiB in all.
    cold = cost.evaluate(_split(1.5, filter_kib=9.0), CHAIN, TILES)
    warm = cost.evaluate(_split(1.5, filter_kib=9.0), CHAIN, TILES, steady_state=True)
    assert bool(warm.weights_resident) and not bool(cold.weights_resident)
    assert np.asarray(warm.dram_filter_read_bytes).tolist() == [0.0, 0.0]
    assert float(np.asarray(cold.dram_filter_read_bytes).sum()) >= 8192.0
    for f in ("dram_ifmap_read_bytes", "dram_ofmap_write_bytes", "compute_cycles"):
        assert np.array_equal(getattr(warm, f), getattr(cold, f)), f
    assert float(warm.total_latency_s) < float(cold.total_latency_s)
    # 8 KiB of weights beside 2 x 256 B weight tiles need 8.5 KiB; 8.25 KiB is too little.
    tight = _split(1.5, filter_kib=8.25)
    cold = _fields(cost.evaluate(tight, CHAIN, TILES))
    warm = _fields(cost.evaluate(tight, CHAIN, TILES, steady_state=True))
    for name, value in cold.items():
        assert np.array_equal(warm[name], value), name
    just = cost.evaluate(_split(1.5, filter_kib=8.5), CHAIN, TILES, steady_state=True)
    assert bool(just.weights_resident)


def test_the_smooth_model_stays_finite_and_differentiable_with_residency():
    config = _split(1.5, filter_kib=9.0)

    @x64
    def latency(bw, ar):
        c = dataclasses.replace(config, dram_bw_gbps=bw)
        return cost.evaluate(c, CHAIN, TILES, ar, steady_state=True).total_latency_s

    grad = jax.grad(latency)(np.float64(4.0), Arith.smooth(0.1))
    assert np.isfinite(float(grad)) and float(grad) < 0.0


def test_design_files_take_the_field():
    config = design_from_dict({"base": "edge-tpu-like", "cross_layer": True}).config
    assert config.cross_layer is True
    assert design_from_dict(config_to_dict(config)).config.cross_layer is True
    assert design_from_dict({"base": "edge-tpu-like"}).config.cross_layer is False
    with pytest.raises(ValueError) as err:
        design_from_dict({"cross_layer": "yes"})
    assert "\n" not in str(err.value) and "cross_layer" in str(err.value)


def test_the_cli_flags_and_json_keys(tmp_path, capsys):
    fc = {"type": "dense", "in_features": 64, "out_features": 64, "tokens": 16}
    path = tmp_path / "chain.json"
    path.write_text(
        json.dumps({"name": "chain", "layers": [fc | {"name": "a"}, fc | {"name": "b"}]})
    )
    args = ["simulate", str(path), "--preset", "edge-tpu-like", "--cross-layer"]
    assert main([*args, "--json"]) == 0
    cold = json.loads(capsys.readouterr().out)
    assert "steady_state" not in cold and cold["design"]["cross_layer"] is True
    assert [layer["output_on_chip"] for layer in cold["layers"]] == [True, False]
    assert cold["total"]["dram_bytes_breakdown"]["filter_read"] == 2 * 64 * 64
    assert main([*args, "--steady-state", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["total"] == cold["total"]  # the cold figures stay as they were
    steady = out["steady_state"]
    assert steady["weights_on_chip"] is True and steady["dram_bytes_breakdown"]["filter_read"] == 0
    assert steady["latency_s"] < cold["total"]["latency_s"]
    assert steady["dram_bytes"] == cold["total"]["dram_bytes"] - 2 * 64 * 64
    assert main([*args, "--steady-state"]) == 0
    text = capsys.readouterr().out
    assert "1 output(s) kept on chip" in text and "steady state (weights kept on chip)" in text


@pytest.fixture(scope="module")
def mobilenet_v2_steady():
    """MobileNetV2 224 b1 in a stream on ``edge-tpu-like``, with and without cross-layer
    residency: ``(on, off)`` simulations."""
    from models.zoo import get_network

    wl = get_network("mobilenet_v2", batch=1, image=224)
    config = dataclasses.replace(presets.get_preset("edge-tpu-like"), cross_layer=True)
    on = simulate(wl, config, steady_state=True)
    off = simulate(wl, presets.get_preset("edge-tpu-like"), steady_state=True)
    return on, off


EDGE_TPU_MOBILENET_V2_S = 2.4e-3
"""Coral Edge TPU, MobileNetV2 224 b1: 2.3-2.5 ms (coral.ai benchmarks); target: the steady
state within 1.5x of 2.4 ms, on both sides."""


@pytest.mark.slow
def test_mobilenet_v2_steady_state_on_edge_tpu_like_is_not_slower_than_the_target(
    mobilenet_v2_steady,
):
    sim, off = mobilenet_v2_steady
    assert bool(sim.steady.weights_resident)
    assert float(np.asarray(sim.steady.dram_filter_read_bytes).sum()) == 0.0
    assert float(sim.steady.total_latency_s) <= 1.5 * EDGE_TPU_MOBILENET_V2_S
    assert float(off.steady.total_latency_s) > float(sim.steady.total_latency_s)


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="1.14 ms, 0.47x of the Edge TPU's 2.4 ms: the model charges nothing per layer "
    "beyond its compute and memory cycles (no instruction or parameter fetch, no "
    "synchronisation between layers), and the published chip's per-layer costs are not "
    "documented; no constant is fitted to this one figure",
)
def test_mobilenet_v2_steady_state_on_edge_tpu_like_is_not_faster_than_the_target(
    mobilenet_v2_steady,
):
    sim, _ = mobilenet_v2_steady
    assert float(sim.steady.total_latency_s) >= EDGE_TPU_MOBILENET_V2_S / 1.5
