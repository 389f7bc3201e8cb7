"""The ``simulate`` use case: one workload on one design, exactly, as the CLI prints it.

>>> from npu_dse import simulate, resolve_design
>>> from hw import layers
>>> wl = layers.workload([layers.gemm("g", m=64, k=64, n=64)])
>>> sim = simulate(wl, resolve_design(preset="scalesim-32x32"))
>>> int(sim.report.compute_cycles[0])  # 2 x 2 folds of 64 + 32 + 32 - 2 cycles
504
>>> sim.to_dict()["total"]["macs"]
262144

:func:`resolve_design` is the one way a design is assembled from what a user gives (a preset,
a design file, single-value overrides) and validated; :func:`simulate` maps the workload
(the design file's per-layer choices over the exact mapper's), evaluates it and refuses a
design whose tiles do not fit, with one line naming the layer.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from hw import bounds, checks, cost
from hw.bounds import CONFIG_RANGES, InputError
from hw.schedule import LAYER_KINDS
from hw.types import DATAFLOWS, CostReport, Mapping, NPUConfig, Workload, canonical
from hw.validate import InvalidFieldError, validate_config, validate_pair, validate_workload
from hw.x64 import x64
from npu_dse import report
from npu_dse.designs import DEFAULT_BASE, FIELDS, DesignFile, load_design, per_layer, split_sram
from npu_dse.inputs import boundary
from npu_dse.techfiles import load_tech

OVERRIDE_KEYS = (*FIELDS, "sram_kib")
"""Keys :func:`resolve_design` accepts as overrides: a design file's hardware keys and
``sram_kib``, the total of the three buffers (split in the design's proportions)."""


@dataclasses.dataclass(frozen=True)
class Simulation:
    """The result of :func:`simulate`: what was run and its exact cost report."""

    config: NPUConfig
    workload: Workload
    mapping: Mapping
    layer_bits: tuple | None  # (w_bits, a_bits), shape=(L,) each, or None: the config's
    report: CostReport
    stall: bool
    base: str  # the preset or design file the design started from
    # An inference in a stream, weights that fit kept on chip (hw.residency); None: not asked.
    steady: CostReport | None = None

    def to_dict(self) -> dict:
        """``{"design", "layers", "total", "stall"}`` and ``"steady_state"`` where asked:
        Python numbers only (``--json``). ``total`` is a single (cold) inference."""
        out = report.simulation_dict(
            self.config, self.workload, self.report, self.mapping, self.base, self.layer_bits
        )
        out["stall"] = self.stall
        if self.steady is not None:
            out["steady_state"] = report.steady_state_dict(self.steady)
        return out


def _override(config: NPUConfig, key: str, value) -> dict:
    if key == "sram_kib":
        return {}
    if key == "dataflow":
        if value not in DATAFLOWS:
            raise ValueError(f"dataflow must be one of {', '.join(DATAFLOWS)}, got {value!r}")
        return {"dataflow": np.int64(DATAFLOWS.index(value))}
    if key == "unsupported_ops":
        kinds = tuple(value)
        unknown = [k for k in kinds if k not in LAYER_KINDS]
        if unknown:
            raise ValueError(
                f"unsupported_ops: unknown layer kind {unknown[0]!r}; known: "
                f"{', '.join(LAYER_KINDS)}"
            )
        return {key: kinds}
    if isinstance(getattr(config, key), str | bool):
        return {key: value}
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise InvalidFieldError(
            key, f"{key} must be a number, got {type(value).__name__} {value!r:.40}"
        )
    lo, hi, unit = CONFIG_RANGES.get(key, (-(2.0**53), 2.0**53, ""))
    try:
        bounds.check_range(key, value, lo, hi, unit)  # before a cast could overflow
    except InputError as err:
        raise InvalidFieldError(key, str(err)) from None
    return {key: np.asarray(value, np.asarray(getattr(config, key)).dtype)}


@boundary
@x64
def resolve_design(
    design: str | Path | DesignFile | NPUConfig | None = None,
    *,
    preset: str | None = None,
    overrides: dict | None = None,
    flags: dict[str, str] | None = None,
    tech: str | Path | None = None,
) -> DesignFile:
    """The design a user asked for, validated.

    Args:
      design: a design file's path, a :class:`DesignFile` or a config; ``None``: ``preset``.
      preset: a preset name (default ``DEFAULT_BASE``); not together with ``design``.
      overrides: single values by design-file key (:data:`OVERRIDE_KEYS`), applied after
        ``sram_kib``; ``None`` values are ignored.
      flags: how the caller names each key (e.g. ``{"rows": "--rows"}``), for error lines.
      tech: a technology file (``npu_dse.techfiles``) applied over the design's table.
    """
    if design is not None and preset is not None:
        raise ValueError("give a design file or a preset, not both")
    if design is None:
        from hw import presets

        name = preset or DEFAULT_BASE
        if name not in presets.preset_names():
            raise ValueError(f"unknown preset {name!r}; known: {', '.join(presets.preset_names())}")
        found = DesignFile(presets.get_preset(name))
    elif isinstance(design, DesignFile):
        found = design
    elif isinstance(design, NPUConfig):
        found = DesignFile(design)
    else:
        found = load_design(design)
    changes = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = sorted(set(changes) - set(OVERRIDE_KEYS))
    if unknown:
        raise ValueError(f"unknown design key {unknown[0]!r}; allowed: {', '.join(OVERRIDE_KEYS)}")
    config = found.config
    if "sram_kib" in changes:
        config = split_sram(config, changes["sram_kib"])
    try:
        values = {}
        for key, value in changes.items():
            values |= _override(config, key, value)
        if changes:
            config = dataclasses.replace(config, **values, name=changes.get("name", "custom"))
        if tech is not None:
            config = dataclasses.replace(config, tech=load_tech(tech, config.tech))
        config = validate_config(canonical(config))
    except InvalidFieldError as err:
        flag = (flags or {}).get(err.field)
        raise ValueError(f"design: {err}" + (f" (set with {flag})" if flag else "")) from None
    return dataclasses.replace(found, config=config)


@x64
def simulate(
    workload: Workload,
    design: DesignFile | NPUConfig,
    *,
    stall: bool = True,
    base: str = "",
    widths: dict[str, tuple[int, int]] | None = None,
    steady_state: bool = False,
) -> Simulation:
    """Map ``workload`` on ``design`` and evaluate it exactly: a single (cold) inference, and
    with ``steady_state`` also an inference in a stream, where the weights that fit stay on
    chip from the one before (``hw.residency``; the same mapping).

    The design file's per-layer tiles, loop orders and widths win over the mapper's choice
    (``designs.per_layer``). ``widths`` are the model's own ``(w_bits, a_bits)`` by layer name
    (a quantized ONNX model's, ``workloads.load_model_widths``): those layers run at them
    unless the design file gives the layer widths of its own. Raises ``hw.bounds.InputError``
    (a ``ValueError``, one line) for a bad design or workload, a pair too large to count
    exactly (``hw.validate.validate_pair``) or a layer whose tiles do not fit the buffers.
    """
    if isinstance(design, NPUConfig):
        design = DesignFile(design)
    config = validate_config(design.config)
    validate_workload(workload)
    validate_pair(config, workload)
    # The compiled cost model is keyed on shapes and switches, not on names or layer kinds
    # (hw.cost.evaluate): another design or workload of the same length runs the same programs.
    mapping = cost.default_mapping(config, workload)
    mapping, layer_bits = boundary(per_layer)(design, workload, mapping)
    if widths:
        layer_bits = model_widths(design, workload, layer_bits, widths)
    rep = cost.evaluate(config, workload, mapping, stall=stall, layer_bits=layer_bits)
    error = checks.fit_error(config, workload, rep.fits)
    if error is not None:
        raise InputError(error)
    steady = None
    if steady_state:
        steady = cost.evaluate(
            config, workload, mapping, stall=stall, layer_bits=layer_bits, steady_state=True
        )
    return Simulation(
        config, workload, mapping, layer_bits, rep, stall, base or config.name, steady
    )


@boundary
def model_widths(design: DesignFile, workload: Workload, layer_bits, widths: dict) -> tuple:
    """``layer_bits`` (``None``: the config's widths) with the model's ``widths`` put in for
    the layers the design file gives no widths; a width above the multipliers' is an error."""
    names = list(workload.names)
    config = design.config
    if layer_bits is None:
        n = len(names)
        layer_bits = (np.full(n, float(config.w_bits)), np.full(n, float(config.a_bits)))
    w, a = (np.array(b, dtype=np.float64) for b in layer_bits)
    for name, (wb, ab) in widths.items():
        if name not in names:
            raise ValueError(f"model widths: layer {name!r} is not in the workload")
        entry = design.layers.get(name, {})
        i = names.index(name)
        for key, arr, value in (("w_bits", w, wb), ("a_bits", a, ab)):
            if key in entry:
                continue
            top = float(getattr(config, key))
            if value > top:
                raise ValueError(
                    f"layer {name!r}: the model's {key} {value} (its tensor type) is wider "
                    f"than the design's multipliers ({key} {top:g}); give a design with "
                    f"{key} >= {value}"
                )
            arr[i] = value
    return w, a
