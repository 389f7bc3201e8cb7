"""JAX's persistent compilation cache for the ``npu-dse`` command line.

Every ``npu-dse`` process would otherwise compile the cost model, the mapper and the search
afresh. The command line (never a library import) points JAX's persistent cache at a user
folder before the first compilation, so a second run of the same shapes loads the compiled
programs from disk instead:

- default folder ``$XDG_CACHE_HOME/npu-dse/jax``, or ``~/.cache/npu-dse/jax`` without
  ``XDG_CACHE_HOME``;
- ``--compile-cache DIR`` (before or after the subcommand) or the environment variable
  ``NPU_DSE_COMPILE_CACHE=DIR`` moves it; the value ``off`` switches it off (the flag wins
  over the variable);
- every program is cached, however small or quick to compile (the cost model's programs
  compile in well under JAX's default one-second threshold, yet a run is dozens of them).

The compiled functions are keyed on shapes and static settings, never on values (budgets,
seeds and designs are traced arguments), so the cache also serves a new budget or design.

>>> resolve("off") is None
True
>>> str(resolve("/tmp/x"))
'/tmp/x'
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from hw.bounds import InputError

FLAG = "--compile-cache"
ENV = "NPU_DSE_COMPILE_CACHE"
OFF = "off"


def default_dir() -> Path:
    """``$XDG_CACHE_HOME/npu-dse/jax`` or ``~/.cache/npu-dse/jax``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "npu-dse" / "jax"


def add_argument(parser: argparse.ArgumentParser, hidden: bool = False) -> None:
    """The ``--compile-cache DIR|off`` flag (``hidden``: accepted, not listed, as on a
    subcommand, where it must not overwrite the value given before the subcommand)."""
    parser.add_argument(
        FLAG,
        metavar="DIR|off",
        default=argparse.SUPPRESS if hidden else None,
        help=argparse.SUPPRESS
        if hidden
        else f"folder of JAX's compilation cache (default {default_dir()}; ${ENV} too), or off",
    )


def resolve(flag: str | None) -> Path | None:
    """The cache folder for the flag's value, else ``$NPU_DSE_COMPILE_CACHE``'s, else the
    default; None when switched off."""
    value = flag if flag is not None else os.environ.get(ENV)
    if value is None or value.strip() == "":
        return default_dir()
    if value.strip().lower() == OFF:
        return None
    return Path(value).expanduser()


def configure(flag: str | None) -> Path | None:
    """Switch JAX's persistent compilation cache on in the folder :func:`resolve` gives
    (created if missing) before anything compiles; returns the folder, or None when off.

    A folder that cannot be created is bad input (one line naming the flag and the folder)."""
    folder = resolve(flag)
    if folder is None:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        source = FLAG if flag is not None else (f"${ENV}" if os.environ.get(ENV) else "default")
        raise InputError(
            f"{source}: cannot create the compilation cache folder {str(folder)!r} "
            f"({err.strerror or err}); give a writable DIR or 'off'"
        ) from None
    import jax

    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    return folder
