"""A design point: hardware values, per-layer bit widths and per-layer mapping.

:class:`Design` is a pytree (vmap it over a population of designs). The hardware it
describes is the base preset of a :class:`~dse.space.Space` with the searched values put in:
``sram_kib`` is split over the ifmap, filter and ofmap buffers in the base's proportions and
the multipliers are as wide as the widest layer (:func:`to_config`). :func:`evaluate` runs
``hw.evaluate`` on it and :func:`metrics` sums the whole-workload figures that objectives and
budgets are stated in.

>>> import numpy as np
>>> from hw import layers
>>> from dse.space import Space
>>> space = Space.from_dict({"base": "edge-tpu-like", "rows": [32, 64]})
>>> wl = layers.workload([layers.gemm("g", m=64, k=64, n=64)])
>>> d = base_design(space, wl)
>>> float(d.rows), d.w_bits.tolist()
(64.0, [8.0])
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from hw import arith, cost
from hw.arith import EXACT, Arith
from hw.types import (
    DATAFLOWS,
    LOOP_ORDERS,
    Array,
    LayerBits,
    Mapping,
    NPUConfig,
    Workload,
    canonical,
    pytree_dataclass,
)
from hw.x64 import x64

from . import accuracy as acc
from . import llmstep
from .space import Space, pinned_base, sram_total_kib
from .suite import network_metrics


@pytree_dataclass
class Design:
    """One design (or, with leading axes, a population of them)."""

    rows: Array  # PEs
    cols: Array  # PEs
    dataflow: Array  # code into hw.types.DATAFLOWS
    sram_kib: Array  # total on-chip buffer, KiB
    clock_mhz: Array
    dram_bw_gbps: Array
    w_bits: Array  # shape=(L,) weight width per layer
    a_bits: Array  # shape=(L,) activation width per layer
    mapping: Mapping  # shape=(L,) fields


@x64
def base_design(space: Space, workload: Workload, mapping: Mapping | None = None) -> Design:
    """The base preset as a design (its default mapping unless one is given; the layers of
    ``space.fixed_bits`` at the model's widths)."""
    config, bits = pinned_base(space.base_config(), workload, space.fixed_bits)
    n = workload.num_layers
    if mapping is None:
        mapping = cost.default_mapping(config, workload, bits)
    w, a = (np.full(n, float(config.w_bits)), np.full(n, float(config.a_bits)))
    if bits is not None:
        w, a = bits.w_bits, bits.a_bits
    return canonical(
        Design(
            rows=np.float64(config.rows),
            cols=np.float64(config.cols),
            dataflow=np.int64(config.dataflow),
            sram_kib=np.float64(sram_total_kib(config)),
            clock_mhz=np.float64(config.clock_mhz),
            dram_bw_gbps=np.float64(config.dram_bw_gbps),
            w_bits=w,
            a_bits=a,
            mapping=mapping,
        )
    )


@x64
def hardware_bits(design: Design, workload: Workload, ar: Arith = EXACT):
    """Multiplier widths ``(w, a)``: the widest weight width of a GEMM layer and the widest
    activation width of any layer (a network without GEMMs keeps its widest weight width);
    with smooth ``ar`` the smooth maximum over layers (``hw.arith.max_along``)."""
    gemm = workload.gemm_count > 0
    w = arith.max_along(jnp.where(gemm, design.w_bits, 0.0), ar)
    w = jnp.where(jnp.any(gemm), w, arith.max_along(design.w_bits, ar))
    return w, arith.max_along(design.a_bits, ar)


@x64
def to_config(base: NPUConfig, design: Design, workload: Workload, ar: Arith = EXACT) -> NPUConfig:
    """The hardware of a design: the base config with the design's values put in (smooth
    ``ar``: multipliers as wide as the smooth maximum of the layers' widths)."""
    total = sram_total_kib(base)
    w, a = hardware_bits(design, workload, ar)
    return dataclasses.replace(
        base,
        rows=design.rows,
        cols=design.cols,
        dataflow=design.dataflow,
        ifmap_sram_kib=design.sram_kib * (base.ifmap_sram_kib / total),
        filter_sram_kib=design.sram_kib * (base.filter_sram_kib / total),
        ofmap_sram_kib=design.sram_kib * (base.ofmap_sram_kib / total),
        clock_mhz=design.clock_mhz,
        dram_bw_gbps=design.dram_bw_gbps,
        w_bits=w,
        a_bits=a,
    )


@x64
def evaluate(base: NPUConfig, workload: Workload, design: Design, ar: Arith = EXACT, step=None):
    """``hw.evaluate`` of one design, with its per-layer widths (vmap for a population); with
    an LLM step (``dse.llmstep.LLMStep``), its operand-class widths and residency."""
    config = to_config(base, design, workload, ar)
    bits = LayerBits(w_bits=design.w_bits, a_bits=design.a_bits)
    if step is not None:
        config, workload, bits = llmstep.apply(
            config, workload, design.w_bits, design.a_bits, step, ar
        )
    return cost.evaluate(config, workload, design.mapping, ar=ar, layer_bits=bits)


@x64
def metrics(report, suite=None) -> dict:
    """Whole-workload figures of a report: ``latency_s``, ``energy_j``, ``power_w``,
    ``area_mm2``, ``edp_js`` and ``fits`` (every layer's tiles fit its buffers); with a
    ``dse.suite.Suite``, each network's figures and the ``suite_objective`` too."""
    extra = {} if suite is None else network_metrics(suite, report.latency_s, report.energy_pj)
    return extra | {
        "latency_s": report.total_latency_s,
        "energy_j": report.total_energy_j,
        "power_w": report.power_w,
        "area_mm2": report.area_mm2,
        "edp_js": report.edp_js,
        "fits": jnp.all(report.fits, axis=-1),
    }


@x64
@functools.partial(jax.jit, static_argnames=("suite", "step"))
def evaluate_population(
    base: NPUConfig,
    workload: Workload,
    designs: Design,
    ar: Arith = EXACT,
    accuracy=None,
    suite=None,
    step=None,
):
    """Metrics of a population of designs (leading axis ``B`` on every field), jitted.

    With an accuracy model (``dse.accuracy.AccuracyModel``) the metrics include its
    ``accuracy`` estimate for each design's bit widths; ``step``: an LLM step
    (:func:`evaluate`).
    """
    reports = jax.vmap(lambda d: evaluate(base, workload, d, ar, step))(designs)
    m = metrics(reports, suite)
    if accuracy is not None:
        m["accuracy"] = jax.vmap(lambda d: acc.predict(accuracy, d.w_bits, d.a_bits))(designs)
    return m


def evaluate_problem(problem, designs: Design) -> dict:
    """:func:`evaluate_population` of a ``dse.problem.Problem``'s designs: its base design,
    workload, accuracy model, suite and LLM step."""
    return evaluate_population(
        problem.base,
        problem.workload,
        designs,
        accuracy=problem.accuracy,
        suite=problem.suite,
        step=problem.llm,
    )


def stack(designs: list[Design]) -> Design:
    """One population from a list of designs."""
    return jax.tree_util.tree_map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *designs)


