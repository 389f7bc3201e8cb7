"""Tests of npu_dse.onnx_import: one-node graphs per op against hand arithmetic, ZigZag's
ResNet-18, symbolic dimensions, host fallback and bad files."""

import logging

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hw import evaluate, layers
from npu_dse import load_workload, resolve_design
from npu_dse.onnx_import import import_from_proto, import_onnx
from npu_dse.reference import reference_path

F = TensorProto.FLOAT


def model_of(nodes, inputs, weights=(), outputs=("y",)):
    """A model of ``nodes``; ``inputs`` {name: shape} are graph inputs, ``weights`` {name:
    array} initializers."""
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, F, s) for n, s in inputs.items()],
        [helper.make_tensor_value_info(n, F, None) for n in outputs],
        [numpy_helper.from_array(np.asarray(a), n) for n, a in dict(weights).items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def one(op, inputs, weights=(), **attrs):
    """The single layer of a one-node graph ``op(inputs..., weights...) -> y``."""
    names = [*inputs, *dict(weights)]
    node = helper.make_node(op, names, ["y"], name="n", **attrs)
    found = import_from_proto(model_of([node], inputs, weights)).layers
    assert len(found) == 1
    return found[0]


def w(*shape):
    return np.zeros(shape, np.float32)


def test_conv_strides_pads_dilations_groups():
    # out = floor((16 + 1 + 2 - 2*(3-1) - 1) / 2) + 1 = 8 rows; cols: (16 + 2 - 3) / 1 + 1 = 16.
    lay = one(
        "Conv",
        {"x": [2, 8, 16, 16]},
        {"w": w(12, 4, 3, 3)},
        strides=[2, 1],
        pads=[1, 1, 2, 1],
        dilations=[2, 1],
        group=2,
    )
    assert lay.kind == "conv"
    assert (lay.gemm_m, lay.gemm_k, lay.gemm_n, lay.gemm_count) == (2 * 8 * 16, 9 * 4, 6, 2)
    assert lay.macs == 2 * 8 * 16 * 12 * 4 * 9
    assert (lay.ifmap_elems, lay.filter_elems, lay.ofmap_elems) == (
        2 * 8 * 256,
        12 * 36,
        2 * 12 * 128,
    )


def test_depthwise_conv():
    lay = one("Conv", {"x": [1, 32, 8, 8]}, {"w": w(32, 1, 3, 3)}, group=32, pads=[1, 1, 1, 1])
    assert lay.kind == "depthwise"
    assert (lay.gemm_m, lay.gemm_k, lay.gemm_n, lay.gemm_count) == (64, 9, 1, 32)


def test_conv_transpose():
    # 4x4 input, 3x3 kernel, stride 2: each of 16 pixels x 8 channels scatters to 5 x 9 taps.
    lay = one("ConvTranspose", {"x": [1, 8, 4, 4]}, {"w": w(8, 5, 3, 3)}, strides=[2, 2])
    assert (lay.gemm_m, lay.gemm_k, lay.gemm_n, lay.gemm_count) == (16, 8, 45, 1)
    assert lay.ofmap_elems == 5 * 9 * 9  # (4 - 1) * 2 + 3 = 9 per side


def test_gemm_transposed_weight():
    lay = one("Gemm", {"x": [4, 64]}, {"w": w(32, 64), "b": w(32)}, transB=1)
    assert (lay.kind, lay.gemm_m, lay.gemm_k, lay.gemm_n) == ("dense", 4, 64, 32)
    assert (lay.ifmap_elems, lay.filter_elems, lay.ofmap_elems) == (256, 2048, 128)


def test_matmul_weight_and_attention():
    dense = one("MatMul", {"x": [2, 16, 64]}, {"w": w(64, 96)})
    assert (dense.kind, dense.gemm_m, dense.gemm_k, dense.gemm_n, dense.gemm_count) == (
        "dense",
        32,
        64,
        96,
        1,
    )
    # Q K^T of 2 batches x 4 heads, sequence 16, head size 8: 8 GEMMs 16x8 . 8x16.
    scores = one("MatMul", {"q": [2, 4, 16, 8], "k": [2, 4, 8, 16]})
    assert (scores.kind, scores.gemm_m, scores.gemm_k, scores.gemm_n) == ("matmul", 16, 8, 16)
    assert scores.gemm_count == 8 and scores.macs == 8 * 16 * 8 * 16


def q_model(op, x_type, w_type, conv: bool):
    """A one-node QLinear*/ *Integer model with integer operands."""
    xs = [1, 4, 6, 6] if conv else [3, 16]
    ws = [8, 4, 3, 3] if conv else [16, 5]
    wts = [
        numpy_helper.from_array(
            np.zeros(ws, np.int8 if w_type == TensorProto.INT8 else np.uint8), "w"
        )
    ]
    scalars = {"xs": 0.1, "ws": 0.1, "ys": 0.1}
    wts += [numpy_helper.from_array(np.array(v, np.float32), n) for n, v in scalars.items()]
    wts += [
        numpy_helper.from_array(
            np.array(0, np.uint8 if x_type == TensorProto.UINT8 else np.int8), n
        )
        for n in ("xz", "yz")
    ]
    wts += [
        numpy_helper.from_array(
            np.array(0, np.int8 if w_type == TensorProto.INT8 else np.uint8), "wz"
        )
    ]
    if op.startswith("QLinear"):
        ins = ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"]
    else:
        ins = ["x", "w", "xz", "wz"]
    node = helper.make_node(op, ins, ["y"], name="q")
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", x_type, xs)],
        [helper.make_tensor_value_info("y", TensorProto.UNDEFINED, None)],
        wts,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize(
    "op, conv",
    [
        ("QLinearConv", True),
        ("ConvInteger", True),
        ("QLinearMatMul", False),
        ("MatMulInteger", False),
    ],
)
def test_quantized_ops_and_their_widths(op, conv):
    imp = import_from_proto(q_model(op, TensorProto.UINT8, TensorProto.INT8, conv))
    (lay,) = imp.layers
    if conv:  # 6x6 -> 4x4 outputs, 3*3*4 taps, 8 filters
        assert (lay.gemm_m, lay.gemm_k, lay.gemm_n) == (16, 36, 8)
    else:
        assert (lay.gemm_m, lay.gemm_k, lay.gemm_n) == (3, 16, 5)
    assert imp.bits == {"q": (8, 8)}


# (op, attrs, vector ops per element, layer kind) on a 2x3x4x5 = 120-element input.
VECTOR_CASES = [
    ("Relu", {}, 1, "relu"),
    ("Sigmoid", {}, 4, "gelu"),
    ("Tanh", {}, 5, "gelu"),
    ("HardSigmoid", {}, 4, "gelu"),
    ("HardSwish", {}, 5, "gelu"),
    ("Gelu", {}, 8, "gelu"),
    ("Softmax", {"axis": -1}, 5, "softmax"),
]


@pytest.mark.parametrize("op, attrs, per_elem, kind", VECTOR_CASES)
def test_unary_vector_ops(op, attrs, per_elem, kind):
    opset = 20 if op == "Gelu" else 17
    node = helper.make_node(op, ["x"], ["y"], name="v", **attrs)
    model = model_of([node], {"x": [2, 3, 4, 5]})
    model.opset_import[0].version = opset
    (lay,) = import_from_proto(model).layers
    assert (lay.kind, lay.vector_ops, lay.ifmap_elems, lay.ofmap_elems) == (
        kind,
        per_elem * 120,
        120,
        120,
    )
    assert lay.gemm_count == 0


def test_clip_layernorm_batchnorm_vector_ops():
    clip = one("Clip", {"x": [10, 12]}, {"lo": np.float32(0), "hi": np.float32(6)})
    assert (clip.kind, clip.vector_ops, clip.ifmap_elems) == ("relu", 240, 120)
    ln = one("LayerNormalization", {"x": [4, 16, 32]}, {"g": w(32), "b": w(32)}, axis=-1)
    assert (ln.kind, ln.vector_ops, ln.ifmap_elems) == ("layernorm", 8 * 2048, 2048)
    # Not after a GEMM: an affine of 2 ops per element.
    bn = one("BatchNormalization", {"x": [2, 8, 4, 4]}, {n: w(8) + 1 for n in "sbmv"})
    assert (bn.kind, bn.vector_ops) == ("add", 2 * 256)


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
def test_binary_elementwise(op):
    two = one(op, {"a": [4, 8, 8], "b": [4, 8, 8]})
    assert (two.kind, two.vector_ops, two.ifmap_elems, two.ofmap_elems) == ("add", 256, 512, 256)
    # A broadcast constant operand is not read per element.
    bias = one(op, {"a": [4, 8, 8]}, {"c": w(8) + 1})
    assert (bias.vector_ops, bias.ifmap_elems) == (256, 256)


def test_pooling_and_means():
    mp = one(
        "MaxPool", {"x": [1, 16, 8, 8]}, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]
    )
    # (8 + 2 - 3) // 2 + 1 = 4 per side: 16*4*4 outputs, 9 compares each.
    assert (mp.kind, mp.ofmap_elems, mp.vector_ops) == ("pool", 256, 9 * 256)
    ap = one("AveragePool", {"x": [1, 16, 8, 8]}, kernel_shape=[2, 2], strides=[2, 2])
    assert (ap.ofmap_elems, ap.vector_ops) == (256, 4 * 256)
    gap = one("GlobalAveragePool", {"x": [2, 16, 7, 7]})
    assert (gap.kind, gap.ofmap_elems, gap.vector_ops) == ("pool", 32, 2 * 16 * 49)
    rm = one("ReduceMean", {"x": [2, 10, 6]}, {"axes": np.array([1], np.int64)})
    assert (rm.kind, rm.ofmap_elems, rm.vector_ops) == ("pool", 12, 120)


