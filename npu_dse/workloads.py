"""Workload files: SCALE-Sim topology CSVs (conv and GEMM formats) and npu-dse's own JSON.

Three readers, each returning ``list[hw.layers.Layer]``, and :func:`load_workload`, which picks
one by the file's extension and stacks the layers into a :class:`~hw.types.Workload`. A bad
file raises ``ValueError`` with one line naming the file, the row (or layer) and the field, and
what is allowed, e.g. ``resnet.csv row 3: 'Strides' must be a positive integer, got 'x'``.

SCALE-Sim conv format (``scalesim/topology_utils.py``), one layer per row after a header::

    Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter,
    Strides,

Convs are lowered with ``layers.conv2d(..., rounding="ceil")`` and no padding, as SCALE-Sim does
(the file gives the input size as the simulator sees it). SCALE-Sim GEMM format (``--gemm``)::

    Layer, M, N, K,

(that order: ``M x K`` times ``K x N``). Spaces after commas, a trailing comma, blank rows and
extra columns after the last field (SCALE-Sim's own files carry some) are ignored. Rows are
numbered as lines of the file, the header being row 1.

The npu-dse JSON format is ``{"name": ..., "layers": [...]}`` where each layer is an object with
a ``type`` and the keyword arguments of the matching ``hw.layers`` builder (an optional
``name`` defaults to the type and the layer's position)::

    {"name": "conv1", "type": "conv2d", "ifmap_h": 32, "ifmap_w": 32, "channels": 3,
     "num_filters": 16, "filter_h": 3, "filter_w": 3, "stride": 1, "padding": 1}
    {"type": "dense", "in_features": 256, "out_features": 512, "tokens": 64}
    {"type": "gemm", "m": 64, "k": 256, "n": 256, "count": 1}
    {"type": "matmul", "m": 64, "k": 32, "n": 64, "count": 4}
    {"type": "softmax", "elems": 16384, "inputs": 1}      (also layernorm, gelu, relu, add)
    {"type": "pool", "ifmap_h": 32, "ifmap_w": 32, "channels": 16, "window": 2, "stride": 2}

Bundled examples live in ``npu_dse/data/topologies/`` (see :func:`bundled`): ``resnet18.csv``
(ResNet-18 at 224x224 in SCALE-Sim's conv format with the unpadded input sizes of SCALE-Sim's
own ``Resnet18.csv``, the classifier as a 1x1 conv), ``bert_base_layer_gemm.csv`` (one
BERT-base encoder layer at sequence length 128: Q, K, V, O projections, attention scores and
context once per head, the two FFN GEMMs) and ``tiny_transformer.json``.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import importlib.resources
import inspect
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np

from hw import layers
from hw.types import Workload
from hw.validate import validate_workload
from npu_dse import fastcsv, onnx_import
from npu_dse.inputs import boundary, loads_json, parse_count, read_text

CONV_FIELDS = (
    "Layer name",
    "IFMAP Height",
    "IFMAP Width",
    "Filter Height",
    "Filter Width",
    "Channels",
    "Num Filter",
    "Strides",
)
"""Columns of SCALE-Sim's conv topology format, in order."""

GEMM_FIELDS = ("Layer", "M", "N", "K")
"""Columns of SCALE-Sim's GEMM topology format, in order (note: M, N, K)."""

_OTHER_KEYS = {
    CONV_FIELDS: {"m", "n", "k"},
    GEMM_FIELDS: {"ifmap height", "filter height", "channel", "num filter"},
}
"""Header cells that betray the other format (for the hint)."""

_HINTS = {
    CONV_FIELDS: "this looks like a GEMM topology (Layer, M, N, K); use the GEMM format (--gemm)",
    GEMM_FIELDS: "this looks like a conv topology; drop --gemm for SCALE-Sim's conv format",
}
"""What a file in one format is told when it looks like the other."""

BUILDERS: dict[str, Callable[..., layers.Layer]] = {
    "conv2d": layers.conv2d,
    "dense": layers.dense,
    "gemm": layers.gemm,
    "matmul": layers.batched_matmul,
    "pool": layers.pool,
    **{op: functools.partial(layers.vector, op=op) for op in layers.VECTOR_OPS_PER_ELEM},
}
"""Layer ``type`` of the JSON format -> ``hw.layers`` builder."""


