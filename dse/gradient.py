"""Gradient search: optax over many relaxed starts, legalized and re-evaluated exactly.

``run`` is ``init`` + (``steps`` + ``legalize``) per chunk + ``polish``:

1. ``init``: ``starts`` points drawn uniformly in the box (``dse.relax``), the dataflows of
   the space spread over them; Adam state.
2. ``steps``: ``legalize_every`` Adam steps on the smooth loss of every start at once (vmap;
   the population is sharded over all devices with ``jax.sharding``), projected back into the
   box. The temperature of the smooth arithmetic falls geometrically from
   ``temperature_start`` to ``temperature_end`` over the run (one compilation).
3. ``legalize``: every start snapped to allowed values (``dse.legal``), its tiles rounded and
   refined among their neighbours in every loop order by the exact mapper (``dse.mapper``),
   and the whole population evaluated exactly; ``refine`` remaps the best ``polish_top`` of
   them on the full tile grid. The best feasible exact design is kept.
4. ``polish``: the best design's hardware neighbours (one allowed step up or down per searched
   parameter), remapped on the full tile grid and evaluated exactly; repeated from the new
   best while it improves (at most ``polish_rounds`` times).

Every reported number comes from the exact model. With ``checkpoint`` the state is written
after each chunk and a rerun with the same arguments resumes where it stopped, with the same
final answer.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import pickle
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from hw.arith import Arith

from . import design as dz
from . import legal, mapper, relax
from .relax import Problem
from .result import Recorder, SearchResult
from .space import BIT_KEYS, HW_KEYS

log = logging.getLogger(__name__)
CHECKPOINT_FILE = "gradient_state.pkl"


@dataclasses.dataclass(frozen=True)
class GradientSettings:
    """Knobs of the gradient search (defaults suit networks of tens of layers)."""

    starts: int = 128
    steps: int = 480
    legalize_every: int = 40
    learning_rate: float = 0.1
    temperature_start: float = 0.3
    temperature_end: float = 0.01
    polish_top: int = 8
    polish_rounds: int = 4

    @property
    def chunks(self) -> int:
        return max(1, -(-self.steps // self.legalize_every))


def _mesh_sharding(n: int):
    devices = jax.devices()
    if len(devices) == 1 or n % len(devices):
        return None
    mesh = jax.make_mesh((len(devices),), ("starts",), axis_types=(jax.sharding.AxisType.Auto,))
    return NamedSharding(mesh, P("starts"))


_CACHE: dict = {}


def _compiled(problem: Problem, settings: GradientSettings):
    """Jitted step and legalization functions of one problem (cached per problem object)."""
    key = (id(problem), settings)
    if key not in _CACHE or _CACHE[key][0] is not problem:
        if len(_CACHE) > 8:
            _CACHE.clear()
        _CACHE[key] = (problem, _build(problem, settings))
    return _CACHE[key][1]


def _build(problem: Problem, settings: GradientSettings):
    lo, hi = relax.bounds(problem)
    opt = optax.adam(settings.learning_rate)
    base, wl = problem.base, problem.workload

    t0, t1 = settings.temperature_start, settings.temperature_end
    total_steps = settings.chunks * settings.legalize_every

    n = -(-settings.starts // len(jax.devices())) * len(jax.devices())
    exponents = relax.start_exponents(problem.space, problem.objective, n)

    def steps(params, opt_state, dataflow, chunk):
        def total(p, i):
            frac = (chunk * settings.legalize_every + i) / total_steps
            ar = Arith.smooth(t0 * (t1 / t0) ** frac)
            loss = jax.vmap(lambda q, d, e: relax.loss(problem, q, d, ar, e))
            return jnp.sum(loss(p, dataflow, exponents))

        def body(i, carry):
            p, s = carry
            g = jax.grad(total)(p, i)
            g = jax.tree_util.tree_map(lambda x: jnp.where(jnp.isfinite(x), x, 0.0), g)
            u, s = opt.update(g, s, p)
            return relax.project(optax.apply_updates(p, u), lo, hi), s

        return jax.lax.fori_loop(0, settings.legalize_every, body, (params, opt_state))

    def legalize_one(params, dataflow, bits_up):
        d = relax.to_design(problem, params, dataflow)
        d = legal.snap_design(problem.space, wl, d, bits_up=bits_up)
        tiles = [jnp.round(t) for t in (d.mapping.tile_m, d.mapping.tile_k, d.mapping.tile_n)]
        d = dataclasses.replace(d, mapping=dataclasses.replace(d.mapping, **_tile_dict(tiles)))
        return mapper.map_design(base, wl, d, problem.objective, problem.budgets, local=True)

    def full_map(d):
        return mapper.map_design(base, wl, d, problem.objective, problem.budgets, local=False)

    return {
        "steps": jax.jit(steps),
        "init_opt": jax.jit(opt.init),
        "legalize": {
            up: jax.jit(jax.vmap(lambda p, d, up=up: legalize_one(p, d, up)))
            for up in (False, True)
        },
        "full_map": jax.jit(jax.vmap(full_map)),
    }


def _tile_dict(tiles):
    return {"tile_m": tiles[0], "tile_k": tiles[1], "tile_n": tiles[2]}


def _fingerprint(problem: Problem, settings: GradientSettings, seed: int) -> str:
    h = hashlib.sha256()
    h.update(repr((problem.space, problem.objective, problem.budgets, settings, seed)).encode())
    for leaf in jax.tree_util.tree_leaves(problem.workload):
        h.update(np.asarray(leaf).tobytes())
    h.update(repr(problem.workload.names).encode())
    if problem.accuracy is not None:
        for leaf in jax.tree_util.tree_leaves(problem.accuracy):
            h.update(np.asarray(leaf).tobytes())
    return h.hexdigest()


def _save(path: Path, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        pickle.dump(state, f)
    os.replace(tmp, path)


def _load(path: Path, fingerprint: str) -> dict | None:
    if not path.exists():
        return None
    with open(path, "rb") as f:
        state = pickle.load(f)
    if state.get("fingerprint") != fingerprint:
        raise ValueError(
            f"checkpoint {str(path)!r} belongs to a different search; use another checkpoint folder"
        )
    return state


def run(
    problem: Problem,
    settings: GradientSettings = GradientSettings(),
    *,
    seed: int = 0,
    evaluations: int | None = None,
    time_budget_s: float | None = None,
    checkpoint: str | Path | None = None,
    progress=None,
) -> SearchResult:
    """Search ``problem``; see the module docstring. ``progress(done, total)`` is called
    after each chunk (after the checkpoint is written)."""
    n_dev = len(jax.devices())
    n = -(-settings.starts // n_dev) * n_dev
    fns = _compiled(problem, settings)
    fp = _fingerprint(problem, settings, seed)
    path = Path(checkpoint) / CHECKPOINT_FILE if checkpoint is not None else None
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    state = _load(path, fp) if path is not None else None
    dataflow = relax.start_dataflows(problem.space, n)
    sharding = _mesh_sharding(n)
    if state is None:
        params = relax.init(problem, jax.random.key(seed), n)
        opt_state, chunk = None, 0
        rec = Recorder(problem.space, problem.workload, problem.objective, problem.budgets)
    else:
        params, opt_state, chunk, rec = (state[k] for k in ("params", "opt", "chunk", "recorder"))
        rec.resume()
        log.info("resuming the gradient search at chunk %d of %d", chunk, settings.chunks)
    if sharding is not None:
        params = jax.device_put(params, sharding)
        dataflow = jax.device_put(dataflow, sharding)
    if opt_state is None:
        opt_state = fns["init_opt"](params)
    while chunk < settings.chunks and not _out_of_budget(rec, evaluations, time_budget_s):
        params, opt_state = fns["steps"](params, opt_state, dataflow, chunk)
        last = _legalize(problem, fns, rec, params, dataflow)
        refine(problem, settings, fns, rec, last)
        chunk += 1
        if path is not None:
            host = jax.tree_util.tree_map(np.asarray, (params, opt_state))
            _save(
                path,
                {
                    "fingerprint": fp,
                    "params": host[0],
                    "opt": host[1],
                    "chunk": chunk,
                    "recorder": rec.snapshot(),
                },
            )
        if progress is not None:
            progress(chunk, settings.chunks)
    polish(problem, settings, fns, rec)
    return rec.result("gradient", seed)


def _out_of_budget(rec: Recorder, evaluations, time_budget_s) -> bool:
    if evaluations is not None and rec.evaluations >= evaluations:
        return True
    # The first chunk always runs, so that a search always returns something.
    return time_budget_s is not None and rec.evaluations > 0 and rec.elapsed() >= time_budget_s


def _legalize(problem: Problem, fns, rec: Recorder, params, dataflow):
    """Snap every start twice (widths to the nearest allowed value, and up to the next one, which
    keeps a tight accuracy budget), map, evaluate and record; returns the nearest-width set."""
    out = []
    for bits_up in (False, True):
        if bits_up and problem.budgets.min_accuracy is None:
            continue
        designs = fns["legalize"][bits_up](params, dataflow)
        metrics = dz.evaluate_population(
            problem.base, problem.workload, designs, accuracy=problem.accuracy
        )
        rec.add(designs, metrics)
        out.append(designs)
    return out[0]


def neighbours(problem: Problem, d: dz.Design) -> list[dz.Design]:
    """Designs one allowed value away from ``d`` in each searched hardware parameter and in
    each layer's width (in every layer at once when widths are per network)."""
    space, wl, out = problem.space, problem.workload, []

    def step(key, cur, mask):
        choices = np.asarray(getattr(space, key), dtype=float)
        for delta in (-1, 1):
            idx = np.clip(np.searchsorted(choices, cur) + delta, 0, len(choices) - 1)
            new = np.where(mask, choices[idx], cur).astype(np.asarray(cur).dtype)
            if not np.array_equal(new, cur):
                nd = dataclasses.replace(d, **{key: new})
                out.append(legal.snap_design(space, wl, nd))

    for key in HW_KEYS:
        if len(getattr(space, key)) > 1:
            step(key, np.asarray(getattr(d, key), dtype=float), True)
    for key in BIT_KEYS:
        if len(getattr(space, key)) < 2:
            continue
        cur = np.asarray(getattr(d, key), dtype=float)
        layers = [np.ones_like(cur, dtype=bool)]
        if space.per_layer_bits:
            matters = np.asarray(wl.gemm_count > 0) if key == "w_bits" else np.ones(len(cur), bool)
            layers = [np.arange(len(cur)) == i for i in np.flatnonzero(matters)]
        for mask in layers:
            step(key, cur, mask)
    return out


