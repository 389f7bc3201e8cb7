"""Turn cost reports into plain dicts (for ``--json``) and aligned text tables (for people).

The dicts hold Python numbers only: cycle counts are ints, everything is finite (a NaN or an
infinity raises ``ValueError`` instead of producing invalid JSON). The text tables use
SI-prefixed units (:func:`si`) and stay within 100 columns for the usual layer names.
"""

from __future__ import annotations

import bisect
import json
import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # imported where used: the presets table prints without JAX
    from hw.types import CostReport, Mapping, NPUConfig, Workload

_PREFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"))
_PREFIXES += ((1e-6, "µ"), (1e-9, "n"), (1e-12, "p"), (1e-15, "f"))
_SKIP_BELOW = tuple(-scale * 9.99e-4 for scale, _ in _PREFIXES[:-1])  # ascending
_NAME_WIDTH = 20  # longest layer name shown in full in a table


_PLAIN = frozenset({float, int, bool})  # Python numbers: no array conversion needed


def number(x, what: str = "value"):
    """``x`` as a Python int when integral, else a float; raises ``ValueError`` if not finite."""
    value = float(x) if type(x) in _PLAIN else float(np.asarray(x))
    if not math.isfinite(value):
        raise ValueError(f"internal error: {what} is {value}; please report this design")
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def count(x, what: str = "count") -> int:
    """A cycle or access count as an int (rounded; the exact model gives integers)."""
    return int(round(number(x, what)))


def si(x: float, unit: str = "", digits: int = 3) -> str:
    """``x`` with an SI prefix and ``digits`` significant digits: ``si(4.52e-5, "J")`` is
    ``"45.2 µJ"``; integral counts below 1000 print as they are (``si(504)`` is ``"504"``)."""
    sep = " " if unit else ""
    if x == 0 or (not unit and float(x).is_integer() and abs(x) < 1000):
        return f"{x:.0f}{sep}{unit}"
    # Scales where m < 0.001 (m rounds below 1 at any precision used) are skipped: a shortcut.
    first = bisect.bisect_left(_SKIP_BELOW, -abs(x))
    for scale, prefix in _PREFIXES[first:]:
        m = abs(x) / scale
        decimals = max(digits - 1 - math.floor(math.log10(m)), 0) if m > 0 else 0
        if round(m, decimals) >= 1 or scale == _PREFIXES[-1][0]:
            sign = "-" if x < 0 else ""
            return f"{sign}{m:.{decimals}f}{sep}{prefix}{unit}"
    raise AssertionError("unreachable")


def table(header: list[list[str]], rows: list[list[str]]) -> str:
    """Aligned columns: the first left-aligned, the others right-aligned, one space
    apart (two after the first).

    ``header`` is one or more rows of column titles (blank cells allowed).
    """
    every = header + rows
    widths = [max(len(r[i]) for r in every) for i in range(len(every[0]))]

    def line(cells):
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return (cells[0].ljust(widths[0]) + "  " + " ".join(rest)).rstrip()

    return "\n".join(line(r) for r in every)


def _pct(share: float, macs: int) -> str:
    """A 0-1 share as a percentage; ``-`` for layers without MACs (vector work only)."""
    return f"{100 * share:.1f}%" if macs else "-"


def _short(name: str) -> str:
    return name if len(name) <= _NAME_WIDTH else name[: _NAME_WIDTH - 1] + "…"


def design_dict(config: NPUConfig, base_preset: str) -> dict:
    """The design's values, with units in the key names."""
    from hw import tech

    fields = ("rows", "cols", "clock_mhz", "ifmap_sram_kib", "filter_sram_kib", "ofmap_sram_kib")
    fields += ("dram_bw_gbps", "dram_capacity_gib", "w_bits", "a_bits", "acc_bits")
    fields += ("vector_lanes", "pe_local_bytes")
    out = {"name": config.name, "base_preset": base_preset, "dataflow": config.dataflow_name}
    out.update({f: number(getattr(config, f), f) for f in fields})
    out["unified_sram"] = bool(config.unified_sram)
    out["dram_per_stream"] = bool(config.dram_per_stream)
    out["memory_model"] = config.memory_model
    out["grouped_lowering"] = config.grouped_lowering
    out["node_nm"] = number(config.tech.node_nm, "node_nm")
    out["peak_tops"] = number(config.peak_ops_per_s / 1e12, "peak_tops")
    out["area_mm2"] = number(tech.area_mm2(config), "area_mm2")
    return out


def _finite(x: np.ndarray, what: str) -> None:
    """Raise :func:`number`'s ``ValueError`` if an element of ``x`` is a NaN or an infinity."""
    finite = np.isfinite(x)
    if not finite.all():
        number(x[~finite][0], what)