def bundled(name: str) -> Path:
    """Path of a bundled example workload, e.g. ``bundled("resnet18.csv")``."""
    return Path(str(importlib.resources.files("npu_dse") / "data" / "topologies" / name))


def bundled_space(name: str) -> Path:
    """Path of a bundled design-space file, e.g. ``bundled_space("edge.json")``."""
    return Path(str(importlib.resources.files("npu_dse") / "data" / "spaces" / name))


def _rows(path: Path) -> list[tuple[int, list[str]]]:
    """Non-blank CSV rows as ``(row number, stripped cells without trailing blanks)``."""
    out = []
    text = read_text(path, "workload file")
    with io.StringIO(text, newline="") as f:
        reader = csv.reader(f)
        try:
            for row in reader:
                cells = [c.strip() for c in row]
                while cells and not cells[-1]:
                    cells.pop()
                if cells:
                    out.append((reader.line_num, cells))
        except csv.Error as err:
            raise ValueError(f"{path} row {reader.line_num}: malformed CSV ({err})") from None
    return out


def _positive_int(path: Path, row: int, field: str, text: str) -> int:
    value = parse_count(text)  # ASCII decimal digits only
    if value is None or value < 1:
        raise ValueError(f"{path} row {row}: {field!r} must be a positive integer, got {text!r}")
    return value


def _records(path: Path, fields: tuple[str, ...], other: str) -> list[tuple[int, dict]]:
    """The data rows of a SCALE-Sim CSV as ``(row number, {field: text})``.

    ``other`` is the hint given when the file looks like the other SCALE-Sim format.
    """
    rows = _rows(path)
    if not rows:
        raise ValueError(f"{path}: empty file; expected a header row: {', '.join(fields)}")
    header_row, header = rows[0]
    _check_header_row(path, header_row, header, fields, other)
    if len(rows) == 1:
        raise ValueError(f"{path}: no layers after the header row")
    out = []
    for row, cells in rows[1:]:
        if len(cells) < len(fields):
            raise ValueError(
                f"{path} row {row}: expected {len(fields)} fields ({', '.join(fields)}), "
                f"got {len(cells)}"
            )
        if len(cells) > max(len(header), len(fields)):
            raise ValueError(
                f"{path} row {row}: {len(cells)} fields but the header has {len(header)} "
                f"({', '.join(fields)}); {other}"
            )
        if not cells[0]:
            raise ValueError(f"{path} row {row}: {fields[0]!r} must not be empty")
        values = {fields[0]: cells[0]}
        for field, text in zip(fields[1:], cells[1 : len(fields)], strict=True):
            values[field] = _positive_int(path, row, field, text)
        out.append((row, values))
    return out


def _check_header_row(path: Path, row: int, header: list[str], fields, other: str) -> None:
    """The header row names ``fields`` (see :func:`_check_header`) and is not a data row."""
    if all(c.isdigit() for c in header[1:]) and len(header) > 1:
        raise ValueError(
            f"{path} row {row}: expected a header row ({', '.join(fields)}), "
            "got a data row; SCALE-Sim skips the first row"
        )
    if len(header) != len(fields) and len(header) in (len(CONV_FIELDS), len(GEMM_FIELDS)):
        raise ValueError(f"{path} row {row}: the header has {len(header)} fields; {other}")
    _check_header(path, row, header, fields, other)


def _header_key(cell: str) -> str:
    """A header cell as compared: lower case, single spaces, without a plural ``s`` (SCALE-Sim's
    files write ``Layer name`` or ``Layer Name``, ``Num Filter`` or ``Num Filters``,
    ``Strides`` or ``Stride``)."""
    return " ".join(cell.lower().split()).removesuffix("s")


_HEADER_VARIANTS = {"layer name": "layer"}


def _check_header(path: Path, row: int, header: list[str], fields, other: str) -> None:
    """The header's first columns name ``fields`` (in their known spellings)."""
    for i, field in enumerate(fields):
        got = _header_key(header[i]) if i < len(header) else ""
        want = _header_key(field)
        if i == 0:
            got, want = _HEADER_VARIANTS.get(got, got), _HEADER_VARIANTS.get(want, want)
        if got != want:
            cell = header[i] if i < len(header) else ""
            hint = f"; {other}" if set(map(_header_key, header)) & _OTHER_KEYS[fields] else ""
            raise ValueError(
                f"{path} row {row}: header column {i + 1} is {cell!r}, expected {field!r} "
                f"(header: {', '.join(fields)}){hint}"
            )


