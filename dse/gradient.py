"""Gradient search: optax over many relaxed starts, legalized and re-evaluated exactly.

``run`` is ``init`` + (``steps`` + ``legalize``) per chunk + ``polish``:

1. ``init``: ``starts`` points drawn uniformly in the box (``dse.relax``), the dataflows of
   the space spread over them; Adam state.
2. ``step``: one Adam step on the smooth loss of every start at once (vmap; the population is
   sharded over the process's devices with ``jax.sharding``), projected back into the box; a
   chunk is ``legalize_every`` of them. The temperature of the smooth arithmetic falls geometrically
   from ``temperature_start`` to ``temperature_end`` over the run; it, the step index and the
   budgets' limits (accuracy floor included) are traced, so the step compiles once for every
   search of the same shapes, whatever its budgets or seed.
3. ``legalize``: every start snapped to allowed values (``dse.legal``), its tiles rounded and
   refined among their neighbours in every loop order by the exact mapper (``dse.mapper``),
   and the whole population evaluated exactly; ``refine`` remaps the best ``polish_top`` of
   them on the full tile grid. The best feasible exact design is kept.
4. ``polish``: the best design's hardware neighbours (one allowed step up or down per searched
   parameter), remapped on the full tile grid and evaluated exactly, then the width moves
   that helped on their own carried further (all at once, and the best one more steps the
   same way); repeated from the new best while it improves (at most ``polish_rounds`` times).

Every reported number comes from the exact model. The :class:`~dse.problem.SearchBudget` is
checked before every Adam step and every exact batch (the clock starts when :func:`run` is
called, so compilation counts): a legalization or polish batch is cut to the evaluations left,
and when a budget runs out the search returns the best exact design so far. With
``checkpoint`` (a folder) the state is written after each chunk (``dse.checkpoint``) and a
rerun with the same problem, settings and seed resumes where it stopped, with the same final
answer when no time budget cuts it short.

Several processes (``jax.distributed``, multi-controller: one Python process per host, each
started with the same arguments after ``jax.distributed.initialize``) split the population:
each runs the Adam steps and the legalization of its own slice of the starts on its own
devices (:func:`population_split`), the exact results are gathered after every legalization
(``process_allgather``), and every process then records the whole population and runs the
refinement and polish itself, so all of them hold the answer one process would have found:
each start's loss depends on that start alone, so its Adam trajectory does not depend on
which process runs it. A time budget and a checkpoint are refused there
(:func:`check_processes`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from hw.arith import Arith
from hw.x64 import x64

from . import checkpoint as ckpt
from . import deadline, legal, mapper, relax
from . import design as dz
from .problem import Problem, SearchBudget
from .result import Recorder, SearchResult
from .space import BIT_KEYS, HW_KEYS

log = logging.getLogger(__name__)
CHECKPOINT_NAME = "gradient_state"
CHECKPOINT_FILE = f"{CHECKPOINT_NAME}.npz"


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
    """The local population's sharding over this process's devices (None with one device)."""
    devices = jax.local_devices()
    if len(devices) == 1 or n % len(devices):
        return None
    mesh = jax.sharding.Mesh(np.asarray(devices), ("starts",))
    return NamedSharding(mesh, P("starts"))


def population_split(starts: int) -> tuple[int, slice]:
    """``(n, part)``: the whole population's size and this process's slice of it.

    ``n`` is ``starts`` rounded up to a multiple of the devices of all processes (every
    process holds the same number of starts, a multiple of its own devices); process ``p`` of
    ``P`` holds starts ``p * n / P`` to ``(p + 1) * n / P``. One process holds them all.
    """
    procs, local = jax.process_count(), jax.local_device_count()
    per_process = -(-starts // procs)
    n_local = -(-per_process // local) * local
    first = jax.process_index() * n_local
    return n_local * procs, slice(first, first + n_local)


def _gather(tree):
    """The whole population of a tree whose leaves hold this process's slice (leading axis),
    in process order: the same arrays one process would hold. Identity with one process."""
    if jax.process_count() == 1:
        return tree
    from jax.experimental import multihost_utils

    return multihost_utils.process_allgather(tree, tiled=True)


def check_processes(budget, checkpoint) -> None:
    """Refuse what several processes cannot share: a time budget (each process would stop at
    its own step, and they must take the same ones) and a checkpoint (each holds other starts)."""
    if jax.process_count() == 1:
        return
    if budget is not None and budget.time_s is not None:
        raise ValueError(
            "a time budget cannot bound a search over several processes (they would stop at "
            "different steps); bound its evaluations instead"
        )
    if checkpoint is not None:
        raise ValueError("a search over several processes keeps no checkpoint; drop it")


_CACHE: dict = {}
_CACHE_SIZE = 8


def _compiled(problem: Problem, settings: GradientSettings):
    """Jitted step and legalization functions, shared by every problem of the same content
    (space, workload, objective, accuracy model, which budgets are set) and settings: a new
    seed, search budget, budget limit, accuracy floor or an equal problem object never
    recompiles (the limits are arguments: ``Budgets`` is a pytree)."""
    key = (_digest(problem, limits=False), settings, jax.process_count(), jax.process_index())
    key += (jax.local_device_count(),)
    if key not in _CACHE:
        while len(_CACHE) >= _CACHE_SIZE:
            del _CACHE[next(iter(_CACHE))]
        _CACHE[key] = _build(problem, settings)
    return _CACHE[key]


def _build(problem: Problem, settings: GradientSettings):
    lo, hi = relax.bounds(problem)
    opt = optax.adam(settings.learning_rate)
    base, wl = problem.base, problem.workload

    t0, t1 = settings.temperature_start, settings.temperature_end
    total_steps = settings.chunks * settings.legalize_every

    n, part = population_split(settings.starts)
    exponents = relax.start_exponents(problem.space, problem.objective, n)[part]

    def step(params, opt_state, dataflow, i, budgets):
        ar = Arith.smooth(t0 * (t1 / t0) ** (i / total_steps))

        def total(p):
            loss = jax.vmap(lambda q, d, e: relax.loss(problem, q, d, ar, e, budgets))
            return jnp.sum(loss(p, dataflow, exponents))

        g = jax.grad(total)(params)
        g = jax.tree_util.tree_map(lambda x: jnp.where(jnp.isfinite(x), x, 0.0), g)
        u, opt_state = opt.update(g, opt_state, params)
        return relax.project(optax.apply_updates(params, u), lo, hi), opt_state

    def legalize_one(params, dataflow, budgets, bits_up):
        d = relax.to_design(problem, params, dataflow)
        d = legal.snap_design(problem.space, wl, d, bits_up=bits_up)
        tiles = [jnp.round(t) for t in (d.mapping.tile_m, d.mapping.tile_k, d.mapping.tile_n)]
        d = dataclasses.replace(d, mapping=dataclasses.replace(d.mapping, **_tile_dict(tiles)))
        return mapper.map_design(
            base, wl, d, problem.objective, budgets, local=True, step=problem.llm
        )

    def full_map(d, budgets):
        return mapper.map_design(
            base, wl, d, problem.objective, budgets, local=False, step=problem.llm
        )

    return {
        "step": jax.jit(step),
        "init_opt": jax.jit(opt.init),
        "legalize": {
            up: jax.jit(
                jax.vmap(lambda p, d, b, up=up: legalize_one(p, d, b, up), in_axes=(0, 0, None))
            )
            for up in (False, True)
        },
        "full_map": jax.jit(jax.vmap(full_map, in_axes=(0, None))),
    }


def _tile_dict(tiles):
    return {"tile_m": tiles[0], "tile_k": tiles[1], "tile_n": tiles[2]}


def _digest(problem: Problem, limits: bool = True) -> str:
    """A hash of the problem's content; with ``limits`` False, of what the compiled functions
    depend on (which budgets are set, not their values)."""
    h = hashlib.sha256()
    budgets = problem.budgets if limits else jax.tree_util.tree_structure(problem.budgets)
    h.update(repr((problem.space, problem.objective, budgets, problem.llm)).encode())
    for leaf in jax.tree_util.tree_leaves(problem.workload):
        h.update(np.asarray(leaf).tobytes())
    h.update(repr(jax.tree_util.tree_structure(problem.workload)).encode())
    if problem.accuracy is not None:
        for leaf in jax.tree_util.tree_leaves(problem.accuracy):
            h.update(np.asarray(leaf).tobytes())
    return h.hexdigest()


def _fingerprint(problem: Problem, settings: GradientSettings, seed: int) -> str:
    return hashlib.sha256(repr((_digest(problem), settings, seed)).encode()).hexdigest()


class _Search:
    """One run: the problem, its compiled functions, the recorder and the budget in force."""

    def __init__(self, problem, settings, fns, rec: Recorder, budget: SearchBudget):
        self.problem, self.settings, self.fns = problem, settings, fns
        self.rec, self.budget = rec, budget
        self.limits = problem.budgets.traced()  # the budgets, as the compiled functions take them
        self.stopped: str | None = None  # the budget that ran out, once one has
        self.deadline = None if budget.time_s is None else rec.start + budget.time_s

    def call(self, fn, *args):
        """``fn(*args)``, given up at the time budget's deadline (``deadline.OutOfTime``)."""
        return deadline.call(fn, *args, deadline=self.deadline)

    def left(self) -> int:
        """Exact evaluations still allowed (0 once a budget has run out)."""
        if self.stopped is None:
            self.stopped = self.budget.exhausted(self.rec.evaluations, self.rec.elapsed())
        return 0 if self.stopped is not None else self.budget.left(self.rec.evaluations)

    def add(self, designs, metrics, count: int, left: int) -> int:
        """Record the first ``count`` designs of a batch (the rest is padding), or the first
        ``left`` when fewer are allowed; returns how many were recorded."""
        n = min(left, count)
        if n < count:
            self.stopped = "evaluations"
        self.rec.add(*jax.tree_util.tree_map(lambda x: x[:n], (designs, metrics)))
        return n


