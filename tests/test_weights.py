"""Clone tier (the newest release): which weights the export loaded is explicit. The report and the log
name the source (CHECKPOINT, Global.checkpoints, Global.pretrained_model, a sub-model's
`pretrained`), the last two with a warning line (in a fine-tuning config they are the
weights before training), and every source is checked strictly for shape: upstream loads a
sub-model's `pretrained` leniently, skipping what does not fit."""


import numpy as np
import pytest

import tiny_data
from centerkit import VERSION, patchfile
from conftest import NEWEST
import kit_run
from kit_run import error_lines, git_status, output_of, recipe_exit

RELEASE = NEWEST
CONFIG = "tiny_distill_ctc_nrtr.yml"
WARNING = "in a fine-tuning config these are the weights before training"


@pytest.fixture
def setup(tree_of, tmp_path):
    paddle = pytest.importorskip("paddle")
    tree = tree_of(RELEASE)
    python, _, opts, ckpt = tiny_data.initialised(tree, RELEASE, CONFIG, tmp_path, images=5)
    full = paddle.load(ckpt + ".pdparams")
    student = {k[len("Student."):]: v for k, v in full.items() if k.startswith("Student.")}
    paddle.save(student, str(tmp_path / "student.pdparams"))
    bad = dict(student)
    key = next(k for k in bad if k.endswith("bias"))
    bad[key] = paddle.zeros([bad[key].shape[0] + 1])
    paddle.save(bad, str(tmp_path / "student_bad.pdparams"))
    return tree, python, ckpt, opts


def export(tree, python, out, opts, **variables):
    # the weights are loaded before either engine runs the model
    return kit_run.export(tree, RELEASE, out, opts, PYTHON=python, CONFIG=tiny_data.config_path(CONFIG),
                          **kit_run.ENGINE_NOT_UNDER_TEST, **variables)


def test_every_weight_source_is_named_and_checked(setup, tmp_path):
    tree, python, ckpt, opts = setup
    student = str(tmp_path / "student")
    sources = {  # source: (make variables, -o overrides, warned)
        "CHECKPOINT": ({"CHECKPOINT": ckpt}, ["Global.pretrained_model=./no/such/model"], False),
        "Global.checkpoints": ({}, ["Global.checkpoints=%s" % ckpt], False),
        "Global.pretrained_model": ({}, ["Global.pretrained_model=%s" % ckpt], True),
        "Architecture.Models.Student.pretrained": ({}, ["Architecture.Models.Student.pretrained=%s" % student], True),
    }
    got = {}
    for source, (variables, extra, warned) in sources.items():
        out = tmp_path / ("%s.pkl" % source)
        r, got[source], report = export(tree, python, out, opts + extra, **variables)
        assert r.returncode == 0, output_of(r)
        path = student if source.startswith("Arch") else ckpt
        assert (report["weights_source"], report["checkpoint"]) == (source, path)
        assert report["kit_version"] == VERSION and report["series_sha256"] == patchfile.series_digest(report["series"])
        log = r.stdout + r.stderr
        assert "weights: %s (%s)" % (path, source) in log
        assert (WARNING in log) == warned, log[-3000:]
    first = got["CHECKPOINT"]
    for centers in got.values():  # the same weights, whichever way they were named
        assert sorted(centers) == sorted(first)
        for c in first:
            np.testing.assert_allclose(centers[c], first[c], rtol=1e-6, atol=1e-6)
    assert git_status(tree) == ""


def test_a_sub_model_pretrained_of_another_shape_is_refused(setup, tmp_path):
    """Upstream's load_pretrained_params would skip the misfit parameter with a warning."""
    tree, python, ckpt, opts = setup
    out = tmp_path / "centers.pkl"
    r = export(tree, python, out, opts + ["Architecture.Models.Student.pretrained=%s" % (tmp_path / "student_bad")])[0]
    assert recipe_exit(r) == 2, r.stdout[-2000:] + r.stderr[-2000:]
    lines = error_lines(r)
    assert len(lines) == 1 and "does not fit this config" in lines[0], r.stderr[-2000:]
    assert not out.exists()
    assert git_status(tree) == ""
