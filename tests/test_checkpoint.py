"""Search checkpoints as data (dse.checkpoint): round trip, atomic writes, unreadable files."""

import pickle
import zipfile

import numpy as np
import pytest

from dse import checkpoint as ckpt

NAME = "state"


def test_round_trip(tmp_path):
    arrays = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array(True)}
    scalars = {"chunk": 2, "rows": [{"x": 1.5, "ok": True}], "best": float("inf")}
    ckpt.save(tmp_path / "run", NAME, scalars, arrays)
    got_scalars, got_arrays = ckpt.load(tmp_path / "run", NAME)
    assert got_scalars == scalars
    assert got_arrays.keys() == arrays.keys()
    for k, v in arrays.items():
        np.testing.assert_array_equal(got_arrays[k], v)
        assert got_arrays[k].dtype == v.dtype


def test_missing_is_none_and_leftover_temp_files_are_removed(tmp_path):
    leftover = tmp_path / f"{NAME}.npz.1234{ckpt.TMP_SUFFIX}"
    leftover.write_bytes(b"half a write")
    assert ckpt.load(tmp_path, NAME) is None
    assert not leftover.exists()
    ckpt.save(tmp_path, NAME, {"chunk": 1}, {})
    assert [p.name for p in tmp_path.iterdir()] == [f"{NAME}.npz"]


def _foreign_npz(path):
    with open(path, "wb") as f:
        np.savez(f, x=np.zeros(3))


class _Bomb:
    """Unpickling this would create a file."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.parametrize("kind", ["empty", "truncated", "corrupt", "foreign", "pickle"])
def test_unreadable_checkpoint_is_a_one_line_error(tmp_path, kind):
    file = ckpt.path(tmp_path, NAME)
    ckpt.save(tmp_path, NAME, {"chunk": 1}, {"a": np.arange(1000.0)})
    data = file.read_bytes()
    bomb = tmp_path / "exploded"
    content = {
        "empty": b"",
        "truncated": data[: len(data) // 2],
        "corrupt": data[:40] + bytes(200) + data[240:],
        "pickle": pickle.dumps(_Bomb(str(bomb))),
    }
    if kind == "foreign":
        _foreign_npz(file)
    else:
        file.write_bytes(content[kind])
    with pytest.raises(ValueError, match="checkpoint folder") as err:
        ckpt.load(tmp_path, NAME)
    assert str(tmp_path) in str(err.value) and "\n" not in str(err.value)
    assert not bomb.exists()


def test_a_checkpoint_is_a_plain_zip_of_arrays(tmp_path):
    ckpt.save(tmp_path, NAME, {"chunk": 1}, {"a": np.ones(2)})
    with zipfile.ZipFile(ckpt.path(tmp_path, NAME)) as z:
        assert sorted(z.namelist()) == ["a.npy", "meta.npy"]
