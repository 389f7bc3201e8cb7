"""The ``sensitivity`` use case: what a design's latency, energy, power, area and EDP answer to
each hardware value and each layer's widths, as an architect reads a tornado chart.

Each figure is ``d log metric / d log parameter`` (``-1``: doubling the parameter halves the
metric), from ``jax.jacfwd`` of the smooth model at ``temperature`` (``dse.sensitivity``; the
smoothing is relative, so the gradient agrees with finite differences of the same model, a
check ``tests/test_sensitivity.py`` runs), beside the exact model's change over one allowed step
(a doubling of a hardware value, one more bit of a width, one less at 16 bits). The mapping
(tiles, loop orders) is the one ``simulate`` uses, held fixed.

>>> from hw import layers
>>> from npu_dse import resolve_design
>>> wl = layers.workload([layers.gemm("g", m=4096, k=256, n=256)])
>>> s = sensitivity(wl, resolve_design(preset="edge-tpu-like"))
>>> s.layers[0]["bottleneck"]
'dram'
>>> g, e = s.gradient["latency_s"], s.exact["latency_s"]
>>> round(g["dram_bw_gbps"], 2), round(e["dram_bw_gbps"], 2)
(-1.0, -1.0)
"""

from __future__ import annotations

import dataclasses

import numpy as np

from dse import design as dz
from dse import sensitivity as sens
from dse.legal import CONTINUOUS_KEYS
from dse.space import Space
from hw.bounds import InputError
from hw.types import NPUConfig, Workload
from hw.x64 import x64
from npu_dse.designs import DesignFile
from npu_dse.simulate import simulate

DEFAULT_TEMPERATURE = 0.01
"""The smooth model's temperature: the last one the gradient search anneals to."""

TEMPERATURE_RANGE = (1e-3, 1.0)
"""Temperatures accepted (relative smoothing: 1 is very smooth, 1e-3 nearly exact)."""

BOTTLENECKS = ("compute", "dram", "vector", "host")
"""What bounds a layer: the array, DRAM transfers, the vector unit or the host fallback."""

_UNITS = {
    "rows": "PEs",
    "cols": "PEs",
    "sram_kib": "KiB",
    "clock_mhz": "MHz",
    "dram_bw_gbps": "GB/s",
}


@dataclasses.dataclass(frozen=True)
class Sensitivity:
    """Sensitivities of one workload on one design (every figure a Python float)."""

    design: str
    temperature: float
    hardware: dict  # key -> its value in the design
    totals: dict  # metric -> the exact model's value
    gradient: dict  # metric -> parameter -> d log metric / d log parameter (smooth model)
    exact: dict  # metric -> parameter -> exact model's change over one allowed step
    layers: list  # per layer: name, kind, bottleneck, share of latency, widths, sensitivities

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def ranked(self, metric: str) -> list[tuple[str, float, float]]:
        """``(parameter, gradient, exact step)`` by decreasing size of the gradient."""
        g, e = self.gradient[metric], self.exact[metric]
        return sorted(((p, g[p], e[p]) for p in g), key=lambda r: -abs(r[1]))


def _bottleneck(rep, i: int) -> str:
    if bool(rep.on_host[i]):
        return "host"
    cycles = (float(rep.compute_cycles[i]), float(rep.dram_cycles[i]), float(rep.vector_cycles[i]))
    return BOTTLENECKS[int(np.argmax(cycles))]


@x64
def sensitivity(
    workload: Workload,
    design: DesignFile | NPUConfig,
    *,
    temperature: float = DEFAULT_TEMPERATURE,
    base: str = "",
) -> Sensitivity:
    """Sensitivities of ``workload`` on ``design`` (validated as :func:`simulate` validates).

    Raises ``hw.bounds.InputError`` (one line) for a bad design, workload or temperature."""
    lo, hi = TEMPERATURE_RANGE
    if not (isinstance(temperature, (int, float)) and lo <= temperature <= hi):
        raise InputError(f"temperature must be a number in [{lo:g}, {hi:g}], got {temperature!r}")
    sim = simulate(workload, design, stall=True, base=base)
    config = sim.config
    space = Space.from_dict({"base": sim.base}, base_design=config)
    d = dz.base_design(space, workload, sim.mapping)
    if sim.layer_bits is not None:
        w, a = sim.layer_bits
        d = dataclasses.replace(d, w_bits=np.asarray(w, float), a_bits=np.asarray(a, float))
    names = sens.param_names(workload)
    grad = np.asarray(sens.gradient(config, workload, d, float(temperature)))
    step = np.asarray(sens.exact_step(config, workload, d))
    if not (np.all(np.isfinite(grad)) and np.all(np.isfinite(step))):
        raise RuntimeError("sensitivity: a non-finite derivative (please report this design)")

    def table(m):
        return {
            metric: {p: float(m[i, j]) for j, p in enumerate(names)}
            for i, metric in enumerate(sens.METRICS)
        }

    gradient, exact = table(grad), table(step)
    rep = sim.report
    latency = np.asarray(rep.latency_s, float)
    total_latency = float(latency.sum())
    layers = []
    for i, name in enumerate(workload.names):
        w_key, a_key = f"w_bits[{name}]", f"a_bits[{name}]"
        layers.append(
            {
                "name": name,
                "kind": workload.kinds[i],
                "bottleneck": _bottleneck(rep, i),
                "latency_share": float(latency[i] / total_latency) if total_latency > 0 else 0.0,
                "w_bits": float(np.asarray(d.w_bits)[i]),
                "a_bits": float(np.asarray(d.a_bits)[i]),
                "gradient": {
                    m: {"w_bits": gradient[m][w_key], "a_bits": gradient[m][a_key]}
                    for m in sens.METRICS
                },
                "exact": {
                    m: {"w_bits": exact[m][w_key], "a_bits": exact[m][a_key]} for m in sens.METRICS
                },
            }
        )
    return Sensitivity(
        design=sim.base,
        temperature=float(temperature),
        hardware={k: float(np.asarray(getattr(d, k))) for k in CONTINUOUS_KEYS},
        totals={
            "latency_s": float(rep.total_latency_s),
            "energy_j": float(rep.total_energy_j),
            "power_w": float(rep.power_w),
            "area_mm2": float(rep.area_mm2),
            "edp_js": float(rep.edp_js),
        },
        gradient=gradient,
        exact=exact,
        layers=layers,
    )


