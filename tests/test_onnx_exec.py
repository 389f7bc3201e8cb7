"""Tests of npu_dse.onnx_exec and npu_dse.evaluate_onnx: the engine's float path against
onnxruntime per supported op, ops it cannot execute, quantized execution."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from npu_dse import resolve_design
from npu_dse.evaluate_onnx import evaluate_onnx
from npu_dse.onnx_exec import NotExecutable, to_graph
from tests import onnxruntime_ref

onnxruntime_ref.require()
F = TensorProto.FLOAT
RNG = np.random.default_rng(0)


def rand(*shape, scale=0.5):
    return RNG.normal(0, scale, shape).astype(np.float32)


def model_of(nodes, x_shape, weights, opset=17):
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", F, x_shape)],
        [helper.make_tensor_value_info("y", F, None)],
        [numpy_helper.from_array(np.asarray(a), n) for n, a in weights.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def runtime(model, x):
    return onnxruntime_ref.run(model, x)


def relative_gap(a, b) -> float:
    """``max |a - b| / max |b|``: the error relative to the output's scale."""
    return float(np.max(np.abs(np.asarray(a) - b)) / np.max(np.abs(b)))


def node(op, inputs, out="y", **attrs):
    return helper.make_node(op, inputs, [out], name=out, **attrs)


