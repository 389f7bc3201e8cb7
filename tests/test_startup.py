"""Start-up: commands that need no JAX do not import it; the CLI's compilation cache serves a
second run of the same shapes."""

import json
import os
import subprocess
import sys

import pytest

from npu_dse import compile_cache

_NO_JAX = """
import contextlib, io, json, sys
import hw, npu_dse
from npu_dse.cli import main
out = {}
for argv in (["--help"], [], ["presets"], ["presets", "--json"], ["simulate", "--rows"]):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = main(argv)
    out[" ".join(argv)] = [code, "jax" in sys.modules]
print(json.dumps(out))
"""


def _child(code: str, env: dict | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_help_and_presets_import_no_jax():
    out = json.loads(_child(_NO_JAX))
    assert out == {
        "--help": [0, False],
        "": [2, False],  # no command: a usage error
        "presets": [0, False],
        "presets --json": [0, False],
        "simulate --rows": [2, True],  # simulate's flags list JAX-side choices
    }


_SIMULATE_TWICE = """
import contextlib, io, json, sys
import jax.monitoring as monitoring
events = []
monitoring.register_event_listener(lambda name, **kw: events.append(name))
from npu_dse.cli import main
buf = io.StringIO()
with contextlib.redirect_stdout(buf):
    code = main(sys.argv[1:])
prefix = "/jax/compilation_cache/"
print(json.dumps({
    "code": code,
    "requests": events.count(prefix + "compile_requests_use_cache"),
    "hits": events.count(prefix + "cache_hits"),
    "result": json.loads(buf.getvalue())["total"],
}))
"""


def test_a_second_run_loads_every_program_from_the_cache(tmp_path):
    csv = tmp_path / "two.csv"
    csv.write_text("Layer, M, N, K,\ng0, 64, 64, 64,\ng1, 128, 64, 32,\n")
    cache = tmp_path / "cache"
    argv = [compile_cache.FLAG, str(cache), "simulate", str(csv), "--gemm", "--json"]
    code = _SIMULATE_TWICE.replace("sys.argv[1:]", repr(argv))
    first = json.loads(_child(code))
    assert first["code"] == 0 and first["requests"] > 0 and first["hits"] == 0
    assert any(cache.iterdir())
    second = json.loads(_child(code))
    assert second["code"] == 0 and second["hits"] == second["requests"] == first["requests"]
    assert second["result"] == first["result"]


def test_the_environment_variable_moves_or_disables_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(compile_cache.ENV, str(tmp_path / "c"))
    assert compile_cache.resolve(None) == tmp_path / "c"
    assert compile_cache.resolve("off") is None  # the flag wins
    monkeypatch.setenv(compile_cache.ENV, "OFF")
    assert compile_cache.resolve(None) is None
    assert compile_cache.resolve(str(tmp_path / "d")) == tmp_path / "d"
    monkeypatch.delenv(compile_cache.ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert compile_cache.resolve(None) == tmp_path / "xdg" / "npu-dse" / "jax"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert compile_cache.default_dir() == compile_cache.Path.home() / ".cache/npu-dse/jax"


def test_a_cache_folder_that_cannot_be_made_is_bad_input(tmp_path, capsys):
    from npu_dse.cli import main

    blocker = tmp_path / "file"
    blocker.write_text("")
    code = main([compile_cache.FLAG, str(blocker / "sub"), "simulate", "x.csv"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"npu-dse: error: {compile_cache.FLAG}: cannot create") and "off" in err


@pytest.mark.parametrize("where", ["before", "after"])
def test_the_flag_goes_before_or_after_the_command(where):
    from npu_dse.cli import build_parser

    argv = ["simulate", "x.csv"]
    argv = (
        [compile_cache.FLAG, "off", *argv]
        if where == "before"
        else [*argv, "--compile-cache", "off"]
    )
    assert build_parser(argv).parse_args(argv).compile_cache == "off"
    assert (
        build_parser(["simulate", "x.csv"]).parse_args(["simulate", "x.csv"]).compile_cache is None
    )
