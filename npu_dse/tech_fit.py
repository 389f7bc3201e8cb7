"""Fitting technology fields to measured figures: the arrays-in, arrays-out half of
``npu-dse calibrate`` (``npu_dse.tech_calibration`` reads the rows and writes the results).

The parameters are ``theta = log(value)`` of the technology fields :data:`FITTABLE`, shared by
every row, of which the mask ``free`` picks the fitted ones (each row keeps its own table's
value of the others, so the compiled programs do not depend on which fields are fitted), inside
the box ``log(start) +- log(BOUND_FACTOR)``. Each row ``i`` is one
workload on one design (its exact mapping held fixed) with one measured metric ``y_i``
(latency, energy or power), and the objective is the weighted squared log error

    L(theta) = sum_i w_i (log f_i(theta) - log y_i)^2 / sum_i w_i

(weights 0 or 1: a leave-one-out fit drops one row without recompiling). Two stages:

1. **Adam through the smooth model** (``hw.arith.Arith.smooth(temperature)``, the gradient
   search's arithmetic), projected on the box after every step, in chunks of
   :data:`CHUNK` steps (one compiled program; progress is reported between chunks);
2. **an exact finish**: Levenberg-Marquardt steps on the exact model. A technology field
   enters only energies (per access, per MAC, per mm^2), never a count, so the exact model is
   differentiable in ``theta`` (``jax.jacfwd``) and its Jacobian is exact. The smooth model's
   counts differ from the exact ones by about its temperature (1 % at 0.01), which biases the
   first stage's values by as much; the finish removes that bias.

Rows that share their shapes and static settings (same layer kinds and counts, same design
options) are stacked and evaluated by one ``jax.vmap``, so the number of compiled programs
does not grow with the number of rows.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

from hw import cost
from hw.arith import EXACT, Arith
from hw.x64 import x64
from npu_dse.techfiles import TECH_KEYS

FITTABLE = tuple(k for k in TECH_KEYS if k != "node_nm")
"""Fields a fit may vary (``node_nm`` rescales the laws when a file is read; it is no
quantity of the model itself). ``theta`` has one entry per field, in this order."""

METRICS = ("latency_s", "energy_j", "power_w")
"""What a row may measure: the whole workload's latency, energy or average power."""

BOUND_FACTOR = 10.0
"""Each field is fitted within ``start / 10 .. start * 10``."""

LEARNING_RATE = 0.05
"""Adam's step in log space (5 % of a value per step at most, about)."""

TEMPERATURE = 0.01
"""The smooth model's relative temperature in the first stage (the gradient search's last)."""

CHUNK = 25
"""Adam steps per compiled call (progress is reported between calls)."""

FINISH_STEPS = 30
"""Most Levenberg-Marquardt steps of the exact finish (it stops earlier when converged)."""

_TOL = 1e-13  # the finish stops once no parameter moves more than this (log units)


@dataclasses.dataclass(frozen=True)
class Data:
    """The rows as the fit sees them: stacked groups and where each row sits.

    ``groups[g]`` is ``(config, workload, mapping, layer_bits)`` with a leading row axis;
    ``order`` puts the rows of the concatenated groups back in the input order.
    """

    groups: tuple  # per group: (config, workload, mapping, layer_bits), stacked over rows
    order: np.ndarray  # shape=(N,): index into the concatenated groups of each input row
    metric: np.ndarray  # shape=(N,): index into METRICS
    log_measured: np.ndarray  # shape=(N,)


jax.tree_util.register_dataclass(
    Data, data_fields=["groups", "order", "metric", "log_measured"], meta_fields=[]
)


def _key(tree) -> tuple:
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    return treedef, tuple((np.shape(x), np.asarray(x).dtype) for x in leaves)


def stack_rows(rows, metrics, measured) -> Data:
    """:class:`Data` of ``rows`` (``(config, workload, mapping, layer_bits)`` each, names
    blanked), their metric names and measured values (> 0)."""
    keys: dict = {}
    for i, row in enumerate(rows):
        keys.setdefault(_key(row), []).append(i)
    groups, position = [], np.empty(len(rows), dtype=np.int64)
    for members in keys.values():
        position[members] = np.arange(len(members)) + sum(len(g) for g in groups)
        groups.append(members)
    stacked = tuple(
        jax.tree_util.tree_map(lambda *xs: np.stack(xs), *(rows[i] for i in members))
        for members in groups
    )
    return Data(
        groups=stacked,
        order=position,
        metric=np.array([METRICS.index(m) for m in metrics], dtype=np.int64),
        log_measured=np.log(np.asarray(measured, dtype=np.float64)),
    )


def _with_fields(config, theta, free):
    t = config.tech
    values = {
        name: jnp.where(free[j], jnp.exp(theta[j]), getattr(t, name))
        for j, name in enumerate(FITTABLE)
    }
    return dataclasses.replace(config, tech=dataclasses.replace(t, **values))


