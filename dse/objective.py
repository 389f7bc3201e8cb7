"""Objectives and budgets over whole-workload metrics (``dse.design.metrics``).

The objective is EDP, energy or latency of the whole workload. Budgets bound total latency,
average power, area and (when an accuracy model is given) accuracy. For the exact model a
design is feasible when every budget holds and every layer's tiles fit; for gradients the
budgets become squared hinges on the log of the ratio to the limit (DOSA, MICRO 2023):

    penalty = sum_b max(0, log(value_b / limit_b))**2      (accuracy: log(limit / value))

so a 10 % overshoot costs about ``0.009`` whatever the budget's units.

>>> b = Budgets(max_latency_s=1e-3, max_power_w=2.0)
>>> m = {"latency_s": 2e-3, "power_w": 1.0, "area_mm2": 5.0, "fits": True}
>>> {k: round(float(v), 3) for k, v in misses(m, b).items()}
{'latency_s': 1.0, 'power_w': -0.5}
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from hw.x64 import x64

OBJECTIVES = {"edp": "edp_js", "energy": "energy_j", "latency": "latency_s"}
"""Objective names and the metric each minimizes."""


@dataclasses.dataclass(frozen=True)
class Budgets:
    """Upper bounds on latency (s), power (W), area (mm^2); a lower bound on accuracy (0-1).

    ``None`` leaves a quantity free. :meth:`check` rejects non-positive or out-of-range limits.

    A pytree: the limits are its leaves and which ones are set (and the suite's network names)
    its structure, so a jitted search takes them as traced arguments and a new limit runs the
    same compiled program (:meth:`traced` gives every limit one dtype).
    """

    max_latency_s: float | None = None
    max_power_w: float | None = None
    max_area_mm2: float | None = None
    min_accuracy: float | None = None
    # Suites (dse.suite): ((network, max latency s), ...), metrics ``latency_s@network``.
    network_latency_s: tuple[tuple[str, float], ...] = ()

    def check(self) -> Budgets:
        for field in ("max_latency_s", "max_power_w", "max_area_mm2"):
            v = getattr(self, field)
            if v is not None and not (math.isfinite(v) and v > 0):
                raise ValueError(f"budget {field} must be a positive number, got {v}")
        acc = self.min_accuracy
        if acc is not None and not (math.isfinite(acc) and 0 < acc <= 1):
            raise ValueError(f"budget min_accuracy must be in (0, 1], got {acc}")
        for name, v in self.network_latency_s:
            if not (math.isfinite(v) and v > 0):
                raise ValueError(
                    f"budget max_latency_s of {name!r} must be a positive number, got {v}"
                )
        return self

    def traced(self) -> Budgets:
        """These budgets with every limit a float64 array (one jit signature whatever the
        values, ints included)."""
        return jax.tree_util.tree_map(np.float64, self)

    def limits(self) -> dict[str, tuple[float, int]]:
        """``metric -> (limit, sense)``: sense +1 for an upper bound, -1 for a lower one
        (a limit is a number, or an array when traced)."""
        out = {}
        for metric, field, sense in (
            ("latency_s", "max_latency_s", 1),
            ("power_w", "max_power_w", 1),
            ("area_mm2", "max_area_mm2", 1),
            ("accuracy", "min_accuracy", -1),
        ):
            v = getattr(self, field)
            if v is not None:
                out[metric] = (v, sense)
        for name, v in self.network_latency_s:
            out[f"latency_s@{name}"] = (v, 1)
        return out


_LIMITS = ("max_latency_s", "max_power_w", "max_area_mm2", "min_accuracy")


def _flatten(b: Budgets):
    nets = b.network_latency_s
    return (tuple(getattr(b, f) for f in _LIMITS), tuple(v for _, v in nets)), tuple(
        n for n, _ in nets
    )


def _unflatten(names: tuple[str, ...], children) -> Budgets:
    limits, nets = children
    return Budgets(*limits, network_latency_s=tuple(zip(names, nets, strict=True)))


jax.tree_util.register_pytree_node(Budgets, _flatten, _unflatten)


@x64
def objective(m: dict, name: str):
    """The metric an objective minimizes (a suite's weighted normalized sum where ``m`` has
    one, ``dse.suite``)."""
    if name not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {name!r}")
    return m["suite_objective"] if "suite_objective" in m else m[OBJECTIVES[name]]


@x64
def misses(m: dict, budgets: Budgets) -> dict:
    """Per budget, the relative miss: ``value / limit - 1`` (upper bounds) or
    ``1 - value / limit`` (lower bounds); positive means the budget is broken."""
    return {
        k: (m[k] / lim - 1.0) if sense > 0 else (1.0 - m[k] / lim)
        for k, (lim, sense) in budgets.limits().items()
    }


@x64
def feasible(m: dict, budgets: Budgets):
    """True where every budget holds and every tile fits (exact metrics)."""
    ok = jnp.asarray(m["fits"])
    for miss in misses(m, budgets).values():
        ok = ok & (miss <= 0)
    return ok


@x64
def penalty(m: dict, budgets: Budgets):
    """Sum of squared hinges of ``log(value / limit)`` (see the module docstring)."""
    total = 0.0
    for k, (lim, sense) in budgets.limits().items():
        excess = sense * (jnp.log(jnp.maximum(m[k], 1e-30)) - jnp.log(lim))
        total = total + jnp.maximum(excess, 0.0) ** 2
    return total


@x64
def worst_miss(m: dict, budgets: Budgets) -> tuple[str, float] | None:
    """The most broken budget of one design (NumPy metrics) and its relative miss, or None."""
    found = [(k, float(v)) for k, v in misses(m, budgets).items() if float(v) > 0]
    return max(found, key=lambda kv: kv[1]) if found else None
