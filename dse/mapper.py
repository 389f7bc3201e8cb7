"""Exact per-layer mapping selection: tiles and loop order for a fixed design.

For fixed hardware and bit widths a layer's mapping changes only its own latency ``L_l`` and
energy ``E_l`` (DRAM traffic, prologue/epilogue and leakage; compute cycles do not depend on
it), so the whole-workload loss ``f(sum E_l, sum L_l)`` is minimized, to first order, by
giving each layer the candidate that minimizes

    score_l = w_E * E_l + w_L * L_l,   (w_E, w_L) = grad f at the design's totals

among the candidates whose tiles fit the buffers (:func:`loss_weights`). Candidates are the
full grid (power-of-two tiles from the smallest legal tile to the full dimension, in every
loop order, less the candidates dominated in closed form: :func:`full_candidates`) or a
neighbourhood of a given mapping (:func:`local_candidates`). Scores come from the exact model.
"""

from __future__ import annotations

import dataclasses
import itertools

import jax
import jax.numpy as jnp
import numpy as np

from hw import mapper as hw_mapper
from hw.types import Mapping, NPUConfig, Workload
from hw.x64 import x64

from . import design as dz
from . import objective as obj

_STEPS = np.array(list(itertools.product((-2, -1, 0, 1, 2), repeat=3)), dtype=np.int64)


def _clip_tiles(config: NPUConfig, workload: Workload, tm, tk, tn):
    lo_m, lo_k, lo_n = hw_mapper.min_tiles(config, workload)
    return (
        jnp.clip(tm, lo_m, jnp.maximum(workload.gemm_m, 1)),
        jnp.clip(tk, lo_k, jnp.maximum(workload.gemm_k, 1)),
        jnp.clip(tn, lo_n, jnp.maximum(workload.gemm_n, 1)),
    )


@x64
def min_mapping(config: NPUConfig, workload: Workload) -> Mapping:
    """The smallest legal tiles, loop order ``out``: the fallback when nothing fits."""
    tm, tk, tn = hw_mapper.min_tiles(config, workload)
    return Mapping(tm, tk, tn, jnp.zeros_like(tm))


@x64
def full_candidates(config: NPUConfig, workload: Workload) -> Mapping:
    """The grid of ``hw.mapper.pruned_grid`` (the power-of-two tilings and full dimensions in
    every loop order that no other dominates: the full grid's optimum for any score that
    grows with DRAM bytes and exposed cycles), shape=(C, L); the last candidate is
    :func:`min_mapping`."""
    return _append(hw_mapper.pruned_grid(config, workload), min_mapping(config, workload))


@x64
def local_candidates(config: NPUConfig, workload: Workload, mapping: Mapping) -> Mapping:
    """Tiles within a factor of four of ``mapping``'s (rounded to powers of two, clipped to the
    legal range), in every loop order, plus the full dimensions: shape=(C, L), C = 125*3 + 4."""
    exps = [jnp.round(jnp.log2(jnp.maximum(t, 1.0))) for t in mapping_tiles(mapping)]
    step = jnp.asarray(_STEPS)[:, :, None]  # (S, 3, 1)
    tiles = [2.0 ** (e[None, :] + step[:, i]) for i, e in enumerate(exps)]  # (S, L) each
    tiles = [jnp.repeat(t, 3, axis=0) for t in tiles]  # (3 * S, L)
    order = jnp.tile(jnp.arange(3), len(_STEPS))[:, None] * jnp.ones_like(tiles[0], dtype=jnp.int64)
    tm, tk, tn = _clip_tiles(config, workload, *(t.astype(jnp.int64) for t in tiles))
    cands = Mapping(tm, tk, tn, order)
    full = [workload.gemm_m, workload.gemm_k, workload.gemm_n]
    for o in range(3):
        tm, tk, tn = _clip_tiles(config, workload, *full)
        cands = _append(cands, Mapping(tm, tk, tn, jnp.full_like(tm, o)))
    return _append(cands, min_mapping(config, workload))


def mapping_tiles(mapping: Mapping):
    return mapping.tile_m, mapping.tile_k, mapping.tile_n


def _append(cands: Mapping, one: Mapping) -> Mapping:
    return jax.tree_util.tree_map(
        lambda c, x: jnp.concatenate([c, jnp.broadcast_to(x, c.shape[1:])[None]]), cands, one
    )


@x64
def select(
    base: NPUConfig, workload: Workload, design: dz.Design, cands: Mapping, weights, step=None
) -> Mapping:
    """Per layer, the fitting candidate with the lowest ``w_E * E_l + w_L * L_l`` (exact);
    where none fits, the last candidate (the smallest tiles). ``cands``: shape=(C, L)."""
    w_e, w_l = weights

    def one(mp):
        rep = dz.evaluate(base, workload, dataclasses.replace(design, mapping=mp), step=step)
        return rep.energy_pj * 1e-12, rep.latency_s, rep.fits

    energy, latency, fits = jax.vmap(one)(cands)  # (C, L)
    score = jnp.where(fits, w_e * energy + w_l * latency, jnp.inf)
    best = jnp.where(jnp.any(fits, axis=0), jnp.argmin(score, axis=0), score.shape[0] - 1)
    return jax.tree_util.tree_map(lambda c: jnp.take_along_axis(c, best[None, :], axis=0)[0], cands)


@x64
def loss_weights(m: dict, objective: str, budgets: obj.Budgets, mu: float = 100.0):
    """``(w_E, w_L)``: the gradient of ``log objective + mu * penalty`` in the totals
    ``(E, L)`` (power as ``E / L``), kept non-negative, at the metrics ``m`` of one design."""

    # A mapping cannot change accuracy: that budget plays no part here.
    # Per-network latency budgets of a suite are left to the search (the totals stand in).
    budgets = dataclasses.replace(budgets, min_accuracy=None, network_latency_s=())

    def loss(e, lat):
        mm = dict(m, energy_j=e, latency_s=lat, power_w=e / lat, edp_js=e * lat)
        return jnp.log(obj.objective(mm, objective)) + mu * obj.penalty(mm, budgets)

    g_e, g_l = jax.grad(loss, argnums=(0, 1))(m["energy_j"], m["latency_s"])
    # A floor keeps both terms in play (ties break toward the cheaper mapping).
    g_e = jnp.maximum(g_e, 1e-3 / m["energy_j"])
    g_l = jnp.maximum(g_l, 1e-3 / m["latency_s"])
    return g_e, g_l


@x64
def map_design(
    base: NPUConfig,
    workload: Workload,
    design: dz.Design,
    objective: str,
    budgets: obj.Budgets,
    local: bool = False,
    step=None,
) -> dz.Design:
    """Remap one design for the loss: a latency-first pass, then one at the loss weights.

    With ``local`` the candidates are the neighbourhood of the design's own mapping
    (fast, for a search that already has good tiles); else the full grid. ``step``: an LLM
    step (``dse.llmstep``), applied to every evaluation.
    """
    config = dz.to_config(base, design, workload)
    if local:
        cands = local_candidates(config, workload, design.mapping)
    else:
        cands = full_candidates(config, workload)
    first = select(base, workload, design, cands, (1e-6, 1.0), step)
    design = dataclasses.replace(design, mapping=first)
    m = dz.metrics(dz.evaluate(base, workload, design, step=step))
    weights = loss_weights(m, objective, budgets)
    mapping = select(base, workload, design, cands, weights, step)
    return dataclasses.replace(design, mapping=mapping)
