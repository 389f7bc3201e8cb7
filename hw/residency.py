"""What stays on chip: activations from one layer to the next, and weights across inferences.

**Edges.** A :class:`~hw.types.Workload` is a chain (``hw.schedule``): layer ``j + 1`` reads
layer ``j``'s output. The workload names no other edge, so a residual ``add`` reads its
second operand from DRAM, and so does a layer whose input is not its predecessor's output
(ResNet's first conv of a block after the downsample conv); that is the assumption here too.
An edge ``j -> j+1`` counts as producer -> consumer only where the consumer's input has the
producer's element count (``ifmap_{j+1} == ofmap_j``).

**Cross-layer residency** (``NPUConfig.cross_layer``). Fused edges (``hw.schedule``) already
pass tile by tile through SRAM. Any other edge ``j -> j+1`` between two NPU layers keeps the
whole tensor on chip where it fits beside what the layers' own tiles need, decided in closed
form per boundary:

    bytes_j    = ofmap_j * max(a_j, a_{j+1}) / 8
    free_l     = 1024 (I + F + O) - 2 p_l (a_l + w_l + o_l)        unified SRAM
                 1024 I - 2 p_l a_l                                split: the ifmap buffer
    need_l     = bytes of the candidate edge into l's fused group + of the edge out of it
    resident_j = candidate_j  and  need_l <= free_l  for every layer l of the fused groups
                 of j and of j + 1

with ``I, F, O`` the buffers in KiB, ``a, w, o`` the layer's input, weight and output tile
bytes (``hw.memory.tile_bytes``) and ``p_l`` the groups side by side of a channel-parallel
layer (``hw.grouped``; 1 otherwise). With split buffers the producer drains its output tiles
through the ofmap buffer into the ifmap buffer, where the consumer reads it. A fused group
(a GEMM and the elementwise layers fused after it) holds its input and its output tensor
while any of its layers runs; ``need_l`` counts both whether or not they end up resident, so
whatever is decided, no layer holds more than ``free_l``. The tiles are the mapper's
(``hw.mapper``), chosen before residency; the resident tensors' own tile buffers are still
counted (a bound on the room, not an optimum).

A resident edge removes the consumer's DRAM read of that operand and the producer's DRAM
write, unless a later layer still reads a tensor of that size from DRAM (a residual's skip
operand, :func:`still_written`); such an output is written once, as before. The prologue
load of a resident input and the epilogue write-back of a resident output are not exposed.

**Weights across inferences** (``steady_state``). In a stream of inferences the weights of
every NPU layer stay in the buffers when they fit together with each layer's tiles and
resident activations:

    W          = sum over NPU layers of filter_elems * w_l / 8
    fit        = W + held_l <= free_l  for every layer               unified SRAM
                 W <= 1024 F - 2 p_l w_l  for every layer             split: the filter buffer

(``held_l``: the resident tensors layer ``l`` actually holds.) Then the steady state reads no
weights from DRAM; the first (cold) inference reads them as a single inference does. Where
they do not fit, the steady state is the cold figure.

All decisions are ``jnp`` comparisons on the exact byte counts (no Python branch on a traced
value), made in exact arithmetic like ``hw.grouped``'s pick: under ``Arith.smooth`` the model
stays differentiable through the traffic each decision selects.

>>> import numpy as np
>>> [b.tolist() for b in group_bounds(np.array([False, True, False, True, True]))]
[[0, 0, 2, 2, 2], [1, 1, 4, 4, 4]]
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from hw import grouped, memory
from hw.arith import EXACT
from hw.types import LayerBits, Mapping, NPUConfig, Workload


def group_bounds(fused) -> tuple[jax.Array, jax.Array]:
    """First and last layer of each layer's fused group, shape=(L,) each (``fused`` may be
    traced: ``hw.cost.evaluate`` passes it in as a mask).

    ``fused[i]``: layer ``i`` reads layer ``i-1``'s output tile by tile (``hw.schedule``).
    """
    fused = jnp.asarray(fused, dtype=bool)
    n = fused.shape[-1]
    index = jnp.arange(n)
    starts = (index == 0) | ~fused
    first = jax.lax.cummax(jnp.where(starts, index, 0), axis=0)
    ends = jnp.concatenate([starts[1:], jnp.ones((1,), dtype=bool)])
    last = jax.lax.cummin(jnp.where(ends, index, n - 1), axis=0, reverse=True)
    return first, last


def _next(x, fill):
    """``x[j + 1]`` along the last axis, ``fill`` at the end."""
    return jnp.concatenate([x[..., 1:], jnp.full_like(x[..., :1], fill)], axis=-1)


def _prev(x, fill):
    """``x[j - 1]`` along the last axis, ``fill`` at the start."""
    return jnp.concatenate([jnp.full_like(x[..., :1], fill), x[..., :-1]], axis=-1)


def free_bytes(config: NPUConfig, mapping: Mapping, bits: LayerBits, p):
    """Bytes of the buffer holding resident activations left by each layer's tiles,
    shape=(L,): the whole SRAM (unified) or the ifmap buffer (split) (module docs)."""
    a, w, o = (p * t for t in memory.tile_bytes(config, mapping, bits))
    if config.unified_sram:
        total = config.ifmap_sram_kib + config.filter_sram_kib + config.ofmap_sram_kib
        return 1024.0 * total - 2.0 * (a + w + o)
    return 1024.0 * config.ifmap_sram_kib - 2.0 * a


def output_bytes(workload: Workload, bits: LayerBits):
    """``bytes_j``: layer ``j``'s output at the wider of its width and its consumer's."""
    a = jnp.broadcast_to(jnp.asarray(bits.a_bits, dtype=float), jnp.shape(workload.ofmap_elems))
    return workload.ofmap_elems * jnp.maximum(a, _next(a, 0.0)) / 8.0


def candidates(config: NPUConfig, workload: Workload, host, fused):
    """Edges ``j -> j+1`` that may stay on chip: residency on, both layers on the NPU, not
    fused, and the consumer's input the producer's output (``ifmap_{j+1} == ofmap_j``)."""
    same = _next(workload.ifmap_elems, -1) == workload.ofmap_elems
    if not (config.cross_layer and config.memory_model == "tiled"):  # static
        return jnp.zeros(jnp.shape(same), dtype=bool)
    npu = ~jnp.asarray(host, dtype=bool)
    fused = jnp.asarray(fused, dtype=bool)
    # npu[j] & npu[j + 1] & ~fused[j + 1], False for the last layer
    return npu & _next(npu, False) & ~_next(fused, True) & same


def held_bytes(edge_bytes, fused):
    """Bytes each layer holds on chip for edges ``edge_bytes`` (0 where not kept): the
    tensor into its fused group and the one out of it, shape=(L,)."""
    first, last = group_bounds(fused)
    into = jnp.where(first > 0, jnp.take(edge_bytes, jnp.maximum(first - 1, 0), axis=-1), 0.0)
    return into + jnp.take(edge_bytes, last, axis=-1)


def resident_outputs(config, workload, mapping, bits, host, fused, p):
    """``resident_j``: layer ``j``'s output stays on chip for layer ``j + 1``, shape=(L,)."""
    cand = candidates(config, workload, host, fused)
    need = held_bytes(jnp.where(cand, output_bytes(workload, bits), 0.0), fused)
    ok = need <= free_bytes(config, mapping, bits, p)
    first, last = group_bounds(fused)
    # Every layer of a group fits: no misfit between its first and last layer (a running count
    # of misfits, read at both ends: linear in the layer count).
    misfits = jnp.cumsum(jnp.where(ok, 0, 1), axis=-1)
    before = jnp.where(first > 0, jnp.take(misfits, jnp.maximum(first - 1, 0), axis=-1), 0)
    layer_ok = jnp.take(misfits, last, axis=-1) - before == 0
    return cand & layer_ok & _next(layer_ok, False)


