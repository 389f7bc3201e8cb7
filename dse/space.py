"""The design space: which hardware values and bit widths a search may pick.

A space is one JSON object (or :meth:`Space.from_dict`) whose keys are parameter names and
whose values are a list of allowed values or a range:

.. code-block:: json

    {"base": "edge-tpu-like",
     "rows": {"min": 8, "max": 128, "pow2": true},
     "cols": [16, 32, 64],
     "dataflow": ["os", "ws", "is"],
     "sram_kib": {"min": 64, "max": 8192, "pow2": true},
     "w_bits": [4, 8], "a_bits": [4, 8]}

Keys (``SPACE_KEYS``):

- ``base``: the preset (``hw.preset_names()``) supplying everything not searched; default
  ``DEFAULT_BASE``.
- ``rows``, ``cols`` (PEs), ``dataflow`` (``os``/``ws``/``is``), ``sram_kib`` (the total of
  the three on-chip buffers, split in the base preset's proportions), ``clock_mhz``,
  ``dram_bw_gbps``: hardware parameters. A missing key keeps the base preset's value.
- ``w_bits``, ``a_bits``: the widths a layer's weights and activations may use. The
  multipliers are built for the widest width any layer uses.
- ``per_layer_bits`` (``true``/``false``, default ``true``): one width per layer, or one for
  the whole network.

A range ``{"min": a, "max": b}`` allows every integer in ``[a, b]``; with ``"pow2": true`` only
the powers of two in it. Per-layer mappings (tiles of M, K, N and the loop order) are always
searched, within legal tilings (``hw.cost.min_tiles`` up to the full dimension).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import jax.numpy as jnp
import numpy as np

from hw import bounds, presets
from hw.bounds import InputError, show
from hw.types import DATAFLOWS, LayerBits, NPUConfig

DEFAULT_BASE = "edge-tpu-like"
HW_KEYS = ("rows", "cols", "dataflow", "sram_kib", "clock_mhz", "dram_bw_gbps")
BIT_KEYS = ("w_bits", "a_bits")
SPACE_KEYS = ("base", *HW_KEYS, *BIT_KEYS, "per_layer_bits")
_INTEGER_KEYS = ("rows", "cols", "w_bits", "a_bits")
_BIT_RANGE = (2, 16)
_RANGES = {
    "rows": (1, bounds.ARRAY_DIM_MAX),
    "cols": (1, bounds.ARRAY_DIM_MAX),
    "sram_kib": (2.0**-4, bounds.SRAM_KIB[1]),
    "clock_mhz": bounds.CLOCK_MHZ,
    "dram_bw_gbps": bounds.DRAM_BW_GBPS,
    "w_bits": _BIT_RANGE,
    "a_bits": _BIT_RANGE,
}
"""Allowed values of each key (``hw.bounds``; ``sram_kib`` is a total split over three
buffers, so its floor keeps each buffer above ``hw.bounds.SRAM_KIB``'s)."""
_VALUES_MAX = 4096
"""Most values one range may allow."""


@dataclasses.dataclass(frozen=True)
class Space:
    """Allowed values per parameter (sorted tuples; one value = fixed), and the base preset.

    ``dataflow`` holds codes (indices into ``hw.types.DATAFLOWS``).
    """

    base: str
    rows: tuple[float, ...]
    cols: tuple[float, ...]
    dataflow: tuple[int, ...]
    sram_kib: tuple[float, ...]
    clock_mhz: tuple[float, ...]
    dram_bw_gbps: tuple[float, ...]
    w_bits: tuple[float, ...]
    a_bits: tuple[float, ...]
    per_layer_bits: bool = True
    # The base design when it is not a preset (``base`` is then its label, e.g. a file name).
    base_design: NPUConfig | None = dataclasses.field(default=None, compare=False)
    # Layers whose widths the model fixes, ((layer index, w_bits, a_bits), ...): a quantized
    # ONNX model's integer GEMMs. Not a key of the JSON form: set from the workload.
    fixed_bits: tuple[tuple[int, float, float], ...] = ()

    @staticmethod
    def from_dict(spec: dict, base_design: NPUConfig | None = None) -> Space:
        """Build and check a space; a bad key or value raises ``ValueError`` in one line.

        ``base_design``: the design that supplies everything not searched, when ``spec``'s
        ``base`` names a design rather than a preset (``npu_dse`` reads design files)."""
        if not isinstance(spec, dict):
            raise ValueError(f"a design space is a JSON object, got {type(spec).__name__}")
        unknown = sorted(set(spec) - set(SPACE_KEYS))
        if unknown:
            raise ValueError(
                f"design space: unknown key {unknown[0]!r}; allowed: {', '.join(SPACE_KEYS)}"
            )
        base = spec.get("base", DEFAULT_BASE)
        if not isinstance(base, str):
            raise ValueError(f"design space: base must be a preset name, got {base!r}")
        if base_design is None and base not in presets.preset_names():
            raise ValueError(
                f"design space: base {base!r} is not a preset; "
                f"known: {', '.join(presets.preset_names())}"
            )
        per_layer = spec.get("per_layer_bits", True)
        if not isinstance(per_layer, bool):
            raise ValueError(
                f"design space: per_layer_bits must be true or false, got {per_layer!r}"
            )
        config = presets.get_preset(base) if base_design is None else base_design
        fixed = base_values(config)
        values = {key: _values(key, spec[key]) if key in spec else fixed[key] for key in fixed}
        return Space(base=base, per_layer_bits=per_layer, base_design=base_design, **values)

    def to_dict(self) -> dict:
        """The JSON form (lists of allowed values), which :meth:`from_dict` reads back."""
        out = {"base": self.base, "per_layer_bits": self.per_layer_bits}
        for key in (*HW_KEYS, *BIT_KEYS):
            vals = getattr(self, key)
            out[key] = [DATAFLOWS[int(v)] for v in vals] if key == "dataflow" else list(vals)
        return out

    @property
    def searched(self) -> tuple[str, ...]:
        """The parameters with more than one allowed value."""
        return tuple(k for k in (*HW_KEYS, *BIT_KEYS) if len(getattr(self, k)) > 1)

    @property
    def num_hardware_points(self) -> int:
        """Hardware points, counting the widest bit widths (``w_bits x a_bits``) as hardware."""
        return math.prod(len(getattr(self, k)) for k in (*HW_KEYS, *BIT_KEYS))

    def base_config(self) -> NPUConfig:
        return presets.get_preset(self.base) if self.base_design is None else self.base_design

    def hardware_grid(self) -> dict[str, np.ndarray]:
        """Every hardware point (with widest widths), as flat arrays keyed by parameter."""
        keys = (*HW_KEYS, *BIT_KEYS)
        if self.num_hardware_points > bounds.SPACE_POINTS_MAX:
            raise InputError(
                f"design space has {self.num_hardware_points} hardware points; at most "
                f"{bounds.SPACE_POINTS_MAX} can be enumerated at once"
            )
        grids = np.meshgrid(*(np.asarray(getattr(self, k), float) for k in keys), indexing="ij")
        return {k: g.reshape(-1) for k, g in zip(keys, grids, strict=True)}


def pin_bits(space: Space, w_bits, a_bits):
    """``(w_bits, a_bits)`` (shape ``(..., L)``) with the layers of ``space.fixed_bits`` set
    to the model's widths."""
    if not space.fixed_bits:
        return w_bits, a_bits
    idx = np.array([i for i, _, _ in space.fixed_bits])
    w = jnp.asarray(w_bits).at[..., idx].set(jnp.array([w for _, w, _ in space.fixed_bits]))
    a = jnp.asarray(a_bits).at[..., idx].set(jnp.array([a for _, _, a in space.fixed_bits]))
    return w, a


def pinned_base(config: NPUConfig, workload, fixed) -> tuple[NPUConfig, LayerBits | None]:
    """The base ``config`` for ``workload`` with the layers of ``fixed`` (``((layer, w_bits,
    a_bits), ...)``) at those widths: multipliers as wide as ``dse.design.hardware_bits``
    makes them, and the per-layer widths (``None`` when nothing is fixed)."""
    if not fixed:
        return config, None
    n = workload.num_layers
    w, a = np.full(n, float(config.w_bits)), np.full(n, float(config.a_bits))
    for i, wb, ab in fixed:
        w[i], a[i] = wb, ab
    gemm = np.asarray(workload.gemm_count) > 0
    w_hw = w[gemm].max() if gemm.any() else w.max()
    config = dataclasses.replace(config, w_bits=float(w_hw), a_bits=float(a.max()))
    return config, LayerBits(w, a)


def base_values(config: NPUConfig) -> dict[str, tuple]:
    """The one-value tuples of a preset for every searchable key."""
    return {
        "rows": (float(config.rows),),
        "cols": (float(config.cols),),
        "dataflow": (int(config.dataflow),),
        "sram_kib": (float(sram_total_kib(config)),),
        "clock_mhz": (float(config.clock_mhz),),
        "dram_bw_gbps": (float(config.dram_bw_gbps),),
        "w_bits": (float(config.w_bits),),
        "a_bits": (float(config.a_bits),),
    }


def sram_total_kib(config: NPUConfig):
    return config.ifmap_sram_kib + config.filter_sram_kib + config.ofmap_sram_kib


def load_space(path: str | Path) -> Space:
    """Read a space from a JSON file; errors name the file and what is wrong."""
    path = Path(path)
    try:
        spec = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"design space file {str(path)!r} does not exist") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"design space file {str(path)!r} is not valid JSON: {err}") from None
    try:
        return Space.from_dict(spec)
    except ValueError as err:
        raise ValueError(f"{path.name}: {err}") from None