def _save(folder: Path, fp: str, chunk: int, params, opt_state, rec: Recorder) -> None:
    scalars, arrays = rec.state()
    arrays = {f"recorder.{k}": v for k, v in arrays.items()}
    for i, leaf in enumerate(jax.tree_util.tree_leaves((params, opt_state))):
        arrays[f"state.{i}"] = np.asarray(leaf)
    meta = {"fingerprint": fp, "chunk": chunk, "recorder": scalars}
    ckpt.save(folder, CHECKPOINT_NAME, meta, arrays)


def _load(folder: Path, fp: str, template, rec: Recorder, settings: GradientSettings):
    """``(params, opt_state, chunk)`` from the checkpoint in ``folder`` (loaded into ``rec``),
    or None when there is none; ``template`` is ``(params, opt_state)`` of a fresh start."""
    found = ckpt.load(folder, CHECKPOINT_NAME)
    if found is None:
        return None
    scalars, arrays = found
    if scalars.get("fingerprint") != fp:
        raise ValueError(
            f"checkpoint {str(folder)!r} belongs to a different search; "
            "use another checkpoint folder"
        )
    leaves, tree = jax.tree_util.tree_flatten(template)
    try:
        stored = [arrays[f"state.{i}"] for i in range(len(leaves))]
        for a, b in zip(stored, leaves, strict=True):
            if np.shape(a) != np.shape(b):
                raise ValueError(f"state shape {np.shape(a)} where {np.shape(b)} was expected")
        stored = [a.astype(np.asarray(b).dtype) for a, b in zip(stored, leaves, strict=True)]
        chunk = int(scalars["chunk"])
        if not 0 < chunk <= settings.chunks:
            raise ValueError(f"chunk {chunk} out of range")
        records = {k[len("recorder.") :]: v for k, v in arrays.items() if k.startswith("recorder.")}
        design = dz.base_design(rec.space, rec.workload)
        rec.restore(scalars["recorder"], records, design)
    except (KeyError, IndexError, TypeError, ValueError) as e:
        raise ckpt.unreadable(folder, CHECKPOINT_NAME, str(e) or type(e).__name__) from None
    params, opt_state = jax.tree_util.tree_unflatten(tree, stored)
    return params, opt_state, chunk


