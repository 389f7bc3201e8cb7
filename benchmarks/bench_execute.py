"""Throughput of bit-accurate int8 execution against the float forward pass of the same model.

Run: ``.venv/bin/python benchmarks/bench_execute.py [--repeats 9] [--quick]`` (about a minute on a
2-core CPU; ``--quick``: the int16 vector unit only, 5 repeats, about 20 s). Two small models
with seeded random weights, the sizes of the project's small models:

* CNN on 8x8 digits: conv 3x3x16 + ReLU, conv 3x3x32 + ReLU, 2x2 max pool, global average
  pool, dense 32->10; batches of 1024 images;
* transformer: 16 tokens of width 64 in, one pre-norm block (4-head causal attention,
  GELU MLP of width 128), mean pool, dense 64->10; batches of 64 sequences (1024 tokens).

Both runs are jitted; the int8 one is ``hw.engine.compile_model`` on ``edge-tpu-like`` (64x64
ws array, 32-bit saturating accumulators, int16 vector unit), the float one is
``hw.graph.forward_float``. Timed calls alternate between the two; times are medians. Each
model runs twice: with the vector unit in int16 fixed point (the presets' default, I-BERT-style
integer softmax, GELU and layernorm, computed in int32 where their bounds allow) and in fp16.

The figures, printed last: the bit-accurate time over the float time of each model with the
int16 vector unit (targets: CNN within 1.5x, transformer within 2x). Expected on a quiet 2-core
CPU: about 1.3x and 1.7x.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import time

import jax
import numpy as np

from hw import engine, graph, presets

rng = np.random.default_rng(0)


def _w(*shape, scale=0.2):
    return rng.normal(0, scale, shape).astype(np.float32)


def cnn():
    return (
        graph.Conv("c1", w=_w(3, 3, 1, 16), b=_w(16), padding=1, act="relu"),
        graph.Conv("c2", w=_w(3, 3, 16, 32, scale=0.1), b=_w(32), padding=1, act="relu"),
        graph.Pool("p", "max", 2, 2),
        graph.Mean("gap"),
        graph.Dense("fc", w=_w(32, 10), b=_w(10)),
    )


def transformer(d=64, hidden=128):
    att = [a for _ in range(4) for a in (_w(d, d, scale=0.1), _w(d, scale=0.02))]
    return (
        graph.Dense("embed", w=_w(d, d), b=_w(d)),
        graph.LayerNorm("ln1", gamma=np.ones(d), beta=np.zeros(d)),
        graph.Attention("att", *att, heads=4, causal=True),
        graph.Add("res1", other="embed"),
        graph.LayerNorm("ln2", gamma=np.ones(d), beta=np.zeros(d)),
        graph.Dense("up", w=_w(d, hidden, scale=0.1), b=_w(hidden), act="gelu"),
        graph.Dense("down", w=_w(hidden, d, scale=0.1), b=_w(d)),
        graph.Add("res2", other="res1"),
        graph.Mean("pool"),
        graph.Dense("head", w=_w(d, 10), b=_w(10)),
    )


def _time(fn, x) -> float:
    t0 = time.perf_counter()
    jax.block_until_ready(fn(x))
    return time.perf_counter() - t0


def measure(name, model, x, unit, per_item, repeats, precision):
    qm = engine.quantize_model(model, x, w_bits=8, a_bits=8)
    npu = dataclasses.replace(presets.get_preset("edge-tpu-like"), vector_precision=precision)
    forward, _, _ = engine.compile_model(qm, x.shape, npu)
    flt = jax.jit(lambda v: graph.forward_float(model, v))
    jax.block_until_ready(forward(x))  # compile both
    jax.block_until_ready(flt(x))
    t_int, t_flt = [], []
    for _ in range(repeats):
        t_int.append(_time(forward, x))
        t_flt.append(_time(flt, x))
    n = x.shape[0] * per_item
    mi, mf = statistics.median(t_int), statistics.median(t_flt)
    agree = float(np.mean(np.argmax(forward(x), -1) == np.argmax(flt(x), -1)))
    print(
        f"{name:11s} {precision:5s} float {n / mf:9,.0f} {unit}/s  int8 {n / mi:9,.0f} {unit}/s  "
        f"int8 takes {mi / mf:5.2f}x the float time   top-1 agreement {agree:.3f}"
    )
    return mi / mf


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--quick", action="store_true", help="int16 only, 5 repeats")
    args = parser.parse_args(argv)
    repeats = 5 if args.quick else args.repeats
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__}")
    images = rng.normal(size=(1024, 8, 8, 1)).astype(np.float32)
    tokens = rng.normal(size=(64, 16, 64)).astype(np.float32)
    ratios = {}
    for precision in ("int16",) if args.quick else ("int16", "fp16"):
        for name, model, x, unit, per_item in (
            ("cnn", cnn(), images, "images", 1),
            ("transformer", transformer(), tokens, "tokens", 16),
        ):
            ratios[name, precision] = measure(name, model, x, unit, per_item, repeats, precision)
    for name, target in (("cnn", 1.5), ("transformer", 2.0)):
        print(
            f"figure: {name} bit-accurate / float time, int16 vector unit: "
            f"{ratios[name, 'int16']:.2f}x (target <= {target}x)"
        )


if __name__ == "__main__":
    main()
