"""Technology files: the shipped default, overrides that bypass the laws, one-line errors."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from dse import Budgets
from hw import cost, layers, presets, tech
from hw.x64 import x64
from npu_dse import designs, techfiles
from npu_dse.search import problem_from_files
from npu_dse.workloads import bundled, bundled_space
from tests.test_cli import run

README = Path(__file__).resolve().parents[1] / "README.md"
WL = layers.workload([layers.gemm("g", m=128, k=96, n=64)])


def write(tmp_path, spec, name="t.json"):
    path = tmp_path / name
    path.write_text(json.dumps(spec))
    return path


@x64
def test_the_shipped_default_is_the_default_table_with_a_source_per_key():
    spec = json.loads(techfiles.default_tech_path().read_text())
    assert set(spec["sources"]) == set(tech.LAW_FIELDS)
    assert all(len(text) > 10 for text in spec["sources"].values())
    loaded = techfiles.load_tech(
        techfiles.default_tech_path(), presets.get_preset("edge-tpu-like").tech
    )
    for key in tech.LAW_FIELDS:
        assert float(getattr(loaded, key)) == float(getattr(tech.default_tech(), key)), key


def test_readme_documents_every_key_with_its_unit():
    text = README.read_text()
    for key in techfiles.TECH_KEYS:
        assert f"| `{key}` |" in text, key


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"dram_pj": 1.0}, "unknown tech key 'dram_pj'"),
        ({"mac_pj": -0.1}, "tech 'mac_pj' must be a finite number >= 0"),
        ({"node_nm": 0}, "tech 'node_nm' must be a finite number > 0"),
        ({"rf_pj_per_bit": "1"}, "tech 'rf_pj_per_bit' must be a finite number >= 0"),
        ({"leak_mw_per_mm2": True}, "tech 'leak_mw_per_mm2' must be a finite number >= 0"),
        ({"format": "other"}, "'format' must be 'npu-dse-tech'"),
        ({"sources": {"mac_pj": 3}}, "'sources' must be an object of text per key"),
    ],
)
def test_bad_technology_files_are_one_line_errors(tmp_path, spec, message):
    path = write(tmp_path, spec)
    code, out, err = run(["simulate", str(bundled("resnet18.csv")), "--tech", str(path)])
    assert code == 2 and out == "" and message in err and len(err.strip().splitlines()) == 1


@x64
def test_overrides_bypass_the_laws_and_rf_is_itemised():
    cfg = presets.get_preset("edge-tpu-like")
    base = cost.evaluate(cfg, WL)
    spec = {
        "mac_pj": 0.04,
        "ifmap_sram_pj_per_bit": 0.5,
        "filter_sram_pj_per_bit": 0.25,
        "ofmap_sram_pj_per_bit": 0.125,
        "rf_pj_per_bit": 0.01,
    }
    t = techfiles.tech_from_dict(spec, cfg.tech)
    rep = cost.evaluate(dataclasses.replace(cfg, tech=t), WL)
    macs = 128 * 96 * 64
    assert float(rep.energy_mac_pj[0]) == pytest.approx(macs * 0.04, rel=1e-12)
    # PE-local level (hw.cost): each MAC reads both operands and reads and writes its partial
    # sum; each word to or from a buffer passes one PE's level (partial sums read back too).
    writes = float(rep.sram_ofmap_writes[0])
    psum_reads = max(writes - 128 * 64, 0.0)  # WL: a 128 x 96 x 64 GEMM
    bits = (
        (macs + float(rep.sram_ifmap_reads[0])) * 8
        + (macs + float(rep.sram_filter_reads[0])) * 8
        + (2 * macs + writes + psum_reads) * 32
    )
    assert float(rep.energy_rf_pj[0]) == pytest.approx(bits * 0.01, rel=1e-12)
    assert float(base.energy_rf_pj[0]) == 0.0
    # The SRAM energy is the bits each buffer moves times its own override.
    scale = {"ifmap": 0.5, "filter": 0.25, "ofmap": 0.125}
    t_one = tech.with_overrides(cfg.tech, **{f"{b}_sram_pj_per_bit": 1.0 for b in scale})
    per_buffer = []
    for b in scale:
        only = {f"{o}_sram_pj_per_bit": float(o == b) for o in scale}
        cfg_b = dataclasses.replace(cfg, tech=tech.with_overrides(t_one, **only))
        per_buffer.append(float(cost.evaluate(cfg_b, WL).energy_sram_pj[0]))
    expected = sum(bits * s for bits, s in zip(per_buffer, scale.values(), strict=True))
    assert float(rep.energy_sram_pj[0]) == pytest.approx(expected, rel=1e-12)
    assert float(rep.energy_sram_pj[0]) != pytest.approx(float(base.energy_sram_pj[0]), rel=0.01)
    # Traffic and cycles do not depend on the table.
    assert int(rep.total_cycles[0]) == int(base.total_cycles[0])


@x64
def test_a_narrower_layer_scales_an_overridden_mac_by_the_law():
    cfg = presets.get_preset("edge-tpu-like")
    cfg = dataclasses.replace(cfg, tech=tech.with_overrides(cfg.tech, mac_pj=0.04))
    rep = cost.evaluate(cfg, WL, layer_bits=(4.0, 8.0))
    ratio = float(tech.mac_energy_pj(4, 8, 32, cfg.tech) / tech.mac_energy_pj(8, 8, 32, cfg.tech))
    assert float(rep.energy_mac_pj[0]) == pytest.approx(128 * 96 * 64 * 0.04 * ratio, rel=1e-12)


@x64
def test_node_rescales_the_laws_and_explicit_keys_win():
    base = presets.get_preset("edge-tpu-like").tech  # 28 nm
    t = techfiles.tech_from_dict({"node_nm": 45.0, "mult_pj_8b": 0.3}, base)
    assert float(t.add_pj_32b) == pytest.approx(0.1)
    assert float(t.mult_pj_8b) == 0.3


@x64
def test_design_files_carry_overrides_and_read_back_exactly():
    cfg = presets.get_preset("eyeriss-like")
    t = techfiles.tech_from_dict({"mac_pj": 0.21, "rf_pj_per_bit": 0.02}, cfg.tech)
    d = designs.config_to_dict(dataclasses.replace(cfg, tech=t))
    assert d["tech"]["mac_pj"] == 0.21 and "ifmap_sram_pj_per_bit" not in d["tech"]
    back = designs.design_from_dict(json.loads(json.dumps(d))).config
    assert back.tech.overrides == ("mac_pj",)
    assert float(back.tech.mac_pj) == 0.21 and float(back.tech.rf_pj_per_bit) == 0.02


@pytest.mark.slow
def test_simulate_and_search_take_a_technology_file(tmp_path):
    path = write(tmp_path, {"dram_pj_per_bit": 0.0, "leak_mw_per_mm2": 0.0})
    args = ["simulate", str(bundled("resnet18.csv")), "--preset", "edge-tpu-like", "--json"]
    _, plain, _ = run(args)
    code, out, err = run([*args, "--tech", str(path)])
    assert code == 0, err
    got, ref = json.loads(out)["total"], json.loads(plain)["total"]
    assert got["energy_breakdown_j"]["dram"] == 0.0 < ref["energy_breakdown_j"]["dram"]
    assert got["latency_s"] == ref["latency_s"]
    problem, _ = problem_from_files(
        bundled_space("edge.json"), "edp", Budgets(), bundled("resnet18.csv"), tech=path
    )
    assert float(problem.base.tech.dram_pj_per_bit) == 0.0


def test_one_mac_override_changes_only_the_mac_energy(tmp_path):
    path = write(tmp_path, {"mac_pj": 1.0})
    args = ["simulate", str(bundled("resnet18.csv")), "--json", "--tech", str(path)]
    code, out, err = run(args)
    assert code == 0, err
    total = json.loads(out)["total"]
    assert total["energy_breakdown_j"]["mac"] == pytest.approx(total["macs"] * 1e-12, rel=1e-9)
    assert np.isfinite(total["energy_j"])
