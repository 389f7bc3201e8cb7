"""Test-suite options shared by every test folder.

Long checks carry ``@pytest.mark.slow``. ``make test`` runs a fixed sample of them (about one in
eight, chosen by a hash of the test's id, so the same ones run every time) to keep the suite
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

The test processes of one run (both ``pytest -n 2`` workers) share one JAX persistent
compilation cache in a fresh temporary folder, removed at the end: a program one test module
compiled is loaded, not compiled again, by a later module or the other worker (and after a
cache clear above). Nothing outlives the run, so no run reads what another compiled; child
processes that tests start (the CLI as a user runs it) do not use it. ``--no-shared-cache``
(or ``NPU_DSE_TEST_SHARED_CACHE=off``) switches it off; a test that counts compilations turns
it off for itself (``tests/test_recompile.py``).
"""

import gc
import os
import shutil
import tempfile
import zlib

SLOW_MODES = ("sample", "all", "none")
SAMPLE_ONE_IN = 8
MAPPINGS_CLEAR_AT = 40_000
_MAPS = "/proc/self/maps"
SHARED_CACHE_ENV = "NPU_DSE_TEST_SHARED_CACHE"
"""The run's shared compilation cache folder (set by the controlling process, read by the
workers, which inherit it), or ``off``."""


def pytest_addoption(parser):
    parser.addoption(
        "--slow",
        choices=SLOW_MODES,
        default=os.environ.get("NPU_DSE_SLOW", "sample"),
        help="which tests marked slow run: a fixed sample (default), all or none",
    )
    parser.addoption(
        "--no-shared-cache",
        action="store_true",
        help="no compilation cache shared by the run's test processes",
    )


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: a long check; make test runs a fixed sample of them")
    if config.getoption("--no-shared-cache"):
        os.environ[SHARED_CACHE_ENV] = "off"
    if not os.environ.get(SHARED_CACHE_ENV):  # the controlling process (or a run without -n)
        folder = tempfile.mkdtemp(prefix="npu-dse-test-jax-cache-")
        os.environ[SHARED_CACHE_ENV] = folder
        config._npu_dse_shared_cache = folder  # removed by this process at the end
    folder = os.environ[SHARED_CACHE_ENV]
    if folder != "off" and os.path.isdir(folder):
        import jax

        jax.config.update("jax_compilation_cache_dir", folder)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)


def pytest_unconfigure(config):
    folder = getattr(config, "_npu_dse_shared_cache", None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


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