BN = {"s": rand(8) + 1, "bb": rand(8), "m": rand(8), "v": np.abs(rand(8)) + 0.5}
ERF = [
    node("Div", ["x", "sqrt2"], "d"),
    node("Erf", ["d"], "e"),
    node("Add", ["e", "one"], "a"),
    node("Mul", ["x", "a"], "m"),
    node("Mul", ["m", "half"]),
]
# name: (nodes, input shape, weights, opset)
CASES = {
    "conv_stride_pad_groups": (
        [node("Conv", ["x", "w", "b"], strides=[2, 2], pads=[1, 1, 1, 1], group=2)],
        [2, 4, 9, 9],
        {"w": rand(6, 2, 3, 3), "b": rand(6)},
    ),
    "conv_depthwise": (
        [node("Conv", ["x", "w"], pads=[1, 1, 1, 1], group=4)],
        [2, 4, 6, 6],
        {"w": rand(4, 1, 3, 3)},
    ),
    "conv_batchnorm_relu": (
        [
            node("Conv", ["x", "w"], "c"),
            node("BatchNormalization", ["c", "s", "bb", "m", "v"], "n"),
            node("Relu", ["n"]),
        ],
        [2, 3, 6, 6],
        {"w": rand(8, 3, 3, 3), **BN},
    ),
    "gemm_transb": (
        [node("Gemm", ["x", "w", "b"], transB=1)],
        [3, 12],
        {"w": rand(5, 12), "b": rand(5)},
    ),
    "matmul_bias_3d": (
        [node("MatMul", ["x", "w"], "mm"), node("Add", ["mm", "b"])],
        [2, 5, 12],
        {"w": rand(12, 7), "b": rand(7)},
    ),
    "relu": ([node("Relu", ["x"])], [4, 10], {}),
    "gelu": ([node("Gelu", ["x"])], [4, 10], {}, 20),
    "erf_gelu": (
        ERF,
        [4, 10],
        {"sqrt2": np.float32(np.sqrt(2)), "one": np.float32(1), "half": np.float32(0.5)},
    ),
    "softmax": ([node("Softmax", ["x"], axis=-1)], [3, 4, 10], {}),
    "layernorm": (
        [node("LayerNormalization", ["x", "g", "b"], axis=-1)],
        [2, 5, 16],
        {"g": rand(16) + 1, "b": rand(16)},
    ),
    "maxpool": ([node("MaxPool", ["x"], kernel_shape=[2, 2], strides=[2, 2])], [2, 3, 8, 8], {}),
    "avgpool": (
        [node("AveragePool", ["x"], kernel_shape=[3, 3], strides=[1, 1])],
        [2, 3, 6, 6],
        {},
    ),
    "global_avgpool_flatten_gemm": (
        [
            node("GlobalAveragePool", ["x"], "p"),
            node("Flatten", ["p"], "f"),
            node("Gemm", ["f", "w"]),
        ],
        [2, 6, 5, 5],
        {"w": rand(6, 4)},
    ),
    "reducemean_tokens": (
        [node("ReduceMean", ["x", "ax"], keepdims=0)],
        [2, 7, 6],
        {"ax": np.array([1], np.int64)},
        18,
    ),
    "flatten_map_gemm": (
        [node("Conv", ["x", "w"], "c"), node("Flatten", ["c"], "f"), node("Gemm", ["f", "w2"])],
        [2, 3, 5, 5],
        {"w": rand(4, 3, 3, 3), "w2": rand(36, 5)},
    ),
    "residual_add_identity_dropout": (
        [
            node("Conv", ["x", "w1"], "c1", pads=[1, 1, 1, 1]),
            node("Relu", ["c1"], "r1"),
            node("Identity", ["r1"], "i"),
            node("Conv", ["i", "w2"], "c2", pads=[1, 1, 1, 1]),
            node("Dropout", ["c2"], "d"),
            node("Add", ["d", "r1"]),
        ],
        [2, 3, 6, 6],
        {"w1": rand(4, 3, 3, 3), "w2": rand(4, 4, 3, 3)},
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_float_path_agrees_with_onnxruntime(case):
    nodes, shape, weights, *opset = CASES[case]
    model = model_of(nodes, shape, weights, *opset)
    x = rand(*shape, scale=1.0)
    engine = to_graph(model)
    assert relative_gap(engine.forward_float(x), runtime(model, x)) < 1e-4


def test_unexecutable_ops_named_in_one_line():
    nodes = [node("Sigmoid", ["x"], "s"), node("Cos", ["s"], "c"), node("Cos", ["c"])]
    with pytest.raises(NotExecutable, match=r"cannot execute Cos x2, Sigmoid x1$") as e:
        to_graph(model_of(nodes, [2, 3], {}))
    assert "\n" not in str(e.value)


def test_branch_other_than_residual_is_not_executable():
    nodes = [node("Relu", ["x"], "a"), node("Relu", ["x"], "b"), node("Add", ["a", "b"])]
    with pytest.raises(NotExecutable, match="cannot execute"):
        to_graph(model_of(nodes, [2, 3], {}))


def cnn_file(tmp_path):
    nodes, shape, weights = CASES["flatten_map_gemm"]
    model = model_of(nodes, ["N", *shape[1:]], weights)
    path = tmp_path / "cnn.onnx"
    onnx.save(model, path)
    return path, shape


@pytest.mark.slow
def test_quantized_execution_agrees_with_float(tmp_path):
    path, shape = cnn_file(tmp_path)
    x = rand(64, *shape[1:], scale=1.0)
    design = resolve_design(preset="edge-tpu-like")
    labels = np.argmax(runtime(onnx.load(path), x), axis=-1)
    result = evaluate_onnx(path, x, design, labels=labels)
    assert result.float_accuracy == 1.0  # the labels are onnxruntime's own top-1
    assert result.top1_agreement >= 0.9 and result.accuracy == result.top1_agreement
    assert 0 < result.relative_error < 0.05  # int8: close, not equal
    low = evaluate_onnx(path, x, resolve_design(preset="edge-tpu-like", overrides={"a_bits": 3}))
    assert low.relative_error > result.relative_error and low.accuracy is None
    d = result.to_dict()
    assert d["samples"] == 64 and d["macs"] > 0 and d["latency_s"] > 0


def test_absent_external_weights_are_a_one_line_error(tmp_path):
    path, shape = cnn_file(tmp_path)
    model = onnx.load(path)
    onnx.save(model, path, save_as_external_data=True, size_threshold=0, location="w.bin")
    (tmp_path / "w.bin").unlink()
    with pytest.raises(ValueError, match="file .w.bin. of its weights is absent") as e:
        evaluate_onnx(path, rand(2, *shape[1:]), resolve_design(preset="edge-tpu-like"))
    assert "\n" not in str(e.value)
