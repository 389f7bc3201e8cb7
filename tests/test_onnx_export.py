"""Tests of npu_dse.onnx_export: the project's trained CNN exported to ONNX runs the same in
onnxruntime, and back through ``npu-dse evaluate --onnx`` on the simulated NPU."""

import json

import numpy as np
import onnx
import pytest

from experiments.common import trained_model
from hw import graph
from models import data
from npu_dse import cli
from npu_dse.onnx_export import export_onnx
from tests import onnxruntime_ref

onnxruntime_ref.require()


@pytest.fixture(scope="module")
def exported(tmp_path_factory, model_cache_dir):
    """The quick trained CNN as ``(hw.graph model, ONNX file, test images NCHW, labels)``."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NPU_DSE_MODEL_CACHE", str(model_cache_dir))
        model, cfg, _ = trained_model("cnn", quick=True, out=tmp_path_factory.mktemp("runs"))
    ds = data.load(cfg.model)
    nodes = model.to_graph()
    path = tmp_path_factory.mktemp("onnx") / "cnn.onnx"
    onnx.save(export_onnx(nodes, (1, *ds.x_test.shape[1:])), path)
    x = np.transpose(ds.x_test[:128], (0, 3, 1, 2)).astype(np.float32)
    return nodes, path, x, ds.y_test[:128], ds.x_test[:128]


def test_trained_cnn_in_onnxruntime_matches_the_engine(exported):
    nodes, path, x, _, nhwc = exported
    proto = onnx.load(path)
    onnx.checker.check_model(proto)
    # one input whose batch is fixed at export time: rerun per batch of one
    got = onnxruntime_ref.run(path, x[:16], batch=1)
    want = np.asarray(graph.forward_float(nodes, nhwc[:16]))
    assert float(np.max(np.abs(got - want)) / np.max(np.abs(want))) < 1e-4


@pytest.mark.slow
def test_cli_evaluates_the_exported_model(exported, tmp_path, capsys):
    nodes, path, x, y, nhwc = exported
    np.savez(tmp_path / "in.npz", x=x)
    np.save(tmp_path / "labels.npy", y)
    argv = ["evaluate", "--onnx", str(path), "--inputs", str(tmp_path / "in.npz")]
    argv += ["--labels", str(tmp_path / "labels.npy"), "--preset", "edge-tpu-like", "--json"]
    assert cli.main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    float_acc = float(np.mean(np.argmax(graph.forward_float(nodes, nhwc), -1) == y))
    assert out["float_accuracy"] == pytest.approx(float_acc)
    assert out["accuracy"] > float_acc - 0.05 and out["top1_agreement"] > 0.9
    assert out["samples"] == 128 and out["latency_s"] > 0 and out["w_bits"] == 8


@pytest.mark.parametrize(
    "extra, match",
    [
        ([], "--onnx needs --inputs FILE"),
        (["--checkpoint", "RUN"], "give --checkpoint DIR or --onnx FILE"),
    ],
)
def test_cli_onnx_errors_are_one_line(exported, capsys, extra, match):
    _, path, *_ = exported
    assert cli.main(["evaluate", "--onnx", str(path), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert match in err and "\n" not in err
