"""Training and evaluation (the flax examples' ``train_and_evaluate(config, workdir)``).

A run writes into ``workdir``:

* ``config.json``: the :class:`~models.configs.TrainConfig`;
* ``metrics.csv`` and ``metrics.json``: one row per epoch (``epoch``, ``seed``, ``train_loss``
  and ``train_accuracy`` averaged over the epoch's steps, ``test_loss``, ``test_accuracy``,
  ``qat``, ``epoch_time_s``);
* ``checkpoint/checkpoint.msgpack``: model and optimizer state, epoch, data key and the metrics
  so far, written after every epoch to a temporary file and moved into place (``os.replace``).

A run that finds a checkpoint of the same config (any ``epochs``) resumes from it: the data
order of epoch ``e`` comes from the checkpointed key chain and the step function is the same,
so an interrupted run ends with the same parameters and metrics, bit for bit, as one that was
not interrupted, and raising ``epochs`` extends a finished run. A checkpoint of another config
is an error, never overwritten.

QAT (``config.qat_bits``): epochs from ``config.qat_from_epoch`` on train with fake
quantization switched on (``models.cnn.set_qat``) at ``config.qat_learning_rate``, i.e. a float
model is fine-tuned; activation ranges start from the first QAT batch's min/max.
"""

from __future__ import annotations

import csv
import functools
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx, serialization

from hw import engine
from hw.bounds import InputError
from hw.x64 import x64
from models import data, text
from models.charlm import CharLM
from models.cnn import CNN, set_qat
from models.configs import TrainConfig
from models.transformer import Transformer

logger = logging.getLogger(__name__)

CHECKPOINT = Path("checkpoint") / "checkpoint.msgpack"
FORMAT = 1  # checkpoint layout version
COLUMNS = (
    "epoch",
    "seed",
    "train_loss",
    "train_accuracy",
    "test_loss",
    "test_accuracy",
    "qat",
    "epoch_time_s",
)


@x64
def create_model(config: TrainConfig, key: jax.Array) -> nnx.Module:
    """The untrained model of ``config``, parameters drawn from ``key``."""
    rngs = nnx.Rngs(params=key)
    if config.model == "cnn":
        return CNN(config.widths, config.hidden, qat=config.qat_bits, rngs=rngs)
    if config.model == "charlm":
        return CharLM(
            len(config.vocab),
            context=config.context,
            d_model=config.d_model,
            heads=config.heads,
            blocks=config.blocks,
            mlp_ratio=config.mlp_ratio,
            rngs=rngs,
        )
    return Transformer(
        d_model=config.d_model,
        heads=config.heads,
        blocks=config.blocks,
        mlp_ratio=config.mlp_ratio,
        qat=config.qat_bits,
        rngs=rngs,
    )


def load_data(config: TrainConfig) -> data.Dataset:
    """The data ``config`` trains on: the digits, or for ``charlm`` the plays
    (``models.text.lm_dataset``)."""
    if config.model == "charlm":
        return text.lm_dataset(config.vocab, config.context, config.val_windows)
    return data.load(config.model)


def _steps_per_epoch(config: TrainConfig, ds: data.Dataset) -> int:
    if config.model == "charlm":
        return config.steps_per_epoch
    return data.num_batches(len(ds.x_train), config.batch_size)


def _epoch_batches(config: TrainConfig, ds: data.Dataset, key: jax.Array):
    """``(xs, ys)`` of shape ``(steps, batch, ...)``: the epoch's batches in ``key``'s order;
    for ``charlm``, windows at random offsets of the training text."""
    if config.model == "charlm":
        count = config.steps_per_epoch * config.batch_size
        w = text.random_windows(ds.x_train, config.context, count, key)
        w = w.reshape(config.steps_per_epoch, config.batch_size, -1)
        return w[..., :-1], w[..., 1:]
    batches = data.batches(ds.x_train, ds.y_train, config.batch_size, seed=key)
    xs, ys = zip(*batches, strict=True)
    return np.stack(xs), np.stack(ys)


def _optimizer(config: TrainConfig, model: nnx.Module, steps_per_epoch: int) -> nnx.Optimizer:
    """AdamW at ``learning_rate``, then ``qat_learning_rate`` from the first QAT step."""
    lr = config.learning_rate
    if config.qat_bits is not None and config.qat_learning_rate != lr:
        boundary = config.qat_from_epoch * steps_per_epoch
        lr = optax.piecewise_constant_schedule(lr, {boundary: config.qat_learning_rate / lr})
    tx = optax.adamw(lr, weight_decay=config.weight_decay)
    return nnx.Optimizer(model, tx, wrt=nnx.Param)


