"""Tests of npu_dse.workloads: SCALE-Sim CSVs, the JSON workload format, error messages."""

import json

import numpy as np
import pytest

from hw import layers
from npu_dse import workloads as topology

CONV_HEADER = (
    "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, "
    "Strides,\n"
)
GEMM_HEADER = "Layer, M, N, K,\n"


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def one_line_error(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


# ---- bundled examples ---------------------------------------------------------------------


def test_bundled_resnet18():
    wl, found = topology.load_workload(topology.bundled("resnet18.csv"))
    assert wl.num_layers == len(found) == 21
    conv1 = found[0]
    # SCALE-Sim's ceil lowering, no padding: ceil((224 - 7 + 2) / 2) = 110 per side.
    assert (conv1.gemm_m, conv1.gemm_k, conv1.gemm_n) == (110 * 110, 7 * 7 * 3, 64)
    # layer1 3x3 convs as in the SCALE-Sim reference rows: 56 -> 54, M = 2916, K = 576.
    assert (found[1].gemm_m, found[1].gemm_k, found[1].gemm_n) == (2916, 576, 64)
    assert sum(lay.kind == "conv" for lay in found) == 21
    assert found[-1].name == "fc" and found[-1].macs == 512 * 1000


def test_bundled_bert_layer_gemms():
    wl, found = topology.load_workload(topology.bundled("bert_base_layer_gemm.csv"), gemm=True)
    assert wl.num_layers == 30  # Q, K, V, O, 12 score and 12 context heads, 2 FFN
    by_name = {lay.name: lay for lay in found}
    q = by_name["q_proj"]
    assert (q.gemm_m, q.gemm_k, q.gemm_n) == (128, 768, 768)
    up, down = by_name["ffn_up"], by_name["ffn_down"]
    assert (up.gemm_m, up.gemm_k, up.gemm_n) == (128, 768, 3072)
    assert (down.gemm_m, down.gemm_k, down.gemm_n) == (128, 3072, 768)
    score, context = by_name["attn_score_h0"], by_name["attn_context_h11"]
    assert (score.gemm_m, score.gemm_k, score.gemm_n) == (128, 64, 128)
    assert (context.gemm_m, context.gemm_k, context.gemm_n) == (128, 128, 64)
    # 4 * 128*768*768 + 24 * 128*128*64 + 2 * 128*768*3072
    assert int(np.sum(wl.macs)) == 4 * 75497472 + 24 * 1048576 + 2 * 301989888


def test_bundled_tiny_transformer():
    wl, found = topology.load_workload(topology.bundled("tiny_transformer.json"))
    assert wl.num_layers == len(found) == 15
    kinds = set(wl.kinds)
    assert {
        "conv",
        "gemm",
        "matmul",
        "dense",
        "softmax",
        "layernorm",
        "gelu",
        "add",
        "pool",
    } <= kinds
    assert all(lay.macs > 0 or lay.vector_ops > 0 for lay in found)


# ---- SCALE-Sim CSV ------------------------------------------------------------------------


def test_gemm_csv_order_is_m_n_k(tmp_path):
    path = write(tmp_path, "g.csv", GEMM_HEADER + "g1, 10, 20, 30,\n")
    (lay,) = topology.read_scalesim_gemm(path)
    assert (lay.gemm_m, lay.gemm_n, lay.gemm_k) == (10, 20, 30)


def test_conv_csv_tolerates_scalesim_quirks(tmp_path):
    # Spaces, trailing comma, blank rows, a BOM and SCALE-Sim's extra "Target" column.
    text = (
        "\ufeffLayer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
        "Num Filter, Strides,, Target\n"
        ",,,,,,,,\n"
        "  c1 ,  8, 8 , 3, 3, 1, 4, 1, , NPU\n"
        "\n"
        "c2,8,8,3,3,4,4,2\n"
    )
    found = topology.read_scalesim_conv(write(tmp_path, "q.csv", text))
    assert [lay.name for lay in found] == ["c1", "c2"]
    assert found[0] == layers.conv2d(
        "c1", ifmap_h=8, ifmap_w=8, channels=1, num_filters=4, filter_h=3, filter_w=3
    )
    # SCALE-Sim's ceil rounding: ceil((8 - 3 + 2) / 2) = 4 per side (floor would give 3).
    assert (found[1].gemm_m, found[1].gemm_k) == (4 * 4, 3 * 3 * 4)


@pytest.mark.parametrize(
    ("row", "field", "got"),
    [
        ("c, 8, 8, 3, 3, 1, 4, x,", "'Strides'", "'x'"),
        ("c, 8, 8, 3, 3, 1, 0, 1,", "'Num Filter'", "'0'"),
        ("c, -8, 8, 3, 3, 1, 4, 1,", "'IFMAP Height'", "'-8'"),
        ("c, 8, 8, 3, 2.5, 1, 4, 1,", "'Filter Width'", "'2.5'"),
        ("c, 8, 8, 3, 3, , 4, 1,", "'Channels'", "''"),
    ],
)
def test_conv_csv_bad_field_names_row_and_field(tmp_path, row, field, got):
    path = write(tmp_path, "bad.csv", CONV_HEADER + "ok, 8, 8, 3, 3, 1, 4, 1,\n" + row + "\n")
    with pytest.raises(ValueError) as excinfo:
        topology.read_scalesim_conv(path)
    message = one_line_error(excinfo)
    assert "bad.csv row 3:" in message
    assert f"{field} must be a positive integer, got {got}" in message


def test_conv_csv_short_row(tmp_path):
    path = write(tmp_path, "short.csv", CONV_HEADER + "c, 8, 8, 3,\n")
    with pytest.raises(ValueError, match=r"short\.csv row 2: expected 8 fields .* got 4"):
        topology.read_scalesim_conv(path)


def test_conv_csv_filter_larger_than_input_names_row_and_layer(tmp_path):
    path = write(tmp_path, "big.csv", CONV_HEADER + "c1, 2, 2, 3, 3, 1, 4, 1,\n")
    with pytest.raises(ValueError, match=r"big\.csv row 2: layer 'c1': the 3x3 filter"):
        topology.read_scalesim_conv(path)


def test_conv_csv_empty_name(tmp_path):
    path = write(tmp_path, "n.csv", CONV_HEADER + ", 8, 8, 3, 3, 1, 4, 1,\n")
    with pytest.raises(ValueError, match=r"n\.csv row 2: 'Layer name' must not be empty"):
        topology.read_scalesim_conv(path)


def test_csv_without_header_is_rejected(tmp_path):
    path = write(tmp_path, "nohead.csv", "c1, 8, 8, 3, 3, 1, 4, 1,\n")
    with pytest.raises(ValueError, match=r"nohead\.csv row 1: expected a header row"):
        topology.read_scalesim_conv(path)


def test_csv_header_only_or_empty(tmp_path):
    with pytest.raises(ValueError, match="no layers after the header"):
        topology.read_scalesim_conv(write(tmp_path, "h.csv", CONV_HEADER))
    with pytest.raises(ValueError, match="empty file"):
        topology.read_scalesim_conv(write(tmp_path, "e.csv", ""))


def test_wrong_format_hints(tmp_path):
    gemm_file = write(tmp_path, "g.csv", GEMM_HEADER + "g, 4, 4, 4,\n")
    with pytest.raises(ValueError, match=r"--gemm"):
        topology.read_scalesim_conv(gemm_file)
    conv_file = write(tmp_path, "c.csv", CONV_HEADER + "c, 8, 8, 3, 3, 1, 4, 1,\n")
    with pytest.raises(ValueError, match=r"drop --gemm"):
        topology.read_scalesim_gemm(conv_file)


def test_gemm_csv_bad_field(tmp_path):
    path = write(tmp_path, "g.csv", GEMM_HEADER + "g1, 4, 4, 4,\ng2, 4, 0, 4,\n")
    with pytest.raises(ValueError) as excinfo:
        topology.read_scalesim_gemm(path)
    assert "g.csv row 3: 'N' must be a positive integer, got '0'" in one_line_error(excinfo)


# ---- npu-dse JSON -------------------------------------------------------------------------


def write_json(tmp_path, doc, name="w.json"):
    return write(tmp_path, name, json.dumps(doc))


def test_json_builders_match_hw_layers(tmp_path):
    doc = {
        "name": "t",
        "layers": [
            {"type": "gemm", "m": 4, "k": 5, "n": 6, "count": 2},
            {"name": "sm", "type": "softmax", "elems": 10},
            {"type": "matmul", "m": 8, "k": 4, "n": 8, "count": 3},
        ],
    }
    found = topology.read_workload_json(write_json(tmp_path, doc))
    assert found[0] == layers.gemm("gemm1", m=4, k=5, n=6, count=2)
    assert found[1] == layers.vector("sm", "softmax", elems=10)
    assert found[2] == layers.batched_matmul("matmul3", m=8, k=4, n=8, count=3)


@pytest.mark.parametrize(
    ("layer", "expected"),
    [
        ({"type": "conv3d"}, "layer 2: unknown layer type 'conv3d'; allowed types: conv2d"),
        ({"m": 4}, "layer 2: unknown layer no 'type'"),
        (
            {"name": "d", "type": "dense", "in_features": 4, "out_features": 4, "tokenz": 2},
            "layer 2 ('d'): unknown key 'tokenz' for type 'dense'; allowed: in_features",
        ),
        ({"type": "gemm", "m": 4, "k": 4}, "layer 2 ('gemm2'): missing key 'n' for type 'gemm'"),
        (
            {"type": "gemm", "m": 4, "k": 4, "n": -1},
            "layer 2 ('gemm2'): n must be a positive integer, got -1",
        ),
        ({"type": "add", "elems": 1.5}, "elems must be a positive integer, got 1.5"),
        ([1, 2], "layer 2: expected an object, got list"),
    ],
)
def test_json_bad_layer_names_layer_and_key(tmp_path, layer, expected):
    doc = {"layers": [{"type": "relu", "elems": 4}, layer]}
    with pytest.raises(ValueError) as excinfo:
        topology.read_workload_json(write_json(tmp_path, doc))
    message = one_line_error(excinfo)
    assert "w.json layer 2" in message
    assert expected in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"layers": [', r"w\.json is not valid JSON \(Expecting value at line 1"),
        ("[]", r"expected an object"),
        ('{"layers": []}', r"'layers' is empty"),
        ('{"layers": [{"type": "relu", "elems": 1}], "lyers": 1}', r"unknown key 'lyers'"),
    ],
)
def test_json_bad_document(tmp_path, text, expected):
    with pytest.raises(ValueError, match=expected):
        topology.read_workload_json(write(tmp_path, "w.json", text))


