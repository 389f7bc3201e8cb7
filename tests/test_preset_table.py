"""The stored ``npu-dse presets`` table equals what the exact model computes now."""

from pathlib import Path

import pytest

from hw import checks, presets
from npu_dse import cli, designs, preset_table, report
from npu_dse.simulate import resolve_design

REGENERATE = "stale table: regenerate with python -m npu_dse.preset_table"


def _same(got: dict, want: dict, keys) -> None:
    for key in keys:
        if isinstance(want[key], float):
            assert got[key] == pytest.approx(want[key], rel=1e-12), (want["name"], key)
        else:
            assert got[key] == want[key], (want["name"], key, REGENERATE)


def test_stored_designs_are_the_presets():
    assert tuple(presets.preset_names()) == preset_table.NAMES
    for name, got in zip(preset_table.NAMES, preset_table.ROWS, strict=True):
        want = report.preset_dict(resolve_design(preset=name).config, 0.0)
        assert got.keys() == want.keys(), REGENERATE
        _same(got, want, [k for k in want if k != "full_load_power_w"])


def test_stored_full_load_power_of_one_preset_is_the_exact_models():
    got = preset_table.ROWS[preset_table.NAMES.index("edge-tpu-like")]
    power = checks.full_load_power_w(resolve_design(preset="edge-tpu-like").config)
    _same(got, {"name": got["name"], "full_load_power_w": power}, ["full_load_power_w"])


@pytest.mark.slow  # a compilation of the full-load GEMM per preset
def test_every_stored_row_is_what_compute_gives():
    for got, want in zip(preset_table.ROWS, preset_table.compute(), strict=True):
        assert got.keys() == want.keys(), REGENERATE
        _same(got, want, want)


def test_constants_the_cli_keeps_without_jax_match_their_sources():
    assert cli.FULL_LOAD_GEMM == checks.FULL_LOAD_GEMM
    assert cli.DEFAULT_PRESET == designs.DEFAULT_BASE


def test_write_regenerates_the_module_in_its_layout(tmp_path, monkeypatch):
    monkeypatch.setattr(preset_table, "compute", lambda: preset_table.ROWS)
    text = Path(preset_table.__file__).read_text()
    path = tmp_path / "preset_table.py"
    begin, end = text.index("ROWS: list[dict] = ["), text.index(preset_table.END)
    path.write_text(text[:begin] + "ROWS: list[dict] = []\n" + text[end:])
    preset_table.write(path)
    assert path.read_text() == text
