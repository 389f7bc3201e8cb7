"""Run folders: what every written result records, and writes that never leave half a file.

:func:`versions` names the Python and package versions a result was computed with;
:func:`write_atomic` writes one file under a temporary name and moves it into place, so that a
reader (or a crash) never sees half of it.
"""

from __future__ import annotations

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
