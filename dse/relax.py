"""The relaxed design space and the smooth loss that the gradient search minimizes.

Search parameters (:class:`Params`, one start; a population adds a leading axis):

- hardware values (``rows``, ``cols``, ``sram_kib``, ``clock_mhz``, ``dram_bw_gbps``) as
  ``log2`` inside the box of their allowed values (a fixed value is a zero-width box);
- per-layer tiles as ``log2`` of ``(tile_m, tile_k, tile_n)`` inside ``[0, log2 dim]``, floored
  smoothly at the smallest legal tile of the current array;
- per-layer loop order as three logits: the layer's latency and energy are the softmax-weighted
  mix of its three loop orders, each evaluated by the smooth model;
- per-layer weight and activation widths as real numbers between the narrowest and widest
  allowed width (one pair for the network when ``per_layer_bits`` is off);
- the dataflow is not relaxed: each start keeps one, and starts are spread over the allowed
  dataflows (enumeration alongside the search).

The loss of one start is

    log objective(E, L) + mu * sum_b hinge(log(value_b / limit_b))**2
                        + mu * sum_l hinge(-slack_l / capacity)**2

where, for EDP, half the starts minimize ``log E + log L`` and the others
``log E + a log L`` with ``a`` in ``EDP_EXPONENTS`` (points along the latency-energy front, for
the Pareto front and its hypervolume; the best design is still chosen by exact EDP).

with totals ``E``, ``L`` from ``hw.evaluate`` in smooth arithmetic (``Arith.smooth(t)``) and
the slack of the double-buffered tiles in their buffers (``hw.memory.capacity_slack``).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from hw import cost, memory
from hw.arith import Arith
from hw.types import LayerBits, Mapping, pytree_dataclass
from hw.x64 import x64

from . import accuracy, llmstep
from . import design as dz
from . import objective as obj
from .legal import CONTINUOUS_KEYS
from .problem import Problem
from .space import Space, pin_bits
from .suite import network_metrics

MU = 50.0
"""Weight of the squared-hinge penalties."""


@pytree_dataclass
class Params:
    """Relaxed parameters of one start (see the module docstring)."""

    hw_log2: dict  # key -> log2 value, for CONTINUOUS_KEYS
    tiles_log2: jnp.ndarray  # shape=(L, 3)
    order_logits: jnp.ndarray  # shape=(L, 3)
    w_bits: jnp.ndarray  # shape=(L,) or (1,)
    a_bits: jnp.ndarray  # shape=(L,) or (1,)


@x64
def bounds(problem: Problem) -> tuple[Params, Params]:
    """Lower and upper corners of the box, as Params (one start)."""
    space, wl = problem.space, problem.workload
    n = wl.num_layers
    nb = n if space.per_layer_bits else 1
    dims = np.log2(np.maximum(np.stack([wl.gemm_m, wl.gemm_k, wl.gemm_n], -1), 1)).astype(float)

    def corner(pick, tiles, logit):
        return Params(
            hw_log2={k: np.log2(pick(getattr(space, k))) for k in CONTINUOUS_KEYS},
            tiles_log2=tiles,
            order_logits=np.full((n, 3), logit),
            w_bits=np.full(nb, pick(space.w_bits)),
            a_bits=np.full(nb, pick(space.a_bits)),
        )

    return corner(min, np.zeros((n, 3)), -10.0), corner(max, dims, 10.0)


@x64
def project(params: Params, lo: Params, hi: Params) -> Params:
    return jax.tree_util.tree_map(jnp.clip, params, lo, hi)


@x64
def init(problem: Problem, key, n: int) -> Params:
    """``n`` starts drawn uniformly in the box (log space), with zero loop-order logits."""
    lo, hi = bounds(problem)
    leaves, tree = jax.tree_util.tree_flatten(lo)
    keys = jax.random.split(key, len(leaves))
    his = jax.tree_util.tree_leaves(hi)
    drawn = [
        lo_ + (hi_ - lo_) * jax.random.uniform(k, (n, *np.shape(lo_)))
        for k, lo_, hi_ in zip(keys, leaves, his, strict=True)
    ]
    params = jax.tree_util.tree_unflatten(tree, drawn)
    return dataclasses.replace(params, order_logits=jnp.zeros_like(params.order_logits))


def start_dataflows(space: Space, n: int) -> np.ndarray:
    """The dataflow of each start: the allowed ones in turn."""
    return np.asarray(space.dataflow, dtype=np.int64)[np.arange(n) % len(space.dataflow)]


def to_design(problem: Problem, params: Params, dataflow, order=None) -> dz.Design:
    """The (real-valued) design of one start; ``order`` defaults to the logits' argmax."""
    wl = problem.workload
    hw_vals = {k: 2.0 ** params.hw_log2[k] for k in CONTINUOUS_KEYS}
    n = wl.num_layers
    w, a = pin_bits(
        problem.space, jnp.broadcast_to(params.w_bits, (n,)), jnp.broadcast_to(params.a_bits, (n,))
    )
    tiles = 2.0**params.tiles_log2
    if order is None:
        order = jnp.argmax(params.order_logits, axis=-1)
    mapping = Mapping(tiles[:, 0], tiles[:, 1], tiles[:, 2], order)
    return dz.Design(dataflow=dataflow, w_bits=w, a_bits=a, mapping=mapping, **hw_vals)


