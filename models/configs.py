"""Training configurations: frozen dataclasses, one function per model.

Commands, then run times on the 2-core CPU and test accuracies for seeds 0, 1, 2 (359 test
digits: one digit is 0.28 points). "NPU" is ``hw.run_model(ptq(model, x_train, w, a), x_test,
npu)`` with ``npu`` the ``edge-tpu-like`` preset with its bits set to the model's::

    from models import cnn_config, train_and_evaluate, transformer_config
    train_and_evaluate(cnn_config(), "runs/cnn")
    train_and_evaluate(cnn_config(qat_bits=(4, 4)), "runs/cnn-w4a4")
    train_and_evaluate(transformer_config(), "runs/transformer")

    config                   time   float               NPU
    cnn_config()             15 s   0.981 0.978 0.978   INT8  0.981 0.978 0.978
    cnn_config(qat_bits=..)  25 s                       W4A4  0.972 0.969 0.964
    transformer_config()     10 s   0.969 0.969 0.975   INT8  0.969 0.967 0.972
    cnn_config(quick=True)    5 s   (smoke test)

The character LM (``npu-dse train --model charlm --out runs/charlm``; the vocabulary comes
from ``models.text.load_corpus()``): 2,000 steps, 4.1 min of CPU time (18 min of wall time on
the shared 2-core machine), validation loss 1.714 nats per character (perplexity 5.55) for
seed 0, against 3.262 nats for the training text's unigram entropy; the quick config's 400
steps reach about 2.4.

QAT is float training followed by fine-tuning with fake quantization: epochs before
``qat_from_epoch`` train in float, the rest with ``qat_bits`` at ``qat_learning_rate``.
"""

from __future__ import annotations

import dataclasses

MODELS = ("cnn", "transformer", "charlm")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (with the data split, which is fixed)."""

    model: str  # "cnn" (NHWC digit images), "transformer" (rows as tokens) or "charlm" (plays)
    widths: tuple[int, ...] = (16, 32)  # CNN conv3x3 widths
    hidden: int = 64  # CNN dense layer on the flattened pooled map
    d_model: int = 32  # transformer width; 4 heads of 8 keep attention matmuls array-sized
    heads: int = 4
    blocks: int = 2  # transformer blocks
    mlp_ratio: int = 2  # MLP hidden width / d_model
    epochs: int = 30  # total epochs, float and QAT; raising it resumes a finished run
    batch_size: int = 32  # small data (1,437 training digits): small batches, more steps
    learning_rate: float = 3e-3  # AdamW, constant so that a run can be extended bit-exactly
    weight_decay: float = 1e-4
    seed: int = 0  # parameter init and data order; the train/test split is fixed (seed 0)
    qat_bits: tuple[int, int] | None = None  # (w_bits, a_bits) of fake quantization; None: float
    qat_from_epoch: int = 0  # epochs before this one train in float (QAT then fine-tunes)
    qat_learning_rate: float = 3e-4  # AdamW rate of the QAT epochs
    # charlm only (models.charlm, models.text):
    context: int = 64  # characters per training window, and the longest sequence it reads
    steps_per_epoch: int = 200  # AdamW steps per epoch, each on random windows of the plays
    val_windows: int = 64  # validation windows of `context` characters scored every epoch
    vocab: str = ""  # the character vocabulary (id = index), stored with the model

    def __post_init__(self):
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {', '.join(MODELS)}, got {self.model!r}")
        positive = ("epochs", "batch_size", "hidden", "d_model", "heads", "blocks", "mlp_ratio")
        positive += ("context", "steps_per_epoch", "val_windows")
        for field in positive:
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{field} must be a positive integer, got {value!r}")
        if not self.widths or any(w < 1 for w in self.widths):
            raise ValueError(f"widths must be positive integers, got {self.widths!r}")
        if self.qat_bits is not None and (
            len(self.qat_bits) != 2 or any(not 2 <= int(b) <= 16 for b in self.qat_bits)
        ):
            raise ValueError(f"qat_bits must be (w_bits, a_bits) in 2..16, got {self.qat_bits!r}")
        if self.learning_rate <= 0 or self.qat_learning_rate <= 0:
            raise ValueError("learning rates must be > 0")
        if self.model == "charlm" and self.qat_bits is not None:
            raise ValueError("qat_bits must be None for charlm (post-training quantization only)")
        distinct = len(set(self.vocab)) == len(self.vocab)
        if self.model == "charlm" and (len(self.vocab) < 2 or not distinct):
            raise ValueError("vocab must hold at least 2 distinct characters for charlm")

    def to_dict(self) -> dict:
        """JSON-ready fields (tuples as lists)."""
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown fields raise ``ValueError``."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown config fields: {', '.join(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def cnn_config(quick: bool = False, qat_bits: tuple[int, int] | None = None) -> TrainConfig:
    """The digits CNN; with ``qat_bits``, ``qat_epochs`` of QAT after the float epochs."""
    if quick:
        cfg = TrainConfig(model="cnn", widths=(8, 16), hidden=32, epochs=2, batch_size=64)
        return _with_qat(cfg, qat_bits, qat_epochs=1)
    return _with_qat(TrainConfig(model="cnn", widths=(16, 32), epochs=20), qat_bits, 10)


def transformer_config(quick: bool = False, qat_bits: tuple[int, int] | None = None) -> TrainConfig:
    """The digits-as-rows transformer (d=32, 4 heads, 2 blocks)."""
    if quick:
        cfg = TrainConfig(model="transformer", d_model=16, blocks=1, epochs=2, batch_size=64)
        return _with_qat(cfg, qat_bits, qat_epochs=1)
    cfg = TrainConfig(model="transformer", d_model=32, blocks=2, epochs=40)
    return _with_qat(cfg, qat_bits, 10)


def charlm_config(vocab: str, quick: bool = False) -> TrainConfig:
    """The character-level LM on the plays, with the corpus' ``vocab``
    (``models.text.load_corpus().vocab``): d=96, 4 heads, 3 blocks, MLP 4x, 64 characters
    of context, about 350 thousand parameters; quick: d=32, 1 block, 200 steps."""
    if quick:
        return TrainConfig(
            model="charlm", d_model=32, heads=2, blocks=1, mlp_ratio=2, context=32,
            batch_size=16, epochs=4, steps_per_epoch=100, val_windows=32, vocab=vocab,
        )  # fmt: skip
    return TrainConfig(
        model="charlm", d_model=96, heads=4, blocks=3, mlp_ratio=4, context=64, batch_size=32,
        epochs=10, steps_per_epoch=200, val_windows=64, learning_rate=2e-3, vocab=vocab,
    )  # fmt: skip


def _with_qat(cfg: TrainConfig, qat_bits, qat_epochs: int) -> TrainConfig:
    if qat_bits is None:
        return cfg
    bits = tuple(int(b) for b in qat_bits)
    return dataclasses.replace(
        cfg, qat_bits=bits, qat_from_epoch=cfg.epochs, epochs=cfg.epochs + qat_epochs
    )
