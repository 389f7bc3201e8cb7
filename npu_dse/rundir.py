"""Run folders: what every written result records, and writes that never leave half a file.

:func:`versions` names the Python and package versions a result was computed with;
:func:`write_atomic` writes one file under a temporary name and moves it into place, so that a
reader (or a crash) never sees half of it.
"""

from __future__ import annotations

import json
import os
import sys
from importlib import metadata
from pathlib import Path

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


def read_json(path: str | Path, what: str):
    """The JSON value in file ``path``; a missing file, a folder or bad JSON is a one-line
    ``ValueError`` naming ``what`` (e.g. ``"design file"``) and the path."""
    path = Path(path)
    if not path.is_file():
        state = "is a directory" if path.is_dir() else "does not exist"
        raise ValueError(f"{what} {str(path)!r} {state}")
    try:
        return json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{what} {str(path)!r} is not valid JSON: {err}") from None