def smooth_metrics(problem: Problem, params: Params, dataflow, ar: Arith):
    """Smooth whole-workload metrics of one start and its tile-capacity penalty."""
    wl, base = problem.workload, problem.base
    d = to_design(problem, params, dataflow)
    config = dz.to_config(base, d, wl, ar)
    bits = LayerBits(w_bits=d.w_bits, a_bits=d.a_bits)
    if problem.llm is not None:  # widths per operand class, residency (dse.llmstep)
        config, wl, bits = llmstep.apply(config, wl, d.w_bits, d.a_bits, problem.llm, ar)
    lo = cost.min_tiles(config, wl)
    tiles = [jnp.maximum(t, lo_) for t, lo_ in zip(_tiles(d.mapping), lo, strict=True)]
    probs = jax.nn.softmax(params.order_logits, axis=-1)
    lat, energy = 0.0, 0.0
    for o in range(3):
        mp = Mapping(*tiles, jnp.full(wl.gemm_m.shape, o))
        rep = cost.evaluate(config, wl, mp, ar=ar, layer_bits=bits)
        lat = lat + probs[:, o] * rep.latency_s
        energy = energy + probs[:, o] * rep.energy_pj * 1e-12
    lat_s, energy_j = jnp.sum(lat), jnp.sum(energy)
    m = {
        "latency_s": lat_s,
        "energy_j": energy_j,
        "power_w": energy_j / lat_s,
        "edp_js": energy_j * lat_s,
        "area_mm2": rep.area_mm2,
    }
    if problem.suite is not None:
        m |= network_metrics(problem.suite, lat, energy * 1e12)
    if problem.accuracy is not None:
        m["accuracy"] = accuracy.predict(problem.accuracy, d.w_bits, d.a_bits)
    slack = memory.capacity_slack(config, Mapping(*tiles, mp.loop_order), bits)
    cap = 1024.0 * d.sram_kib
    gemm = wl.gemm_count > 0
    fit_pen = sum(jnp.sum(jnp.where(gemm, jnp.maximum(-s / cap, 0.0) ** 2, 0.0)) for s in slack)
    return m, fit_pen


EDP_EXPONENTS = (1.0, 1.0, 1.0, 1.0, 0.5, 2.0, 0.25, 4.0)
"""Latency exponents ``a`` of the starts' EDP objectives ``E * L**a``, in turn: half the starts
minimize EDP itself, the others points along the latency-energy front around it."""


def start_exponents(space: Space, objective: str, n: int) -> np.ndarray:
    """Each start's latency exponent (1 for every start unless the objective is EDP)."""
    if objective != "edp":
        return np.ones(n)
    block = np.arange(n) // len(space.dataflow)
    return np.asarray(EDP_EXPONENTS)[block % len(EDP_EXPONENTS)]


def loss(problem: Problem, params: Params, dataflow, ar: Arith, exponent=1.0, budgets=None):
    """The loss of one start (see the module docstring); for EDP, ``log E + exponent log L``.
    ``budgets`` (default ``problem.budgets``) may be traced: a jitted loss then serves every
    limit."""
    budgets = problem.budgets if budgets is None else budgets
    m, fit_pen = smooth_metrics(problem, params, dataflow, ar)
    if problem.objective == "edp" and problem.suite is None:
        value = jnp.log(m["energy_j"]) + exponent * jnp.log(m["latency_s"])
    else:
        value = jnp.log(obj.objective(m, problem.objective))
    return value + MU * (obj.penalty(m, budgets) + fit_pen)


def _tiles(mapping: Mapping):
    return mapping.tile_m, mapping.tile_k, mapping.tile_n
