"""Issue 6: two CPU processes (paddle.distributed.launch, gloo) give the single-process
centers, with a data set size that does not divide evenly: no image twice, none skipped."""

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

import dist_worker
import tiny_data
import upstream
from conftest import NEWEST
from kit_run import export, git_status, helper_env, output_of
from centerkit.dropins import kit_export

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.mark.parametrize("num_samples,world", [(23, 2), (5, 4), (1, 2)])
def test_shards_cover_every_sample_once(num_samples, world):
    shards = [kit_export.center_math.shard_indices(num_samples, r, world) for r in range(world)]
    assert sorted(i for s in shards for i in s) == list(range(num_samples))


def test_two_processes_equal_one(tmp_path):
    pytest.importorskip("paddle")
    out = tmp_path / "centers.pkl"
    cmd = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2",
           "--log_dir", str(tmp_path / "log"), os.path.join(HERE, "dist_worker.py"), "23", "4", str(out)]
    r = subprocess.run(cmd, env=helper_env(), capture_output=True, text=True, timeout=300)
    logs = "".join(p.read_text() for p in (tmp_path / "log").glob("*"))
    assert r.returncode == 0, r.stderr[-2000:] + logs[-2000:]
    with open(out, "rb") as f:
        world, seen, used, centers = pickle.load(f)
    single = dist_worker.accumulate(list(range(23)), 4)
    assert (world, seen, used) == (2, 23, single.images_used)
    expected = single.centers()
    assert sorted(centers) == sorted(expected)
    for c in expected:
        assert centers[c].dtype == np.float32
        np.testing.assert_allclose(centers[c], expected[c], rtol=1e-6, atol=1e-6)


def test_make_export_nproc2_equals_one_process(clone_source, tmp_path):
    """Clone tier: the real `make export NPROC=2` (paddle.distributed.launch, gloo) against
    NPROC=1 on the same 11 images (uneven for 2 ranks and for the batch size)."""
    tree = upstream.release_tree(clone_source, NEWEST)
    if tree is None:
        pytest.skip("%s has no %s" % (clone_source, NEWEST))
    python, why = tiny_data.paddle_python(tree)
    if python is None:
        pytest.skip(why)
    cfg = tiny_data.config_path("tiny_plain_ctc.yml")
    opts = tiny_data.dataset(tmp_path / "data", images=11)
    labels, ckpt = str(tmp_path / "data" / "train.txt"), str(tmp_path / "ckpt")
    tiny_data.reference(python, tree, "init", cfg, ckpt, labels, "-", opts)
    before = git_status(tree)
    got = {}
    for nproc in (1, 2):
        out = str(tmp_path / ("centers%d.pkl" % nproc))
        r, got[nproc], report = export(tree, NEWEST, out, opts, PYTHON=python, CONFIG=cfg, CHECKPOINT=ckpt,
                                       NPROC=nproc)
        assert r.returncode == 0, output_of(r)
        assert report["images_seen"] == 11
    assert got[1] and sorted(got[2]) == sorted(got[1])
    for c in got[1]:
        np.testing.assert_allclose(got[2][c], got[1][c], rtol=1e-6, atol=1e-6)
    assert git_status(tree) == before
