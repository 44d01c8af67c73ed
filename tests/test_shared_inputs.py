"""The suite's sharing holds: tests marked with one xdist_group run on one worker under
`make test`'s `--dist loadgroup` (pytest 9.2 drops the groups silently, pytest-xdist issue
1386: test_train_configs and test_ab would then make their inputs on both workers)."""

import os
import subprocess
import sys

GROUPED = r"""
import os, pytest
pytestmark = pytest.mark.xdist_group("one")
@pytest.mark.parametrize("i", range(6))
def test_worker(i):
    with open(os.environ["GROUP_SEEN"], "a") as f:
        f.write(os.environ["PYTEST_XDIST_WORKER"] + "\n")
"""


def test_an_xdist_group_runs_on_one_worker(tmp_path):
    (tmp_path / "test_grouped.py").write_text(GROUPED)
    seen = tmp_path / "workers.txt"
    r = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-q", "-p",
                        "no:cacheprovider", "--rootdir", str(tmp_path), str(tmp_path)],
                       cwd=str(tmp_path), capture_output=True, text=True, env=dict(os.environ, GROUP_SEEN=str(seen)))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    workers = seen.read_text().split()
    assert len(workers) == 6 and len(set(workers)) == 1, r.stdout[-2000:]
