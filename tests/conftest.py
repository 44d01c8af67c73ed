import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "scripts"))
sys.path.insert(0, HERE)

# Every run of the suite is also the proof that it is hermetic: the variables a user sets
# for the kit (README) hold hostile values here, so a test whose child inherited one would
# act on a clone that does not exist, refuse to overwrite, or run 3 processes, and fail.
# Children get kit_run.hermetic_env() instead.
HOSTILE = {
    "PADDLEOCR": "/nonexistent/paddleocr", "CONFIG": "/nonexistent/config.yml", "CHECKPOINT": "/nonexistent/ckpt",
    "MODEL": "NoSuchModel", "MODE": "nosuchmode", "ENGINE": "nosuchengine", "OUTPUT": "x", "OPTS": "-o Global.no_such_key=1", "FORCE": "1", "NPROC": "3",
    "PYTHON": "/nonexistent/python", "PADDLEOCR_VERSION": "v0.0.1", "PADDLEOCR_RELEASE": "v0.0.1",
    "CENTERS": "/nonexistent/centers.pkl", "DICT": "/nonexistent/dict.txt", "BENCH_IMAGES": "0", "BENCH_CONFIG": "/nonexistent/bench.yml", "BENCH_ONLY": "nosuchpart", "BENCH_LOSS_CLASSES": "0",
    "MAKEFLAGS": "FORCE=1 NPROC=3", "PYTHONPATH": "/nonexistent/site", "VERBOSE": "1",
    # the fault hooks, left in a shell after a test run: without the run's token they do nothing
    "CENTERKIT_KILL_AT": "apply.done", "CENTERKIT_CHILD_FAULT": "loop:-:KILL", "CENTERKIT_FAULT_TRACE": "/nonexistent/trace",
    "CENTERKIT_TEST_FAULTS": "/nonexistent/token",
}
os.environ.update(HOSTILE)

import upstream  # noqa: E402
from centerkit import releases  # noqa: E402

TABLE = releases.load_table()
SDIST_RELEASES = [r for r in TABLE if r.sdist_sha256]
# The releases the tests run on come from the table, so a new row is tested without editing
# a test. NEWEST is what a test about no release in particular runs on.
NEWEST = TABLE[-1].name
OLDEST = TABLE[0].name


def first_of(series):
    """The oldest release the table maps to a series (a folder name under patches/, e.g. v2.8)."""
    return [r.name for r in TABLE if r.series == series][0]


def newest_of(series):
    """The newest release the table maps to a series."""
    return [r.name for r in TABLE if r.series == series][-1]


# The only releases a test names: picked for an upstream property of their own, which a new
# row of the table does not change.
YAML_BROKEN = "v2.8.0"  # its PP-OCRv4 distillation config is not valid YAML (an undefined alias); no SVTRv2
YAML_FIXED = "v2.9.0"  # the first release whose copy of that config is valid YAML
NEWEST_NUMPY1 = "v2.9.1"  # the newest release on the numpy<2 Paddle 3 environment (release_envs.py)


@pytest.fixture(scope="session", autouse=True)
def shared_inputs(tmp_path_factory):
    """Where tiny_data keeps inputs several tests read (made once per worker)."""
    import tiny_data

    tiny_data.SHARED = tmp_path_factory.mktemp("shared-inputs")


@pytest.fixture
def clone_source():
    source, why = upstream.clone_source()
    if source is None:
        pytest.skip(why)
    return source


@pytest.fixture
def tree_of(clone_source):
    """release -> a clean tree of it from the clone (skips when the clone lacks it);
    gitignore=False: the same tree without upstream's .gitignore."""
    def get(release, gitignore=True):
        path = upstream.release_tree(clone_source, release, gitignore)
        if path is None:
            pytest.skip("%s has neither tag %s nor the commit the shared table gives" % (clone_source, release))
        return path
    return get


def pytest_report_header(config):
    source, why = upstream.clone_source()
    return "ppocr-center-kit clone tier: %s" % (source or "skipped: " + why)