@x64
def run(
    problem: Problem,
    budget: SearchBudget | None = None,
    *,
    seed: int = 0,
    settings: GradientSettings | None = None,
    checkpoint: str | Path | None = None,
    progress=None,
) -> SearchResult:
    """Search ``problem`` within ``budget``; see the module docstring. ``progress(done,
    total)`` is called after each chunk (after the checkpoint is written)."""
    started = time.perf_counter()
    budget = SearchBudget() if budget is None else budget
    settings = GradientSettings() if settings is None else settings
    if not isinstance(budget, SearchBudget):
        raise ValueError(f"budget must be a dse.SearchBudget, got {type(budget).__name__}")
    if not isinstance(settings, GradientSettings):
        raise ValueError(f"settings must be GradientSettings, got {type(settings).__name__}")
    check_processes(budget, checkpoint)
    n, part = population_split(settings.starts)
    fp = _fingerprint(problem, settings, seed)
    rec = Recorder(problem.space, problem.workload, problem.objective, problem.budgets, started)
    dataflow = relax.start_dataflows(problem.space, n)[part]
    params = jax.tree_util.tree_map(lambda x: x[part], relax.init(problem, jax.random.key(seed), n))
    fns = _compiled(problem, settings)
    opt_state, chunk = fns["init_opt"](params), 0
    if checkpoint is not None:
        loaded = _load(Path(checkpoint), fp, (params, opt_state), rec, settings)
        if loaded is not None:
            params, opt_state, chunk = loaded
            log.info("resuming the gradient search at chunk %d of %d", chunk, settings.chunks)
    sharding = _mesh_sharding(n)
    if sharding is not None:
        params = jax.device_put(params, sharding)
        dataflow = jax.device_put(dataflow, sharding)
    search = _Search(problem, settings, fns, rec, budget)
    try:
        _chunks(search, params, opt_state, dataflow, chunk, fp, checkpoint, progress)
        polish(search)
    except deadline.OutOfTime:  # a call outlived the time budget: keep what was recorded
        search.stopped = "time"
    return rec.result("gradient", seed, budget, search.stopped or "converged")


