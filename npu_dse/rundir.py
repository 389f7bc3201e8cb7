"""Run folders: what every written result records, and writes that never leave half a file.

:func:`versions` names the Python and package versions a result was computed with;
:func:`write_atomic` writes one file under a temporary name and moves it into place, so that a
reader (or a crash) never sees half of it.
"""

from __future__ import annotations

import os
import shutil
import sys
from importlib import metadata
from pathlib import Path

from npu_dse import inputs

PACKAGES = ("jax", "flax", "optax", "numpy", "pymoo", "matplotlib", "scikit-learn")
"""The packages whose versions every run records."""


def versions() -> dict:
    """``{"python": "3.11.7", "jax": ..., ...}``; ``None`` for a package that is absent."""
    out = {"python": sys.version.split()[0]}
    for pkg in PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and
    ``os.replace``: the file is either the old one or the whole new one."""
    path = Path(path)
    remove_stale_temps(path.parent, path.name)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _alive(pid: int) -> bool:
    """Whether process ``pid`` is running (a temporary file of a live writer is kept)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


def remove_stale_temps(folder: str | Path, name: str = "*") -> list[Path]:
    """Delete the temporary files and folders ``.NAME.tmp-PID`` (as :func:`write_atomic` and
    the training checkpoints write them) left in ``folder`` by writers that were killed: those
    whose process is gone, or this process's own. Returns what was removed."""
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for tmp in folder.glob(f".{name}.tmp-*"):
        pid = tmp.name.rpartition(".tmp-")[2]
        if not pid.isdigit() or (int(pid) != os.getpid() and _alive(int(pid))):
            continue
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed


def read_json(path: str | Path, what: str):
    """The JSON value in file ``path``; a missing file, a folder, bad or non-finite JSON is a
    one-line ``ValueError`` naming ``what`` (e.g. ``"design file"``) and the path
    (``npu_dse.inputs.read_json``)."""
    return inputs.read_json(path, what)
