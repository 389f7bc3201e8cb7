"""Calls that give up at a deadline, compilation included.

A JAX function's first call traces and compiles it, which can take longer than a search's
whole time budget and cannot be interrupted. :func:`call` runs the call (and waits for its
result) on a worker thread and stops waiting at the deadline, raising :class:`OutOfTime`; the
search then returns the best design found so far. An abandoned call finishes in the
background (its compilation is cached for the next search); :func:`pending` says whether one
is still running, and the interpreter waits for them at exit (a thread still inside XLA when
the process tears down would abort it).
"""

from __future__ import annotations

import atexit
import threading
import time

import jax

_ABANDONED: list[threading.Thread] = []


class OutOfTime(Exception):
    """The deadline passed before the call returned."""


def call(fn, *args, deadline: float | None = None):
    """``fn(*args)`` with its result ready, or :class:`OutOfTime` once ``time.perf_counter()``
    passes ``deadline`` (``None``: no deadline, an ordinary call)."""
    if deadline is None:
        return fn(*args)
    left = deadline - time.perf_counter()
    if left <= 0:
        raise OutOfTime
    box: dict = {}
    wide = bool(jax.config.jax_enable_x64)  # JAX's configuration is per thread: carry it over

    def work():
        try:
            with jax.enable_x64(wide):
                box["out"] = jax.block_until_ready(fn(*args))
        except BaseException as err:  # handed to the caller below
            box["err"] = err

    worker = threading.Thread(target=work, name="npu-dse-deadline", daemon=True)
    worker.start()
    worker.join(left)
    if worker.is_alive():
        _ABANDONED.append(worker)
        raise OutOfTime
    if "err" in box:
        raise box["err"]
    return box["out"]


def pending() -> bool:
    """Whether an abandoned call is still running."""
    _ABANDONED[:] = [t for t in _ABANDONED if t.is_alive()]
    return bool(_ABANDONED)


@atexit.register
def _wait_for_abandoned() -> None:
    for worker in _ABANDONED:
        worker.join()
