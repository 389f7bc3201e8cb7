"""A suite of networks searched for one chip: each network keeps its own mappings and widths.

The networks' layers are concatenated into one workload (layer ``i`` of network ``net`` is
named ``net/<its name>``), so a design's per-layer widths and tiles are per network and its
hardware is shared. What a suite changes is the objective: the raw EDPs (or energies,
latencies) of different networks differ by orders of magnitude, so each network's objective
is divided by its value on the space's base design before the weighted sum,

    suite objective = sum_n weight_n * objective_n(design) / objective_n(base design),

(weights sum to 1: the base design scores 1). Each network's latency, energy, power and EDP are
metrics of their own (``latency_s@net``, ...); latency budgets apply per network
(:class:`dse.objective.Budgets` ``network_latency_s``), power and area to the chip.

>>> from hw import layers
>>> from dse.space import Space
>>> space = Space.from_dict({"rows": [16, 32]})
>>> a = layers.workload([layers.gemm("g", m=64, k=64, n=64)])
>>> b = layers.workload([layers.gemm("g", m=8, k=512, n=512)])
>>> suite, wl = make_suite(space, {"a": a, "b": b}, {"a": 0.5, "b": 0.5}, "edp")
>>> wl.names, suite.sizes
(('a/g', 'b/g'), (1, 1))
"""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp
import numpy as np

from hw import cost
from hw.types import LayerBits, Workload
from hw.x64 import x64

from .space import Space, pinned_base

_PARTS = ("latency_s", "energy_j", "power_w", "edp_js")


@dataclasses.dataclass(frozen=True)
class Suite:
    """Static description of a suite (hashable: a jit static argument)."""

    names: tuple[str, ...]  # networks, in workload order
    sizes: tuple[int, ...]  # layers per network (contiguous in the workload)
    weights: tuple[float, ...]  # shares, summing to 1
    reference: tuple[float, ...]  # each network's objective on the base design
    objective: str  # edp, energy or latency

    def segments(self) -> np.ndarray:
        """One-hot ``(N, L)``: layer ``l`` belongs to network ``n``."""
        out = np.zeros((len(self.sizes), sum(self.sizes)))
        start = 0
        for n, size in enumerate(self.sizes):
            out[n, start : start + size] = 1.0
            start += size
        return out


def metric_key(part: str, network: str) -> str:
    """The metric name of one network's figure, e.g. ``latency_s@resnet18``."""
    return f"{part}@{network}"


@x64
def network_metrics(suite: Suite, latency_s, energy_pj) -> dict:
    """Per-network metrics and ``suite_objective`` from per-layer ``(..., L)`` latency and
    energy (exact or smooth)."""
    seg = jnp.asarray(suite.segments())
    lat = jnp.einsum("...l,nl->...n", latency_s, seg)
    energy = jnp.einsum("...l,nl->...n", energy_pj, seg) * 1e-12
    parts = {"latency_s": lat, "energy_j": energy, "power_w": energy / lat, "edp_js": energy * lat}
    out = {
        metric_key(p, name): parts[p][..., n] for n, name in enumerate(suite.names) for p in _PARTS
    }
    key = {"edp": "edp_js", "energy": "energy_j", "latency": "latency_s"}[suite.objective]
    ratio = parts[key] / jnp.asarray(suite.reference)
    out["suite_objective"] = jnp.sum(ratio * jnp.asarray(suite.weights), axis=-1)
    return out


def combine(workloads: dict[str, Workload]) -> Workload:
    """The networks' layers one after another, named ``network/layer``."""
    fields = [f.name for f in dataclasses.fields(Workload) if f.name not in ("names", "kinds")]
    arrays = {
        f: np.concatenate([np.asarray(getattr(w, f)) for w in workloads.values()]) for f in fields
    }
    names = tuple(f"{net}/{name}" for net, w in workloads.items() for name in w.names)
    kinds = tuple(k for w in workloads.values() for k in w.kinds)
    return Workload(**arrays, names=names, kinds=kinds)


def _weights(names, weights: dict[str, float] | None) -> tuple[float, ...]:
    if weights is None:
        return tuple(1.0 / len(names) for _ in names)
    if set(weights) != set(names):
        raise ValueError(f"suite weights must name every network ({', '.join(names)})")
    values = [weights[n] for n in names]
    if not all(isinstance(v, int | float) and math.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"suite weights must be positive numbers, got {values}")
    total = sum(values)
    return tuple(float(v) / total for v in values)


def _base_reports(space: Space, workloads: dict[str, Workload], combined: Workload) -> list:
    """Each network's exact report on the base design (``dse.design.base_design``): one chip,
    whose multipliers are widened for the layers of ``space.fixed_bits`` in any network, and
    those layers at the model's widths."""
    config, bits = pinned_base(space.base_config(), combined, space.fixed_bits)
    out, start = [], 0
    for w in workloads.values():
        part = None
        if bits is not None:
            stop = start + w.num_layers
            part = LayerBits(bits.w_bits[start:stop], bits.a_bits[start:stop])
        out.append(cost.evaluate(config, w, layer_bits=part))
        start += w.num_layers
    return out


@x64
def make_suite(
    space: Space,
    workloads: dict[str, Workload],
    weights: dict[str, float] | None,
    objective: str,
) -> tuple[Suite, Workload]:
    """The suite of ``workloads`` (name -> workload) and its combined workload; each network's
    reference is its objective on the space's base design with the exact mapper's tiling."""
    if len(workloads) < 2:
        raise ValueError(f"a suite needs at least two networks, got {len(workloads)}")
    names = tuple(workloads)
    bad = [n for n in names if not n or "/" in n or "@" in n]
    if bad:
        raise ValueError(f"suite network name {bad[0]!r}: must be non-empty without '/' or '@'")
    shares = _weights(names, weights)
    key = {"edp": "edp_js", "energy": "energy_j", "latency": "latency_s"}.get(objective)
    if key is None:
        raise ValueError(f"objective must be edp, energy or latency, got {objective!r}")
    total = {"edp_js": "edp_js", "energy_j": "total_energy_j", "latency_s": "total_latency_s"}
    sizes = tuple(w.num_layers for w in workloads.values())
    combined = combine(workloads)
    reports = _base_reports(space, workloads, combined)
    reference = tuple(float(getattr(r, total[key])) for r in reports)
    return Suite(names, sizes, shares, reference, objective), combined