def _chunks(search: _Search, params, opt_state, dataflow, chunk, fp, checkpoint, progress):
    """Steps, legalization and full-grid refinement, chunk after chunk (checkpointed)."""
    settings = search.settings
    while chunk < settings.chunks:
        params, opt_state = _steps(search, params, opt_state, dataflow, chunk)
        last = _legalize(search, params, dataflow)
        if last is None:
            return
        refine(search, last)
        chunk += 1
        if checkpoint is not None and search.stopped is None:  # only whole chunks
            _save(Path(checkpoint), fp, chunk, params, opt_state, search.rec)
        if progress is not None:
            progress(chunk, settings.chunks)


def _steps(search: _Search, params, opt_state, dataflow, chunk: int):
    """The Adam steps of one chunk, each after a budget check (none once a budget is out)."""
    every = search.settings.legalize_every
    for i in range(chunk * every, (chunk + 1) * every):
        if search.left() == 0:
            break
        params, opt_state = search.call(
            search.fns["step"], params, opt_state, dataflow, i, search.limits
        )
    return params, opt_state


def _legalize(search: _Search, params, dataflow):
    """Snap every start twice (widths to the nearest allowed value, and up to the next one, which
    keeps a tight accuracy budget), map, evaluate and record at most the evaluations left;
    returns ``(designs, ranked)``: the recorded nearest-width designs and the number of rows of
    the last pass (whose rows rank them), or None when a budget stopped it first."""
    problem, out = search.problem, []
    for bits_up in (False, True):
        if bits_up and problem.budgets.min_accuracy is None:
            continue
        left = search.left()
        if left == 0:
            break
        designs = search.call(search.fns["legalize"][bits_up], params, dataflow, search.limits)
        metrics = search.call(dz.evaluate_problem, problem, designs)
        designs, metrics = _gather((designs, metrics))  # every process records every start
        k = search.add(designs, metrics, legal.population_size(designs), left)
        out.append((jax.tree_util.tree_map(lambda x, k=k: x[:k], designs), k))
    if not out:
        return None
    return out[0][0], out[-1][1]


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
            matters = np.array(wl.gemm_count > 0) if key == "w_bits" else np.ones(len(cur), bool)
            matters[[i for i, _, _ in space.fixed_bits]] = False  # the model fixes these
            layers = [np.arange(len(cur)) == i for i in np.flatnonzero(matters)]
        for mask in layers:
            step(key, cur, mask)
    return out