def read_scalesim_conv(path: str | Path) -> list[layers.Layer]:
    """Layers of a SCALE-Sim conv topology CSV (SCALE-Sim's lowering: ceil, no padding)."""
    path = Path(path)
    out = []
    for row, v in _records(path, CONV_FIELDS, _HINTS[CONV_FIELDS]):
        try:
            out.append(
                layers.conv2d(
                    v["Layer name"],
                    ifmap_h=v["IFMAP Height"],
                    ifmap_w=v["IFMAP Width"],
                    filter_h=v["Filter Height"],
                    filter_w=v["Filter Width"],
                    channels=v["Channels"],
                    num_filters=v["Num Filter"],
                    stride=v["Strides"],
                    rounding="ceil",
                )
            )
        except ValueError as err:
            raise ValueError(f"{path} row {row}: {err}") from None
    return out


def read_scalesim_gemm(path: str | Path) -> list[layers.Layer]:
    """Layers of a SCALE-Sim GEMM topology CSV, columns ``Layer, M, N, K``."""
    path = Path(path)
    return [
        layers.gemm(v["Layer"], m=v["M"], k=v["K"], n=v["N"])
        for _, v in _records(path, GEMM_FIELDS, _HINTS[GEMM_FIELDS])
    ]


def _scalesim_columns(path: Path, gemm: bool) -> Workload | None:
    """A SCALE-Sim CSV read as columns (:mod:`npu_dse.fastcsv`): the workload the row-by-row
    readers would stack, or None where the file needs them (unusual text or a bad value; they
    then raise the error). A bad header raises here, as there."""
    fields = GEMM_FIELDS if gemm else CONV_FIELDS
    found = fastcsv.split_rows(read_text(path, "workload file"), len(fields))
    if found is None:
        return None
    (row, header), rows = found
    _check_header_row(path, row, header, fields, _HINTS[fields])
    columns = (fastcsv.gemm_columns if gemm else fastcsv.conv_columns)(rows)
    if columns is None:
        return None
    names = tuple(r[0] for r in rows)
    return Workload(**columns, names=names, kinds=("gemm" if gemm else "conv",) * len(names))


def _layers_of(workload: Workload) -> list[layers.Layer]:
    """The layers of a stacked workload (shape ``(L,)`` fields), as :func:`layers.workload`
    took them."""
    fields = [f.name for f in dataclasses.fields(layers.Layer) if f.name not in ("name", "kind")]
    columns = [np.asarray(getattr(workload, f)).tolist() for f in fields]
    return [
        layers.Layer(name, kind, *values)
        for name, kind, *values in zip(workload.names, workload.kinds, *columns, strict=True)
    ]


@functools.cache
def _keys(kind: str) -> tuple[frozenset[str], frozenset[str]]:
    """``(allowed, required)`` JSON keys of a layer type, from its builder's signature."""
    params = inspect.signature(BUILDERS[kind]).parameters.values()
    keyword = [p for p in params if p.kind is p.KEYWORD_ONLY and p.name not in ("kind", "op")]
    allowed = frozenset(p.name for p in keyword) | {"name", "type"}
    required = frozenset(p.name for p in keyword if p.default is p.empty)
    return allowed, required


