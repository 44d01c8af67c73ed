"""`make demo` after its training (demo/run_demo.py demo with its train step replaced by a
stand-in checkpoint that reads "1", 48 one-glyph Train lines and 8 Eval lines, 1 epoch per A/B arm): the
export, `make confusions` and `make ab` as the demo runs them. The minutes of training are
run by hand (README, docs/training.md); this catches what broke the demo silently before:
its own code paths, imports and the commands it builds."""

import json
import os
import subprocess

import yaml

import tiny_data
from conftest import NEWEST
from kit_run import KIT, git_status, helper_env

RELEASE = NEWEST
STEP = """
import os, subprocess, sys
import run_demo
run_demo.OUT = sys.argv[1]
run_demo.DATA = dict(run_demo.DATA, n_train=48, n_val=8, max_len=1)  # 2 Train lines read "1"
run_demo.AB_EPOCHS = 1

def train(tree, paths, model_dir, opts):
    ckpt = os.path.join(model_dir, "latest")
    subprocess.run([sys.executable, "-m", "centerkit.standin", run_demo.CONFIG, ckpt, "1"] + opts[:3], cwd=tree,
                   check=True, stdout=subprocess.DEVNULL)
    return ckpt, True

run_demo.train = train
sys.exit(run_demo.run_tool(run_demo.demo, ["--tree", sys.argv[2]]))
"""


def test_demo_exports_counts_confusions_and_runs_an_ab(tree_of, tmp_path):
    tree = tree_of(RELEASE)
    python = tiny_data.release_python(tree, RELEASE)
    out = tmp_path / "demo-output"
    env = helper_env({"PYTHONPATH": os.pathsep.join([os.path.join(KIT, "scripts"), os.path.join(KIT, "demo")]),
                      "PADDLEOCR_VERSION": RELEASE})
    r = subprocess.run([python, "-c", STEP, str(out), tree], cwd=tree, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    assert git_status(tree) == ""
    dictionary = (out / "data" / "dict.txt").read_text().split()
    assert "".join(dictionary) == "0ODQ1Il75S8B2Z6G"  # the look-alike glyphs
    confusions = json.loads((out / "confusions.json").read_text())
    assert confusions["lines"] == 8 and [f["path"] for f in confusions["label_files"]] == [str(out / "data" / "val_list.txt")]
    assert "line accuracy" in r.stdout and "verdict: CenterLoss" in r.stdout
    ab = json.loads((out / "ab-runs1" / "ab.json").read_text())
    assert ab["baseline"]["line_accuracy"] == confusions["line_accuracy"]  # the same model, the same Eval lines
    for arm, weight in (("control", 0.0), ("center", 0.05)):
        run = out / "ab-runs1" / ("%s-seed1" % arm) / "model"
        derived = yaml.safe_load((run / "centerkit_train.yml").read_text())
        assert derived["Loss"]["kit_center"]["weight"] == weight and derived["Global"]["epoch_num"] == 1
        assert derived["Global"]["pretrained_model"] == str(out / "model" / "latest")