def numbers(x, what: str = "value") -> list:
    """:func:`number` of every element of a 1-D array, converted as one column: the same
    Python values (ints where integral and below 2^53, else floats) and the same error."""
    x = np.asarray(x, dtype=np.float64)
    _finite(x, what)
    integral = (x == np.floor(x)) & (np.abs(x) < 2**53)
    if integral.all():
        return x.astype(np.int64).tolist()
    if not integral.any():
        return x.tolist()
    return [int(v) if i else v for v, i in zip(x.tolist(), integral.tolist(), strict=True)]


def counts(x, what: str = "count") -> list[int]:
    """:func:`count` of every element of a 1-D array (half to even, as ``round``)."""
    rounded = np.round(np.asarray(x, dtype=np.float64))
    _finite(rounded, what)
    if np.abs(rounded).max(initial=0) < 2**62:
        return rounded.astype(np.int64).tolist()
    return [int(v) for v in rounded.tolist()]


_CYCLES = ("compute_cycles", "vector_cycles", "host_cycles", "dram_cycles", "stall_cycles")
_CYCLES += ("total_cycles",)
_ENERGY = {
    "mac": "energy_mac_pj",
    "array": "energy_array_pj",
    "rf": "energy_rf_pj",
    "sram": "energy_sram_pj",
    "dram": "energy_dram_pj",
    "vector": "energy_vector_pj",
    "leakage": "energy_leak_pj",
    "host": "energy_host_pj",
}
"""``energy_breakdown_j`` key -> the report's per-layer field (pJ)."""
_DRAM = {k: f"dram_{k}_bytes" for k in ("ifmap_read", "filter_read", "ofmap_write", "ofmap_read")}
"""``dram_bytes_breakdown`` key -> the report's per-layer field (bytes)."""


def _records(keys: tuple[str, ...], columns: list[list]) -> list[dict]:
    """Per-row dicts ``{key: column[i]}`` of equally long columns."""
    return [dict(zip(keys, row, strict=True)) for row in zip(*columns, strict=True)]


def _layer_columns(rep: CostReport, mapping: Mapping) -> tuple[dict, dict, dict]:
    """Every layer's figures of a report as columns of Python numbers, each field converted
    once (a computed field such as ``latency_s`` is one JAX computation over every layer):
    ``(columns by per-layer key, energy columns in J, DRAM columns in bytes)``."""
    from hw.types import LOOP_ORDERS

    def col(field):
        return np.asarray(getattr(rep, field))

    def flags(field):
        return col(field).astype(bool).tolist()

    dram = {k: numbers(col(f), f) for k, f in _DRAM.items()}
    energy = {k: numbers(col(f) * 1e-12, f) for k, f in _ENERGY.items()}
    sram = {f: counts(col(f), f) for f in ("sram_ifmap_reads", "sram_filter_reads")}
    tiles = {f: counts(np.asarray(getattr(mapping, f)), f) for f in ("tile_m", "tile_k", "tile_n")}
    orders = counts(np.asarray(mapping.loop_order), "loop_order")
    return (
        {
            "on_host": flags("on_host"),
            "lowering": ["channel_parallel" if c else "gemm" for c in flags("channel_parallel")],
            "output_on_chip": flags("output_resident"),
            "macs": counts(col("macs"), "macs"),
            **{f: counts(col(f), f) for f in _CYCLES},
            "latency_s": numbers(col("latency_s"), "latency_s"),
            "mapping_efficiency": numbers(col("mapping_efficiency"), "mapping_efficiency"),
            "utilization": numbers(col("utilization"), "utilization"),
            "energy_j": numbers(col("energy_pj") * 1e-12, "energy_j"),
            "energy_breakdown_j": _records(tuple(energy), list(energy.values())),
            "dram_bytes": numbers(
                [a + b + c + d for a, b, c, d in zip(*dram.values(), strict=True)], "dram_bytes"
            ),
            "dram_bytes_breakdown": _records(tuple(dram), list(dram.values())),
            "sram_reads": [a + b for a, b in zip(*sram.values(), strict=True)],
            **sram,
            "sram_ofmap_writes": counts(col("sram_ofmap_writes")),
            "mapping": _records(
                (*tiles, "loop_order"), [*tiles.values(), [LOOP_ORDERS[o] for o in orders]]
            ),
        },
        energy,
        dram,
    )