_SHORT = {"latency_s": "latency", "energy_j": "energy", "power_w": "power", "area_mm2": "area"}
_SHORT["edp_js"] = "EDP"


def format_sensitivity(s: Sensitivity, workload_name: str, max_layers: int = 40) -> str:
    """The table ``npu-dse sensitivity`` prints."""
    metrics = sens.METRICS
    head = "".join(f"{_SHORT[m]:>17}" for m in metrics)
    lines = [
        f"{workload_name} on {s.design}: d log metric / d log parameter, smooth model at "
        f"temperature {s.temperature:g} (in brackets: the exact model over one step, x2 for "
        "hardware, +1 bit for widths)",
        "",
        f"{'parameter':<22}{'value':>10}" + head,
    ]
    for key in CONTINUOUS_KEYS:
        cells = "".join(
            f"{s.gradient[m][key]:>+8.3f} ({s.exact[m][key]:+.2f})".rjust(17) for m in metrics
        )
        value = f"{s.hardware[key]:g} {_UNITS[key]}"
        lines.append(f"{key:<22}{value:>10}" + cells)
    lines += [
        "",
        f"{'layer':<22}{'kind':>10}{'bound':>9}{'latency':>9}{'w,a bits':>10}"
        f"{'dlat/dw':>10}{'dE/dw':>10}{'dlat/da':>10}{'dE/da':>10}",
    ]
    shown = sorted(s.layers, key=lambda r: -r["latency_share"])[:max_layers]
    for r in shown:
        g = r["gradient"]
        bits = f"{r['w_bits']:g},{r['a_bits']:g}"
        lines.append(
            f"{r['name'][:21]:<22}{r['kind']:>10}{r['bottleneck']:>9}"
            f"{100 * r['latency_share']:>8.1f}%{bits:>10}"
            f"{g['latency_s']['w_bits']:>+10.3f}{g['energy_j']['w_bits']:>+10.3f}"
            f"{g['latency_s']['a_bits']:>+10.3f}{g['energy_j']['a_bits']:>+10.3f}"
        )
    if len(s.layers) > len(shown):
        lines.append(f"... {len(s.layers) - len(shown)} more layers (--json lists every one)")
    top = s.ranked("edp_js")[:3]
    lines += [
        "",
        "largest on EDP: "
        + ", ".join(f"{p} {g:+.3f}" for p, g, _ in top)
        + f" (EDP {s.totals['edp_js']:.4g} J*s)",
    ]
    return "\n".join(lines)


def plot_tornado(s: Sensitivity, out_dir, metric: str = "edp_js", top: int = 20) -> list:
    """A tornado chart of the ``top`` largest sensitivities of ``metric`` (PNG and SVG)."""
    from matplotlib.figure import Figure

    from npu_dse.plots import _save

    rows = s.ranked(metric)[:top][::-1]
    fig = Figure(figsize=(7.0, 0.32 * len(rows) + 1.4), layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(len(rows))
    g = np.array([r[1] for r in rows])
    e = np.array([r[2] for r in rows])
    ax.barh(y, g, color=np.where(g < 0, "tab:blue", "tab:red"), label="gradient (smooth)")
    ax.scatter(e, y, marker="|", s=120, color="black", label="exact, one step", zorder=3)
    ax.set_yticks(y, [r[0] for r in rows], fontsize=8)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel(f"d log {_SHORT[metric]} / d log parameter")
    ax.set_title(f"{_SHORT[metric]} sensitivities on {s.design}", fontsize=10)
    ax.legend(fontsize=8, loc="best")
    return _save(fig, out_dir, f"sensitivity_{_SHORT[metric].lower()}")
