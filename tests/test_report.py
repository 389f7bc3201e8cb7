"""Tests of npu_dse.report's column-at-a-time simulation report: unchanged output (goldens
written by the per-layer implementation it replaced), numbers as ``number``/``count`` give them,
``si`` as its plain loop gives it."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from hw.x64 import x64_scope
from npu_dse import report
from npu_dse.simulate import resolve_design, simulate
from npu_dse.workloads import load_workload

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def small():
    """Nine mixed layers (conv, depthwise, pool, dense, matmul, vector ops, one on the host,
    some outputs kept on chip, one layer at the model's own widths) with the steady state."""
    with x64_scope():
        wl, _ = load_workload(DATA / "simulate_small.json")
        design = resolve_design(overrides={"cross_layer": True, "unsupported_ops": ["gelu"]})
        return simulate(wl, design, widths={"proj": (4, 8)}, steady_state=True).to_dict()


def _assert_same(got, want, where="result"):
    """The same keys in the same order, the same types, the same strings, ints and bools, and
    floats equal to 4 units in the last place: the golden was computed by optimized XLA
    programs, the suite compiles its own without LLVM's passes (tests/conftest.py), and a
    multiply-add fused by one and not the other moves the last bit."""
    assert type(got) is type(want), f"{where}: {type(got).__name__} != {type(want).__name__}"
    if isinstance(want, dict):
        assert list(got) == list(want), f"{where}: keys {list(got)} != {list(want)}"
        for key in want:
            _assert_same(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, list):
        assert len(got) == len(want), f"{where}: {len(got)} items != {len(want)}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _assert_same(g, w, f"{where}[{i}]")
    elif isinstance(want, float):
        assert abs(got - want) <= 4 * math.ulp(want), f"{where}: {got!r} != {want!r}"
    else:
        assert got == want, f"{where}: {got!r} != {want!r}"


def test_json_is_unchanged(small):
    """The golden is ``json.dumps(result, indent=2)`` of the per-layer report, written by the
    per-layer implementation: the same keys, in the same order, with the same values (to the
    last bits) and number types."""
    golden = (DATA / "simulate_small.golden.json").read_text()
    _assert_same(json.loads(json.dumps(small, allow_nan=False)), json.loads(golden))


def test_table_is_unchanged(small):
    golden = (DATA / "simulate_small.golden.txt").read_text()
    assert report.format_simulation(small, "simulate_small.json", stall=True) + "\n" == golden


def test_simulation_json_writes_one_line_per_layer(small):
    text = report.simulation_json(small)
    assert json.loads(text) == small
    # the same key order everywhere: compare as text after a plain re-encoding
    assert json.dumps(json.loads(text)) == json.dumps(small)
    lines = text.splitlines()
    per_layer = [line for line in lines if line.startswith('    {"name": ')]
    assert len(per_layer) == len(small["layers"]) == 9
    assert lines[0] == "{" and lines[1] == '  "design": {'
    empty = report.simulation_json({"layers": [], "total": {}})
    assert json.loads(empty) == {"layers": [], "total": {}}


def test_numbers_match_number_element_by_element():
    x = np.array([0.0, -0.0, 3.0, 2.5, 1e-12, 2.0**53, 2.0**53 + 2, -7.0, 1e300])
    assert [type(v) for v in report.numbers(x)] == [type(report.number(v)) for v in x]
    assert report.numbers(x) == [report.number(v) for v in x]
    assert report.numbers(np.arange(4)) == [0, 1, 2, 3]
    assert report.numbers(np.array([0.5, 0.25])) == [0.5, 0.25]
    halves = np.array([0.5, 1.5, 2.5, -0.5, 3.4999, 2.0**60])
    assert report.counts(halves) == [report.count(v) for v in halves] == [0, 2, 2, 0, 3, 2**60]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_numbers_refuse_what_number_refuses(bad):
    x = np.array([1.0, bad])
    with pytest.raises(ValueError) as got:
        report.numbers(x, "energy_j")
    with pytest.raises(ValueError) as want:
        report.number(bad, "energy_j")
    assert str(got.value) == str(want.value)
    with pytest.raises(ValueError, match="internal error: cycles is"):
        report.counts(x, "cycles")


def _si_every_scale(x, unit="", digits=3):
    """``si`` as a loop over every prefix (no scale skipped): the reference."""
    sep = " " if unit else ""
    if x == 0 or (not unit and float(x).is_integer() and abs(x) < 1000):
        return f"{x:.0f}{sep}{unit}"
    for scale, prefix in report._PREFIXES:
        m = abs(x) / scale
        decimals = max(digits - 1 - math.floor(math.log10(m)), 0) if m > 0 else 0
        if round(m, decimals) >= 1 or scale == report._PREFIXES[-1][0]:
            return f"{'-' if x < 0 else ''}{m:.{decimals}f}{sep}{prefix}{unit}"
    raise AssertionError


def test_si_agrees_with_the_loop_over_every_scale():
    rng = np.random.default_rng(0)
    values = list(10.0 ** rng.uniform(-20, 16, 3000)) + [504, 999.6, 4.52e-5, 1e-19, -3.2e-7]
    for scale, _ in report._PREFIXES:  # around each skip threshold and each rounding edge
        for f in (9.99e-4, 9.995e-4, 1e-3, 0.9995, 1.0):
            values += [scale * f, math.nextafter(scale * f, 0), math.nextafter(scale * f, 1)]
    for x in values:
        for unit, digits in (("", 3), ("J", 3), ("B", 1), ("s", 5)):
            assert report.si(x, unit, digits) == _si_every_scale(x, unit, digits), (x, unit)
    assert report.si(4.52e-5, "J") == "45.2 µJ" and report.si(999.6) == "1.000k"
