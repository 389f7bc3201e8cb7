"""The ``train`` use case: a small model trained, checkpointed every epoch, resumable.

:func:`train_config` turns what a user asks for (the model, quick or full, epochs, seed,
QAT widths) into a ``models.TrainConfig`` (for ``charlm`` with the plays' vocabulary);
:func:`train` runs it into a folder and returns the final metrics. Rerunning on the same
folder resumes (a finished run returns at once).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from hw import bounds
from hw.bounds import InputError
from models import configs, text
from models import train as training
from npu_dse.inputs import boundary
from npu_dse.rundir import remove_stale_temps

EPOCHS_MAX = 10_000
"""Most epochs a run may ask for (the full CNN run is 30)."""


@boundary
def train_config(
    model: str,
    quick: bool = False,
    epochs: int | None = None,
    seed: int | None = None,
    qat_bits: tuple[int, int] | None = None,
) -> configs.TrainConfig:
    """The model's default (or quick) config with the given values put in."""
    if model not in configs.MODELS:
        raise ValueError(f"unknown model {model!r}; allowed: {', '.join(configs.MODELS)}")
    if seed is not None:
        bounds.check_seed(seed, "seed")
    if epochs is not None and not 1 <= epochs <= EPOCHS_MAX:
        raise InputError(f"epochs must be in 1..{EPOCHS_MAX}, got {epochs}")
    if model == "charlm":
        if qat_bits:
            raise InputError("qat is not available for charlm (it is quantized post-training)")
        cfg = configs.charlm_config(text.load_corpus().vocab, quick=quick)
    else:
        make = configs.cnn_config if model == "cnn" else configs.transformer_config
        cfg = make(quick=quick, qat_bits=tuple(qat_bits) if qat_bits else None)
    changes = {k: v for k, v in (("epochs", epochs), ("seed", seed)) if v is not None}
    return dataclasses.replace(cfg, **changes) if changes else cfg


def train(cfg: configs.TrainConfig, out: str | Path, progress=None) -> dict:
    """Train ``cfg`` into ``out`` (resuming what is there); the final epoch's metrics.
    ``progress(epoch, metrics)`` is called after every epoch."""
    for folder in (Path(out), Path(out) / training.CHECKPOINT.parent):
        remove_stale_temps(folder)  # of a run killed while writing
    return training.train_and_evaluate(cfg, out, progress=progress)