def _values(key: str, spec) -> tuple:
    """Allowed values of one key from a list or a range, sorted and checked."""
    where = f"design space: {key!r}"
    if key == "dataflow":
        names = [spec] if isinstance(spec, str) else spec
        if not isinstance(names, list) or not names:
            raise ValueError(f"{where} must be a non-empty list of {', '.join(DATAFLOWS)}")
        bad = [n for n in names if n not in DATAFLOWS]
        if bad:
            raise ValueError(
                f"{where}: unknown dataflow {bad[0]!r}; allowed: {', '.join(DATAFLOWS)}"
            )
        return tuple(sorted({DATAFLOWS.index(n) for n in names}))
    if isinstance(spec, dict):
        vals = _range(key, where, spec)
    elif isinstance(spec, list):
        if not spec:
            raise ValueError(f"{where} is an empty list; give at least one value")
        vals = spec
    elif isinstance(spec, int | float) and not isinstance(spec, bool):
        vals = [spec]
    else:
        raise ValueError(f"{where} must be a list of values or a range {{'min', 'max', 'pow2'}}")
    if len(vals) > _VALUES_MAX:
        raise InputError(f"{where}: {len(vals)} values; at most {_VALUES_MAX}")
    lo, hi = _RANGES[key]
    for v in vals:
        if isinstance(v, bool) or not isinstance(v, int | float) or not v > 0:
            raise InputError(f"{where}: values must be positive numbers, got {v!r}")
        if key in BIT_KEYS and not _BIT_RANGE[0] <= v <= _BIT_RANGE[1]:
            raise InputError(f"{where}: bit widths must be in 2..16, got {v!r}")
        if not (math.isfinite(v) and lo <= v <= hi):
            raise InputError(f"{where}: values must be in {show(lo)}..{show(hi)}, got {v!r}")
        if key in _INTEGER_KEYS and v != int(v):
            raise InputError(f"{where}: values must be integers, got {v!r}")
    return tuple(sorted({float(v) for v in vals}))


