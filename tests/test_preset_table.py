"""The stored ``npu-dse presets`` table equals what the exact model computes now."""

from pathlib import Path

import pytest

from hw import checks, presets
from npu_dse import cli, designs, preset_table


def test_stored_rows_are_the_exact_models():
    live = preset_table.compute()  # JAX: a compilation of the full-load GEMM per preset
    stored = preset_table.ROWS
    assert [r["name"] for r in stored] == list(presets.preset_names())
    assert tuple(presets.preset_names()) == preset_table.NAMES
    for want, got in zip(live, stored, strict=True):
        assert got.keys() == want.keys(), "regenerate: python -m npu_dse.preset_table"
        for key, value in want.items():
            if isinstance(value, float):
                assert got[key] == pytest.approx(value, rel=1e-12), (want["name"], key)
            else:
                assert got[key] == value, (want["name"], key)


def test_constants_the_cli_keeps_without_jax_match_their_sources():
    assert cli.FULL_LOAD_GEMM == checks.FULL_LOAD_GEMM
    assert cli.DEFAULT_PRESET == designs.DEFAULT_BASE


def test_write_regenerates_the_module_in_its_layout(tmp_path, monkeypatch):
    monkeypatch.setattr(preset_table, "compute", lambda: preset_table.ROWS)
    src = preset_table.__file__
    path = tmp_path / "preset_table.py"
    text = Path(src).read_text()
    begin = text.index("ROWS: list[dict] = [")
    end = text.index(preset_table.END)
    path.write_text(text[:begin] + "ROWS: list[dict] = []\n" + text[end:])
    preset_table.write(path)
    assert path.read_text() == text