def test_batchnorm_folds_into_conv():
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["y"], name="bn"),
    ]
    weights = {"w": w(8, 3, 3, 3), **{n: w(8) + 1 for n in "sbmv"}}
    found = import_from_proto(model_of(nodes, {"x": [1, 3, 8, 8]}, weights)).layers
    assert [lay.name for lay in found] == ["conv"]
    # The conv output also read elsewhere: no fold, the BN is vector work.
    nodes.append(helper.make_node("Add", ["c", "y"], ["z"], name="add"))
    found = import_from_proto(model_of(nodes, {"x": [1, 3, 8, 8]}, weights, ["z"])).layers
    assert [lay.name for lay in found] == ["conv", "bn", "add"]


def test_erf_gelu_pattern_is_one_layer():
    k = lambda v: np.array(v, np.float32)  # noqa: E731
    nodes = [
        helper.make_node("Div", ["x", "sqrt2"], ["d"], name="div"),
        helper.make_node("Erf", ["d"], ["e"], name="erf"),
        helper.make_node("Add", ["e", "one"], ["a"], name="add"),
        helper.make_node("Mul", ["x", "a"], ["m"], name="mul"),
        helper.make_node("Mul", ["m", "half"], ["y"], name="half"),
    ]
    weights = {"sqrt2": k(1.4142135), "one": k(1.0), "half": k(0.5)}
    (lay,) = import_from_proto(model_of(nodes, {"x": [4, 64]}, weights)).layers
    assert (lay.kind, lay.vector_ops, lay.ifmap_elems) == ("gelu", 8 * 256, 256)