def _range(key: str, where: str, spec: dict) -> list:
    extra = sorted(set(spec) - {"min", "max", "pow2"})
    if extra or "min" not in spec or "max" not in spec:
        raise ValueError(f"{where}: a range is {{'min': a, 'max': b, 'pow2': true|false}}")
    lo, hi, pow2 = spec["min"], spec["max"], spec.get("pow2", False)
    for name, v in (("min", lo), ("max", hi)):
        if isinstance(v, bool) or not isinstance(v, int | float) or not v > 0:
            raise ValueError(f"{where}: range {name} must be a positive number, got {v!r}")
    if not isinstance(pow2, bool):
        raise InputError(f"{where}: range pow2 must be true or false, got {pow2!r}")
    top = _RANGES[key][1]
    for name, v in (("min", lo), ("max", hi)):
        if not math.isfinite(v) or (v > top and key not in BIT_KEYS):
            raise InputError(f"{where}: range {name} must be at most {show(top)}, got {v!r}")
    if lo > hi:
        raise InputError(f"{where}: range min {lo} is greater than max {hi}")
    if pow2:
        first, last = math.ceil(math.log2(lo)), math.floor(math.log2(hi))
    else:
        first, last = math.ceil(lo), math.floor(hi)
    count = last - first + 1  # counted before anything is enumerated
    if count < 1:
        kind = "power of two" if pow2 else "integer"
        raise InputError(f"{where}: no {kind} lies in [{lo}, {hi}]")
    if count > _VALUES_MAX:
        raise InputError(f"{where}: range allows {count} values; at most {_VALUES_MAX} (use pow2)")
    return [2.0**e for e in range(first, last + 1)] if pow2 else list(range(first, last + 1))
