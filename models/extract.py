"""Workloads from models: trace a function to a jaxpr and lower its ops to ``hw.layers`` layers.

:func:`extract_workload` runs ``jax.make_jaxpr(fn)(*example_args)``, inlines the sub-jaxprs of
calls (``jit``, ``closed_call``, ``custom_jvp_call``, ``custom_vjp_call``, ``remat``), walks
``scan`` bodies with their trip count, and lowers, in program order:

* ``conv_general_dilated``: lhs ``(N, C, *space)``, rhs ``(F, C / G, *kernel)`` and the
  output size ``E`` (per spatial axis) read through the dimension numbers,
  ``G = feature_group_count``; SCALE-Sim's lowering ``M = N prod(E), K = prod(kernel) C / G,
  N = F / G, count = G``: ``hw.layers.conv2d`` when it reproduces the traced output (2-D,
  symmetric padding, one stride and dilation), else the same formula built directly
  (asymmetric ``SAME`` padding, input dilation, 1-D and 3-D convolutions).
* ``dot_general``: ``M`` = product of the left operand's free dims, ``K`` = of the contracting
  dims, ``N`` = of the right operand's free dims, ``count`` = of the batch dims. If the right
  operand is a *parameter* the GEMM is a weight GEMM, ``dense`` (no batch dims) or ``gemm``
  (batch dims: one weight per batch entry); if only the left one is, the GEMM is transposed,
  ``(W x)^T = x^T W^T``, so that the weight takes the filter path. Otherwise (two activations)
  it is a ``batched_matmul``, as attention's ``Q K^T`` and ``A V`` per head, oriented with
  ``M >= N``: ``jnp.einsum`` orders a product's operands by the output layout (it emits
  ``A V`` as ``dot_general(V, A)`` in flax's attention), so the jaxpr's order says nothing;
  ``M >= N`` gives ``A V`` as ``M`` = tokens, ``N`` = head size, as ``hw.graph`` and
  ``models.zoo`` write it whenever tokens >= head size.
* vector work, element counts from the avals (``hw.layers.VECTOR_OPS_PER_ELEM`` per element):
  an ``exp`` whose output is summed is a **softmax**: one layer that also claims the
  ``reduce_max``, the subtraction, the ``reduce_sum`` and the division around it. An ``rsqrt``
  or ``sqrt`` of reductions is a **layernorm** (RMSNorm too) over the reductions' input; it
  claims the mean and variance. ``tanh``, ``erf``, ``erfc``, ``logistic`` and an ``exp`` that
  is not a softmax are one **gelu**-kind layer (the vector unit's transcendental activation:
  GELU in both forms, sigmoid, SiLU). ``max`` with a literal 0 is a **relu**. ``add`` of two
  activations of equal shape is a residual **add**, unless both derive from one value through
  single-activation elementwise steps (GELU's ``x + 0.044715 x^3`` is not a residual).
  ``reduce_window_*`` is a **pool** (``hw.layers.pool`` when it is an unpadded square NHWC
  window; else ``prod(window)`` ops per output element). A ``reduce_sum``/``max``/``min`` that
  no softmax or layernorm claims (global average pooling, means) is a pool-kind layer with one
  op per input element, as ``hw.graph.Mean``.
* everything else (bias adds and scales by parameters, casts, reshapes, transposes, masks,
  products of two activations) is taken as fused into its neighbours and not counted.

A value is a **parameter** when it is computed from parameters alone: the constants ``fn``
closes over (the weights of a flax NNX module or of ``hw.graph`` nodes), the leaves of the
arguments whose index is in ``weight_args``, and literals. Ops on parameters alone are
constant-folded and not counted. A ``scan`` body's layers are counted once with their
``gemm_count``, element counts and vector ops multiplied by the trip count (named
``scan{length}/...``); ``while`` and ``cond`` have no static workload and raise ``ValueError``.
Layer names are ``{name_prefix}{jit names/}{primitive}_{i}``, ``i`` the op's index in the
flattened program.

>>> import numpy as np
>>> w = np.ones((16, 4), np.float32)
>>> wl, lays = extract_workload(lambda x: jax.nn.relu(x @ w), np.ones((8, 16), np.float32))
>>> [(lay.kind, lay.gemm_m, lay.gemm_k, lay.gemm_n) for lay in lays]
[('dense', 8, 16, 4), ('relu', 0, 0, 0)]
"""