def simulation_dict(
    config: NPUConfig,
    workload: Workload,
    rep: CostReport,
    mapping: Mapping,
    base_preset: str,
    layer_bits: tuple | None = None,
) -> dict:
    """``{"design", "layers", "total"}`` of one simulation, Python numbers only. Each layer
    carries its widths (``layer_bits = (w_bits, a_bits)``, shape=(L,) each; default: the
    design's). Built a column at a time: one array conversion per field, not per layer."""
    n = workload.num_layers
    kinds = workload.kinds or ("",) * n
    columns, energy, dram = _layer_columns(rep, mapping)
    if layer_bits is None:
        layer_bits = (np.full(n, float(config.w_bits)), np.full(n, float(config.a_bits)))
    w, a = (np.asarray(b) for b in layer_bits)
    columns |= {"w_bits": counts(w, "w_bits"), "a_bits": counts(a, "a_bits")}
    keys = ("name", "kind", *columns)
    layer_dicts = _records(keys, [list(workload.names), list(kinds), *columns.values()])
    energy_j = number(rep.total_energy_j, "energy_j")
    macs = sum(columns["macs"])
    total = {
        "latency_s": number(rep.total_latency_s, "latency_s"),
        "energy_j": energy_j,
        "power_w": number(rep.power_w, "power_w"),
        "area_mm2": number(rep.area_mm2, "area_mm2"),
        "edp_js": number(rep.edp_js, "edp_js"),
        "macs": macs,
        "cycles": sum(columns["total_cycles"]),
        "stall_cycles": sum(columns["stall_cycles"]),
        "dram_bytes": number(sum(columns["dram_bytes"])),
        "dram_bytes_breakdown": {k: number(sum(v)) for k, v in dram.items()},
        "tops_per_w": number(2.0 * macs / energy_j / 1e12 if energy_j > 0 else 0.0),
        "energy_breakdown_j": {k: number(sum(v)) for k, v in energy.items()},
    }
    design = design_dict(config, base_preset) | {"cross_layer": bool(config.cross_layer)}
    return {"design": design, "layers": layer_dicts, "total": total}


_LAYERS_MARK = "\0layers"  # stands for the layer list while the rest is indented


def simulation_json(result: dict) -> str:
    """``result`` (:func:`simulation_dict`'s, plus what the caller added) as JSON text: indented
    by two spaces, each layer one line. The keys and values are ``json.dumps``'s; writing a
    layer on one line lets the C encoder write it (indenting runs the pure-Python encoder,
    which was most of the time of a large workload's ``--json``)."""
    encoder = json.JSONEncoder(allow_nan=False, check_circular=False)  # layers are trees
    head = json.dumps({**result, "layers": _LAYERS_MARK}, indent=2, allow_nan=False)
    rows = ",\n    ".join(encoder.encode(layer) for layer in result["layers"])
    body = f"[\n    {rows}\n  ]" if rows else "[]"
    return head.replace(json.dumps(_LAYERS_MARK), body, 1)


def steady_state_dict(rep: CostReport) -> dict:
    """Whole-workload figures of an inference in a stream (``hw.cost.evaluate(...,
    steady_state=True)``), Python numbers only."""
    dram = {
        k: number(np.sum(np.asarray(getattr(rep, f"dram_{k}_bytes"))), k)
        for k in ("ifmap_read", "filter_read", "ofmap_write", "ofmap_read")
    }
    return {
        "weights_on_chip": bool(np.asarray(rep.weights_resident)),
        "latency_s": number(rep.total_latency_s, "latency_s"),
        "energy_j": number(rep.total_energy_j, "energy_j"),
        "power_w": number(rep.power_w, "power_w"),
        "cycles": count(np.sum(np.asarray(rep.total_cycles)), "cycles"),
        "dram_bytes": number(sum(dram.values()), "dram_bytes"),
        "dram_bytes_breakdown": dram,
    }


def _kib(d: dict) -> str:
    """``"ifmap/filter/ofmap KiB"`` of a design dict, with ``shared`` for a unified SRAM."""
    sizes = "/".join(f"{d[f]:g}" for f in ("ifmap_sram_kib", "filter_sram_kib", "ofmap_sram_kib"))
    return sizes + " KiB" + (" shared" if d["unified_sram"] else "")


def _design_lines(d: dict) -> list[str]:
    dram = si(d["dram_bw_gbps"] * 1e9, "B/s") + (" per stream" if d["dram_per_stream"] else "")
    return [
        f"design    {d['name']}: {d['rows']}x{d['cols']} {d['dataflow']}, "
        f"{si(d['clock_mhz'] * 1e6, 'Hz')}, w{d['w_bits']}/a{d['a_bits']}/acc{d['acc_bits']} "
        f"bits, peak {d['peak_tops']:.3g} TOPS",
        f"memory    SRAM ifmap/filter/ofmap {_kib(d)}, DRAM {dram}, {d['memory_model']} model",
    ]