def _loss(model, x, y):
    logits = model(x)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return loss, jnp.mean(jnp.argmax(logits, -1) == y)


@functools.partial(jax.jit, static_argnums=0)
def _train_epoch(graphdef, state, xs, ys):
    """One epoch: ``lax.scan`` of AdamW steps over the batches ``xs (S, B, ...)``; returns the
    new state and the mean loss and accuracy of the steps."""

    def step(state, batch):
        model, opt = nnx.merge(graphdef, state)
        grad_fn = nnx.value_and_grad(_loss, has_aux=True)
        (loss, acc), grads = grad_fn(model, *batch)
        opt.update(model, grads)
        return nnx.state((model, opt)), (loss, acc)

    state, (loss, acc) = jax.lax.scan(step, state, (xs, ys))
    return state, loss.mean(), acc.mean()


@functools.partial(jax.jit, static_argnums=0)
def _eval(graphdef, state, x, y):
    return _loss(nnx.merge(graphdef, state), x, y)


@x64
def evaluate(model: nnx.Module, x, y) -> dict:
    """``{"loss", "accuracy"}`` of ``model`` on ``(x, y)``; puts the model in evaluation mode
    (frozen activation ranges) and keeps its QAT setting."""
    model.eval()
    graphdef, state = nnx.split(model)
    loss, acc = _eval(graphdef, state, jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.int32))
    return {"loss": float(loss), "accuracy": float(acc)}


@x64
def ptq(model: nnx.Module, calib_x, w_bits: int, a_bits: int, *, method: str = "minmax"):
    """Quantize ``model.to_graph()`` for ``hw.engine``: activation ranges that QAT learned at
    ``a_bits`` are kept, the others are calibrated on ``calib_x``."""
    x = np.asarray(calib_x, np.float32)
    learned = {k: qp for k, qp in model.activation_qparams().items() if qp.bits == a_bits}
    return engine.quantize_model(
        model.to_graph(), x, w_bits=w_bits, a_bits=a_bits, method=method, act_qparams=learned
    )


def _qat_on(config: TrainConfig, epoch: int) -> bool:
    return config.qat_bits is not None and epoch >= config.qat_from_epoch


@x64
def train_and_evaluate(
    config: TrainConfig,
    workdir: str | os.PathLike,
    progress: Callable[[int, dict], None] | None = None,
) -> dict:
    """Train ``config`` in ``workdir`` (resuming its checkpoint); the last epoch's metrics.

    ``progress(epoch, metrics)`` is called after every epoch (1-based, once checkpointed).
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    ds = load_data(config)
    init_key, rng = jax.random.split(jax.random.key(config.seed))
    model = create_model(config, init_key)
    steps = _steps_per_epoch(config, ds)
    if steps == 0:
        raise ValueError(f"batch_size {config.batch_size} exceeds the {len(ds.x_train)} samples")
    opt = _optimizer(config, model, steps)
    start, history = 0, []
    if (workdir / CHECKPOINT).exists():
        ckpt = _read(workdir)
        _check_same_run(ckpt["config"], config, workdir)
        _restore(model, ckpt["model"], workdir)
        _restore(opt, ckpt["optimizer"], workdir)
        start = int(ckpt["epoch"])
        history = [{k: row[k] for k in COLUMNS} for row in ckpt["history"]]
        rng = jax.random.wrap_key_data(jnp.asarray(ckpt["rng"], jnp.uint32))
        logger.info("resuming %s from epoch %d", workdir, start)
    _write_atomic(workdir / "config.json", json.dumps(config.to_dict(), indent=2).encode())
    for epoch in range(start, config.epochs):
        t0 = time.perf_counter()
        rng, key = jax.random.split(rng)
        xs, ys = _epoch_batches(config, ds, key)
        set_qat(model, _qat_on(config, epoch))
        model.train()
        graphdef, state = nnx.split((model, opt))
        state, loss, acc = _train_epoch(graphdef, state, xs, ys)
        nnx.update((model, opt), state)
        test = evaluate(model, ds.x_test, ds.y_test)
        row = {
            "epoch": epoch + 1,
            "seed": config.seed,
            "train_loss": float(loss),
            "train_accuracy": float(acc),
            "test_loss": test["loss"],
            "test_accuracy": test["accuracy"],
            "qat": _qat_on(config, epoch),
            "epoch_time_s": time.perf_counter() - t0,
        }
        history.append(row)
        _write_checkpoint(workdir, config, model, opt, epoch + 1, rng, history)
        _write_metrics(workdir, history)
        logger.info("epoch %d: %s", epoch + 1, row)
        if progress is not None:
            progress(epoch + 1, dict(row))
    if start > config.epochs:
        logger.warning("%s is already trained to epoch %d > %d", workdir, start, config.epochs)
    return dict(history[-1])


def _check_same_run(saved: dict, config: TrainConfig, workdir: Path) -> None:
    want = config.to_dict()
    diff = [k for k in want if k != "epochs" and saved.get(k) != want[k]]
    if diff:
        k = diff[0]
        raise InputError(
            f"{workdir} holds a checkpoint of another config ({k}={saved.get(k)!r}, "
            f"not {want[k]!r}); use a new workdir"
        )


def _flat(obj) -> dict[str, np.ndarray]:
    leaves = jax.tree_util.tree_flatten_with_path(nnx.state(obj))[0]
    return {jax.tree_util.keystr(p): np.asarray(v) for p, v in leaves}


def _restore(obj, saved: dict, workdir: Path) -> None:
    """Put the arrays ``saved`` (from :func:`_flat`) into ``obj``'s state, checking them."""
    state = nnx.state(obj)
    leaves, treedef = jax.tree_util.tree_flatten_with_path(state)
    new = []
    for path, ref in leaves:
        name = jax.tree_util.keystr(path)
        if name not in saved:
            raise InputError(f"corrupt checkpoint in {workdir}: missing {name}")
        v = np.asarray(saved[name])
        if v.shape != np.shape(ref) or v.dtype != np.asarray(ref).dtype:
            raise InputError(f"corrupt checkpoint in {workdir}: {name} is {v.dtype}{v.shape}")
        new.append(jnp.asarray(v))
    nnx.update(obj, jax.tree_util.tree_unflatten(treedef, new))


