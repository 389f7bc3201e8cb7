"""Shared fixtures: the SCALE-Sim reference rows (skipped with a reason when absent) and one
folder of trained models for every experiment's smoke test.

JAX's persistent compilation cache stays off in tests (CLI calls in-process and in child
processes alike), so that no test reads programs another run compiled; tests/test_startup.py
switches it on for the one test that checks it.
"""

import os

import pytest

os.environ["NPU_DSE_COMPILE_CACHE"] = "off"

from experiments.common import MODEL_CACHE_ENV
from npu_dse.reference import load_reference, reference_path


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
