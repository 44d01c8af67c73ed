import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "scripts"))
sys.path.insert(0, HERE)

import upstream  # noqa: E402
from centerkit import releases  # noqa: E402

TABLE = releases.load_table()
SDIST_RELEASES = [r for r in TABLE if r.sdist_sha256]


@pytest.fixture
def clone_source():
    source, why = upstream.clone_source()
    if source is None:
        pytest.skip(why)
    return source


@pytest.fixture
def tree_of(clone_source):
    """release -> a clean tree of it from the clone (skips when the clone lacks it)."""
    def get(release):
        path = upstream.release_tree(clone_source, release)
        if path is None:
            pytest.skip("%s has neither tag %s nor the commit the shared table gives" % (clone_source, release))
        return path
    return get


def pytest_report_header(config):
    source, why = upstream.clone_source()
    return "ppocr-center-kit clone tier: %s" % (source or "skipped: " + why)