from __future__ import annotations

import dataclasses
import logging
import math

import jax
import jax.extend.core as jcore
import numpy as np

from hw import layers
from hw.types import Workload
from hw.x64 import x64

log = logging.getLogger(__name__)

_CALLS = frozenset(
    {"jit", "pjit", "closed_call", "core_call", "custom_jvp_call", "custom_vjp_call"}
    | {"custom_vjp_call_jaxpr", "remat", "remat2", "checkpoint"}
)
_POOLS = frozenset({"reduce_window_max", "reduce_window_sum", "reduce_window_min", "reduce_window"})
_REDUCTIONS = frozenset({"reduce_sum", "reduce_max", "reduce_min"})
_ACTIVATIONS = frozenset({"tanh", "erf", "erfc", "logistic", "exp"})
_NORMS = frozenset({"rsqrt", "sqrt"})
_BARRIERS = {"dot_general", "conv_general_dilated"} | _POOLS | _ACTIVATIONS | _NORMS
# Full-size ops a pattern walk may pass through between a reduction and its data.
_THROUGH = frozenset(
    {"sub", "mul", "square", "integer_pow", "convert_element_type", "transpose", "reshape"}
    | {"broadcast_in_dim", "copy", "neg", "select_n", "stop_gradient"}
)
_ELEMENTWISE = _THROUGH | _ACTIVATIONS | _NORMS | {"add", "div", "max", "min", "abs", "pow"}
_FULL_STEPS = 3  # full-size ops a walk passes through in a row
_ROOT_STEPS = 4  # elementwise steps searched for a common root of an add's operands


@dataclasses.dataclass(frozen=True)
class _Op:
    prim: str
    params: dict
    ins: tuple[int, ...]  # value ids
    outs: tuple[int, ...]
    times: int  # trip count of the enclosing scans
    name: str


class _Program:
    """The flattened program: ops in order; per value id its shape, producer, users, whether
    it is a parameter, and its literal value."""

    def __init__(self):
        self.ops: list[_Op] = []
        self.shape: list[tuple[int, ...]] = []
        self.param: list[bool] = []
        self.producer: list[int | None] = []
        self.users: list[list[int]] = []
        self.literal: dict[int, object] = {}

    def new(self, shape, param: bool, producer: int | None = None) -> int:
        self.shape.append(tuple(int(d) for d in shape))
        self.param.append(param)
        self.producer.append(producer)
        self.users.append([])
        return len(self.shape) - 1

    def size(self, v: int) -> int:
        return math.prod(self.shape[v])

    def read(self, env: dict, atom) -> int:
        if isinstance(atom, jcore.Literal):
            v = self.new(np.shape(atom.val), True)
            self.literal[v] = atom.val
            return v
        return env[atom]

    def flatten(self, jaxpr, ins: list[int], times: int, scope: str) -> list[int]:
        """Append ``jaxpr``'s ops (calls inlined); returns its output value ids."""
        env = dict(zip(jaxpr.invars, ins, strict=True))
        env.update({v: self.new(v.aval.shape, True) for v in jaxpr.constvars})
        for eqn in jaxpr.eqns:
            args = [self.read(env, a) for a in eqn.invars]
            prim, params = eqn.primitive.name, eqn.params
            if prim in ("while", "cond"):
                raise ValueError(
                    f"{prim!r} has no static workload (data-dependent control flow); use "
                    "lax.scan or a Python loop"
                )
            if prim == "scan":
                outs = self._scan(eqn, args, times, scope)
            elif prim in _CALLS:
                sub = next(params[k] for k in ("jaxpr", "call_jaxpr", "fun_jaxpr") if k in params)
                sub = sub.jaxpr if isinstance(sub, jcore.ClosedJaxpr) else sub
                label = f"{params['name']}/" if isinstance(params.get("name"), str) else ""
                outs = self.flatten(sub, args, times, scope + label)
            else:
                if any(isinstance(p, jcore.Jaxpr | jcore.ClosedJaxpr) for p in params.values()):
                    log.warning("%s: sub-jaxpr not walked; its work is not counted", prim)
                i = len(self.ops)
                param = all(self.param[v] for v in args)
                outs = [self.new(o.aval.shape, param, i) for o in eqn.outvars]
                for v in args:
                    self.users[v].append(i)
                self.ops.append(
                    _Op(prim, params, tuple(args), tuple(outs), times, f"{scope}{prim}_{i}")
                )
            env.update(zip(eqn.outvars, outs, strict=True))
        return [self.read(env, v) for v in jaxpr.outvars]

    def _scan(self, eqn, args, times, scope) -> list[int]:
        """Walk the body once at ``times * length``: consts pass through, the carry is an
        activation, the scanned slices keep their operand's parameter status."""
        p = eqn.params
        body, consts, carry = p["jaxpr"].jaxpr, p["num_consts"], p["num_carry"]
        ins = list(args[:consts])
        for j, (v, inner) in enumerate(zip(args, body.invars, strict=True)):
            if j >= consts:
                ins.append(self.new(inner.aval.shape, j >= consts + carry and self.param[v]))
        self.flatten(body, ins, times * p["length"], f"{scope}scan{p['length']}/")
        return [self.new(o.aval.shape, False) for o in eqn.outvars]