def _write_atomic(path: Path, blob: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(blob)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _write_checkpoint(workdir, config, model, opt, epoch, rng, history) -> None:
    (workdir / CHECKPOINT).parent.mkdir(exist_ok=True)
    payload = {
        "format": FORMAT,
        "config": config.to_dict(),
        "epoch": epoch,
        "rng": np.asarray(jax.random.key_data(rng)),
        "history": history,
        "model": _flat(model),
        "optimizer": _flat(opt),
    }
    _write_atomic(workdir / CHECKPOINT, serialization.msgpack_serialize(payload))


def _write_metrics(workdir: Path, history: list[dict]) -> None:
    """``metrics.json`` and ``metrics.csv`` of all epochs so far (rewritten atomically)."""
    _write_atomic(workdir / "metrics.json", json.dumps(history, indent=2).encode())
    tmp = workdir / f".metrics.csv.tmp-{os.getpid()}"
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(history)
    os.replace(tmp, workdir / "metrics.csv")


def _read(workdir: Path) -> dict:
    """The checkpoint payload; ``ValueError`` with one line when missing or unreadable."""
    path = Path(workdir) / CHECKPOINT
    if not path.is_file():
        raise InputError(f"no checkpoint in {workdir}")
    try:
        ckpt = serialization.msgpack_restore(path.read_bytes())
        if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
            raise ValueError(f"not a format-{FORMAT} npu-dse checkpoint")
        for key in ("config", "epoch", "rng", "history", "model", "optimizer"):
            if key not in ckpt:
                raise ValueError(f"missing {key!r}")
        ckpt["config"] = TrainConfig.from_dict(ckpt["config"]).to_dict()
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as e:
        raise InputError(f"corrupt checkpoint in {workdir}: {str(e).splitlines()[0]}") from e
    return ckpt


def read_config(workdir: str | os.PathLike) -> TrainConfig:
    """The config of the checkpoint in ``workdir`` (one-line error if none or unreadable)."""
    return TrainConfig.from_dict(_read(Path(workdir))["config"])


@x64
def load_checkpoint(workdir: str | os.PathLike) -> tuple[nnx.Module, TrainConfig]:
    """The trained model (evaluation mode, QAT as in its last epoch) and its config."""
    ckpt = _read(Path(workdir))
    config = TrainConfig.from_dict(ckpt["config"])
    model = create_model(config, jax.random.key(config.seed))
    _restore(model, ckpt["model"], Path(workdir))
    set_qat(model, _qat_on(config, int(ckpt["epoch"]) - 1))
    model.eval()
    return model, config