def refine(problem: Problem, settings: GradientSettings, fns, rec: Recorder, last) -> None:
    """Full-grid remapping of the best ``polish_top`` designs of the latest legalization."""
    n = legal.population_size(last)
    rows, key = rec.rows[-n:], _key(problem)
    order = sorted(range(n), key=lambda i: (not rows[i]["feasible"], rows[i][key]))
    _full_map_add(
        problem, settings, fns, rec, [dz.take(last, i) for i in order[: settings.polish_top]]
    )


def polish(problem: Problem, settings: GradientSettings, fns, rec: Recorder) -> None:
    """Exact coordinate descent from the best design: its hardware neighbours, remapped on
    the full tile grid, for up to ``polish_rounds`` rounds while the best improves."""
    for _ in range(settings.polish_rounds):
        anchor = rec.best if rec.best is not None else rec.closest
        if anchor is None:
            return
        before = rec.best_value
        _full_map_add(problem, settings, fns, rec, neighbours(problem, anchor))
        if rec.best is None or not rec.best_value < before:
            return


def _full_map_add(problem, settings, fns, rec, picks) -> None:
    if not picks:
        return
    batch = dz.stack(_pad(picks, settings.polish_top))
    mapped = fns["full_map"](batch)
    mapped = jax.tree_util.tree_map(lambda x: x[: len(picks)], mapped)
    rec.add(
        mapped,
        dz.evaluate_population(problem.base, problem.workload, mapped, accuracy=problem.accuracy),
    )


def _key(problem: Problem) -> str:
    from .objective import OBJECTIVES

    return OBJECTIVES[problem.objective]


def _pad(items: list, size: int) -> list:
    """Pad a list to a multiple of ``size`` by repeating its last item (fixed jit shapes)."""
    extra = -len(items) % size
    return items + [items[-1]] * extra