def _walk(prog: _Program, start: int, small: int, claimed: set, forward: bool) -> list[int]:
    """Claim the ops near ``start`` whose output has at most ``small`` elements (statistics
    such as row maxima and sums), passing through up to ``_FULL_STEPS`` full-size ops in a row;
    returns the reductions claimed."""
    found, seen, stack = [], set(), [(start, _FULL_STEPS)]
    while stack:
        v, budget = stack.pop()
        if not forward and prog.param[v]:
            continue
        nexts = prog.users[v] if forward else [prog.producer[v]]
        for i in nexts:
            if i is None or i in seen or prog.ops[i].prim in _BARRIERS:
                continue
            seen.add(i)
            op = prog.ops[i]
            step = op.outs if forward else op.ins
            if prog.size(op.outs[0]) <= small:
                claimed.add(i)
                found += [i] if op.prim in _REDUCTIONS else []
                stack += [(w, _FULL_STEPS) for w in step]
            elif budget > 0 and op.prim in _THROUGH:
                stack += [(w, budget - 1) for w in step]
    return found


def _patterns(prog: _Program) -> tuple[set[int], dict[int, tuple[str, int]]]:
    """Softmax (at its ``exp``) and layernorm (at its ``rsqrt``): ``(claimed ops, {op: (kind,
    elems)})``."""
    claimed, special = set(), {}
    for i, op in enumerate(prog.ops):
        if prog.param[op.outs[0]]:
            continue
        mine = set()
        if op.prim == "exp":
            elems = prog.size(op.outs[0])
            if _walk(prog, op.outs[0], elems - 1, mine, forward=True):
                _walk(prog, op.ins[0], elems - 1, mine, forward=False)
                special[i] = ("softmax", elems)
        elif op.prim in _NORMS:
            stats = prog.size(op.ins[0])  # one statistic per normalized row
            reds = _walk(prog, op.ins[0], stats, mine, forward=False)
            elems = max((prog.size(prog.ops[r].ins[0]) for r in reds), default=0)
            if elems > stats:
                special[i] = ("layernorm", elems)
        if i in special:
            claimed |= mine
    return claimed, special