# ---- load_workload ------------------------------------------------------------------------


def test_load_workload_missing_file(tmp_path):
    missing = tmp_path / "nope.csv"
    with pytest.raises(ValueError, match=f"workload file not found: {missing}"):
        topology.load_workload(missing)


def test_load_workload_unknown_extension_and_gemm_json(tmp_path):
    with pytest.raises(ValueError, match=r"unknown workload format '\.txt'"):
        topology.load_workload(write(tmp_path, "w.txt", "x"))
    path = write_json(tmp_path, {"layers": [{"type": "relu", "elems": 4}]})
    with pytest.raises(ValueError, match="GEMM format applies to SCALE-Sim .csv"):
        topology.load_workload(path, gemm=True)


def test_load_workload_binary_file(tmp_path):
    path = tmp_path / "b.csv"
    path.write_bytes(b"\xff\xfe\x00\x81garbage")
    with pytest.raises(ValueError, match="not a UTF-8 text file"):
        topology.load_workload(path)


def test_load_workload_stacks_layers(tmp_path):
    path = write(tmp_path, "g.csv", GEMM_HEADER + "a, 2, 3, 4,\nb, 5, 6, 7,\n")
    wl, found = topology.load_workload(path, gemm=True)
    assert wl.names == ("a", "b")
    np.testing.assert_array_equal(wl.gemm_m, [2, 5])
    np.testing.assert_array_equal(wl.gemm_n, [3, 6])
    np.testing.assert_array_equal(wl.gemm_k, [4, 7])
    assert [lay.name for lay in found] == ["a", "b"]
