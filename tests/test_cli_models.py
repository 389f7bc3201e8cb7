"""`npu-dse train` and `npu-dse evaluate` end to end on the quick CNN."""

import json

import pytest

from npu_dse.cli import main


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("cnn")
    assert main(["train", "--model", "cnn", "--quick", "--epochs", "1", "--out", str(out)]) == 0
    return out


def test_train_writes_metrics_and_checkpoint(trained, capsys):
    assert (trained / "metrics.csv").exists() and (trained / "config.json").exists()
    # a second call with the same config resumes the finished run and trains nothing more
    assert (
        main(
            ["train", "--model", "cnn", "--quick", "--epochs", "1", "--out", str(trained), "--json"]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["epoch"] == 1


def test_evaluate_json(trained, capsys):
    args = ["evaluate", "--checkpoint", str(trained), "--preset", "edge-tpu-like"]
    assert main([*args, "--w-bits", "8", "--a-bits", "8", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    for key in ("accuracy", "float_accuracy", "latency_s", "energy_j", "power_w", "area_mm2"):
        assert r[key] > 0, key
    assert r["design"] == "edge-tpu-like" and r["w_bits"] == 8
    assert abs(r["power_w"] - r["energy_j"] / r["latency_s"]) < 1e-9 * r["power_w"]
    assert main([*args, "--w-bits", "4", "--a-bits", "4", "--json"]) == 0
    r4 = json.loads(capsys.readouterr().out)
    assert r4["energy_j"] < r["energy_j"] and r4["area_mm2"] < r["area_mm2"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["evaluate", "--checkpoint", "/nonexistent/run"], "no checkpoint in /nonexistent/run"),
        (["evaluate", "--checkpoint", "RUN", "--w-bits", "1"], "w_bits"),
        (["evaluate", "--checkpoint", "RUN", "--preset", "tpu-v9"], "unknown preset 'tpu-v9'"),
        (["train", "--model", "resnet", "--out", "x"], "invalid choice: 'resnet'"),
    ],
)
def test_bad_input_is_one_line(argv, message, trained, capsys):
    argv = [str(trained) if a == "RUN" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "Traceback" not in err[0]