def _roots(prog: _Program, v: int) -> set[int]:
    """``v`` and the values it derives from through elementwise ops of one activation."""
    roots, frontier = {v}, [v]
    for _ in range(_ROOT_STEPS):
        nxt = []
        for w in frontier:
            i = prog.producer[w]
            if i is not None and prog.ops[i].prim in _ELEMENTWISE:
                acts = [u for u in prog.ops[i].ins if not prog.param[u]]
                nxt += acts if len(acts) == 1 else []
        roots.update(nxt)
        frontier = nxt
    return roots


def _dot(prog: _Program, op: _Op) -> layers.Layer:
    (lc, rc), (lb, rb) = op.params["dimension_numbers"]
    (a, b), (sa, sb) = op.ins, (prog.shape[op.ins[0]], prog.shape[op.ins[1]])
    m = math.prod(d for j, d in enumerate(sa) if j not in lc and j not in lb)
    n = math.prod(d for j, d in enumerate(sb) if j not in rc and j not in rb)
    k, count = math.prod(sa[j] for j in lc), math.prod(sa[j] for j in lb)
    weight = prog.param[b]
    if prog.param[a] and not weight:
        m, n, weight = n, m, True
    if not weight:
        m, n = max(m, n), min(m, n)
        return layers.batched_matmul(op.name, m=m, k=k, n=n, count=count)
    if count == 1:
        return layers.dense(op.name, in_features=k, out_features=n, tokens=m)
    return layers.gemm(op.name, m=m, k=k, n=n, count=count)


def _conv(prog: _Program, op: _Op) -> layers.Layer:
    p = op.params
    if p["batch_group_count"] != 1:
        raise ValueError(f"{op.name}: batch_group_count={p['batch_group_count']} is not lowered")
    lhs, rhs, out = (prog.shape[v] for v in (*op.ins[:2], op.outs[0]))
    dn, groups = p["dimension_numbers"], p["feature_group_count"]
    batch, chans = lhs[dn.lhs_spec[0]], lhs[dn.lhs_spec[1]]
    space = [lhs[d] for d in dn.lhs_spec[2:]]
    filters, kernel = rhs[dn.rhs_spec[0]], [rhs[d] for d in dn.rhs_spec[2:]]
    m = batch * math.prod(out[d] for d in dn.out_spec[2:])
    pads = {x for pad in p["padding"] for x in pad}
    if (
        len(space) == 2
        and len(set(p["window_strides"])) == len(set(p["rhs_dilation"])) == len(pads) == 1
        and set(p["lhs_dilation"]) == {1}
        and min(pads) >= 0
    ):
        lay = layers.conv2d(
            op.name,
            ifmap_h=space[0],
            ifmap_w=space[1],
            channels=chans,
            num_filters=filters,
            filter_h=kernel[0],
            filter_w=kernel[1],
            stride=p["window_strides"][0],
            padding=min(pads),
            dilation=p["rhs_dilation"][0],
            groups=groups,
            batch=batch,
        )
        if lay.gemm_m == m:
            return lay
    return layers.Layer(
        name=op.name,
        kind="depthwise" if groups == chans == filters and groups > 1 else "conv",
        gemm_m=m,
        gemm_k=math.prod(kernel) * rhs[dn.rhs_spec[1]],
        gemm_n=filters // groups,
        gemm_count=groups,
        ifmap_elems=math.prod(lhs),
        filter_elems=math.prod(rhs),
        ofmap_elems=math.prod(out),
    )


def _pool(prog: _Program, op: _Op) -> layers.Layer:
    p, src, out = op.params, prog.shape[op.ins[0]], prog.shape[op.outs[0]]
    win, st, ofmap = p["window_dimensions"], p["window_strides"], math.prod(out)
    nhwc = len(src) == 4 and win[0] == win[3] == st[0] == st[3] == 1
    square = nhwc and win[1] == win[2] and st[1] == st[2]
    plain = set(p["base_dilation"]) == set(p["window_dilation"]) == {1}
    if square and plain and all(lo == hi == 0 for lo, hi in p["padding"]):
        b, h, w, c = src
        lay = layers.pool(
            op.name, ifmap_h=h, ifmap_w=w, channels=c, window=win[1], stride=st[1], batch=b
        )
        if lay.ofmap_elems == ofmap:
            return lay
    return layers.Layer(
        name=op.name,
        kind="pool",
        ifmap_elems=math.prod(src),
        ofmap_elems=ofmap,
        vector_ops=math.prod(win) * ofmap,
    )


