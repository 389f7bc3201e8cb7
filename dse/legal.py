"""Buildable designs: snapping relaxed values to allowed ones, and sampling the space.

Hardware values snap to the nearest allowed value in log space; bit widths to the nearest
allowed width; tiles are left to ``dse.mapper``. Everything here works on populations
(leading axis ``B``) and is jit-able.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from hw.types import Mapping, Workload
from hw.x64 import x64

from .design import Design
from .space import BIT_KEYS, HW_KEYS, Space, pin_bits

CONTINUOUS_KEYS = ("rows", "cols", "sram_kib", "clock_mhz", "dram_bw_gbps")
"""Hardware keys relaxed in log space (``dataflow`` is a categorical choice)."""


def allowed(space: Space, key: str) -> jnp.ndarray:
    return jnp.asarray(getattr(space, key), dtype=jnp.float64)


@x64
def snap(values, choices, up: bool = False):
    """Nearest allowed value in log space (ties to the smaller), elementwise; with ``up`` the
    smallest allowed value not below ``values`` (the largest when none is)."""
    values = jnp.asarray(values, jnp.float64)
    if up:
        above = choices >= values[..., None] - 1e-9
        idx = jnp.where(jnp.any(above, -1), jnp.argmax(above, -1), len(choices) - 1)
        return choices[idx]
    logs = jnp.log(jnp.maximum(values, 1e-30))
    dist = jnp.abs(logs[..., None] - jnp.log(choices))
    return choices[jnp.argmin(dist, axis=-1)]


@x64
def snap_design(space: Space, workload: Workload, design: Design, bits_up: bool = False) -> Design:
    """Every hardware value and bit width of ``design`` moved to its nearest allowed value
    (widths up to the next allowed one with ``bits_up``);
    with ``per_layer_bits`` off, every layer gets the widest layer's width. Vector-only
    layers take the narrowest weight width (they have no weights); the layers of
    ``space.fixed_bits`` the model's widths."""
    hw = {k: snap(getattr(design, k), allowed(space, k)) for k in CONTINUOUS_KEYS}
    w = snap(design.w_bits, allowed(space, "w_bits"), bits_up)
    a = snap(design.a_bits, allowed(space, "a_bits"), bits_up)
    if not space.per_layer_bits:
        w = jnp.broadcast_to(jnp.max(w, axis=-1, keepdims=True), w.shape)
        a = jnp.broadcast_to(jnp.max(a, axis=-1, keepdims=True), a.shape)
    w = jnp.where(workload.gemm_count > 0, w, space.w_bits[0])
    w, a = pin_bits(space, w, a)
    df = jnp.asarray(space.dataflow)[
        jnp.argmin(
            jnp.abs(jnp.asarray(design.dataflow)[..., None] - jnp.asarray(space.dataflow)), -1
        )
    ]
    return Design(dataflow=df, w_bits=w, a_bits=a, mapping=design.mapping, **hw)


@x64
def sample(space: Space, workload: Workload, key, n: int) -> Design:
    """``n`` designs drawn uniformly from the allowed values (per-layer widths drawn per
    layer when ``per_layer_bits``), with placeholder unit tiles (map them before use)."""
    layers = workload.num_layers
    keys = jax.random.split(key, len(HW_KEYS) + len(BIT_KEYS))
    vals = {}
    for k, sub in zip(HW_KEYS, keys, strict=False):
        choices = jnp.asarray(getattr(space, k))
        vals[k] = choices[jax.random.randint(sub, (n,), 0, len(choices))]
    for k, sub in zip(BIT_KEYS, keys[len(HW_KEYS) :], strict=True):
        choices = allowed(space, k)
        shape = (n, layers) if space.per_layer_bits else (n, 1)
        vals[k] = jnp.broadcast_to(
            choices[jax.random.randint(sub, shape, 0, len(choices))], (n, layers)
        )
    ones = jnp.ones((n, layers), dtype=jnp.int64)
    mapping = Mapping(ones, ones, ones, jnp.zeros_like(ones))
    d = Design(mapping=mapping, **{k: vals[k] for k in (*HW_KEYS, *BIT_KEYS)})
    return snap_design(space, workload, d)


@x64
def from_indices(space: Space, workload: Workload, idx: np.ndarray) -> Design:
    """Designs from integer genes, shape=(B, G): one index per hardware key and, per layer
    (or once without ``per_layer_bits``), one per bit key — the encoding of the NSGA-II and
    random baselines. :func:`gene_sizes` gives each gene's number of choices."""
    idx = np.asarray(idx, dtype=np.int64)
    n, layers = idx.shape[0], workload.num_layers
    vals, col = {}, 0
    for k in HW_KEYS:
        vals[k] = np.asarray(getattr(space, k))[idx[:, col]]
        col += 1
    per = layers if space.per_layer_bits else 1
    for k in BIT_KEYS:
        choice = np.asarray(getattr(space, k), dtype=np.float64)[idx[:, col : col + per]]
        vals[k] = np.broadcast_to(choice, (n, layers))
        col += per
    ones = np.ones((n, layers), dtype=np.int64)
    mapping = Mapping(ones, ones, ones, np.zeros_like(ones))
    d = Design(mapping=mapping, **{k: jnp.asarray(vals[k]) for k in vals})
    return snap_design(space, workload, d)


def gene_sizes(space: Space, workload: Workload) -> list[int]:
    """Number of choices of each gene of :func:`from_indices`."""
    per = workload.num_layers if space.per_layer_bits else 1
    sizes = [len(getattr(space, k)) for k in HW_KEYS]
    for k in BIT_KEYS:
        sizes += [len(getattr(space, k))] * per
    return sizes


def population_size(design: Design) -> int:
    return int(np.shape(jax.tree_util.tree_leaves(design)[0])[0])
