"""Test-suite options shared by every test folder.

Long checks carry ``@pytest.mark.slow``. ``make test`` runs a fixed sample of them (about one in
four, chosen by a hash of the test's id, so the same ones run every time) to keep the suite
within minutes on a 2-core machine; ``--slow all`` (or ``NPU_DSE_SLOW=all``) runs every one and
``--slow none`` none.
"""

import os
import zlib

SLOW_MODES = ("sample", "all", "none")
SAMPLE_ONE_IN = 4


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
        slow = item.get_closest_marker("slow") is not None
        if slow and (mode == "none" or not _in_sample(item.nodeid)):
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_report_header(config):
    return f"slow checks: {config.getoption('--slow')} (--slow all runs every one)"