def test_data_movement_is_free():
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 1]),
        helper.make_node("Reshape", ["t", "shape"], ["r"]),
        helper.make_node("Identity", ["r"], ["i"]),
        helper.make_node("Dropout", ["i"], ["d"]),
        helper.make_node("Unsqueeze", ["d", "ax"], ["u"]),
        helper.make_node("Squeeze", ["u", "ax"], ["s"]),
        helper.make_node("Split", ["s"], ["p", "q"], axis=1, num_outputs=2),
        helper.make_node("Concat", ["p", "q"], ["c"], axis=1),
        helper.make_node("Slice", ["c", "st", "en"], ["sl"]),
        helper.make_node("Flatten", ["sl"], ["f"]),
        helper.make_node("Shape", ["f"], ["sh"]),
        helper.make_node("Gather", ["sh", "zero"], ["g0"]),
        helper.make_node("Gather", ["table", "ids"], ["emb"]),
        helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(w(2, 12), "k")),
        helper.make_node("Add", ["f", "k"], ["fk"], name="bias"),
        helper.make_node("Relu", ["fk"], ["y"], name="act"),
    ]
    weights = {
        "shape": np.array([2, 12], np.int64),
        "ax": np.array([0], np.int64),
        "st": np.array([0], np.int64),
        "en": np.array([2], np.int64),
        "zero": np.array(0, np.int64),
        "table": w(10, 4),
        "ids": np.array([1, 2], np.int64),
    }
    model = model_of(nodes, {"x": [2, 3, 4]}, weights, ["y", "g0", "emb"])
    model.opset_import[0].version = 18
    imp = import_from_proto(model)
    assert [lay.name for lay in imp.layers] == ["bias", "act"] and imp.host_ops == {}
    # the Constant is resolved at compile time: the Add reads only its 24-element activation
    assert imp.layers[0].ifmap_elems == 24 and imp.layers[0].vector_ops == 24
    assert imp.layers[1].ifmap_elems == 24


