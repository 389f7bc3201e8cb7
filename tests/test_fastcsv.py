"""Tests of npu_dse.fastcsv: the columns of a plain SCALE-Sim CSV are exactly what the
row-by-row readers stack, and every file the fast path does not take is left to them (so their
error messages stand)."""

import dataclasses

import numpy as np
import pytest

from hw import layers
from npu_dse import fastcsv
from npu_dse import workloads as topology

CONV_HEADER = (
    "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, "
    "Strides,"
)


def _same(fast, slow):
    for f in dataclasses.fields(slow):
        a, b = getattr(fast, f.name), getattr(slow, f.name)
        if isinstance(b, tuple):
            assert a == b, f.name
        else:
            assert np.asarray(a).dtype == np.asarray(b).dtype, f.name
            np.testing.assert_array_equal(a, b, err_msg=f.name)


def _slow(path, gemm):
    read = topology.read_scalesim_gemm if gemm else topology.read_scalesim_conv
    return read(path)


@pytest.mark.parametrize(
    "name, gemm", [("resnet18.csv", False), ("bert_base_layer_gemm.csv", True)]
)
def test_bundled_files_read_as_columns_equal_row_by_row(name, gemm):
    path = topology.bundled(name)
    fast = topology._scalesim_columns(path, gemm)
    assert fast is not None
    _same(fast, layers.workload(_slow(path, gemm)))
    wl, found = topology.load_workload(path, gemm=gemm)
    assert found == _slow(path, gemm)
    _same(wl, fast)


def _random_conv(rng, n):
    rows = []
    for i in range(n):
        k, s = int(rng.choice([1, 3, 5, 7])), int(rng.integers(1, 4))
        h, w = (int(v) for v in rng.integers(k, 60, 2))
        c, f = (int(v) for v in rng.integers(1, 300, 2))
        sep = ", " if i % 3 else ",\t"
        end = ["", ",", ", , ", ",,"][i % 4]
        rows.append(sep.join(f"{v}" for v in (f"c {i}", h, w, k, k, c, f, s)) + end)
    return rows


def test_random_conv_files_with_blank_rows_crlf_and_trailing_cells(tmp_path):
    rng = np.random.default_rng(1)
    rows = _random_conv(rng, 200)
    rows[10:10] = ["", " , ,", "\t"]
    text = "\n" + CONV_HEADER + " Extra,\n" + "\n".join(rows) + "\n"
    for newline in ("\n", "\r\n"):
        path = tmp_path / "r.csv"
        path.write_bytes(text.replace("\n", newline).encode())
        fast = topology._scalesim_columns(path, gemm=False)
        assert fast is not None and fast.num_layers == 200
        _same(fast, layers.workload(_slow(path, False)))


@pytest.mark.parametrize(
    "row",
    [
        '"q", 8, 8, 3, 3, 4, 4, 1',  # quoted (csv's rules)
        "z, 8, 8, 3, 3, 4, 0, 1",  # a zero
        "big, 2, 8, 3, 3, 4, 4, 1",  # a filter taller than its input
        "long, 8, 8, 3, 3, 4, 1234567890123456, 1",  # 16 digits
        "few, 8, 8, 3, 3, 4, 4",  # a field missing
        "more, 8, 8, 3, 3, 4, 4, 1, 9",  # a field more than the header
        "sp, 8, 8, 3, 3, 4, 4\u00a0, 1",  # other whitespace
        "neg, 8, 8, 3, 3, 4, -4, 1",
        ", 8, 8, 3, 3, 4, 4, 1",  # no name
        "huge, 99999999, 99999999, 1, 1, 999999, 1, 1",  # past WORK_MAX
        "cr, 8, 8, 3, 3, 4, 4, 1\rx, 8, 8, 3, 3, 4, 4, 1",  # a lone carriage return
    ],
)
def test_files_the_fast_path_leaves_to_the_row_by_row_reader(tmp_path, row):
    path = tmp_path / "b.csv"
    path.write_text(f"{CONV_HEADER}\nok, 8, 8, 3, 3, 4, 4, 1,\n{row}\n", encoding="utf-8")
    assert topology._scalesim_columns(path, gemm=False) is None
    try:
        want = layers.workload(_slow(path, False))
    except ValueError as err:
        with pytest.raises(ValueError) as got:
            topology.load_workload(path)
        assert str(got.value) == str(err)
    else:
        _same(topology.load_workload(path)[0], want)


@pytest.mark.parametrize(
    "header, hint",
    [("Layer, M, K, N,", "expected 'N'"), (CONV_HEADER, "this looks like a conv topology")],
)
def test_a_bad_header_raises_the_row_by_row_message(tmp_path, header, hint):
    path = tmp_path / "h.csv"
    path.write_text(f"{header}\ng0, 8, 8, 8,\n", encoding="utf-8")
    with pytest.raises(ValueError) as fast:
        topology._scalesim_columns(path, gemm=True)
    with pytest.raises(ValueError) as slow:
        topology.read_scalesim_gemm(path)
    assert str(fast.value) == str(slow.value)
    assert hint in str(fast.value)


def test_split_rows_keeps_the_header_row_number():
    (row, header), rows = fastcsv.split_rows("\n \n,,\nLayer, M, N, K\ng, 1, 2, 3,\n", 4)
    assert row == 4 and header == ["Layer", "M", "N", "K"] and rows == [("g", "1", "2", "3")]
    assert fastcsv.split_rows("Layer, M, N, K\n", 4) is None  # no data row
