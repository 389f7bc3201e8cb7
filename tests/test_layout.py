"""The package layout: imports point one way (hw <- models, dse <- npu_dse <- scripts).

Every module's imports are read from its source (``ast``), so the check needs no import of
the modules themselves and sees imports inside functions too.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("hw", "models", "dse", "npu_dse", "experiments", "benchmarks")
ALLOWED = {
    "hw": set(),
    "models": {"hw"},
    "dse": {"hw"},
    "npu_dse": {"hw", "models", "dse"},
    "experiments": {"hw", "models", "dse", "npu_dse"},
    "benchmarks": {"hw", "models", "dse", "npu_dse"},
}
"""Which of our packages each package may import (besides itself)."""
SCRIPT_PACKAGES = ("experiments", "benchmarks")
SCRIPT_HELPERS = {"experiments.common"}
"""The one module of ``experiments`` that scripts may import."""
CLI_MODULES = ("npu_dse.cli", "npu_dse.cli_models", "npu_dse.cli_search")
CLI_DRIVERS = {"benchmarks.fuzz_cli"}
"""Modules that must drive the command line itself: the fuzz harness feeds it hostile input."""


def _modules():
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            yield ".".join(parts), path


def _imports(name: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            found.update(f"{mod}.{a.name}" for a in node.names)
    return {m for m in found if m.split(".")[0] in PACKAGES}


MODULES = dict(_modules())


def _violations(name: str, imported: set[str]) -> list[str]:
    top = name.split(".")[0]
    bad = []
    for mod in sorted(imported):
        other = mod.split(".")[0]
        if other != top and other not in ALLOWED[top]:
            bad.append(f"{name} imports {mod} ({top} may import {sorted(ALLOWED[top]) or 'none'})")
        script = top in SCRIPT_PACKAGES and other == top and mod not in (name, top)
        if script and mod not in SCRIPT_HELPERS and mod in MODULES:
            bad.append(f"script {name} imports another script, {mod}")
        if mod in CLI_MODULES and not name.startswith("npu_dse.cli") and name not in CLI_DRIVERS:
            bad.append(f"{name} imports the command line ({mod}); call a use case instead")
    return bad


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_point_one_way(name):
    assert _violations(name, _imports(name, MODULES[name])) == []


def test_the_checker_catches_wrong_arrows():
    assert _violations("hw.cost", {"dse.space"})
    assert _violations("dse.space", {"npu_dse.workloads"})
    assert _violations("experiments.demo", {"experiments.exp_precision"})
    assert _violations("benchmarks.bench_search", {"experiments.common"})
    assert _violations("experiments.demo", {"npu_dse.cli_search"})
    assert not _violations("experiments.demo", {"experiments.common", "npu_dse.search"})


def test_every_package_is_walked():
    assert {name.split(".")[0] for name in MODULES} == set(PACKAGES)
