"""The clone tier: real upstream trees from PADDLEOCR_REPO (or PADDLEOCR_GIT_URL), one per
release of the table, at its tag or the commit ../shared/upstream-releases.tsv gives.

- every release: `make check`, `make apply`, `make status`, `make revert`; the patched
  files compile and the tree is byte-identical and `git status`-clean afterwards;
- v2.8 and later, where the Python in PADDLEOCR_PYTHON (default: this one) can import the
  tree: `make export` on a tiny generated data set for a Teacher/Student MultiHead CTC+NRTR
  config, a MultiHead CTC+SAR config and a plain CTC config, checked against an independent
  computation (reference_centers.py) from the same model outputs.
"""

import os
import pickle
import py_compile
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest

import upstream
from conftest import TABLE
from kit_run import make, snapshot
from centerkit import patchfile, releases

HERE = os.path.dirname(os.path.abspath(__file__))
E2E_RELEASES = [r for r in TABLE if releases.parse_version(r.name) >= (2, 8, 0)]
CONFIGS = {"tiny_distill_ctc_nrtr.yml": 32, "tiny_multihead_ctc_sar.yml": 32, "tiny_plain_ctc.yml": 24}


@pytest.fixture
def tree_of(clone_source):
    def get(release):
        path = upstream.release_tree(clone_source, release)
        if path is None:
            pytest.skip("%s has neither tag %s nor the commit the shared table gives" % (clone_source, release))
        return path
    return get


def git_status(tree):
    return subprocess.run(["git", "status", "--porcelain"], cwd=tree, capture_output=True, text=True, check=True).stdout


def test_table_covers_the_shared_release_list():
    listed = upstream.release_commits()
    if not listed:
        pytest.skip("no %s" % upstream.RELEASES_TSV)
    assert sorted(listed) == sorted(r.name for r in TABLE)


@pytest.mark.parametrize("release", [r.name for r in TABLE])
def test_series_applies_and_reverts(tree_of, release):
    tree = tree_of(release)
    env = {"PADDLEOCR_VERSION": release}
    series = releases.series_for(release)
    targets = [t for p in patchfile.series_patches(series) for t in patchfile.targets(p)]
    before = {t: snapshot(os.path.dirname(os.path.join(tree, t)))[os.path.basename(t)] for t in targets}

    r = make("check", cwd=tree, env=env)
    assert r.returncode == 0 and "applies cleanly" in r.stdout, r.stderr
    r = make("apply", cwd=tree, env=env)
    assert r.returncode == 0, r.stderr
    for t in targets:
        py_compile.compile(os.path.join(tree, t), doraise=True)
    assert "OPEN RUN" in make("status", cwd=tree, env=env).stdout
    assert make("check", cwd=tree, env=env).returncode != 0  # refuses while a run is open
    r = make("revert", cwd=tree, env=env)
    assert r.returncode == 0 and "byte-for-byte" in r.stdout, r.stderr
    after = {t: snapshot(os.path.dirname(os.path.join(tree, t)))[os.path.basename(t)] for t in targets}
    assert after == before
    assert git_status(tree) == ""


def _png(path, pixels):
    """A grayscale PNG from a uint8 array (no imaging library needed)."""
    h, w = pixels.shape
    raw = b"".join(b"\x00" + pixels[y].tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def tree_python(tree):
    """The Python to run this release with, or a skip naming why it cannot."""
    major = releases.parse_version(os.environ.get("PADDLEOCR_VERSION_UNDER_TEST", "3"))[0]
    python = os.environ.get("PADDLEOCR_PYTHON_V%d" % major) or os.environ.get("PADDLEOCR_PYTHON") or sys.executable
    probe = subprocess.run(
        [python, "-c", "import paddle, ppocr.data, ppocr.modeling.architectures, ppocr.postprocess, tools.program"],
        cwd=tree, capture_output=True, text=True,
    )
    if probe.returncode:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        pytest.skip("%s cannot import this release's ppocr (%s); set PADDLEOCR_PYTHON[_V2]" % (python, last))
    return python


@pytest.mark.parametrize("config,width", list(CONFIGS.items()))
@pytest.mark.parametrize("release", [r.name for r in E2E_RELEASES])
def test_make_export_end_to_end(tree_of, release, config, width, tmp_path, monkeypatch):
    tree = tree_of(release)
    monkeypatch.setenv("PADDLEOCR_VERSION_UNDER_TEST", release)
    python = tree_python(tree)
    data = tmp_path / "data"
    (data / "img").mkdir(parents=True)
    rng = np.random.default_rng(7)
    lines = []
    for i in range(11):  # not a multiple of the batch size
        _png(str(data / "img" / ("%d.png" % i)), rng.integers(0, 255, (32, 64), dtype=np.uint8))
        lines.append("img/%d.png\ta\n" % i)
    (data / "train.txt").write_text("".join(lines))
    (data / "dict.txt").write_text("".join(c + "\n" for c in "abcdefghij"))
    cfg = os.path.join(os.path.dirname(HERE), "configs", config)
    ckpt, out, ref = str(tmp_path / "ckpt"), str(tmp_path / "centers.pkl"), str(tmp_path / "ref.pkl")
    opts = ["Global.character_dict_path=%s" % (data / "dict.txt"), "Train.dataset.data_dir=%s" % data,
            "Train.dataset.label_file_list=[%s]" % (data / "train.txt")]
    if "distill" in config:  # sub-model `pretrained` paths must be ignored with a checkpoint
        opts += ["Architecture.Models.Teacher.pretrained=./no/such/teacher",
                 "Architecture.Models.Student.pretrained=./no/such/student"]
    ref_cmd = [python, os.path.join(HERE, "reference_centers.py")]
    subprocess.run(ref_cmd + ["init", cfg, ckpt, str(data / "train.txt"), ref] + opts, cwd=tree, check=True, capture_output=True)
    assert git_status(tree) == ""

    r = make("export", cwd=tree, env={"PADDLEOCR_VERSION": release}, PYTHON=python, CONFIG=cfg,
             CHECKPOINT=ckpt, OUTPUT=out, OPTS=" ".join("-o " + o for o in opts))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert git_status(tree) == ""

    subprocess.run(ref_cmd + ["centers", cfg, ckpt, str(data / "train.txt"), ref] + opts, cwd=tree, check=True, capture_output=True)
    with open(out, "rb") as f:
        ours = pickle.load(f)
    with open(ref, "rb") as f:
        theirs = pickle.load(f)
    assert ours and all(type(k) is int for k in ours)
    assert all(v.dtype == np.float32 and v.shape == (width,) for v in ours.values())
    assert sorted(ours) == sorted(theirs)
    for k in ours:
        np.testing.assert_allclose(ours[k], theirs[k], rtol=1e-5, atol=1e-5)
    with open(os.path.splitext(out)[0] + ".report.json") as f:
        report = __import__("json").load(f)
    assert report["images_seen"] == 11 and report["images_used"] == 6