def test_absent_external_weights_import_from_shapes(tmp_path):
    node = helper.make_node("MatMul", ["x", "wt"], ["y"], name="proj")
    model = model_of([node], {"x": [4, 64]}, {"wt": w(64, 32)})
    path = tmp_path / "m.onnx"
    onnx.save(model, path, save_as_external_data=True, size_threshold=0, location="m.external")
    (tmp_path / "m.external").unlink()
    (lay,) = import_onnx(path).layers
    assert (lay.kind, lay.gemm_m, lay.gemm_k, lay.gemm_n) == ("dense", 4, 64, 32)


def test_unknown_op_falls_back_to_the_host(tmp_path, caplog):
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="act"),
        helper.make_node("Cos", ["r"], ["c"]),
        helper.make_node("Sin", ["c"], ["s"]),
        helper.make_node("Cos", ["s"], ["y"]),
    ]
    path = tmp_path / "odd.onnx"
    onnx.save(model_of(nodes, {"x": [4, 8]}), path)
    with caplog.at_level(logging.WARNING):
        wl, found = load_workload(path)
    assert [lay.kind for lay in found] == ["relu", "host", "host", "host"]
    assert [lay.name for lay in found] == ["act", "Cos_1", "Sin_2", "Cos_3"]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "3 ONNX node(s) run on the host (Cos x2, Sin x1)" in lines[0]
    design = resolve_design(preset="edge-tpu-like")
    rep = evaluate(design.config, wl)
    assert np.asarray(rep.on_host).tolist() == [False, True, True, True]
    assert np.all(np.asarray(rep.host_cycles)[1:] > 0) and np.isfinite(float(rep.total_latency_s))


def test_duplicate_and_missing_names_made_unique():
    nodes = [helper.make_node("Relu", [a], [b], name="act") for a, b in [("x", "r"), ("r", "s")]]
    nodes.append(helper.make_node("Relu", ["s"], ["y"]))
    found = import_from_proto(model_of(nodes, {"x": [4]})).layers
    assert [lay.name for lay in found] == ["act", "act_2", "Relu_2"]


def test_symbolic_batch(tmp_path):
    node = helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")
    path = tmp_path / "sym.onnx"
    onnx.save(model_of([node], {"x": ["N", 16]}, {"w": w(16, 4)}), path)
    with pytest.raises(
        ValueError, match="symbolic dimension 'N'; give its value with --batch"
    ) as e:
        load_workload(path)
    assert "\n" not in str(e.value)
    wl, found = load_workload(path, batch=6)
    assert found[0].gemm_m == 6
    with pytest.raises(ValueError, match="--batch must be a positive integer"):
        load_workload(path, batch=0)


@pytest.mark.parametrize(
    "content, match",
    [
        (b"", "empty file"),
        (b"name,M,N,K\nfc,1,2,3\n", "not an ONNX model"),
        ("truncated", "not an ONNX model"),
    ],
)
def test_bad_files_are_one_line_errors(tmp_path, content, match):
    path = tmp_path / "bad.onnx"
    if content == "truncated":
        node = helper.make_node("Relu", ["x"], ["y"], name="act")
        data = model_of([node], {"x": [4]}).SerializeToString()
        content = data[: len(data) // 2]
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match) as e:
        load_workload(path)
    assert "\n" not in str(e.value) and str(path) in str(e.value)


# ---- ZigZag's shape-only ResNet-18 ----------------------------------------------------------


@pytest.fixture(scope="module")
def resnet18_onnx():
    path = reference_path().parent / "onnx" / "resnet18.onnx"
    if not path.exists():
        pytest.skip(f"ZigZag's resnet18.onnx not found at {path} (set NPU_DSE_REFERENCE)")
    return import_onnx(path)