def still_written(workload: Workload, in_chip, resident):
    """Resident outputs that a later, non-adjacent layer still reads from DRAM: a tensor of
    that element count read by layer ``a > j + 1`` (a residual's skip operand, or an input
    that is not the previous layer's output), shape=(L,)."""
    prev_out = _prev(workload.ofmap_elems, 0)
    dram_in = workload.ifmap_elems - jnp.where(in_chip, prev_out, 0)
    last_reader = jnp.vectorize(_last_reader, signature="(n),(n)->(n)")
    later = last_reader(dram_in, workload.ofmap_elems) > np.arange(np.shape(resident)[-1]) + 1
    return resident & later


def _last_reader(dram_in, out):
    """For each ``out[j]``, the last layer ``a`` whose DRAM input has that element count
    (``dram_in[a] == out[j]``), or -1: sorted once by (count, layer), then searched, so that
    it stays ``O(L log L)`` in the layer count."""
    n = dram_in.shape[-1]
    order = jnp.lexsort((jnp.arange(n), dram_in))
    values = dram_in[order]
    pos = jnp.clip(jnp.searchsorted(values, out, side="right") - 1, 0, n - 1)
    return jnp.where(values[pos] == out, order[pos], -1)


def weights_fit(config, workload, mapping, bits, host, p, held):
    """True (scalar) where every NPU layer's weights stay on chip with each layer's tiles and
    the ``held`` resident activations (module docs)."""
    npu = (workload.gemm_count > 0) & ~jnp.asarray(host)
    weights = jnp.sum(jnp.where(npu, workload.filter_elems * bits.w_bits / 8.0, 0.0), axis=-1)
    if config.unified_sram:
        room = free_bytes(config, mapping, bits, p) - held
    else:
        w_tile = memory.tile_bytes(config, mapping, bits)[1]
        room = 1024.0 * config.filter_sram_kib - 2.0 * p * w_tile
    return jnp.all(jnp.where(npu, weights <= room, True), axis=-1)


def plan(config, workload, mapping, bits, host, fused, channel_parallel, steady_state):
    """``(output_resident, input_resident, output_unwritten, weights_on_chip)``: the decisions
    of the module docs, shape=(L,) each and a scalar; ``steady_state`` False: no weights kept.

    ``channel_parallel`` (``hw.grouped.lower``) sets ``p_l``, the tile sets a layer holds.
    """
    m, k, n = workload.gemm_m, workload.gemm_k, workload.gemm_n
    side = grouped.groups_side_by_side(m, k, n, config.cols, config.dataflow, EXACT)
    p = jnp.where(channel_parallel, side, 1.0)
    if config.cross_layer and config.memory_model == "tiled":  # static
        resident = resident_outputs(config, workload, mapping, bits, host, fused, p)
        input_resident = _prev(resident, False)
        in_chip = input_resident | jnp.asarray(fused)
        unwritten = resident & ~still_written(workload, in_chip, resident)
    else:  # no activation stays between layers: nothing to plan
        resident = jnp.zeros(jnp.shape(p), dtype=bool)
        input_resident = unwritten = resident
    if not steady_state or config.memory_model != "tiled":
        return resident, input_resident, unwritten, jnp.asarray(False)
    held = held_bytes(jnp.where(resident, output_bytes(workload, bits), 0.0), fused)
    return (
        resident,
        input_resident,
        unwritten,
        weights_fit(config, workload, mapping, bits, host, p, held),
    )
