"""Test-suite options shared by every test folder.

Long checks carry ``@pytest.mark.slow``. ``make test`` runs a fixed sample of them (about one in
four, chosen by a hash of the test's id, so the same ones run every time) to keep the suite
within minutes on a 2-core machine; ``--slow all`` (or ``NPU_DSE_SLOW=all``) runs every one and
``--slow none`` none. A module whose tests share one long fixture (an experiment's quick run) marks
them ``pytest.mark.slow(whole_module=True)``: the hash of the module's path then decides for all of
them together, so the fixture runs fully or not at all.

Every distinct compilation of a jitted function keeps a few memory mappings alive in the process
until JAX's caches drop it. One pytest process compiles tens of thousands of shapes, and Linux
caps a process at 65,530 mappings (``vm.max_map_count``); past it the next compilation dies with
a segmentation fault. So between test modules, once the process holds more than
``MAPPINGS_CLEAR_AT`` mappings, the suite clears JAX's caches (a later test recompiles what it
needs; no test's own compilation count is affected, since a test never spans two modules).
"""

import gc
import os
import zlib

SLOW_MODES = ("sample", "all", "none")
SAMPLE_ONE_IN = 4
MAPPINGS_CLEAR_AT = 20_000
_MAPS = "/proc/self/maps"


def pytest_addoption(parser):
    parser.addoption(
        "--slow",
        choices=SLOW_MODES,
        default=os.environ.get("NPU_DSE_SLOW", "sample"),
        help="which tests marked slow run: a fixed sample (default), all or none",
    )


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a long check; make test runs a fixed sample of them")


def _in_sample(nodeid: str) -> bool:
    return zlib.crc32(nodeid.encode()) % SAMPLE_ONE_IN == 0


def pytest_collection_modifyitems(config, items):
    mode = config.getoption("--slow")
    if mode == "all":
        return
    keep, drop = [], []
    for item in items:
        marker = item.get_closest_marker("slow")
        slow = marker is not None
        key = item.nodeid
        if slow and marker.kwargs.get("whole_module"):
            key = item.nodeid.split("::", 1)[0]
        if slow and (mode == "none" or not _in_sample(key)):
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_report_header(config):
    return f"slow checks: {config.getoption('--slow')} (--slow all runs every one)"


def _mappings() -> int:
    try:
        with open(_MAPS, "rb") as f:
            return sum(1 for _ in f)
    except OSError:
        return 0


def pytest_runtest_teardown(item, nextitem):
    if nextitem is not None and nextitem.path == item.path:  # same file (doctests have no module)
        return
    if _mappings() > MAPPINGS_CLEAR_AT:
        import jax

        jax.clear_caches()
        gc.collect()
