"""Shared fixtures: the SCALE-Sim reference rows (skipped with a reason when absent)."""

import pytest

from experiments.reference import load_reference, reference_path


@pytest.fixture(scope="session")
def reference_rows():
    path = reference_path()
    if not path.exists():
        pytest.skip(f"SCALE-Sim reference data not found at {path} (set NPU_DSE_REFERENCE)")
    return load_reference(path)
