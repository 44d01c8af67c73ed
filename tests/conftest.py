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


def pytest_report_header(config):
    source, why = upstream.clone_source()
    return "ppocr-center-kit clone tier: %s" % (source or "skipped: " + why)