def take(designs: Design, i: int) -> Design:
    """Design ``i`` of a population, as NumPy arrays."""
    return jax.tree_util.tree_map(lambda x: np.asarray(x)[i], designs)


@x64
def describe(space: Space, design: Design, workload: Workload) -> dict:
    """A JSON-ready description: hardware values, per-layer bit widths and mapping."""
    d = jax.tree_util.tree_map(np.asarray, design)
    w, a = (float(x) for x in hardware_bits(d, workload))
    hardware = {
        "base": space.base,
        "rows": int(d.rows),
        "cols": int(d.cols),
        "dataflow": DATAFLOWS[int(d.dataflow)],
        "sram_kib": float(d.sram_kib),
        "clock_mhz": float(d.clock_mhz),
        "dram_bw_gbps": float(d.dram_bw_gbps),
        "w_bits": int(w),
        "a_bits": int(a),
    }
    per_layer = [
        {
            "name": name,
            "w_bits": int(d.w_bits[i]),
            "a_bits": int(d.a_bits[i]),
            "tile_m": int(d.mapping.tile_m[i]),
            "tile_k": int(d.mapping.tile_k[i]),
            "tile_n": int(d.mapping.tile_n[i]),
            "loop_order": LOOP_ORDERS[int(d.mapping.loop_order[i])],
        }
        for i, name in enumerate(workload.names)
    ]
    return {"hardware": hardware, "layers": per_layer}