def _lower(prog: _Program, i: int, claimed: set, special: dict) -> layers.Layer | None:
    """The layer of op ``i``, or ``None`` when it is claimed, constant or not counted."""
    op = prog.ops[i]
    if i in special:
        kind, elems = special[i]
        return layers.vector(op.name, kind, elems=elems)
    if i in claimed or prog.param[op.outs[0]] or 0 in (prog.size(v) for v in op.ins + op.outs):
        return None
    elems = prog.size(op.outs[0])
    if op.prim == "dot_general":
        return _dot(prog, op)
    if op.prim == "conv_general_dilated":
        return _conv(prog, op)
    if op.prim in _POOLS:
        return _pool(prog, op)
    if op.prim in _REDUCTIONS:
        n = prog.size(op.ins[0])
        return layers.Layer(op.name, "pool", ifmap_elems=n, ofmap_elems=elems, vector_ops=n)
    if op.prim in _ACTIVATIONS:
        return layers.vector(op.name, "gelu", elems=elems)
    if op.prim == "max" and any(prog.literal.get(v, 1) == 0 for v in op.ins):
        return layers.vector(op.name, "relu", elems=elems)
    if op.prim in ("add", "add_any"):
        a, b = op.ins
        acts = not (prog.param[a] or prog.param[b]) and prog.shape[a] == prog.shape[b]
        if acts and not _roots(prog, a) & _roots(prog, b):
            return layers.vector(op.name, "add", elems=elems, inputs=2)
    return None


def _repeat(lay: layers.Layer, times: int) -> layers.Layer:
    """``lay`` run ``times`` times (a scan body): counts and element counts scale."""
    if times == 1:
        return lay
    fields = ("gemm_count", "ifmap_elems", "filter_elems", "ofmap_elems", "vector_ops")
    return dataclasses.replace(lay, **{f: getattr(lay, f) * times for f in fields})


@x64
def extract_workload(
    fn, *example_args, name_prefix: str = "", weight_args: tuple[int, ...] = ()
) -> tuple[Workload, list[layers.Layer]]:
    """The workload of ``fn(*example_args)``, traced by ``jax.make_jaxpr``.

    Args:
      fn: a JAX function; weights it closes over (NNX modules, numpy arrays) are parameters.
      *example_args: arrays or ``jax.ShapeDtypeStruct`` of the shapes to extract at.
      name_prefix: prepended to every layer name.
      weight_args: indices of ``example_args`` whose leaves are parameters (weights passed
        as arguments, e.g. ``lambda params, x: apply(params, x)`` with ``weight_args=(0,)``).

    Returns:
      ``(workload, layers)``: the :class:`~hw.types.Workload` and its layers in program order.
    """
    for j in weight_args:
        if not 0 <= j < len(example_args):
            raise ValueError(
                f"weight_args: {j} is not an argument index (0..{len(example_args) - 1})"
            )
    closed = jax.make_jaxpr(fn)(*example_args)
    prog = _Program()
    flags = [j in weight_args for j, a in enumerate(example_args) for _ in jax.tree.leaves(a)]
    ins = [prog.new(v.aval.shape, w) for v, w in zip(closed.jaxpr.invars, flags, strict=True)]
    prog.flatten(closed.jaxpr, ins, 1, "")
    claimed, special = _patterns(prog)
    lays = []
    for i, op in enumerate(prog.ops):
        lay = _lower(prog, i, claimed, special)
        if lay is not None:
            lays.append(_repeat(dataclasses.replace(lay, name=name_prefix + lay.name), op.times))
    if not lays:
        raise ValueError(f"no GEMM or vector work found in {getattr(fn, '__name__', fn)!r}")
    return layers.workload(lays), lays
