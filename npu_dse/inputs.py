"""Strict reading of the files users bring: bounded in size and nesting, numbers as written.

Every reader of a user's file goes through here:

- :func:`read_text`: a UTF-8 file of at most :data:`MAX_FILE_BYTES`;
- :func:`loads_json` / :func:`read_json`: JSON numbers only (``NaN``, ``Infinity`` and numbers
  too large for a float are refused, as are integers of more than :data:`MAX_INT_DIGITS`
  digits), nesting at most :data:`MAX_DEPTH` deep;
- :func:`parse_count`: a CSV field as ASCII decimal digits only (no ``1_000``, no ``+5``, no
  digits of other scripts, which Python's ``int`` accepts).

Each failure is a one-line :class:`hw.bounds.InputError` naming the file and what is wrong.

>>> loads_json('{"rows": [8, 16]}', "space")
{'rows': [8, 16]}
>>> try:
...     loads_json('{"rows": [Infinity]}', "space")
... except ValueError as err:
...     print(err)
space: Infinity is not a finite JSON number
>>> parse_count("1_000"), parse_count("64")
(None, 64)
"""

from __future__ import annotations

import functools
import json
import math
import re
from pathlib import Path

from hw.bounds import InputError

MAX_FILE_BYTES = 64 * 2**20
"""Largest file read (64 MiB; the bundled ResNet-18 topology is under 2 KiB)."""

MAX_DEPTH = 32
"""Deepest JSON nesting accepted (the formats nest at most 4 deep)."""

MAX_INT_DIGITS = 30
"""Most digits of an integer (any valid count has at most 16; see ``hw.bounds``)."""

_DECIMAL = re.compile(r"[0-9]{1,30}\Z", re.ASCII)


def read_text(path: str | Path, what: str) -> str:
    """The text of ``path``: a missing file, a folder, a file over :data:`MAX_FILE_BYTES` or
    one that is not UTF-8 raises one line naming ``what`` and the path."""
    path = Path(path)
    if not path.is_file():
        state = "is a directory" if path.is_dir() else "does not exist"
        raise InputError(f"{what} {str(path)!r} {state}")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise InputError(f"{what} {str(path)!r} has {size} bytes; at most {MAX_FILE_BYTES}")
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{what} {str(path)!r} is not a UTF-8 text file") from None


def _constant(name: str):
    raise InputError(f"{name} is not a finite JSON number")


def _float(text: str) -> float:
    x = float(text)
    if not math.isfinite(x):
        raise InputError(f"{text} is too large for a number (at most about 1.8e308)")
    return x


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise InputError(f"an integer of {len(text)} digits; at most {MAX_INT_DIGITS}")
    return int(text)


def _depth(value) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return deepest


def loads_json(text: str, where: str):
    """Parse ``text`` strictly (see the module docstring); errors start with ``where``."""
    try:
        value = json.loads(text, parse_constant=_constant, parse_float=_float, parse_int=_int)
    except InputError as err:
        raise InputError(f"{where}: {err}") from None
    except json.JSONDecodeError as err:
        raise InputError(
            f"{where} is not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})"
        ) from None
    except RecursionError:
        raise InputError(f"{where}: JSON nested deeper than {MAX_DEPTH} levels") from None
    if _depth(value) > MAX_DEPTH:
        raise InputError(f"{where}: JSON nested deeper than {MAX_DEPTH} levels")
    return value


def read_json(path: str | Path, what: str):
    """The JSON value in file ``path``, read by :func:`read_text` and :func:`loads_json`."""
    return loads_json(read_text(path, what), f"{what} {str(path)!r}")


def parse_count(text: str) -> int | None:
    """``text`` as a non-negative integer if it is 1 to 30 ASCII decimal digits, else None."""
    return int(text) if _DECIMAL.match(text) else None


def boundary(fn):
    """Mark ``fn`` as a boundary: every ``ValueError`` it raises is about what the user gave,
    so it is re-raised as :class:`~hw.bounds.InputError` with the same one-line message (the
    command line tells bad input, exit 2, from an internal error by this class)."""

    @functools.wraps(fn)
    def checked(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except InputError:
            raise
        except ValueError as err:
            raise InputError(str(err)) from None

    return checked
