"""models.train and models.configs: a quick run's files, bit-exact resumption, checkpoints."""

import csv
import dataclasses
import json

import jax
import numpy as np
import pytest
from flax import nnx

from models import (
    TrainConfig,
    cnn_config,
    evaluate,
    load,
    load_checkpoint,
    train_and_evaluate,
    transformer_config,
)
from models.train import CHECKPOINT, COLUMNS

QUICK = cnn_config(quick=True)


class Interrupt(Exception):
    pass


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("quick")
    seen = []
    final = train_and_evaluate(QUICK, workdir, progress=lambda e, m: seen.append((e, m)))
    return workdir, final, seen


def test_quick_run_writes_metrics_config_and_checkpoint(quick_run):
    workdir, final, seen = quick_run
    assert [e for e, _ in seen] == [1, 2] and seen[-1][1] == final
    with open(workdir / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == COLUMNS and [r["epoch"] for r in rows] == ["1", "2"]
    assert all(r["seed"] == str(QUICK.seed) for r in rows)
    history = json.loads((workdir / "metrics.json").read_text())
    assert history[-1] == final and len(history) == 2
    assert history[1]["train_loss"] < history[0]["train_loss"]
    assert final["test_accuracy"] > 0.5  # 10 classes: chance is 0.1
    saved = json.loads((workdir / "config.json").read_text())
    assert TrainConfig.from_dict(saved) == QUICK
    assert (workdir / CHECKPOINT).is_file()
    assert not [p.name for p in workdir.rglob("*.tmp-*")]


def test_load_checkpoint_rebuilds_the_trained_model(quick_run):
    workdir, final, _ = quick_run
    model, config = load_checkpoint(workdir)
    assert config == QUICK
    ds = load("cnn")
    assert evaluate(model, ds.x_test, ds.y_test)["accuracy"] == final["test_accuracy"]


def _state(workdir):
    model, _ = load_checkpoint(workdir)
    return [np.asarray(v) for v in jax.tree_util.tree_leaves(nnx.state(model))]


def _same(a, b):
    drop = {"epoch_time_s"}
    return {k: v for k, v in a.items() if k not in drop} == {
        k: v for k, v in b.items() if k not in drop
    }


@pytest.mark.parametrize(
    "config",
    [
        dataclasses.replace(QUICK, epochs=4),
        pytest.param(
            dataclasses.replace(transformer_config(quick=True, qat_bits=(4, 4)), epochs=4),
            marks=pytest.mark.slow,  # the longest training test; the CNN checks the same path
        ),
    ],
    ids=["cnn", "transformer-qat"],
)
def test_resumed_run_equals_uninterrupted(tmp_path, config):
    straight = train_and_evaluate(config, tmp_path / "straight")
    # Interrupted by a shorter config, then by an exception after epoch 3's checkpoint.
    train_and_evaluate(dataclasses.replace(config, epochs=2), tmp_path / "resumed")

    def stop(epoch, _):
        if epoch == 3:
            raise Interrupt

    with pytest.raises(Interrupt):
        train_and_evaluate(config, tmp_path / "resumed", progress=stop)
    resumed = train_and_evaluate(config, tmp_path / "resumed")
    assert _same(resumed, straight) and resumed["qat"] == (config.qat_bits is not None)
    for a, b in zip(_state(tmp_path / "straight"), _state(tmp_path / "resumed"), strict=True):
        np.testing.assert_array_equal(a, b)
    rows = [
        json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("straight", "resumed")
    ]
    assert len(rows[1]) == 4 and all(_same(a, b) for a, b in zip(*rows, strict=True))


def test_other_config_in_workdir_is_refused(quick_run):
    workdir, _, _ = quick_run
    with pytest.raises(ValueError, match="another config .*learning_rate"):
        train_and_evaluate(dataclasses.replace(QUICK, learning_rate=0.5), workdir)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(ValueError, match=f"^no checkpoint in {tmp_path}$"):
        load_checkpoint(tmp_path)


@pytest.mark.parametrize("cut", ["garbage", "truncated", "wrong_shape"])
def test_corrupt_checkpoint(tmp_path, quick_run, cut):
    from flax import serialization

    workdir, _, _ = quick_run
    blob = (workdir / CHECKPOINT).read_bytes()
    if cut == "garbage":
        blob = b"\x00not a checkpoint" * 3
    elif cut == "truncated":
        blob = blob[: len(blob) // 2]
    else:
        ckpt = serialization.msgpack_restore(blob)
        name = next(k for k in ckpt["model"] if "kernel" in k)
        ckpt["model"][name] = np.zeros(3, np.float32)
        blob = serialization.msgpack_serialize(ckpt)
    (tmp_path / CHECKPOINT).parent.mkdir()
    (tmp_path / CHECKPOINT).write_bytes(blob)
    with pytest.raises(ValueError, match=f"^corrupt checkpoint in {tmp_path}: ") as err:
        load_checkpoint(tmp_path)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="corrupt checkpoint"):
        train_and_evaluate(QUICK, tmp_path)


def test_config_validation_and_round_trip():
    cfg = cnn_config(qat_bits=(4, 4))
    assert cfg.qat_bits == (4, 4) and cfg.qat_from_epoch < cfg.epochs
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError, match="model must be"):
        TrainConfig(model="mlp")
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(model="cnn", epochs=0)
    with pytest.raises(ValueError, match="qat_bits"):
        TrainConfig(model="cnn", qat_bits=(1, 8))
    with pytest.raises(ValueError, match="unknown config fields: colour"):
        TrainConfig.from_dict({"model": "cnn", "colour": 1})
