"""Shared fixtures: the SCALE-Sim reference rows (skipped with a reason when absent) and one
folder of trained models for every experiment's smoke test.

JAX's persistent compilation cache stays off in tests (CLI calls in-process and in child
processes alike), so that no test reads programs another run compiled; tests/test_startup.py
switches it on for the one test that checks it.

XLA compiles the suite's programs without LLVM's optimization passes
(``--xla_backend_optimization_level=0``, appended to ``XLA_FLAGS`` before JAX starts, and so
inherited by the CLI runs in child processes): most of the suite's time is compilation of
small programs that then run for milliseconds, and the passes take about a third of it. The
programs compute the same things; floating-point results may differ from an optimized build's
in the last bits (LLVM may fuse a multiply and an add), so no test compares floats across the
two for exact equality. ``NPU_DSE_TEST_XLA_OPT=default`` runs the suite with XLA's own level.
"""

import os

import pytest

os.environ["NPU_DSE_COMPILE_CACHE"] = "off"
FAST_COMPILE = "--xla_backend_optimization_level=0"
if os.environ.get("NPU_DSE_TEST_XLA_OPT", "fast") != "default":
    _flags = os.environ.get("XLA_FLAGS", "")
    if "xla_backend_optimization_level" not in _flags:
        os.environ["XLA_FLAGS"] = f"{_flags} {FAST_COMPILE}".strip()

# imported after XLA_FLAGS is set (JAX reads it when its backend starts)
from experiments.common import MODEL_CACHE_ENV  # noqa: E402
from npu_dse.reference import load_reference, reference_path  # noqa: E402


@pytest.fixture(scope="session")
def reference_rows():
    path = reference_path()
    if not path.exists():
        pytest.skip(f"SCALE-Sim reference data not found at {path} (set NPU_DSE_REFERENCE)")
    return load_reference(path)


@pytest.fixture(scope="session")
def model_cache_dir(tmp_path_factory):
    """One folder of trained quick models for the whole session (trained on first use)."""
    return tmp_path_factory.getbasetemp() / "model_cache"


@pytest.fixture
def model_cache(model_cache_dir, monkeypatch):
    """``NPU_DSE_MODEL_CACHE`` pointed at :func:`model_cache_dir` for one test."""
    monkeypatch.setenv(MODEL_CACHE_ENV, str(model_cache_dir))
    return model_cache_dir
