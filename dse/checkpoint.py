"""Search checkpoints as data: one ``.npz`` of NumPy arrays whose ``meta`` entry is a JSON
object of scalars (never a pickle, so loading a file runs no code).

A checkpoint is written atomically: to a temporary name in the same folder, then renamed over
the old one (``os.replace``), so an interrupted write leaves the previous checkpoint intact;
its temporary file is removed by the next :func:`load`. A file that is empty, truncated,
corrupt or not a checkpoint of this format raises a one-line ``ValueError`` naming the folder.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from hw.bounds import InputError

FORMAT = "npu-dse search checkpoint"
VERSION = 1
META = "meta"
TMP_SUFFIX = ".tmp"


def path(folder: str | Path, name: str) -> Path:
    return Path(folder) / f"{name}.npz"


def save(folder: str | Path, name: str, scalars: dict, arrays: dict[str, np.ndarray]) -> Path:
    """Write ``scalars`` (JSON-ready) and ``arrays`` as the checkpoint ``name`` in ``folder``."""
    if META in arrays:
        raise ValueError(f"checkpoint array name {META!r} is reserved")
    final = path(folder, name)
    final.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "version": VERSION, **scalars}
    blob = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    tmp = final.with_name(f"{final.name}.{os.getpid()}{TMP_SUFFIX}")
    with open(tmp, "wb") as f:
        np.savez(f, **{META: blob}, **arrays)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, final)
    return final


def remove_leftovers(folder: str | Path, name: str) -> None:
    """Delete the temporary files of writes that were interrupted."""
    for tmp in Path(folder).glob(f"{name}.npz.*{TMP_SUFFIX}"):
        tmp.unlink(missing_ok=True)


def load(folder: str | Path, name: str) -> tuple[dict, dict[str, np.ndarray]] | None:
    """``(scalars, arrays)`` of the checkpoint ``name`` in ``folder``, or None when there is
    none. Raises ``ValueError`` when the file is not a readable checkpoint."""
    remove_leftovers(folder, name)
    file = path(folder, name)
    if not file.exists():
        return None
    try:
        with np.load(file, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        meta = json.loads(arrays.pop(META).tobytes().decode())
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError("not a search checkpoint")
        if meta.get("version") != VERSION:
            raise ValueError(f"format version {meta.get('version')!r}, expected {VERSION}")
    except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise InputError(
            f"checkpoint folder {str(folder)!r}: {file.name} is not a readable search "
            f"checkpoint ({reason}); delete it or use another folder"
        ) from None
    del meta["format"], meta["version"]
    return meta, arrays


def unreadable(folder: str | Path, name: str, reason: str) -> ValueError:
    """The error for a checkpoint that loads but whose content does not fit the search."""
    return InputError(
        f"checkpoint folder {str(folder)!r}: {name}.npz is not a readable search checkpoint "
        f"({reason}); delete it or use another folder"
    )