def _group_metrics(theta, free, group, ar: Arith):
    """``(latency_s, energy_j, power_w)`` of every row of one group, shape=(n, 3)."""

    def one(config, workload, mapping, layer_bits):
        config = _with_fields(config, theta, free)
        rep = cost.evaluate(config, workload, mapping, ar, stall=True, layer_bits=layer_bits)
        return jnp.stack([rep.total_latency_s, rep.total_energy_j, rep.power_w])

    return jax.vmap(one)(*group)


def predictions(theta, free, data: Data, ar: Arith = EXACT):
    """The model's figure for every row's metric at ``theta``, shape=(N,) (traceable)."""
    every = jnp.concatenate([_group_metrics(theta, free, g, ar) for g in data.groups])
    return jnp.take_along_axis(every[data.order], data.metric[:, None], axis=1)[:, 0]


def residuals(theta, free, data: Data, ar: Arith = EXACT):
    """``log(predicted / measured)`` per row, shape=(N,)."""
    return jnp.log(predictions(theta, free, data, ar)) - data.log_measured


@x64
@jax.jit
def exact_jacobian(theta, free, data):
    """``(residuals, d residuals / d theta)`` on the exact model, shapes (N,) and (N, F); the
    columns of fields not ``free`` are 0."""
    fn = functools.partial(residuals, free=free, data=data)
    return fn(theta), jax.jacfwd(fn)(theta)


_ADAM = optax.adam(LEARNING_RATE)


@x64
@jax.jit
def _adam_chunk(theta, state, remaining, box, weights, free, data, ar):
    """:data:`CHUNK` projected Adam steps (the ones past ``remaining`` leave ``theta``)."""
    lo, hi = box

    def loss(th):
        r = residuals(th, free, data, ar)
        return jnp.sum(weights * r * r) / jnp.sum(weights)

    def step(carry, i):
        th, st = carry
        grad = jax.grad(loss)(th)
        updates, new_st = _ADAM.update(grad, st, th)
        new_th = jnp.clip(optax.apply_updates(th, updates), lo, hi)
        live = i < remaining
        keep = functools.partial(jnp.where, live)
        return (keep(new_th, th), jax.tree_util.tree_map(keep, new_st, st)), None

    (theta, state), _ = jax.lax.scan(step, (theta, state), jnp.arange(CHUNK))
    return theta, state


def adam_stage(theta, box, weights, free, data, steps: int, progress=None):
    """``steps`` projected Adam steps through the smooth model; ``progress(n)`` after each
    chunk with the steps done."""
    ar = Arith.smooth(TEMPERATURE)
    theta = jnp.asarray(theta, dtype=jnp.float64)
    state = _ADAM.init(theta)
    for done in range(0, steps, CHUNK):
        theta, state = _adam_chunk(theta, state, steps - done, box, weights, free, data, ar)
        if progress is not None:
            progress(min(done + CHUNK, steps))
    return np.asarray(theta)


def exact_finish(theta, box, weights, free, data):
    """Levenberg-Marquardt on the exact model from ``theta``, inside ``box``: the minimizer of
    ``sum w_i r_i^2`` (a field no weighted row depends on stays where it is)."""
    lo, hi = (np.asarray(b) for b in box)
    w = np.asarray(weights, dtype=np.float64)
    theta = np.asarray(theta, dtype=np.float64)
    damping = 1e-3
    for _ in range(FINISH_STEPS):
        r, jac = (np.asarray(x) for x in exact_jacobian(theta, free, data))
        now = float(np.sum(w * r * r))
        a = jac.T @ (w[:, None] * jac)
        g = jac.T @ (w * r)
        moved = False
        while damping < 1e12:
            lhs = a + damping * np.diag(np.diag(a)) + 1e-15 * np.eye(len(theta))
            trial = np.clip(theta - np.linalg.solve(lhs, g), lo, hi)
            r_new = np.asarray(exact_jacobian(trial, free, data)[0])
            if float(np.sum(w * r_new * r_new)) <= now:
                step, theta, damping, moved = (
                    np.max(np.abs(trial - theta)),
                    trial,
                    damping / 10,
                    True,
                )
                break
            damping *= 10
        if not moved or step < _TOL:
            break
    return theta


def identified(jac, weights, free) -> int:
    """How many independent directions the weighted rows give the free fields (the rank of
    the Jacobian of the log errors in the log fields, relative tolerance 1e-6)."""
    j = np.asarray(jac)[np.asarray(weights) > 0][:, np.asarray(free)]
    if j.size == 0:
        return 0
    s = np.linalg.svd(j, compute_uv=False)
    return int(np.sum(s > 1e-6 * max(s[0], 1e-300)))


def bounds(start: np.ndarray, free: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The box of :data:`BOUND_FACTOR` around the start, in log space (0 for fields not
    ``free``, whose ``theta`` is unused)."""
    log_start = np.where(free, np.log(np.where(free, start, 1.0)), 0.0)
    span = np.where(free, math.log(BOUND_FACTOR), 0.0)
    return log_start - span, log_start + span