def refine(search: _Search, last) -> None:
    """Full-grid remapping of the best ``polish_top`` designs of the latest legalization."""
    designs, ranked = last
    n = min(legal.population_size(designs), ranked)
    rows, key = search.rec.rows[-ranked:], _key(search.problem)
    order = sorted(range(n), key=lambda i: (not rows[i]["feasible"], rows[i][key]))
    _full_map_add(search, [dz.take(designs, i) for i in order[: search.settings.polish_top]])


def polish(search: _Search) -> None:
    """Exact coordinate descent from the best design: its hardware and width neighbours,
    remapped on the full tile grid, then the helpful width moves carried further
    (:func:`_merged`), for up to ``polish_rounds`` rounds while the best improves."""
    rec, size = search.rec, search.settings.polish_top
    for _ in range(search.settings.polish_rounds):
        anchor = rec.best if rec.best is not None else rec.closest
        if anchor is None or search.left() == 0:
            return
        before, start = rec.best_value, rec.evaluations
        picks = neighbours(search.problem, anchor)
        _full_map_add(search, picks)
        done = rec.evaluations - start
        rows = rec.rows[len(rec.rows) - done :] if done else []
        further = _merged(search.problem, anchor, picks[:done], rows, before, size)
        if further:
            _full_map_add(search, further)
        if rec.best is None or not rec.best_value < before:
            return


def _merged(problem: Problem, anchor: dz.Design, picks: list, rows: list, best: float, size=8):
    """Designs that carry the width moves of ``picks`` that alone met the budgets and beat
    ``best`` further (at most ``size``; empty when none did): ``anchor`` with all of them at
    once (per layer and operand the better of up and down), as the widths of different layers
    interact only through the totals, so moves that each help tend to help together; and the
    best move continued two, three, ... allowed steps the same way, as one layer's width may
    be many steps from its best. A round then moves every layer that gains, and as far."""
    key, moves = _key(problem), {}
    for d, row in zip(picks, rows, strict=True):
        if not (row["feasible"] and row[key] < best):
            continue
        for k in BIT_KEYS:
            old, new = np.asarray(getattr(anchor, k)), np.asarray(getattr(d, k))
            for i in np.flatnonzero(old != new):
                if (k, i) not in moves or row[key] < moves[k, i][0]:
                    moves[k, i] = (row[key], new[i])
    bits = {k: np.array(getattr(anchor, k), dtype=np.float64) for k in BIT_KEYS}
    out = []
    if len(moves) > 1:
        both = {k: v.copy() for k, v in bits.items()}
        for (k, i), (_, value) in moves.items():
            both[k][i] = value
        out.append(both)
    if moves:
        (k, i), (_, value) = min(moves.items(), key=lambda kv: kv[1][0])
        choices = np.asarray(getattr(problem.space, k), dtype=np.float64)
        at, step = int(np.searchsorted(choices, value)), 1 if value > bits[k][i] else -1
        for j in range(at + step, len(choices) if step > 0 else -1, step)[: size - len(out)]:
            far = {kk: v.copy() for kk, v in bits.items()}
            far[k][i] = choices[j]
            out.append(far)
    return [
        legal.snap_design(problem.space, problem.workload, dataclasses.replace(anchor, **b))
        for b in out
    ]


def _full_map_add(search: _Search, picks: list) -> None:
    """Map ``picks`` on the full grid and record them, ``polish_top`` at a time, each batch
    after a budget check and cut to the evaluations left."""
    problem, size = search.problem, search.settings.polish_top
    for start in range(0, len(picks), size):
        left = search.left()
        if left == 0:
            return
        part = picks[start : start + size]
        mapped = search.call(search.fns["full_map"], dz.stack(_pad(part, size)), search.limits)
        metrics = search.call(dz.evaluate_problem, problem, mapped)
        search.add(mapped, metrics, len(part), left)


def _key(problem: Problem) -> str:
    from .objective import OBJECTIVES

    return OBJECTIVES[problem.objective]


def _pad(items: list, size: int) -> list:
    """Pad a list to a multiple of ``size`` by repeating its last item (fixed jit shapes)."""
    extra = -len(items) % size
    return items + [items[-1]] * extra
