"""`make demo`'s fine-tuning step (demo/run_demo.py finetune: center figures before, `make
train` with the exported centers, figures after), on a stand-in checkpoint and a handful of
images instead of the demo's minutes of training. The whole demo is run by hand (README);
this catches what broke it silently before: the step's own code paths and imports."""

import json
import os
import subprocess

import tiny_data
from centerkit.standin import noise_images
from kit_run import KIT, git_status, helper_env, make

DEMO_CONFIG = tiny_data.config_path("tiny_distill_ctc_nrtr.yml")


def test_demo_finetune_step(tree_of, tmp_path):
    tree = tree_of("v3.7.0")
    python = tiny_data.release_python(tree, "v3.7.0")
    data = tmp_path / "data"
    noise_images(str(data), list("12121212"), (32, 64))
    os.replace(data / "train.txt", data / "train_list.txt")  # the demo's data set names its list so
    (data / "dict.txt").write_text("".join("%d\n" % i for i in range(10)))
    opts = ["Global.character_dict_path=%s" % (data / "dict.txt"), "Train.dataset.data_dir=%s" % data,
            "Train.dataset.label_file_list=[%s]" % (data / "train_list.txt")]
    ckpt, centers = str(tmp_path / "ckpt"), str(tmp_path / "train_center.pkl")
    made = subprocess.run([python, "-m", "centerkit.standin", DEMO_CONFIG, ckpt, "1"] + opts, cwd=tree,
                          env=helper_env(), capture_output=True, text=True)
    assert made.returncode == 0, made.stderr[-3000:]
    r = make("export", cwd=tree, env={"PADDLEOCR_VERSION": "v3.7.0"}, PYTHON=python, CONFIG=DEMO_CONFIG,
             CHECKPOINT=ckpt, OUTPUT=centers, OPTS=" ".join("-o " + o for o in opts))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]

    out = tmp_path / "demo-output"
    out.mkdir()
    step = ("import json, sys, run_demo; run_demo.OUT, run_demo.FINETUNE_EPOCHS = sys.argv[1], 1; "
            "sys.exit(run_demo.finetune(*sys.argv[2:6], json.loads(sys.argv[6])))")
    env = helper_env({"PYTHONPATH": os.pathsep.join([os.path.join(KIT, "scripts"), os.path.join(KIT, "demo")]),
                      "PADDLEOCR_VERSION": "v3.7.0"})
    r = subprocess.run([python, "-c", step, str(out), tree, str(data), ckpt, centers, json.dumps(opts)],
                       cwd=tree, env=env, capture_output=True, text=True)
    log = (out / "finetune.log").read_text() if (out / "finetune.log").exists() else ""
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:] + log[-3000:]
    rows = [l.split() for l in r.stdout.splitlines() if l.strip().startswith(("before", "after"))]
    assert [row[0] for row in rows] == ["before", "after"]
    # the center loss before and after, both measured; one class only: no other center to compare with
    assert [row[-5:] for row in rows] == [[row[-5], "n/a", "4", "of", "8"] for row in rows]
    assert all(float(row[-5]) >= 0 for row in rows)
    assert (out / "finetune" / "latest.pdparams").exists()
    assert git_status(tree) == ""