def _memo_si(unit: str):
    """:func:`si` with ``unit``, each value formatted once (layers repeat their counts)."""
    done: dict = {}

    def cached(x) -> str:
        text = done.get(x)
        if text is None:
            text = done[x] = si(x, unit)
        return text

    return cached


def format_simulation(result: dict, workload_label: str, stall: bool) -> str:
    """The human-readable report: design, per-layer table, totals."""
    d, t = result["design"], result["total"]
    header = [
        [
            "layer",
            "MACs",
            "compute",
            "vector",
            "host",
            "stall",
            "total",
            "map eff",
            "util",
            "energy",
            "DRAM",
        ],
        ["", "", "cycles", "cycles", "cycles", "cycles", "cycles", "", "", "", "traffic"],
    ]
    cyc = ("compute_cycles", "vector_cycles", "host_cycles", "stall_cycles", "total_cycles")
    count, joules, byte = _memo_si(""), _memo_si("J"), _memo_si("B")
    rows = [
        [_short(r["name"]), count(r["macs"]), *(count(r[c]) for c in cyc)]
        + [_pct(r["mapping_efficiency"], r["macs"]), _pct(r["utilization"], r["macs"])]
        + [joules(r["energy_j"]), byte(r["dram_bytes"])]
        for r in result["layers"]
    ]
    sums = [sum(r[c] for r in result["layers"]) for c in cyc]
    util = t["macs"] / max(d["rows"] * d["cols"] * t["cycles"], 1)
    rows.append(
        ["total", si(t["macs"]), *(si(s) for s in sums), "", f"{100 * util:.1f}%"]
        + [si(t["energy_j"], "J"), si(t["dram_bytes"], "B")]
    )
    mode = "DRAM stalls modelled" if stall else "no DRAM stalls (--no-stall)"
    parallel = sum(r["lowering"] == "channel_parallel" for r in result["layers"])
    lowering = f"   {parallel} grouped conv(s) channel-parallel (hw.grouped)" if parallel else ""
    kept = sum(r["output_on_chip"] for r in result["layers"])
    lowering += f"   {kept} output(s) kept on chip (hw.residency)" if kept else ""
    summary = (
        f"latency {si(t['latency_s'], 's')}   energy {si(t['energy_j'], 'J')}   "
        f"avg power {si(t['power_w'], 'W')}   area {t['area_mm2']:.3g} mm^2   "
        f"{t['tops_per_w']:.3g} TOPS/W"
    )
    lines = [
        *_design_lines(d),
        f"workload  {workload_label} ({len(result['layers'])} layers), {mode}{lowering}",
        "",
        table(header, rows),
        "",
        summary + (f"   DRAM {si(t['dram_bytes'], 'B')}" if "steady_state" in result else ""),
    ]
    if "steady_state" in result:
        s = result["steady_state"]
        kept = "weights kept on chip" if s["weights_on_chip"] else "weights do not fit on chip"
        lines.append(
            f"steady state ({kept}): latency {si(s['latency_s'], 's')}   "
            f"energy {si(s['energy_j'], 'J')}   avg power {si(s['power_w'], 'W')}   "
            f"DRAM {si(s['dram_bytes'], 'B')}"
        )
    return "\n".join(lines)


def preset_dict(config: NPUConfig, full_load_power_w) -> dict:
    """One row of ``npu-dse presets --json``."""
    d = design_dict(config, config.name)
    d.pop("base_preset")
    d["full_load_power_w"] = number(full_load_power_w, "full_load_power_w")
    return d


def format_presets(rows: list[dict]) -> str:
    """The ``npu-dse presets`` table (``*``: the three buffers are one shared pool)."""
    header = [
        ["preset", "array", "flow", "clock", "SRAM KiB", "bits", "peak", "area", "power"],
        ["", "RxC", "", "", "i/f/o", "w/a/acc", "TOPS", "mm^2", "full load"],
    ]
    body = []
    for d in rows:
        sizes = (d[f] for f in ("ifmap_sram_kib", "filter_sram_kib", "ofmap_sram_kib"))
        body.append(
            [
                d["name"],
                f"{d['rows']}x{d['cols']}",
                d["dataflow"],
                si(d["clock_mhz"] * 1e6, "Hz"),
                "/".join(f"{x:g}" for x in sizes) + ("*" if d["unified_sram"] else " "),
                f"{d['w_bits']}/{d['a_bits']}/{d['acc_bits']}",
                f"{d['peak_tops']:.3g}",
                f"{d['area_mm2']:.3g}",
                si(d["full_load_power_w"], "W"),
            ]
        )
    note = "* one shared SRAM pool" if any(d["unified_sram"] for d in rows) else ""
    return "\n".join(filter(None, [table(header, body), note]))
