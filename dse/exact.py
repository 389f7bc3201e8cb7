"""The exact search: hardware enumerated, per-layer choices solved by a Pareto programme.

For a fixed hardware point a layer's cost depends only on its own choices (weight and
activation widths, tiles, loop order), and the totals are sums over layers: energy
``E = sum e_l``, latency ``L = sum l_l``, accuracy noise ``N = sum n_l`` (``dse.accuracy``:
``accuracy = float_accuracy - N``). One thing couples the layers: the multipliers are as wide
as the widest layer, and their width sets area and leakage. So the hardware is enumerated
*with* the multiplier widths ``(W_w, W_a)`` (``Space.num_hardware_points``), each layer's widths
are restricted to ``<= (W_w, W_a)``, and the programme of ``dse.paretodp`` keeps, per layer
prefix, the Pareto set of the additive totals it needs:

- ``E`` (objective EDP or energy), ``L`` (objective EDP or latency, or a latency budget),
  ``N`` (an accuracy budget: ``N <= float_accuracy - min_accuracy``);
- the power budget exactly: power is ``E / L`` (leakage is inside ``E``: ``P_leak * l_l`` per
  layer), so ``power <= P`` is the linear constraint ``Q = E - P * L <= 0``, and ``Q`` is one
  more additive coordinate (a prefix with more latency may meet it where one with less
  does not, so ``(E, L)`` alone would not do);
- nothing for the widths' coupling beyond the enumeration: a solution whose widest layer is
  narrower than the enumerated multipliers is the design of a narrower hardware point, where
  it costs the same latency and no more energy or area (area and leakage grow with the
  multiplier widths, ``hw.tech.area_mm2``; MAC energy follows the layer's widths), so the
  design is recorded as it is (its multipliers as wide as its widest layer) and is at least as
  good as the programme said; the optimum, a design of its own widths, is found at those.

Three cuts keep it fast without giving up exactness, each a relaxation whose optimum bounds
the true one from below: under a power budget each width pair is first solved without it
(2-D fronts in ``(E, L)``; when that optimum meets the budget it is the pair's optimum, and the
far larger fronts of ``(L, Q)`` are never formed); blocks of width pairs are settled whole, by
bisection, when the programme over the block's widest options at its least leakage cannot beat
the best design so far; and a pair's programme starts from an incumbent (the best of a few
scalarized per-layer picks), so the cut on prefixes bites from the first layer.

The area depends on the hardware only, so hardware over the area budget is skipped. Energy,
latency or EDP under the budgets is read off the last front; the chosen design of every
hardware point is evaluated by the exact model and recorded (``dse.result.Recorder``): every
reported number comes from it. No front is truncated; prefixes are dropped only when they
cannot meet a budget or beat the best design found so far, so the optimum is exact.

The per-layer mappings are those exhaustive search draws from (``dse.mapper.full_candidates``:
power-of-two tiles, full dimensions, every loop order, less tilings dominated in DRAM bytes and
exposed cycles, plus the smallest tiles). The optimum is exact over these; under a power budget
a dominated tiling (slower, hence lower power) could in principle beat it.

Per hardware point the cost of every layer at every width pair and candidate mapping is one
jitted, vmapped evaluation (compiled once for the whole run). It is refused, in one line,
where it does not apply: suites (per-network objectives), a technology that overrides the MAC
energy (then a layer's MAC energy depends on the multiplier width), or more hardware points
than ``ExactSettings.max_hardware`` (counted before anything is enumerated).
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import numbers
import time

import jax
import jax.numpy as jnp
import numpy as np

from hw import cost, tech
from hw.bounds import InputError
from hw.types import LayerBits, Mapping, Workload
from hw.x64 import x64

from . import design as dz
from . import mapper, paretodp
from .problem import Problem, SearchBudget
from .result import Recorder, SearchResult
from .space import BIT_KEYS, HW_KEYS, Space

log = logging.getLogger(__name__)

MAX_HARDWARE = 20_000
"""Hardware points (multiplier widths counted) :func:`exact_search` enumerates at most."""

_BATCH = 32  # chosen designs evaluated exactly per jitted call
_WEIGHTS = 4.0 ** np.arange(-4, 5)  # relative weights of the incumbent's scalarizations


@dataclasses.dataclass(frozen=True)
class ExactSettings:
    max_hardware: int = MAX_HARDWARE  # a space with more hardware points is refused up front

    def __post_init__(self):
        n = self.max_hardware
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise ValueError(f"max_hardware must be an integer of at least 1, got {n!r}")


def hardware_size(space: Space) -> int:
    """Hardware points the exact search enumerates: the product of the allowed values of every
    hardware key and of both multiplier widths (arithmetic, nothing enumerated)."""
    return space.num_hardware_points


def refusal(problem: Problem, settings: ExactSettings) -> str | None:
    """Why the exact search does not apply to ``problem`` (one line), or None."""
    if problem.suite is not None:
        return (
            "--method exact does not apply to a suite: its per-network objective and budgets "
            "are not sums over layers of one hardware point; use another method"
        )
    if problem.llm is not None:
        return (
            "--method exact does not apply to an LLM step: its widths set which weights and "
            "KV cache stay in SRAM, which couples the layers; use another method"
        )
    if "mac_pj" in problem.base.tech.overrides:
        return (
            "--method exact does not apply: the technology overrides mac_pj, so a layer's MAC "
            "energy depends on the multiplier width (layers coupled); use another method"
        )
    n = hardware_size(problem.space)
    if n > settings.max_hardware:
        keys = [k for k in (*HW_KEYS, *BIT_KEYS) if len(getattr(problem.space, k)) > 1]
        sizes = " x ".join(f"{len(getattr(problem.space, k))} {k}" for k in keys)
        return (
            f"--method exact: the space has {n} hardware points ({sizes}); at most "
            f"{settings.max_hardware} can be enumerated; use --method gradient"
        )
    return None


@x64
@jax.jit
def _layer_table(base, workload: Workload, design: dz.Design, w_bits, a_bits):
    """Every layer at every width pair ``(w_bits[p], a_bits[p])`` and candidate mapping, on the
    hardware of ``design`` (multipliers at its widths): non-leakage energy (J), latency (s) and
    whether the tiles fit, each shape=(P, C, L), with the candidates (shape=(C, L))."""
    config = dz.to_config(base, design, workload)
    cands = mapper.full_candidates(config, workload)
    n = workload.gemm_m.shape[-1]

    def pair(wa):
        bits = LayerBits(jnp.full(n, wa[0]), jnp.full(n, wa[1]))

        def one(mp):
            rep = cost.evaluate(config, workload, mp, layer_bits=bits)
            return (rep.energy_pj - rep.energy_leak_pj) * 1e-12, rep.latency_s, rep.fits

        return jax.vmap(one)(cands)

    e, lat, fits = jax.lax.map(pair, jnp.stack([w_bits, a_bits], -1))
    return cands, e, lat, fits


@x64
@jax.jit
def _hardware_figures(base, workload: Workload, designs: dz.Design):
    """Leakage (W) and area (mm^2) of a batch of designs (their widest layers' widths)."""
    config = jax.vmap(lambda d: dz.to_config(base, d, workload))(designs)
    return tech.leakage_w(config), tech.area_mm2(config)


@dataclasses.dataclass
class _Table:
    """One hardware point's per-layer options: per layer, arrays over its kept options."""

    hw: dict  # key -> value (HW_KEYS)
    cands: Mapping  # shape=(C, L)
    pair: list[np.ndarray]  # per layer, shape=(J_l,): index into the width pairs
    cand: list[np.ndarray]  # per layer, shape=(J_l,): index into the candidates
    e_nl: list[np.ndarray]  # per layer, shape=(J_l,): energy without leakage, J
    lat: list[np.ndarray]  # per layer, shape=(J_l,): latency, s


class _Exact:
    """One exact search: the problem's coordinates, the tables and the recorder."""

    def __init__(self, problem: Problem, budget: SearchBudget, started: float):
        self.problem, self.budget = problem, budget
        sp, wl, b = problem.space, problem.workload, problem.budgets
        self.w_vals, self.a_vals = np.asarray(sp.w_bits), np.asarray(sp.a_bits)
        pw, pa = np.meshgrid(self.w_vals, self.a_vals, indexing="ij")
        self.pw, self.pa = pw.reshape(-1), pa.reshape(-1)  # the width pairs, shape=(P,)
        gemm = np.asarray(wl.gemm_count) > 0
        self.gemm = gemm
        self.w_sets = gemm if gemm.any() else np.ones_like(gemm)  # layers whose width is W_w
        objective = problem.objective
        # Coordinates kept: E and Q = E - P L are E_nl + k L with k >= k_low, so dominance
        # in (E_nl + k_low L, L) implies it in both; E is derived from (L, Q) when both are kept.
        need_l = objective in ("edp", "latency") or b.max_latency_s is not None
        need_e = objective in ("edp", "energy") and not (need_l and b.max_power_w is not None)
        names = (["e"] if need_e else []) + (["l"] if need_l else [])
        if b.min_accuracy is not None:
            names.append("n")
            acc = problem.accuracy
            sw, sa = np.asarray(acc.sens_w)[:, None], np.asarray(acc.sens_a)[:, None]
            self.noise = sw * np.exp2(-2.0 * self.pw) + sa * np.exp2(-2.0 * self.pa)  # (L, P)
            self.n_max = float(acc.float_accuracy) - b.min_accuracy
        if b.max_power_w is not None:
            names.append("q")
        self.names = names
        self.col = {k: i for i, k in enumerate(names)}
        self.recorder = Recorder(sp, wl, objective, b, started)
        self.best_value = np.inf  # the programme's best objective so far (prunes the rest)
        self.pending: list[tuple[dz.Design, float]] = []
        self.stopped: str | None = None
        self.deadline = None if budget.time_s is None else started + budget.time_s
        # The same search without the power budget (a relaxation of it), where its totals
        # give this search's (it needs L for Q = E - P L)
        self.free = None
        if b.max_power_w is not None and need_l:
            free = dataclasses.replace(b, max_power_w=None)
            self.free = _Exact(dataclasses.replace(problem, budgets=free), budget, started)

    def hardware(self):
        """Every hardware point as ``(hw values, [(W_w, W_a), ...])``, widths innermost."""
        sp = self.problem.space
        for values in itertools.product(*(getattr(sp, k) for k in HW_KEYS)):
            yield dict(zip(HW_KEYS, values, strict=True))

    def widths(self):
        return list(itertools.product(self.w_vals, self.a_vals))

    def design(self, hw: dict, w_bits, a_bits, mapping: Mapping) -> dz.Design:
        return dz.Design(
            rows=np.float64(hw["rows"]),
            cols=np.float64(hw["cols"]),
            dataflow=np.int64(hw["dataflow"]),
            sram_kib=np.float64(hw["sram_kib"]),
            clock_mhz=np.float64(hw["clock_mhz"]),
            dram_bw_gbps=np.float64(hw["dram_bw_gbps"]),
            w_bits=np.asarray(w_bits, np.float64),
            a_bits=np.asarray(a_bits, np.float64),
            mapping=mapping,
        )

    def placeholder(self, hw: dict, w: float, a: float) -> dz.Design:
        n = self.problem.workload.num_layers
        ones = np.ones(n, np.int64)
        w_bits = np.where(self.w_sets, w, self.w_vals[0])
        return self.design(hw, w_bits, np.full(n, a), Mapping(ones, ones, ones, ones * 0))

    def table(self, hw: dict, k_low: float) -> _Table:
        """Per layer and width pair, the fitting candidates no other candidate dominates in
        ``(e_nl + k_low * l, l)``: energy ``E = e_nl + P_leak l`` and, under a power budget,
        ``Q = e_nl + (P_leak - P) l`` are ``e_nl + k l`` with ``k >= k_low``, so a candidate
        dominated there is dominated in every coordinate the programme keeps."""
        p = self.problem
        wide = self.placeholder(hw, self.w_vals[-1], self.a_vals[-1])
        cands, e, lat, fits = _layer_table(
            p.base, p.workload, wide, jnp.asarray(self.pw), jnp.asarray(self.pa)
        )
        e, lat, fits = np.asarray(e), np.asarray(lat), np.asarray(fits)
        pairs, cand, e_nl, lats = [], [], [], []
        for layer in range(e.shape[-1]):
            ps, cs = [], []
            for q in range(len(self.pw)):
                if not self.gemm[layer] and self.pw[q] != self.w_vals[0]:
                    continue  # a vector-only layer's weight width is the narrowest
                idx = np.flatnonzero(fits[q, :, layer])
                cols = [e[q, idx, layer] + k_low * lat[q, idx, layer], lat[q, idx, layer]]
                keep = idx[paretodp.front(np.stack(cols, -1))]
                ps.append(np.full(keep.size, q))
                cs.append(keep)
            ps, cs = np.concatenate(ps), np.concatenate(cs)
            pairs.append(ps)
            cand.append(cs)
            e_nl.append(e[ps, cs, layer])
            lats.append(lat[ps, cs, layer])
        cands = jax.tree_util.tree_map(np.asarray, cands)
        return _Table(hw, cands, pairs, cand, e_nl, lats)

    def options(self, t: _Table, w: float, a: float, leak_w: float) -> list[np.ndarray] | None:
        """Per layer, the cost vectors (columns ``self.names``) of the options allowed at
        multiplier widths ``(w, a)``, pre-filtered to their front; None where a layer has none.
        Sets ``self.kept``: per layer, the indices into the table's options."""
        b, per_layer = self.problem.budgets, self.problem.space.per_layer_bits
        out, self.kept = [], []
        for layer in range(len(t.pair)):
            pw, pa = self.pw[t.pair[layer]], self.pa[t.pair[layer]]
            w_ok = pw <= w if per_layer else pw == w
            if not self.w_sets[layer]:
                w_ok = np.ones_like(w_ok)
            ok = np.flatnonzero(w_ok & (pa <= a if per_layer else pa == a))
            if ok.size == 0:
                return None
            e_nl, lat = t.e_nl[layer][ok], t.lat[layer][ok]
            cols = {
                "e": e_nl + leak_w * lat,
                "l": lat,
                "q": e_nl + (leak_w - (b.max_power_w or 0.0)) * lat,
            }
            if "n" in self.col:
                cols["n"] = self.noise[layer, t.pair[layer][ok]]
            pts = np.stack([cols[k] for k in self.names], -1)
            keep = paretodp.front(pts)
            out.append(pts[keep])
            self.kept.append(ok[keep])
        return out

    def column(self, pts: np.ndarray, k: str) -> np.ndarray:
        """Total ``k`` of each row of ``pts``; energy from ``Q + P L`` where it is not kept."""
        if k == "e" and "e" not in self.col:
            return pts[:, self.col["q"]] + self.problem.budgets.max_power_w * pts[:, self.col["l"]]
        return pts[:, self.col[k]]

    def value(self, pts: np.ndarray) -> np.ndarray:
        """The objective of totals (rows of ``pts``)."""
        objective = self.problem.objective
        if objective == "edp":
            return self.column(pts, "e") * self.column(pts, "l")
        return self.column(pts, "e" if objective == "energy" else "l")

    def feasible(self, pts: np.ndarray) -> np.ndarray:
        """Which totals meet every budget."""
        b, c = self.problem.budgets, self.col
        ok = np.ones(pts.shape[0], dtype=bool)
        if b.max_latency_s is not None:
            ok &= pts[:, c["l"]] <= b.max_latency_s
        if "n" in c:
            ok &= pts[:, c["n"]] <= self.n_max
        if "q" in c:
            ok &= pts[:, c["q"]] <= 0.0
        return ok

    def solve(self, options: list[np.ndarray], achievable: bool = True):
        """The best feasible totals and per-layer picks, or None; prefixes that cannot meet a
        budget or beat ``self.best_value`` with the cheapest rest are dropped on the way.

        The cheapest rest of a budget's coordinate is the sum of the later layers' least
        values of it; that of the objective's energy and latency the sums of their least
        energies and latencies (the energy of a prefix is exact even when it is kept as
        ``Q + P L``, and each later layer adds at least its least energy, which ``Q``'s and
        ``L``'s least values apart would not bound: ``Q``'s least may come with a long
        latency). With ``achievable`` (the options are one width pair's, not a relaxation),
        :meth:`incumbent` first lowers ``self.best_value`` to a design of this pair, so the
        cut bites from the first layer."""
        mins = np.stack([o.min(axis=0) for o in options])  # shape=(L, D)
        # reach[i]: the cheapest sum over layers i.. (reach[L] = 0)
        reach = np.concatenate([np.cumsum(mins[::-1], axis=0)[::-1], np.zeros_like(mins[:1])])
        rest = {
            k: np.concatenate([np.cumsum(v[::-1])[::-1], [0.0]])
            for k, v in self.least(options).items()
        }
        if achievable:  # the options are one pair's: its designs bound the optimum above
            self.best_value = min(self.best_value, self.incumbent(options))
        # a pair's programme keeps designs as good as the best (its incumbent's among them);
        # a relaxation need only tell whether some design may beat it
        bound = self.best_value * (1.0 + (1e-9 if achievable else -1e-9))

        def admissible(sums, layer):
            ok = self.feasible(sums + reach[layer + 1])
            low = np.ones(sums.shape[0])
            for k, r in rest.items():
                low = low * (self.column(sums, k) + r[layer + 1])
            return ok & (low <= bound)

        if not admissible(np.zeros((1, len(self.names))), -1)[0]:
            return None
        totals, picks = paretodp.solve(options, admissible)
        ok = np.flatnonzero(self.feasible(totals))
        if ok.size == 0:
            return None
        i = ok[np.argmin(self.value(totals[ok]))]
        return totals[i], picks[i]

    def least(self, options: list[np.ndarray]) -> dict[str, np.ndarray]:
        """Per layer, the least energy and/or latency of its options (the objective's
        factors: ``e`` and ``l`` for EDP), shape=(L,) each."""
        keys = {"edp": ("e", "l"), "energy": ("e",), "latency": ("l",)}[self.problem.objective]
        return {k: np.array([self.column(o, k).min() for o in options]) for k in keys}

    def incumbent(self, options: list[np.ndarray]) -> float:
        """The best objective under the budgets among a few designs of this width pair: per
        layer, the option of least weighted sum of its coordinates (each scaled by its
        typical total), for every weight vector of ``_WEIGHTS``; ``inf`` when none meets
        the budgets. A design the width pair offers, so an upper bound on its optimum."""
        d = len(self.names)
        scale = np.sum([np.abs(o).mean(axis=0) for o in options], axis=0) + 1e-300
        grid = [np.ones(1)] + [_WEIGHTS] * (d - 1)  # the first coordinate weighs 1
        weights = np.stack(np.meshgrid(*grid, indexing="ij"), -1).reshape(-1, d)
        costs = weights / scale  # shape=(W, D)
        totals = sum(o[np.argmin(o @ costs.T, axis=0)] for o in options)  # shape=(W, D)
        ok = self.feasible(totals)
        return float(self.value(totals[ok]).min()) if ok.any() else np.inf

    def run_point(self, hw: dict, progress, done: int, total: int) -> int:
        """Solve every multiplier width of one hardware point; returns the points done.

        The narrowest pair is solved first (an early incumbent), then the pairs are settled
        by bisection: a block of pairs whose relaxed programme (:meth:`block_beats`) cannot
        beat the best design so far is settled whole, a single pair is solved exactly."""
        p = self.problem
        nw, na = len(self.w_vals), len(self.a_vals)
        pops = dz.stack([self.placeholder(hw, w, a) for w, a in self.widths()])
        figures = _hardware_figures(p.base, p.workload, pops)
        leak, area = (np.asarray(x).reshape(nw, na) for x in figures)
        k_low = 0.0
        if p.budgets.max_power_w is not None:
            k_low = min(0.0, float(leak.min()) - p.budgets.max_power_w)
        t = self.table(hw, k_low)
        usable = np.ones((nw, na), bool)
        if p.budgets.max_area_mm2 is not None:
            usable = area <= p.budgets.max_area_mm2
        if usable[0, 0]:
            self.solve_pair(t, 0, 0, float(leak[0, 0]))
        blocks, settled = [(0, nw, 0, na)], 1
        while blocks:
            if self.out_of_budget():
                return done + min(settled, nw * na)
            w0, w1, a0, a1 = blocks.pop()
            size = (w1 - w0) * (a1 - a0)
            if size == 1 and (w0, a0) != (0, 0) and usable[w0, a0]:
                self.solve_pair(t, w0, a0, float(leak[w0, a0]))
            if size == 1 or not self.block_beats(t, leak, usable, (w0, w1, a0, a1)):
                settled += size - (w0 == 0 and a0 == 0)
                continue
            if w1 - w0 >= a1 - a0:  # split the longer side; the narrower half goes first
                mid = (w0 + w1) // 2
                blocks += [(mid, w1, a0, a1), (w0, mid, a0, a1)]
            else:
                mid = (a0 + a1) // 2
                blocks += [(w0, w1, mid, a1), (w0, w1, a0, mid)]
        if progress:
            progress(done + nw * na, total)
        return done + nw * na

    def block_beats(self, t: _Table, leak: np.ndarray, usable: np.ndarray, block) -> bool:
        """Whether some pair of ``block`` (index ranges ``w0:w1, a0:a1``) may hold a design
        better than ``self.best_value``: the programme over the widest pair's options (every
        pair's options are among them) with the least leakage of the block's usable pairs
        (energy and ``Q`` only grow with leakage; latency and noise do not depend on it)
        bounds every pair's optimum from below. With one width per network the widest pair's
        options are not a superset, so every block is split down to single pairs."""
        w0, w1, a0, a1 = block
        if not self.problem.space.per_layer_bits:  # one width per network: no superset
            return True
        ok = usable[w0:w1, a0:a1]
        if not ok.any():
            return False
        low = float(leak[w0:w1, a0:a1][ok].min())
        w, a = self.w_vals[w1 - 1], self.a_vals[a1 - 1]
        free = self.relaxed(t, w, a, low, achievable=False)
        if free is not None:  # a relaxation of the relaxation first
            return free[0] is not None
        options = self.options(t, w, a, low)
        return options is not None and self.solve(options, achievable=False) is not None

    def solve_pair(self, t: _Table, iw: int, ia: int, leak_w: float) -> None:
        """Solve one width pair exactly and queue its design, if one meets the budgets.

        Under a power budget the pair is first solved without it (:meth:`relaxed`): when
        that optimum meets the budget anyway it is this pair's optimum, and the programme
        over the extra coordinate ``Q`` (whose fronts are far larger) is not needed."""
        w, a = self.w_vals[iw], self.a_vals[ia]
        free = self.relaxed(t, w, a, leak_w, achievable=True)
        if free is not None and free[0] is None:
            return  # even without the power budget nothing beats the best
        if free is not None and free[1]:
            totals, design = free[0]
        else:
            options = self.options(t, w, a, leak_w)
            found = None if options is None else self.solve(options)
            if found is None:
                return
            totals, design = found[0], self.chosen(t, found[1])
        self.best_value = min(self.best_value, float(self.value(totals[None])[0]))
        self.pending.append((design, totals))
        if len(self.pending) >= _BATCH:
            self.flush()

    def relaxed(self, t: _Table, w: float, a: float, leak_w: float, achievable: bool):
        """Without a power budget: None. Otherwise the programme without it, with the best
        so far as its cut: ``(None, False)`` when nothing beats the best, else ``((totals,
        design), meets)``: the optimum's totals in this search's coordinates, its design,
        and whether it meets the power budget (a relaxation's optimum that does is optimal)."""
        if self.free is None:
            return None
        free = self.free
        free.best_value = self.best_value
        options = free.options(t, w, a, leak_w)
        found = None if options is None else free.solve(options, achievable=achievable)
        if found is None:
            return None, False
        totals, picks = found
        energy, latency = free.column(totals[None], "e")[0], free.column(totals[None], "l")[0]
        cols = {"e": energy, "l": latency, "q": energy - self.problem.budgets.max_power_w * latency}
        if "n" in free.col:
            cols["n"] = totals[free.col["n"]]
        ours = np.array([cols[k] for k in self.names])
        design = free.chosen(t, picks) if achievable else None
        return (ours, design), bool(cols["q"] <= 0.0)

    def chosen(self, t: _Table, picks: np.ndarray) -> dz.Design:
        """The design of one solution: per layer, the option picked (its widths and tiles)."""
        layers = range(len(t.pair))
        opt = [int(self.kept[i][picks[i]]) for i in layers]
        pair = np.array([t.pair[i][o] for i, o in zip(layers, opt, strict=True)])
        cand = np.array([t.cand[i][o] for i, o in zip(layers, opt, strict=True)])
        mapping = jax.tree_util.tree_map(lambda c: c[cand, np.arange(len(cand))], t.cands)
        return self.design(t.hw, self.pw[pair], self.pa[pair], mapping)

    def flush(self) -> None:
        """Evaluate the chosen designs exactly (a padded batch) and record them."""
        if not self.pending:
            return
        n = len(self.pending)
        designs = [d for d, _ in self.pending] + [self.pending[-1][0]] * (_BATCH - n)
        pop = dz.stack(designs)
        m = dz.evaluate_problem(self.problem, pop)
        m = jax.tree_util.tree_map(lambda x: np.asarray(x)[:n], m)
        self._check(m)
        self.recorder.add(jax.tree_util.tree_map(lambda x: x[:n], pop), m)
        self.pending = []

    def _check(self, m: dict) -> None:
        """The exact model must agree with the programme: the same latency, and no more
        energy (less where the widest layer is narrower than the enumerated multipliers,
        which then leak less). A miss means the layers were not independent: a warning."""
        totals = np.stack([t for _, t in self.pending])
        for k, metric, sign in (("l", "latency_s", 0), ("e", "energy_j", 1)):
            if k not in self.col and not (k == "e" and "q" in self.col):
                continue
            dp = self.column(totals, k)
            err = m[metric] / dp - 1.0
            worst = float(np.max(err if sign else np.abs(err)))
            if worst > 1e-6:
                log.warning(
                    "exact search: the exact %s exceeds the programme's by %.2g", metric, worst
                )

    def out_of_budget(self) -> bool:
        if self.stopped is None:
            evals = self.recorder.evaluations + len(self.pending)
            self.stopped = self.budget.exhausted(evals, self.recorder.elapsed())
        return self.stopped is not None


@x64
def exact_search(
    problem: Problem,
    budget: SearchBudget | None = None,
    *,
    seed: int = 0,
    settings: ExactSettings | None = None,
    checkpoint=None,
    progress=None,
) -> SearchResult:
    """The exact optimum over the space (module docstring): every hardware point and
    multiplier width enumerated, per-layer widths, tiles and loop orders solved by the Pareto
    programme, the chosen design of each hardware point evaluated exactly and recorded.

    Raises ``InputError`` (one line) where it does not apply (:func:`refusal`). A budget
    (evaluations = recorded designs, or wall time) stops it early: ``stopped`` then says so
    and the best is the best found, not a certified optimum. ``seed`` is only recorded.
    """
    started = time.perf_counter()
    settings = ExactSettings() if settings is None else settings
    if not isinstance(problem, Problem):
        raise ValueError(f"problem must be a dse.Problem, got {type(problem).__name__}")
    if not isinstance(settings, ExactSettings):
        raise ValueError(f"settings must be ExactSettings, got {type(settings).__name__}")
    if checkpoint is not None:
        raise InputError("checkpoint: the exact search keeps no checkpoints; drop it")
    reason = refusal(problem, settings)
    if reason is not None:
        raise InputError(reason)
    budget = SearchBudget() if budget is None else budget
    run = _Exact(problem, budget, started)
    total, done = hardware_size(problem.space), 0
    for hw in run.hardware():
        if run.out_of_budget():
            break
        done = run.run_point(hw, progress, done, total)
    run.flush()
    if done < total:
        log.warning(
            "exact search stopped by its budget after %d of %d hardware points", done, total
        )
    return run.recorder.result("exact", seed, budget, run.stopped or "converged")
