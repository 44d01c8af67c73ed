"""`make demo` at tiny sizes (demo/run_demo.py with 8 Train and 6 Eval lines, batches of 4):
the released model and the CJK font from the kit's pinned cache, the rendered lines, the
export of its centers, `make confusions` and a one-run `make ab` from the inference model,
as the demo runs them. The minutes of the real sizes are run by hand (README); this
catches what broke the demo silently before: its own code paths, imports and the commands
it builds. Skips, saying why, where the pinned packages cannot be had."""

import json
import os
import subprocess

import pytest
import yaml

import tiny_data
from centerkit import VERSION, KitError, patchfile, released_models
from conftest import NEWEST
from kit_run import KIT, git_status, helper_env

RELEASE = NEWEST
STEP = """
import sys
import run_demo
run_demo.OUT = sys.argv[1]
run_demo.DATA = dict(train=dict(lines=8, seed=1), eval=dict(lines=6, seed=2))
run_demo.TRAINING = [o.replace("=16", "=4") for o in run_demo.TRAINING]
sys.exit(run_demo.run_tool(run_demo.demo, ["--tree", sys.argv[2]]))
"""


@pytest.mark.xdist_group("released-" + NEWEST)
def test_demo_exports_counts_confusions_and_runs_an_ab(tree_of, tmp_path):
    tree = tree_of(RELEASE)
    python = tiny_data.release_python(tree, RELEASE)
    try:
        model = released_models.model_folder("pp-ocrv4-mobile", log=lambda line: None)
        released_models.cjk_font(log=lambda line: None)
    except KitError as e:
        pytest.skip(str(e))
    out = tmp_path / "demo-output"
    env = helper_env({"PYTHONPATH": os.pathsep.join([os.path.join(KIT, "scripts"), os.path.join(KIT, "demo")]),
                      "PADDLEOCR_VERSION": RELEASE})
    r = subprocess.run([python, "-c", STEP, str(out), tree], cwd=tree, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert git_status(tree) == ""
    labels = (out / "data" / "eval" / "labels.txt").read_text(encoding="utf-8").splitlines()
    assert len(labels) == 6 and any(ord(c) > 0x4E00 for line in labels for c in line)  # Chinese lines among them
    report = json.loads((out / "train_center.report.json").read_text())
    assert report["dictionary_size"] == 6625 and report["weights_loaded"]["kind"] == "inference model"
    confusions = json.loads((out / "confusions.json").read_text())
    assert confusions["lines"] == 6 and confusions["weights_loaded"]["form"] == "re-parameterised"
    assert confusions["kit_version"] == VERSION and confusions["series_sha256"] == patchfile.series_digest(confusions["series"])
    assert "line accuracy" in r.stdout and "verdict: CenterLoss" in r.stdout
    ab = json.loads((out / "ab-runs1" / "ab.json").read_text())
    assert ab["baseline"]["line_accuracy"] == confusions["line_accuracy"]  # the same model, the same Eval lines
    for arm, weight in (("control", 0.0), ("center", 0.05)):
        run = out / "ab-runs1" / ("%s-seed1" % arm) / "model"
        derived = yaml.safe_load((run / "centerkit_train.yml").read_text())
        assert derived["Loss"]["kit_center"]["weight"] == weight and derived["Global"]["epoch_num"] == 1
        assert derived["Global"]["pretrained_model"] == str(run / "centerkit_init")
        assert derived["Architecture"]["kit_reparameterized"] and derived["Architecture"]["Head"]["kit_ctc_only"]
    assert ab["settings"]["checkpoint"] == model
