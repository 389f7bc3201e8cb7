"""Space files whose base is a design file (npu_dse.spaces)."""

import json

import pytest

from hw import get_preset
from npu_dse.designs import config_to_dict
from npu_dse.spaces import load_space


def test_a_design_file_as_base(tmp_path):
    design = config_to_dict(get_preset("edge-tpu-like")) | {"clock_mhz": 123.0, "name": "mine"}
    (tmp_path / "mine.json").write_text(json.dumps(design))
    (tmp_path / "space.json").write_text(json.dumps({"base": "mine.json", "rows": [16, 32]}))
    space = load_space(tmp_path / "space.json")
    assert space.base == "mine.json" and space.rows == (16.0, 32.0)
    assert space.clock_mhz == (123.0,)
    assert float(space.base_config().clock_mhz) == 123.0


def test_a_preset_base_is_unchanged(tmp_path):
    (tmp_path / "space.json").write_text(json.dumps({"base": "tpu-v1-like", "rows": [8]}))
    assert load_space(tmp_path / "space.json").base_config().name == "tpu-v1-like"


@pytest.mark.parametrize(
    "base, message",
    [("nothing.json", "neither a preset"), (7, "base must be a preset name")],
)
def test_a_bad_base_is_one_line(tmp_path, base, message):
    (tmp_path / "space.json").write_text(json.dumps({"base": base}))
    with pytest.raises(ValueError, match=message):
        load_space(tmp_path / "space.json")
