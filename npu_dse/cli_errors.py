"""How ``npu-dse`` ends on an error: bad input or a fault of its own, told apart by kind.

- Bad input (:class:`hw.bounds.InputError`, which every reader, validator and use case raises
  for what the user gave) ends with :data:`EXIT_USAGE` and one line,
  ``npu-dse: error: ...``.
- A file the system cannot read or write (an ``OSError`` naming a path: permission denied, no
  space left) ends with :data:`EXIT_USAGE` too: the fix lies with the user.
- Anything else is a fault of npu-dse: it ends with :data:`EXIT_INTERNAL` and a short message
  asking for a report; the traceback is printed when ``NPU_DSE_DEBUG=1`` is set or ``--debug``
  is given.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable

from hw.bounds import InputError

EXIT_USAGE = 2
"""Exit code for bad input (argparse's convention)."""

EXIT_INTERNAL = 3
"""Exit code for an internal error (a bug to report)."""

DEBUG_ENV = "NPU_DSE_DEBUG"
"""Environment variable that, set to 1, prints the traceback of an internal error."""


def debug_requested(argv: list[str] | None) -> bool:
    """``--debug`` among the arguments or ``NPU_DSE_DEBUG=1`` in the environment."""
    args = sys.argv[1:] if argv is None else argv
    return "--debug" in args or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def _line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def run_guarded(fn: Callable[[], int], debug: bool) -> int:
    """``fn()``'s exit code, or the code and message of the error it raised (see above)."""
    try:
        return fn()
    except InputError as err:
        print(f"npu-dse: error: {_line(err)}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as err:
        if err.filename is None or isinstance(err, BrokenPipeError):
            return _internal(err, debug)
        reason = err.strerror or _line(err)
        print(f"npu-dse: error: {err.filename}: {reason}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as err:  # noqa: BLE001 (every other exception is a fault of ours)
        return _internal(err, debug)


def _internal(err: BaseException, debug: bool) -> int:
    if debug:
        traceback.print_exception(err, file=sys.stderr)
    hint = "" if debug else f" (rerun with --debug or {DEBUG_ENV}=1 for the traceback)"
    print(
        f"npu-dse: internal error: {type(err).__name__}: {_line(err)}\n"
        f"This is a bug in npu-dse, not in your input; please report it with the command "
        f"line{hint}.",
        file=sys.stderr,
    )
    return EXIT_INTERNAL