def _json_layer(where: str, index: int, spec) -> layers.Layer:
    """One layer of the JSON format; ``where`` is ``"<file> layer <n>"`` for messages."""
    if not isinstance(spec, dict):
        raise ValueError(f"{where}: expected an object, got {type(spec).__name__}")
    kind = spec.get("type")
    if kind is not None and not isinstance(kind, str):
        raise ValueError(f"{where}: 'type' must be a string, got {type(kind).__name__}")
    if kind not in BUILDERS:
        got = "no 'type'" if kind is None else f"type {kind!r}"
        raise ValueError(f"{where}: unknown layer {got}; allowed types: {', '.join(BUILDERS)}")
    name = spec.get("name", f"{kind}{index}")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where}: 'name' must be a non-empty string, got {name!r}")
    where = f"{where} ({name!r})"
    allowed, required = _keys(kind)
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise ValueError(
            f"{where}: unknown key {unknown[0]!r} for type {kind!r}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )
    missing = sorted(required - set(spec))
    if missing:
        raise ValueError(f"{where}: missing key {missing[0]!r} for type {kind!r}")
    kwargs = {k: v for k, v in spec.items() if k not in ("name", "type")}
    try:
        return BUILDERS[kind](name, **kwargs)
    except ValueError as err:
        detail = str(err).removeprefix(f"layer {name!r}: ")
        raise ValueError(f"{where}: {detail}") from None


def read_workload_json(path: str | Path) -> list[layers.Layer]:
    """Layers of an npu-dse workload JSON file (see the module docstring)."""
    path = Path(path)
    doc = loads_json(read_text(path, "workload file"), str(path))
    if not isinstance(doc, dict) or not isinstance(doc.get("layers"), list):
        raise ValueError(f'{path}: expected an object {{"name": ..., "layers": [...]}}')
    extra = sorted(set(doc) - {"name", "description", "layers"})
    if extra:
        raise ValueError(f"{path}: unknown key {extra[0]!r}; allowed: name, description, layers")
    if not isinstance(doc.get("name", ""), str) or not isinstance(doc.get("description", ""), str):
        raise ValueError(f"{path}: 'name' and 'description' must be strings")
    if not doc["layers"]:
        raise ValueError(f"{path}: 'layers' is empty; a workload needs at least one layer")
    return [_json_layer(f"{path} layer {i}", i, s) for i, s in enumerate(doc["layers"], start=1)]


@boundary
def load_workload(
    path: str | Path, gemm: bool = False, batch: int | None = None
) -> tuple[Workload, list[layers.Layer]]:
    """Read a workload file by extension: ``.json`` (npu-dse), ``.csv`` (SCALE-Sim) or ``.onnx``.

    Args:
      path: the file.
      gemm: the CSV is in SCALE-Sim's GEMM format (``Layer, M, N, K``), not the conv format.
      batch: the value of symbolic input dimensions of an ONNX model (``.onnx``).

    Returns:
      The stacked workload and its layers.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "not found"
        raise ValueError(f"workload file {what}: {path}")
    suffix = path.suffix.lower()
    if suffix == ".json" and gemm:
        raise ValueError(f"{path}: the GEMM format applies to SCALE-Sim .csv files, not .json")
    readers = {
        ".json": read_workload_json,
        ".csv": read_scalesim_gemm if gemm else read_scalesim_conv,
        ".onnx": functools.partial(onnx_import.read_onnx, batch=batch),
    }
    if suffix == ".csv":
        stacked = _scalesim_columns(path, gemm)
        if stacked is not None:
            return validate_workload(stacked), _layers_of(stacked)
    reader = readers.get(suffix)
    if reader is None:
        raise ValueError(
            f"{path}: unknown workload format {suffix or '(no extension)'!r}; allowed: .csv "
            "(SCALE-Sim topology, conv format or GEMM format) or .json (npu-dse workload) or .onnx"
        )
    found = reader(path)
    return validate_workload(layers.workload(found)), found


@boundary
def load_model_widths(
    path: str | Path, gemm: bool = False, batch: int | None = None
) -> tuple[Workload, dict[str, tuple[int, int]]]:
    """:func:`load_workload`'s workload and the model's own operand widths by layer name,
    ``{name: (w_bits, a_bits)}``: those of an ONNX model's quantized GEMMs (``QLinearConv``,
    ``QLinearMatMul``, ``ConvInteger``, ``MatMulInteger``), from their tensor types; ``{}``
    for other files. :func:`npu_dse.simulate` costs those layers at those widths."""
    suffix = Path(path).suffix.lower()
    if suffix == ".csv" and Path(path).is_file():
        stacked = _scalesim_columns(Path(path), gemm)  # without the list of layers
        if stacked is not None:
            return validate_workload(stacked), {}
    if suffix != ".onnx" or not Path(path).is_file():
        return load_workload(path, gemm=gemm, batch=batch)[0], {}
    imported = onnx_import.import_onnx(path, batch)
    if imported.host_ops:
        onnx_import.logger.warning("%s: %s", path, imported.host_summary())
    return validate_workload(layers.workload(list(imported.layers))), dict(imported.bits)