def test_resnet18_macs_and_gemm_count(resnet18_onnx):
    from models import get_network

    gemms = [lay for lay in resnet18_onnx.layers if lay.gemm_count]
    assert len(gemms) == 21 and resnet18_onnx.host_ops == {}
    total = sum(lay.macs for lay in resnet18_onnx.layers)
    assert total == 1_814_073_344 == int(np.sum(get_network("resnet18").macs))
    assert len({lay.name for lay in resnet18_onnx.layers}) == len(resnet18_onnx.layers)


def zigzag_edge_tpu_like():
    """``../shared/reference/zigzag/README.md``: edge_tpu_like as the closest npu-dse design."""
    overrides = dict(rows=32, cols=32, clock_mhz=1000, dram_bw_gbps=8.0, w_bits=8, a_bits=8)
    overrides |= dict(ifmap_sram_kib=1024, filter_sram_kib=32, ofmap_sram_kib=1024, acc_bits=16)
    return resolve_design(preset="edge-tpu-like", overrides=overrides | {"dataflow": "ws"})


def test_resnet18_dram_traffic_near_zigzag(resnet18_onnx):
    # ZigZag costs Conv and Gemm nodes only, so only those are compared: 16.08 MB (weights
    # 11.68, inputs 1.92, outputs 2.48) from its per-layer output on edge_tpu_like.
    gemms = layers.workload([lay for lay in resnet18_onnx.layers if lay.gemm_count])
    rep = evaluate(zigzag_edge_tpu_like().config, gemms)
    moved = sum(
        float(np.sum(np.asarray(getattr(rep, f"dram_{part}_bytes"))))
        for part in ("ifmap_read", "filter_read", "ofmap_write", "ofmap_read")
    )
    assert abs(moved / 16.08e6 - 1) < 0.05
    assert float(np.sum(np.asarray(rep.dram_filter_read_bytes))) == pytest.approx(11.68e6, rel=0.01)


# ---- quantized ops' widths in the cost model -------------------------------------------------


@pytest.mark.slow
def test_quantized_widths_are_costed_and_reported(tmp_path):
    import contextlib
    import io
    import json

    from dse import Budgets
    from npu_dse import DesignFile, load_model_widths, problem_from_files, simulate
    from npu_dse.cli import main

    def run_cli(args):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(args)
        return code, out.getvalue(), err.getvalue()

    path = tmp_path / "q.onnx"
    onnx.save(q_model("QLinearMatMul", TensorProto.UINT8, TensorProto.INT8, False), path)
    wl, widths = load_model_widths(path)
    assert widths == {"q": (8, 8)}
    wide = resolve_design(preset="edge-tpu-like", overrides={"w_bits": 16, "a_bits": 16})
    as_model = simulate(wl, wide, widths=widths)
    as_design = simulate(wl, wide)
    # the same widths given as a design file's per-layer entry: the same exact figures
    by_file = simulate(wl, DesignFile(wide.config, {"q": {"w_bits": 8, "a_bits": 8}}))
    assert as_model.to_dict()["layers"] == by_file.to_dict()["layers"]
    got, full = as_model.to_dict()["layers"][0], as_design.to_dict()["layers"][0]
    assert (got["w_bits"], got["a_bits"], full["w_bits"]) == (8, 8, 16)
    mac = "energy_breakdown_j"
    assert got[mac]["mac"] < full[mac]["mac"] and got["dram_bytes"] < full["dram_bytes"]
    # the command line costs them too, and a design narrower than the model is one line
    code, out, _ = run_cli(["simulate", str(path), "--w-bits", "16", "--a-bits", "16", "--json"])
    assert code == 0 and json.loads(out)["layers"][0]["w_bits"] == 8
    code, _, err = run_cli(["simulate", str(path), "--w-bits", "4", "--a-bits", "8"])
    assert code == 2 and "layer 'q': the model's w_bits 8" in err and err.count("\n") == 1
    # a search keeps them: the space fixes the layer's widths (dse.legal.snap_design)
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"w_bits": [4], "a_bits": [4]}))
    problem, _ = problem_from_files(space, "edp", Budgets(), path)
    assert problem.space.fixed_bits == ((0, 8.0, 8.0),)
